"""Dask workers whose tasks run on own-GIL interpreters (docs/dask.md).

    dask worker tcp://scheduler:8786 --preload interpool.dask

A Dask worker runs each task by handing ``distributed.worker._run_task_simple``
(task, dependencies' data, clock offset) to its executor; that function and
the task graph machinery need ``distributed``, which does not load in isolated
sub-interpreters. So ``WorkerExecutor`` runs that wrapper in a thread of the
worker's process and sends only the task's own function, with its arguments
already resolved, to an ``interpool.Executor``. Which functions go there:

- Python functions (and ``functools.partial`` of them, and methods) outside
  Dask's own packages run on the interpreters: by module and name when the
  interpreters can import them, else by value with cloudpickle (lambdas,
  closures, the functions of the client's script or notebook, which reach
  workers by value);
- the rest runs in the worker's process, as Dask's thread pool would run it:
  Dask's own functions (``dask``, ``distributed``, ``toolz``: graph plumbing),
  builtins and classes, functions that cloudpickle cannot pickle, calls whose
  arguments cannot cross, and functions whose imports refuse sub-interpreters
  (``IncompatibleModuleError``, e.g. numpy), which stay in the process from
  then on.

Importing this module needs Dask's ``distributed`` (``pip install
'interpool[dask]'``); ``import interpool`` never imports Dask.
"""

from __future__ import annotations

import copy
import functools
import logging
import pickle
import threading
import types
from collections.abc import Callable
from concurrent.futures import Executor as _BaseExecutor
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

try:
    import cloudpickle
    import distributed
except ImportError as e:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "interpool.dask needs Dask's distributed scheduler, which is not installed: "
        "pip install 'interpool[dask]' (or pip install distributed)",
        name=e.name,
    ) from e

try:
    # The task specification of dask 2024.12: graph nodes that the worker calls.
    from dask._task_spec import List as _List  # noqa: F401  (absent before 2024.12)
    from dask._task_spec import Task, _execute_subgraph
    from distributed.worker import _run_task_simple
except ImportError as e:  # pragma: no cover - depends on what is installed
    raise ImportError(
        f"interpool.dask does not support distributed {distributed.__version__}: it needs "
        f"the task specification of dask and distributed 2024.12.0 or later ({e}). "
        f"pip install -U 'interpool[dask]'",
        name=e.name,
    ) from e

import dask
from distributed import profile as _profile

from . import IncompatibleModuleError, NotShareableError
from ._executor import Executor
from ._functions import reference

__all__ = ["WorkerExecutor", "install", "dask_setup", "runs_on_interpreter"]

logger = logging.getLogger("interpool.dask")

# CPython's sys._current_frames() (3.12 to 3.14 at least) makes frame objects
# for the running threads of every interpreter, with the calling interpreter's
# allocator; the interpreter that runs the frame frees that object with its own
# when the frame ends, and the process aborts ("free(): invalid pointer"). Dask's
# statistical profiler calls it every cycle, from each server's event loop
# thread and for the tasks it runs: it stays off in the processes that import
# this module (a worker's nanny passes the setting to its worker process).
dask.config.set({"distributed.worker.profile.enabled": False})


def _check_no_profiler() -> None:
    """RuntimeError if a Dask profiler thread runs in this process: a Dask
    server (scheduler, worker) started before this module was imported."""
    for thread in threading.enumerate():
        if getattr(thread, "_target", None) is _profile._watch and thread.is_alive():
            raise RuntimeError(
                "Dask's profiler runs in this process: it calls sys._current_frames(), which "
                "corrupts the memory of interpreters that run Python code (a CPython bug), so "
                "interpool cannot run tasks here. It was started before interpool.dask was "
                "imported, by a Dask scheduler or worker made first in this process or by a "
                "nanny in a process that had not imported it. Import interpool.dask in the "
                "program that starts the cluster before starting it, or turn the profiler off "
                "first: dask.config.set({'distributed.worker.profile.enabled': False}) or "
                "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False"
            )


def _no_call_stack(keys: Any = None) -> dict:
    # Worker.get_call_stack calls sys._current_frames() (see above).
    return {}

# Graph plumbing: cheap calls whose arguments would only be copied back and forth.
_PROCESS_PACKAGES = frozenset({"dask", "distributed", "toolz", "tlz", "cytoolz"})


def _target(fn: Any) -> Any:
    while isinstance(fn, functools.partial):
        fn = fn.func
    if isinstance(fn, types.MethodType):
        fn = fn.__func__
    return fn


def _key(fn: Any) -> tuple[str, str, int]:
    """Names a task function across the copies that Dask unpickles for each task."""
    target = _target(fn)
    code = getattr(target, "__code__", None)
    return (getattr(target, "__module__", None) or "?", getattr(target, "__qualname__", "?"),
            getattr(code, "co_firstlineno", 0))


class _ByValue:
    """A function that interpreters cannot import by name (a lambda, a closure,
    a function of the client's script or notebook, which Dask sends by value),
    crossing as cloudpickle's bytes: it unpickles as the function itself."""

    __slots__ = ("fn", "payload")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.payload = cloudpickle.dumps(fn)

    def __reduce__(self) -> tuple:
        return (pickle.loads, (self.payload,))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def _for_interpreter(fn: Any) -> tuple[Any, str | None]:
    """(what to submit to an interpreter for the task function `fn`, None), or
    (None, why it runs in the worker's process)."""
    target = _target(fn)
    if not isinstance(target, types.FunctionType):
        return None, "not a Python function"
    module = target.__module__
    if not isinstance(module, str) or module.partition(".")[0] in _PROCESS_PACKAGES:
        return None, "Dask's own function"
    try:
        if reference(fn).module is not None:
            return fn, None  # found by module and name
    except TypeError:
        pass  # a lambda, a closure, a function of an interactive __main__
    try:
        return _ByValue(fn), None
    except Exception as e:  # e.g. a closure over a lock
        return None, f"cloudpickle cannot send it ({type(e).__name__}: {e})"


def runs_on_interpreter(fn: Any) -> bool:
    """True if a task whose function is `fn` is sent to an interpreter: a
    Python function (or a partial of one, or a method) outside Dask's own
    packages, by module and name or else by value (cloudpickle). False for
    builtins, classes, Dask's functions and what cloudpickle cannot pickle:
    those run in the worker's process. (A function sent to an interpreter may
    still come back to the process, e.g. when it imports numpy.)"""
    return _for_interpreter(fn)[0] is not None


class _OnInterpreter:
    """Stands for a task's function in the graph node the worker calls: the
    call goes to the WorkerExecutor's interpreters."""

    __slots__ = ("fn", "sent", "owner")

    def __init__(self, fn: Callable[..., Any], sent: Any, owner: WorkerExecutor) -> None:
        self.fn = fn
        self.sent = sent
        self.owner = owner

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.owner._call(self.fn, self.sent, args, kwargs)

    def __repr__(self) -> str:
        return f"<on an interpreter: {self.fn!r}>"


class WorkerExecutor(_BaseExecutor):
    """The executor of a Dask worker that runs tasks on an ``interpool.Executor``.

    Give it to workers with ``--preload interpool.dask`` (``dask worker``),
    ``preload=["interpool.dask"]`` (``Worker``, ``LocalCluster``) or
    ``install(worker)`` in a preload of your own: those also keep the worker
    from calling ``sys._current_frames()`` (see ``install``). As
    ``Worker(executor=WorkerExecutor())`` or ``Worker(executor={"interpool":
    WorkerExecutor()})`` (tasks annotated ``executor="interpool"``), do not
    ask for the worker's call stacks (``client.call_stack()``).

    Args:
        max_workers: interpreters (default: the CPUs this process may use); also
            the number of the worker's threads that wait for them. Give the
            Dask worker as many threads (``--nthreads``).
        **options: passed to ``interpool.Executor`` (``shared``,
            ``initializer``, ``initargs``, ``fallback``, ``task_timeout``,
            ``max_tasks_per_worker``).
    """

    def __init__(self, max_workers: int | None = None, **options: Any) -> None:
        _check_no_profiler()
        self._executor = Executor(max_workers, **options)
        # The worker's side of each task: resolves its arguments, times it, waits.
        self._threads = ThreadPoolExecutor(self._executor.max_workers,
                                           thread_name_prefix="interpool-dask")
        self._lock = threading.Lock()
        # _key() of the functions whose imports refused an interpreter.
        self._in_process: set[tuple[str, str, int]] = set()
        self._reported: set[tuple[str, str, int]] = set()

    @property
    def max_workers(self) -> int:
        return self._executor.max_workers

    @property
    def executor(self) -> Executor:
        """The interpool.Executor the tasks run on."""
        return self._executor

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        if fn is _run_task_simple:
            return self._threads.submit(self._run_task, *args, **kwargs)
        # Anything else the worker runs in its executor (e.g. its disk and memory
        # benchmarks) is the worker's own code: a thread of this process.
        return self._threads.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        # Tasks taken finish first (they may still send calls to the interpreters).
        self._threads.shutdown(wait=wait, cancel_futures=cancel_futures)
        self._executor.shutdown(wait=wait, cancel_futures=cancel_futures)

    # -- the worker's side of a task ------------------------------------------

    def _run_task(self, task: Any, data: dict, *rest: Any) -> Any:
        return _run_task_simple(self._route(task), data, *rest)

    def _route(self, node: Any) -> Any:
        """A copy of the graph node `node` in which the functions that run on
        interpreters are replaced by _OnInterpreter (the node itself if none)."""
        if not isinstance(node, Task):
            return node  # DataNode, Alias: no function of the user's
        func = node.func
        args = node.args
        if func is _execute_subgraph and args and isinstance(args[0], dict):
            # Fused tasks: a subgraph run by dask; its tasks' functions may be the user's.
            inner = {k: self._route(v) for k, v in args[0].items()}
            if any(inner[k] is not v for k, v in args[0].items()):
                args = (inner, *args[1:])
        args = tuple(self._route(a) if isinstance(a, Task) else a for a in args)
        kwargs = {k: self._route(v) if isinstance(v, Task) else v for k, v in node.kwargs.items()}
        sent, why = _for_interpreter(func)
        if sent is not None:
            func = _OnInterpreter(func, sent, self)
        elif isinstance(_target(func), types.FunctionType):
            assert why is not None  # set whenever nothing is sent
            self._report(func, why)
        if (func is node.func and all(a is b for a, b in zip(args, node.args))
                and all(kwargs[k] is v for k, v in node.kwargs.items())):
            return node
        new = copy.copy(node)  # the same kind of node; only what is called changes
        new.func = func
        new.args = args
        new.kwargs = kwargs
        return new

    def _call(self, fn: Callable[..., Any], sent: Any, args: tuple, kwargs: dict) -> Any:
        """fn(*args, **kwargs) on an interpreter (`sent` is what crosses for fn),
        or here when it cannot go there."""
        key = _key(fn)
        if key in self._in_process:
            return fn(*args, **kwargs)
        try:
            future = self._executor.submit(sent, *args, **kwargs)
        except NotShareableError as e:  # the function or an argument
            self._report(fn, str(e))
            return fn(*args, **kwargs)
        try:
            return future.result()
        except IncompatibleModuleError as e:
            # Refused at import, before the task did anything: run it here, and
            # the next tasks of this function too.
            with self._lock:
                self._in_process.add(key)
            self._report(fn, str(e))
            return fn(*args, **kwargs)

    def _report(self, fn: Any, why: str) -> None:
        key = _key(fn)
        with self._lock:
            if key in self._reported or key[0].partition(".")[0] in _PROCESS_PACKAGES:
                return
            self._reported.add(key)
        logger.info("tasks of %s.%s (line %d) run in the worker's process, not on "
                    "interpreters: %s", *key, why)


def install(worker: Any, **options: Any) -> WorkerExecutor:
    """Makes `worker` (a ``distributed.Worker`` not yet running tasks) run its
    tasks on a WorkerExecutor with as many interpreters as the worker has
    threads (``options`` go to ``interpool.Executor``). Its thread pool stays
    available as the executor named ``"threads"``, for tasks annotated
    ``dask.annotate(executor="threads")``. Dask's profiler must be off in the
    process (importing this module turns it off; RuntimeError if a scheduler or
    worker started it before), and the worker's call stacks are not reported
    (``client.call_stack()`` gives nothing for it)."""
    _check_no_profiler()
    # Neither the task profiler nor client.call_stack() (sys._current_frames()).
    for name in ("profile", "profile-cycle"):
        callback = worker.periodic_callbacks.pop(name, None)
        if callback is not None:
            callback.stop()
    worker.handlers["call_stack"] = _no_call_stack
    executor = WorkerExecutor(options.pop("max_workers", None) or worker.state.nthreads, **options)
    worker.executors["threads"] = worker.executors["default"]
    worker.executors["default"] = executor
    return executor


def dask_setup(worker: Any) -> None:
    """``dask worker --preload interpool.dask`` (and ``Worker(preload=["interpool.dask"])``):
    ``install(worker)``."""
    executor = install(worker)
    logger.info("this worker runs its tasks on %d interpreters", executor.max_workers)
