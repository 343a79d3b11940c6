"""interpool.Executor in whole programs, run as child processes: functions defined
in the __main__ script or in a module run with `python -m`, a script without the
`if __name__ == "__main__":` guard, and programs that end with an executor still open."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from support import run_python, script  # noqa: E402


def assert_clean_exit(proc, expected_rc=0):
    """The child ended by itself with expected_rc: no signal, no fatal error."""
    assert proc.returncode == expected_rc, (proc.returncode, proc.stdout, proc.stderr)
    assert "Fatal Python error" not in proc.stderr, proc.stderr
    assert "Segmentation fault" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("cloudpickle", ["installed", "not installed"])
def test_classes_made_at_run_time_in_main_are_sent_by_value_or_refused_at_submit(cloudpickle):
    # Made by type() or exec under the guard: the workers' copy of the script
    # never defines them, so they cannot be found there by name (they were, and
    # failed in the worker with AttributeError).
    args = [script("executor_main_made_at_run_time.py")]
    if cloudpickle == "not installed":
        args.append("no-cloudpickle")
    elif importlib.util.find_spec("cloudpickle") is None:
        pytest.skip("cloudpickle is not installed")
    proc, _ = run_python(args, timeout=120)
    assert_clean_exit(proc)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    made = ["Dyn", "Exec"] if sys.version_info >= (3, 13) else ["Dyn"]
    for name in made:
        if cloudpickle == "installed":
            assert out[name] == {"Dyn": 2, "Exec": 3}[name], out[name]
        else:
            assert out[name].startswith("refused: ") and "made at run time" in out[name], out[name]
    assert out["exec_fn"] == 4  # a function crosses by value without cloudpickle
    # Made at run time outside the guard: the workers' copy has them, by name.
    assert out["Thing"] is True and out["Made"] is True
    # The classes pickle saves by what they are cross as they are, with or without it.
    assert out["NoneType"] == "<class 'NoneType'>"
    assert out["ellipsis"] == "<class 'ellipsis'>"
    assert out["NotImplementedType"] == "<class 'NotImplementedType'>"
    assert out["Optional"] == "typing.Optional[int]"


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
        "returned": [True, 15],  # __mp_main__.Scaler is __main__.Scaler here
    }
    # Loaded once in the parent, at most once per worker (2), and the guarded
    # block ran in the parent only. (Workers' lines may interleave: count substrings.)
    assert proc.stderr.count("loaded as __main__") == 1
    assert 1 <= proc.stderr.count("loaded as __mp_main__") <= 2
    assert proc.stderr.count("main block ran") == 1


@pytest.mark.parametrize("top", ["from interpool import Executor, interpreters", ""])
def test_main_script_and_multiprocessing(tmp_path, top):
    """`import multiprocessing` sets sys.modules['__mp_main__'] to the running
    interpreter's __main__. In a worker that happens while it loads a script that
    imports interpool.Executor at the top (through concurrent.futures.process),
    or when a task imports it later: functions and objects of the script still
    resolve to the script's module."""
    path = tmp_path / "main_and_multiprocessing.py"
    path.write_text(textwrap.dedent("""
        import json
        %s


        class Point:
            def __init__(self, x):
                self.x = x


        def make(x):
            return Point(x)


        def import_multiprocessing():
            import sys
            import multiprocessing
            return sys.modules["__mp_main__"] is sys.modules["__main__"]


        if __name__ == "__main__":
            from interpool import Executor, interpreters

            out = {}
            with Executor(1) as ex:
                out["squares"] = list(ex.map(pow, [1, 2, 3], [2, 2, 2]))
                out["made"] = ex.submit(make, 1).result().x
                out["aliased"] = ex.submit(import_multiprocessing).result()
                out["made later"] = ex.submit(make, 2).result().x
                out["class"] = type(ex.submit(make, 3).result()) is Point
            interp = interpreters.create()
            interp.exec("import multiprocessing")
            out["call"] = interp.call(make, 4).x
            interp.close()
            print(json.dumps(out))
    """) % top)
    proc, _ = run_python([str(path)], cwd=tmp_path)
    assert_clean_exit(proc)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {
        "squares": [1, 4, 9], "made": 1, "made later": 2, "class": True, "call": 4,
        # Imported by the task (True) or already while the worker loaded the
        # script, whose module then took its place back (False).
        "aliased": not top,
    }


def test_a_task_starts_spawned_processes_on_the_scripts_functions(tmp_path):
    """A task that starts a spawn multiprocessing.Process on a function of the
    script: the child runs the script, which the worker's __main__ names
    (__file__), to find that function (it failed: the worker's __main__ had no
    __file__, and the child could not find the function)."""
    path = tmp_path / "nested_spawn.py"
    path.write_text(textwrap.dedent("""
        import json
        import multiprocessing
        import os


        def square_into(conn, x):
            conn.send(x * x)
            conn.close()


        def fan_out(n):
            import __main__
            ctx = multiprocessing.get_context("spawn")
            out = []
            for x in range(n):
                parent, child = ctx.Pipe()
                p = ctx.Process(target=square_into, args=(child, x))
                p.start()
                out.append(parent.recv())
                p.join()
            return out, os.path.basename(__main__.__file__)


        if __name__ == "__main__":
            from interpool import Executor

            with Executor(1) as ex:
                squares, name = ex.submit(fan_out, 3).result(timeout=60)
            print(json.dumps({"squares": squares, "file": name}), flush=True)
    """))
    proc, _ = run_python([str(path)], timeout=90)
    assert_clean_exit(proc)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"squares": [0, 1, 4], "file": "nested_spawn.py"}


def test_script_that_imports_the_executor_at_the_top(tmp_path):
    """The README's layout: `from interpool import Executor` at the top of the
    script. A worker that loads the script imports the executor and so
    multiprocessing, which aliases __mp_main__ to that worker's own __main__;
    the script's functions must still be found."""
    path = tmp_path / "top_import.py"
    path.write_text(textwrap.dedent("""
        import json
        import multiprocessing

        from interpool import Executor


        def square(x):
            return x * x


        if __name__ == "__main__":
            with Executor(2) as ex:
                out = {"map": list(ex.map(square, range(5), chunksize=1)),
                       "submit": ex.submit(square, 7).result()}
            print(json.dumps(out), flush=True)
    """))
    proc, _ = run_python([str(path)])
    assert_clean_exit(proc)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"map": [0, 1, 4, 9, 16], "submit": 49}


def make_package(root):
    """root/pkg: a package with a helper module, a tool module that uses it by a
    relative import, and a __main__.py."""
    pkg = root / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    (pkg / "tool.py").write_text(textwrap.dedent("""
        import json
        import sys

        from . import helpers

        print(f"loaded as {__name__}", file=sys.stderr, flush=True)


        class Box:
            def __init__(self, v):
                self.v = v

            def doubled(self):
                return helpers.double(self.v)


        def work(x):
            return helpers.double(x), __name__


        if __name__ == "__main__":
            import interpool

            with interpool.Executor(2) as ex:
                made = ex.submit(Box, 4).result()
                out = {
                    "map": list(ex.map(work, range(4), chunksize=1)),
                    "method": ex.submit(Box(5).doubled).result(),
                    "returned": [type(made) is Box, made.v],
                }
            print(json.dumps(out), flush=True)
    """))
    (pkg / "__main__.py").write_text(textwrap.dedent("""
        import interpool

        from pkg import helpers


        def local(x):
            return helpers.double(x) + 1


        # No guard: a package's __main__.py runs its code unconditionally, which is why
        # workers never load it (as with multiprocessing): its functions cross by value.
        with interpool.Executor(1) as ex:
            print("helper:", ex.submit(helpers.double, 4).result(), flush=True)
            print("local:", ex.submit(local, 1).result(), flush=True)
    """))


def test_functions_of_a_main_module_run_with_dash_m(tmp_path):
    """`python -m pkg.tool`: workers import pkg.tool by name (under the name
    __mp_main__), so its relative imports work, and its guarded block does not run."""
    make_package(tmp_path)
    proc, _ = run_python(["-m", "pkg.tool"], cwd=tmp_path)
    assert_clean_exit(proc)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {
        "map": [[0, "__mp_main__"], [2, "__mp_main__"], [4, "__mp_main__"], [6, "__mp_main__"]],
        "method": 10,
        "returned": [True, 4],
    }
    assert proc.stderr.count("loaded as __main__") == 1
    assert 1 <= proc.stderr.count("loaded as __mp_main__") <= 2


def test_functions_of_a_package_main_cross_by_value(tmp_path):
    """`python -m pkg` runs pkg/__main__.py, which workers do not load (it has no
    guard): its functions cross by value, with the modules they name by name."""
    make_package(tmp_path)
    proc, _ = run_python(["-m", "pkg"], cwd=tmp_path)
    assert_clean_exit(proc)
    assert proc.stdout.splitlines() == ["helper: 8", "local: 3"]


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
