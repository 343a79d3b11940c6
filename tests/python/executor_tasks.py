"""Functions and classes that the interpool.Executor tests run in worker interpreters.

Workers find a function by (module, qualname), so everything here is defined at
module level and this module must be importable by the name ``executor_tasks``
(the test modules put tests/python on sys.path; workers get the parent's
sys.path). Module globals are per interpreter: each worker imports its own copy.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import interpool
from interpool import _interpool

# --- per-interpreter state ---------------------------------------------------

#: Set by init_set_state (an Executor initializer) in each worker.
STATE = None
#: How many times init_count ran in this interpreter.
INIT_CALLS = 0
#: How many tasks this interpreter ran through count_task.
TASKS_RUN = 0
#: How many times a CountedShared was unpickled in this interpreter.
UNPICKLED = 0


def interp_id(*_ignored):
    """Id of the interpreter that runs the task (extra arguments are ignored)."""
    return _interpool.interpreter_id()


def imported(name):
    """Whether this interpreter has imported module `name`."""
    return name in sys.modules


# --- plain results -------------------------------------------------------------


def identity(x):
    return x


def add(a, b):
    return a + b


def add3(a, b, c):
    return a + b + c


def square(x):
    return x * x


def echo(*args, **kwargs):
    """What the call received, to check how arguments crossed."""
    return [list(args), kwargs]


class Token:
    """A result that crosses back by pickle (its class is of this module): tests
    watch with a weakref whether anything but the caller refers to the copy."""

    def __init__(self, n):
        self.n = n


def make_token(n):
    return Token(n)


def sleep_then(seconds, value=None):
    time.sleep(seconds)
    return value


def sleep_return_id(seconds):
    time.sleep(seconds)
    return _interpool.interpreter_id()


def make_bytes(n):
    return b"x" * n


def make_lock():
    """A result that cannot cross back to the parent."""
    return threading.Lock()


def datetimes():
    """A datetime, a timedelta and an aware datetime made here (on 3.12, by the
    pure-Python datetime that workers use)."""
    import datetime
    import zoneinfo

    return (datetime.datetime(2024, 12, 6, 10), datetime.timedelta(hours=1),
            datetime.datetime(2024, 12, 6, tzinfo=zoneinfo.ZoneInfo("UTC")),
            datetime.datetime(2024, 12, 6, tzinfo=datetime.timezone.utc),
            datetime.datetime(2024, 12, 6, tzinfo=datetime.timezone(datetime.timedelta(hours=2), "X")))


class Record:
    """An object with no native form: it crosses pickled."""

    def __init__(self, when, tags):
        self.when = when
        self.tags = tags

    def __eq__(self, other):
        return type(other) is Record and (other.when, other.tags) == (self.when, self.tags)


def records(n):
    """n records made here that hold one list of tags."""
    import datetime

    tags = ["a", "b"]
    start = datetime.datetime(2024, 12, 7, tzinfo=datetime.timezone.utc)
    return [Record(start + datetime.timedelta(minutes=i), tags) for i in range(n)]


def share_tags(recs):
    """Whether the records hold one list of tags, as where they were made."""
    return all(r.tags is recs[0].tags for r in recs)


#: Set in the main interpreter by a test: the executor a SubmitsWhenPickled submits to.
SUBMIT_TO = None


class SubmitsWhenPickled:
    """Pickling it submits a task to SUBMIT_TO and waits for it: it arrives as
    that task's result."""

    def __reduce__(self):
        return (int, (SUBMIT_TO.submit(square, 3).result(timeout=30),))


class ShutsDownWhenPickled:
    """Pickling it shuts SUBMIT_TO down (without waiting)."""

    def __reduce__(self):
        SUBMIT_TO.shutdown(wait=False)
        return (int, (0,))


def lock_at(x, bad):
    """x, but a threading.Lock (which cannot cross back) for x == bad."""
    return threading.Lock() if x == bad else x


def signal_then_wait(x, started, go):
    """x; for x == 0, sets `started` first and waits for `go` (interpool Events)."""
    if x == 0:
        started.set()
        go.wait(60)
    return x


def fail_on(x, bad):
    """x * 10, but raises ValueError for x == bad (for errors inside map)."""
    if x == bad:
        raise ValueError(f"item {x} is bad")
    return x * 10


def getcwd():
    return os.getcwd()


def get_sys_path():
    return list(sys.path)


def module_name():
    """__name__ as the worker sees it for this module."""
    return __name__


# --- side effects (prove whether a task ran) -----------------------------------


def append_line(path, text):
    """Appends a line to a file; returns the text."""
    with open(path, "a") as f:
        f.write(f"{text}\n")
    return text


def wait_for_file(path, value=None, timeout=30.0, started=None):
    """Blocks until `path` exists (polling), then returns value.

    If `started` is given, that file is created first, so the parent knows the
    task runs. Raises TimeoutError after `timeout` seconds so a broken test
    cannot hang a worker forever.
    """
    if started is not None:
        with open(started, "w") as f:
            f.write(str(_interpool.interpreter_id()))
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout} s")
        time.sleep(0.005)
    return value


def gated_append(gate, path, text, started=""):
    """Waits for the file `gate` (unless it is empty; creating the file `started`
    first, if given), then appends text to `path`."""
    if gate:
        wait_for_file(gate, timeout=60.0, started=started or None)
    return append_line(path, text)


def rendezvous(directory, n, fn, *args, timeout=30.0):
    """Meets n-1 other rendezvous tasks, then returns fn(*args).

    Each task writes a file named after its interpreter id into `directory` and
    waits until n such files exist, so n tasks can only all finish when they run
    at the same time on n different workers: each worker runs exactly one.
    """
    me = _interpool.interpreter_id()
    with open(os.path.join(directory, f"interp-{me}"), "w"):
        pass
    deadline = time.monotonic() + timeout
    while len([f for f in os.listdir(directory) if f.startswith("interp-")]) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {os.listdir(directory)} of {n} workers met")
        time.sleep(0.002)
    return fn(*args)


# --- initializers ----------------------------------------------------------------


def change_environment(started, changed, name, value):
    """Sets then removes an environment variable (os.environ, as numpy's import
    does). `started` is set before the change, `changed` after it (interpool
    Events). Returns what the process environment held in between."""
    started.set()
    os.environ[name] = value
    changed.set()
    try:
        return _environment_value(name)
    finally:
        del os.environ[name]


def pickles_environment_functions():
    """The environment functions of a worker (wrapped by interpool) still pickle
    by reference, as the builtins they wrap do."""
    import pickle

    import _posixsubprocess

    calls = (os.putenv, os.unsetenv, os.posix_spawn, _posixsubprocess.fork_exec)
    return all(pickle.loads(pickle.dumps(f)) is f for f in calls)


def spawn_process(started, changed):
    """Runs `true` in a child process once `started` is set; sets `changed` once
    the child has been started (interpool Events)."""
    import subprocess

    started.set()
    child = subprocess.Popen(["true"])
    changed.set()
    return child.wait()


def _environment_value(name):
    # The process environment itself (os.environ is this interpreter's own copy),
    # as a child process inherits it.
    import subprocess

    out = subprocess.run(["printenv", name], capture_output=True, text=True, check=False)
    return out.stdout.strip() if out.returncode == 0 else None


def init_set_state(value):
    global STATE
    STATE = value


def init_count():
    global INIT_CALLS
    INIT_CALLS += 1


def init_fail(message="initializer failed on purpose"):
    raise ZeroDivisionError(message)


def init_fail_once_file(path, message="initializer failed on purpose"):
    """Waits until `path` exists (see wait_for_file), then fails like init_fail."""
    wait_for_file(path)
    raise ZeroDivisionError(message)


def get_state():
    return STATE


def state_report(seconds=0.0):
    """(interpreter id, STATE) after sleeping `seconds` (to spread tasks over workers)."""
    time.sleep(seconds)
    return (_interpool.interpreter_id(), STATE)


def get_init_calls(seconds=0.0):
    time.sleep(seconds)
    return (_interpool.interpreter_id(), INIT_CALLS)


def count_task(*_ignored):
    """Counts tasks run in this interpreter; returns (interpreter id, count so far)."""
    global TASKS_RUN
    TASKS_RUN += 1
    return (_interpool.interpreter_id(), TASKS_RUN)


# --- shared= ---------------------------------------------------------------------------


def _rebuild_counted(payload):
    global UNPICKLED
    UNPICKLED += 1
    return CountedShared(payload)


class CountedShared:
    """A value whose unpickling increments UNPICKLED of the interpreter that unpickles it."""

    def __init__(self, payload):
        self.payload = payload

    def __reduce__(self):
        return (_rebuild_counted, (self.payload,))


def shared_report(key, *_ignored):
    """(interpreter id, UNPICKLED, payload of interpool.shared[key]); ignores extra arguments."""
    value = interpool.shared[key]
    payload = value.payload if isinstance(value, CountedShared) else value
    return (_interpool.interpreter_id(), UNPICKLED, payload)


def shared_snapshot(*_ignored):
    """interpool.shared as a plain dict (values must be plain), plus the interpreter id."""
    return (_interpool.interpreter_id(), dict(interpool.shared))


def shared_try_write(key):
    """Tries to write to interpool.shared in the worker; returns the exception type name."""
    try:
        interpool.shared[key] = 1  # type: ignore[index]
    except TypeError as e:
        return type(e).__name__
    return "no error"


def shared_missing(key):
    return interpool.shared[key]


# --- exceptions --------------------------------------------------------------------------


class TaskError(Exception):
    """A user-defined exception class in a module."""


class CodedError(Exception):
    """An exception with a custom __init__ that still pickles (via __reduce__)."""

    def __init__(self, code, detail):
        super().__init__(f"code {code}: {detail}")
        self.code = code
        self.detail = detail

    def __reduce__(self):
        return (CodedError, (self.code, self.detail))


class BadInitError(Exception):
    """Pickles, but cannot be rebuilt: __init__ needs two arguments, args holds one."""

    def __init__(self, a, b):
        super().__init__(f"{a}/{b}")


class FalseyError(Exception):
    """An exception that is false in a boolean context."""

    def __bool__(self):
        return False


def raise_falsey(x):
    raise FalseyError(x)


def _refuse_to_rebuild():
    raise ValueError("this object cannot be rebuilt")


class FailsToRebuild:
    """Pickles, but its unpickling raises ValueError, wherever it happens (an
    exception with a strict __init__ is no such object: tblib's reducer, which
    dask installs, rebuilds it without calling __init__)."""

    def __reduce__(self):
        return (_refuse_to_rebuild, ())


def returns_fails_to_rebuild():
    """Returns (not raises) an object that pickles but cannot be rebuilt."""
    return ["ok", FailsToRebuild()]


class UnpicklableError(Exception):
    """Cannot be pickled: it holds a lock."""

    def __init__(self, message):
        super().__init__(message)
        self.lock = threading.Lock()


def raise_value_error(*args):
    raise ValueError(*args)


def raise_key_error(key):
    raise KeyError(key)


def raise_task_error(message):
    raise TaskError(message)


def raise_coded_error(code, detail):
    raise CodedError(code, detail)


def raise_bad_init_error(a, b):
    raise BadInitError(a, b)


def raise_unpicklable_error(message):
    raise UnpicklableError(message)


def raise_chained(message):
    try:
        {}["missing"]
    except KeyError as e:
        raise RuntimeError(message) from e


def raise_system_exit(code):
    raise SystemExit(code)


def raise_keyboard_interrupt():
    raise KeyboardInterrupt


# --- kinds of callables --------------------------------------------------------------------


class MathOps:
    factor = 3

    @staticmethod
    def double(x):
        return 2 * x

    @classmethod
    def scaled(cls, x):
        return (cls.__name__, cls.factor * x)

    def instance_method(self, x):
        return x + 1000

    class Inner:
        @staticmethod
        def negate(x):
            return -x


class Multiplier:
    """Picklable instance: its bound methods and the instance itself cross by pickle."""

    def __init__(self, k):
        self.k = k
        self.calls = 0

    def mul(self, x):
        self.calls += 1
        return self.k * x

    def __call__(self, x):
        return (self.k, x, _interpool.interpreter_id())


class LockedCallable:
    """A callable instance that does not pickle."""

    def __init__(self):
        self.lock = threading.Lock()

    def __call__(self, x):
        return x


# --- nested executors ----------------------------------------------------------------------


def executor_in_worker(n):
    """Creates an Executor inside a worker and uses it."""
    with interpool.Executor(1) as ex:
        return ex.submit(square, n).result()


def _busy(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def spin(seconds=60.0):
    """Pure Python work for `seconds` (interruptible at any bytecode); returns
    the interpreter id. The loop is in its own frame: on CPython 3.13 an
    exception raised at a loop's backward jump escapes handlers of that frame."""
    _busy(seconds)
    return _interpool.interpreter_id()


def spin_swallowing(seconds=60.0):
    """spin(), catching everything, its interruption included, and going on:
    returns "swallowed" if it caught something."""
    try:
        _busy(seconds)
    except BaseException:
        return "swallowed"
    return "finished"


def spin_started(path, seconds=60.0):
    """spin(), after creating the file `path` (so the parent knows it runs). The
    file appears whole, by a rename, once nothing is left to do but spin: an
    interruption sent when it appears lands in spin(), not in the file's writing."""
    with open(path + ".tmp", "w") as f:
        f.write("started")
    os.replace(path + ".tmp", path)
    return spin(seconds)


def spin_catching_interruption(path, q, seconds=60.0):
    """spin_started(), catching its interruption as interpool.TaskInterrupted:
    puts on `q` whether the exception caught is that class, then re-raises it."""
    try:
        spin_started(path, seconds)
    except interpool.TaskInterrupted as e:
        q.put(type(e) is interpool.TaskInterrupted)
        raise


def recurse_forever(depth=0):
    return recurse_forever(depth + 1)


def allocate_too_much():
    """Asks for 4 EiB at once: MemoryError, without using memory."""
    return len(bytearray(1 << 62))


def block_on(kind, obj, started_path=None):
    """Waits with no timeout on an interpool object: a queue's get, a lock held
    elsewhere, an event never set, a barrier nobody else reaches, or a
    semaphore at zero. Writes its thread's native id to `started_path` first
    when given (the test can then see the thread block)."""
    if started_path:
        with open(started_path + ".tmp", "w") as f:
            f.write(str(threading.get_native_id()))
        os.replace(started_path + ".tmp", started_path)  # whole when it appears
    if kind == "queue":
        return obj.get()
    if kind == "lock":
        return obj.acquire()
    if kind == "event":
        return obj.wait()
    if kind == "barrier":
        return obj.wait()
    if kind == "semaphore":
        return obj.acquire()
    raise ValueError(f"unknown kind {kind!r}")


def block_then_report(kind, obj, started_path=None):
    """block_on, catching the interruption: a later wait in the same task ends at once too."""
    try:
        block_on(kind, obj, started_path)
    except interpool.TaskInterrupted:
        pass
    block_on(kind, obj)
    return "woke"


def sleep_put_then_block(seconds, q, item, other):
    """Puts `item` on `q` after `seconds`, then waits on `other` with no timeout."""
    time.sleep(seconds)
    q.put(item)
    return other.get()


def leave_thread(seconds, joined=False):
    """Starts a thread that runs Python for `seconds`; joins it only if `joined`."""
    t = threading.Thread(target=_busy, args=(seconds,), name="left-behind")
    t.start()
    if joined:
        t.join()
    return "returned"


def import_numpy_catching():
    """Catches the refusal inside the task, by interpool's own type."""
    import interpool

    try:
        import numpy  # noqa: F401
    except interpool.IncompatibleModuleError as e:
        return [type(e).__name__, e.module, isinstance(e, ImportError)]
    return None


class Holder:
    """An object whose bound method is submitted (it crosses by pickle)."""

    def method(self):
        return 7


def thread_names():
    """(interpreter id, this thread's name as the OS shows it, as threading shows
    it, as logging writes it)."""
    import logging

    with open(f"/proc/self/task/{threading.get_native_id()}/comm", encoding="utf-8") as f:
        os_name = f.read().rstrip("\n")
    record = logging.LogRecord("names", logging.INFO, __file__, 0, "", (), None)
    return _interpool.interpreter_id(), os_name, threading.current_thread().name, record.threadName


def register_atexit_print(text):
    import atexit

    atexit.register(print, text, flush=True)


def exit_worker(status):
    """os._exit in a task, where `except Exception` must not stop it."""
    try:
        os._exit(status)
    except Exception:  # noqa: BLE001  (what the test checks: it does not catch it)
        return "caught"
    return "os._exit returned"


def exit_swallowed(status):
    """os._exit in a task that swallows whatever it raises, and returns."""
    try:
        os._exit(status)
    except BaseException:  # noqa: BLE001
        pass
    return "swallowed"


def exit_in_thread(status):
    """os._exit on a thread the task started: that thread ends, the task returns."""
    t = threading.Thread(target=os._exit, args=(status,))
    t.start()
    t.join()
    return "thread ended"


def leave_waiting_thread(on, event=None):
    """Starts a thread named "waits-forever" that waits with no timeout, and
    returns without it: on a threading.Event nobody sets ("event"), on a lock
    held for good ("lock"), or on `event`, an interpool.Event the caller may
    set ("shared")."""
    if on == "event":
        wait = threading.Event().wait
    elif on == "lock":
        lock = threading.Lock()
        lock.acquire()
        wait = lock.acquire
    else:
        wait = event.wait
    threading.Thread(target=wait, name="waits-forever").start()
    return "returned"


def import_slow_package():
    """Imports tests/python/slow_import_pkg (interrupted half-way by the tests)."""
    import slow_import_pkg

    return slow_import_pkg.VALUE


# --- sharing: an object in two places arrives as one object ------------------


def same_objects(*args, **kwargs):
    """Which arguments (positions, then keyword names) are the first one's object."""
    first = args[0]
    return [i for i, a in enumerate(args) if a is first] + [k for k, v in kwargs.items() if v is first]


def pair_of_one_list():
    """A result that holds one list twice."""
    shared = [1, 2]
    return {"a": shared, "b": [shared]}
