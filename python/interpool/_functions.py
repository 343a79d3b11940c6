"""How a callable reaches another interpreter: by module and name, by value
(functions that workers cannot import: see _byvalue), or by pickle."""

from __future__ import annotations

import functools
import os
import sys
import types
import weakref
from typing import Any

from . import _byvalue, _worker


class Ref:
    """A callable as workers find it: by (module, qualname), or pickled, plus
    the arguments of any functools.partial around it. `hidden`: how many of
    those leading arguments interpool put there (not the user's)."""

    __slots__ = ("module", "qualname", "pickled", "args", "kwargs", "hidden")

    def __init__(self, module: str | None, qualname: str | None, pickled: Any,
                 args: tuple, kwargs: dict, hidden: int = 0) -> None:
        self.module = module
        self.qualname = qualname
        self.pickled = pickled
        self.args = args
        self.kwargs = kwargs
        self.hidden = hidden


def renumber(exc: Any, hidden: int) -> Any:
    """A NotShareableError about "argument N" of a call whose first `hidden`
    arguments interpool added, renamed as the user numbers it."""
    from . import _interpool

    where = getattr(exc, "where", None)
    if not isinstance(where, str) or not where.startswith("argument "):
        return exc
    number = where[len("argument "):]
    if not number.isdigit() or int(number) <= hidden:
        return exc
    return _interpool.not_shareable_at(exc, f"argument {int(number) - hidden}",
                                       getattr(exc, "path", ()))


_ref_cache: weakref.WeakKeyDictionary[Any, Ref] = weakref.WeakKeyDictionary()


def main_source() -> tuple[str, str] | None:
    """How other interpreters load this one's __main__ as __mp_main__ (see
    _worker.main_source), or None when they cannot.

    As multiprocessing's spawn does: `python -m pkg.tool` -> the module by name
    (its relative imports work there too); `python script.py` -> the file. Not
    a package's __main__ (`python -m pkg`, a directory or zip run as a script:
    such files run their code unconditionally), nor `python -c` or a REPL.
    Where __main__ is the script, this also lets the objects of __mp_main__
    classes that other interpreters send back resolve to __main__.
    """
    global _main_source  # noqa: PLW0603
    if _worker.main_source is not None:
        return _worker.main_source  # an interpool interpreter passes its parent's on
    main = sys.modules.get("__main__")
    if _main_source is not None and _main_source[0] is main:
        # Found before for this __main__: once the script has run, CPython deletes
        # __main__.__file__ (a thread that reads it then would find no source
        # where an earlier read, which sent the script's functions by name, found
        # one). Another __main__ (runpy.run_path(..., run_name="__main__")) is
        # looked at anew.
        return _main_source[1]
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if name is not None:
        source: tuple[str, str] | None = None
        if name != "__main__" and not name.endswith(".__main__"):
            source = ("module", name)
    else:
        path = getattr(main, "__file__", None)
        # Not a file: `python - < prog.py` has __file__ '<stdin>'.
        if not path or os.path.basename(path) == "__main__.py" or not os.path.isfile(path):
            return None
        source = ("path", os.path.abspath(path))
    if source is not None and _MainAlias not in sys.meta_path:
        sys.meta_path.append(_MainAlias)
    if source is not None:
        _main_source = (main, source)
    return source


# main_source() once it found one, with the __main__ module it found it for.
_main_source: tuple[Any, tuple[str, str]] | None = None


class _MainAlias:
    """In the interpreter that runs the script, module __mp_main__ -- the name the
    script has in other interpreters, so the module of the objects of its classes
    that they send back -- is __main__.

    A finder rather than multiprocessing's sys.modules['__mp_main__'] alias:
    sys.modules is untouched until such an object arrives, and a real module of
    that name (this process is a multiprocessing child) is found first.
    """

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> Any:
        if name != _worker.MAIN_ALIAS:
            return None
        import importlib.util

        return importlib.util.spec_from_loader(name, _MainAlias)  # type: ignore[arg-type]  # (exec_module only)

    @staticmethod
    def create_module(spec: Any) -> None:
        return None

    @staticmethod
    def exec_module(module: types.ModuleType) -> None:
        # The import system returns what sys.modules holds once this has run.
        sys.modules[module.__name__] = sys.modules["__main__"]


def _lookup(module: str, qualname: str) -> Any:
    obj: Any = sys.modules.get(module)
    if obj is None:
        return None
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def reference(fn: Any, what: str = "the function", stateless_as_code: bool = False) -> Ref:
    """How `fn` reaches a worker. Only references by name are cached: they hold
    nothing of `fn`, so the cache never keeps a callable (a bound method's object)
    alive; by value, the globals a function names are read at each call.
    `stateless_as_code` (Interpreter.call, as the standard library's): a
    stateless function crosses as its code, to run in the other interpreter's
    __main__, even if it could be found by name."""
    if stateless_as_code and stateless(fn):
        return Ref(None, None, _byvalue.send(fn, what, needs_value), (), {})
    try:
        cached = _ref_cache.get(fn)
    except TypeError:  # not weak-referenceable (builtins, partials of them)
        cached = None
    if cached is not None:
        return cached
    ref = _make_reference(fn, what)
    if ref.pickled is None:
        try:
            _ref_cache[fn] = ref
        except TypeError:
            pass
    return ref


# Instructions that read or bind a global (or, in a module's or class's code, a name).
_GLOBAL_ACCESS = frozenset({"LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_NAME", "STORE_NAME",
                            "DELETE_NAME"})
_global_names: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # code -> names


def stateless(fn: Any) -> bool:
    """A plain function with no defaults and no closure whose code, nested code
    included, names no global but builtins that its module does not shadow: what
    3.14's Interpreter.call sends as code rather than by pickle."""
    if (type(fn) is not types.FunctionType or fn.__closure__ or fn.__defaults__
            or fn.__kwdefaults__):
        return False
    code = fn.__code__
    names = _global_names.get(code)
    if names is None:
        import dis

        names = _global_names[code] = frozenset(
            i.argval for c in _byvalue.code_tree(code) for i in dis.get_instructions(c)
            if i.opname in _GLOBAL_ACCESS)
    namespace, builtins = fn.__globals__, getattr(fn, "__builtins__", {})
    return all(name not in namespace and name in builtins for name in names)


def for_process(ref: Ref, fn: Any) -> Any:
    """What a fallback process runs for `fn` (whose Ref is `ref`): what pickles."""
    if not isinstance(ref.pickled, _byvalue.SENT_BY_VALUE):
        return fn
    if ref.args or ref.kwargs:
        return functools.partial(ref.pickled, *ref.args, **ref.kwargs)
    return ref.pickled


# Builtins that read the caller's frame: called from C in a worker they have none,
# so they run there with the interpreter's __main__ as their namespace.
_FRAME_BUILTINS = {id(f): f.__name__ for f in (eval, exec, dir, globals, locals, vars)}


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
    framed = _FRAME_BUILTINS.get(id(target))
    if framed is not None:
        return Ref(_worker.__name__, "in_main", None, (framed, *args), kwargs, hidden=1)
    named = _by_name(target)
    if named is not None:
        return Ref(named[0], named[1], None, args, kwargs)
    if isinstance(target, types.FunctionType):
        return Ref(None, None, _byvalue.send(target, what, needs_value), args, kwargs)
    # Bound methods, callable objects, ...: they cross by pickle.
    return Ref(None, None, target, args, kwargs)


def _by_name(obj: Any) -> tuple[str, str] | None:
    """(module, qualname) by which workers find `obj`, or None if they cannot."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    found = _lookup(module, qualname)
    if found is None or not (found is obj or found == obj):
        return None
    if module == "__main__":
        # (In an interpool interpreter, __main__ is not the script: it holds what
        # exec and prepare_main put there.)
        if _worker.main_source is not None or main_source() is None:
            return None
        if _in_main_guard(obj):
            return None  # the worker's copy of the script never defines it
        module = _worker.MAIN_ALIAS
    return module, qualname


class _Guards:
    """Where the __main__ script's `if __name__ == "__main__":` blocks are: their
    line ranges, and the classes defined in them and outside them."""

    def __init__(self, path: str | None) -> None:
        self.path = os.path.abspath(path) if path else None
        self.lines: list[tuple[int, int]] = []
        self.classes_inside: set[str] = set()
        self.classes_outside: set[str] = set()
        # The names the script's statements bind inside and outside its guards.
        self.bound_inside: set[str] = set()
        self.bound_outside: set[str] = set()
        # The class statements of the script, by their first lines (with decorators).
        self.class_lines: dict[int, set[str]] = {}
        if self.path is None:
            return
        import ast

        try:
            with open(self.path, "rb") as f:
                tree = ast.parse(f.read(), self.path)
        except (OSError, SyntaxError, ValueError):
            return
        inside, outside = [], []
        for node in tree.body:
            if _is_main_guard(node):
                inside.append(node)
                self.lines.append((node.lineno, node.end_lineno or node.lineno))
                self.classes_inside.update(
                    n.name for n in ast.walk(node) if isinstance(n, ast.ClassDef))
            else:
                outside.append(node)
                self.classes_outside.update(
                    n.name for n in ast.walk(node) if isinstance(n, ast.ClassDef))
        self.bound_inside = _bound_names(inside)
        self.bound_outside = _bound_names(outside)
        for n in ast.walk(tree):
            if isinstance(n, ast.ClassDef):
                for line in {n.lineno, *(d.lineno for d in n.decorator_list)}:
                    self.class_lines.setdefault(line, set()).add(n.name)


    def holds(self, obj: Any) -> bool:
        """True if the worker's copy of the script does not define `obj`: it is
        defined under a guard (by a statement there, or made at run time by
        one: type(), exec)."""
        code = getattr(obj, "__code__", None)
        if code is not None:
            if self.path is None:
                return False
            if os.path.abspath(code.co_filename) != self.path:
                # Made by exec: the workers' copy has it if a statement outside
                # the guards binds its name (else by value, which functions can).
                return obj.__qualname__.split(".")[0] not in self.bound_outside
            line = code.co_firstlineno
        else:
            if not isinstance(obj, type):
                return False
            line = getattr(obj, "__firstlineno__", None)  # class statements have it from 3.13
            if line is not None and obj.__name__ not in self.class_lines.get(line, ()):
                # A class statement, but not this script's (exec): as a function made so.
                return obj.__qualname__.split(".")[0] not in self.bound_outside
            if line is None:
                # 3.12, or made by type(): by name, if only statements under a
                # guard define or bind it (a name bound at run time outside
                # them, by globals() or a `global` in a function, stays by name).
                name = obj.__name__
                return (name in self.classes_inside | self.bound_inside
                        and name not in self.classes_outside | self.bound_outside)
        return any(start <= line <= end for start, end in self.lines)


def _bound_names(nodes: list[Any]) -> set[str]:
    """The module-level names that statements bind: definitions, assignments,
    imports, loop and `with` targets, also inside `if` and `try` (not inside
    functions and classes, whose names are their own)."""
    import ast

    names: set[str] = set()
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            stack.extend(node.decorator_list)
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        stack.extend(ast.iter_child_nodes(node))
    return names


def _is_main_guard(node: Any) -> bool:
    import ast

    test = getattr(node, "test", None) if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__" and len(test.comparators) == 1
            and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


_guards: _Guards | None = None  # the script's main guards, read on first need


def _in_main_guard(obj: Any) -> bool:
    """True for a function or class of the __main__ script defined under its
    `if __name__ == "__main__":` (which workers loading the script do not run)."""
    global _guards  # noqa: PLW0603
    if _guards is None:
        # The script's path as main_source() found it: __file__ is gone once the script ran.
        source = main_source()
        path = source[1] if source is not None and source[0] == "path" else None
        _guards = _Guards(path or getattr(sys.modules["__main__"], "__file__", None))
    return _guards.holds(obj)


#: Classes that pickle itself saves by what they are (`type(None)`, ...): no
#: name of theirs can be imported, and none needs to be.
_SAVED_BY_PICKLE = (type(None), type(NotImplemented), type(...))


def needs_value(obj: Any) -> bool:
    """A function or class that workers cannot import by name."""
    return obj not in _SAVED_BY_PICKLE and _by_name(obj) is None
