"""interpool: parallel Python on CPython sub-interpreters, each with its own GIL.

    from interpool import Executor

    with Executor() as ex:
        results = list(ex.map(work, items))
"""

from . import _interpool
from ._shared import SharedMapping

#: Values an Executor sent once to each worker (see Executor(shared=...)).
shared = SharedMapping()

from ._executor import Executor, usable_cpus  # noqa: E402

BrokenInterpreterPool = _interpool.BrokenInterpreterPool
NotShareableError = _interpool.NotShareableError
RemoteError = _interpool.RemoteError
InterpreterError = _interpool.InterpreterError

__version__ = "0.1.0"

__all__ = [
    "BrokenInterpreterPool",
    "Executor",
    "InterpreterError",
    "NotShareableError",
    "RemoteError",
    "shared",
    "usable_cpus",
]
