"""benchmarks/_report.py, the combined table of `make bench`, on made-up results:
the rows of each script with their columns, and a line (no traceback) for a script
that was skipped, failed, or left unreadable results."""

import json
import os
import subprocess
import sys

# The source tree: a copy of the tests run elsewhere is given it (make test-wheel).
from source_tree import ROOT  # noqa: E402
REPORT = os.path.join(ROOT, "benchmarks", "_report.py")

MACHINE = {"cpu_model": "Test CPU", "cpu_count": 2, "usable_cpus": 2, "ram_gib": 4.0, "os": "TestOS",
           "kernel": "6.0", "python": "3.13.0", "python_executable": "python", "interpool": "0.1.0",
           "busy_cpus_start": 0.01}


def results(path, title, rows, notes=(), quick=True):
    path.write_text(json.dumps({"machine": MACHINE, "config": {"quick": quick},
                                "summary": {"title": title, "rows": rows, "notes": list(notes)}}))


def row(measure, values, target="", verdict=""):
    return {"measure": measure, "values": values, "target": target, "verdict": verdict}


def report(directory, *runs):
    r = subprocess.run([sys.executable, REPORT, str(directory), *runs], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    return r.stdout


def test_one_table_with_every_column_and_the_machine_once(tmp_path):
    results(tmp_path / "bench_a.json", "engine things", [
        row("trivial task: µs", {"interpool": "1.50", "threads": "9.00", "engine": "0.40"},
            "C++ engine <= 1 µs", "met")], notes=["a note"])
    results(tmp_path / "bench_b.json", "executor things", [
        row("map: µs/item", {"interpool": "0.90", "processes": "260.00", "loky": "skipped"}, "<= 2 µs", "met"),
        row("start: ms", {"interpool": "70.0", "backport": "44.0"})])
    out = report(tmp_path, "benchmarks/bench_a.py=0", "benchmarks/bench_b.py=0")
    lines = out.splitlines()
    assert sum("Test CPU, 2 CPUs (2 usable)" in line for line in lines) == 1
    header = next(line for line in lines if line.startswith("measure"))
    # interpool first, then the baselines that some row has, then target and verdict
    assert header.split() == ["measure", "interpool", "threads", "processes", "loky", "backport", "C++",
                              "engine", "target", "verdict"]
    assert "stdlib" not in header
    a = next(line for line in lines if "trivial task: µs" in line)
    for label, value in (("interpool", "1.50"), ("threads", "9.00"), ("C++ engine", "0.40")):
        assert a.index(value) + len(value) == header.index(label) + len(label), (label, a)
    assert a.endswith("met")
    assert "bench_a.py: engine things" in out and "bench_b.py: executor things" in out
    assert "bench_a.py: a note" in out
    assert "indicative only" in out  # quick runs


def test_skipped_failed_and_unreadable_scripts_get_a_line(tmp_path):
    results(tmp_path / "bench_ok.json", "fine", [row("m: µs", {"interpool": "1.0"})])
    (tmp_path / "bench_bad.json").write_text("{not json")
    (tmp_path / "bench_old.json").write_text(json.dumps({"backends": {}}))
    results(tmp_path / "bench_half.json", "half", [row("n: µs", {"interpool": "2.0", "engine": "failed"})])
    out = report(tmp_path, "benchmarks/bench_ok.py=0", "benchmarks/bench_crash.py=1",
                 "benchmarks/bench_skip.py=skipped", "benchmarks/bench_bad.py=0",
                 "benchmarks/bench_old.py=0", "benchmarks/bench_half.py=1")
    assert "bench_crash.py: FAILED (exit status 1) before writing" in out
    assert "bench_skip.py: skipped" in out
    assert "bench_bad.py: unreadable results" in out
    assert "bench_old.py: no summary in" in out
    assert "bench_half.py: half" in out and "exit status 1" in out
    assert "m: µs" in out and "n: µs" in out


def test_no_results_at_all(tmp_path):
    out = report(tmp_path, "benchmarks/bench_x.py=2")
    assert "machine:" in out
    assert "bench_x.py: FAILED (exit status 2)" in out
