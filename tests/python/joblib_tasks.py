"""Task functions for test_joblib.py.

Module level on purpose: workers import them by module and name. This module
does not import joblib (only nested() does, in its body): on Python 3.12 joblib
cannot be imported in a worker (docs/joblib.md). The tasks that wait, wait for
files the test creates (a state), polling, with a limit so that a broken test
fails instead of hanging.
"""

import os
import time
import warnings

from interpool import interpreters

WAIT_LIMIT = 60.0


class TaskFailed(Exception):
    """Raised by fail_or_block: a type the test imports, to check it comes back as itself."""


def square(x):
    return x * x


def where(x):
    """(x, process id, id of the interpreter this ran in: 0 is the main one)."""
    return x, os.getpid(), interpreters.get_current().id


def touch(path, text=""):
    with open(path, "w") as f:
        f.write(text)


def wait_for(path, limit=WAIT_LIMIT):
    deadline = time.monotonic() + limit
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {limit} s")
        time.sleep(0.005)


def meet(i, parties, folder):
    """Says it started, then waits until `parties` calls have: they run at once."""
    touch(os.path.join(folder, f"started-{i}"))
    deadline = time.monotonic() + WAIT_LIMIT
    while sum(name.startswith("started-") for name in os.listdir(folder)) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{parties} calls never ran at once")
        time.sleep(0.005)
    return interpreters.get_current().id


def fail_or_block(i, folder):
    """Item 0 raises TaskFailed once item 1 runs; the others say they started,
    then wait for the file "release", and write how they ended."""
    if i == 0:
        wait_for(os.path.join(folder, "started-1"))
        raise TaskFailed("item 0 failed")
    try:
        # (Inside the try: an interruption that lands once the file exists,
        # before the write ends, must still leave "ended-i".)
        touch(os.path.join(folder, f"started-{i}"))
        wait_for(os.path.join(folder, "release"))
    except BaseException as e:
        touch(os.path.join(folder, f"ended-{i}"), type(e).__name__)
        raise
    touch(os.path.join(folder, f"ended-{i}"), "released")
    return i


def first_or_wait(i, folder):
    """Item 0 returns at once; the others wait for the file "release"."""
    if i != 0:
        wait_for(os.path.join(folder, "release"))
    return i


def nested(n):
    """Parallel calls made inside a worker: joblib's default one, and one that
    asks for the interpool backend. (outer interpreter id, the active backend's
    class name, the interpreters of the inner calls of each, the warnings).
    It imports joblib only here, as a call may: the worker has set joblib's
    configuration for nested calls all the same."""
    import joblib
    from joblib import Parallel, delayed

    import interpool.joblib  # noqa: F401  (the backend "interpool")

    outer = interpreters.get_current().id
    backend, _ = joblib.parallel.get_active_backend()
    inner = Parallel(n_jobs=2)(delayed(where)(j) for j in range(n))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        explicit = Parallel(backend="interpool", n_jobs=2)(delayed(where)(j) for j in range(n))
    return (outer, type(backend).__name__, [r[2] for r in inner], [r[2] for r in explicit],
            [str(w.message) for w in caught])


def read_shared(key):
    import interpool

    return interpool.shared[key]


def call_faulthandler():
    """What calling faulthandler does on a worker (CPython cannot load it there)."""
    import faulthandler

    try:
        faulthandler.is_enabled()
    except AttributeError as e:
        return str(e)
    return "called"


def numpy_sum(n):
    """Imports numpy, which refuses sub-interpreters: with fallback="process"
    the call runs again in a process. (sum of range(n), process id)."""
    import numpy

    return int(numpy.arange(n).sum()), os.getpid()
