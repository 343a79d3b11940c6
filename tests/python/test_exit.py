"""Programs end cleanly: no hang, no fatal error, nothing printed at exit."""

import subprocess
import sys
import textwrap

import pytest

SCRIPTS = {
    "executor left open": """
        from interpool import Executor
        import threading
        ex = Executor(2)
        print(ex.submit(threading.get_ident).result() > 0)
    """,
    "executor shut down": """
        from interpool import Executor
        import threading
        with Executor(2) as ex:
            print(ex.submit(threading.get_ident).result() > 0)
    """,
    "interpreters left open": """
        from interpool import interpreters
        a = interpreters.create()
        a.exec("import threading, queue")
        q = interpreters.create_queue()
        a.prepare_main(q=q)
        a.exec("q.put(threading.get_ident())")
        print(q.get(timeout=5) > 0)
    """,
    "interpreter closed after use on this thread": """
        from interpool import interpreters
        a = interpreters.create()
        a.exec("import threading")
        a.close()
        print(True)
    """,
    "executor dropped without shutdown": """
        import interpool
        import threading
        # No name keeps it: freed at once, its result thread still joining the
        # workers as the program ends (the exit hook's join returned under it,
        # and the process aborted in about 1 run in 4).
        print(interpool.Executor(2).submit(threading.get_ident).result() > 0)
    """,
    "keyword arguments first given in workers": """
        import bisect, math, zlib
        import interpool
        # Extension functions given keywords for the first time in a worker:
        # CPython 3.12.0-3.12.3 frees the tuple of their names, which the
        # worker's interpreter made, with the main one's allocator at exit
        # (python/cpython#119213: "free(): invalid size", an abort every run).
        with interpool.Executor(2) as ex:
            calls = [ex.submit(math.isclose, 1.0, 1.0, rel_tol=0.5),
                     ex.submit(bisect.bisect_left, [1], 1, lo=0),
                     ex.submit(zlib.compress, b"x", level=1)]
            print([f.result() for f in calls][:2] == [True, 0])
    """,
    "keyword arguments first given in workers, then a fork": """
        import bisect, os, sys, warnings
        import interpool
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads running
        # The child inherits the tuples the worker made: its exit freed them (abort).
        with interpool.Executor(1) as ex:
            ex.submit(bisect.bisect_left, [1], 1, lo=0).result()
            pid = os.fork()
            if pid == 0:
                sys.exit(0)
            print(os.waitpid(pid, 0)[1] == 0)
    """,
    "keyword arguments first given in a stdlib interpreter": """
        import interpool
        try:
            import _interpreters as low
        except ImportError:
            import _xxsubinterpreters as low
        made = low.create()
        low.run_string(made, "import math; math.isclose(1.0, 1.0, rel_tol=0.5)")
        low.destroy(made)
        print(True)
    """,
    "pool left open with queued work": """
        import sys
        from interpool import _interpool
        p = _interpool.Pool(1, sys_path=sys.path)
        tasks = [p.submit("time", "sleep", (0.01,)) for _ in range(20)]
        print(True)
    """,
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_program_exits_cleanly(name):
    # Several runs: what goes wrong at exit depends on which thread gets there first.
    for _ in range(6):
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(SCRIPTS[name])],
            capture_output=True, text=True, timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "True"
        assert proc.stderr == "", proc.stderr
