"""interpool._interpool.Queue: FIFO, bounds, timeouts, close, ids, threads,
queues crossing into Pool workers, and interruption by signals."""

import collections
import fractions
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import interpool._interpool as ip
from support import (EXT_TASKS, asleep, assert_clean_exit_stderr, block_in, child_blocked,
                     run_script, wait_until, worker_thread)

# Timing bounds: lower bounds are strict (a wait must not end early), upper
# bounds are generous (the machine may be loaded).
SLACK = 1.0


def elapsed(fn, *args, **kwargs):
    t0 = time.monotonic()
    try:
        out = fn(*args, **kwargs)
    except BaseException as e:  # noqa: BLE001 - returned for the caller to check
        out = e
    return out, time.monotonic() - t0


def later(delay, fn, *args):
    """Runs fn(*args) on a thread after `delay` seconds; returns the started thread."""
    t = threading.Timer(delay, fn, args)
    t.daemon = True
    t.start()
    return t


# ---------------------------------------------------------------------------
# Basics
# ---------------------------------------------------------------------------


def test_exception_types():
    for exc in (ip.QueueEmpty, ip.QueueFull, ip.QueueClosed, ip.ItemInterpreterDestroyed):
        assert issubclass(exc, Exception)
    assert len({ip.QueueEmpty, ip.QueueFull, ip.QueueClosed}) == 3
    assert not issubclass(ip.QueueEmpty, ip.QueueFull)
    assert not issubclass(ip.QueueClosed, (ip.QueueEmpty, ip.QueueFull))


def test_fifo_order():
    q = ip.Queue.create()
    items = list(range(1000)) + ["a", ("t",), None]
    for x in items:
        q.put(x)
    assert q.qsize() == len(items)
    assert [q.get() for _ in items] == items
    assert q.empty()


def test_items_are_copies_of_any_kind():
    q = ip.Queue.create()
    payload = {"big": 2**100, "s": "\ud800x", "f": fractions.Fraction(3, 4), "b": bytearray(b"ab"), "n": [1, {2}]}
    q.put(payload)
    out = q.get()
    assert out == payload
    assert out is not payload and out["n"] is not payload["n"]
    assert type(out["f"]) is fractions.Fraction and type(out["b"]) is bytearray


def test_unshareable_item_is_refused_and_not_enqueued():
    q = ip.Queue.create()
    with pytest.raises(ip.NotShareableError) as info:
        q.put({"k": [1, threading.Lock()]})
    assert "the item['k'][1]" in str(info.value)
    assert q.qsize() == 0
    a = []
    a.append(a)
    with pytest.raises(ip.NotShareableError, match="cycle"):
        q.put(a)
    assert q.empty()


def test_attributes():
    q = ip.Queue.create(7)
    assert q.maxsize == 7
    assert isinstance(q.id, int)
    assert ip.Queue.create().maxsize == 0
    assert ip.Queue.create(maxsize=3).maxsize == 3
    assert ip.Queue.create(-5).maxsize == -5  # unbounded, shown as given (as the stdlib's)
    assert str(q.id) in repr(q)
    ids = {ip.Queue.create().id for _ in range(50)}
    assert len(ids) == 50


def test_queue_in_a_queue_is_the_same_object():
    outer, inner = ip.Queue.create(), ip.Queue.create()
    outer.put(inner)
    outer.put([inner, {"q": inner}])
    assert outer.get() is inner
    lst = outer.get()
    assert lst[0] is inner and lst[1]["q"] is inner


# ---------------------------------------------------------------------------
# Bounds
# ---------------------------------------------------------------------------


def test_bounded_full_and_empty():
    q = ip.Queue.create(2)
    assert q.empty() and not q.full()
    q.put(1)
    assert not q.empty() and not q.full()
    q.put(2)
    assert q.full() and q.qsize() == 2
    with pytest.raises(ip.QueueFull):
        q.put(3, block=False)
    with pytest.raises(ip.QueueFull):
        q.put(3, False)
    assert q.qsize() == 2  # the refused item was not added
    assert q.get() == 1
    assert not q.full()
    q.put(3, block=False)
    assert [q.get(), q.get()] == [2, 3]
    with pytest.raises(ip.QueueEmpty):
        q.get(block=False)


def test_unbounded_never_full():
    q = ip.Queue.create()
    for i in range(10_000):
        q.put(i, block=False)
    assert not q.full()
    assert q.qsize() == 10_000


def test_block_false_ignores_timeout():
    q = ip.Queue.create(1)
    q.put(0)
    out, t = elapsed(q.put, 1, False, 5.0)
    assert isinstance(out, ip.QueueFull)
    assert t < SLACK
    q.get()
    out, t = elapsed(q.get, False, 5.0)
    assert isinstance(out, ip.QueueEmpty)
    assert t < SLACK


def test_timeout_zero_does_not_wait():
    q = ip.Queue.create(1)
    out, t = elapsed(q.get, timeout=0)
    assert isinstance(out, ip.QueueEmpty) and t < SLACK
    q.put(1)
    out, t = elapsed(q.put, 2, timeout=0)
    assert isinstance(out, ip.QueueFull) and t < SLACK


def test_negative_timeout_is_an_error():
    q = ip.Queue.create(1)
    with pytest.raises(ValueError):
        q.get(timeout=-1)
    q.put(1)
    with pytest.raises(ValueError):
        q.put(2, timeout=-0.5)


def test_bad_arguments():
    q = ip.Queue.create()
    with pytest.raises(TypeError):
        q.get(timeout="soon")
    with pytest.raises(ValueError, match="unbounditems"):
        q.put(1, unbounditems=4)
    with pytest.raises(ValueError, match="unbounditems"):
        q.put(1, unbounditems=-1)
    # The policies' codes are no policy: a stray int or bool is refused.
    for code in (0, 1, True, False):
        with pytest.raises(ValueError, match=rf"^unbounditems must be .* not {code} \(type '(int|bool)'\)$"):
            q.put(1, unbounditems=code)
        with pytest.raises(ValueError, match="unbounditems"):
            ip.Queue.create(unbounditems=code)
    with pytest.raises(TypeError):
        q.put(1, 2, 3, 4)  # unbounditems is keyword-only
    assert q.empty()


# ---------------------------------------------------------------------------
# Timeouts
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [0.001, 0.05, 0.2])
def test_get_timeout_is_honoured(timeout):
    q = ip.Queue.create()
    out, t = elapsed(q.get, timeout=timeout)
    assert isinstance(out, ip.QueueEmpty)
    assert t >= timeout
    assert t < timeout + SLACK


@pytest.mark.parametrize("timeout", [0.001, 0.05, 0.2])
def test_put_timeout_is_honoured(timeout):
    q = ip.Queue.create(1)
    q.put("x")
    out, t = elapsed(q.put, "y", timeout=timeout)
    assert isinstance(out, ip.QueueFull)
    assert t >= timeout
    assert t < timeout + SLACK
    assert q.qsize() == 1


def test_integer_timeout_accepted():
    q = ip.Queue.create()
    later(0.05, q.put, "late")
    assert q.get(timeout=5) == "late"


def test_get_wakes_when_an_item_arrives():
    q = ip.Queue.create()
    later(0.1, q.put, "item")
    out, t = elapsed(q.get, timeout=30)
    assert out == "item"
    assert 0.05 <= t < 0.1 + SLACK


def test_put_wakes_when_space_frees():
    q = ip.Queue.create(1)
    q.put("first")
    later(0.1, q.get)
    out, t = elapsed(q.put, "second", timeout=30)
    assert out is None
    assert 0.05 <= t < 0.1 + SLACK
    assert q.get() == "second"


@pytest.mark.parametrize("timeout", [1e10, float("inf")])
def test_huge_timeout_waits(timeout):
    q = ip.Queue.create()
    putter = later(0.2, q.put, "late")
    try:
        out, t = elapsed(q.get, timeout=timeout)
    finally:
        putter.join(30)
    # Waiting (and getting the item) or refusing the timeout are both fine;
    # giving up at once is not.
    assert out == "late" or isinstance(out, (OverflowError, ValueError)), (out, t)


# ---------------------------------------------------------------------------
# Close
# ---------------------------------------------------------------------------


def test_close_refuses_puts_and_drains_gets():
    q = ip.Queue.create()
    q.put(1)
    q.put(2)
    q.close()
    with pytest.raises(ip.QueueClosed):
        q.put(3)
    with pytest.raises(ip.QueueClosed):
        q.put(3, block=False)
    assert q.get() == 1
    assert q.get(block=False) == 2
    for kwargs in ({}, {"block": False}, {"timeout": 10}):
        out, t = elapsed(q.get, **kwargs)
        assert isinstance(out, ip.QueueClosed)
        assert t < SLACK
    q.close()  # idempotent
    with pytest.raises(ip.QueueClosed):
        q.get()


def test_close_wakes_blocked_getters():
    q = ip.Queue.create()
    threads = [block_in(elapsed, q.get, timeout=30) for _ in range(3)]
    assert not any(t.outcome for t in threads)
    q.close()
    for t in threads:
        t.join(10)
    results = [r for t in threads for r in t.outcome]
    assert len(results) == 3
    for out, t in results:
        assert isinstance(out, ip.QueueClosed)
        assert t < 10


def test_close_wakes_blocked_putter():
    q = ip.Queue.create(1)
    q.put("kept")
    later(0.1, q.close)
    out, t = elapsed(q.put, "refused", timeout=30)
    assert isinstance(out, ip.QueueClosed)
    assert t < 10
    assert q.get() == "kept"
    with pytest.raises(ip.QueueClosed):
        q.get()


# ---------------------------------------------------------------------------
# Ids
# ---------------------------------------------------------------------------


def test_queue_from_id_identity():
    q = ip.Queue.create(3)
    assert ip.queue_from_id(q.id) is q
    assert ip.queue_from_id(q.id) is ip.queue_from_id(q.id)
    q.put("via id")
    assert ip.queue_from_id(q.id).get() == "via id"


def test_queue_constructor_takes_an_id():
    q = ip.Queue.create(3)
    assert ip.Queue(q.id) is q
    assert pickle.loads(pickle.dumps(q)) is q
    assert pickle.loads(pickle.dumps(q)).maxsize == 3
    with pytest.raises(TypeError):
        ip.Queue(id=q.id)  # positional only, like 3.14's Queue(id, /)
    with pytest.raises(TypeError):
        ip.Queue()
    with pytest.raises(TypeError, match="Queue.create"):
        ip.Queue(str(q.id))
    with pytest.raises(TypeError):
        ip.Queue(True)
    with pytest.raises(TypeError):
        ip.Queue(float(q.id))


@pytest.mark.parametrize("bad", [10**12, -1, 10**30])
def test_queue_constructor_with_an_unknown_id(bad):
    with pytest.raises(ip.QueueNotFoundError, match=f"queue {bad} not found"):
        ip.Queue(bad)
    assert issubclass(ip.QueueNotFoundError, LookupError)


def test_queue_constructor_after_the_queue_is_gone():
    qid = ip.Queue.create().id
    with pytest.raises(ip.QueueNotFoundError):
        ip.Queue(qid)


def test_queue_create_checks_its_arguments():
    with pytest.raises(TypeError):
        ip.Queue.create("3")
    with pytest.raises(TypeError):
        ip.Queue.create(3, ip.UNBOUND)  # unbounditems is keyword-only
    with pytest.raises(ValueError, match="unbounditems"):
        ip.Queue.create(unbounditems="drop")
    assert ip.Queue.create(unbounditems=ip.UNBOUND_REMOVE).maxsize == 0


def test_queue_from_id_unknown():
    with pytest.raises(LookupError):
        ip.queue_from_id(10**12)
    with pytest.raises(LookupError):
        ip.queue_from_id(-1)
    with pytest.raises(TypeError):
        ip.queue_from_id("1")


def test_queue_from_id_after_the_queue_is_gone():
    q = ip.Queue.create()
    qid = q.id
    del q
    with pytest.raises(LookupError):
        ip.queue_from_id(qid)


def test_queue_kept_alive_by_an_item_elsewhere():
    # A queue whose only reference is an item of another queue stays alive.
    holder = ip.Queue.create()
    q = ip.Queue.create()
    qid = q.id
    q.put("inside")
    holder.put(q)
    del q
    q2 = ip.queue_from_id(qid)
    assert q2.get() == "inside"
    assert holder.get() is q2


# ---------------------------------------------------------------------------
# Threads
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("maxsize", [0, 8])
def test_many_threads_exactly_once(maxsize):
    producers, consumers, per_producer = 4, 4, 2500
    q = ip.Queue.create(maxsize)
    received = [[] for _ in range(consumers)]
    errors = []

    def produce(p):
        try:
            for i in range(per_producer):
                q.put((p, i), timeout=60)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    def consume(c):
        try:
            while True:
                try:
                    received[c].append(q.get(timeout=60))
                except ip.QueueClosed:
                    return
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    cs = [threading.Thread(target=consume, args=(c,)) for c in range(consumers)]
    ps = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for t in cs + ps:
        t.start()
    for t in ps:
        t.join(60)
    q.close()
    for t in cs:
        t.join(60)
    assert not errors
    everything = [x for r in received for x in r]
    assert len(everything) == producers * per_producer
    assert collections.Counter(everything) == collections.Counter(
        (p, i) for p in range(producers) for i in range(per_producer)
    )
    # FIFO per producer as seen by each consumer.
    for r in received:
        for p in range(producers):
            seq = [i for (pp, i) in r if pp == p]
            assert seq == sorted(seq)


# ---------------------------------------------------------------------------
# Queues crossing into Pool workers
# ---------------------------------------------------------------------------


def test_worker_sees_the_same_queue(pool):
    q = ip.Queue.create(5)
    info = pool.submit(EXT_TASKS, "queue_info", (q,)).result(30)
    assert info["type"] == "Queue"
    assert info["id"] == q.id
    assert info["maxsize"] == 5
    assert info["same_object_by_id"] is True
    assert info["interpreter"] != ip.interpreter_id()


def test_worker_puts_parent_gets(pool):
    q = ip.Queue.create()
    items = [1, "two", (3.0, 4j), {"five": [6]}, 2**80, fractions.Fraction(1, 7), b"\x00", None]
    assert pool.submit(EXT_TASKS, "put_items", (q, items)).result(30) == len(items)
    got = [q.get(timeout=10) for _ in items]
    assert got == items
    assert [type(x) for x in got] == [type(x) for x in items]
    assert q.empty()


def test_parent_puts_worker_gets(pool):
    q = ip.Queue.create()
    items = list(range(20)) + ["x", ("y",)]
    for x in items:
        q.put(x)
    assert pool.submit(EXT_TASKS, "get_items", (q, len(items))).result(30) == items
    assert q.empty()


def test_worker_blocks_until_parent_puts(fresh_pool):
    pool = fresh_pool(1)
    worker = worker_thread(pool)
    q = ip.Queue.create()
    task = pool.submit(EXT_TASKS, "get_items", (q, 3))
    wait_until(lambda: task.running() and asleep(worker), what="the worker to block in get")
    assert not task.done()
    for x in "abc":
        q.put(x)
    assert task.result(30) == ["a", "b", "c"]


def test_queue_returned_by_worker_is_the_parent_object(pool):
    q = ip.Queue.create()
    assert pool.submit(EXT_TASKS, "echo_queue", (q,)).result(30) is q
    made = pool.submit(EXT_TASKS, "make_queue_with", (["p", "q"], 4)).result(30)
    assert type(made) is ip.Queue
    assert made.maxsize == 4
    assert ip.queue_from_id(made.id) is made
    assert [made.get(timeout=5), made.get(timeout=5)] == ["p", "q"]


def test_bounded_queue_between_workers(pool):
    # One worker produces, the other consumes, through a small bound.
    q = ip.Queue.create(4)
    consumer = pool.submit(EXT_TASKS, "consume_until_closed", (q,))
    producer = pool.submit(EXT_TASKS, "produce", (q, 0, 500))
    assert producer.result(60) == 500
    q.close()
    assert consumer.result(60) == list(range(500))


def test_timeout_in_worker(pool):
    waited = pool.submit(EXT_TASKS, "timed_get", (ip.Queue.create(), 0.05)).result(30)
    assert 0.05 <= waited < 0.05 + SLACK


def test_close_seen_by_worker(fresh_pool):
    pool = fresh_pool(1)
    worker = worker_thread(pool)
    q = ip.Queue.create()
    task = pool.submit(EXT_TASKS, "consume_until_closed", (q,))
    q.put(1)
    q.put(2)
    # The close then wakes a worker that waits for more.
    wait_until(lambda: task.running() and q.empty() and asleep(worker),
               what="the worker to take both items and block in get")
    q.close()
    assert task.result(30) == [1, 2]


def test_unbound_markers_cross_as_themselves(fresh_pool):
    """The markers pickle by name: each side gets its own interpreter's marker."""
    for marker in (ip.UNBOUND, ip.UNBOUND_ERROR, ip.UNBOUND_REMOVE):
        assert pickle.loads(pickle.dumps(marker)) is marker
    p = fresh_pool(1)
    q = ip.Queue.create()
    markers = [ip.UNBOUND, ip.UNBOUND_ERROR, ip.UNBOUND_REMOVE]
    # A worker puts with the policies it was given, and gives them back.
    assert p.submit(EXT_TASKS, "put_items", (q, ["a"], markers[1])).result(30) == 1
    assert p.submit(EXT_TASKS, "echo", (markers,)).result(30) == [(markers,), {}]


@pytest.mark.parametrize(
    "unbounditems, expected",
    [
        (None, ["a", "b"]),  # keep (the queue's default): items outlive the interpreter that put them
        (ip.UNBOUND, ["UNBOUND", "UNBOUND"]),  # replaced by the UNBOUND marker
        (ip.UNBOUND_ERROR, ["ItemInterpreterDestroyed", "ItemInterpreterDestroyed"]),
        (ip.UNBOUND_REMOVE, []),  # removed
    ],
)
def test_unbounditems_when_worker_interpreter_ends(fresh_pool, unbounditems, expected):
    p = fresh_pool(1)
    q = ip.Queue.create()
    q.put("from main", unbounditems=unbounditems)
    assert p.submit(EXT_TASKS, "put_items", (q, ["a", "b"], unbounditems)).result(30) == 2
    p.shutdown()  # the worker's interpreter is destroyed
    got = []
    while not q.empty():
        try:
            x = q.get(block=False)
            got.append("UNBOUND" if x is ip.UNBOUND else x)
        except ip.ItemInterpreterDestroyed:
            got.append("ItemInterpreterDestroyed")
    # The main interpreter's item is untouched, whatever its policy.
    assert got[0] == "from main"
    assert got[1:] == expected
    assert repr(ip.UNBOUND) == "UNBOUND"


def _stdlib_interpreter():
    """(low-level module, id, handle) of an isolated interpreter the standard library made."""
    try:
        import _interpreters as low  # 3.13
    except ImportError:
        import _xxsubinterpreters as low  # 3.12: the InterpreterID object is the handle

        handle = low.create(isolated=True)
        return low, int(handle), handle
    iid = low.create()
    return low, iid, iid


def _run_in(low, handle, code, **shared):
    failure = low.run_string(handle, code, shared)  # 3.12 raises instead of returning it
    assert failure is None, failure


@pytest.mark.parametrize(
    "unbounditems, expected",
    [
        (None, ["a", "b"]),
        ("UNBOUND", ["UNBOUND", "UNBOUND"]),
        ("UNBOUND_ERROR", ["ItemInterpreterDestroyed", "ItemInterpreterDestroyed"]),
        ("UNBOUND_REMOVE", []),
    ],
)
def test_unbounditems_when_a_stdlib_interpreter_ends(unbounditems, expected):
    # Told by the extension's module state, freed while that interpreter ends.
    # The policy crosses by its name (a stdlib interpreter shares str only).
    q = ip.Queue.create()
    q.put("from main", unbounditems=unbounditems and getattr(ip, unbounditems))
    low, iid, handle = _stdlib_interpreter()
    try:
        _run_in(low, handle, textwrap.dedent("""
            import os, pickle, sys
            sys.path[:] = path.split(os.pathsep)
            q = pickle.loads(blob)
            import interpool._interpool as ip
            policy = policy and getattr(ip, policy)
            q.put("a", unbounditems=policy)
            q.put("b", unbounditems=policy)
            del q
        """), path=os.pathsep.join(sys.path), blob=pickle.dumps(q), policy=unbounditems)
        assert q.qsize() == 3  # nothing happens while it lives
    finally:
        low.destroy(handle)
    got = []
    while not q.empty():
        try:
            x = q.get(block=False)
            got.append("UNBOUND" if x is ip.UNBOUND else x)
        except ip.ItemInterpreterDestroyed:
            got.append("ItemInterpreterDestroyed")
    assert got == ["from main"] + expected


def test_unbounditems_at_exit_of_main_and_stdlib_interpreters():
    # The notices at exit (the main interpreter's module, the interpreters the
    # runtime ends) come late in finalization: they must not crash or complain.
    proc = run_script(
        """
        import os, pickle, sys
        import interpool._interpool as ip
        try:
            import _interpreters as low
            made = low.create()
        except ImportError:
            import _xxsubinterpreters as low
            made = low.create(isolated=True)
        q = ip.Queue.create(unbounditems=ip.UNBOUND_REMOVE)
        kept = ip.Queue.create(unbounditems=ip.UNBOUND)
        for policy in (None, ip.UNBOUND, ip.UNBOUND_ERROR):
            q.put("main", unbounditems=policy)
        assert low.run_string(made, "import os, pickle, sys\\n"
                              "sys.path[:] = path.split(os.pathsep)\\n"
                              "from interpool._interpool import UNBOUND\\n"
                              "q = pickle.loads(blob)\\nq.put('sub')\\nq.put('sub', unbounditems=UNBOUND)",
                              {"path": os.pathsep.join(sys.path), "blob": pickle.dumps(q)}) is None
        kept.put(q)
        print(q.qsize(), flush=True)
        """,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "5\n"
    assert_clean_exit_stderr(proc.stderr)


# ---------------------------------------------------------------------------
# Signals
# ---------------------------------------------------------------------------


@pytest.fixture
def sigusr1():
    """Installs a SIGUSR1 handler for one test (main thread only) and restores the old one."""
    assert threading.current_thread() is threading.main_thread()
    old = signal.getsignal(signal.SIGUSR1)
    yield lambda handler: signal.signal(signal.SIGUSR1, handler)
    signal.signal(signal.SIGUSR1, old)


def test_signal_handler_runs_during_get_and_wait_resumes(sigusr1):
    calls = []
    sigusr1(lambda signum, frame: calls.append(signum))
    q = ip.Queue.create()
    later(0.1, os.kill, os.getpid(), signal.SIGUSR1)
    later(0.4, q.put, "after the signal")
    out, t = elapsed(q.get, timeout=30)
    assert out == "after the signal"
    assert calls == [signal.SIGUSR1]
    assert t >= 0.3


def test_signal_handler_runs_during_timed_get(sigusr1):
    calls = []
    sigusr1(lambda signum, frame: calls.append(time.monotonic()))
    q = ip.Queue.create()
    later(0.05, os.kill, os.getpid(), signal.SIGUSR1)
    out, t = elapsed(q.get, timeout=0.3)
    # The handler ran while waiting, and the wait still ended at its deadline.
    assert isinstance(out, ip.QueueEmpty)
    assert len(calls) == 1
    assert t >= 0.3


class Interrupted(Exception):
    pass


def _raise_interrupted(signum, frame):
    raise Interrupted("from the handler")


@pytest.mark.parametrize("op", ["get", "put"])
def test_exception_from_signal_handler_ends_the_wait(sigusr1, op):
    sigusr1(_raise_interrupted)
    q = ip.Queue.create(1)
    if op == "put":
        q.put("full")
    later(0.1, os.kill, os.getpid(), signal.SIGUSR1)
    if op == "get":
        out, t = elapsed(q.get, timeout=30)
    else:
        out, t = elapsed(q.put, "more", timeout=30)
    assert isinstance(out, Interrupted)
    assert t < 10
    # The queue is unchanged and still works.
    if op == "put":
        assert q.qsize() == 1
        assert q.get(timeout=5) == "full"
    else:
        assert q.qsize() == 0
        q.put("ok")
        assert q.get(timeout=5) == "ok"


CTRL_C_SCRIPT = """
import interpool._interpool as ip
{setup}
print("ready", flush=True)
{blocking_call}
print("not reached", flush=True)
"""


@pytest.mark.parametrize(
    "setup, blocking_call",
    [
        ("q = ip.Queue.create()", "q.get()"),
        ("q = ip.Queue.create()", "q.get(timeout=600)"),
        ("q = ip.Queue.create(1); q.put(0)", "q.put(1)"),
    ],
    ids=["get", "get-timeout", "put-full"],
)
def test_ctrl_c_interrupts_blocking_call(tmp_path, setup, blocking_call):
    script = tmp_path / "block.py"
    script.write_text(CTRL_C_SCRIPT.format(setup=setup, blocking_call=blocking_call))
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        wait_until(lambda: child_blocked(proc) or proc.poll() is not None,
                   what="the child to block")
        assert proc.poll() is None, "the child ended before blocking"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "KeyboardInterrupt" in err, err
    assert blocking_call in err  # the traceback points at the blocking call
    assert "not reached" not in out
    assert proc.returncode != 0
    assert took < 5


def test_keyboard_interrupt_in_subprocess_via_run_script():
    # The same, driven from inside the child: it signals itself while blocked.
    proc = run_script(
        """
        import os, signal, threading, time
        import interpool._interpool as ip
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        try:
            ip.Queue.create().get()
        except KeyboardInterrupt:
            print("interrupted after", round(time.monotonic() - t0, 3))
        """,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("interrupted after")
    assert float(proc.stdout.split()[-1]) < 5
