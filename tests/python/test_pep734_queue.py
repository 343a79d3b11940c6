"""interpool.interpreters queues: create_queue, Queue, FIFO and bounds, blocking and
timeouts (no polling, to the millisecond), queues crossing interpreters (prepare_main,
call arguments and results, other queues, pickle), items that outlive the interpreter
that put them and the UNBOUND behaviours, and many interpreters x many threads.

Ctrl-C during a blocking get/put is in test_pep734_scripts.py (it needs a
process of its own).
"""

import pickle
import queue
import statistics
import sys
import threading
import time

import pytest

import interpool
from interpool import interpreters as I

import interp_tasks
import value_shapes
from support import asleep, block_in, wait_until

# Upper bound on how late a timed wait may return. The machine these suites run on
# is small and often busy with builds (or runs them under ASan): only a hang exceeds
# it. The lower bounds stay strict.
SLACK = 2.0


pytestmark = pytest.mark.usefixtures("no_interpreter_left_open")


def drain(q):
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except I.QueueEmpty:
            return out


# ---------------------------------------------------------------------------
# Basics
# ---------------------------------------------------------------------------


def test_create_queue_defaults():
    q = I.create_queue()
    assert isinstance(q, I.Queue)
    assert isinstance(q.id, int)
    assert q.maxsize == 0
    assert q.empty() and not q.full() and q.qsize() == 0
    assert str(q.id) in repr(q)


def test_queue_ids_are_distinct():
    qs = [I.create_queue() for _ in range(5)]
    assert len({q.id for q in qs}) == 5


def test_bounded_queue():
    q = I.create_queue(2)
    assert q.maxsize == 2
    q.put(1)
    assert q.qsize() == 1 and not q.full() and not q.empty()
    q.put(2)
    assert q.full() and q.qsize() == 2
    with pytest.raises(I.QueueFull):
        q.put_nowait(3)
    with pytest.raises(I.QueueFull):
        q.put(3, block=False)
    with pytest.raises(queue.Full):  # the standard library's exception catches it too
        q.put(3, timeout=0.001)
    assert q.get() == 1
    assert not q.full()
    q.put_nowait(3)
    assert drain(q) == [2, 3]


def test_unbounded_queue_takes_many_items():
    q = I.create_queue()
    for i in range(10_000):
        q.put_nowait(i)
    assert q.qsize() == 10_000 and not q.full()
    assert drain(q) == list(range(10_000))


def test_get_from_an_empty_queue():
    q = I.create_queue()
    with pytest.raises(I.QueueEmpty):
        q.get_nowait()
    with pytest.raises(I.QueueEmpty):
        q.get(block=False)
    with pytest.raises(queue.Empty):
        q.get(timeout=0)


def test_the_queue_exceptions_share_queue_error_a_runtime_error(interp):
    # As the standard library's: QueueError is a RuntimeError, and each queue
    # exception is one, besides queue.Empty / queue.Full / LookupError.
    assert issubclass(I.QueueError, RuntimeError)
    q = I.create_queue(1)
    with pytest.raises(I.QueueError):
        q.get_nowait()
    q.put(1)
    with pytest.raises(RuntimeError):
        q.put_nowait(2)
    assert issubclass(I.QueueFull, queue.Full) and issubclass(I.QueueEmpty, queue.Empty)
    assert issubclass(I.QueueNotFoundError, I.QueueError)
    assert issubclass(I.QueueNotFoundError, LookupError)
    q2 = I.create_queue(unbounditems=I.UNBOUND_ERROR)
    interp.call(interp_tasks.put_all, q2, ["x"])
    interp.close()
    with pytest.raises(I.QueueError):
        q2.get()
    assert I.ItemInterpreterDestroyed.__mro__[1] is I.QueueError
    assert interpool.QueueError is I.QueueError


def test_fifo_in_one_interpreter():
    q = I.create_queue()
    items = [0, "one", b"two", (3,), [4], {"five": 5}, None, 7.5]
    for item in items:
        q.put(item)
    assert [q.get() for _ in items] == items


def test_fifo_across_interpreters(interp):
    q = I.create_queue()
    interp.call(interp_tasks.put_all, q, list(range(500)))
    assert drain(q) == list(range(500))
    for i in range(300):
        q.put(i)
    assert interp.call(interp_tasks.get_n, q, 300) == list(range(300))


def test_items_are_copies():
    q = I.create_queue()
    data = [1, [2]]
    q.put(data)
    data[1].append(3)
    got = q.get()
    assert got == [1, [2]] and got is not data


def test_an_item_keeps_an_object_in_two_places_one_object(interp):
    q = I.create_queue()
    q.put(([1],) * 2)
    out = q.get()
    assert out[0] is out[1]
    back = I.create_queue()
    interp.prepare_main(q=q, back=back)
    q.put([value_shapes.doubling(3), value_shapes.doubling(60)])
    interp.exec("from value_shapes import shared_levels\n"
                "item = q.get()\n"
                "back.put([shared_levels(item[0]), shared_levels(item[1]), item[1]])")
    small, levels, item = back.get(timeout=30)
    assert (small, levels) == (3, 60)
    assert value_shapes.shared_levels(item) == 60


@pytest.mark.parametrize("item", [
    None, True, False, 0, -1, 2**200, 1.25, float("inf"), 1 + 2j, "", "text é ✓", b"", b"\x00\xff",
    (), (1, (2, (3,))), [1, [2]], {"a": [1], 2: (3,)}, {1, 2}, frozenset({3}),
    interp_tasks.Point(1, 2),
])
def test_item_kinds_cross_interpreters(interp, item):
    q = I.create_queue()
    q.put(item)
    back = I.create_queue()
    interp.prepare_main(q=q, back=back)
    interp.exec("back.put(q.get())")
    assert back.get(timeout=30) == item


def test_unshareable_item_is_named():
    q = I.create_queue()
    with pytest.raises(I.NotShareableError, match="item"):
        q.put(threading.Lock())
    assert q.empty()


def test_timeout_and_block_argument_checks():
    q = I.create_queue(1)
    with pytest.raises(ValueError):
        q.get(timeout=-1)
    q.put(1)
    with pytest.raises(ValueError):
        q.put(2, timeout=-0.5)
    with pytest.raises(TypeError):
        q.get(timeout="1")
    with pytest.raises(ValueError):
        I.create_queue(unbounditems="keep")
    with pytest.raises(ValueError):
        q.put_nowait(1, unbounditems=object())


def test_put_signature_matches_the_stdlib():
    q = I.create_queue()
    q.put("a", True, None, unbounditems=None)
    q.put(obj="b", block=True, timeout=1.0)
    q.put_nowait("c", unbounditems=I.UNBOUND)
    assert q.get(True, None) == "a"
    assert q.get(block=True, timeout=1.0) == "b"
    assert q.get_nowait() == "c"


# ---------------------------------------------------------------------------
# One object per id; the queue crosses interpreters as itself
# ---------------------------------------------------------------------------


def test_one_object_per_id_and_pickle_as_a_handle():
    q = I.create_queue(3)
    assert pickle.loads(pickle.dumps(q)) is q
    q2 = pickle.loads(pickle.dumps([q, q]))
    assert q2[0] is q and q2[1] is q


def test_queue_constructor_takes_an_id_like_the_stdlib():
    q = I.create_queue()
    assert I.Queue(q.id) is q
    with pytest.raises(I.QueueNotFoundError):
        I.Queue(0)  # ids start at 1


def test_queue_through_prepare_main(interp):
    q = I.create_queue()
    interp.prepare_main(q=q, again=q)
    interp.exec("same = q is again\nq.put(('from sub', q.id, same))")
    assert q.get(timeout=30) == ("from sub", q.id, True)


def test_queue_through_call_arguments_and_result(interp):
    q = I.create_queue(7)
    assert interp.call(interp_tasks.same_queue, q, q) == (True, q.id)
    assert interp.call(interp_tasks.queue_info, q) == (q.id, 7, 0, "Queue")
    assert interp.call(interp_tasks.queue_back, q) is q
    assert interp.call(interp_tasks.echo_args, q, k=[q]) == ((q,), {"k": [q]})


def test_queue_through_another_queue(interp):
    carrier, inner = I.create_queue(), I.create_queue()
    carrier.put(inner)
    assert carrier.get() is inner  # in the same interpreter: the same object
    interp.prepare_main(carrier=carrier)
    carrier.put(inner)
    interp.exec("inner = carrier.get()\ninner.put('through a queue')\n"
                "made_here = __import__('interpool.interpreters').interpreters.create_queue(4)\n"
                "made_here.put('made in the sub-interpreter')\ncarrier.put(made_here)")
    assert inner.get(timeout=30) == "through a queue"
    made_there = carrier.get(timeout=30)
    assert isinstance(made_there, I.Queue) and made_there.maxsize == 4
    assert made_there.get_nowait() == "made in the sub-interpreter"


def test_queue_in_a_pickled_object(interp):
    q = I.create_queue()
    interp.prepare_main(blob=pickle.dumps({"q": q}))
    interp.exec("import pickle\npickle.loads(blob)['q'].put('via pickle')")
    assert q.get(timeout=30) == "via pickle"


def test_queue_lives_while_any_interpreter_holds_it(interp):
    q = I.create_queue()
    qid = q.id
    interp.prepare_main(q=q)
    del q
    import gc

    gc.collect()
    back = I.create_queue()
    interp.prepare_main(back=back)
    interp.exec("q.put('still here')\nback.put(q)")
    q = back.get(timeout=30)
    assert q.id == qid
    assert q.get_nowait() == "still here"


def test_queue_is_shareable():
    assert I.is_shareable(I.create_queue())


# ---------------------------------------------------------------------------
# Blocking: waits without polling, timeouts to the millisecond
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [0.001, 0.0015, 0.005, 0.02, 0.1, 0.3])
def test_get_timeout_is_honoured(timeout):
    q = I.create_queue()
    start = time.perf_counter()
    with pytest.raises(I.QueueEmpty):
        q.get(timeout=timeout)
    waited = time.perf_counter() - start
    assert timeout <= waited < timeout + SLACK, waited


@pytest.mark.parametrize("timeout", [0.001, 0.005, 0.05, 0.2])
def test_put_timeout_is_honoured(timeout):
    q = I.create_queue(1)
    q.put(0)
    start = time.perf_counter()
    with pytest.raises(I.QueueFull):
        q.put(1, timeout=timeout)
    waited = time.perf_counter() - start
    assert timeout <= waited < timeout + SLACK, waited
    assert drain(q) == [0]


def test_zero_timeout_does_not_wait():
    q = I.create_queue(1)
    start = time.perf_counter()
    with pytest.raises(I.QueueEmpty):
        q.get(timeout=0)
    q.put(1)
    with pytest.raises(I.QueueFull):
        q.put(2, timeout=0)
    assert time.perf_counter() - start < SLACK


def test_timeout_in_a_sub_interpreter(interp):
    q = I.create_queue()
    for timeout in (0.002, 0.05):
        waited = interp.call(interp_tasks.timed_get, q, timeout)
        assert timeout <= waited < timeout + SLACK, waited


def test_get_timeout_is_kept_when_another_getter_takes_the_item():
    """Two getters wait 4 s; one item arrives after 2.5 s: one getter takes it, the
    other goes on waiting until its own deadline (no early QueueEmpty, no extra wait).
    The item comes later than SLACK, so that a getter which started its timeout again
    when woken (4 + 2.5 s) cannot pass."""
    q = I.create_queue()
    results = []

    def getter():
        start = time.perf_counter()
        try:
            q.get(timeout=4.0)
            results.append(("item", time.perf_counter() - start))
        except I.QueueEmpty:
            results.append(("empty", time.perf_counter() - start))

    threads = [threading.Thread(target=getter) for _ in range(2)]
    for t in threads:
        t.start()
    # Both must wait when the item comes, so that one of them is woken for nothing.
    wait_until(lambda: all(asleep(t.native_id) for t in threads), what="both getters to block")
    time.sleep(2.5)  # the test's subject: an item that comes late in both timeouts
    q.put("only one")
    for t in threads:
        t.join(30)
    kinds = sorted(kind for kind, _ in results)
    assert kinds == ["empty", "item"]
    waited_empty = [w for kind, w in results if kind == "empty"][0]
    assert 4.0 <= waited_empty < 4.0 + SLACK


def test_blocking_get_wakes_on_a_put_from_another_interpreter(interp):
    q = I.create_queue()
    interp.call(interp_tasks.add, 1)  # the interpreter is ready: only the delay remains
    start = time.perf_counter()
    t = interp.call_in_thread(interp_tasks.delayed_put_time, q, 0.2)
    put_at = q.get(timeout=30)
    got_at = time.perf_counter()
    t.join(30)
    assert got_at - start >= 0.2
    assert got_at - put_at < SLACK  # woken by the put


def test_blocking_put_wakes_on_a_get_from_another_interpreter(interp):
    q = I.create_queue(1)
    q.put("first")
    putter = block_in(q.put, "second", timeout=30)  # waits for room
    assert not putter.outcome
    t = interp.call_in_thread(interp_tasks.get_n, q, 2)  # takes "first", then "second"
    t.join(30)
    putter.join(30)
    assert putter.outcome == [None]
    assert not t.is_alive()
    assert q.empty()


def _wake_latencies(q, n):
    """Main blocks in get(); another thread puts the time just before put. Returns the
    delays between put and get returning."""
    latencies = []

    def putter():
        for i in range(n):
            time.sleep(0.002 + (i % 5) * 0.001)
            q.put(time.perf_counter())

    t = threading.Thread(target=putter)
    t.start()
    for _ in range(n):
        sent = q.get(timeout=30)
        latencies.append(time.perf_counter() - sent)
    t.join(30)
    return latencies


# A busy machine can delay the woken thread by milliseconds in one round, never make a
# polling loop fast: up to this many rounds, one of which must show the median delay.
WAKE_ROUNDS = 3


def test_blocking_get_wakes_without_polling():
    """Woken by the put itself: a 10 ms polling loop (the standard library's) would show
    a median delay of about 5 ms, in every round."""
    q = I.create_queue()
    medians = []
    for _ in range(WAKE_ROUNDS):
        latencies = _wake_latencies(q, 40)
        medians.append(statistics.median(latencies))
        if medians[-1] < 0.002:
            break
    assert min(medians) < 0.002, (medians, sorted(latencies))


def test_blocking_get_wakes_without_polling_across_interpreters(interp):
    q = I.create_queue()
    interp.prepare_main(q=q, n=40)
    medians = []
    for _ in range(WAKE_ROUNDS):
        t = threading.Thread(target=interp.exec, args=(
            "import time\nfor i in range(n):\n"
            "    time.sleep(0.002 + (i % 5) * 0.001)\n    q.put(time.perf_counter())",))
        t.start()
        latencies = [time.perf_counter() - q.get(timeout=30) for _ in range(40)]
        t.join(30)
        medians.append(statistics.median(latencies))
        if medians[-1] < 0.002:
            break
    assert min(medians) < 0.002, (medians, sorted(latencies))


def test_a_blocked_get_uses_no_cpu():
    q = I.create_queue()
    cpu = time.thread_time()  # of this thread alone: other threads' work is not counted
    with pytest.raises(I.QueueEmpty):
        q.get(timeout=0.5)
    # A spinning wait would have used about 0.5 s: this one sleeps in the kernel.
    assert time.thread_time() - cpu < 0.05


def test_blocked_getters_all_wake_for_their_items(make_interp):
    q = I.create_queue()
    out = I.create_queue()
    interps = [make_interp() for _ in range(3)]
    ready = I.create_queue()
    threads = [i.call_in_thread(interp_tasks.consume_until_none, q, out, ready) for i in interps]
    consumers = [ready.get(timeout=30) for _ in interps]
    # Each has nothing left to do but get(): asleep means blocked there.
    wait_until(lambda: all(asleep(c) for c in consumers), what="the three getters to block")
    for k in range(30):
        q.put(k)
    for _ in interps:
        q.put(None)
    counts = [out.get(timeout=30) for _ in interps]
    for t in threads:
        t.join(30)
    assert sum(counts) == 30


# ---------------------------------------------------------------------------
# Items outlive the interpreter that put them, unless asked otherwise
# ---------------------------------------------------------------------------


def test_items_survive_the_close_of_their_interpreter(interp):
    q = I.create_queue()
    inner = I.create_queue()
    items = [1, "two", [3, {"four": 4}], interp_tasks.Point(5, 6), inner]
    interp.call(interp_tasks.put_all, q, items)
    interp.close()
    assert drain(q) == items
    assert items[-1] is inner


def test_items_survive_when_put_in_a_thread_of_the_interpreter(interp):
    q = I.create_queue()
    interp.call_in_thread(interp_tasks.produce, q, "t", 100).join(30)
    interp.close()
    assert drain(q) == [("t", i) for i in range(100)]


def test_items_survive_in_a_bounded_queue_with_a_waiting_getter(interp):
    q = I.create_queue(5)
    interp.call(interp_tasks.put_all, q, [1, 2, 3])
    interp.close()
    assert [q.get(timeout=5) for _ in range(3)] == [1, 2, 3]


def test_an_item_the_getter_cannot_rebuild_stays_at_the_head(interp):
    # An object of a class of a module only the sender has: get() raises the
    # unpickling error, and the item is not lost.
    q = I.create_queue()
    interp.prepare_main(q=q)
    interp.exec("import sys, types\n"
                "sys.modules['only_here'] = module = types.ModuleType('only_here')\n"
                "exec('class Local:\\n    size = 3', module.__dict__)\n"
                "q.put(module.Local())\n"
                "q.put('next')")
    for _ in range(2):  # as often as asked: the item stays
        with pytest.raises(ModuleNotFoundError, match="only_here") as e:
            q.get(timeout=5)
        assert e.value.__notes__ == [
            "interpool: the item could not be rebuilt in this interpreter; it stays at the head "
            f"of queue {q.id}, for a get where it can be"]
        assert q.qsize() == 2
    # The interpreter that has the class gets it, in its place in the queue.
    interp.exec("item = q.get(timeout=5)\nassert type(item) is module.Local and item.size == 3")
    assert q.get(timeout=5) == "next"
    assert q.empty()


@pytest.mark.parametrize("closed", [False, True])
def test_an_item_whose_unpickling_raises_stays_for_a_getter_that_can(interp, closed):
    q = I.create_queue(1)  # full: the item goes back whatever the bound (or a close)
    q.put(interp_tasks.RebuiltOnlyInWorkers(7))
    if closed:
        q.close()
    with pytest.raises(ValueError, match="cannot be rebuilt in the main interpreter"):
        q.get(timeout=5)
    assert q.qsize() == 1 and q.full()
    assert interp.call(interp_tasks.get_value, q) == 7
    assert q.empty()


MODES = {"UNBOUND": "marker", "UNBOUND_ERROR": "error", "UNBOUND_REMOVE": "removed"}


def _expected(q, mode):
    if mode == "UNBOUND":
        got = [q.get_nowait(), q.get_nowait()]
        assert got[0] is I.UNBOUND and got[1] is I.UNBOUND
    elif mode == "UNBOUND_ERROR":
        for _ in range(2):
            with pytest.raises(I.ItemInterpreterDestroyed):
                q.get_nowait()
    assert q.get_nowait() == "from main"  # items of live interpreters are untouched
    assert q.empty()


@pytest.mark.parametrize("mode", sorted(MODES))
def test_unbound_behaviour_asked_for_on_put(interp, mode):
    q = I.create_queue()
    interp.call(interp_tasks.put_with_unbound, q, "a", mode)
    interp.call(interp_tasks.put_with_unbound, q, ["b"], mode)
    q.put("from main", unbounditems=getattr(I, mode))
    assert q.qsize() == 3
    interp.close()
    assert q.qsize() == (1 if mode == "UNBOUND_REMOVE" else 3)
    _expected(q, mode)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_unbound_behaviour_as_the_queue_default(interp, mode):
    q = I.create_queue(unbounditems=getattr(I, mode))
    interp.call(interp_tasks.put_all, q, ["a", "b"])
    q.put("from main")
    interp.close()
    _expected(q, mode)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_unbound_behaviour_with_put_nowait_in_exec(interp, mode):
    q = I.create_queue()
    interp.prepare_main(q=q)
    interp.exec(f"from interpool import interpreters as I\n"
                f"q.put_nowait('a', unbounditems=I.{mode})\nq.put_nowait('b', unbounditems=I.{mode})")
    q.put("from main")
    interp.close()
    _expected(q, mode)


@pytest.mark.parametrize("mode", ["UNBOUND_REMOVE", "UNBOUND"])
def test_a_queue_whose_last_reference_an_unbound_item_held_ends_cleanly(interp, mode):
    # The inner queue lives only in the item the closing interpreter put: the
    # policy drops it while it goes over the live queues.
    outer = I.create_queue()
    interp.prepare_main(outer=outer)
    interp.exec("from interpool import interpreters as I\n"
                f"outer.put(I.create_queue(), unbounditems=I.{mode})\n")
    assert outer.qsize() == 1
    interp.close()
    inner = I.create_queue()  # the queues' table is usable
    inner.put(1)
    assert inner.get() == 1
    assert outer.qsize() == (0 if mode == "UNBOUND_REMOVE" else 1)


def test_unbound_only_affects_the_closed_interpreters_items(make_interp):
    a, b = make_interp(), make_interp()
    q = I.create_queue(unbounditems=I.UNBOUND_REMOVE)
    a.call(interp_tasks.put_all, q, ["a1", "a2"])
    b.call(interp_tasks.put_all, q, ["b1"])
    a.call(interp_tasks.put_all, q, ["a3"])
    b.call(interp_tasks.put_all, q, ["b2"])
    a.close()
    assert drain(q) == ["b1", "b2"]


def test_items_after_an_unbound_error_item_are_returned(interp):
    q = I.create_queue()
    interp.call(interp_tasks.put_with_unbound, q, "gone", "UNBOUND_ERROR")
    q.put("next")
    interp.close()
    with pytest.raises(I.ItemInterpreterDestroyed):
        q.get(timeout=5)
    assert q.get(timeout=5) == "next"


def test_removed_items_free_space_in_a_bounded_queue(interp):
    q = I.create_queue(2, unbounditems=I.UNBOUND_REMOVE)
    interp.call(interp_tasks.put_all, q, ["x", "y"])
    assert q.full()
    interp.close()
    assert q.empty()
    q.put_nowait("room again")


def test_removed_items_wake_a_blocked_put(interp):
    q = I.create_queue(1, unbounditems=I.UNBOUND_REMOVE)
    interp.call(interp_tasks.put_all, q, ["x"])
    t = block_in(q.put, "waiting", timeout=30)
    assert not t.outcome
    interp.close()
    t.join(30)
    assert t.outcome == [None]
    assert drain(q) == ["waiting"]


def test_unbound_marker_is_the_same_object_in_every_get(interp):
    q = I.create_queue(unbounditems=I.UNBOUND)
    interp.call(interp_tasks.put_all, q, [1, 2, 3])
    interp.close()
    assert [q.get_nowait() is I.UNBOUND for _ in range(3)] == [True, True, True]


# ---------------------------------------------------------------------------
# Many interpreters x many threads: exact counts
# ---------------------------------------------------------------------------

PRODUCERS = 4  # interpreters
THREADS = 3  # producer threads in each
N = 400  # items per producer thread


def _start_producers(interps, q):
    """In each interpreter: THREADS threads, some through call_in_thread, some exec-ing a
    loop in a thread of ours. Returns the threads and the producer names."""
    threads, names = [], []
    for k, interp in enumerate(interps):
        interp.prepare_main(q=q, n=N)
        for t in range(THREADS):
            name = f"i{k}t{t}"
            names.append(name)
            if t % 2 == 0:
                threads.append(interp.call_in_thread(interp_tasks.produce, q, name, N))
            else:
                code = f"for i in range(n):\n    q.put(({name!r}, i))"
                th = threading.Thread(target=interp.exec, args=(code,))
                th.start()
                threads.append(th)
    return threads, names


def test_many_interpreters_many_threads_one_consumer_keeps_each_producers_order(make_interp):
    interps = [make_interp() for _ in range(PRODUCERS)]
    q = I.create_queue()
    threads, names = _start_producers(interps, q)
    last = {name: -1 for name in names}
    for _ in range(len(names) * N):
        name, i = q.get(timeout=60)
        assert i == last[name] + 1, (name, i, last[name])
        last[name] = i
    for t in threads:
        t.join(60)
    assert all(v == N - 1 for v in last.values())
    assert q.empty()


@pytest.mark.parametrize("maxsize", [0, 8])
def test_many_interpreters_many_threads_many_consumers_exact_counts(make_interp, maxsize):
    interps = [make_interp() for _ in range(PRODUCERS)]
    q = I.create_queue(maxsize)
    consumers = 3
    seen = [[] for _ in range(consumers)]

    def consume(k):
        while True:
            item = q.get(timeout=60)
            if item is None:
                return
            seen[k].append(item)

    consumer_threads = [threading.Thread(target=consume, args=(k,)) for k in range(consumers)]
    for t in consumer_threads:
        t.start()
    threads, names = _start_producers(interps, q)
    for t in threads:
        t.join(120)
    for _ in range(consumers):
        q.put(None)
    for t in consumer_threads:
        t.join(60)
    everything = [item for part in seen for item in part]
    assert len(everything) == len(names) * N
    assert sorted(everything) == sorted((name, i) for name in names for i in range(N))
    # Within one consumer, the items of one producer stay in order.
    for part in seen:
        for name in names:
            mine = [i for n, i in part if n == name]
            assert mine == sorted(mine)


def test_consumers_in_interpreters_producers_in_main_exact_counts(make_interp):
    interps = [make_interp() for _ in range(3)]
    q = I.create_queue(16)
    out = I.create_queue()
    threads = [i.call_in_thread(interp_tasks.consume_until_none, q, out) for i in interps]
    producers = [threading.Thread(target=lambda k=k: [q.put((k, i)) for i in range(500)]) for k in range(4)]
    for t in producers:
        t.start()
    for t in producers:
        t.join(60)
    for _ in interps:
        q.put(None)
    counts = [out.get(timeout=60) for _ in interps]
    for t in threads:
        t.join(60)
    assert sum(counts) == 4 * 500
    assert q.empty()


def test_ping_pong_between_two_interpreters(make_interp):
    a, b = make_interp(), make_interp()
    ab, ba = I.create_queue(1), I.create_queue(1)
    a.prepare_main(inbox=ba, outbox=ab)
    b.prepare_main(inbox=ab, outbox=ba)
    ta = threading.Thread(target=a.exec, args=("outbox.put(0)\nwhile True:\n    x = inbox.get()\n"
                                              "    if x >= 1000:\n        break\n    outbox.put(x + 1)",))
    tb = threading.Thread(target=b.exec, args=("while True:\n    x = inbox.get()\n    outbox.put(x + 1)\n"
                                              "    if x + 1 >= 1000:\n        break",))
    ta.start()
    tb.start()
    ta.join(60)
    tb.join(60)
    assert not ta.is_alive() and not tb.is_alive()
    assert ab.empty() and ba.empty()


def test_unbound_behaviour_for_an_interpreter_made_by_the_stdlib():
    _interpreters = pytest.importorskip("_interpreters")  # 3.13+
    q = I.create_queue(unbounditems=I.UNBOUND_REMOVE)
    iid = _interpreters.create()
    try:
        _interpreters.set___main___attrs(iid, {"path": tuple(sys.path), "blob": pickle.dumps(q)})
        failure = _interpreters.run_string(
            iid, "import sys, pickle\nsys.path[:] = path\nq = pickle.loads(blob)\nq.put('x')\ndel q")
        assert failure is None, failure
        assert q.qsize() == 1
    finally:
        _interpreters.destroy(iid)
    assert q.qsize() == 0
