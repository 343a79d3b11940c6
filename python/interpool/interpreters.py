"""The PEP 734 API (3.14's ``concurrent.interpreters``) on Python 3.12 and 3.13.

    from interpool import interpreters

    interp = interpreters.create()
    interp.prepare_main(grid=grid_text)
    interp.exec("rows = grid.splitlines()")
    print(interp.call(len, "abc"))
    interp.close()

Differences from the standard library, all on purpose (docs/reference.md lists
them with their reasons):

- Queue items survive the close of the interpreter that put them, unless
  ``unbounditems=UNBOUND`` (or ``UNBOUND_ERROR``/``UNBOUND_REMOVE``) is given;
  such a queue's ``unbounditems`` is None. Queues wait on the engine (no 10 ms
  polling), honour fractional timeouts, and can be closed (``Queue.close``).
- Several threads may run ``exec``/``call`` in one interpreter at once
  (``prepare_main`` is refused while code runs there, as in the stdlib), and
  the main interpreter runs code too.
- Values cross as Executor arguments do: ``prepare_main``, ``call`` and queues
  take what converts or pickles, copied. A ``memoryview`` shares its bytes only
  when it is over an ``interpool.SharedBuffer`` (its format, shape and strides
  kept); any other memoryview crosses as a copy of its bytes (the standard
  library keeps the exporter of the sending interpreter alive instead).
  ``interpool.SharedBuffer``, ``Lock``, ``RLock``, ``Event``, ``Semaphore``,
  ``Barrier`` and ``AtomicInt`` cross by reference (see docs/sharing.md); this
  module does not re-export them, as PEP 734 has no such names. Errors name
  what could not be shared and where (``argument 2``, ``'grid'``).
- ``call()`` accepts functions and objects of classes of the ``__main__``
  script (or ``python -m`` module), loaded there as ``__mp_main__``; the
  interpreter's own ``__main__`` falls back to it for names it lacks. New
  interpreters get the parent's ``sys.path`` so they import what the parent can.
- ``whence`` names interpool's makers: 'interpool' (create()), 'interpool
  worker' (an Executor's), 'runtime init' (main), 'unknown'.

As in the standard library, the Interpreter objects of an interpreter that
create() made own it: it is closed when the last of them is gone.
"""

from __future__ import annotations

import marshal
import operator
import sys
import threading
import types
import weakref
from typing import Any, Callable

from . import _functions, _interpool, _worker
from ._functions import main_source as _main_source
from ._functions import reference as _reference

__all__ = [
    "UNBOUND", "UNBOUND_ERROR", "UNBOUND_REMOVE",
    "ExecutionFailed", "Interpreter", "InterpreterError", "InterpreterNotFoundError",
    "ItemInterpreterDestroyed", "NotShareableError", "Queue", "QueueEmpty", "QueueError",
    "QueueFull", "QueueNotFoundError",
    "create", "create_queue", "get_current", "get_main", "is_shareable", "list_all",
]

from . import (  # noqa: E402  (the package's names for the extension's exceptions)
    InterpreterError,
    InterpreterNotFoundError,
    ItemInterpreterDestroyed,
    NotShareableError,
    QueueEmpty,
    QueueError,
    QueueFull,
    QueueNotFoundError,
)

Queue = _interpool.Queue
UNBOUND = _interpool.UNBOUND
UNBOUND_ERROR = _interpool.UNBOUND_ERROR
UNBOUND_REMOVE = _interpool.UNBOUND_REMOVE

_EXEC_FAILURE = "{summary}\n\nUncaught in the interpreter:\n\n{formatted}"


class ExecutionFailed(InterpreterError):
    """An exception was raised and not caught in the interpreter.

    ``excinfo`` has ``type`` (with ``__name__``, ``__qualname__``, ``__module__``),
    ``msg``, ``formatted`` (``"Type: msg"``) and ``errdisplay`` (the traceback).
    """

    def __init__(self, excinfo: types.SimpleNamespace) -> None:
        super().__init__(excinfo.formatted)
        self.excinfo = excinfo

    def __str__(self) -> str:
        if not self.excinfo.errdisplay:
            return self.excinfo.formatted
        return _EXEC_FAILURE.format(summary=self.excinfo.formatted,
                                    formatted=self.excinfo.errdisplay.rstrip())


def _excinfo(raw: tuple) -> types.SimpleNamespace:
    module, qualname, msg, traceback = raw
    name = qualname.rpartition(".")[2]
    shown = qualname if module in ("builtins", "") else f"{module}.{qualname}"
    return types.SimpleNamespace(
        type=types.SimpleNamespace(__name__=name, __qualname__=qualname, __module__=module),
        msg=msg,
        formatted=f"{shown}: {msg}" if msg else shown,
        errdisplay=traceback,
    )


def _not_found(id: int) -> InterpreterNotFoundError:
    return InterpreterNotFoundError(f"interpreter {id} not found (closed or never created)")


# -- interpreters ---------------------------------------------------------------

_objects: weakref.WeakValueDictionary[int, Interpreter] = weakref.WeakValueDictionary()
_objects_lock = threading.Lock()
_prepared: set[int] = set()


class Interpreter:
    """A handle on one interpreter: one object per id in each interpreter.

    As in the standard library, the objects that stand for an interpreter that
    create() made (in any interpreter) own it: once the last of them is gone,
    the interpreter is closed (unless it runs code then; close() any time).
    """

    __slots__ = ("_id", "_owns", "__weakref__")
    _id: int
    _owns: bool
    # Bound here rather than looked up as a module global: __del__ may run while
    # an interpreter ends, after its modules' globals are cleared.
    _release = staticmethod(_interpool.interp_release)

    def __new__(cls, id: int, /) -> Interpreter:
        number: int | None = None
        if not isinstance(id, bool):
            try:  # 3.12's _xxsubinterpreters gives InterpreterID objects: taken as their int
                number = operator.index(id)
            except TypeError:
                pass
        if number is None:
            raise TypeError(f"an interpreter id must be an int, not {type(id).__name__!r}")
        id = number
        if id < 0:
            raise ValueError(f"interpreter ids are >= 0, got {id}")
        if _interpool.interp_whence(id) is None:
            raise _not_found(id)
        with _objects_lock:
            obj = _objects.get(id)
            if obj is None:
                obj = super().__new__(cls)
                obj._id = id
                obj._owns = _interpool.interp_acquire(id)
                _objects[id] = obj
        return obj

    def __del__(self) -> None:
        if not getattr(self, "_owns", False):
            return
        self._owns = False
        try:
            if self._release(self._id):
                _prepared.discard(self._id)
        except Exception:
            pass  # closed meanwhile or unable to end now: close() or the exit ends it

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._id})"

    def __hash__(self) -> int:
        return hash(self._id)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Interpreter):
            return NotImplemented
        return self._id == other._id

    def __reduce__(self) -> tuple:
        return (type(self), (self._id,))

    @property
    def id(self) -> int:
        return self._id

    @property
    def whence(self) -> str:
        """Who made it: 'interpool' (create()), 'interpool worker' (an Executor),
        'runtime init' (the main interpreter) or 'unknown'."""
        whence = _interpool.interp_whence(self._id)
        if whence is None:
            raise _not_found(self._id)
        return whence

    def is_running(self) -> bool:
        """True while code runs in the interpreter (the main one always runs)."""
        if _interpool.interp_whence(self._id) is None:
            raise _not_found(self._id)
        return _interpool.interp_is_running(self._id)

    def close(self) -> None:
        """Destroys the interpreter. Fails while it runs code, and for
        interpreters that interpool did not create."""
        _interpool.interp_close(self._id)
        _prepared.discard(self._id)

    def prepare_main(self, ns: dict[str, Any] | None = None, /, **kwargs: Any) -> None:
        """Binds the given names in the interpreter's __main__ (values are copied,
        queues shared). InterpreterError while code runs in the interpreter."""
        try:
            values = dict(ns, **kwargs) if ns is not None else kwargs
        except (TypeError, ValueError) as e:
            raise TypeError(f"prepare_main() takes a mapping of names to values (or keyword "
                            f"arguments), not {type(ns).__name__!r}") from e
        if not values:
            raise ValueError("prepare_main() needs names to bind: a mapping or keyword arguments")
        self._prepare()
        _interpool.interp_prepare_main(self._id, values)

    def exec(self, code: str | types.CodeType | types.FunctionType, /) -> None:
        """Runs code in the interpreter's __main__, in the current thread.

        ``code`` is source text, a code object, or a function that takes no
        arguments (its body runs). An uncaught exception raises ExecutionFailed.
        """
        if isinstance(code, types.FunctionType):
            code = _function_body(code)
        if isinstance(code, types.CodeType):
            _check_runnable(code)
            payload: str | bytes = marshal.dumps(code)
        elif isinstance(code, str):
            if "\0" in code:
                raise ValueError("source code string cannot contain null bytes")
            payload = code
        else:
            raise TypeError(f"exec() takes source text, a code object or a function, not {type(code).__name__!r}")
        self._prepare()
        raw = _interpool.interp_exec(self._id, payload)
        if raw is not None:
            raise ExecutionFailed(_excinfo(raw))

    def call(self, callable: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Calls callable(*args, **kwargs) in the interpreter, in the current
        thread, and returns a copy of the result. An uncaught exception raises
        ExecutionFailed."""
        ref = _reference(callable, "the callable", stateless_as_code=True)
        if ref.args:
            args = ref.args + args
        if ref.kwargs:
            kwargs = {**ref.kwargs, **kwargs}
        self._prepare()
        if ref.module is not None and ref.qualname is not None:  # found by name, not pickled
            try:
                ok, value = _interpool.interp_call(self._id, ref.module, ref.qualname, args, kwargs or None)
            except NotShareableError as e:
                if not ref.hidden:
                    raise
                raise _functions.renumber(e, ref.hidden) from None
        else:
            try:
                ok, value = _interpool.interp_call(
                    self._id, "interpool._worker", "call", args,
                    {**kwargs, _worker.FN_KEYWORD: ref.pickled})
            except NotShareableError:
                _check_callable(callable, ref.pickled)
                raise
        if not ok:
            raise ExecutionFailed(_excinfo(value))
        return value

    def call_in_thread(self, callable: Callable[..., Any], /, *args: Any, **kwargs: Any) -> threading.Thread:
        """Starts a thread that runs call(callable, *args, **kwargs); returns it."""
        thread = threading.Thread(target=self.call, args=(callable, *args), kwargs=kwargs)
        thread.start()
        return thread

    def _prepare(self) -> None:
        # Once per interpreter made here: the parent's sys.path, and its __main__
        # loadable as __mp_main__ (see _worker.install_main).
        if self._id in _prepared or self.whence != "interpool":
            return
        raw = _interpool.interp_exec(self._id, f"__import__('sys').path[:] = {list(sys.path)!r}")
        if raw is None:
            ok, raw = _interpool.interp_call(
                self._id, "interpool._worker", "prepare", (list(sys.path), _main_source()), None
            )
            if ok:
                raw = None
        if raw is not None:
            raise ExecutionFailed(_excinfo(raw))
        _prepared.add(self._id)


def _check_callable(callable: Any, sent: Any) -> None:
    """After a call failed to cross: NotShareableError naming the callable if it
    is what cannot cross (checked by pickling it again, as the engine did)."""
    from ._byvalue import dumps

    try:
        dumps(sent)
    except Exception as e:
        name = getattr(callable, "__qualname__", None) or type(callable).__qualname__
        raise NotShareableError(
            f"cannot send the callable {name!r} ({type(callable).__name__!r}) to the interpreter: it does "
            f"not pickle ({type(e).__name__}: {e})") from None


def _function_body(fn: types.FunctionType) -> types.CodeType:
    if _takes_arguments(fn.__code__):
        raise ValueError(f"exec() takes a function with no arguments, and {fn.__qualname__} has some")
    return fn.__code__  # checked further by _check_runnable


def _takes_arguments(code: types.CodeType) -> bool:
    return bool(code.co_argcount or code.co_posonlyargcount or code.co_kwonlyargcount
                or code.co_flags & 0x0C)  # *args, **kwargs


def _returns_a_value(code: types.CodeType) -> bool:
    """True if a return of the code may give something else than None, as the
    bytecode says (what it returns at run time is not looked at)."""
    import dis

    before = None
    for ins in dis.get_instructions(code):
        if ins.opname == "RETURN_CONST" and ins.argval is not None:
            return True
        if ins.opname == "RETURN_VALUE" and not (
                before is not None and before.opname == "LOAD_CONST" and before.argval is None):
            return True
        before = ins
    return False


# A generator's, a coroutine's or an async generator's code makes an object
# when it runs: its body would not run.
_NOT_RUN = {0x20: "a generator", 0x80: "a coroutine", 0x200: "an async generator"}


def _check_runnable(code: types.CodeType) -> None:
    """ValueError, before anything runs, for a code object that is not a
    script's, as the standard library's exec() refuses it: one that takes
    arguments or returns a value; one that needs the cells of an enclosing
    function (run without them, it would read memory that is not there); one
    whose running makes a generator or a coroutine instead."""
    fix = "pass a function with no arguments that returns nothing, or source text"
    if _takes_arguments(code):
        raise ValueError(f"exec() cannot run the code of {code.co_qualname}: it takes arguments; {fix}")
    if code.co_freevars:
        what = ("names of an enclosing function" if "__class__" not in code.co_freevars
                else "names of an enclosing function or class (__class__ is what super() reads)")
        raise ValueError(
            f"exec() cannot run the code of {code.co_qualname}: it uses {what} "
            f"({', '.join(code.co_freevars)}); pass a function without them, or source text")
    for flag, what in _NOT_RUN.items():
        if code.co_flags & flag:
            raise ValueError(f"exec() cannot run the code of {code.co_qualname}: it is {what}'s, whose body "
                             "would not run; pass a plain function, or source text")
    if _returns_a_value(code):
        raise ValueError(f"exec() cannot run the code of {code.co_qualname}: it returns a value, and a "
                         f"script returns nothing (call() returns what a function returns); {fix}")


def create() -> Interpreter:
    """A new isolated interpreter (own GIL, no fork or exec, no daemon threads)."""
    if _worker.loading_main:
        raise RuntimeError(
            "interpreters.create() was called while a sub-interpreter was loading your script "
            "(to find a function or class of it that was sent there): protect the code that "
            "creates interpreters with `if __name__ == \"__main__\":`"
        )
    interp = Interpreter(_interpool.interp_create())
    _main_source()  # found now, while the script runs (see _functions.main_source)
    return interp


def list_all() -> list[Interpreter]:
    """Every interpreter of the process."""
    out = []
    for id in _interpool.interp_list():
        try:
            out.append(Interpreter(id))
        except InterpreterNotFoundError:
            pass  # closed meanwhile
    return out


def get_current() -> Interpreter:
    return Interpreter(_interpool.interpreter_id())


def get_main() -> Interpreter:
    return Interpreter(0)


def is_shareable(obj: Any) -> bool:
    """True if obj crosses without pickling: native data, queues, and the
    objects of docs/sharing.md (SharedBuffer, Lock, ..., and memoryviews: those
    over a SharedBuffer share its bytes, others cross as a copy). Other objects
    that pickle cross too, as copies made by pickle."""
    return _interpool.is_shareable(obj)


def create_queue(maxsize: int = 0, *, unbounditems: Any = None) -> Queue:
    """A new cross-interpreter queue. unbounditems=None keeps items whose
    interpreter closed; UNBOUND, UNBOUND_ERROR or UNBOUND_REMOVE ask for the
    standard library's behaviours."""
    return Queue.create(maxsize, unbounditems=unbounditems)
