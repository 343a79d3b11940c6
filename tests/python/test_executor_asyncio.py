"""interpool.Executor from asyncio: loop.run_in_executor, the loop's default
executor (set_default_executor, asyncio.to_thread), ``await ex.run(...)``,
``async for`` over ex.amap / ex.amap_unordered; results, exceptions,
cancellation of pending and running tasks, timeouts, early exits, many
concurrent awaits, and a loop in a thread other than the main one.

Each test runs its own event loop with asyncio.run. Task functions are in
asyncio_tasks.py and executor_tasks.py (workers import them by module).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import interpool  # noqa: E402
import asyncio_tasks as A  # noqa: E402
import executor_tasks as T  # noqa: E402

# Generous: a failing test should fail, not hang until pytest's own limit.
LIMIT = 30.0


async def until(condition, what, timeout=LIMIT):
    """Waits, without blocking the loop, until condition() is true."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)


async def all_workers_free(ex):
    """Returns once every worker of ex runs a new task at the same time: nothing
    is left running or queued ahead of them. Fails after LIMIT seconds. Returns
    the ids of the workers' interpreters."""
    barrier = interpool.Barrier(ex.max_workers)
    return await asyncio.gather(*(ex.run(A.meet, barrier, LIMIT) for _ in range(ex.max_workers)))


@pytest.fixture
def release(make_executor):
    """Events that are set when the test ends, whatever happens, before its
    executors shut down: no worker is left waiting on one."""
    made = []

    def factory():
        made.append(interpool.Event())
        return made[-1]

    yield factory
    for event in made:
        event.set()


class Spins:
    """What asyncio_tasks.spin reports to: how many spins started and finished.
    Setting `stop` ends them all."""

    def __init__(self, stop):
        self.started = interpool.AtomicInt()
        self.finished = interpool.AtomicInt()
        self.stop = stop

    def args(self):
        """The arguments of one spin."""
        return (self.started, self.finished, self.stop)

    def columns(self, n):
        """The same for n map items."""
        return [[arg] * n for arg in self.args()]

    async def wait_started(self, n=1, timeout=30.0):
        """Lets the loop run until n spins have started."""
        deadline = time.monotonic() + timeout
        while self.started.load() < n:
            assert time.monotonic() < deadline, f"{self.started.load()} of {n} spins started"
            await asyncio.sleep(0.005)


@pytest.fixture
def spins(release):
    """A Spins whose spins end when the test does (a failing test does not
    leave workers spinning for their minute)."""
    return Spins(release())


# ---------------------------------------------------------------------------
# loop.run_in_executor
# ---------------------------------------------------------------------------


def test_run_in_executor_result_and_exception(ex):
    async def main():
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(ex, T.add, 2, 3) == 5
        with pytest.raises(T.TaskError, match="from a worker") as info:
            await loop.run_in_executor(ex, T.raise_task_error, "from a worker")
        assert isinstance(info.value.__cause__, interpool.RemoteError)
        assert "raise_task_error" in info.value.__cause__.traceback

    asyncio.run(main())


def test_run_in_executor_cancelled_while_pending(make_executor, spins):
    ex = make_executor(1)
    counter = interpool.AtomicInt()

    async def main():
        loop = asyncio.get_running_loop()
        blocker = loop.run_in_executor(ex, A.spin, *spins.args(), 60.0, "blocker")
        waiting = asyncio.ensure_future(loop.run_in_executor(ex, A.count, counter))
        await spins.wait_started()  # the worker holds the blocker: the other one waits
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting  # (done already: this does not let the loop run)
        await asyncio.sleep(0)  # the loop passes the cancellation on to the task
        spins.stop.set()
        assert await blocker == "blocker"
        # One worker, tasks in order: the cancelled one would have run by now.
        assert await loop.run_in_executor(ex, A.count, counter, "after") == "after"
        assert counter.load() == 1

    asyncio.run(main())


# ---------------------------------------------------------------------------
# As the loop's default executor: loop.set_default_executor(interpool.Executor())
# ---------------------------------------------------------------------------

MAIN_ID = interpool._interpool.interpreter_id()


def test_default_executor_runs_run_in_executor_none_on_workers(make_executor):
    ex = make_executor(2)

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ex)
        ids = await asyncio.gather(*(loop.run_in_executor(None, T.interp_id) for _ in range(8)))
        assert await loop.run_in_executor(None, T.add, 2, 3) == 5
        return ids

    ids = asyncio.run(main())
    assert ids and MAIN_ID not in ids
    # asyncio.run shuts the default executor down at its end, as it does its own.
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(T.interp_id)


def test_to_thread_with_interpool_as_default_executor(make_executor):
    """asyncio.to_thread sends partial(Context.run, fn, ...) to the default
    executor: it runs on a thread here, in the caller's context, as a thread
    pool would run it."""
    ex = make_executor(1, "io")
    request = contextvars.ContextVar("request")
    seen = []

    def blocking_io(x):  # a closure, and it appends to a list of this interpreter
        seen.append((request.get(), threading.current_thread().name,
                     interpool._interpool.interpreter_id()))
        return 2 * x

    async def main():
        asyncio.get_running_loop().set_default_executor(ex)
        request.set("r-1")
        on_worker = await asyncio.get_running_loop().run_in_executor(None, T.interp_id)
        return on_worker, await asyncio.gather(*(asyncio.to_thread(blocking_io, i) for i in range(3)))

    on_worker, doubled = asyncio.run(main())
    assert on_worker != MAIN_ID and doubled == [0, 2, 4]
    assert len(seen) == 3
    assert {(r, i) for r, _, i in seen} == {("r-1", MAIN_ID)}
    assert all(name.startswith("io-thread_") for _, name, _ in seen)


@pytest.mark.parametrize("debug", [False, True])
def test_host_names_resolve_with_interpool_as_default_executor(make_executor, debug):
    """asyncio resolves host names on the default executor (socket.getaddrinfo;
    in debug mode, a method of the loop)."""
    ex = make_executor(1)

    async def echo(reader, writer):
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    async def main():
        asyncio.get_running_loop().set_default_executor(ex)
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection("localhost", port)
            writer.write(b"ping\n")
            await writer.drain()
            line = await reader.readline()
            writer.close()
            await writer.wait_closed()
        return line

    assert asyncio.run(main(), debug=debug) == b"ping\n"


def test_calls_bound_to_objects_of_this_interpreter_run_on_its_threads(make_executor):
    ex = make_executor(1, "here")
    items = []
    assert ex.submit(items.append, 1).result(timeout=LIMIT) is None
    assert items == [1]  # this list, not a copy in a worker
    thread = ex.submit(contextvars.copy_context().run, threading.current_thread).result(LIMIT)
    assert thread.name == "here-thread_0"
    assert ex.submit(T.interp_id).result(timeout=LIMIT) != MAIN_ID
    ex.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(items.append, 2)


def test_shutdown_from_a_done_callback_of_a_call_run_here(make_executor):
    ex = make_executor(1)
    gate = threading.Lock()
    gate.acquire()
    fut = ex.submit(gate.acquire)  # on a thread here, until the gate opens
    finished = threading.Event()

    def shut_down(_):
        ex.shutdown(wait=True)  # on that thread: it cannot wait for itself
        finished.set()

    fut.add_done_callback(shut_down)
    gate.release()
    assert finished.wait(LIMIT)
    assert fut.result() is True


def test_a_thread_pool_executor_by_class_only(make_executor):
    """What asyncio's set_default_executor checks for; none of
    ThreadPoolExecutor's own machinery runs."""
    from concurrent.futures import ThreadPoolExecutor

    before = {t.name for t in threading.enumerate()}
    ex = make_executor(2)
    assert isinstance(ex, ThreadPoolExecutor)
    # Every method ThreadPoolExecutor defines is interpool's (_counter numbers
    # the threads of ThreadPoolExecutor.__init__, which never runs here).
    theirs = {n for n, v in vars(ThreadPoolExecutor).items() if callable(v)} - {"_counter"}
    assert theirs <= set(vars(interpool.Executor))
    assert ex.submit(T.add, 1, 2).result(timeout=LIMIT) == 3
    assert list(ex.map(T.add, [1, 2], [3, 4])) == [4, 6]
    for attribute in ("_work_queue", "_threads", "_idle_semaphore", "_shutdown_lock"):
        assert not hasattr(ex, attribute)
    started = {t.name for t in threading.enumerate()} - before
    assert not any(name.startswith("ThreadPoolExecutor") for name in started)
    assert ex._max_workers == ex.max_workers == 2  # as ThreadPoolExecutor has it


# ---------------------------------------------------------------------------
# await ex.run(...)
# ---------------------------------------------------------------------------


def test_run_returns_the_result(ex):
    async def main():
        assert await ex.run(T.add, 2, 3) == 5
        assert await ex.run(T.echo, 1, "two", key=[3]) == [[1, "two"], {"key": [3]}]
        assert await ex.run(pow, 2, 100) == 2**100

    asyncio.run(main())


def test_run_raises_the_task_exception(ex):
    async def main():
        with pytest.raises(T.TaskError, match="it broke") as info:
            await ex.run(T.raise_task_error, "it broke")
        assert isinstance(info.value.__cause__, interpool.RemoteError)
        with pytest.raises(T.CodedError) as coded:
            await ex.run(T.raise_coded_error, 7, "detail")
        assert (coded.value.code, coded.value.detail) == (7, "detail")

    asyncio.run(main())


def test_run_refuses_what_cannot_reach_a_worker(ex):
    async def main():
        with pytest.raises(TypeError, match="callable"):
            await ex.run(42)
        with pytest.raises(interpool.NotShareableError, match="argument 1"):
            await ex.run(T.identity, threading.Lock())

    asyncio.run(main())


def test_run_submits_only_when_awaited(make_executor):
    ex = make_executor(1)
    counter = interpool.AtomicInt()

    async def main():
        never = ex.run(A.count, counter)
        never.close()  # a coroutine that never started: nothing was submitted
        assert await ex.run(A.count, counter, "ran") == "ran"
        assert counter.load() == 1

    asyncio.run(main())


def test_run_cancelled_while_pending_never_runs(make_executor, spins):
    ex = make_executor(1)
    counter = interpool.AtomicInt()

    async def main():
        blocker = asyncio.ensure_future(ex.run(A.spin, *spins.args(), 60.0, "blocker"))
        waiting = asyncio.ensure_future(ex.run(A.count, counter))
        await spins.wait_started()  # both submitted; the worker holds the blocker
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        spins.stop.set()
        assert await blocker == "blocker"
        assert await ex.run(A.count, counter, "after") == "after"
        assert counter.load() == 1  # only "after" ran

    asyncio.run(main())


def test_run_cancelled_while_running_interrupts_the_task(make_executor, spins):
    ex = make_executor(1)

    async def main():
        first = await ex.run(T.interp_id)
        task = asyncio.ensure_future(ex.run(A.spin, *spins.args(), 60.0))
        await until(lambda: spins.started.load() == 1, "the task to start")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The worker is free long before the task's minute: it was interrupted,
        # and its interpreter, which the interruption unwound, serves on.
        (after,) = await all_workers_free(ex)
        assert after == first
        assert spins.finished.load() == 0

    asyncio.run(main())


def test_run_timeout_with_wait_for(make_executor, spins):
    ex = make_executor(1)

    async def main():
        task = asyncio.ensure_future(ex.run(A.spin, *spins.args(), 60.0))
        # The limit starts once the task runs: a slow start of the worker cannot use
        # it up, and what it ends is a running task.
        await until(lambda: spins.started.load() == 1, "the task to start")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(task, 0.5)
        await all_workers_free(ex)
        assert spins.started.load() == 1 and spins.finished.load() == 0
        # A limit that is not hit changes nothing.
        assert await asyncio.wait_for(ex.run(T.add, 1, 2), LIMIT) == 3

    asyncio.run(main())


def test_run_timeout_with_asyncio_timeout(make_executor, spins):
    ex = make_executor(1)

    async def main():
        task = asyncio.ensure_future(ex.run(A.spin, *spins.args(), 60.0))
        # The limit starts once the task runs (as in test_run_timeout_with_wait_for).
        await until(lambda: spins.started.load() == 1, "the task to start")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await task
        await all_workers_free(ex)
        assert spins.started.load() == 1 and spins.finished.load() == 0

    asyncio.run(main())


def test_200_concurrent_runs_all_accounted_for(ex):
    async def main():
        calls = []
        for i in range(200):
            if i % 7 == 3:
                calls.append(ex.run(T.fail_on, i, i))
            else:
                calls.append(ex.run(T.square, i))
        return await asyncio.gather(*calls, return_exceptions=True)

    out = asyncio.run(main())
    assert len(out) == 200
    for i, value in enumerate(out):
        if i % 7 == 3:
            assert isinstance(value, ValueError) and str(value) == f"item {i} is bad"
        else:
            assert value == i * i


def test_run_after_shutdown_is_refused(make_executor):
    ex = make_executor(1)
    ex.shutdown()

    async def main():
        with pytest.raises(RuntimeError, match="after shutdown"):
            await ex.run(T.add, 1, 2)

    asyncio.run(main())


def test_shutdown_cancel_futures_cancels_an_awaited_pending_run(make_executor, spins):
    ex = make_executor(1)

    async def main():
        blocker = asyncio.ensure_future(ex.run(A.spin, *spins.args(), 60.0, "blocker"))
        waiting = asyncio.ensure_future(ex.run(T.add, 1, 2))
        await spins.wait_started()  # both submitted; the worker holds the blocker
        ex.shutdown(wait=False, cancel_futures=True)
        with pytest.raises(asyncio.CancelledError):
            await waiting
        spins.stop.set()
        assert await blocker == "blocker"  # started before: it completes

    asyncio.run(main())


# ---------------------------------------------------------------------------
# async for ... in ex.amap(...) / ex.amap_unordered(...)
# ---------------------------------------------------------------------------


async def collect(aiterable):
    return [item async for item in aiterable]


def test_amap_results_in_order(ex):
    async def main():
        assert await collect(ex.amap(T.square, range(200))) == [x * x for x in range(200)]
        assert await collect(ex.amap(T.add, range(3), range(100))) == [0, 2, 4]
        assert await collect(ex.amap(T.square, [])) == []
        assert await collect(ex.amap(T.square, range(50), chunksize=7)) == [x * x for x in range(50)]

    asyncio.run(main())


def test_amap_many_items_none_lost(ex):
    n = 20_000

    async def main():
        ordered = await collect(ex.amap(T.square, range(n)))
        unordered = await collect(ex.amap_unordered(T.square, range(n)))
        return ordered, unordered

    ordered, unordered = asyncio.run(main())
    assert ordered == [x * x for x in range(n)]
    assert sorted(unordered) == ordered


def test_amap_unordered_yields_in_completion_order(ex):
    async def main():
        seconds = [0.6] + [0.0] * 6
        values = ["slow", 1, 2, 3, 4, 5, 6]
        out = await collect(ex.amap_unordered(T.sleep_then, seconds, values, chunksize=1))
        assert sorted(map(str, out)) == sorted(map(str, values))
        assert out[-1] == "slow"  # the other worker finished the fast ones meanwhile

    asyncio.run(main())


def test_amap_error_at_the_failing_item(ex):
    async def main():
        got = []
        with pytest.raises(ValueError, match="item 3 is bad") as info:
            async for value in ex.amap(T.fail_on, range(10), [3] * 10, chunksize=1):
                got.append(value)
        assert got == [0, 10, 20]
        assert "fail_on" in info.value.__cause__.traceback
        with pytest.raises(ValueError, match="item 50 is bad"):
            await collect(ex.amap_unordered(T.fail_on, range(100), [50] * 100))
        assert await collect(ex.amap(T.square, range(5))) == [0, 1, 4, 9, 16]

    asyncio.run(main())


def test_amap_error_stops_the_other_items(make_executor, spins):
    ex = make_executor(2)

    async def main():
        with pytest.raises(ValueError, match="item 0 failed"):
            async for _ in ex.amap(A.fail_first, range(20), *spins.columns(20), chunksize=1):
                pass
        await all_workers_free(ex)  # the spinning items were interrupted or withdrawn
        assert spins.finished.load() == 0

    asyncio.run(main())


def test_amap_validates_arguments_when_called(ex):
    for bad, error in ((0, ValueError), (-1, ValueError), (1.5, TypeError)):
        with pytest.raises(error):
            ex.amap(T.square, [1], chunksize=bad)
        with pytest.raises(error):
            ex.amap_unordered(T.square, [1], buffersize=bad)
    with pytest.raises(TypeError, match="callable"):
        ex.amap(42, [1])


def test_amap_submits_only_when_iterated(make_executor):
    ex = make_executor(1)
    counter = interpool.AtomicInt()
    consumed = []

    def source():
        for i in range(5):
            consumed.append(i)
            yield counter

    async def main():
        ex.amap(A.count, source())  # never iterated: dropped
        assert consumed == []
        assert await ex.run(A.count, counter, "ran") == "ran"
        assert counter.load() == 1
        assert await collect(ex.amap(A.count, source())) == [None] * 5
        assert counter.load() == 6

    asyncio.run(main())


@pytest.mark.parametrize("method", ["amap", "amap_unordered"])
def test_amap_buffersize_reads_input_lazily(ex, method):
    consumed = []
    n, buffersize = 60, 4

    def source():
        for i in range(n):
            consumed.append(i)
            yield i

    async def main():
        out = []
        async for value in getattr(ex, method)(T.square, source(), buffersize=buffersize):
            out.append(value)
            assert len(consumed) - len(out) <= buffersize, (len(consumed), len(out))
        return out

    out = asyncio.run(main())
    assert len(consumed) == n
    expected = [x * x for x in range(n)]
    assert (sorted(out) if method == "amap_unordered" else out) == expected


def test_amap_with_endless_input_and_buffersize(ex):
    import itertools

    async def main():
        out = []
        async with contextlib.aclosing(ex.amap(T.square, itertools.count(), buffersize=8)) as it:
            async for value in it:
                out.append(value)
                if len(out) == 20:
                    break
        assert out == [x * x for x in range(20)]
        assert await ex.run(T.add, 1, 1) == 2

    asyncio.run(main())


@pytest.mark.parametrize("method", ["amap", "amap_unordered"])
def test_amap_break_cancels_pending_and_interrupts_running(make_executor, spins, method):
    ex = make_executor(2)
    n = 20
    seconds = [0.0] + [60.0] * (n - 1)  # item 0 at once, the others for a minute

    async def main():
        async for value in getattr(ex, method)(A.spin_item, range(n), *spins.columns(n),
                                               [seconds] * n, chunksize=1):
            assert value == 0
            break
        # The loop closes the abandoned iterator on its next turns: then every
        # worker is free again, long before a minute.
        await all_workers_free(ex)
        assert spins.finished.load() == 1
        assert spins.started.load() < n

    asyncio.run(main())


def test_amap_aclosing_stops_the_work_at_once(make_executor, spins):
    ex = make_executor(2)
    n = 10
    seconds = [0.0] + [60.0] * (n - 1)

    async def main():
        it = ex.amap(A.spin_item, range(n), *spins.columns(n), [seconds] * n, chunksize=1)
        async with contextlib.aclosing(it):
            assert await anext(it) == 0
        await all_workers_free(ex)
        assert spins.finished.load() == 1

    asyncio.run(main())


def test_amap_consumer_cancelled(make_executor, spins):
    ex = make_executor(2)
    n = 10

    async def consume():
        return await collect(ex.amap(A.spin, *spins.columns(n), [60.0] * n, chunksize=1))

    async def main():
        task = asyncio.ensure_future(consume())
        await until(lambda: spins.started.load() == 2, "both workers to run an item")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await all_workers_free(ex)
        assert spins.finished.load() == 0
        assert spins.started.load() < n

    asyncio.run(main())


def test_amap_timeout(make_executor, spins):
    ex = make_executor(2)
    n = 6
    seconds = [0.0] + [60.0] * (n - 1)

    async def main():
        got = []
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            # The limit starts with the first result (item 0 does not spin): a slow
            # start of the workers cannot use it up before item 0 is in.
            async with asyncio.timeout(None) as limit:
                async for value in ex.amap(A.spin_item, range(n), *spins.columns(n),
                                           [seconds] * n, chunksize=1):
                    got.append(value)
                    limit.reschedule(loop.time() + 0.5)
        assert got == [0]
        await all_workers_free(ex)
        assert spins.finished.load() == 1

    asyncio.run(main())


def test_amap_after_shutdown_is_refused_when_iterated(make_executor):
    ex = make_executor(1)
    it = ex.amap(T.square, range(3))
    ex.shutdown()

    async def main():
        with pytest.raises(RuntimeError, match="after shutdown"):
            await collect(it)

    asyncio.run(main())


# ---------------------------------------------------------------------------
# A loop that is not the main thread's
# ---------------------------------------------------------------------------


def test_loop_in_another_thread(make_executor, spins):
    ex = make_executor(2)
    outcome = {}

    async def main():
        loop = asyncio.get_running_loop()
        values = await asyncio.gather(*(ex.run(T.square, i) for i in range(50)))
        mapped = await collect(ex.amap(T.add, range(100), range(100)))
        in_executor = await loop.run_in_executor(ex, T.add, 20, 22)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ex.run(A.spin, *spins.args(), 60.0), 0.3)
        await all_workers_free(ex)
        return values, mapped, in_executor

    def thread_main():
        try:
            outcome["value"] = asyncio.run(main())
        except BaseException as e:  # reported by the test below
            outcome["error"] = e

    thread = threading.Thread(target=thread_main, name="asyncio-loop")
    thread.start()
    thread.join(2 * LIMIT)
    assert not thread.is_alive()
    if "error" in outcome:
        raise outcome["error"]
    values, mapped, in_executor = outcome["value"]
    assert values == [i * i for i in range(50)]
    assert mapped == [2 * i for i in range(100)]
    assert in_executor == 42
    assert spins.finished.load() == 0


def test_many_loops_in_threads_share_one_executor(ex):
    results = {}

    def thread_main(k):
        async def main():
            return await asyncio.gather(*(ex.run(T.add, i, k) for i in range(100)))

        results[k] = asyncio.run(main())

    threads = [threading.Thread(target=thread_main, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(2 * LIMIT)
    assert sorted(results) == [0, 1, 2, 3]
    for k, out in results.items():
        assert out == [i + k for i in range(100)]
