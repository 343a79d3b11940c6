"""interpool: parallel Python on CPython sub-interpreters, each with its own GIL.

    from interpool import Executor

    with Executor() as ex:
        results = list(ex.map(work, items))
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: workers import this module
if TYPE_CHECKING:
    from typing import Any

from . import _interpool
from ._shared import SharedMapping

#: Values an Executor sent once to each worker (see Executor(shared=...)).
shared = SharedMapping()

NotShareableError = _interpool.NotShareableError
RemoteError = _interpool.RemoteError
InterpreterError = _interpool.InterpreterError
InterpreterNotFoundError = _interpool.InterpreterNotFoundError
QueueError = _interpool.QueueError
QueueEmpty = _interpool.QueueEmpty
QueueClosed = _interpool.QueueClosed
QueueNotFoundError = _interpool.QueueNotFoundError
ItemInterpreterDestroyed = _interpool.ItemInterpreterDestroyed
TaskInterrupted = _interpool.TaskInterrupted
WorkerExited = _interpool.WorkerExited

# Shared memory and synchronisation across interpreters (docs/sharing.md): each
# crosses to workers as a reference to the same engine object, never a copy.
SharedBuffer = _interpool.SharedBuffer
Lock = _interpool.Lock
RLock = _interpool.RLock
Event = _interpool.Event
Semaphore = _interpool.Semaphore
BoundedSemaphore = _interpool.BoundedSemaphore
Barrier = _interpool.Barrier
AtomicInt = _interpool.AtomicInt


class IncompatibleModuleError(ImportError):
    """A task imported an extension module that does not support sub-interpreters
    with their own GIL (``module`` names its package, ``extension`` the extension
    module that refused). Raised where the import happens, inside the worker too.
    Executor(fallback="process") runs such tasks in processes instead."""

    module: str | None = None
    extension: str | None = None

    @classmethod
    def _refused(cls, extension: str, used: str | None = None) -> IncompatibleModuleError:
        """The error for `extension`'s refusal; `used`: the name of the placeholder
        whose use raised it (a refused import of the script's top level)."""
        package = extension.split(".")[0]
        if used is None:
            what = f"cannot import {package!r} in a worker interpreter"
        else:
            what = (f"cannot use {used} in a worker interpreter ({package!r} was imported "
                    f"by your program's top level and could not load here)")
        error = cls(
            f"{what}: its extension module {extension!r} does not support sub-interpreters "
            f"with their own GIL. Run the tasks that need it in processes: "
            f"interpool.Executor(..., fallback=\"process\") does so for you (or use "
            f"concurrent.futures.ProcessPoolExecutor)",
            name=extension,
        )
        error.module = package
        error.extension = extension
        return error


class FallbackWarning(RuntimeWarning):
    """Executor(fallback="process") sent a function's tasks to processes (once per
    function and executor): filter it with the warnings module to silence it."""


def usable_cpus() -> int:
    """Number of CPUs this process may run on."""
    return _interpool.usable_cpus()


def environment_lock() -> RLock:
    """The process's lock for its environment (os.environ's C side). interpool's
    interpreters hold it when they change the environment or start a process, and
    so do interpool's own process spawns; hold it around a spawn or an
    environment change of the main interpreter that may run while workers do."""
    return _interpool.environment_lock()


def __getattr__(name: str) -> Any:
    # Workers import this package for `shared`; the executor machinery loads on first use.
    if name == "Executor":
        import sys
        import threading

        if "interpool._executor" not in sys.modules and getattr(threading, "_SHUTTING_DOWN", False):
            # concurrent.futures' import would fail registering its exit hook.
            raise RuntimeError(
                "cannot load interpool.Executor after the main thread has ended: Python is shutting "
                "down and, as concurrent.futures' executors, takes no new work then; make the executor "
                "before the main code ends, or join this thread there")
        from ._executor import Executor

        return Executor
    if name in ("BrokenInterpreterPool", "QueueFull"):
        # Subclasses of concurrent.futures.BrokenExecutor and queue.Full: the
        # extension makes them on first use, sparing workers those imports.
        return getattr(_interpool, name)
    if name == "BrokenBarrierError":
        # Barrier raises threading's own; workers seldom import threading.
        import threading

        return threading.BrokenBarrierError
    raise AttributeError(f"module 'interpool' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "AtomicInt",
    "Barrier",
    "BoundedSemaphore",
    "BrokenBarrierError",
    "BrokenInterpreterPool",
    "Event",
    "Executor",
    "FallbackWarning",
    "IncompatibleModuleError",
    "InterpreterError",
    "InterpreterNotFoundError",
    "ItemInterpreterDestroyed",
    "Lock",
    "NotShareableError",
    "QueueClosed",
    "QueueEmpty",
    "QueueError",
    "QueueFull",
    "QueueNotFoundError",
    "RLock",
    "RemoteError",
    "Semaphore",
    "SharedBuffer",
    "TaskInterrupted",
    "WorkerExited",
    "shared",
    "environment_lock",
    "usable_cpus",
]
