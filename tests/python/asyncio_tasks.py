"""Functions that the asyncio tests (test_executor_asyncio.py) run in worker interpreters.

Workers import them by module and name, so this module must be importable as
``asyncio_tasks`` (tests/python is on sys.path; workers get the parent's).
They report through interpool objects, which every interpreter shares: an
AtomicInt counts calls, an Event says that a task runs or lets one go on.
"""

from __future__ import annotations

import time


def count(counter, value=None):
    """Adds 1 to counter (an interpool.AtomicInt); returns value."""
    counter.add(1)
    return value


def wait_for(event, value=None, timeout=60.0):
    """Blocks until event (an interpool.Event) is set; returns value.
    Raises TimeoutError after `timeout` seconds, so a broken test cannot keep a
    worker forever."""
    if not event.wait(timeout):
        raise TimeoutError(f"the event was not set in {timeout} s")
    return value


def spin(started, finished, stop, seconds=60.0, value=None):
    """Adds 1 to `started`, runs Python code until `stop` (an interpool.Event)
    is set or `seconds` pass (an interruption stops it at its next bytecode),
    then adds 1 to `finished`; returns value."""
    started.add(1)
    end = time.monotonic() + seconds
    while time.monotonic() < end and not stop.is_set():
        pass
    finished.add(1)
    return value


def spin_item(i, started, finished, stop, seconds):
    """A map item: spin(started, finished, stop, seconds[i], i), so that each
    item has its own duration."""
    return spin(started, finished, stop, seconds[i], i)


def fail_first(i, started, finished, stop):
    """A map item: item 0 raises ValueError at once, the others spin for a minute."""
    if i == 0:
        raise ValueError("item 0 failed")
    return spin(started, finished, stop, 60.0, i)


def meet(barrier, timeout):
    """Waits at barrier (an interpool.Barrier of one party per worker), so that
    all of them pass only if every worker runs one of these at the same time;
    returns the id of this worker's interpreter."""
    from interpool import _interpool

    barrier.wait(timeout)
    return _interpool.interpreter_id()
