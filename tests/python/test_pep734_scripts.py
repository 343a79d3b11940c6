"""interpool.interpreters in programs of their own: Ctrl-C during a blocking queue
operation, call() of functions and objects of classes defined in the __main__ of
`python script.py` or `python -m pkg.tool`, a script without the `if __name__ ==
"__main__":` guard, the exec + queues executor example, and the queue benchmark
(quick run)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
# The source tree: a copy of the tests run elsewhere is given it (make test-wheel).
from support import ctrl_c  # noqa: E402
from source_tree import ROOT  # noqa: E402
SCRIPTS = os.path.join(HERE, "scripts")
EXAMPLES = os.path.join(ROOT, "examples")
EXAMPLE = os.path.join(EXAMPLES, "exec_queue_executor.py")
BENCH = os.path.join(ROOT, "benchmarks", "bench_queues.py")


def run(args, timeout=120, cwd=None):
    try:
        return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                              timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{args} did not end within {timeout} s; output so far: {e.stdout!r}")


# ---------------------------------------------------------------------------
# Ctrl-C
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["get", "get-timeout", "put", "get-busy"])
def test_ctrl_c_interrupts_a_blocking_queue_operation(mode):
    line, delay, out, err, returncode = ctrl_c("interp_sigint.py", mode)
    assert line.startswith("interrupted after "), (line, out, err)
    assert delay < 2.0, f"KeyboardInterrupt came {delay:.3f} s after SIGINT"
    assert out == "queue ok\n", (out, err)
    assert returncode == 3, err
    assert err == ""


# ---------------------------------------------------------------------------
# Functions of the __main__ script
# ---------------------------------------------------------------------------


def test_call_accepts_functions_of_the_main_script(tmp_path):
    r = run([os.path.join(SCRIPTS, "interp_main_call.py"), "functions"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # The script ran once as __main__ and was loaded once (as __mp_main__) in the
    # sub-interpreter, where its guarded block did not run.
    assert lines.count("loaded as __main__") == 1
    assert lines.count("loaded as __mp_main__") == 1
    assert "call: (420, '__mp_main__')" in lines
    assert "runs there: True" in lines
    assert "call_in_thread: ('answer', 40)" in lines
    assert "again: (10, '__mp_main__')" in lines
    assert r.stderr == ""


@pytest.mark.parametrize("mode", ["instance", "method", "return"])
def test_call_accepts_objects_of_classes_of_the_main_script(tmp_path, mode):
    r = run([os.path.join(SCRIPTS, "interp_main_call.py"), mode], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"{mode}: 7" in r.stdout.splitlines()


def test_call_accepts_functions_of_a_main_module_run_with_dash_m(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    (pkg / "tool.py").write_text(textwrap.dedent("""
        from . import helpers
        from interpool import interpreters

        def work(x):
            return helpers.double(x)

        if __name__ == "__main__":
            interp = interpreters.create()
            try:
                print("result:", interp.call(work, 21))
            finally:
                interp.close()
    """))
    r = run(["-m", "pkg.tool"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "result: 42\n"


def test_call_of_a_main_function_from_a_main_function():
    # The sub-interpreter passes the script on to the interpreter it creates.
    r = run([os.path.join(SCRIPTS, "interp_main_call.py"), "nested"])
    assert r.returncode == 0, r.stderr
    assert "nested: (50, '__mp_main__')" in r.stdout.splitlines()
    assert r.stdout.splitlines().count("loaded as __mp_main__") == 2  # once in each


def test_main_of_a_sub_interpreter_keeps_its_names():
    # Its own names (prepare_main, exec) come first; the script's fill in what it
    # lacks, for pickle, without being copied into it.
    r = run([os.path.join(SCRIPTS, "interp_main_call.py"), "namespace"])
    assert r.returncode == 0, r.stderr
    assert "namespace: (3, False, False, True)" in r.stdout.splitlines()


def test_main_script_without_guard_fails_clearly():
    r = run([os.path.join(SCRIPTS, "interp_main_unguarded.py")], timeout=60)
    assert r.returncode == 1
    assert "result" not in r.stdout and "end of script" not in r.stdout
    # Loaded once as __main__ and once in the sub-interpreter, which stopped there.
    assert r.stderr.count("loaded as __main__") == 1
    assert r.stderr.count("loaded as __mp_main__") == 1
    assert "interpool.interpreters.ExecutionFailed: RuntimeError: interpreters.create() was called while " \
           "a sub-interpreter was loading your script" in r.stderr
    assert 'protect the code that creates interpreters with `if __name__ == "__main__":`' in r.stderr
    assert "No module named" not in r.stderr
    # The sub-interpreter's traceback shows the script's line.
    assert "interp_main_unguarded.py" in r.stderr and "interp = interpreters.create()" in r.stderr


def test_call_of_a_main_function_from_python_c_crosses_by_value():
    code = textwrap.dedent("""
        from interpool import interpreters
        def f():
            return interpreters.get_current().id
        interp = interpreters.create()
        try:
            print("ran in", interp.call(f) == interp.id)
        finally:
            interp.close()
    """)
    r = run(["-c", code])
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ran in True\n"


# A call started as the script ends: CPython deletes __main__.__file__ once the
# script has run, while the thread may be between finding the function (by name,
# in __mp_main__) and preparing the interpreter (which must then still load the
# script as __mp_main__).
_CALL_AS_THE_SCRIPT_ENDS = textwrap.dedent("""
    import sys, threading
    from interpool import interpreters

    class Point:
        def __init__(self, x):
            self.x = x

    def report(x):
        print("report:", x * x, flush=True)

    def norm(p):
        return p.x * p.x

    def late(interp):
        threading.main_thread().join()  # the script has ended: __main__.__file__ is gone
        interp.call(report, 7)
        print("norm:", interp.call(norm, Point(3)), flush=True)

    if __name__ == "__main__":
        interp = interpreters.create()
        if sys.argv[1] == "race":
            interp.call_in_thread(report, 7)
        else:  # "late": report is already known by name (another interpreter called it)
            other = interpreters.create()
            other.call(report, 1)
            threading.Thread(target=late, args=(interp,)).start()
""")


@pytest.mark.parametrize("mode", ["race", "late"])
def test_call_in_thread_as_the_main_script_ends(tmp_path, mode):
    script = tmp_path / "call_as_script_ends.py"
    script.write_text(_CALL_AS_THE_SCRIPT_ENDS)
    r = run([str(script), mode], timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "__mp_main__" not in r.stderr, r.stderr
    if mode == "race":
        assert r.stdout == "report: 49\n"
    else:
        assert r.stdout == "report: 1\nreport: 49\nnorm: 9\n"


# ---------------------------------------------------------------------------
# The exec + queues executor example
# ---------------------------------------------------------------------------


def test_example_runs_as_a_script(tmp_path):
    r = run([EXAMPLE, "--quick", "--workers", "2"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "sequential (main interpreter)" in out
    assert "Executor, 1 worker " in out and "Executor, 2 workers" in out
    assert "4,203 primes" in out  # primes below 40,000
    assert "per block: [669, 560, 525, 508, 500, 483, 487, 471]" in out
    assert r.stderr == ""


@pytest.fixture
def example(monkeypatch):
    monkeypatch.syspath_prepend(EXAMPLES)  # new interpreters get this sys.path
    import exec_queue_executor

    return exec_queue_executor


def test_example_executor_maps_in_order(example):
    with example.Executor("interp_tasks", "add", workers=3, b=100) as ex:
        assert list(ex.map(range(50))) == [i + 100 for i in range(50)]
        # The same workers serve a second map; bound state stays.
        assert list(ex.map([1, 2])) == [101, 102]


def test_example_executor_binds_state_once_per_interpreter(example):
    table = example.small_primes_below(1000)
    blocks = [(k * 10_000, (k + 1) * 10_000) for k in range(6)]
    with example.Executor("exec_queue_executor", "count_primes", workers=2, small_primes=table) as ex:
        counts = list(ex.map(blocks))
    assert counts == [example.count_primes(b, small_primes=table) for b in blocks]
    assert sum(counts) == 6057  # primes below 60,000


def test_example_executor_reports_task_errors(example):
    with example.Executor("interp_tasks", "fail", workers=2) as ex:
        with pytest.raises(example.TaskFailed, match="CustomError: boom") as e:
            list(ex.map(["boom"]))
        assert "In the worker" in str(e.value)


def test_example_executor_reports_a_module_that_does_not_import(example):
    with example.Executor("no_such_module_anywhere", "f", workers=1) as ex:
        with pytest.raises(example.TaskFailed, match="worker stopped"):
            list(ex.map([1]))


# ---------------------------------------------------------------------------
# The queue benchmark
# ---------------------------------------------------------------------------


def test_queue_benchmark_quick(tmp_path):
    out = tmp_path / "bench.json"
    r = run([BENCH, "--quick", "--repeat", "1", "--items", "5000", "--roundtrips", "300",
             "--json", str(out)], timeout=300)
    assert r.returncode == 0, r.stderr
    assert "round trip µs" in r.stdout and "load average" in r.stdout
    data = json.loads(out.read_text())
    assert set(data["backends"]) == {"interpool", "stdlib", "backport"}
    ours = data["backends"]["interpool"]
    assert ours["skipped"] is None
    assert 0 < ours["roundtrip"]["us_p50"] <= ours["roundtrip"]["us_p99"]
    assert ours["throughput"]["items_per_s_median"] > 0
    # the rows of the combined table of `make bench` (benchmarks/_report.py)
    rows = {r["measure"].strip(): r for r in data["summary"]["rows"]}
    assert float(rows["round trip main <-> worker, p50: µs"]["values"]["interpool"].replace(",", "")) > 0
    assert rows["throughput worker -> main: items/s"]["verdict"] in ("met", "MISSED")
    for name in ("stdlib", "backport"):
        b = data["backends"][name]
        assert b["skipped"] or b["roundtrip"]["us_p50"] > 0, b
        if b["skipped"]:
            assert f"{name}: skipped: " in r.stdout
    if sys.version_info[:2] == (3, 12):
        assert data["backends"]["stdlib"]["skipped"]
    if sys.version_info[:2] == (3, 13):
        assert data["backends"]["stdlib"]["skipped"] is None


def test_example_executor_after_an_abandoned_map(example):
    with example.Executor("interp_tasks", "add", workers=2, b=1) as ex:
        results = ex.map(range(100))
        assert next(results) == 1
        results.close()  # the caller stops early: the other results are left behind
        assert list(ex.map([10, 20])) == [11, 21]
