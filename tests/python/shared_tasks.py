"""Functions that the shared-memory and synchronisation tests run in workers and
interpreters (test_shared_buffer.py, test_shared_sync.py).

Workers import this module by name (tests/python is on their sys.path), so
everything is defined at module level and imports only the standard library and
interpool. Module globals are per interpreter.
"""

from __future__ import annotations

import time

import interpool

#: Objects this interpreter keeps alive (see keep / kept).
KEPT: list = []


# --- buffers ---------------------------------------------------------------------


def write(buf, offset, data):
    """Writes `data` at `offset` of a SharedBuffer (or memoryview); returns its length."""
    memoryview(buf)[offset:offset + len(data)] = data
    return len(data)


def read(buf, start=0, stop=None):
    """bytes of buf[start:stop]."""
    return bytes(memoryview(buf)[start:stop])


def make_buffer(data):
    """A SharedBuffer made here, holding `data`: it crosses back as a handle."""
    return interpool.SharedBuffer.from_bytes(data)


def echo(obj):
    return obj


def view_info(view):
    """What a memoryview looks like on this side."""
    return {
        "type": type(view).__name__,
        "format": view.format,
        "itemsize": view.itemsize,
        "shape": list(view.shape),
        "strides": list(view.strides),
        "readonly": view.readonly,
        "items": view.tolist(),
        "obj": type(view.obj).__name__,
    }


def set_item(view, index, value):
    """view[index] = value (a typed memoryview that crossed)."""
    view[index] = value
    return True


def fill_ints(buf, start, stop, value):
    """ints[i] = value * i for start <= i < stop, on buf seen as 64-bit ints."""
    ints = memoryview(buf).cast("q")
    for i in range(start, stop):
        ints[i] = value * i
    return stop - start


def sum_ints(buf, start, stop):
    """sum of buf's 64-bit ints [start, stop)."""
    return sum(memoryview(buf).cast("q")[start:stop])


def shared_sum(start, stop):
    """Sum of interpool.shared['data'] (a SharedBuffer of 64-bit ints), [start, stop)."""
    return sum(memoryview(interpool.shared["data"]).cast("q")[start:stop])


def read_shared_after(barrier, key):
    """Once every worker has one such task: (this interpreter's id, bytes of
    interpool.shared[key])."""
    barrier.wait(timeout=60)
    return interpool._interpool.interpreter_id(), bytes(interpool.shared[key])


def keep(obj):
    """Keeps obj alive in this interpreter (until forget())."""
    KEPT.append(obj)
    return len(KEPT)


def kept_bytes(index=-1):
    return bytes(KEPT[index])


def forget():
    KEPT.clear()


def holder(buf):
    """An object of a module class holding a buffer: it crosses by pickle, the buffer beside it."""
    return Holder(buf)


class Holder:
    """A plain object with a SharedBuffer in it."""

    def __init__(self, buf):
        self.buf = buf

    def first(self):
        return self.buf[0]


# --- contention -------------------------------------------------------------------


def start_together(barrier):
    """Every task of a contention test starts once all have arrived."""
    if barrier is not None:
        barrier.wait(timeout=60)


def locked_increments(buf, lock, n, barrier=None):
    """n times: under `lock`, ints[0] += 1 (a read-modify-write that races without it)."""
    ints = memoryview(buf).cast("q")
    start_together(barrier)
    for _ in range(n):
        with lock:
            ints[0] += 1
    return n


def rlock_increments(buf, rlock, n, barrier=None):
    """Like locked_increments, taking the RLock twice (nested) each time."""
    ints = memoryview(buf).cast("q")
    start_together(barrier)
    for _ in range(n):
        with rlock:
            with rlock:
                ints[0] += 1
    return n


def atomic_increments(counter, n, barrier=None):
    """n times counter.add(1); returns the sum of the values add() returned."""
    start_together(barrier)
    total = 0
    for _ in range(n):
        total += counter.add(1)
    return total


def fetch_add_increments(counter, n, barrier=None):
    """n times counter.fetch_add(1): the old values, which are all distinct across workers."""
    start_together(barrier)
    return [counter.fetch_add(1) for _ in range(n)]


def cas_increments(counter, n, barrier=None):
    """n increments by compare_exchange loops; returns how many attempts failed."""
    start_together(barrier)
    failed = 0
    for _ in range(n):
        while True:
            current = counter.load()
            if counter.compare_exchange(current, current + 1):
                break
            failed += 1
    return failed


def semaphore_work(sem, active, peak, n, barrier=None):
    """n times: inside the semaphore, count the threads inside and record the peak."""
    start_together(barrier)
    for _ in range(n):
        with sem:
            inside = active.add(1)
            while True:
                seen = peak.load()
                if inside <= seen or peak.compare_exchange(seen, inside):
                    break
            time.sleep(0.0002)
            active.add(-1)
    return n


def barrier_rounds(barrier, buf, index, rounds):
    """Each round: write this worker's slot, meet at the barrier, check every slot of
    the round is written, meet again. Returns the arrival indices seen."""
    ints = memoryview(buf).cast("q")
    parties = barrier.parties
    seen = []
    for r in range(1, rounds + 1):
        ints[index] = r
        seen.append(barrier.wait(timeout=60))
        if any(ints[i] < r for i in range(parties)):
            raise AssertionError(f"round {r}: a slot was not written before the barrier let go")
        barrier.wait(timeout=60)
    return seen


def event_wait(event, timeout=None):
    """event.wait(timeout) -> (flag, seconds waited)."""
    t0 = time.monotonic()
    flag = event.wait(timeout)
    return flag, time.monotonic() - t0


def event_set_later(event, seconds):
    time.sleep(seconds)
    event.set()
    return True


def lock_acquire(lock, blocking=True, timeout=-1):
    """lock.acquire(...) -> (taken, seconds waited)."""
    t0 = time.monotonic()
    taken = lock.acquire(blocking, timeout)
    return taken, time.monotonic() - t0


def lock_acquire_announced(started, lock):
    """Sets `started` (an interpool Event), then lock.acquire() -> (taken, seconds waited)."""
    started.set()
    return lock_acquire(lock)


def lock_release(lock):
    lock.release()
    return True


def try_release(lock):
    """lock.release() -> None, or the exception's type name and message."""
    try:
        lock.release()
    except Exception as e:  # noqa: BLE001
        return type(e).__name__, str(e)
    return None


def barrier_wait(barrier, timeout=None):
    """barrier.wait(timeout) -> the index, or the exception's type name."""
    try:
        return barrier.wait(timeout)
    except Exception as e:  # noqa: BLE001
        return type(e).__name__


def sum_range(buf, start, stop):
    """Sum of the bytes buf[start:stop]."""
    return sum(memoryview(buf)[start:stop])
