"""What runs inside worker interpreters: set-up, chunks, calls of pickled callables.

Workers import this module by name; it must stay importable in an isolated
sub-interpreter (pure Python, standard library only).
"""

from __future__ import annotations

import importlib
import sys
import time
TYPE_CHECKING = False  # typing is not imported at run time: workers import this module
if TYPE_CHECKING:
    from typing import Any

_functions: dict[tuple[str, str], Any] = {}

MAIN_ALIAS = "__mp_main__"


def resolve(module: str, qualname: str) -> Any:
    """The object named module.qualname, cached for the worker's life."""
    key = (module, qualname)
    fn = _functions.get(key)
    if fn is None:
        fn = importlib.import_module(module)
        for part in qualname.split("."):
            fn = getattr(fn, part)
        _functions[key] = fn
    return fn


# A callable that crossed by pickle travels as this keyword argument, so that
# the user's own arguments keep their numbers in error messages.
FN_KEYWORD = "__interpool_fn__"


def run_chunk(module: str | None, qualname: str | None, chunk: list, kwargs: dict,
              **pickled: Any) -> tuple[list, float]:
    """Calls the function for each args tuple of a map chunk, with `kwargs`.

    The function is module.qualname, or the callable passed as FN_KEYWORD.
    Returns the results and the seconds spent, which the parent uses to size
    the next chunks.
    """
    fn = pickled[FN_KEYWORD] if module is None else resolve(module, qualname)  # type: ignore[arg-type]
    start = time.perf_counter()
    if kwargs:
        out = [fn(*args, **kwargs) for args in chunk]
    else:
        out = [fn(*args) for args in chunk]
    return out, time.perf_counter() - start


def call(*args: Any, **kwargs: Any) -> Any:
    """Calls a callable that crossed by pickle (bound methods, callable objects)."""
    return kwargs.pop(FN_KEYWORD)(*args, **kwargs)


class _MainFinder:
    """Makes the parent's __main__ script importable as __mp_main__, on first use."""

    def __init__(self, path: str) -> None:
        self.path = path

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != MAIN_ALIAS:
            return None
        import importlib.util  # here: most workers never load the script

        return importlib.util.spec_from_file_location(
            MAIN_ALIAS, self.path, loader=_MainLoader(self.path)
        )


class _LazyMain(type(sys)):  # types.ModuleType, without importing types
    """Stands for __main__ in a worker: attribute lookups (e.g. by pickle, for a
    class defined in the parent's script) load the script as __mp_main__."""

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module(MAIN_ALIAS), name)


# True while this worker runs the parent's script: an Executor created then
# means the script lacks an `if __name__ == "__main__":` guard.
loading_main = False


class _MainLoader:
    def __init__(self, path: str) -> None:
        self.path = path

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: Any) -> None:
        global loading_main  # noqa: PLW0603
        with open(self.path, "rb") as f:
            code = compile(f.read(), self.path, "exec")
        loading_main = True
        try:
            exec(code, module.__dict__)
        finally:
            loading_main = False


def install_main(main_path: str | None) -> None:
    """Lets this interpreter load the parent's script as __mp_main__ when a task
    (or an unpickled object) needs it. Idempotent."""
    if not main_path or any(isinstance(f, _MainFinder) for f in sys.meta_path):
        return
    sys.meta_path.append(_MainFinder(main_path))
    lazy = _LazyMain("__main__")
    lazy.__file__ = main_path
    sys.modules["__main__"] = lazy


def setup(shared: dict, main_path: str | None) -> None:
    """First thing an Executor worker runs: publishes `shared`, prepares __main__."""
    import interpool

    interpool.shared._publish(shared)
    install_main(main_path)


def prepare(sys_path: list, main_path: str | None) -> None:
    """First call into an interpreter made by interpool.interpreters.create()."""
    sys.path[:] = sys_path
    if main_path:
        sys.meta_path.append(_MainFinder(main_path))
