"""Soak: many executors, each with results, errors, cancels, interruptions and
time limits mixed, shut down in different ways; every future is accounted for."""

from __future__ import annotations

import importlib
import os
import random
import sys
import threading
import time
from concurrent.futures import CancelledError

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import interpool  # noqa: E402
import executor_tasks as T  # noqa: E402
from support import wait_until  # noqa: E402


def ending(fut) -> str:
    """How a future ended: 'ok', 'cancelled', or the exception's type name."""
    assert fut.done()
    if fut.cancelled():
        return "cancelled"
    exc = fut.exception(timeout=0)
    return "ok" if exc is None else type(exc).__name__


def test_soak_every_future_accounted_for():
    rng = random.Random(2024)
    seen: dict[str, int] = {}
    for cycle in range(12):
        # Each worker imports the tasks' module before its first task: that
        # import would count against the time limit (slow under ASan).
        ex = interpool.Executor(2, task_timeout=0.5, initializer=importlib.import_module,
                                initargs=("executor_tasks",))
        futs, expected = [], []
        for i in range(60):
            kind = rng.choice(["ok", "ok", "ok", "error", "spin", "cancel"])
            if kind == "ok":
                futs.append(ex.submit(T.square, i))
                expected.append({"ok"})
            elif kind == "error":
                futs.append(ex.submit(T.fail_on, i, i))
                expected.append({"ValueError"})
            elif kind == "spin":  # runs past the time limit
                futs.append(ex.submit(T.spin, 5))
                expected.append({"TimeoutError", "cancelled"})
            else:
                f = ex.submit(T.spin, 0.01)
                f.cancel()
                futs.append(f)
                expected.append({"ok", "cancelled"})
        mapped = ex.map(T.square, range(50))
        if cycle % 3 == 0:
            assert list(mapped) == [i * i for i in range(50)]
            ex.shutdown(wait=True)
        elif cycle % 3 == 1:
            ex.shutdown(wait=True, cancel_futures=True)
            for f in futs:  # spins still queued were cancelled rather than timed out
                assert f.done()
        else:
            stopper = threading.Thread(target=ex.terminate_workers)
            stopper.start()
            stopper.join(60)
            assert not stopper.is_alive()
            for e in expected:
                e.add("TaskInterrupted")
                e.add("cancelled")
        for f, allowed in zip(futs, expected):
            how = ending(f)
            assert how in allowed or (cycle % 3 == 1 and how == "cancelled"), (cycle, how, allowed)
            seen[how] = seen.get(how, 0) + 1
    assert seen.get("ok", 0) > 0 and seen.get("ValueError", 0) > 0
    assert seen.get("TimeoutError", 0) > 0 and seen.get("cancelled", 0) > 0


def test_shutdown_from_another_thread_while_map_is_consumed(make_executor):
    ex = make_executor(2)
    got, errors = [], []

    def consume():
        try:
            for x in ex.map(T.spin, [0.05] * 200, chunksize=1):
                got.append(x)
        except CancelledError as e:
            errors.append(e)

    t = threading.Thread(target=consume)
    t.start()
    # shut down once the consumer has a first result, with most of the map still to come
    wait_until(lambda: got or errors, 30, "the consumer's first result")
    t0 = time.monotonic()
    ex.shutdown(wait=True, cancel_futures=True)
    assert time.monotonic() - t0 < 30
    t.join(30)
    assert not t.is_alive()
    # The consumer got a prefix of the results, then a CancelledError: nothing hung.
    assert 0 < len(got) < 200 and len(errors) == 1
