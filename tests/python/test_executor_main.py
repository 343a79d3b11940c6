"""interpool.Executor in whole programs, run as child processes: functions defined
in the __main__ script, a script without the `if __name__ == "__main__":` guard,
and programs that end with an executor still open."""

from __future__ import annotations

import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from executor_tasks_support import run_python, script  # noqa: E402


def assert_clean_exit(proc, expected_rc=0):
    """The child ended by itself with expected_rc: no signal, no fatal error."""
    assert proc.returncode == expected_rc, (proc.returncode, proc.stdout, proc.stderr)
    assert "Fatal Python error" not in proc.stderr, proc.stderr
    assert "Segmentation fault" not in proc.stderr, proc.stderr


def test_functions_defined_in_main_script():
    proc, _ = run_python([script("executor_main_guarded.py")])
    assert_clean_exit(proc)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {
        "map": [0, 1, 8, 27, 64, 125],
        "submit": 343,
        "names": ["__mp_main__"],  # workers load the script under another name
        "bound": [10, 20, 30],
        "static": 4.5,
    }
    # Loaded once in the parent, at most once per worker (2), and the guarded
    # block ran in the parent only. (Workers' lines may interleave: count substrings.)
    assert proc.stderr.count("loaded as __main__") == 1
    assert 1 <= proc.stderr.count("loaded as __mp_main__") <= 2
    assert proc.stderr.count("main block ran") == 1


def test_main_script_without_guard_fails_clearly():
    """The workers load the script to find `cube`, reach `Executor(...)` again and
    refuse it: the parent's map() raises RuntimeError naming the missing guard."""
    proc, seconds = run_python([script("executor_main_unguarded.py")], timeout=60)
    assert_clean_exit(proc, expected_rc=1)
    assert seconds < 30
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError:"), proc.stderr
    assert 'if __name__ == "__main__":' in last
    assert "results" not in proc.stdout  # the map never produced results
    assert "end of script" not in proc.stdout
    # The worker's traceback (the script's Executor line) is shown as the cause.
    assert "executor_main_unguarded.py" in proc.stderr and "RemoteError" in proc.stderr


@pytest.mark.parametrize(
    "mode, expected_rc, expected_lines",
    [
        ("pending", 0, {f"task{i}" for i in range(6)}),
        ("dropped", 0, {"dropped"}),
        ("map", 0, None),
        ("main_fn", 0, {f"main{i}" for i in range(4)}),
        ("error", 1, {"before error"}),
        ("sys_exit", 3, {"before exit"}),
    ],
)
def test_program_ends_with_executor_open(tmp_path, mode, expected_rc, expected_lines):
    log = tmp_path / "log.txt"
    proc, seconds = run_python([script("executor_exit_open.py"), mode, str(log)], timeout=60)
    assert_clean_exit(proc, expected_rc)
    assert "script end" in proc.stdout
    assert seconds < 20, f"exit took {seconds:.1f} s"
    if expected_lines is not None:
        # The tasks the executor accepted ran before the process ended.
        assert set(log.read_text().split("\n")) - {""} == expected_lines
    if mode == "error":
        assert "ValueError: the script fails with an executor open" in proc.stderr
