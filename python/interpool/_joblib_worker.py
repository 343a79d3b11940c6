"""What the joblib backend (interpool.joblib) runs in its worker interpreters:
their set-up, and the batches of calls.

Workers import this module by name: standard library only. A batch crosses as
its list of calls rather than as joblib's BatchedCalls, whose unpickling would
import joblib: on Python 3.12 joblib cannot be imported in a sub-interpreter
(its loky part imports ctypes, which 3.12 refuses there), and after the
failed attempt the process aborts at exit (seen with CPython 3.12.1: "double
free or corruption"). On 3.13 workers import joblib for the nested calls'
configuration, as BatchedCalls would.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing is not imported at run time: workers import this module
if TYPE_CHECKING:
    from typing import Any

# True in the interpreters that run the joblib backend's batches: a Parallel
# call made there on the interpool backend runs sequentially (interpool.joblib).
in_worker = False


class _NoFaulthandler(type(sys)):  # type: ignore[misc]  # types.ModuleType, without importing types
    """Stands for the module faulthandler, which CPython refuses to load in
    sub-interpreters (it handles the whole process's fatal signals)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):  # probes (__file__, __path__...)
            raise AttributeError(f"module 'faulthandler' has no attribute {name!r}")
        raise AttributeError(
            f"faulthandler.{name} is not available in interpool's worker interpreters: CPython "
            f"cannot load faulthandler in a sub-interpreter. interpool.joblib puts this empty "
            f"module in its place so that joblib (whose loky part imports faulthandler) imports "
            f"there; call faulthandler from the main interpreter"
        )


def _make_faulthandler_importable() -> None:
    """joblib imports loky, which imports faulthandler at module level (for its
    worker processes, which never run here): without a module of that name,
    `import joblib` fails in a sub-interpreter, and so does every task module
    that imports joblib (on 3.13; on 3.12 ctypes refuses it anyway)."""
    if "faulthandler" in sys.modules:
        return
    try:
        import faulthandler  # noqa: F401  (a CPython that can load it here: keep it)
    except ImportError:
        sys.modules["faulthandler"] = _NoFaulthandler(
            "faulthandler", "interpool's stand-in: faulthandler cannot load in a sub-interpreter")


# joblib.parallel, once imported here; None before, and where it cannot be.
_parallel: Any = None
# Not tried on 3.12, where the attempt fails and the process then aborts at exit (see above).
_joblib_refused = sys.version_info < (3, 13)


def _joblib_parallel() -> Any:
    global _parallel, _joblib_refused  # noqa: PLW0603
    if _parallel is None and not _joblib_refused:
        try:
            import joblib.parallel
        except ImportError:
            _joblib_refused = True
        else:
            _parallel = joblib.parallel
    return _parallel


def run_batch(calls: list, nested: tuple) -> list:
    """Runs a batch's calls, (function, args, kwargs) each, and returns their
    results. As joblib's BatchedCalls does, Parallel calls made inside them run
    on the backend's nested backend, `nested` = (its class's module, its class's
    name, nesting level, n_jobs) (unless joblib cannot be imported here, and
    so cannot be used by the calls either)."""
    parallel = _joblib_parallel()
    if parallel is None:
        return [fn(*args, **kwargs) for fn, args, kwargs in calls]
    import importlib

    module, name, nesting_level, n_jobs = nested
    backend = getattr(importlib.import_module(module), name)(nesting_level=nesting_level)
    with parallel.parallel_config(backend=backend, n_jobs=n_jobs):
        return [fn(*args, **kwargs) for fn, args, kwargs in calls]


def setup() -> None:
    """The initializer of the joblib backend's executors."""
    global in_worker  # noqa: PLW0603
    in_worker = True
    _make_faulthandler_importable()
