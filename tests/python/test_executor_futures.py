"""interpool.Executor futures: cancellation, shutdown, concurrent.futures.wait and
as_completed, callbacks, the context manager, and how task errors come back."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from concurrent.futures import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    BrokenExecutor,
    CancelledError,
    ThreadPoolExecutor,
    as_completed,
    wait,
)

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import interpool  # noqa: E402
import executor_tasks as T  # noqa: E402
from support import Gates, block_in, run_script, wait_until  # noqa: E402




@pytest.fixture
def gates(tmp_path):
    g = Gates(tmp_path)
    yield g
    g.open()  # never leave a blocked worker behind


@pytest.fixture
def make_executor(gates):
    made = []

    def factory(*args, **kwargs):
        e = interpool.Executor(*args, **kwargs)
        made.append(e)
        return e

    yield factory
    gates.open()
    for e in made:
        e.shutdown(wait=True, cancel_futures=True)


def read_lines(path):
    try:
        with open(path) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


def outcome(fut):
    """('ok', result) / ('cancelled',) / ('error', type name) of a done future."""
    assert fut.done()
    if fut.cancelled():
        return ("cancelled",)
    exc = fut.exception(timeout=0)
    return ("ok", fut.result(timeout=0)) if exc is None else ("error", type(exc).__name__)


# ---------------------------------------------------------------------------
# Future basics
# ---------------------------------------------------------------------------


def test_result_timeout_and_running(make_executor, gates):
    e = make_executor(1)
    f = gates.blocker(e, "done")
    gates.wait_started(1)
    assert f.running() and not f.done()
    with pytest.raises(TimeoutError):
        f.result(timeout=0.05)
    with pytest.raises(TimeoutError):
        f.exception(timeout=0.05)
    gates.open()
    assert f.result(timeout=30) == "done"
    assert f.done() and not f.running() and not f.cancelled()
    assert f.cancel() is False  # finished: cannot be cancelled


# Each test of a concurrent.futures contract runs on interpool's executor and on
# the standard library's thread pool, to show that the two agree.
EXECUTORS = {"interpool": lambda: interpool.Executor(1), "threads": lambda: ThreadPoolExecutor(1)}


@pytest.fixture(params=sorted(EXECUTORS))
def any_executor(request):
    e = EXECUTORS[request.param]()
    yield e
    e.shutdown(wait=True, cancel_futures=True)


def test_future_repr_is_that_of_every_executor(any_executor, gates):
    done = any_executor.submit(T.add, 20, 22)
    assert done.result(timeout=30) == 42
    assert type(done).__name__ == "Future"
    assert re.fullmatch(r"<Future at 0x[0-9a-f]+ state=finished returned int>", repr(done))
    failed = any_executor.submit(T.raise_value_error, "bad")
    assert failed.exception(timeout=30) is not None
    assert re.fullmatch(r"<Future at 0x[0-9a-f]+ state=finished raised ValueError>", repr(failed))
    running = gates.blocker(any_executor, "x")
    gates.wait_started(1)
    assert re.fullmatch(r"<Future at 0x[0-9a-f]+ state=running>", repr(running))
    queued = any_executor.submit(T.add, 1, 1)  # behind the running one: the only worker is busy
    assert re.fullmatch(r"<Future at 0x[0-9a-f]+ state=pending>", repr(queued))
    assert queued.cancel()
    assert re.fullmatch(r"<Future at 0x[0-9a-f]+ state=cancelled>", repr(queued))
    gates.open()
    assert running.result(timeout=30) == "x"


def test_an_exception_false_in_a_boolean_context_is_raised(ex):
    # Future.result of Python 3.12 and 3.13 returned None for it.
    fut = ex.submit(T.raise_falsey, 1)
    with pytest.raises(T.FalseyError):
        fut.result()
    assert isinstance(fut.exception(), T.FalseyError)
    with pytest.raises(T.FalseyError):
        list(ex.map(T.raise_falsey, [1, 2]))
    with pytest.raises(T.FalseyError):
        list(ex.map_unordered(T.raise_falsey, [1, 2]))


def test_done_callbacks(ex):
    seen = []
    event = threading.Event()

    def callback(fut):
        seen.append(fut.result())
        event.set()

    f = ex.submit(T.add, 20, 22)
    f.add_done_callback(callback)
    assert event.wait(30)
    assert seen == [42]
    # Added after completion: called at once.
    f.add_done_callback(lambda fut: seen.append("late"))
    assert seen == [42, "late"]


def test_a_callback_raising_systemexit_on_the_result_thread_is_reported(ex, caplog):
    """A done-callback that raises what Future lets through (SystemExit), run
    by the result thread: logged as other callback errors are, the future's
    later callbacks run, and later futures still complete (it ended the result
    thread, and wait() never saw them done)."""
    started, go = interpool.Event(), interpool.Event()
    seen = []

    def leave(fut):
        raise SystemExit("from a callback")

    f = ex.submit(T.signal_then_wait, 0, started, go)
    assert started.wait(30)
    f.add_done_callback(leave)  # the task runs: its end is the result thread's to settle
    f.add_done_callback(lambda fut: seen.append(fut.result()))
    go.set()
    done, _ = wait([f], timeout=30)
    assert done == {f}
    wait_until(lambda: seen == [0], what="the callback after the one that raised")
    later = [ex.submit(T.sleep_then, 0.05, i) for i in range(4)]
    done, not_done = wait(later, timeout=30)
    assert not not_done
    assert [r for r in caplog.records if "exception calling callback" in r.getMessage()
            and r.exc_info and r.exc_info[0] is SystemExit]


def test_submit_from_a_done_callback(ex):
    chained = []
    event = threading.Event()

    def callback(fut):
        chained.append(ex.submit(T.square, fut.result()))
        event.set()

    ex.submit(T.add, 2, 3).add_done_callback(callback)
    assert event.wait(30)
    assert chained[0].result(timeout=30) == 25


def test_shutdown_wait_from_a_done_callback_does_not_deadlock(make_executor):
    e = make_executor(1)
    done = threading.Event()
    errors = []

    def callback(fut):
        try:
            e.shutdown(wait=True)
        except BaseException as exc:  # reported below
            errors.append(exc)
        done.set()

    e.submit(T.add, 1, 1).add_done_callback(callback)
    assert done.wait(30), "shutdown(wait=True) in a done callback hung"
    assert errors == []
    with pytest.raises(RuntimeError):
        e.submit(T.add, 1, 1)


def test_shutdown_from_a_signal_handler_while_the_main_thread_waits_for_a_result():
    # The handler ran inside result()'s wait, which had claimed the task's
    # outcome, and waited for the result thread, which waited for that outcome:
    # a hang. (In a child: the signal goes to the main thread once it waits.)
    proc = run_script("""
        import signal, sys, threading, time
        import interpool

        def work(go):
            go.wait(30)
            return "done"

        go = interpool.Event()
        ex = interpool.Executor(1)
        fut = ex.submit(work, go)

        def handler(*_):
            go.set()
            ex.shutdown()

        signal.signal(signal.SIGUSR1, handler)
        main = threading.get_ident()

        def when_main_waits():
            while True:
                frame, names = sys._current_frames().get(main), []
                while frame is not None:
                    names.append(frame.f_code.co_name)
                    frame = frame.f_back
                if "_settle_here" in names:
                    break
                time.sleep(0.001)
            signal.pthread_kill(main, signal.SIGUSR1)

        threading.Thread(target=when_main_waits).start()
        print(fut.result())
    """, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "done\n"


def test_a_task_that_shuts_its_executor_down_through_the_main_interpreter_is_refused(tmp_path):
    # shutdown(wait=True) there waited for the task that called it: a hang.
    path = tmp_path / "prog.py"
    path.write_text(textwrap.dedent("""
        import interpool
        from interpool import interpreters

        EX = None

        def shut_down(wait):
            try:
                EX.shutdown(wait=wait)
                return "shut"
            except RuntimeError as e:
                return str(e)

        def task(wait):
            return interpreters.get_main().call(shut_down, wait)

        if __name__ == "__main__":
            EX = interpool.Executor(1)
            print(EX.submit(task, True).result(timeout=30))
            try:
                EX.submit(task, True)
            except RuntimeError as e:
                print(e)
            EX = interpool.Executor(1)
            print(EX.submit(task, False).result(timeout=30))
    """))
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("cannot wait for an executor to shut down in one of its own tasks")
    assert lines[1:] == ["cannot schedule new futures after shutdown", "shut"]


def test_sys_current_frames_lists_this_interpreters_threads_while_workers_run():
    # CPython's walks every interpreter's threads and makes objects of their
    # frames here while they run: the process crashed (free(): invalid pointer).
    proc = run_script("""
        import sys, threading
        import interpool

        def spin(n):
            total = 0
            for i in range(n):
                total += i
            return threading.get_ident()

        with interpool.Executor(2) as ex:
            futs = [ex.submit(spin, 2_000_000) for _ in range(4)]
            seen = set()
            while not all(f.done() for f in futs):
                seen |= set(sys._current_frames())
                sys._current_exceptions()
            workers = {f.result() for f in futs}
        print(threading.get_ident() in seen, seen & workers == set())
    """, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "True True\n"


def test_sys_current_exceptions_maps_each_thread_of_this_interpreter_as_cpython_does():
    started, go = threading.Event(), threading.Event()
    t = threading.Thread(target=lambda: (started.set(), go.wait(30)))
    t.start()
    started.wait(30)
    try:
        assert sys._current_exceptions is interpool._interpool._current_exceptions
        got = sys._current_exceptions()
        assert got[t.ident] is None and got[threading.get_ident()] is None
        try:
            raise ValueError("handled now")
        except ValueError as e:
            assert sys._current_exceptions()[threading.get_ident()] is e
        assert set(sys._current_frames()) >= {t.ident, threading.get_ident()}
    finally:
        go.set()
        t.join()


def test_wait_and_as_completed(ex, gates):
    futures = [ex.submit(T.sleep_then, 0.05 * (i % 3), i) for i in range(12)]
    done, not_done = wait(futures, timeout=30, return_when=ALL_COMPLETED)
    assert done == set(futures) and not not_done
    assert sorted(f.result() for f in as_completed(futures, timeout=30)) == list(range(12))

    # The slow tasks wait for the gate, opened only once both wait() calls returned:
    # however busy the machine, the fast and the failing task end first.
    slow = gates.blocker(ex, "slow")
    fast = ex.submit(T.sleep_then, 0.0, "fast")
    done, not_done = wait([slow, fast], timeout=30, return_when=FIRST_COMPLETED)
    assert fast in done and slow in not_done

    bad = ex.submit(T.raise_value_error, "bad")
    slow2 = gates.blocker(ex, "slow2")
    done, not_done = wait([bad, slow2], timeout=30, return_when=FIRST_EXCEPTION)
    assert bad in done and slow2 in not_done

    # as_completed gives the fast one while the slow one still waits for the gate
    # (opened after: a slow task done before the call would come in any order).
    in_order = as_completed([slow, fast], timeout=30)
    assert next(in_order).result() == "fast"
    gates.open()
    assert next(in_order).result() == "slow"
    assert slow2.result(timeout=30) == "slow2"


# ---------------------------------------------------------------------------
# Cancellation
# ---------------------------------------------------------------------------


def test_cancel_queued_futures_they_never_run(make_executor, gates, tmp_path):
    e = make_executor(2)
    log = str(tmp_path / "ran.txt")
    blockers = [gates.blocker(e, f"b{i}") for i in range(2)]
    gates.wait_started(2)
    queued = [e.submit(T.append_line, log, f"q{i}") for i in range(10)]

    # Running futures cannot be cancelled.
    assert all(b.running() for b in blockers)
    assert [b.cancel() for b in blockers] == [False, False]
    assert not any(b.cancelled() for b in blockers)

    cancelled, kept = queued[::2], queued[1::2]
    assert [f.cancel() for f in cancelled] == [True] * 5
    for f in cancelled:
        assert f.cancelled() and f.done() and not f.running()
        with pytest.raises(CancelledError):
            f.result(timeout=0)
    gates.open()
    assert [b.result(timeout=30) for b in blockers] == ["b0", "b1"]
    assert [f.result(timeout=30) for f in kept] == [f"q{i}" for i in range(1, 10, 2)]
    # As with concurrent.futures, wait / as_completed count a cancelled future as
    # done once the executor has passed it in its queue (here: the queue is empty).
    done, not_done = wait(queued, timeout=10)
    assert done == set(queued) and not not_done
    assert set(as_completed(queued, timeout=10)) == set(queued)
    e.shutdown(wait=True)
    assert sorted(read_lines(log)) == sorted(f"q{i}" for i in range(1, 10, 2))
    assert all(f.cancelled() for f in cancelled)


def test_cancel_callbacks_and_all_futures_end(make_executor, gates):
    e = make_executor(1)
    blocker = gates.blocker(e)
    gates.wait_started(1)
    f = e.submit(T.add, 1, 2)
    called = []
    f.add_done_callback(lambda fut: called.append(fut.cancelled()))
    assert f.cancel()
    assert called == [True]
    gates.open()
    blocker.result(timeout=30)
    e.shutdown(wait=True)
    assert f.cancelled()


def test_cancel_wakes_a_thread_waiting_in_result(make_executor, gates):
    # result() waits on the engine task itself: cancel() from another thread must
    # end that wait now, not when a worker reaches the cancelled task.
    e = make_executor(1)
    blocker = gates.blocker(e)
    gates.wait_started(1)
    f = e.submit(T.add, 1, 2)
    t = block_in(f.result, timeout=60)
    assert not t.outcome
    assert f.cancel()
    t.join(10)
    assert not t.is_alive()  # the worker is still busy with the blocker
    assert len(t.outcome) == 1 and isinstance(t.outcome[0], CancelledError)
    assert not blocker.done()
    gates.open()
    assert blocker.result(timeout=30) is not None


def test_results_waited_from_many_threads_each_settled_once(make_executor):
    # Threads waiting in result() and the result thread race to claim each
    # outcome: every future ends once, with its own value, and callbacks run once.
    e = make_executor(2)
    futs = [e.submit(T.square, i) for i in range(400)]
    calls = []
    for f in futs:
        f.add_done_callback(lambda fut: calls.append(fut.result()))
    out = [None] * len(futs)

    def take(part):
        for i in range(part, len(futs), 4):
            out[i] = futs[i].result(timeout=60)

    threads = [threading.Thread(target=take, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert out == [i * i for i in range(400)]
    assert sorted(calls) == sorted(i * i for i in range(400))
    assert all(f.exception(timeout=0) is None for f in futs)


def test_cancel_twice_returns_true(make_executor, gates):
    e = make_executor(1)
    gates.blocker(e)
    gates.wait_started(1)
    f = e.submit(T.add, 1, 2)
    assert f.cancel() is True
    assert f.cancel() is True


def test_map_chunks_cancelled_when_iterator_closed(make_executor, gates, tmp_path):
    """Closing a map iterator withdraws the chunks no worker has started."""
    e = make_executor(1)
    log = str(tmp_path / "ran.txt")
    # Item 0 runs at once, item 1 blocks the only worker, items 2.. wait in the queue.
    started = str(tmp_path / "started")
    items = [("", log, "0", ""), (gates.gate, log, "1", started)]
    items += [("", log, str(i), "") for i in range(2, 20)]
    it = e.starmap(T.gated_append, items, chunksize=1)
    assert next(it) == "0"
    wait_until(lambda: os.path.exists(started), 30, "item 1 to start")
    it.close()
    gates.open()
    e.shutdown(wait=True)
    assert read_lines(log) == ["0", "1"]


def test_map_iterator_never_started_is_not_cancelled(make_executor, tmp_path):
    """Like concurrent.futures: closing a map iterator before its first next() does
    not cancel anything (the generator's cleanup never ran); all inputs run."""
    e = make_executor(1)
    log = str(tmp_path / "ran.txt")
    it = e.map(T.append_line, [log] * 5, [str(i) for i in range(5)], chunksize=1)
    it.close()
    e.shutdown(wait=True)
    assert sorted(read_lines(log)) == [str(i) for i in range(5)]


@pytest.mark.parametrize("chunksize", [1, 4])
def test_map_keeps_no_reference_to_a_result_it_yielded(any_executor, chunksize):
    """Once map() has handed a result over, the caller's `del` frees it: the
    iterator keeps no reference to it (the chunk's other results may wait)."""
    seen = 0
    for token in any_executor.map(T.make_token, range(10), chunksize=chunksize):
        ref = weakref.ref(token)
        del token
        assert ref() is None, "map() still refers to a result it yielded"
        seen += 1
    assert seen == 10


def test_chunk_items_pops_each_list_and_closes_its_source():
    """map()'s iterator (ChunkItems): items of each list from its end, empty lists
    skipped; a source that yields something else is named; an error of the
    source reaches the caller and ends the iteration; close() closes the source
    (map's generator cancels its pending chunks then)."""
    from interpool import _interpool

    closed = []

    def source(*lists, error=None):
        try:
            yield from lists
            if error is not None:
                raise error
        finally:
            closed.append(len(lists))

    it = _interpool.ChunkItems(source([3, 2, 1], [], [5, 4], (6,)))
    assert iter(it) is it
    assert [next(it) for _ in range(5)] == [1, 2, 3, 4, 5]
    with pytest.raises(TypeError, match="the source yielded tuple, not a list"):
        next(it)
    del it  # an iterator dropped half way closes its source
    assert closed == [4]

    it = _interpool.ChunkItems(source([1], error=ValueError("lost")))
    assert next(it) == 1
    with pytest.raises(ValueError, match="lost"):
        next(it)
    assert list(it) == []

    it = _interpool.ChunkItems(source([2, 1], [3]))
    assert next(it) == 1
    assert closed == [4, 1]
    it.close()
    assert closed == [4, 1, 2]
    assert list(it) == []
    it.close()  # again: nothing to do
    with pytest.raises(TypeError):
        _interpool.ChunkItems(5)


def test_chunk_items_refuses_next_and_close_while_its_source_runs():
    """While map()'s iterator waits in its source for a chunk, a next() or
    close() from another thread, or from the source itself, gets ValueError (as
    a generator's would) and the waiting caller still gets every item."""
    import threading

    from interpool import _interpool

    waiting, go = threading.Event(), threading.Event()
    inner = []

    def source():
        yield [2, 1]
        try:
            next(it)  # the source calling back into its own iterator
        except ValueError as e:
            inner.append(str(e))
        waiting.set()
        go.wait()
        yield [4, 3]

    it = _interpool.ChunkItems(source())
    got = []
    consumer = threading.Thread(target=lambda: got.extend(it))
    consumer.start()
    assert waiting.wait(30)
    with pytest.raises(ValueError, match="already executing"):
        it.close()
    with pytest.raises(ValueError, match="already executing"):
        next(it)
    go.set()
    consumer.join(30)
    assert got == [1, 2, 3, 4]
    assert inner == ["ChunkItems already executing"]


def test_map_unordered_keeps_no_reference_to_a_result_it_yielded(ex):
    for token in ex.map_unordered(T.make_token, range(10), chunksize=4):
        ref = weakref.ref(token)
        del token
        assert ref() is None, "map_unordered() still refers to a result it yielded"


def test_amap_keeps_no_reference_to_a_result_it_yielded(ex):
    async def main():
        async for token in ex.amap(T.make_token, range(10), chunksize=4):
            ref = weakref.ref(token)
            del token
            assert ref() is None, "amap() still refers to a result it yielded"

    asyncio.run(main())


# ---------------------------------------------------------------------------
# Shutdown
# ---------------------------------------------------------------------------


def test_shutdown_wait_false_returns_promptly_and_tasks_complete(make_executor, gates):
    e = make_executor(2)
    e.submit(T.add, 0, 0).result(timeout=30)  # workers up
    futures = [gates.blocker(e, i) for i in range(4)]
    gates.wait_started(2)
    # The tasks wait for the gate: shutdown(wait=False) returns while they all pend
    # (two running, two queued); had it waited, they would have ended (timed out).
    e.shutdown(wait=False)
    assert not any(f.done() for f in futures)
    gates.open()
    assert [f.result(timeout=30) for f in futures] == [0, 1, 2, 3]


def test_submit_and_map_after_shutdown_raise_runtime_error(make_executor):
    e = make_executor(1)
    e.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        e.submit(T.add, 1, 2)
    with pytest.raises(RuntimeError):
        list(e.map(T.square, [1, 2]))
    # Nothing to submit: no error, as with concurrent.futures's executors.
    assert list(e.map(T.square, [])) == []
    e.shutdown()  # twice is fine
    e.shutdown(wait=False, cancel_futures=True)


def test_shutdown_cancel_futures(make_executor, gates, tmp_path):
    e = make_executor(2)
    log = str(tmp_path / "ran.txt")
    blockers = [gates.blocker(e, f"b{i}") for i in range(2)]
    gates.wait_started(2)
    queued = [e.submit(T.append_line, log, f"q{i}") for i in range(20)]
    e.shutdown(wait=False, cancel_futures=True)
    # Returned without waiting for the gated blockers (they would have timed out).
    assert not any(b.done() for b in blockers)
    with pytest.raises(RuntimeError):
        e.submit(T.add, 1, 2)
    # The queued futures end cancelled; the running ones are not cancelled.
    done, not_done = wait(queued, timeout=30)
    assert not not_done
    assert all(f.cancelled() for f in queued)
    assert not any(b.done() for b in blockers)
    gates.open()
    everything = blockers + queued
    done, not_done = wait(everything, timeout=30)
    assert not not_done
    assert len(list(as_completed(everything, timeout=30))) == len(everything)
    assert [outcome(b) for b in blockers] == [("ok", "b0"), ("ok", "b1")]
    assert {outcome(f) for f in queued} == {("cancelled",)}
    e.shutdown(wait=True)
    assert read_lines(log) == []


def test_shutdown_wait_true_cancel_futures(make_executor, gates, tmp_path):
    e = make_executor(1)
    log = str(tmp_path / "ran.txt")
    blocker = gates.blocker(e, "b")
    gates.wait_started(1)
    queued = [e.submit(T.append_line, log, f"q{i}") for i in range(10)]

    def open_once_cancelled():
        # The blocker ends only after shutdown cancelled the queued futures, so that
        # none of them can start on the freed worker.
        try:
            wait_until(lambda: all(f.cancelled() for f in queued), 30,
                       "shutdown to cancel the queued futures")
        finally:
            gates.open()

    opener = threading.Thread(target=open_once_cancelled)
    opener.start()
    try:
        e.shutdown(wait=True, cancel_futures=True)
    finally:
        opener.join(60)
    # When shutdown(wait=True) returns, every future has ended.
    assert blocker.done() and blocker.result(timeout=0) == "b"
    assert all(f.done() for f in queued)
    assert {outcome(f) for f in queued} == {("cancelled",)}
    assert read_lines(log) == []


def test_shutdown_cancel_futures_cancels_before_returning(make_executor, gates):
    e = make_executor(1)
    gates.blocker(e)
    gates.wait_started(1)
    queued = [e.submit(T.add, i, 1) for i in range(20)]
    e.shutdown(wait=False, cancel_futures=True)
    assert [f.cancelled() for f in queued] == [True] * 20


def test_shutdown_wait_true_waits_for_queued_work(make_executor, tmp_path):
    e = make_executor(2)
    log = str(tmp_path / "ran.txt")
    futures = [e.submit(T.append_line, log, str(i)) for i in range(50)]
    e.shutdown(wait=True)
    assert all(f.done() for f in futures)
    assert sorted(read_lines(log), key=int) == [str(i) for i in range(50)]


def test_submits_racing_shutdown_all_end(make_executor):
    """Threads submit while another thread shuts down: each submit either raises
    RuntimeError or returns a future that is done once shutdown(wait=True) returns."""
    for _ in range(5):
        e = make_executor(2)
        futures = []
        other_errors = []
        stop = threading.Event()

        def submitter():
            while not stop.is_set():
                try:
                    futures.append(e.submit(T.add, 1, 2))
                except RuntimeError:
                    return
                except BaseException as exc:  # reported below
                    other_errors.append(exc)
                    return

        threads = [threading.Thread(target=submitter) for _ in range(4)]
        for t in threads:
            t.start()
        # shut down as soon as a first submit got in, while the others go on submitting
        wait_until(lambda: futures or other_errors, 30, "a first submit")
        e.shutdown(wait=True)
        not_done = [f for f in futures if not f.done()]
        stop.set()
        for t in threads:
            t.join(30)
        assert not other_errors
        assert futures, "no submit got in before shutdown"
        assert not not_done
        assert {f.result(timeout=0) for f in futures} == {3}


def test_shutdown_from_two_threads_at_once(make_executor):
    e = make_executor(2)
    futures = [e.submit(T.sleep_then, 0.05, i) for i in range(10)]
    errors = []

    def stop():
        try:
            e.shutdown(wait=True)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=stop) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert not errors
    assert [f.result(timeout=0) for f in futures] == list(range(10))


def test_context_manager_joins(make_executor):
    e = make_executor(2)
    with e as entered:
        assert entered is e
        futures = [e.submit(T.sleep_then, 0.2, i) for i in range(4)]
    assert all(f.done() for f in futures)
    assert [f.result(timeout=0) for f in futures] == [0, 1, 2, 3]
    with pytest.raises(RuntimeError):
        e.submit(T.add, 1, 2)


def test_context_manager_on_error_shuts_down(make_executor):
    e = make_executor(1)
    with pytest.raises(KeyError):
        with e:
            f = e.submit(T.sleep_then, 0.1, "x")
            raise KeyError("boom")
    assert f.done() and f.result(timeout=0) == "x"
    with pytest.raises(RuntimeError):
        e.submit(T.add, 1, 2)


def test_20_create_shutdown_cycles():
    before = threading.active_count()
    for i in range(20):
        with interpool.Executor(2) as e:
            assert e.submit(T.add, i, 1).result(timeout=30) == i + 1
    wait_until(lambda: threading.active_count() <= before, 10, "result threads to end")


# ---------------------------------------------------------------------------
# Errors raised by tasks
# ---------------------------------------------------------------------------


def test_builtin_exceptions_keep_type_and_args(ex):
    with pytest.raises(ValueError) as info:
        ex.submit(T.raise_value_error, "bad value", 42).result(timeout=30)
    assert type(info.value) is ValueError
    assert info.value.args == ("bad value", 42)
    cause = info.value.__cause__
    assert isinstance(cause, interpool.RemoteError)
    assert "raise_value_error" in str(cause) and "Traceback" in str(cause)
    assert "raise_value_error" in cause.traceback

    with pytest.raises(KeyError) as info:
        ex.submit(T.raise_key_error, ("k", 1)).result(timeout=30)
    assert type(info.value) is KeyError and info.value.args == (("k", 1),)
    assert "raise_key_error" in str(info.value.__cause__)


def test_user_defined_exception(ex):
    f = ex.submit(T.raise_task_error, "custom")
    exc = f.exception(timeout=30)
    assert type(exc) is T.TaskError and exc.args == ("custom",)
    assert "raise_task_error" in str(exc.__cause__)
    assert isinstance(exc.__cause__, interpool.RemoteError)


def test_exception_with_custom_init_that_pickles(ex):
    with pytest.raises(T.CodedError) as info:
        ex.submit(T.raise_coded_error, 404, "not found").result(timeout=30)
    assert (info.value.code, info.value.detail) == (404, "not found")
    assert str(info.value) == "code 404: not found"
    assert "raise_coded_error" in str(info.value.__cause__)


def test_chained_exception_traceback(ex):
    with pytest.raises(RuntimeError, match="outer") as info:
        ex.submit(T.raise_chained, "outer").result(timeout=30)
    text = str(info.value.__cause__)
    assert "KeyError" in text and "raise_chained" in text and "direct cause" in text


def test_unpicklable_exception_becomes_remote_error(ex):
    with pytest.raises(interpool.RemoteError) as info:
        ex.submit(T.raise_unpicklable_error, "cannot pickle me").result(timeout=30)
    err = info.value
    assert err.type_name == "executor_tasks.UnpicklableError"
    assert err.message == "cannot pickle me"
    assert "raise_unpicklable_error" in err.traceback
    assert "Traceback" in err.traceback
    assert "UnpicklableError: cannot pickle me" in str(err)


def test_exception_that_cannot_be_rebuilt_becomes_remote_error(ex):
    with pytest.raises(interpool.RemoteError) as info:
        ex.submit(T.raise_bad_init_error, "a", "b").result(timeout=30)
    assert info.value.type_name == "executor_tasks.BadInitError"
    assert info.value.message == "a/b"
    assert "raise_bad_init_error" in info.value.traceback


def test_a_value_that_cannot_be_rebuilt_says_so_not_as_the_tasks_error(ex):
    """A task's result (or argument) that crosses but cannot be rebuilt on the
    other side raises the rebuild's error with a note saying where it came
    from: the task did not raise it (its arguments: it did not even run)."""
    with pytest.raises(ValueError, match="cannot be rebuilt") as info:
        ex.submit(T.returns_fails_to_rebuild).result(timeout=30)
    assert any("its result could not be rebuilt in this interpreter" in note
               for note in info.value.__notes__)
    with pytest.raises(ValueError, match="cannot be rebuilt") as info:
        ex.submit(T.identity, [T.FailsToRebuild()]).result(timeout=30)
    assert any("rebuilding the task's arguments in the worker; the task did not run" in note
               for note in info.value.__notes__)


def test_base_exceptions_from_tasks_do_not_harm_the_worker(make_executor):
    e = make_executor(1)
    with pytest.raises(SystemExit) as info:
        e.submit(T.raise_system_exit, 3).result(timeout=30)
    assert info.value.code == 3
    with pytest.raises(KeyboardInterrupt):
        e.submit(T.raise_keyboard_interrupt).result(timeout=30)
    first = e.submit(T.interp_id).result(timeout=30)
    assert e.submit(T.add, 1, 2).result(timeout=30) == 3
    assert e.submit(T.interp_id).result(timeout=30) == first


def test_errors_do_not_stop_other_tasks(ex):
    futures = [ex.submit(T.fail_on, i, 5) for i in range(10)]
    outcomes = [outcome(f) for f in as_completed(futures, timeout=30)]
    assert len(outcomes) == 10
    assert futures[5].exception(timeout=0) is not None
    assert [f.result(timeout=0) for i, f in enumerate(futures) if i != 5] == [
        i * 10 for i in range(10) if i != 5
    ]


# ---------------------------------------------------------------------------
# Broken executor (initializer failure)
# ---------------------------------------------------------------------------


def test_initializer_failure_breaks_the_executor(make_executor):
    e = make_executor(2, initializer=T.init_fail, initargs=("no luck",))
    pending = []
    try:
        pending = [e.submit(T.add, i, 1) for i in range(5)]
    except interpool.BrokenInterpreterPool:
        pass  # the workers already failed: the submit itself is refused
    for f in pending:
        with pytest.raises(interpool.BrokenInterpreterPool) as info:
            f.result(timeout=30)
        assert isinstance(info.value, BrokenExecutor)
        assert "ZeroDivisionError" in str(info.value) and "no luck" in str(info.value)
    # From now on submit and map raise it.
    wait_until(lambda: _submit_raises_broken(e), 30, "submit to raise BrokenInterpreterPool")
    with pytest.raises(interpool.BrokenInterpreterPool, match="no luck"):
        e.submit(T.add, 1, 2)
    with pytest.raises(interpool.BrokenInterpreterPool):
        list(e.map(T.square, range(3)))
    start = time.monotonic()
    e.shutdown(wait=True)
    assert time.monotonic() - start < 5


def _submit_raises_broken(e):
    try:
        f = e.submit(T.add, 1, 2)
    except interpool.BrokenInterpreterPool:
        return True
    with pytest.raises(interpool.BrokenInterpreterPool):
        f.result(timeout=30)
    return False


def test_initializer_failure_fails_pending_futures(make_executor, gates):
    """Futures accepted before the failure is known end with BrokenInterpreterPool."""
    # The initializer fails only once the gate opens, after the submit: however
    # the worker is scheduled, the future is accepted before the failure is known.
    e = make_executor(1, initializer=T.init_fail_once_file, initargs=(gates.gate,))
    f = e.submit(T.add, 1, 2)
    gates.open()
    with pytest.raises(interpool.BrokenInterpreterPool) as info:
        f.result(timeout=30)
    # Where the initializer failed: its traceback, as a task's, in the cause.
    cause = info.value.__cause__
    assert isinstance(cause, interpool.RemoteError)
    assert "in init_fail_once_file" in cause.traceback and "ZeroDivisionError" in cause.traceback
    wait_until(lambda: _submit_raises_broken(e), 30, "submit to raise BrokenInterpreterPool")
    with pytest.raises(interpool.BrokenInterpreterPool):
        e.submit(T.add, 1, 2)


@pytest.mark.parametrize("task, args, error", [
    (T.raise_system_exit, (3,), SystemExit),
    (T.raise_keyboard_interrupt, (), KeyboardInterrupt),
    (T.recurse_forever, (), RecursionError),
    (T.allocate_too_much, (), MemoryError),
])
def test_worker_faults_fail_the_task_and_replace_the_worker(make_executor, task, args, error):
    e = make_executor(1)
    before = e.submit(T.interp_id).result(timeout=30)
    with pytest.raises(error):
        e.submit(task, *args).result(timeout=60)
    after = e.submit(T.interp_id).result(timeout=30)
    assert after != before  # a fresh interpreter took the faulty one's place
    assert e.submit(T.add, 1, 2).result(timeout=30) == 3
    assert e.submit(T.interp_id).result(timeout=30) == after  # and it stays
