"""Stopping running work: task_timeout, Future.interrupt, terminate_workers, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import CancelledError

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import interpool  # noqa: E402
from interpool import interpreters  # noqa: E402
import executor_tasks as T  # noqa: E402
from support import asleep, wait_until  # noqa: E402


def test_task_timeout_interrupts_and_the_executor_keeps_serving(make_executor):
    ex = make_executor(1, task_timeout=0.3)
    before = ex.submit(T.interp_id).result(timeout=60)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="time limit of 0.3 s") as e:
        ex.submit(T.spin, 60).result(timeout=60)
    assert time.monotonic() - t0 < 30  # not the task's 60 s
    # The worker's traceback at the moment it was stopped.
    assert "_busy" in e.value.__cause__.traceback
    # The interruption unwound the task like any exception: the same
    # interpreter serves on, none was destroyed and made again.
    assert ex.submit(T.interp_id).result(timeout=60) == before
    assert ex.submit(T.spin, 0.01).result(timeout=60) == before


def test_a_task_that_swallows_its_interruption_gets_its_worker_replaced(make_executor):
    ex = make_executor(1, task_timeout=0.3)
    before = ex.submit(T.interp_id).result(timeout=60)
    # It catches the exception and returns: the outcome is the interruption all
    # the same (decided when it was interrupted), and the code that went on
    # after it may have left anything behind: a fresh interpreter.
    with pytest.raises(TimeoutError, match="time limit of 0.3 s"):
        ex.submit(T.spin_swallowing, 60).result(timeout=60)
    assert ex.submit(T.interp_id).result(timeout=60) != before


def test_interrupt_that_never_reached_python_code_keeps_the_interpreter(make_executor):
    # time.sleep itself is the task: no Python frame runs after the sleep returns,
    # so the exception is still pending when the task ends. True was said: the
    # outcome is the interruption; nothing was raised: the interpreter serves on.
    ex = make_executor(1)
    before = ex.submit(T.interp_id).result(timeout=60)
    f = ex.submit(time.sleep, 0.5)
    wait_until(f.running, 60, "the task to start")
    assert f.interrupt() is True
    with pytest.raises(interpool.TaskInterrupted, match="as it was ending"):
        f.result(timeout=60)
    assert ex.submit(T.interp_id).result(timeout=60) == before


def _rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_an_import_interrupted_half_way_gets_a_fresh_interpreter(make_executor, tmp_path,
                                                                monkeypatch):
    """An interruption that stops a module's top-level code (an import) leaves
    what that code set up half made (its submodules, a library's lazily built
    state): the worker gets a fresh interpreter, where the import runs again."""
    marker = tmp_path / "importing"
    monkeypatch.setenv("INTERPOOL_SLOW_IMPORT", str(marker))  # workers share the environment
    ex = make_executor(1)
    before = ex.submit(T.interp_id).result(timeout=60)
    first = ex.submit(T.import_slow_package)
    wait_until(marker.exists, 60, "the import to start")
    assert first.interrupt() is True
    with pytest.raises(interpool.TaskInterrupted):
        first.result(timeout=60)
    assert ex.submit(T.interp_id).result(timeout=60) != before
    assert ex.submit(T.imported, "slow_import_pkg.first").result(timeout=60) is False
    (tmp_path / "importing.done").write_text("")
    assert ex.submit(T.import_slow_package).result(timeout=60) == 3


@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="under AddressSanitizer (make test-asan) freed memory stays in its "
                           "quarantine: RSS says nothing of what interpool keeps")
def test_timeouts_keep_memory_flat(make_executor):
    """A bounded-memory check, not a timing test: hundreds of timeouts must not
    each leave an interpreter's worth of memory behind."""
    ex = make_executor(2, task_timeout=0.02)

    def time_out(n):
        for _ in range(n // 2):  # a pair at a time: n futures at once would raise RSS too
            for f in [ex.submit(T.spin, 60), ex.submit(T.spin, 60)]:
                with pytest.raises(TimeoutError):
                    f.result(timeout=60)

    time_out(20)  # each worker's first error capture imports traceback & co. once
    start = _rss_mib()
    for done in range(50, 301, 50):
        time_out(50)
        grown = _rss_mib() - start
        assert grown < 8, f"RSS grew {grown:.1f} MiB over {done} timeouts"


def test_timeout_benchmark_quick(tmp_path):
    """benchmarks/bench_timeouts.py runs, and writes the rows of `make bench`'s table."""
    import json

    from source_tree import ROOT

    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_timeouts.py"),
                        "--quick", "--repeat", "20", "--json", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(out.read_text())
    assert data["turnaround"]["interpreters"] == 1  # no interpreter replaced
    assert data["turnaround"]["median_ms"] > 0
    assert data["memory"]["timeouts"] == 20
    rows = {row["measure"]: row for row in data["summary"]["rows"]}
    assert rows["RSS growth over 20 timeouts, MiB"]["verdict"] in ("met", "MISSED")
    assert float(rows["timeout turnaround: deadline to next task, ms"]["values"]["stdlib"]) > 0


def test_interrupt_true_means_the_task_ends_interrupted(make_executor):
    """interrupt() of tasks about to finish: True decides the outcome (never a
    result after True); False leaves the task's own outcome."""
    import random

    rng = random.Random(15)
    ex = make_executor(2)
    ex.submit(T.spin, 0).result(timeout=60)
    true_then_result = []
    decided = 0
    for i in range(300):
        f = ex.submit(T.spin, 0.005)
        if i % 2:  # once it runs: the race with its end
            give_up = time.monotonic() + 60
            while not (f.running() or f.done()):
                assert time.monotonic() < give_up, "the task did not start"
        end = time.monotonic() + rng.uniform(0, 0.006)
        while time.monotonic() < end:
            pass
        interrupted = f.interrupt()
        error = f.exception(timeout=60)
        if interrupted:
            decided += 1
            if not isinstance(error, interpool.TaskInterrupted):
                true_then_result.append((i, error if error else f.result()))
        else:
            assert error is None
    assert true_then_result == []
    assert decided > 0, "no interrupt() came while a task ran: the race was not run"


def test_task_timeout_applies_to_each_map_item(make_executor):
    ex = make_executor(1, task_timeout=0.5)
    assert ex.submit(T.square, 2).result(timeout=60) == 4  # the import is done
    # One chunk of 12 items of 0.1 s: 1.2 s in all, each item well under the limit.
    assert len(list(ex.map(T.spin, [0.1] * 12, chunksize=12))) == 12
    with pytest.raises(TimeoutError):
        list(ex.map(T.spin, [0.01, 0.01, 60], chunksize=3))
    assert list(ex.map(T.square, range(5))) == [0, 1, 4, 9, 16]


def test_task_timeout_checked():
    with pytest.raises(ValueError, match="task_timeout must be > 0"):
        interpool.Executor(1, task_timeout=0)
    with pytest.raises(TypeError, match="task_timeout must be a number"):
        interpool.Executor(1, task_timeout="5")


def test_future_interrupt(make_executor, tmp_path):
    ex = make_executor(1)
    started = tmp_path / "started"
    running = ex.submit(T.spin_started, str(started), 60)
    queued = ex.submit(T.add, 1, 2)
    wait_until(started.exists, 60, "the task to start")
    assert queued.interrupt() is False  # not running: cancel() is for that
    assert running.interrupt() is True
    with pytest.raises(interpool.TaskInterrupted, match="interrupted while it ran") as e:
        running.result(timeout=60)
    assert "_busy" in e.value.__cause__.traceback
    assert queued.result(timeout=60) == 3
    assert running.interrupt() is False  # over


def test_a_task_catches_the_one_TaskInterrupted_its_caller_sees(make_executor, tmp_path):
    # One class: `except interpool.TaskInterrupted` in the task's code catches
    # its interruption, which is a BaseException (`except Exception` there does
    # not stop it), and the caller sees the same class.
    assert issubclass(interpool.TaskInterrupted, BaseException)
    assert not issubclass(interpool.TaskInterrupted, Exception)
    ex = make_executor(1)
    q = interpreters.create_queue()
    started = tmp_path / "started"
    running = ex.submit(T.spin_catching_interruption, str(started), q)
    wait_until(started.exists, 60, "the task to start")
    assert running.interrupt() is True
    with pytest.raises(interpool.TaskInterrupted):
        running.result(timeout=60)
    assert q.get_nowait() is True, "the task's except clause did not catch its interruption"


@pytest.mark.parametrize("running_how", ["running Python", "asleep in a queue get"])
def test_terminate_workers_stops_everything_now(make_executor, tmp_path, running_how):
    ex = make_executor(2)
    q = interpreters.create_queue()
    marks = [tmp_path / f"s{i}" for i in range(2)]
    if running_how == "running Python":
        running = [ex.submit(T.spin_started, str(m), 60) for m in marks]
    else:
        running = [ex.submit(T.block_on, "queue", q, str(m)) for m in marks]
    pending = [ex.submit(T.spin, 60) for _ in range(5)]
    for m in marks:
        wait_until(m.exists, 60, "both tasks to start")
    t0 = time.monotonic()
    ex.terminate_workers()
    assert time.monotonic() - t0 < 30
    for f in running:
        with pytest.raises(interpool.TaskInterrupted):
            f.result(timeout=0)
    for f in pending:
        assert f.cancelled()
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(T.add, 1, 1)
    # The queue still works for everyone else: the interrupted gets took nothing.
    q.put(1)
    assert q.get(timeout=5) == 1


CTRL_C_SCRIPT = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {here!r})
    import interpool, executor_tasks as T
    if __name__ == "__main__":
        mode, started = sys.argv[1], sys.argv[2]
        # each task creates its file in `started` once it runs
        paths = [os.path.join(started, str(i)) for i in range(6)]
        with interpool.Executor(2) as ex:
            futs = []
            try:
                if mode == "map":
                    print("waiting", flush=True)
                    list(ex.map(T.spin_started, paths, [60] * 6, chunksize=1))
                else:
                    futs = [ex.submit(T.spin_started, path, 60) for path in paths]
                    print("waiting", flush=True)
                    futs[0].result()
            except KeyboardInterrupt:
                print("interrupted", flush=True)
                raise
            finally:
                print("states", sorted(
                    "cancelled" if f.cancelled() else type(f.exception(timeout=30)).__name__
                    for f in futs), flush=True)
""")


@pytest.mark.parametrize("mode", ["map", "result"])
def test_ctrl_c_while_waiting_stops_the_work_and_exits(tmp_path, mode):
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_SCRIPT.format(here=HERE))
    started = tmp_path / "started"
    started.mkdir()
    proc = subprocess.Popen([sys.executable, str(script), mode, str(started)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "waiting\n"
        # Ctrl-C only once both workers are inside their 60 s tasks
        wait_until(lambda: len(os.listdir(started)) >= 2, 30, "both workers to start a task")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert time.monotonic() - t0 < 30
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err
    lines = out.splitlines()
    assert "interrupted" in lines
    if mode == "result":
        # Every future ended: the two running ones interrupted, the rest cancelled.
        assert lines[-1] == "states " + str(["TaskInterrupted"] * 2 + ["cancelled"] * 4)


# ---------------------------------------------------------------------------
# Tasks asleep in an interpool wait (queue, lock, event, barrier, semaphore)
# ---------------------------------------------------------------------------

BLOCKERS = ["queue", "lock", "event", "barrier", "semaphore"]


def blocker(kind):
    """An interpool object whose wait (block_on) never ends by itself."""
    if kind == "queue":
        return interpreters.create_queue()
    if kind == "lock":
        lock = interpool.Lock()
        lock.acquire()
        return lock
    if kind == "event":
        return interpool.Event()
    if kind == "barrier":
        return interpool.Barrier(2)
    return interpool.Semaphore(0)


@pytest.mark.parametrize("kind", BLOCKERS)
def test_task_timeout_ends_a_wait_on_an_interpool_object(make_executor, kind):
    ex = make_executor(1, task_timeout=0.3)
    # The worker's first task imports executor_tasks, which counts against the
    # limit (slow under ASan): the timed task must be the worker's second.
    assert ex.submit(T.add, 1, 1).result(timeout=60) == 2
    obj = blocker(kind)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="time limit of 0.3 s") as e:
        ex.submit(T.block_on, kind, obj).result(timeout=60)
    assert time.monotonic() - t0 < 30
    assert "block_on" in e.value.__cause__.traceback
    assert ex.submit(T.add, 2, 3).result(timeout=60) == 5


@pytest.mark.parametrize("kind", ["queue", "lock"])
def test_interrupt_ends_a_wait_and_later_waits_of_the_task(make_executor, tmp_path, kind):
    ex = make_executor(1)
    started = tmp_path / "started"
    # The task catches the first interruption and waits again: that wait ends
    # at once as well, so an interrupted task cannot fall asleep for good.
    fut = ex.submit(T.block_then_report, kind, blocker(kind), str(started))
    wait_until(started.exists, 60, "the task to start")
    # The worker's interpreter has no other thread: asleep, the task waits.
    wait_until(lambda: asleep(int(started.read_text())), what="the task to block in its wait")
    assert fut.interrupt() is True
    with pytest.raises(interpool.TaskInterrupted):
        fut.result(timeout=60)
    assert ex.submit(T.add, 1, 1).result(timeout=60) == 2


EXIT_SCRIPT = textwrap.dedent("""
    import sys, threading, time
    sys.path.insert(0, {here!r})
    import interpool, executor_tasks as T
    from interpool import interpreters

    def report(name):
        def done(f):
            e = f.exception()
            print(name, "ok" if e is None else type(e).__name__, flush=True)
        return done

    if __name__ == "__main__":
        mode = sys.argv[1]
        ex = interpool.Executor(2)  # left open: the program just ends
        q = interpreters.create_queue()
        if mode == "alone":
            ex.submit(T.block_on, "queue", q).add_done_callback(report("consumer"))
        elif mode == "thread feeds":
            # A non-daemon thread puts after the main thread has ended.
            ex.submit(T.block_on, "queue", q).add_done_callback(report("consumer"))
            threading.Thread(target=lambda: (time.sleep(0.5), q.put(7))).start()
        elif mode == "task feeds":
            # One task waits for another that sleeps, puts, then waits forever.
            other = interpreters.create_queue()
            ex.submit(T.block_on, "queue", q).add_done_callback(report("consumer"))
            ex.submit(T.sleep_put_then_block, 0.5, q, 7, other).add_done_callback(
                report("producer"))
        elif mode == "another executor busy":
            # One executor's worker waits with a task queued behind it; another
            # executor's task runs a while and ends: its idle worker, nor `ex`'s
            # two, must not count as one that could take the queued task (the
            # program hung).
            one = interpool.Executor(1)
            for _ in range(2):
                one.submit(T.block_on, "queue", q).add_done_callback(report("consumer"))
            interpool.Executor(1).submit(T.sleep_then, 0.5, 1).add_done_callback(report("sleeper"))
        elif mode == "queued behind":
            # Both workers wait; a third task waits its turn behind them (the
            # program hung: the queued task counted as one not asleep).
            for _ in range(3):
                ex.submit(T.block_on, "queue", q).add_done_callback(report("consumer"))
        print("main done", flush=True)
""")


@pytest.mark.parametrize("mode, expected", [
    ("alone", ["consumer TaskInterrupted"]),
    ("queued behind", ["consumer TaskInterrupted"] * 3),
    ("another executor busy", ["consumer TaskInterrupted"] * 2 + ["sleeper ok"]),
    ("thread feeds", ["consumer ok"]),
    ("task feeds", ["consumer ok", "producer TaskInterrupted"]),
])
def test_program_ending_while_tasks_wait_forever_exits(tmp_path, mode, expected):
    script = tmp_path / "exit_blocked.py"
    script.write_text(EXIT_SCRIPT.format(here=HERE))
    r = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True,
                       timeout=90)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "main done"
    assert sorted(lines[1:]) == expected, r.stdout + r.stderr
    assert r.stderr == ""


LEFT_WAITING_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {here!r})
    import interpool, executor_tasks as T
    from interpool import interpreters

    if __name__ == "__main__":
        mode = sys.argv[1]
        ex = interpool.Executor(1)
        for on in ("event", "lock"):
            error = ex.submit(T.leave_waiting_thread, on).exception(timeout=60)
            print(type(error).__name__, "waits-forever" in str(error), flush=True)
            # A fresh worker serves at once: its predecessor's thread is not waited for.
            print(ex.submit(T.add, 2, 3).result(timeout=60), flush=True)
        print(sum(ex.map(abs, range(-5, 0))), flush=True)
        if mode == "shutdown":
            ex.shutdown(wait=True)  # does not wait for those threads either
            print("shut down", flush=True)
        print("main done", flush=True)
        if mode == "exit 3":
            sys.exit(3)
""")


@pytest.mark.parametrize("mode, code", [("left open", 0), ("shutdown", 0), ("exit 3", 3)])
def test_threads_a_task_leaves_waiting_forever_hold_neither_worker_nor_exit(tmp_path, mode, code):
    # A thread blocked with no timeout never sees the interruption. Its worker
    # was to be replaced, but the replacement waited for the old interpreter to
    # close, which waited for the thread: the worker was gone for good, and the
    # program hung at exit.
    script = tmp_path / "left_waiting.py"
    script.write_text(LEFT_WAITING_SCRIPT.format(here=HERE))
    r = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True,
                       timeout=90)
    assert r.returncode == code, (r.stdout, r.stderr)
    expected = ["RuntimeError True", "5"] * 2 + ["15"]
    expected += ["shut down"] if mode == "shutdown" else []
    assert r.stdout.splitlines() == expected + ["main done"], r.stderr
    assert r.stderr == ""


LEFT_THEN_ENDS_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {here!r})
    import interpool, executor_tasks as T
    from support import wait_until
    from interpool import interpreters

    if __name__ == "__main__":
        ex = interpool.Executor(1)
        before = len(interpreters.list_all())
        old = ex.submit(T.interp_id).result(timeout=60)
        event = interpool.Event()
        error = ex.submit(T.leave_waiting_thread, "shared", event).exception(timeout=60)
        print(type(error).__name__, ex.submit(T.add, 2, 3).result(timeout=60))
        print("kept", len(interpreters.list_all()) - before)  # the old one, for its thread
        # Still a worker's: it says so, and the API leaves it to the pool.
        kept = interpreters.Interpreter(old)
        print(kept.whence)
        try:
            kept.close()
        except interpreters.InterpreterError as e:
            print("refused:", "is a worker of an interpool pool" in str(e))
        event.set()  # the thread ends (raising the interruption it was sent)
        ex.shutdown(wait=True)

        def closed():
            # A pool's shutdown closes those whose threads have ended.
            interpool.Executor(1).shutdown(wait=True)
            return len(interpreters.list_all()) == before - 1  # the worker is gone too

        wait_until(closed, 60, "the old interpreter to close")
        print("closed")
""")


def test_the_interpreter_of_threads_a_task_left_closes_once_they_end(tmp_path):
    script = tmp_path / "left_then_ends.py"
    script.write_text(LEFT_THEN_ENDS_SCRIPT.format(here=HERE))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=90)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.splitlines() == ["RuntimeError 5", "kept 1", "interpool worker",
                                     "refused: True", "closed"], r.stderr
    # The thread met the interruption interpool sent it when its wait ended.
    assert "TaskInterrupted" in r.stderr


OS_EXIT_SCRIPT = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {here!r})
    import interpool, executor_tasks as T

    def show(f):
        e = f.exception(timeout=60)
        return f"ok {{f.result()}}" if e is None else f"{{type(e).__name__}}: {{e}}"

    if __name__ == "__main__":
        with interpool.Executor(1) as ex:
            first = ex.submit(T.interp_id).result(timeout=60)
            # An atexit handler of the worker's interpreter: os._exit skips it, as in a process.
            ex.submit(T.register_atexit_print, "the worker's atexit handler ran").result(timeout=60)
            error = ex.submit(os._exit, 5).exception(timeout=60)
            print(show(ex.submit(os._exit, 5)))
            print(type(error.__cause__).__name__, "os._exit" in error.__cause__.traceback)
            second = ex.submit(T.interp_id).result(timeout=60)
            print("replaced", second != first)
            print(show(ex.submit(T.exit_worker, 6)))
            third = ex.submit(T.interp_id).result(timeout=60)
            print("replaced", third != second)
            print(show(ex.submit(T.exit_swallowed, 7)))
            print("replaced", ex.submit(T.interp_id).result(timeout=60) != third)
            try:
                list(ex.map(T.exit_worker, [8]))
            except interpool.WorkerExited as e:
                print("map", e)
            print(show(ex.submit(T.exit_in_thread, 9)))
            print(sum(ex.map(abs, range(-5, 0))))
        print("main done")
""")


def test_os_exit_in_a_task_ends_its_worker_not_the_program(tmp_path):
    # os._exit calls C _exit: in a worker interpreter it ended the whole program,
    # silently, with that status, and every other result was lost.
    script = tmp_path / "os_exit.py"
    script.write_text(OS_EXIT_SCRIPT.format(here=HERE))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=90)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    said = ("the task called os._exit({}) in a worker interpreter: that ends the worker, not the "
            "process, and interpool replaced the worker by a fresh interpreter")
    assert r.stdout.splitlines() == [
        f"WorkerExited: {said.format(5)}",
        "RemoteError True",  # the worker's traceback shows where it was called
        "replaced True",
        f"WorkerExited: {said.format(6)}",  # `except Exception` in the task does not stop it
        "replaced True",
        f"WorkerExited: {said.format(7)}",  # swallowed (`except BaseException`): all the same
        "replaced True",
        f"map {said.format(8)}",
        "ok thread ended",  # on a thread the task started, it ends that thread
        "15",
        "main done",
    ], r.stderr
    assert r.stderr == ""


NESTED_EXIT_SCRIPT = textwrap.dedent("""
    import os
    import interpool

    def inner():
        import atexit
        atexit.register(print, "the worker's atexit handler ran", flush=True)
        ex = interpool.Executor(1)  # an executor of the worker's own
        status = ex.submit(abs, -3).result()
        os._exit(status)

    if __name__ == "__main__":
        with interpool.Executor(1) as ex:
            print(type(ex.submit(inner).exception(timeout=60)).__name__, flush=True)
            print(ex.submit(abs, -1).result(timeout=60), flush=True)
        print("main done", flush=True)
""")


def test_os_exit_in_a_task_that_made_an_executor(tmp_path):
    # The worker's interpreter ends without the task's atexit handlers but with
    # interpool's own, and the executor the task made ends quietly (its result
    # thread, interrupted with the task's other threads, printed a traceback).
    script = tmp_path / "nested_exit.py"
    script.write_text(NESTED_EXIT_SCRIPT)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert r.stdout.splitlines() == ["WorkerExited", "1", "main done"]
    assert r.stderr == ""


def test_os_exit_in_an_interpreter_made_by_create_ends_the_process(tmp_path):
    # As in the standard library's interpreters: their code runs on the caller's
    # thread, as if the caller had called it.
    script = tmp_path / "os_exit_create.py"
    script.write_text(textwrap.dedent("""
        from interpool import interpreters
        interp = interpreters.create()
        interp.exec("import os; os._exit(7)")
        print("not reached")
    """))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=90)
    assert (r.returncode, r.stdout) == (7, "")


def test_task_leaving_a_thread_running_fails_and_the_worker_is_replaced(make_executor):
    ex = make_executor(1)
    before = ex.submit(T.interp_id).result(timeout=60)
    assert ex.submit(T.leave_thread, 0.01, joined=True).result(timeout=60) == "returned"
    assert ex.submit(T.interp_id).result(timeout=60) == before  # joined: nothing to replace
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"leaving 1 thread\(s\) running .*left-behind.*join"):
        ex.submit(T.leave_thread, 60).result(timeout=60)
    after = ex.submit(T.interp_id).result(timeout=60)
    assert time.monotonic() - t0 < 30  # the thread was interrupted, not waited for
    assert after != before
