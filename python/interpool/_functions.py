"""How a callable reaches another interpreter: by module and name, or by pickle."""

from __future__ import annotations

import functools
import os
import sys
import types
import weakref
from typing import Any

from . import _worker



class Ref:
    """A callable as workers find it: by (module, qualname), or pickled, plus
    the arguments of any functools.partial around it."""

    __slots__ = ("module", "qualname", "pickled", "args", "kwargs")

    def __init__(self, module: str | None, qualname: str | None, pickled: Any,
                 args: tuple, kwargs: dict) -> None:
        self.module = module
        self.qualname = qualname
        self.pickled = pickled
        self.args = args
        self.kwargs = kwargs


_ref_cache: weakref.WeakKeyDictionary[Any, Ref] = weakref.WeakKeyDictionary()


def main_path() -> str | None:
    """The script run as __main__, if workers can load it as a module."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or os.path.basename(path) == "__main__.py":
        return None  # `python -m package` or a package's __main__: not ours to re-run
    return os.path.abspath(path)


def _lookup(module: str, qualname: str) -> Any:
    obj: Any = sys.modules.get(module)
    if obj is None:
        return None
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def reference(fn: Any, what: str = "the function") -> Ref:
    try:
        cached = _ref_cache.get(fn)
    except TypeError:  # not weak-referenceable (builtins, partials of them)
        cached = None
    if cached is not None:
        return cached
    ref = _make_reference(fn, what)
    try:
        _ref_cache[fn] = ref
    except TypeError:
        pass
    return ref


def _make_reference(fn: Any, what: str) -> Ref:
    args: tuple = ()
    kwargs: dict = {}
    target = fn
    while isinstance(target, functools.partial):
        args = target.args + args
        kwargs = {**target.keywords, **kwargs}
        target = target.func
    if not callable(target):
        raise TypeError(f"{what} must be callable, not {type(target).__name__!r}")
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if isinstance(target, types.FunctionType) and qualname and "<" in qualname:
        kind = "a lambda" if "<lambda>" in qualname else "a nested function or closure"
        raise TypeError(
            f"cannot send {what} {qualname!r} to a worker interpreter: it is {kind}, and "
            f"workers find functions by module and name. Define it at module level "
            f"(in {module or 'a module'}) and pass that function instead"
        )
    if isinstance(module, str) and isinstance(qualname, str) and "<" not in qualname:
        found = _lookup(module, qualname)
        if found is not None and (found is target or found == target):
            if module == "__main__":
                if main_path() is None:
                    raise TypeError(
                        f"cannot send {what} {qualname!r}: it is defined in __main__ of an "
                        f"interactive session, `python -c` or a package's __main__, which "
                        f"workers cannot import. Move it to a module"
                    )
                module = _worker.MAIN_ALIAS
            return Ref(module, qualname, None, args, kwargs)
    # Bound methods, callable objects, ...: they cross by pickle.
    return Ref(None, None, target, args, kwargs)


