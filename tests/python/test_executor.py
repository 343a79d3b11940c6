"""interpool.Executor as a concurrent.futures.Executor: submit, map, map_unordered,
starmap, the kinds of callables it accepts and refuses, arguments that cannot
cross, argument validation, many tasks and many submitting threads.

Futures, cancellation, shutdown and errors: test_executor_futures.py.
shared=, initializer, max_tasks_per_worker, sys.path: test_executor_config.py.
Scripts run in child processes (__main__, exit): test_executor_main.py.
"""

from __future__ import annotations

import collections
import functools
import itertools
import math
import operator
import os
import re
import sys
import threading
import time
from concurrent.futures import BrokenExecutor, CancelledError
from concurrent.futures import Executor as CFExecutor
from concurrent.futures import Future

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import interpool  # noqa: E402
import executor_tasks as T  # noqa: E402
import value_shapes  # noqa: E402
from support import Gates, on_each_worker, run_python, run_script  # noqa: E402






# ---------------------------------------------------------------------------
# The type and its basic methods
# ---------------------------------------------------------------------------


def test_is_a_concurrent_futures_executor(ex):
    assert isinstance(ex, CFExecutor)
    assert issubclass(interpool.BrokenInterpreterPool, BrokenExecutor)
    assert issubclass(interpool.NotShareableError, TypeError)
    fut = ex.submit(T.add, 1, 2)
    assert isinstance(fut, Future)
    assert fut.result(timeout=30) == 3


def test_submit_positional_and_keyword_arguments(ex):
    assert ex.submit(T.echo, 1, "two", [3], k={"v": (4, 5)}).result(timeout=30) == [
        [1, "two", [3]],
        {"k": {"v": (4, 5)}},
    ]
    # `fn` is positional-only: a keyword named fn (or self) reaches the function.
    assert ex.submit(T.echo, fn=1, self=2).result(timeout=30) == [[], {"fn": 1, "self": 2}]


def test_submit_returns_values_of_many_types(ex):
    values = [None, True, 2**100, -1.5, 1 + 2j, "é\u20ac", b"\x00\xff", bytearray(b"ab"),
              (1, (2,)), [1, [2]], {"a": {1: 2}}, {1, 2}, frozenset({3}), T.TaskError("x").args]
    got = [ex.submit(T.identity, v).result(timeout=30) for v in values]
    assert got == values
    assert [type(g) for g in got] == [type(v) for v in values]


def test_an_object_in_two_places_arrives_as_one_object(ex):
    assert ex.submit(T.same_objects, *(([1],) * 2)).result(timeout=30) == [0, 1]
    shared = {"k": [1]}
    assert ex.submit(T.same_objects, shared, [0], shared, again=shared, other={"k": [1]}).result(
        timeout=30) == [0, 2, "again"]
    t = ([1],) * 2
    assert ex.submit(value_shapes.shared_levels, [t[0], t[1]]).result(timeout=30) == 1
    out = ex.submit(T.pair_of_one_list).result(timeout=30)
    assert out["a"] is out["b"][0]


def test_sixty_levels_of_doubling_submitted_and_returned(ex):
    # 2**60 leaves if each place were copied. Small first: without sharing the
    # 60 levels would exhaust the machine rather than fail.
    assert ex.submit(value_shapes.shared_levels, value_shapes.doubling(3)).result(timeout=30) == 3
    assert ex.submit(value_shapes.shared_levels, value_shapes.doubling(60)).result(timeout=30) == 60
    out = ex.submit(value_shapes.doubling, 60).result(timeout=30)
    assert value_shapes.shared_levels(out) == 60
    back = ex.submit(T.identity, out).result(timeout=30)
    assert value_shapes.shared_levels(back) == 60 and back is not out
    # The items of a map chunk are one crossing too.
    assert list(ex.map(value_shapes.shared_levels, [out, out], chunksize=2)) == [60, 60]


def test_large_argument_and_result(ex):
    big = bytes(range(256)) * 40_000  # 10 MB
    assert ex.submit(len, big).result(timeout=60) == len(big)
    out = ex.submit(T.make_bytes, 8_000_000).result(timeout=60)
    assert len(out) == 8_000_000 and out[:3] == b"xxx"


# ---------------------------------------------------------------------------
# map, map_unordered, starmap
# ---------------------------------------------------------------------------


def test_map_results_in_order(ex):
    assert list(ex.map(T.square, range(50))) == [x * x for x in range(50)]
    assert list(ex.map(T.square, range(50), chunksize=7)) == [x * x for x in range(50)]


def test_map_empty_input(ex):
    assert list(ex.map(T.square, [])) == []
    assert list(ex.map_unordered(T.square, [])) == []
    assert list(ex.starmap(T.add, [])) == []
    assert list(ex.map(T.add, [], range(5))) == []
    assert list(ex.map(T.square, [], buffersize=2)) == []


@pytest.mark.parametrize("task_timeout", [None, 60.0])
def test_map_of_one_iterable_passes_each_item_as_the_one_argument(task_timeout):
    """One iterable's items travel as they are (no argument tuple per item):
    a tuple item is still one argument, with partial()'s arguments before it,
    with or without a time limit per item, and in map_unordered and starmap."""
    items = [(1, 2), [3], (), None, ((4,),), "ab"]
    with interpool.Executor(2, task_timeout=task_timeout) as ex:
        assert list(ex.map(T.echo, items, chunksize=4)) == [[[x], {}] for x in items]
        assert sorted(map(repr, ex.map_unordered(T.echo, items))) == sorted(
            repr([[x], {}]) for x in items)
        echo_k = functools.partial(T.echo, 0, k=1)
        assert list(ex.map(echo_k, items)) == [[[0, x], {"k": 1}] for x in items]
        assert list(ex.map(T.echo, items, items)) == [[[x, x], {}] for x in items]
        assert list(ex.starmap(T.echo, [(1, 2), [3]])) == [[[1, 2], {}], [[3], {}]]


def test_map_multiple_iterables_of_unequal_length_like_builtin_map(ex):
    assert list(ex.map(T.add, range(10), range(5))) == list(map(T.add, range(10), range(5)))
    assert list(ex.map(T.add3, "abcd", "xy", "1234")) == ["ax1", "by2"]
    # An endless iterable paired with a finite one ends with the finite one.
    assert list(ex.map(T.add, itertools.count(), range(5))) == [0, 2, 4, 6, 8]
    assert sorted(ex.map_unordered(T.add, range(3), range(100))) == [0, 2, 4]


def test_map_unordered_yields_in_completion_order(ex):
    seconds = [0.6] + [0.0] * 6
    values = ["slow", 1, 2, 3, 4, 5, 6]
    out = list(ex.map_unordered(T.sleep_then, seconds, values, chunksize=1))
    assert sorted(map(str, out)) == sorted(map(str, values))
    assert out[-1] == "slow"  # the other worker finished the fast ones meanwhile
    # map keeps the input order for the same inputs.
    assert list(ex.map(T.sleep_then, [0.2, 0.0], ["slow", "fast"], chunksize=1)) == ["slow", "fast"]


def test_starmap(ex):
    assert list(ex.starmap(T.add, [(1, 2), [3, 4], (5, 6)])) == [3, 7, 11]
    assert list(ex.starmap(T.add3, ((i, i, i) for i in range(5)))) == [0, 3, 6, 9, 12]
    assert list(ex.starmap(pow, [(2, 10), (3, 3)], chunksize=1)) == [1024, 27]


def test_map_100k_items_none_lost(ex):
    n = 100_000
    assert sum(ex.map(T.square, range(n))) == sum(x * x for x in range(n))
    out = list(ex.map_unordered(T.square, range(n)))
    assert len(out) == n
    assert sum(out) == sum(x * x for x in range(n))
    assert sorted(out) == [x * x for x in range(n)]


def test_map_large_items(ex):
    items = [bytes([i]) * 1_000_000 for i in range(8)]
    assert list(ex.map(len, items)) == [1_000_000] * 8


def test_submit_10k_tasks(ex):
    futures = [ex.submit(T.add, i, 1) for i in range(10_000)]
    results = [f.result(timeout=60) for f in futures]
    assert results == list(range(1, 10_001))


def test_map_timeout_raises_timeout_error(make_executor):
    e = make_executor(2)
    e.submit(T.add, 1, 1).result(timeout=30)  # workers up
    start = time.monotonic()
    it = e.map(T.sleep_then, [0.6, 0.6], timeout=0.2)
    with pytest.raises(TimeoutError):
        next(it)
    elapsed = time.monotonic() - start
    assert elapsed >= 0.15
    it.close()


def test_map_unordered_timeout(make_executor):
    e = make_executor(1)
    it = e.map_unordered(T.sleep_then, [0.6, 0.6], timeout=0.2)
    with pytest.raises(TimeoutError):
        list(it)


def test_map_timeout_not_hit(ex):
    assert list(ex.map(T.square, range(20), timeout=60)) == [x * x for x in range(20)]


def test_map_without_buffersize_reads_input_at_once(ex):
    consumed = []

    def source(n):
        for i in range(n):
            consumed.append(i)
            yield i

    it = ex.map(T.square, source(100))
    assert len(consumed) == 100  # like concurrent.futures: all inputs read by map()
    assert list(it) == [x * x for x in range(100)]


def test_map_input_error_propagates(ex):
    def broken_input():
        yield 1
        yield 2
        raise KeyError("input broke")

    with pytest.raises(KeyError, match="input broke"):
        list(ex.map(T.square, broken_input()))
    with pytest.raises(KeyError, match="input broke"):
        list(ex.map(T.square, broken_input(), buffersize=1))
    with pytest.raises(KeyError, match="input broke"):
        list(ex.map_unordered(T.square, broken_input(), buffersize=1))
    assert ex.submit(T.add, 1, 1).result(timeout=30) == 2


def test_map_unordered_error(ex):
    with pytest.raises(ValueError, match="item 50 is bad"):
        list(ex.map_unordered(T.fail_on, range(100), [50] * 100))


def test_adaptive_chunks_grow_for_fast_tasks(make_executor):
    """chunksize=None: many tiny tasks go in few chunks. With max_tasks_per_worker=1
    each chunk runs in a fresh interpreter, so interpreter ids show the chunks."""
    e = make_executor(1, max_tasks_per_worker=1)
    n = 2000
    out = list(e.map(T.count_task, range(n)))
    assert len(out) == n
    sizes = list(collections.Counter(i for i, _ in out).values())
    assert 2 <= len(sizes) <= 40, sizes
    assert sum(sizes) == n


def test_adaptive_chunks_spread_slow_tasks_over_workers(make_executor, tmp_path):
    e = make_executor(2)
    on_each_worker(e, tmp_path / "meet", T.interp_id)  # both workers are up
    ids = list(e.map(T.sleep_return_id, [0.1] * 8))
    assert len(set(ids)) == 2


@pytest.mark.parametrize("method", ["map", "map_unordered", "starmap"])
def test_buffersize_reads_input_lazily(ex, method):
    consumed = []
    n, buffersize = 60, 4

    def source():
        for i in range(n):
            consumed.append(i)
            yield (i,) if method == "starmap" else i

    it = getattr(ex, method)(T.square, source(), buffersize=buffersize)
    time.sleep(0.1)  # nothing is read ahead in the background
    assert 0 < len(consumed) <= buffersize
    out = []
    for value in it:
        out.append(value)
        assert len(consumed) - len(out) <= buffersize, (len(consumed), len(out))
    assert len(consumed) == n
    expected = [x * x for x in range(n)]
    assert (sorted(out) if method == "map_unordered" else out) == expected


def test_buffersize_with_endless_input(ex):
    consumed = []

    def naturals():
        for i in itertools.count():
            consumed.append(i)
            yield i

    it = ex.map(T.square, naturals(), buffersize=8)
    assert list(itertools.islice(it, 20)) == [x * x for x in range(20)]
    assert len(consumed) <= 28
    it.close()
    assert ex.submit(T.add, 1, 1).result(timeout=30) == 2  # still usable


def test_map_validates_chunksize_and_buffersize(ex):
    """As the stdlib's map: a count of the wrong type is a TypeError (naming the
    type), a count below 1 a ValueError (naming the value)."""
    for name in ("chunksize", "buffersize"):
        for bad in (0, -1):
            with pytest.raises(ValueError, match=rf"^{name} must be a positive int or None, not {bad}$"):
                ex.map(T.square, [1], **{name: bad})
        for bad, type_name in ((1.5, "float"), ("2", "str")):
            with pytest.raises(TypeError, match=rf"^{name} must be .* not '{type_name}'$"):
                ex.map(T.square, [1], **{name: bad})


def test_map_error_at_the_failing_item(ex):
    got = []
    with pytest.raises(ValueError, match="item 3 is bad") as info:
        for value in ex.map(T.fail_on, range(10), [3] * 10, chunksize=1):
            got.append(value)
    assert got == [0, 10, 20]
    assert "fail_on" in str(info.value.__cause__)
    # The failing item inside a chunk (adaptive chunks, fixed ones, one
    # argument per call, keyword arguments, a time limit per item): every
    # result before it still comes, then its exception.
    for kwargs in ({}, {"chunksize": 7}):
        got = []
        with pytest.raises(ValueError, match="item 500 is bad") as info:
            for value in ex.map(T.fail_on, range(1000), [500] * 1000, **kwargs):
                got.append(value)
        assert got == [x * 10 for x in range(500)], kwargs
        assert "fail_on" in str(info.value.__cause__)
    got = []
    with pytest.raises(ValueError, match="item 10 is bad"):
        for value in ex.map(functools.partial(T.fail_on, bad=10), range(20), chunksize=7):
            got.append(value)
    assert got == [x * 10 for x in range(10)]
    # The executor is unharmed.
    assert list(ex.map(T.square, range(5))) == [0, 1, 4, 9, 16]


def test_map_error_inside_a_chunk_keeps_the_results_before_it(make_executor):
    """The same with a time limit per item (the chunk's other loop), from amap,
    and from map_unordered (which yields the chunk's earlier results too)."""
    import asyncio

    ex = make_executor(2, task_timeout=60)
    got = []
    with pytest.raises(ValueError, match="item 12 is bad"):
        for value in ex.map(T.fail_on, range(30), [12] * 30, chunksize=5):
            got.append(value)
    assert got == [x * 10 for x in range(12)]

    async def collect(it):
        out = []
        with pytest.raises(ValueError, match="item 12 is bad"):
            async for value in it:
                out.append(value)
        return out

    assert asyncio.run(collect(ex.amap(T.fail_on, range(30), [12] * 30, chunksize=5))) == [
        x * 10 for x in range(12)]
    got = []
    with pytest.raises(ValueError, match="item 2 is bad"):
        for value in ex.map_unordered(T.fail_on, range(5), [2] * 5, chunksize=5):
            got.append(value)
    assert got == [0, 10]


@pytest.mark.parametrize("method", ["map", "map_unordered"])
def test_results_of_running_chunks_come_before_a_cancellation(make_executor, method):
    """shutdown(cancel_futures=True) during a map: the chunk already running
    still gives its result, then the iterator raises CancelledError for the
    rest (map_unordered gave the cancellation first and lost the result)."""
    ex = make_executor(1)
    started, go = interpool.Event(), interpool.Event()
    it = getattr(ex, method)(T.signal_then_wait, range(6), [started] * 6, [go] * 6, chunksize=1)
    try:
        assert started.wait(30)
        ex.shutdown(wait=False, cancel_futures=True)
    finally:
        go.set()
    got = []
    with pytest.raises(CancelledError):
        for value in it:
            got.append(value)
    assert got == [0]


def test_map_unordered_waiting_for_chunks_all_cancelled_ends(make_executor):
    """The caller waits for the next result of map_unordered while its chunks
    are all queued; shutdown(cancel_futures=True) cancels them: the wait ends
    with CancelledError (it had waited for a result no chunk would give)."""
    ex = make_executor(1)
    started, go = interpool.Event(), interpool.Event()
    try:
        busy = ex.submit(T.signal_then_wait, 0, started, go)
        assert started.wait(30)  # the one worker is taken
        it = ex.map_unordered(T.square, range(4), chunksize=1)
        ended, waiting = [], threading.Event()

        def watch(frame, event, arg):  # the consumer's first wait: for its next result
            if event == "call" and frame.f_code.co_name == "wait":
                waiting.set()

        def consume():
            sys.setprofile(watch)
            try:
                ended.append(list(it))
            except BaseException as e:
                ended.append(e)
            finally:
                sys.setprofile(None)

        consumer = threading.Thread(target=consume)
        consumer.start()
        assert waiting.wait(30)
        ex.shutdown(wait=False, cancel_futures=True)
        consumer.join(30)
        assert not consumer.is_alive()
        assert len(ended) == 1 and isinstance(ended[0], CancelledError)
    finally:
        go.set()
    assert busy.result(30) == 0


def test_an_argument_whose_pickling_submits_to_the_same_executor():
    # __reduce__ runs while submit() converts the arguments (holding the
    # executor's lock): a submit from it blocked forever. In a child process,
    # so that a hang fails the test instead of the suite.
    proc = run_script("""
        import interpool
        import executor_tasks as T

        if __name__ == "__main__":
            with interpool.Executor(2) as ex:
                T.SUBMIT_TO = ex
                print(ex.submit(T.identity, [T.SubmitsWhenPickled()]).result(timeout=30))
    """, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[9]"


def test_a_shutdown_from_an_arguments_reduce_lets_the_executor_end():
    # The submit that was converting is refused; the executor's shutdown then
    # found that task still listed and waited for it forever.
    proc = run_script("""
        import interpool
        import executor_tasks as T

        if __name__ == "__main__":
            with interpool.Executor(2, fallback="process") as ex:
                T.SUBMIT_TO = ex
                try:
                    ex.submit(T.identity, [T.ShutsDownWhenPickled()])
                except RuntimeError as e:
                    print("refused")
            print("ended")
    """, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["refused", "ended"]


def test_datetimes_cross_as_the_datetime_classes(ex):
    """Datetimes made in a worker, or sent there and back, arrive as the main
    interpreter's own classes (on 3.12 workers use the pure-Python datetime,
    whose values arrived as _pydatetime's: unequal to the caller's, and an
    aware one could not cross)."""
    import datetime
    import zoneinfo

    made, hour, aware, utc, named = ex.submit(T.datetimes).result(timeout=60)
    assert type(made) is datetime.datetime and type(hour) is datetime.timedelta
    assert made + hour == datetime.datetime(2024, 12, 6, 11)
    assert type(aware) is datetime.datetime and aware.tzinfo == zoneinfo.ZoneInfo("UTC")
    # timezone objects too (on 3.12 the pure one pickled its slots, which the C one has not)
    assert utc.tzinfo is datetime.timezone.utc and utc == aware
    assert type(named.tzinfo) is datetime.timezone and named.tzname() == "X"
    assert named.utcoffset() == datetime.timedelta(hours=2)
    sent = datetime.datetime(2024, 12, 6, tzinfo=zoneinfo.ZoneInfo("UTC"))
    back = ex.submit(T.identity, sent).result(timeout=60)
    assert type(back) is datetime.datetime and back == sent == aware
    assert ex.submit(T.identity, named).result(timeout=60).tzname() == "X"


def test_map_stopped_early_leaves_executor_usable(ex):
    it = ex.map(T.sleep_then, [0.01] * 200, range(200), chunksize=1)
    assert next(it) == 0
    it.close()
    assert list(ex.map(T.square, range(10))) == [x * x for x in range(10)]


def test_concurrent_maps_on_one_executor(ex):
    results = {}

    def run(k):
        results[k] = list(ex.map(T.add, range(2000), [k] * 2000))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [0, 1, 2, 3]
    for k, out in results.items():
        assert out == [i + k for i in range(2000)]


def test_map_results_consumed_after_with_block(make_executor):
    with make_executor(2) as e:
        it = e.map(T.square, range(1000))
    assert list(it) == [x * x for x in range(1000)]


# ---------------------------------------------------------------------------
# Kinds of callables
# ---------------------------------------------------------------------------


def test_builtins(ex):
    assert ex.submit(math.factorial, 20).result(timeout=30) == math.factorial(20)
    assert list(ex.map(len, ["", "ab", [1, 2, 3]])) == [0, 2, 3]
    assert list(ex.map(pow, [2, 3], [5, 2])) == [32, 9]
    assert ex.submit(operator.add, 2, 3).result(timeout=30) == 5
    assert list(ex.map(str.upper, ["a", "bc"])) == ["A", "BC"]  # a method descriptor
    assert ex.submit(sorted, [3, 1, 2], reverse=True).result(timeout=30) == [3, 2, 1]


def test_functools_partial(ex):
    assert ex.submit(functools.partial(T.add, 10), 5).result(timeout=30) == 15
    assert ex.submit(functools.partial(T.echo, 1, k=2), 3, j=4).result(timeout=30) == [[1, 3], {"k": 2, "j": 4}]
    # Call keywords override the partial's, as in a local call.
    assert ex.submit(functools.partial(T.echo, k=1), k=2).result(timeout=30) == [[], {"k": 2}]
    nested = functools.partial(functools.partial(T.add3, "a"), "b")
    assert ex.submit(nested, "c").result(timeout=30) == "abc"
    assert list(ex.map(functools.partial(T.add, 100), range(3))) == [100, 101, 102]
    assert list(ex.map(functools.partial(pow, 2), range(5))) == [1, 2, 4, 8, 16]
    assert list(ex.starmap(functools.partial(T.add3, "x"), [("y", "z")])) == ["xyz"]


def test_static_and_class_methods(ex):
    assert ex.submit(T.MathOps.double, 21).result(timeout=30) == 42
    assert ex.submit(T.MathOps.scaled, 2).result(timeout=30) == ("MathOps", 6)
    assert ex.submit(T.MathOps.Inner.negate, 5).result(timeout=30) == -5
    assert list(ex.map(T.MathOps.double, range(4))) == [0, 2, 4, 6]
    assert list(ex.map(T.MathOps.scaled, [1])) == [("MathOps", 3)]
    # A plain function of a class, called with an instance that pickles.
    assert ex.submit(T.MathOps.instance_method, T.MathOps(), 1).result(timeout=30) == 1001


def test_bound_methods_and_callable_instances(ex):
    m = T.Multiplier(7)
    assert ex.submit(m.mul, 6).result(timeout=30) == 42
    assert list(ex.map(m.mul, range(5))) == [0, 7, 14, 21, 28]
    assert list(ex.starmap(m.mul, [(1,), (2,)])) == [7, 14]
    assert m.calls == 0  # the worker called a copy
    k, x, iid = ex.submit(m, 3).result(timeout=30)
    assert (k, x) == (7, 3) and iid != interpool._interpool.interpreter_id()
    assert [r[:2] for r in ex.map(m, [1, 2])] == [(7, 1), (7, 2)]
    assert ex.submit(functools.partial(m.mul, 2)).result(timeout=30) == 14
    assert ex.submit("abc".upper).result(timeout=30) == "ABC"  # bound builtin method


def test_lambdas_cross_by_value(ex):
    assert ex.submit(lambda x: x + 1, 1).result() == 2
    assert list(ex.map(lambda x: x * 2, [1, 2])) == [2, 4]
    assert sorted(ex.map_unordered(lambda x: -x, [1, 2])) == [-2, -1]
    assert list(ex.starmap(lambda x, y: x - y, [(3, 1)])) == [2]
    assert ex.submit(functools.partial(lambda x, y: x * y, 3), 2).result() == 6


def test_nested_function_and_closure_cross_by_value(ex):
    def nested(x):
        return x + 1

    k = 3

    def closure(x):  # through cloudpickle (the test extra installs it)
        return x * k

    assert ex.submit(nested, 1).result() == 2
    assert list(ex.map(closure, [1, 2])) == [3, 6]


def test_not_callable_refused(ex):
    with pytest.raises(TypeError, match="callable"):
        ex.submit(42)
    with pytest.raises(TypeError, match="callable"):
        ex.map("not callable", [1])


def test_main_function_of_python_c_crosses_by_value():
    code = (
        "import interpool\n"
        "def f(x):\n"
        "    return x * 2\n"
        "with interpool.Executor(1) as ex:\n"
        "    print('result:', ex.submit(f, 21).result())\n"
    )
    proc, _ = run_python(["-c", code])
    assert proc.returncode == 0, proc.stderr
    assert "result: 42" in proc.stdout


# ---------------------------------------------------------------------------
# Arguments that cannot cross
# ---------------------------------------------------------------------------


def test_unshareable_argument_named_at_submit(ex):
    with pytest.raises(interpool.NotShareableError, match="argument 2") as info:
        ex.submit(T.add, 1, threading.Lock())
    assert isinstance(info.value, TypeError)
    assert "lock" in str(info.value)
    with pytest.raises(interpool.NotShareableError, match="keyword argument 'b'"):
        ex.submit(T.add, 1, b=threading.Lock())
    with pytest.raises(interpool.NotShareableError, match=r"argument 1\[1\]"):
        ex.submit(T.identity, [1, threading.Lock()])


def test_unshareable_map_item_named(ex):
    with pytest.raises(interpool.NotShareableError, match="map item 2, argument 1"):
        list(ex.map(T.identity, [0, 1, threading.Lock()], chunksize=1))
    with pytest.raises(interpool.NotShareableError, match="map item 1, argument 2"):
        list(ex.map(T.add, [1, 2], [3, threading.Lock()], chunksize=1))
    assert ex.submit(T.add, 1, 1).result(timeout=30) == 2


@pytest.mark.parametrize("chunksize", [None, 1, 10, 50])
def test_unshareable_map_item_comes_after_the_results_before_it(ex, chunksize):
    """An item that cannot cross is an error where the item is, as its
    exception would be: map() returns, the items before it (in its chunk too)
    give their results, then NotShareableError naming it."""
    items = list(range(100))
    items[37] = threading.Lock()
    for method in ("map", "map_unordered"):
        it = getattr(ex, method)(T.identity, items, chunksize=chunksize)
        got = []
        with pytest.raises(interpool.NotShareableError, match="map item 37, argument 1"):
            for value in it:
                got.append(value)
        assert sorted(got) == list(range(37)), (method, len(got))
    items[0] = threading.Lock()
    it = ex.map(T.identity, items, chunksize=chunksize)
    with pytest.raises(interpool.NotShareableError, match="map item 0, argument 1"):
        next(it)


class _RaisesWhenPickled:
    def __init__(self, error):
        self.error = error

    def __reduce__(self):
        raise self.error


def test_pickling_error_names_its_type_and_an_interruption_stays_one(ex):
    """An object whose pickling fails is named with the error's type and text;
    a Ctrl-C (or SystemExit, or MemoryError) raised meanwhile is not the
    object's fault and goes on as itself."""
    with pytest.raises(interpool.NotShareableError) as info:
        ex.submit(T.identity, [_RaisesWhenPickled(KeyError("x"))])
    assert "KeyError: 'x'" in info.value.reason
    for error in (KeyboardInterrupt(), SystemExit(3), MemoryError()):
        with pytest.raises(type(error)):
            ex.submit(T.identity, [_RaisesWhenPickled(error)])
    assert ex.submit(T.add, 1, 2).result(timeout=30) == 3


@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer reserves more address space than the limit allows")
def test_a_result_too_large_to_convert_fails_its_task_and_the_worker_serves_on():
    # The worker ran out of memory converting a result: the C++ error left its
    # thread, the task never ended (its future waited forever) and the program
    # hung at exit. Address space is limited in a child so that the result
    # itself can be made but not converted.
    r = run_script("""
        import operator, re, resource
        import interpool
        with interpool.Executor(1) as ex:
            ex.submit(abs, 1).result(timeout=60)
            status = open("/proc/self/status").read()
            used = int(re.search(r"VmSize:\\s+(\\d+)", status).group(1)) * 1024
            n = 600 * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (used + n + 200 * 2**20, resource.RLIM_INFINITY))
            error = ex.submit(operator.mul, "x", n).exception(timeout=60)
            print(type(error).__name__, "converting the task's result" in str(error))
            print(ex.submit(abs, -3).result(timeout=60))
        print("done")
    """, timeout=90)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.splitlines() == ["MemoryError True", "3", "done"], r.stderr


def test_unshareable_error_carries_its_place_as_data(ex):
    # where, path, what and reason: a program (or interpool's own layers) can
    # tell where the value was without reading the message.
    with pytest.raises(interpool.NotShareableError) as info:
        ex.submit(T.identity, {"k": [0, threading.Lock()]})
    e = info.value
    assert (e.where, e.path, e.what) == ("argument 1", ("['k']", 1), "a 'lock' object")
    assert str(e) == f"cannot share argument 1['k'][1] (a 'lock' object) with another " \
                     f"interpreter: {e.reason}"
    with pytest.raises(interpool.NotShareableError) as info:
        list(ex.map(T.add, [1, 2, 3], [4, 5, {"k": [0, threading.Lock()]}], chunksize=2))
    e = info.value
    assert (e.where, e.path) == ("map item 2, argument 2", ("['k']", 1))
    assert str(e).startswith("cannot share map item 2, argument 2['k'][1] (a 'lock' ")


def test_unshareable_under_a_long_non_ascii_key_is_named(ex):
    # The key's repr is cut short in the message: on a character, never inside one.
    key = "x" + "ключ" * 20  # (a cut at a fixed byte count falls inside a letter)
    with pytest.raises(interpool.NotShareableError) as info:
        ex.submit(T.identity, {key: threading.Lock()})
    step = info.value.path[0]
    assert step.startswith("['xключ") and step.endswith("...]"), step
    assert "\ufffd" not in str(info.value)


def nested_lists(levels):
    x = []
    for _ in range(levels - 1):
        x = [x]
    return x


def test_too_deep_argument_error_is_short(ex):
    # The place shows its first and last steps and says how deep, instead of
    # thousands of "[0]"; in a map, the item and argument are still named.
    with pytest.raises(interpool.NotShareableError) as info:
        ex.submit(T.identity, nested_lists(5000))
    message = str(info.value)
    assert re.fullmatch(r"cannot share argument 1(\[0\]){4}\.\.\.(\[0\]){2} \(a 'list' object "
                        r"nested 1001 levels deep\) with another interpreter: the limit is 1000 "
                        r"levels of nesting", message), message
    with pytest.raises(interpool.NotShareableError) as info:
        list(ex.map(T.identity, [0, nested_lists(5000)], chunksize=2))
    message = str(info.value)
    assert message.startswith("cannot share map item 1, argument 1[0][0][0]...[0][0] (a 'list' "), message
    assert len(message) < 200, message


def test_unshareable_argument_of_a_pickled_callable_is_named_correctly(ex):
    # The callable itself does not pickle: the error must name the function.
    with pytest.raises(interpool.NotShareableError) as info:
        ex.submit(T.LockedCallable(), 1)
    assert "LockedCallable" in str(info.value)


def test_argument_numbers_for_bound_method(ex):
    with pytest.raises(interpool.NotShareableError, match="argument 1 ") as info:
        ex.submit(T.Multiplier(2).mul, threading.Lock())
    assert "argument 2" not in str(info.value)
    with pytest.raises(interpool.NotShareableError) as info:
        ex.submit(T.LockedCallable(), 1)
    assert "argument 1" not in str(info.value)


def test_map_item_named_for_bound_method(ex):
    with pytest.raises(interpool.NotShareableError, match="map item 1, argument 1"):
        list(ex.map(T.Multiplier(2).mul, [1, threading.Lock()], chunksize=1))


def test_map_names_a_partials_arguments_as_submit_does(ex):
    """A functools.partial's bound argument that cannot cross is every call's:
    named as submit names it, not as the first map item's."""
    fn = functools.partial(T.add, threading.Lock())
    for call in (lambda: ex.submit(fn, 1), lambda: ex.map(fn, [1, 2])):
        with pytest.raises(interpool.NotShareableError) as info:
            call()
        assert info.value.where == "argument 1"
    with pytest.raises(interpool.NotShareableError) as info:
        ex.map(functools.partial(T.add, b=threading.Lock()), [1, 2])
    assert (info.value.where, info.value.path) == ("keyword arguments", ("['b']",))


@pytest.mark.parametrize("chunksize", [None, 1, 5])
def test_unshareable_result_of_a_map_names_its_item(ex, chunksize):
    """A result that cannot cross back is named by its item, as the user gave
    it, with its place as data (not the chunk's own layout)."""
    for method in ("map", "map_unordered"):
        with pytest.raises(interpool.NotShareableError) as info:
            list(getattr(ex, method)(T.lock_at, range(20), [7] * 20, chunksize=chunksize))
        assert (info.value.where, info.value.path) == ("the result of map item 7", ()), method
        assert str(info.value).startswith("cannot share the result of map item 7 (a 'lock' ")


def test_unshareable_result_fails_the_future(ex):
    with pytest.raises(interpool.NotShareableError, match="result"):
        ex.submit(T.make_lock).result(timeout=30)
    assert ex.submit(T.add, 2, 2).result(timeout=30) == 4


# ---------------------------------------------------------------------------
# Validation of the constructor's arguments
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, error",
    [(0, ValueError), (-1, ValueError), ("x", TypeError), (1.5, TypeError), (True, TypeError)],
)
def test_max_workers_validation(value, error):
    with pytest.raises(error):
        interpool.Executor(value)


def test_max_workers_default_is_usable_cpus(make_executor):
    e = make_executor()
    assert e.max_workers == interpool.usable_cpus() == len(os.sched_getaffinity(0))
    assert make_executor(max_workers=3).max_workers == 3


@pytest.mark.parametrize("kwargs, error", [
    ({"max_tasks_per_worker": 0}, ValueError),
    ({"max_tasks_per_worker": -1}, ValueError),
    ({"max_tasks_per_worker": "x"}, TypeError),
    ({"shared": [("a", 1)]}, TypeError),
    ({"shared": {1: "a"}}, TypeError),
    ({"initargs": 1}, TypeError),
    ({"initializer": 42}, TypeError),
])
def test_constructor_validation(kwargs, error):
    with pytest.raises(error):
        interpool.Executor(1, **kwargs)


# ---------------------------------------------------------------------------
# Many threads submitting at once
# ---------------------------------------------------------------------------


def test_submit_from_8_threads(ex):
    per_thread = 400
    barrier = threading.Barrier(8)
    results: dict[int, list] = {}
    errors = []

    def run(tid):
        try:
            barrier.wait(10)
            futures = [ex.submit(T.add, tid * 100_000, i) for i in range(per_thread)]
            results[tid] = [f.result(timeout=60) for f in futures]
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(tid,)) for tid in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not errors
    assert sorted(results) == list(range(8))
    for tid, out in results.items():
        assert out == [tid * 100_000 + i for i in range(per_thread)]


def test_tasks_run_in_parallel_on_both_workers(make_executor, tmp_path):
    """Two tasks that each wait for the other to start can only finish if they
    run at the same time, in different interpreters."""
    e = make_executor(2)
    gates = Gates(tmp_path)
    a = gates.blocker(e, "a")
    b = gates.blocker(e, "b")
    gates.wait_started(2)
    ids = {open(gates.started_path(i)).read() for i in range(2)}
    assert len(ids) == 2
    gates.open()
    assert (a.result(timeout=30), b.result(timeout=30)) == ("a", "b")
