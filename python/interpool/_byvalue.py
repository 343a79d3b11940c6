"""Functions that workers cannot import by module and name, sent by value.

Lambdas, nested functions, the functions of a notebook, `python -c`, a
program read from stdin or an interactive session, and those a script defines
under its `if __name__ == "__main__":` have no module a worker can import. Such a function without closure cells crosses as its code (marshal),
its names, defaults, and the globals its code names: modules by name, functions
by name or again by value, other values as values (natively or by pickle, in the
same conversion as the task's arguments). A closure, or a class defined in such
a __main__, crosses through cloudpickle when it is installed (the optional
extra ``interpool[cloudpickle]``).

Workers and fallback processes import this module to rebuild what was sent:
pure Python, standard library only at import.
"""

from __future__ import annotations

import _thread
import itertools
import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time: workers import this module
if TYPE_CHECKING:
    from typing import Any

_FunctionType: Any = type(lambda: None)  # types.FunctionType, without importing types
_ModuleType = type(sys)
# This interpreter as a sender of functions: random, made once.
_SENDER_ID = os.urandom(8)

# -- the receiving side: workers and fallback processes ---------------------------

# Code objects rebuilt here, by their marshalled bytes: a map sends the same
# function with every chunk.
_codes: dict[bytes, Any] = {}
_CODES_KEPT = 64

# The globals of the functions received by value, one namespace per module
# they come from; a module's "__main__" (a notebook, `python -c`, a script's
# main guard) and functions that name no globals use this interpreter's
# __main__, where `exec` and `prepare_main` bind names too.
_namespaces: dict[str, dict] = {}
# (sender, module, name) -> the version of the sender's value last bound here.
_applied: dict[tuple[str, str, str], int] = {}
# The functions received by value lately, by the token their sender gave them:
# a map sends one with each chunk, rebuilt once here.
_received: dict[bytes, Any] = {}
_RECEIVED_KEPT = 16


def _namespace(module: str, stateless: bool) -> dict:
    if stateless or module == "__main__":
        return sys.modules["__main__"].__dict__
    namespace = _namespaces.get(module)
    if namespace is None:
        import builtins

        namespace = _namespaces[module] = {"__builtins__": builtins, "__name__": module}
    return namespace


def make_function(code: bytes, name: str, qualname: str, module: str,
                  defaults: tuple | None, kwdefaults: dict | None, stateless: bool) -> Any:
    """The function of marshalled `code`, in the namespace of `module` here
    (set_globals binds the names it uses)."""
    rebuilt = _codes.get(code)
    if rebuilt is None:
        import marshal

        rebuilt = marshal.loads(code)
        if len(_codes) >= _CODES_KEPT:
            _codes.clear()
        _codes[code] = rebuilt
    fn = _FunctionType(rebuilt, _namespace(module, stateless), name, defaults)
    fn.__qualname__ = qualname
    fn.__kwdefaults__ = kwdefaults
    return fn


def set_globals(fn: Any, state: tuple) -> None:
    """Pickle's state setter for make_function: binds the globals the code names
    that the sender bound anew since this namespace last received them; a name
    this interpreter's code rebound or changed keeps its value here otherwise
    (an initializer's, a counter's), as a module's globals would. Set after the
    function exists, so that a function that names itself (recursion) or a
    function that names it crosses as one object."""
    sender, module, names = state
    namespace = fn.__globals__
    for name, (version, value) in names.items():
        key = (sender, module, name)
        if _applied.get(key) != version or name not in namespace:
            namespace[name] = value.load() if type(value) is _Pickled else value
            _applied[key] = version


def received(token: bytes, data: Any) -> Any:
    """The function a sender pickled once as `data` (see ByValue), rebuilt once."""
    fn = _received.get(token)
    if fn is None:
        import pickle

        fn = pickle.loads(data)
        if len(_received) >= _RECEIVED_KEPT:
            del _received[next(iter(_received))]
        _received[token] = fn
    return fn


def import_module(name: str, *submodules: str) -> Any:
    """A module a function sent by value names (and the submodules it reaches); a
    placeholder if it refuses this interpreter (its use raises
    IncompatibleModuleError, as in a script)."""
    import importlib

    from interpool._refused import RefusedModule, refused_extension

    try:
        module = importlib.import_module(name)
        for sub in submodules:
            importlib.import_module(sub)
        return module
    except ImportError as e:
        extension = refused_extension(e)
        if extension is None:
            raise
        return RefusedModule(name, extension, name)


def _unsent_value(name: str, value: Any, error: Exception) -> Unsent:
    return Unsent(name, f"its value (a {type(value).__qualname__!r} object) cannot be sent "
                        f"({type(error).__name__}: {error}); create it in the worker instead (an "
                        f"initializer can), or use one of interpool's shared objects")


class _Pickled:
    """The value of a global, pickled alone as its function is sent: the sender
    tells by its bytes that a value changed in place (the same object) since it
    last sent it, and a receiver that already holds that version loads nothing.
    Not `steady`: its pickle holds functions sent by value, whose tokens differ
    at each send, so its bytes tell nothing (sent again when rebound only)."""

    __slots__ = ("data", "steady")

    def __init__(self, data: bytes, steady: bool = True) -> None:
        self.data = data
        self.steady = steady

    def __reduce__(self) -> tuple:
        return (_Pickled, (self.data,))

    def load(self) -> Any:
        import pickle

        return pickle.loads(self.data)


class Unsent:
    """What a global name of a function sent by value is bound to in the worker
    when its value could not be sent: its use says why."""

    __slots__ = ("__interpool_unsent__",)

    def __init__(self, name: str, why: str) -> None:
        self.__interpool_unsent__ = (name, why)

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        from interpool import NotShareableError

        name, why = self.__interpool_unsent__
        raise NotShareableError(f"the global {name!r} was not sent to this worker: {why}")

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        return self._fail()

    __call__ = _fail
    __getitem__ = _fail
    __enter__ = _fail
    __exit__ = _fail
    __iter__ = _fail
    __len__ = _fail
    __contains__ = _fail

    def __reduce__(self) -> tuple:
        return (Unsent, self.__interpool_unsent__)


# -- the sending side -------------------------------------------------------------


class ByValue:
    """A function sent by value: pickles as the calls that rebuild it, so that it
    crosses to workers (inside a task's conversion) and to fallback processes
    alike, pickled once however many tasks carry it (a map's chunks): the
    receiver rebuilds it once by its token. Calling it calls the function."""

    __slots__ = ("fn", "names", "token", "_data", "_shared", "_pickling")

    def __init__(self, fn: Any, names: dict) -> None:
        self.fn = fn
        self.names = names  # name -> (version, what crosses)
        self.token = _new_token()
        self._data: bytes | None = None
        self._shared: Any = None  # a SharedBuffer of _data, for large ones
        self._pickling = False

    def __reduce__(self) -> tuple:
        if self._pickling:  # the pickle of itself, below
            fn = self.fn
            module = fn.__module__ or "__main__"
            return (make_function,
                    (_marshalled(fn.__code__), fn.__name__, fn.__qualname__, module,
                     fn.__defaults__, fn.__kwdefaults__, not self.names and not fn.__closure__),
                    (_SENDER, module, self.names), None, None, set_globals)
        if self._data is None:
            self._data = self._pickle()
        return (received, (self.token, self._data))

    def reduce_to_interpreter(self) -> tuple:
        """__reduce__ for another interpreter of this process: large pickled
        globals cross as a SharedBuffer, not copied again with each task."""
        reduced = self.__reduce__()
        if self._pickling or len(self._data) < _SHARE_FROM:  # type: ignore[arg-type]
            return reduced
        if self._shared is None:
            from interpool._interpool import SharedBuffer

            self._shared = SharedBuffer.from_bytes(self._data)  # type: ignore[arg-type]
        return (received, (self.token, self._shared))

    def _pickle(self) -> bytes:
        self._pickling = True
        try:
            try:
                return dumps(self)
            except Exception:
                pass
            # A global that does not pickle: the worker gets a stand-in naming it.
            for name, (version, value) in list(self.names.items()):
                try:
                    dumps(value)
                except Exception as e:
                    self.names[name] = (version, _unsent_value(name, value, e))
            return dumps(self)
        finally:
            self._pickling = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


_SHARE_FROM = 1 << 16  # bytes of pickled function from which it crosses shared


_tokens = itertools.count()


_tokens_made = 0  # (another thread's sends may count here too: then a value is not steady)


def _new_token() -> bytes:
    """A token no other sent function of this process has: this interpreter's
    sender id (random, made once) and a count."""
    global _tokens_made  # noqa: PLW0603
    _tokens_made += 1
    return _SENDER_ID + next(_tokens).to_bytes(8, "little")


class _Cloudpickled:
    """A value that crosses through cloudpickle (a closure, a class of an
    interactive __main__)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce__(self) -> tuple:
        import cloudpickle

        return (cloudpickle.loads, (cloudpickle.dumps(self.value),))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.value(*args, **kwargs)


SENT_BY_VALUE = (ByValue, _Cloudpickled)


class _Module:
    """A module a function names, with the submodules its code reaches as
    attributes (`os.path`, `interpool.interpreters`) that were imported here."""

    __slots__ = ("name", "submodules")

    def __init__(self, module: Any, names: tuple[str, ...]) -> None:
        self.name = module.__name__
        self.submodules = tuple(
            f"{self.name}.{n}" for n in names
            if type(getattr(module, n, None)) is _ModuleType and f"{self.name}.{n}" in sys.modules)

    def __reduce__(self) -> tuple:
        return (import_module, (self.name, *self.submodules))


_marshal_cache: Any = None  # WeakKeyDictionary: code object -> (bytes, names it uses)


def code_tree(code: Any) -> Any:
    """`code` and the code objects nested in it (functions, comprehensions,
    classes)."""
    stack = [code]
    while stack:
        c = stack.pop()
        yield c
        stack.extend(k for k in c.co_consts if type(k) is type(code))


def _code_parts(code: Any) -> tuple[bytes, tuple[str, ...]]:
    global _marshal_cache  # noqa: PLW0603
    if _marshal_cache is None:
        import weakref

        _marshal_cache = weakref.WeakKeyDictionary()
    parts = _marshal_cache.get(code)
    if parts is None:
        import marshal

        names: set[str] = set()
        for c in code_tree(code):
            names.update(c.co_names)
        parts = _marshal_cache[code] = (marshal.dumps(code), tuple(sorted(names)))
    return parts


def _marshalled(code: Any) -> bytes:
    return _code_parts(code)[0]


def cloudpickle_installed() -> bool:
    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        return False
    return True


_EXTRA_HINT = "install cloudpickle (pip install 'interpool[cloudpickle]') to send it by value"
_NOT_BY_NAME = ("defined in an interactive __main__ or under `if __name__ == \"__main__\":`, "
                "made at run time, or not found under its name")


_pickler: Any = None  # the Pickler class, made on first use


def pickler() -> Any:
    """The Pickler class with which the engine pickles every object without a
    native form (arguments, results, queue items): pickle.Pickler, except that
    functions and classes the receiver cannot import by name cross by value."""
    global _pickler  # noqa: PLW0603
    if _pickler is None:
        _pickler = _make_pickler()
    return _pickler


def dumps(obj: Any, protocol: int = 5) -> bytes:
    """pickle.dumps(obj) with pickler()."""
    import io

    out = io.BytesIO()
    pickler()(out, protocol).dump(obj)
    return out.getvalue()


def _reducer_override(pickler: Any, obj: Any) -> Any:
    """The Pickler's reducer_override: functions and classes that the receiver
    cannot import by name cross by value; everything else as pickle does.
    `pickler`: the Pickler, or an object that keeps its state in its stead."""
    if type(obj) is ByValue:
        return obj.reduce_to_interpreter()
    if type(obj) is not _FunctionType and not isinstance(obj, type):
        return NotImplemented
    from interpool._functions import needs_value

    if not needs_value(obj):
        return NotImplemented
    sender = pickler.__dict__.get("_sender")
    if sender is None:  # one per pickle: what a function names crosses once
        sender = pickler._sender = _Sender("the function", needs_value)
    if type(obj) is _FunctionType:
        return sender.function(obj).__reduce__()
    if cloudpickle_installed():
        return _Cloudpickled(obj).__reduce__()
    import pickle

    raise pickle.PicklingError(
        f"the class {obj.__qualname__!r} of {getattr(obj, '__module__', '?')!r} cannot be "
        f"imported by that name where it goes ({_NOT_BY_NAME}): define it in a module, or "
        f"{_EXTRA_HINT}")


def _make_pickler() -> Any:
    # Made on first use: pickle is not imported until something is pickled.
    import pickle

    try:
        from interpool._interpool import reducer_override  # noqa: F401
    except ImportError:  # (an interpreter that cannot load the extension)
        return type("Pickler", (pickle.Pickler,), {"reducer_override": _reducer_override})
    return type("Pickler", (pickle.Pickler,), {"__init__": _pickler_init})


def _pickler_init(self: Any, file: Any, protocol: int | None = None) -> None:
    import pickle
    from functools import partial
    from types import SimpleNamespace

    from interpool._interpool import reducer_override

    pickle.Pickler.__init__(self, file, protocol)
    # Called for every object: the extension answers for all but functions,
    # classes and ByValue, which _reducer_override sees. Its state is kept
    # beside the pickler, not in it (no reference cycle).
    self.reducer_override = partial(reducer_override, partial(_reducer_override, SimpleNamespace()), ByValue)


def send(fn: Any, what: str, needs_value: Any) -> Any:
    """What crosses for function `fn`, which workers cannot import by name.
    `needs_value(obj)`: True for a function or class that must cross by value.
    TypeError naming the extra for a closure without cloudpickle."""
    return _Sender(what, needs_value).function(fn)


# This interpreter as a sender, and the versions of the globals it sent: a
# global's version changes when this interpreter binds it to another object,
# which receivers then bind in place of theirs (see set_globals).
_SENDER = _SENDER_ID.hex()
# module -> name -> (object, version, hash of its pickle)
_versions: dict[str, dict[str, tuple[Any, int, int | None]]] = {}
_last_version = 0


def _forget_unbound(module: str, namespace: dict) -> None:
    """Drops the versions of `module`'s globals that the program deleted or
    bound anew since they were sent: the object sent last is not kept alive
    here after the program let it go (a new binding gets a new version)."""
    held = _versions.get(module)
    if held:
        # list() copies the items at once: other threads may send meanwhile.
        for name, (obj, _, _) in list(held.items()):
            if namespace.get(name, held) is not obj:
                held.pop(name, None)


def _version(module: str, name: str, value: Any, sent: Any) -> int:
    """The version of global `name` as sent now: a new one if the program bound
    it to another object, or changed the object in place (its pickle differs),
    since it was last sent."""
    global _last_version  # noqa: PLW0603
    names = _versions.setdefault(module, {})
    held = names.get(name)
    digest = hash(sent.data) if type(sent) is _Pickled and sent.steady else None
    if held is not None and held[0] is value and held[2] == digest:
        return held[1]
    _last_version += 1
    names[name] = (value, _last_version, digest)
    return _last_version


# The functions this thread is sending by value now (their ids): one met again
# by another sender (the pickle of a global value that holds it) is a cycle
# that separate pickles cannot express.
_sending = _thread._local()


class _Sender:
    def __init__(self, what: str, needs_value: Any) -> None:
        self.what = what
        self.needs_value = needs_value
        self.sent: dict[int, Any] = {}  # id(function) -> what crosses for it (cycles)

    def function(self, fn: Any) -> Any:
        done = self.sent.get(id(fn))
        if done is not None:
            return done
        if fn.__closure__:
            if not cloudpickle_installed():
                from interpool import NotShareableError

                raise NotShareableError(
                    f"cannot send {self.what} {fn.__qualname__!r} to a worker interpreter: it "
                    f"is a closure (it uses names of an enclosing function). Define it at "
                    f"module level, pass those values as arguments, or {_EXTRA_HINT}"
                )
            out: Any = _Cloudpickled(fn)
            self.sent[id(fn)] = out
            return out
        sending = _sending.__dict__.setdefault("ids", set())
        if id(fn) in sending:
            import pickle

            raise pickle.PicklingError(
                f"the function {fn.__qualname__!r}, sent by value, is in a global value that a "
                f"function sent by value names (such as a dict of functions that call each other "
                f"through it); define those functions in a module, or pass that value as an "
                f"argument")
        names: dict[str, tuple[int, Any]] = {}
        out = self.sent[id(fn)] = ByValue(fn, names)
        available = fn.__globals__
        module = fn.__module__ or "__main__"
        _forget_unbound(module, available)
        used = _code_parts(fn.__code__)[1]
        sending.add(id(fn))
        try:
            for name in used:
                if name in available:
                    value = available[name]
                    sent = self.value(name, value, used)
                    names[name] = (_version(module, name, value, sent), sent)
        finally:
            sending.discard(id(fn))
        return out

    def value(self, name: str, obj: Any, used: tuple[str, ...]) -> Any:
        kind = type(obj)
        if kind is _ModuleType:
            return _Module(obj, used)
        if kind is _FunctionType and self.needs_value(obj):
            try:
                return self.function(obj)
            except TypeError as e:  # a closure, without cloudpickle
                return Unsent(name, str(e))
        if isinstance(obj, type) and self.needs_value(obj):
            if cloudpickle_installed():
                return _Cloudpickled(obj)
            return Unsent(name, f"the class {obj.__qualname__!r} of {getattr(obj, '__module__', '?')!r} "
                                f"cannot be imported by that name in workers ({_NOT_BY_NAME}); define it "
                                f"in a module, or "
                                f"{_EXTRA_HINT.replace('send it', 'send it and the functions that use it')}")
        if isinstance(obj, type):
            return obj  # by name: a class crosses as its reference, never changed in place
        tokens = _tokens_made
        try:
            data = dumps(obj)
        except Exception as e:
            return _unsent_value(name, obj, e)
        return _Pickled(data, steady=_tokens_made == tokens)
