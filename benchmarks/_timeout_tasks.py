"""Worker-side functions of benchmarks/bench_timeouts.py.

interpool's workers import this module by name; it stays light (time only).
The leading underscore keeps `make bench` from running it as a benchmark.
"""

import time


def stamp():
    """When the worker started this task (time.monotonic is one clock for every
    interpreter of the process)."""
    return time.monotonic()


def _busy(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def spin(seconds, started=None):
    """Pure Python work for `seconds`, interruptible at any bytecode; puts its
    start time on the queue `started` first, if given. The loop has a frame of
    its own, as user code's loops usually do."""
    if started is not None:
        started.put(time.monotonic())
    _busy(seconds)


def interpreter_id():
    """Which interpreter runs the task: the same one after a clean timeout."""
    from interpool import _interpool

    return _interpool.interpreter_id()
