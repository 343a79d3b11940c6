from threading import BrokenBarrierError as BrokenBarrierError

from ._executor import Executor as Executor
from ._interpool import AtomicInt as AtomicInt
from ._interpool import Barrier as Barrier
from ._interpool import BoundedSemaphore as BoundedSemaphore
from ._interpool import BrokenInterpreterPool as BrokenInterpreterPool
from ._interpool import Event as Event
from ._interpool import InterpreterError as InterpreterError
from ._interpool import InterpreterNotFoundError as InterpreterNotFoundError
from ._interpool import ItemInterpreterDestroyed as ItemInterpreterDestroyed
from ._interpool import Lock as Lock
from ._interpool import NotShareableError as NotShareableError
from ._interpool import QueueClosed as QueueClosed
from ._interpool import QueueEmpty as QueueEmpty
from ._interpool import QueueError as QueueError
from ._interpool import QueueFull as QueueFull
from ._interpool import QueueNotFoundError as QueueNotFoundError
from ._interpool import RemoteError as RemoteError
from ._interpool import RLock as RLock
from ._interpool import Semaphore as Semaphore
from ._interpool import SharedBuffer as SharedBuffer
from ._interpool import TaskInterrupted as TaskInterrupted
from ._interpool import WorkerExited as WorkerExited
from ._shared import SharedMapping

#: Values an Executor sent once to each worker (see Executor(shared=...)).
shared: SharedMapping

class IncompatibleModuleError(ImportError):
    module: str | None
    extension: str | None
    @classmethod
    def _refused(cls, extension: str, used: str | None = None) -> IncompatibleModuleError: ...

class FallbackWarning(RuntimeWarning): ...

def usable_cpus() -> int: ...
def environment_lock() -> RLock: ...

__version__: str
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
