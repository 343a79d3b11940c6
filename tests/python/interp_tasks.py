"""Functions that the interpool.interpreters tests run inside sub-interpreters.

Interpreters made by interpool.interpreters.create() get the parent's sys.path,
and conftest.py puts this folder on it, so they import this module by name.
Everything here must import in an isolated sub-interpreter: standard library
and interpool only, nothing done at import time.
"""

import threading
import time


class CustomError(Exception):
    """An exception type defined in a module (its name and module cross)."""


class Point:
    """A plain class of a module: its instances cross by pickle."""

    def __init__(self, x, y):
        self.x = x
        self.y = y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __hash__(self):
        return hash((self.x, self.y))

    def norm1(self):
        return abs(self.x) + abs(self.y)


def add(a, b=0):
    return a + b


def echo_args(*args, **kwargs):
    return args, kwargs


def fail(message):
    raise CustomError(message)


def current_id():
    from interpool import interpreters

    return interpreters.get_current().id


def thread_ident():
    return threading.get_ident()


def main_attr(name):
    """The value of a name bound in this interpreter's __main__ (by prepare_main or exec)."""
    import __main__

    return getattr(__main__, name)


def main_has(name):
    import __main__

    return hasattr(__main__, name)


# -- queues ------------------------------------------------------------------------


def bind_global(name, value):
    """Stateless (it names builtins only): Interpreter.call runs it in the
    interpreter's __main__, as the standard library does."""
    globals()[name] = value


def global_named(name):
    return globals().get(name)


def module_of_the_call():
    return __name__  # a global of this module: it runs here


def put_all(q, items):
    for item in items:
        q.put(item)
    return len(items)


def get_n(q, n, timeout=30):
    return [q.get(timeout=timeout) for _ in range(n)]


def produce(q, producer, n):
    """Puts (producer, 0) ... (producer, n - 1)."""
    for i in range(n):
        q.put((producer, i))
    return n


def consume_until_none(q, out, ready=None):
    """Gets items of q until None; puts how many it got on `out`. With `ready`,
    puts its thread's native id there first, so that the test can see it block."""
    count = 0
    if ready is not None:
        import threading

        ready.put(threading.get_native_id())
    while q.get(timeout=60) is not None:
        count += 1
    out.put(count)
    return count


def echo_loop(requests, replies):
    """Replies to every request with the same item, until None."""
    while True:
        item = requests.get()
        if item is None:
            return
        replies.put(item)


def same_queue(a, b):
    """True if a and b are one object in this interpreter; and their id."""
    return a is b, a.id


def queue_back(q):
    return q


def queue_info(q):
    return q.id, q.maxsize, q.qsize(), type(q).__name__


def delayed_put(q, delay, item):
    time.sleep(delay)
    q.put(item)


def delayed_put_time(q, delay):
    """After `delay` s, puts the time.perf_counter() of the moment of the put (the
    clock is process-wide: comparable with the caller's)."""
    time.sleep(delay)
    q.put(time.perf_counter())


def timed_get(q, timeout):
    """Seconds a get with this timeout waited before QueueEmpty (or the item)."""
    from interpool import interpreters

    start = time.perf_counter()
    try:
        q.get(timeout=timeout)
    except interpreters.QueueEmpty:
        pass
    return time.perf_counter() - start


def put_with_unbound(q, item, mode_name):
    """Puts item with unbounditems=<constant named mode_name> (or None)."""
    from interpool import interpreters

    mode = None if mode_name is None else getattr(interpreters, mode_name)
    q.put(item, unbounditems=mode)


# -- interpreters inside interpreters -----------------------------------------------


def nested_create_and_call():
    """Creates an interpreter from this one, uses it, closes it."""
    from interpool import interpreters

    sub = interpreters.create()
    try:
        sub.prepare_main(x=20)
        sub.exec("y = x + 1")
        here = interpreters.get_current().id
        return {
            "parent": here,
            "sub": sub.id,
            "whence": sub.whence,
            "result": sub.call(add, 2, 3),
            "sub_current": sub.call(current_id),
            "y": sub.call(main_attr, "y"),
            "listed": sub in interpreters.list_all(),
        }
    finally:
        sub.close()


def identity_checks(main_id):
    """One Interpreter object per id in this interpreter too."""
    from interpool import interpreters

    main = interpreters.get_main()
    return {
        "main_is_same": interpreters.Interpreter(main_id) is main,
        "main_eq": main == interpreters.Interpreter(main_id),
        "current_is_same": interpreters.get_current() is interpreters.get_current(),
        "current_in_list": interpreters.get_current() in interpreters.list_all(),
    }


def environment_guarded():
    """True if environment changes and process spawns here take interpool's
    environment lock (subprocess imported afterwards uses the guarded fork_exec)."""
    import os
    import subprocess

    import _posixsubprocess

    calls = (os.putenv, os.unsetenv, os.posix_spawn, os.posix_spawnp,
             _posixsubprocess.fork_exec, subprocess._fork_exec)
    return all(getattr(f, "_interpool_guarded", False) for f in calls)


def lock_in_grid():
    """A result that cannot cross back, two steps inside it."""
    return {"grid": [0, threading.Lock()]}


def make_lock():
    """A result that cannot cross."""
    import threading

    return threading.Lock()


def raise_not_shareable():
    from interpool import NotShareableError

    raise NotShareableError("raised by the function")


class LockHolder:
    """An object that does not pickle (it holds a lock), with a method."""

    def __init__(self):
        import threading

        self.lock = threading.Lock()

    def method(self):
        return 1


class RebuiltOnlyInWorkers:
    """Unpickles in interpool's interpreters, raises in the main one."""

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return (_rebuild_outside_main, (self.value,))


def _rebuild_outside_main(value):
    from interpool import interpreters

    if interpreters.get_current().id == 0:
        raise ValueError("this item cannot be rebuilt in the main interpreter")
    return RebuiltOnlyInWorkers(value)


def get_value(q):
    return q.get(timeout=30).value
