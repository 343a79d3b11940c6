"""`python -m interpool demo` and `python -m interpool info`, run as a user would
(subprocesses of this Python)."""

import json
import os
import re
import subprocess
import sys

import pytest

import interpool
from interpool.demo import day6

TIMEOUT = 120


def run(*args, cwd=None, prelude=None):
    """Runs `python -m interpool ARGS` (after `prelude` code, if given)."""
    if prelude is None:
        cmd = [sys.executable, "-m", "interpool", *args]
    else:
        code = (f"{prelude}\nimport runpy, sys\nsys.argv = ['interpool', *{list(args)!r}]\n"
                "runpy.run_module('interpool', run_name='__main__', alter_sys=True)")
        cmd = [sys.executable, "-c", code]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd)


def expected(size, seed):
    grid = day6.parse(day6.generate(size, seed))
    return day6.part1(grid), day6.part2(grid)


ROW = re.compile(r"^part2 (\d+); workers = (\d+) (\d+\.\d{6}) s elapsed  speedup (\d+\.\d\d)x  "
                 r"\(start-up \d+\.\d{3} s\)$")


# ---------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------


def test_demo_on_a_small_generated_grid(tmp_path):
    part1, part2 = expected(30, 3)
    r = run("demo", "--size", "30", "--seed", "3", "--workers", "1,2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no progress bar off a terminal, no warnings
    lines = r.stdout.splitlines()
    assert f"part1 {part1}" in lines
    assert f"part2 {part2}" in lines
    assert lines.index(f"part1 {part1}") < lines.index(f"part2 {part2}")
    assert "generated 30x30, seed 3" in r.stdout
    assert "start-up" in r.stdout and "excluded" in r.stdout  # the header says how it times
    assert any(re.fullmatch(rf"part2 {part2}; sequential \d+\.\d{{6}} s elapsed", line) for line in lines)
    rows = [ROW.match(line) for line in lines if ROW.match(line)]
    assert [(int(m[1]), int(m[2])) for m in rows] == [(part2, 1), (part2, 2)]
    assert all(float(m[3]) > 0 and float(m[4]) > 0 for m in rows)


def test_demo_reads_a_puzzle_input(tmp_path):
    path = tmp_path / "input.txt"
    path.write_text(day6.EXAMPLE)
    r = run("demo", "--grid", str(path), "--workers", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "part1 41" in lines and "part2 6" in lines
    assert any(ROW.match(line) and line.startswith("part2 6; workers = 2 ") for line in lines)


def test_demo_json(tmp_path):
    part1, part2 = expected(24, 9)
    out = tmp_path / "study.json"
    r = run("demo", "--size", "24", "--seed", "9", "--workers", "1-2", "--json", str(out), "--repeat", "2",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["interpool"] == interpool.__version__
    assert data["python"]["version"] == "%d.%d.%d" % sys.version_info[:3]
    assert data["python"]["implementation"] == sys.implementation.name
    assert data["machine"]["usable_cpus"] == interpool.usable_cpus()
    assert data["machine"]["cpu_count"] == os.cpu_count()
    assert data["grid"] == {"source": "generated", "path": None, "size": 24, "seed": 9,
                            "rows": 24, "cols": 24}
    assert (data["part1"], data["part2"]) == (part1, part2)
    assert data["candidates"] == part1 - 1
    assert data["workers"] == [1, 2]
    assert data["repeat"] == 2
    assert data["sequential_seconds"] > 0
    assert list(data["backends"]) == ["interpool"]
    runs = data["backends"]["interpool"]["runs"]
    assert sorted(runs) == ["1", "2"]
    for entry in runs.values():
        assert entry["part2"] == part2
        assert entry["seconds"] > 0 and entry["startup_seconds"] > 0
        assert entry["speedup"] == pytest.approx(data["sequential_seconds"] / entry["seconds"])


def test_demo_compare_small(tmp_path):
    part1, part2 = expected(20, 4)
    out = tmp_path / "compare.json"
    r = run("demo", "--size", "20", "--seed", "4", "--workers", "1", "--compare", "--json", str(out),
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    table = r.stdout[r.stdout.index("seconds (speedup vs sequential)"):].splitlines()
    labels = ["sequential", "threads (ThreadPoolExecutor)", "processes (ProcessPoolExecutor)",
              "interpool.Executor"]
    for label in labels:
        assert any(line.startswith(label) for line in table), (label, table)
    assert any("interpreters" in line for line in table[3:])  # stdlib: a row or a "skipped" note
    data = json.loads(out.read_text())
    assert data["part2"] == part2
    for name in ("threads", "processes", "interpool"):
        assert data["backends"][name]["runs"]["1"]["part2"] == part2
    std = data["backends"]["stdlib-interpreters"]
    if sys.version_info >= (3, 12) and std["skipped"] is None:
        assert std["runs"]["1"]["part2"] == part2
    else:
        assert std["skipped"]
    backport = data["backends"]["interpreters-pep-734"]
    assert backport["skipped"] or backport["runs"]["1"]["part2"] == part2


def test_a_wrong_answer_is_an_error(tmp_path):
    # The parent's sequential solver is made wrong; the workers' day6 is the real one.
    r = run("demo", "--size", "20", "--workers", "1", "--no-progress", cwd=tmp_path,
            prelude="import interpool.demo.day6 as d; d.part2 = lambda grid: -1")
    assert r.returncode == 1
    assert r.stderr.startswith("error: interpool.Executor, workers = 1: part2 ")
    assert r.stderr.endswith("but the sequential solver says -1\n")
    assert "Traceback" not in r.stderr


def test_plot_without_matplotlib_says_how_to_install(tmp_path):
    r = run("demo", "--size", "20", "--workers", "1", "--plot", str(tmp_path / "p.png"),
            cwd=tmp_path, prelude="import sys; sys.modules['matplotlib'] = None")
    assert r.returncode == 2
    assert "pip install 'interpool[demo]'" in r.stderr
    assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    assert not (tmp_path / "p.png").exists()
    assert "part1" not in r.stdout  # checked before the work starts


def test_plot_svg(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "chart.svg"
    r = run("demo", "--size", "20", "--workers", "1,2", "--plot", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert out.read_text().lstrip().startswith("<?xml")
    assert "<svg" in out.read_text()


def test_plot_needs_svg_or_png(tmp_path):
    r = run("demo", "--plot", str(tmp_path / "chart.pdf"), cwd=tmp_path)
    assert r.returncode == 2
    assert "argument --plot" in r.stderr and ".svg or .png" in r.stderr


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("content,line,column,words", [
    ("....\n....\n...#\n", 3, 5, "no guard"),
    ("....\n.^..\n..\n....\n", 3, 3, "rectangular"),
    ("....\n.^..\n.....\n", 3, 5, "rectangular"),
    ("....\n.^.\u00e9\n", 2, 4, "unexpected character"),
    ("....\n.^..\n..o.\n", 3, 3, "unexpected character 'o'"),
    ("", 1, 1, "empty"),
])
def test_bad_grid_files(tmp_path, content, line, column, words):
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8")
    r = run("demo", "--grid", str(path), "--workers", "1", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.startswith(f"error: {path}: line {line}, column {column}: ")
    assert words in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_guard_that_never_leaves(tmp_path):
    path = tmp_path / "boxed.txt"
    path.write_text(".#.\n#^#\n.#.\n")
    r = run("demo", "--grid", str(path), cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr == f"error: {path}: the guard never leaves this grid: part 1 has no answer\n"


def test_missing_grid_file(tmp_path):
    path = tmp_path / "nope.txt"
    r = run("demo", "--grid", str(path), cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr == f"error: {path}: No such file or directory\n"


def test_grid_file_is_a_directory(tmp_path):
    r = run("demo", "--grid", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith(f"error: {tmp_path}: ") and "Traceback" not in r.stderr


@pytest.mark.parametrize("value,words", [
    ("0", "start at 1"),
    ("x", "not a worker count"),
    ("3-1", "empty range"),
    ("", "not a worker count"),
    ("1,,2", "not a worker count"),
    ("-2", "not a worker count"),
    ("1-99999", "at most"),
])
def test_bad_workers(tmp_path, value, words):
    r = run("demo", "--workers", value, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("usage: python -m interpool demo")
    assert "error: argument --workers" in r.stderr and words in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("args,words", [
    (["demo", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["frobnicate"], "invalid choice"),
    (["demo", "--size", "5"], "between 8 and 1000"),
    (["demo", "--size", "big"], "not a whole number"),
    (["demo", "--seed", "x"], "argument --seed"),
    (["demo", "--repeat", "0"], "between 1 and 100"),
    (["demo", "--grid", "a.txt", "--size", "20"], "--size and --seed"),
])
def test_bad_options(tmp_path, args, words):
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 2
    assert "usage: python -m interpool" in r.stderr and words in r.stderr


def test_workers_forms():
    from interpool.__main__ import worker_counts

    assert worker_counts("1,2,4") == [1, 2, 4]
    assert worker_counts("1-8") == list(range(1, 9))
    assert worker_counts("1,3-4") == [1, 3, 4]
    assert worker_counts("4, 2-3 ,2") == [2, 3, 4]
    assert worker_counts("5-5") == [5]


def test_no_subcommand_prints_help(tmp_path):
    r = run(cwd=tmp_path)
    assert r.returncode == 0
    assert r.stdout.startswith("usage: python -m interpool")
    assert "demo" in r.stdout and "info" in r.stdout


def test_demo_help_names_the_default_workers(tmp_path):
    r = run("demo", "--help", cwd=tmp_path)
    assert r.returncode == 0
    assert f"default 1-{interpool.usable_cpus() + 2}" in r.stdout
    for option in ("--grid", "--size", "--seed", "--workers", "--compare", "--plot", "--json"):
        assert option in r.stdout


# ---------------------------------------------------------------------------
# info
# ---------------------------------------------------------------------------


def test_info(tmp_path):
    r = run("info", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert f"interpool {interpool.__version__}\n" in out
    ext = re.search(r"^extension: (.+)$", out, re.M)[1]
    assert ext == interpool._interpool.__file__ and os.path.exists(ext)
    assert f"python: {sys.version}\n" in out
    assert re.search(rf"^implementation: {sys.implementation.name} {re.escape('%d.%d.%d' % sys.version_info[:3])} ",
                     out, re.M)
    assert re.search(r"^own-GIL sub-interpreters: yes \(Python 3\.12\+; interpool\.Executor\(1\) ran a task "
                     r"in interpreter \d+, this one is 0", out, re.M)
    assert f"CPUs usable: {interpool.usable_cpus()} (of {os.cpu_count()}" in out
    assert re.search(r"^stdlib sub-interpreters \(demo --compare\): ", out, re.M)
    assert "demo extras: rich " in out
