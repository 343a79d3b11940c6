"""Functions the C++ pool tests run in workers."""

import sys
import threading


def add(a, b=0):
    return a + b


def fail(message):
    raise ValueError(message)


class Unpicklable(Exception):
    def __init__(self, a, b):
        super().__init__(a)
        self.lock = threading.Lock()


def fail_unpicklable():
    raise Unpicklable("odd", 2)


def unshareable_result():
    return threading.Lock()


def interpreter_id():
    try:
        import _interpreters  # 3.13
    except ImportError:
        import _xxsubinterpreters as _interpreters  # 3.12

        return int(_interpreters.get_current())
    return int(_interpreters.get_current()[0])


def burn(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


class Thing:
    @staticmethod
    def twice(x):
        return 2 * x


def path():
    return list(sys.path)


STATE = {}


def init(value):
    STATE["value"] = value


def get_state():
    return STATE.get("value")


def init_fails():
    raise RuntimeError("initializer failed on purpose")


def echo(x):
    return x


def type_name(x):
    return type(x).__name__


def describe(x):
    """repr(x) with its type: checks what a C++ value became in Python."""
    return f"{type(x).__name__}:{x!r}"


def prefix():
    return sys.prefix


def engine_copies():
    """The files of the engine library mapped in this process, after the
    interpool package (and so its _interpool extension) is imported here."""
    import interpool

    with open("/proc/self/maps") as maps:
        files = sorted({line.split()[-1] for line in maps if "libinterpool_core" in line})
    return files, interpool._interpool.__file__


def put_squares(queue, n):
    for i in range(n):
        queue.put(i * i)


def take(queue):
    return queue.get(timeout=10)


def fill_squares(buffer, start, count):
    """Writes i * i as int64 into items start..start+count of `buffer` (a SharedBuffer)."""
    view = memoryview(buffer).cast("q")
    for i in range(start, start + count):
        view[i] = i * i
    return count


def busy(seconds):
    """Pure Python busy loop for `seconds`."""
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def spin(seconds=60.0, swallow=False):
    """busy(seconds), then the interpreter id; with `swallow`, catches
    everything, interruptions included, and returns "swallowed"."""
    try:
        busy(seconds)
    except BaseException:
        # (An exception raised in the loop itself, at its backward jump, escapes
        # a handler in the same function on CPython 3.13: hence busy().)
        if swallow:
            return "swallowed"
        raise
    return interpreter_id()


def import_reraised(name):
    """Imports `name`, re-raising a failure with words of its own (as numpy does)."""
    import importlib

    try:
        importlib.import_module(name)
    except ImportError as e:
        raise ImportError("importing failed: check your install") from e


def thread_os_name():
    """This thread's name as the OS shows it (read while the thread runs)."""
    with open(f"/proc/self/task/{threading.get_native_id()}/comm", encoding="utf-8") as f:
        return f.read().rstrip("\n")


def leave_spinning_thread():
    """Starts a thread that runs Python for a minute (so an interruption ends it
    at once) and returns without it."""
    import threading

    threading.Thread(target=busy, args=(60.0,), name="spins").start()
    return "returned"


def leave_blocked_thread():
    """Starts a thread that waits forever (no timeout) and returns without it."""
    import threading

    threading.Thread(target=threading.Event().wait, name="waits-forever").start()
    return "returned"


# --- sharing: an object in two places arrives as one object ------------------


def doubling(levels):
    """[x, x] built `levels` times over x = [0]: 2**levels leaves, levels + 1 lists."""
    x = [0]
    for _ in range(levels):
        x = [x, x]
    return x


def shared_levels(x):
    """How many levels of a doubling hold one list twice (x[0] is x[1])."""
    levels = 0
    while isinstance(x, list) and len(x) == 2 and x[0] is x[1]:
        levels += 1
        x = x[0]
    return levels
