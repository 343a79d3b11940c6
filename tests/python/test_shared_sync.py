"""interpool.Lock, RLock, Event, Semaphore, BoundedSemaphore, Barrier and AtomicInt:
threading's behaviour and errors in one interpreter, the same objects crossing to
workers and interpreters by reference, timeouts, waits that release the GIL, and
every primitive under contention from many workers with exact counts.

Ctrl-C during a wait runs in a process of its own (scripts/shared_sigint.py).
"""

import pickle
import threading
import time

import pytest

import interpool
from interpool import interpreters as I

import shared_tasks
from support import asleep, ctrl_c, wait_until, worker_threads

pytestmark = pytest.mark.usefixtures("no_interpreter_left_open")

# Upper bound on how late a timed wait may return, on a small busy machine (or under
# ASan): only a hang exceeds it. The lower bounds stay strict.
SLACK = 2.0
WORKERS = 4
INCREMENTS = 2000

KINDS = [interpool.Lock, interpool.RLock, interpool.Event, interpool.Semaphore,
         interpool.BoundedSemaphore, lambda: interpool.Barrier(2), interpool.AtomicInt]


@pytest.fixture(scope="module")
def ex4():
    """4 workers for the contention tests (more workers than cores: they contend)."""
    executor = interpool.Executor(WORKERS)
    yield executor
    executor.shutdown(wait=True, cancel_futures=True)


def together(ex, fn, *args, workers=WORKERS):
    """Runs fn(*args, barrier) on `workers` workers at once; returns the results."""
    barrier = interpool.Barrier(workers)
    futures = [ex.submit(fn, *args, barrier) for _ in range(workers)]
    return [f.result(timeout=120) for f in futures]


# ---------------------------------------------------------------------------
# Crossing
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("make", KINDS)
def test_crosses_by_reference(make, make_executor):
    obj = make()
    assert I.is_shareable(obj)
    assert interpool._interpool.roundtrip(obj) == obj
    assert pickle.loads(pickle.dumps(obj)) == obj
    ex = make_executor(1)
    assert ex.submit(shared_tasks.echo, obj).result(timeout=60) == obj
    assert obj != make()


def test_names_exported():
    for name in ("SharedBuffer", "Lock", "RLock", "Event", "Semaphore", "BoundedSemaphore",
                 "Barrier", "AtomicInt", "BrokenBarrierError"):
        assert name in interpool.__all__ and hasattr(interpool, name)
    assert interpool.BrokenBarrierError is threading.BrokenBarrierError
    assert issubclass(interpool.BoundedSemaphore, interpool.Semaphore)


# ---------------------------------------------------------------------------
# Lock
# ---------------------------------------------------------------------------


def test_lock_basics():
    lock = interpool.Lock()
    assert not lock.locked()
    assert lock.acquire() is True
    assert lock.locked()
    assert lock.acquire(False) is False
    assert lock.acquire(blocking=False) is False
    lock.release()
    with lock:
        assert lock.locked()
    assert not lock.locked()
    assert "unlocked" in repr(lock)


def test_lock_errors_are_threadings():
    lock = interpool.Lock()
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        lock.release()
    with pytest.raises(ValueError, match="can't specify a timeout for a non-blocking call"):
        lock.acquire(False, 1)
    with pytest.raises(ValueError, match="timeout value must be a non-negative number"):
        lock.acquire(True, -2)
    with pytest.raises(TypeError):
        interpool.Lock(1)


BAD_TIMEOUTS = {
    "Event.wait(nan)": lambda: interpool.Event().wait(float("nan")),
    "Semaphore.acquire(timeout=nan)": lambda: interpool.Semaphore(0).acquire(timeout=float("nan")),
    "Barrier.wait(nan)": lambda: interpool.Barrier(2).wait(float("nan")),
    "Barrier(2, timeout=nan)": lambda: interpool.Barrier(2, timeout=float("nan")),
    "Lock.acquire(timeout=nan)": lambda: interpool.Lock().acquire(timeout=float("nan")),
    "RLock.acquire(timeout=-2)": lambda: interpool.RLock().acquire(timeout=-2),
    "Queue.get(timeout=-2)": lambda: I.create_queue().get(timeout=-2),
    "Queue.put(1, timeout=nan)": lambda: I.create_queue().put(1, timeout=float("nan")),
}


@pytest.mark.parametrize("call", BAD_TIMEOUTS.values(), ids=BAD_TIMEOUTS.keys())
def test_a_bad_timeout_is_refused_with_one_message_naming_it(call):
    # Read in one place for every type: what it takes, and the value it got.
    with pytest.raises(ValueError, match=r"^timeout value must be a (non-negative )?number or "
                                         r"(None|-1), not (nan|-2)$"):
        call()


def test_lock_timeout_is_honoured():
    lock = interpool.Lock()
    lock.acquire()
    t0 = time.monotonic()
    assert lock.acquire(timeout=0.1) is False
    waited = time.monotonic() - t0
    assert 0.1 <= waited < 0.1 + SLACK
    lock.release()


def test_lock_held_in_main_is_seen_by_a_worker(make_executor):
    ex = make_executor(1)
    lock = interpool.Lock()
    lock.acquire()
    taken, waited = ex.submit(shared_tasks.lock_acquire, lock, True, 0.1).result(timeout=60)
    assert taken is False and waited >= 0.1
    # threading.Lock may be released by any thread: here, by another interpreter.
    assert ex.submit(shared_tasks.lock_release, lock).result(timeout=60)
    assert not lock.locked()
    assert ex.submit(shared_tasks.try_release, lock).result(timeout=60) == (
        "RuntimeError", "release unlocked lock")


def test_waiter_wakes_when_another_interpreter_releases(make_executor, tmp_path):
    ex = make_executor(1)
    [worker] = worker_threads(ex, tmp_path / "workers")
    lock = interpool.Lock()
    lock.acquire()
    started = interpool.Event()
    future = ex.submit(shared_tasks.lock_acquire_announced, started, lock)
    assert started.wait(60)  # the worker may start late (a new interpreter, a slow build)
    # Announced, it has nothing left to do but acquire: asleep while still running
    # the task (asked second) means waiting there.
    wait_until(lambda: asleep(worker) and future.running(), what="the worker to wait for the lock")
    assert not future.done()
    lock.release()
    taken, _ = future.result(timeout=60)
    assert taken
    assert lock.locked()  # the worker holds it now
    lock.release()


def test_waiting_releases_the_gil():
    lock = interpool.Lock()
    lock.acquire()
    progress = []
    waiter = threading.Thread(target=lambda: progress.append(lock.acquire(timeout=0.5)))
    waiter.start()
    count = 0
    t0 = time.monotonic()
    while waiter.is_alive() and time.monotonic() - t0 < 5:
        count += 1  # this thread runs while the other waits
    waiter.join()
    assert progress == [False]
    assert count > 1000
    lock.release()


def test_lock_contention_exact_count(ex4):
    buf = interpool.SharedBuffer(8)
    lock = interpool.Lock()
    assert together(ex4, shared_tasks.locked_increments, buf, lock, INCREMENTS) == \
        [INCREMENTS] * WORKERS
    assert buf.cast("q")[0] == WORKERS * INCREMENTS
    assert not lock.locked()


# ---------------------------------------------------------------------------
# RLock
# ---------------------------------------------------------------------------


def test_rlock_is_reentrant():
    rlock = interpool.RLock()
    assert rlock.acquire() and rlock.acquire()
    assert rlock._is_owned() and rlock.locked()
    assert "depth=2" in repr(rlock)
    rlock.release()
    assert rlock.locked()
    rlock.release()
    assert not rlock.locked() and not rlock._is_owned()
    with pytest.raises(RuntimeError, match="cannot release un-acquired lock"):
        rlock.release()


def test_rlock_owner_is_thread_and_interpreter(interp):
    rlock = interpool.RLock()
    rlock.acquire()
    # Another thread of this interpreter does not own it.
    errors = []
    other = threading.Thread(target=lambda: errors.append(shared_tasks.try_release(rlock)))
    other.start()
    other.join()
    assert errors == [("RuntimeError", "cannot release un-acquired lock")]
    assert rlock.acquire(timeout=0.05)  # this thread still owns it: re-entered
    rlock.release()
    # The same OS thread inside another interpreter is another owner.
    assert interp.call(shared_tasks.try_release, rlock) == (
        "RuntimeError", "cannot release un-acquired lock")
    taken, waited = interp.call(shared_tasks.lock_acquire, rlock, True, 0.05)
    assert taken is False and waited >= 0.05
    rlock.release()
    assert interp.call(shared_tasks.lock_acquire, rlock, False) == (True, pytest.approx(0, abs=1))
    assert rlock.locked() and not rlock._is_owned()
    assert interp.call(shared_tasks.lock_release, rlock)


def test_rlock_contention_exact_count(ex4):
    buf = interpool.SharedBuffer(8)
    rlock = interpool.RLock()
    together(ex4, shared_tasks.rlock_increments, buf, rlock, INCREMENTS)
    assert buf.cast("q")[0] == WORKERS * INCREMENTS
    assert not rlock.locked()


# ---------------------------------------------------------------------------
# Event
# ---------------------------------------------------------------------------


def test_event_basics():
    event = interpool.Event()
    assert not event.is_set()
    assert event.wait(0) is False
    event.set()
    assert event.is_set() and event.wait() is True and event.wait(0.01) is True
    event.clear()
    assert not event.is_set()
    assert "unset" in repr(event)


def test_event_timeout_is_honoured():
    event = interpool.Event()
    t0 = time.monotonic()
    assert event.wait(0.1) is False
    assert 0.1 <= time.monotonic() - t0 < 0.1 + SLACK
    with pytest.raises(ValueError):
        event.wait(float("nan"))


def test_event_set_in_main_wakes_every_worker(ex4, tmp_path):
    workers = worker_threads(ex4, tmp_path / "workers")
    assert len(set(workers)) == WORKERS
    event = interpool.Event()
    futures = [ex4.submit(shared_tasks.event_wait, event, 30) for _ in range(WORKERS)]
    # Each worker runs one (none can end before the set), so all running and
    # all asleep means all four wait on the event.
    wait_until(lambda: all(f.running() for f in futures) and all(asleep(w) for w in workers),
               what="every worker to wait on the event")
    assert not any(f.done() for f in futures)
    event.set()
    for f in futures:
        flag, waited = f.result(timeout=60)
        assert flag is True and waited < 30


def test_event_set_by_a_worker_wakes_main(make_executor):
    ex = make_executor(1)
    event = interpool.Event()
    ex.submit(shared_tasks.event_set_later, event, 0.1)
    assert event.wait(30) is True


# ---------------------------------------------------------------------------
# Semaphore and BoundedSemaphore
# ---------------------------------------------------------------------------


def test_semaphore_basics_and_errors():
    sem = interpool.Semaphore(2)
    assert sem.acquire() and sem.acquire(timeout=0)
    assert sem.acquire(False) is False
    t0 = time.monotonic()
    assert sem.acquire(timeout=0.1) is False
    assert 0.1 <= time.monotonic() - t0 < 0.1 + SLACK
    sem.release(2)
    assert sem.acquire(False) and sem.acquire(False)
    with pytest.raises(ValueError, match="n must be one or more"):
        sem.release(0)
    with pytest.raises(ValueError, match="can't specify timeout for non-blocking acquire"):
        sem.acquire(False, 1)
    with pytest.raises(ValueError, match="semaphore initial value must be >= 0"):
        interpool.Semaphore(-1)
    with interpool.Semaphore(1) as entered:
        assert entered is True
    assert "value=0" in repr(sem)


def test_bounded_semaphore():
    sem = interpool.BoundedSemaphore(1)
    with pytest.raises(ValueError, match="Semaphore released too many times"):
        sem.release()
    sem.acquire()
    sem.release()
    assert isinstance(sem, interpool.Semaphore)
    assert type(interpool._interpool.roundtrip(sem)) is interpool.BoundedSemaphore


def test_semaphore_bounds_concurrency_across_workers(ex4):
    sem = interpool.Semaphore(2)
    active, peak = interpool.AtomicInt(), interpool.AtomicInt()
    together(ex4, shared_tasks.semaphore_work, sem, active, peak, 200)
    assert active.load() == 0
    assert 1 <= peak.load() <= 2
    assert sem.acquire(False) and sem.acquire(False) and not sem.acquire(False)


# ---------------------------------------------------------------------------
# Barrier
# ---------------------------------------------------------------------------


def test_barrier_basics_and_errors():
    barrier = interpool.Barrier(1)
    assert barrier.parties == 1 and barrier.n_waiting == 0 and not barrier.broken
    assert barrier.wait() == 0
    with pytest.raises(ValueError, match="parties must be > 0"):
        interpool.Barrier(0)
    with pytest.raises(TypeError, match="takes no action"):
        interpool.Barrier(2, action=print)
    assert "waiters=0/1" in repr(barrier)


def test_barrier_timeout_breaks_it():
    barrier = interpool.Barrier(2)
    t0 = time.monotonic()
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait(0.1)
    assert 0.1 <= time.monotonic() - t0 < 0.1 + SLACK
    assert barrier.broken
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait(5)  # broken: at once
    barrier.reset()
    assert not barrier.broken


def test_barrier_default_timeout():
    barrier = interpool.Barrier(2, timeout=0.05)
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait()


def test_barrier_broken_by_a_worker_timeout_reaches_other_waiters(make_executor):
    ex = make_executor(2)
    barrier = interpool.Barrier(3)
    patient = ex.submit(shared_tasks.barrier_wait, barrier, 30)
    # the patient waiter must be in the barrier before the hasty one times out
    wait_until(lambda: barrier.n_waiting == 1, 30, "the patient waiter to reach the barrier")
    hasty = ex.submit(shared_tasks.barrier_wait, barrier, 0.1)
    assert hasty.result(timeout=60) == "BrokenBarrierError"
    # well before the patient waiter's own 30-s timeout: woken by the hasty one's
    assert patient.result(timeout=15) == "BrokenBarrierError"
    assert barrier.broken


def test_barrier_abort_and_reset_wake_waiters(make_executor):
    ex = make_executor(1)
    barrier = interpool.Barrier(2)
    # each abort/reset must find the worker waiting in the barrier; results are asked
    # for well before the waiter's own 30-s timeout: woken by the abort/reset
    waiting = ex.submit(shared_tasks.barrier_wait, barrier, 30)
    wait_until(lambda: barrier.n_waiting == 1, 30, "the worker to wait in the barrier")
    barrier.abort()
    assert waiting.result(timeout=15) == "BrokenBarrierError"
    barrier.reset()
    waiting = ex.submit(shared_tasks.barrier_wait, barrier, 30)
    wait_until(lambda: barrier.n_waiting == 1, 30, "the worker to wait in the barrier")
    barrier.reset()  # those waiting get BrokenBarrierError, the barrier is usable again
    assert waiting.result(timeout=15) == "BrokenBarrierError"
    assert not barrier.broken
    waiting = ex.submit(shared_tasks.barrier_wait, barrier, 30)
    assert barrier.wait(30) in (0, 1)
    assert waiting.result(timeout=60) in (0, 1)


def test_barrier_rounds_across_workers(ex4):
    barrier = interpool.Barrier(WORKERS)
    buf = interpool.SharedBuffer(8 * WORKERS)
    rounds = 50
    futures = [ex4.submit(shared_tasks.barrier_rounds, barrier, buf, i, rounds)
               for i in range(WORKERS)]
    seen = [f.result(timeout=120) for f in futures]
    for r in range(rounds):
        assert sorted(s[r] for s in seen) == list(range(WORKERS))
    assert buf.cast("q").tolist() == [rounds] * WORKERS
    assert not barrier.broken and barrier.n_waiting == 0


# ---------------------------------------------------------------------------
# AtomicInt
# ---------------------------------------------------------------------------


def test_atomic_int_operations():
    a = interpool.AtomicInt(5)
    assert a.load() == 5
    assert a.add() == 6 and a.add(4) == 10  # the new value
    assert a.fetch_add(-3) == 10 and a.load() == 7  # the old value
    assert a.exchange(1) == 7
    assert a.compare_exchange(1, 2) is True and a.load() == 2
    assert a.compare_exchange(1, 3) is False and a.load() == 2
    a.store(-4)
    assert a.load() == -4
    assert "value=-4" in repr(a)
    assert interpool.AtomicInt().load() == 0


def test_atomic_int_range():
    top = interpool.AtomicInt(2**63 - 1)
    with pytest.raises(OverflowError):
        top.add()
    assert top.load() == 2**63 - 1
    with pytest.raises(OverflowError):
        interpool.AtomicInt(2**63)
    with pytest.raises(OverflowError):
        top.store(-(2**63) - 1)
    with pytest.raises(TypeError):
        top.add(1.5)
    with pytest.raises(TypeError):
        top.compare_exchange(1)


def test_atomic_add_contention_exact_count(ex4):
    counter = interpool.AtomicInt()
    sums = together(ex4, shared_tasks.atomic_increments, counter, INCREMENTS)
    total = WORKERS * INCREMENTS
    assert counter.load() == total
    # add() returned every value 1..total exactly once, across the workers.
    assert sum(sums) == total * (total + 1) // 2


def test_atomic_fetch_add_gives_distinct_tickets(ex4):
    counter = interpool.AtomicInt()
    tickets = together(ex4, shared_tasks.fetch_add_increments, counter, INCREMENTS)
    flat = sorted(t for ts in tickets for t in ts)
    assert flat == list(range(WORKERS * INCREMENTS))


def test_atomic_compare_exchange_contention(ex4):
    counter = interpool.AtomicInt()
    together(ex4, shared_tasks.cas_increments, counter, INCREMENTS)
    assert counter.load() == WORKERS * INCREMENTS


def test_sync_objects_through_prepare_main(interp):
    lock, event, counter = interpool.Lock(), interpool.Event(), interpool.AtomicInt()
    interp.prepare_main(lock=lock, event=event, counter=counter)
    interp.exec("with lock:\n    counter.add(5)\nevent.set()")
    assert event.is_set() and counter.load() == 5 and not lock.locked()


# ---------------------------------------------------------------------------
# Ctrl-C during a wait (a process of its own)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["lock", "rlock", "event", "semaphore", "barrier"])
def test_ctrl_c_interrupts_a_wait(mode):
    line, delay, out, err, returncode = ctrl_c("shared_sigint.py", mode)
    assert line.startswith("interrupted after "), (line, out, err)
    assert delay < 2.0, f"KeyboardInterrupt came {delay:.3f} s after SIGINT"
    assert out == "ok\n", (out, err)
    assert returncode == 3, err
    assert err == ""
