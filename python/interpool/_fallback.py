"""Extension modules that refuse sub-interpreters, and Executor(fallback="process").

CPython refuses to load, in an interpreter with its own GIL, an extension module
that does not declare support for it (single-phase init, or multi-phase without
Py_MOD_PER_INTERPRETER_GIL_SUPPORTED). Workers raise IncompatibleModuleError for
such an import (see _refused); with fallback="process" the task runs again in a
process pool instead.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from . import FallbackWarning, IncompatibleModuleError, _interpool, _worker
from ._byvalue import SENT_BY_VALUE

FALLBACKS = (None, "process")


def incompatible(exc: BaseException) -> IncompatibleModuleError | None:
    """The IncompatibleModuleError a task's exception is, if any: workers raise it
    where a refused import happens (interpool._refused.guard_imports)."""
    return exc if isinstance(exc, IncompatibleModuleError) else None


# How many task outcomes this thread is giving to their futures (ProcessFallback._done,
# on the process pool's threads or on one that cancels): a done-callback there that
# shuts the executor down must not wait for the pool, whose threads may wait for it.
_settling = threading.local()


def check(fallback: Any) -> None:
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback must be None or 'process', not {fallback!r}")


def _process_setup(shared: dict, initializer: Callable[..., Any] | None, initargs: tuple) -> None:
    """First thing a fallback process runs: the same view a worker interpreter has."""
    import interpool

    interpool.shared._publish(shared)
    if initializer is not None:
        initializer(*initargs)


def run_chunk(fn: Callable[..., Any], chunk: list, kwargs: dict) -> tuple[list, float]:
    """A map chunk in a fallback process; returns what _worker.run_chunk returns."""
    start = time.perf_counter()
    out = [fn(*args, **kwargs) for args in chunk]
    return out, time.perf_counter() - start


class ProcessFallback:
    """A process pool, started on first need, for the tasks whose imports refuse
    sub-interpreters. Functions seen failing so go there directly afterwards."""

    def __init__(self, max_workers: int, shared: dict,
                 initializer: Callable[..., Any] | None, initargs: tuple) -> None:
        self._max_workers = max_workers
        self._initargs = (shared, initializer, initargs)
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)  # notified as tasks end
        self._environment = _interpool.environment_lock()
        self._pool: ProcessPoolExecutor | None = None
        # The pool's manager thread, which settles the futures of the tasks it ran.
        # Joined by shutdown(wait=True): after a shutdown(wait=False),
        # ProcessPoolExecutor.shutdown(wait=True) no longer joins it.
        self._manager: threading.Thread | None = None
        self._closed = False
        #: The process pool's future of each task not ended, and the task's future.
        self._pending: dict[Future, Future] = {}
        #: (module, qualname) of functions that went to processes.
        self.known: set[tuple[str, str]] = set()
        #: The functions whose rerouting was announced (FallbackWarning).
        self._warned: set[Any] = set()

    def warn_rerouted(self, call: tuple, key: tuple[str, str] | None,
                      error: IncompatibleModuleError) -> None:
        """Says, once per function, that its tasks now run in processes and why
        (`call` and `key` as run() takes them)."""
        if key is None:
            name = _name_of(call)
        else:  # the script's functions are __mp_main__'s in workers
            name = f"{'__main__' if key[0] == _worker.MAIN_ALIAS else key[0]}.{key[1]}"
        with self._lock:
            if name in self._warned:
                return
            self._warned.add(name)
        warnings.warn(FallbackWarning(
            f"interpool.Executor(fallback=\"process\"): {name} runs in processes from now "
            f"on, because it needs {error.module!r}, whose extension module "
            f"{error.extension!r} refuses sub-interpreters"), skip_file_prefixes=(os.path.dirname(__file__),))

    def run(self, fut: Future, call: tuple, key: tuple[str, str] | None) -> bool:
        """Runs call = (fn, args, kwargs) in a process and settles `fut` with its
        outcome. False if the fallback is shut down."""
        fn, args, kwargs = call
        # The pool spawns its processes (and multiprocessing's resource tracker) in
        # these calls: the environment lock keeps the interpreters' os.environ
        # changes out of the exec (see _worker.guard_environment).
        with self._lock, self._environment:
            if self._closed:
                return False
            if self._pool is None:
                _check_main_file()
                # spawn: forking a process whose other threads run interpreters is unsafe.
                self._pool = ProcessPoolExecutor(
                    self._max_workers, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_process_setup, initargs=self._initargs)
            if key is not None:
                self.known.add(key)
            pfut = self._pool.submit(fn, *args, **kwargs)
            if self._manager is None:  # started by the first submit; private, hence getattr
                self._manager = getattr(self._pool, "_executor_manager_thread", None)
            self._pending[pfut] = fut
        fut._fallback = pfut  # type: ignore[attr-defined]
        pfut.add_done_callback(lambda done: self._done(done, fut))
        return True

    def _done(self, done: Future, fut: Future) -> None:
        _settling.depth = getattr(_settling, "depth", 0) + 1
        try:
            copy_outcome(done, fut)
        finally:
            _settling.depth -= 1
            with self._lock:
                self._pending.pop(done, None)
                self._settled.notify_all()

    def shutdown(self, wait: bool) -> None:
        """Takes no more tasks; wait=True waits until every task taken has given
        its future an outcome and the processes have ended (also after an earlier
        shutdown(wait=False)). Called by a done-callback of one of its tasks'
        futures, it does not wait, and another thread closes the pool: the
        pool's own threads (which run such callbacks) may be waiting for this one."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            manager = self._manager
        if getattr(_settling, "depth", 0):
            if pool is not None:
                # The pool's last reference goes too: dropping it takes the lock
                # its manager holds while it waits for the pool's other threads.
                box = [pool]
                del pool
                threading.Thread(target=_close_in_background, args=(box,),
                                 name="interpool-fallback-close").start()
            return
        if pool is not None:
            pool.shutdown(wait=wait)
        if not wait:
            return
        if manager is not None:
            manager.join()
            # The manager has ended: a task it did not settle by then never will be.
            # It ends with an error rather than leave the wait below hanging.
            with self._lock:
                lost = [fut for pfut, fut in self._pending.items() if not pfut.done()]
            for fut in lost:
                with contextlib.suppress(InvalidStateError):  # settled meanwhile
                    if not fut.done():
                        fut.set_exception(BrokenProcessPool(
                            "the fallback's process pool ended without running this task"))
        with self._lock:
            # Done, not unlisted: a done-callback of one of them may be what waits.
            self._settled.wait_for(lambda: all(f.done() for f in self._pending.values()))

    def cancel_pending(self) -> None:
        """Cancels the tasks that no process has started (shutdown(cancel_futures=True))."""
        with self._lock:
            futures = list(self._pending)
        for pfut in futures:
            pfut.cancel()


class CannotSpawn(RuntimeError):
    """The fallback cannot start processes for this program."""


def _check_main_file() -> None:
    """Spawned processes run the parent's __main__ again from its file (as
    multiprocessing's spawn does): a program read from standard input has none."""
    import sys

    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if isinstance(path, str) and getattr(sys.modules["__main__"], "__spec__", None) is None \
            and not os.path.isfile(path):
        raise CannotSpawn(
            f"fallback=\"process\" cannot start processes for this program: its __main__ "
            f"({path!r}) is no file, and spawned processes load the parent's __main__ from "
            f"its file. Save the program to a file and run that")


def _name_of(call: tuple) -> str:
    """The name of the function of call = (fn, args, kwargs): for a map chunk,
    the mapped function."""
    fn = call[1][0] if call[0] is run_chunk else call[0]
    while True:
        fn = getattr(fn, "fn", fn) if isinstance(fn, SENT_BY_VALUE) else fn
        inner = getattr(fn, "func", None)  # functools.partial
        if inner is None:
            break
        fn = inner
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}.{qualname}" if module else qualname


def _close_in_background(box: list[ProcessPoolExecutor]) -> None:
    box.pop().shutdown(wait=False)


def copy_outcome(done: Future, fut: Future) -> None:
    """Gives fut the outcome of `done` (result, exception or cancellation),
    unless fut is done already."""
    if fut.done():
        return
    if done.cancelled():
        Future.cancel(fut)
        try:
            fut.set_running_or_notify_cancel()
        except RuntimeError:
            pass  # already notified
    elif (exc := done.exception()) is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(done.result())
