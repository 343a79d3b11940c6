"""Functions that the extension tests run inside Pool workers.

Workers import this module by name ("ext_tasks"), so it must stay importable
from tests/python (conftest.py puts that directory on sys.path, and the tests
pass sys.path to Pool). Everything here is module level on purpose: that is how
a worker finds a function from (module, qualname).
"""

import sys
import time

import interpool._interpool as ip

# Set per worker by the initializers (see set_state / get_state).
STATE = None
INIT_CALLS = 0


# --- plain results -----------------------------------------------------------


def add(a, b):
    return a + b


def square(x):
    return x * x


def echo(*args, **kwargs):
    """Returns what it was called with, so tests can check how arguments crossed."""
    return [args, kwargs]


def describe(*args, **kwargs):
    """The exact type names of the arguments as the worker sees them."""
    return (
        [type(a).__name__ for a in args],
        {k: type(v).__name__ for k, v in kwargs.items()},
    )


def sleep_then(seconds, value):
    time.sleep(seconds)
    return value


def interp_id():
    return ip.interpreter_id()


def worker_sys_path():
    return list(sys.path)


def module_identity():
    """Ids of this interpreter's extension objects, to compare with the main interpreter's."""
    return {
        "interpreter": ip.interpreter_id(),
        "module": id(ip),
        "Queue": id(ip.Queue),
        "QueueEmpty": id(ip.QueueEmpty),
        "NotShareableError": id(ip.NotShareableError),
    }


class Calc:
    """For qualnames with a dot: "Calc.triple", "Calc.Inner.negate"."""

    factor = 3

    @staticmethod
    def triple(x):
        return 3 * x

    @classmethod
    def scale(cls, x):
        return cls.factor * x

    class Inner:
        @staticmethod
        def negate(x):
            return -x


NOT_CALLABLE = 42


# --- errors ------------------------------------------------------------------


class HelperError(Exception):
    """A user-defined exception that pickles: it must come back as this type."""


def raise_value_error(message):
    raise ValueError(message)


def raise_helper_error(message):
    raise HelperError(message)


def raise_chained():
    try:
        {}["missing"]
    except KeyError as e:
        raise RuntimeError("outer failure") from e


def raise_local_error(message):
    """Raises an exception whose class cannot be found by pickle (a local class)."""

    class LocalError(Exception):
        pass

    raise LocalError(message)


class TwoArgError(Exception):
    """Pickles, but cannot be rebuilt: unpickling calls TwoArgError(a) only."""

    def __init__(self, a, b):
        super().__init__(a)
        self.b = b


def raise_two_arg_error(a, b):
    raise TwoArgError(a, b)


def return_lock():
    import threading

    return threading.Lock()


def return_nested_unshareable():
    import threading

    return {"ok": [1, 2], "bad": [0, threading.Lock()]}


def make_not_shareable_inside():
    """Raises NotShareableError from code running in the worker."""
    import threading

    return ip.roundtrip(threading.Lock())


def raise_queue_empty():
    """Raises the worker's own QueueEmpty (a class of the worker's interpreter)."""
    return ip.Queue.create().get(block=False)


def raise_system_exit():
    raise SystemExit(3)


def raise_keyboard_interrupt():
    raise KeyboardInterrupt("from the worker")


# --- queues ------------------------------------------------------------------


def put_items(q, items, unbounditems=None):
    for item in items:
        q.put(item, unbounditems=unbounditems)
    return len(items)


def get_items(q, n, timeout=30):
    return [q.get(timeout=timeout) for _ in range(n)]


def queue_info(q):
    """What the worker sees of a queue it was given."""
    return {
        "type": type(q).__name__,
        "id": q.id,
        "maxsize": q.maxsize,
        "same_object_by_id": ip.queue_from_id(q.id) is q,
        "interpreter": ip.interpreter_id(),
    }


def echo_queue(q):
    """Returns the queue object itself: it goes back as a handle."""
    return q


def rendezvous(started, release, timeout=30):
    """Reports this worker's interpreter id, then waits to be released.

    Submitting `pool.size` of these and releasing them only once all have
    reported forces every worker to run one at the same time.
    """
    started.put(ip.interpreter_id())
    release.get(timeout=timeout)
    return ip.interpreter_id()


def state_rendezvous(started, release, timeout=30):
    started.put((ip.interpreter_id(), STATE, INIT_CALLS))
    release.get(timeout=timeout)
    return ip.interpreter_id()


# --- initializers ------------------------------------------------------------


def set_state(value, *, suffix=""):
    global STATE, INIT_CALLS
    INIT_CALLS += 1
    STATE = (value, suffix, ip.interpreter_id())


def get_state():
    return (STATE, INIT_CALLS, ip.interpreter_id())


def failing_initializer(message="initializer failed"):
    raise ValueError(message)


def make_queue_with(items, maxsize=0):
    """Creates a queue in the worker, fills it, and returns it (as a handle)."""
    q = ip.Queue.create(maxsize)
    for item in items:
        q.put(item)
    return q


def produce(q, start, count):
    """Puts start..start+count-1 (blocking when the queue is full)."""
    for i in range(start, start + count):
        q.put(i, timeout=60)
    return count


def consume_until_closed(q):
    """Gets until the queue is closed and drained; returns what it got."""
    got = []
    while True:
        try:
            got.append(q.get(timeout=60))
        except ip.QueueClosed:
            return got


def timed_get(q, timeout):
    """How long a get with this timeout waited in the worker before QueueEmpty."""
    t0 = time.monotonic()
    try:
        q.get(timeout=timeout)
    except ip.QueueEmpty:
        return time.monotonic() - t0
    return -1.0


def nested_pool_factorial(n):
    """Creates a Pool inside a worker, runs math.factorial there, shuts it down."""
    inner = ip.Pool(1)
    try:
        task = inner.submit("math", "factorial", (n,))
        return (ip.interpreter_id(), task.result(30))
    finally:
        inner.shutdown()


def write_file_after(path, delay, text):
    """Sleeps, then writes `text` to `path`: shows the task ran to its end."""
    time.sleep(delay)
    with open(path, "w") as f:
        f.write(text)
    return text


def put_in_queue(q, value):
    q.put(value)
