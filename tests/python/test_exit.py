"""Programs end cleanly: no hang, no fatal error, nothing printed at exit."""

import signal
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
    "interpreter left open, closed by a __del__ at exit": """
        from interpool import interpreters

        class Holder:
            def __del__(self):
                self.it.close()  # interpool closed it already: not an error then

        h = Holder()
        h.it = interpreters.create()
        h.me = h  # a cycle: collected as Python finalizes, after interpool's exit hook
        print(True)
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


# An uncaught KeyboardInterrupt ends the program by SIGINT, as CPython makes it
# (shell status 130), whatever interpool ran or closed meanwhile: CPython keeps
# that outcome in a process-wide flag that source text run in any interpreter
# (PyRun_String, exec or eval of a str) clears.
_KEYBOARD_INTERRUPT = textwrap.dedent("""
    import sys, interpool
    from interpool import interpreters

    def wait_forever(ev):
        ev.wait()

    if __name__ == "__main__":
        mode = sys.argv[1]
        if mode == "idle":  # an executor that served a task, left open
            ex = interpool.Executor(1)
            ex.submit(abs, 1).result()
        elif mode == "waiter":  # an open executor whose task waits forever
            ex = interpool.Executor(1)
            ev = interpool.Event()
            ex.submit(wait_forever, ev)
        elif mode == "interp":  # an interpreter that ran code, left open
            i = interpreters.create()
            i.exec("x = 1")
        elif mode == "shown":  # one shown, as a console shows it, and the program goes on
            import code
            ex = interpool.Executor(1)
            ex.submit(abs, 1).result()
            code.InteractiveInterpreter().runsource("raise KeyboardInterrupt")
            sys.exit(0)
        raise KeyboardInterrupt
""")


@pytest.mark.parametrize("mode", ["nothing", "idle", "waiter", "interp", "shown"])
def test_uncaught_keyboard_interrupt_ends_the_program_by_sigint(tmp_path, mode):
    script = tmp_path / "keyboard_interrupt.py"
    script.write_text(_KEYBOARD_INTERRUPT)
    proc = subprocess.run([sys.executable, str(script), mode], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    if mode == "shown":  # not uncaught: the program's own status
        assert proc.returncode == 0, proc.stderr
        return
    assert proc.returncode == -signal.SIGINT, proc.stderr
    assert proc.stderr.rstrip().endswith("KeyboardInterrupt"), proc.stderr


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


def test_an_executor_first_made_by_a_thread_after_the_main_code_ended_is_refused_clearly():
    # The first use of interpool.Executor loads concurrent.futures' thread
    # module, whose hook Python refuses then: "can't register atexit after
    # shutdown" said nothing of what happened or what to do.
    script = """
        import threading
        import interpool
        main_done = threading.Event()

        def late():
            main_done.wait()
            threading.main_thread().join()  # the main code has ended
            try:
                interpool.Executor(1)
            except RuntimeError as e:
                print(e)

        threading.Thread(target=late).start()
        main_done.set()
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("cannot load interpool.Executor after the main thread has "
                                  "ended"), proc.stdout
    assert "join this thread" in proc.stdout
