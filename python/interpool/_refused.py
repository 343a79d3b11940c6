"""Extension modules that refuse interpool's interpreters, seen where the import happens.

CPython refuses to load, in an interpreter with its own GIL, an extension module
that does not declare support for it: an ImportError "module X does not support
loading in subinterpreters", which packages often re-raise with words of their
own (numpy: "... a bad install ..."). In worker interpreters a refused import
raises interpool.IncompatibleModuleError instead, naming the package and the way
out; and the parent's script, loaded there for its functions, gets a placeholder
for each of its own top-level imports that is refused, so that the tasks that do
not use that module still run (unless the script's top level needs a plain
value of it, a test or a length: then it cannot load there).

Workers import this module: pure Python, standard library only.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing is not imported at run time: workers import this module
if TYPE_CHECKING:
    from typing import Any

# CPython's refusal (Python/import.c), the one text read here: "module NAME does
# not support loading in subinterpreters".
_REFUSAL_PREFIX = "module "
_REFUSAL_SUFFIX = " does not support loading in subinterpreters"


def refused_extension(exc: BaseException | None) -> str | None:
    """The extension module whose refusal `exc` (or an exception in its chain)
    comes from, or None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ImportError):
            extension = getattr(exc, "extension", None)  # an IncompatibleModuleError
            if isinstance(extension, str):
                return extension
            text = str(exc)
            if text.startswith(_REFUSAL_PREFIX) and text.endswith(_REFUSAL_SUFFIX):
                return text[len(_REFUSAL_PREFIX):-len(_REFUSAL_SUFFIX)].strip("'\"")
        exc = exc.__cause__ or exc.__context__
    return None


# Extension modules that would load in a worker but must not: on Python 3.12,
# _zoneinfo's init stores datetime's C API in a variable of its shared library,
# which every interpreter's _zoneinfo uses. In a worker (where 3.12 refuses the
# C datetime) it stores NULL there, and the main interpreter's ZoneInfo then
# crashes the process. Refused, zoneinfo in the worker falls back on its
# pure-Python implementation.
_REFUSED_BEFORE_LOADING = frozenset({"_zoneinfo"} if sys.version_info < (3, 13) else ())


def _name_as_datetime(module: Any) -> None:
    """3.12 workers use the pure-Python datetime (_pydatetime), whose classes
    say they are _pydatetime's: pickled by name so, a worker's datetime arrived
    in the main interpreter as _pydatetime.datetime, which the C one neither
    equals nor subtracts. Named datetime's, as the C classes are (and as
    _pydatetime's own reprs say), they arrive as the C ones."""
    for name in getattr(module, "__all__", ()):
        cls = getattr(module, name, None)
        if isinstance(cls, type) and cls.__module__ == "_pydatetime":
            cls.__module__ = "datetime"
    # A timezone pickles with its slots as state, which the C timezone has not
    # ("no attribute '_offset'" in the main interpreter, for any aware datetime
    # made with timezone.utc in a worker): pickled as the C one pickles.
    timezone = getattr(module, "timezone", None)
    if isinstance(timezone, type):
        timezone.__reduce__ = _timezone_reduce  # type: ignore[method-assign,assignment]


def _timezone_reduce(self: Any) -> tuple[Any, tuple[Any, ...]]:
    return type(self), self.__getinitargs__()


def _error(extension: str, used: str | None = None) -> ImportError:
    from interpool import IncompatibleModuleError

    return IncompatibleModuleError._refused(extension, used)


def guard_imports() -> None:
    """Makes a refused import raise IncompatibleModuleError in this interpreter,
    from the import statement (or importlib.import_module) that asked for it, up
    through the packages that re-raise it: `except IncompatibleModuleError` works
    inside a task, and so does `except ImportError`. Idempotent.

    The hook is importlib's _find_and_load, which CPython calls only for modules
    not yet in sys.modules: imports of loaded modules cost nothing more.
    """
    import _frozen_importlib as bootstrap  # importlib._bootstrap of this interpreter

    real = bootstrap._find_and_load  # type: ignore[attr-defined]
    if getattr(real, "_interpool_guarded", False):
        return

    def _find_and_load(name: str, import_: Any) -> Any:
        if name in _REFUSED_BEFORE_LOADING:
            raise _error(name)
        try:
            module = real(name, import_)
            if name == "_pydatetime":
                _name_as_datetime(module)
            return module
        except ImportError as e:
            if getattr(e, "extension", None) is not None:
                raise  # already an IncompatibleModuleError
            extension = refused_extension(e)
            if extension is None:
                raise
            raise _error(extension) from e
        except AttributeError as e:
            # Python 3.12 refuses the C datetime here (single-phase): a C module that
            # takes datetime's C API then finds the pure-Python datetime without it.
            # As the refusal it is, packages fall back on it. (Such a module's copy in
            # the main interpreter may be left broken: see _REFUSED_BEFORE_LOADING.)
            if e.name != "datetime_CAPI":
                raise
            raise _error("_datetime") from e
        except Exception:
            raise
        except BaseException:
            # An interruption (task_timeout, Future.interrupt) unwound this import,
            # and the interpreter serves on: the submodules it loaded would stay in
            # sys.modules without their package, and the next import of the package
            # would not bind them to it (NameError in its __init__). They go too.
            if name not in sys.modules:
                prefix = name + "."
                for orphan in [key for key in sys.modules if key.startswith(prefix)]:
                    del sys.modules[orphan]
            raise

    _find_and_load._interpool_guarded = True  # type: ignore[attr-defined]
    bootstrap._find_and_load = _find_and_load  # type: ignore[attr-defined]


# -- placeholders for the script's refused top-level imports ---------------------


def _loading() -> bool:
    from interpool import _worker

    return _worker.loading_main


class RefusedModule(type(sys)):  # type: ignore[misc]  # types.ModuleType, without importing types
    """What a refused top-level import of the parent's script binds in a worker.

    While the script loads, attributes and calls give more placeholders (so that
    annotations, decorators and aliases such as `array = np.array` still
    evaluate); afterwards the first use raises IncompatibleModuleError naming
    what was touched.
    """

    def __init__(self, name: str, extension: str, shown: str) -> None:
        super().__init__(name)
        self.__interpool_refused__ = (extension, shown)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__") and attr != "__version__":
            # probes (__path__, __file__...)
            raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")
        extension, shown = self.__interpool_refused__
        if _loading():
            return RefusedName(extension, f"{shown}.{attr}")
        raise _error(extension, f"{shown}.{attr}")

    def __repr__(self) -> str:
        return f"<placeholder for refused module {self.__name__!r}>"


def _operator(symbol: str, reflected: bool = False) -> Any:
    """An operator of RefusedName: while the script loads, a placeholder for its
    result (`EPS = np.finfo(float).eps * 10` loads, and fails where it is used);
    afterwards, the error naming the use."""

    def apply(self: RefusedName, *other: Any) -> Any:
        if not other:
            return self._use(f" ({symbol})")
        return self._use(f" {symbol} ..." if not reflected else f" ({symbol} from the right)")

    return apply


class RefusedName:
    """A name taken from a refused module (`from numpy import arange`), or a use of
    a RefusedModule while the script loads."""

    __slots__ = ("__interpool_refused__",)

    def __init__(self, extension: str, shown: str) -> None:
        self.__interpool_refused__ = (extension, shown)

    def _use(self, what: str) -> Any:
        extension, shown = self.__interpool_refused__
        if _loading():
            return RefusedName(extension, shown + what)
        raise _error(extension, shown + what)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        return self._use("." + attr)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._use("(...)")

    def __getitem__(self, key: Any) -> Any:
        return self._use("[...]")

    def __enter__(self) -> Any:
        # A `with` (or a loop) over a refused module's object at the script's top
        # level runs work there: that code belongs under the main guard.
        extension, shown = self.__interpool_refused__
        raise _error(extension, f"{shown} (in a `with` or a loop of your script's top level, "
                                f"which workers run when they load it: keep the code that runs "
                                f"work under `if __name__ == \"__main__\":`)")

    __iter__ = __enter__

    def __exit__(self, *exc: Any) -> None:
        return None

    def _decide(self, *args: Any) -> Any:
        # The script's top level needs a plain value of it (a test, a length, a
        # number): it cannot load here without the module.
        extension, shown = self.__interpool_refused__
        raise _error(extension, f"{shown} (as a value your script's top level needs: a test, a "
                                f"length or a number, which workers compute when they load it; "
                                f"compute it in the functions that use it, or under "
                                f"`if __name__ == \"__main__\":`)")

    __bool__ = __len__ = __int__ = __float__ = __complex__ = __index__ = __contains__ = _decide

    __add__, __radd__ = _operator("+"), _operator("+", True)
    __sub__, __rsub__ = _operator("-"), _operator("-", True)
    __mul__, __rmul__ = _operator("*"), _operator("*", True)
    __truediv__, __rtruediv__ = _operator("/"), _operator("/", True)
    __floordiv__, __rfloordiv__ = _operator("//"), _operator("//", True)
    __mod__, __rmod__ = _operator("%"), _operator("%", True)
    __pow__, __rpow__ = _operator("**"), _operator("**", True)
    __matmul__, __rmatmul__ = _operator("@"), _operator("@", True)
    __and__, __rand__ = _operator("&"), _operator("&", True)
    __or__, __ror__ = _operator("|"), _operator("|", True)
    __xor__, __rxor__ = _operator("^"), _operator("^", True)
    __lshift__, __rlshift__ = _operator("<<"), _operator("<<", True)
    __rshift__, __rrshift__ = _operator(">>"), _operator(">>", True)
    __lt__, __le__, __gt__, __ge__ = _operator("<"), _operator("<="), _operator(">"), _operator(">=")
    # == and != stay identity's: containers, enums and `x in (...)` compare
    # with them while the script loads.
    __neg__, __pos__, __abs__, __invert__ = _operator("-"), _operator("+"), _operator("abs"), _operator("~")

    def __repr__(self) -> str:
        return f"<placeholder for {self.__interpool_refused__[1]}, refused here>"


def placeholder(name: str, fromlist: Any, extension: str) -> RefusedModule:
    """What `import name` (or `from name import *fromlist`) binds instead of a
    refused module: the top package's placeholder for `import a.b.c` (with b and
    c reachable from it, for `import a.b as x`), the module's with the listed
    names for `from`."""
    if fromlist:
        module = RefusedModule(name, extension, name)
        for attr in fromlist:
            if attr != "*":
                setattr(module, attr, RefusedName(extension, f"{name}.{attr}"))
        return module
    parts = name.split(".")
    top = RefusedModule(parts[0], extension, parts[0])
    outer = top
    for i in range(1, len(parts)):
        inner = RefusedModule(".".join(parts[: i + 1]), extension, ".".join(parts[: i + 1]))
        setattr(outer, parts[i], inner)
        outer = inner
    return top


class ScriptImports:
    """While the parent's script runs here (as __mp_main__), an import statement of
    its own top-level code (`code`) whose module is refused binds a placeholder
    instead of failing: the script's other functions still run. Imports made by
    other code, libraries that catch ImportError included, are untouched."""

    def __init__(self, code: Any) -> None:
        self.code = code
        self.real: Any = None

    def __enter__(self) -> ScriptImports:
        import builtins

        real = self.real = builtins.__import__
        code = self.code

        def __import__(name: str, globals: Any = None, locals: Any = None,
                       fromlist: Any = (), level: int = 0) -> Any:
            try:
                return real(name, globals, locals, fromlist, level)
            except ImportError as e:
                if level or sys._getframe(1).f_code is not code:
                    raise
                extension = refused_extension(e)
                if extension is None:
                    raise
                return placeholder(name, fromlist, extension)

        self.hook = __import__
        builtins.__import__ = __import__
        return self

    def __exit__(self, *exc: Any) -> None:
        import builtins

        if builtins.__import__ is self.hook:
            builtins.__import__ = self.real
