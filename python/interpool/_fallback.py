"""Extension modules that refuse sub-interpreters, and Executor(fallback="process").

CPython refuses to load, in an interpreter with its own GIL, an extension module
that does not declare support for it (single-phase init, or multi-phase without
Py_MOD_PER_INTERPRETER_GIL_SUPPORTED): "module X does not support loading in
subinterpreters". Such an ImportError becomes IncompatibleModuleError; with
fallback="process" the task runs again in a process pool instead.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from . import IncompatibleModuleError, _interpool

_REFUSED = re.compile(r"module '?([\w.]+)'? does not support loading in subinterpreters")

FALLBACKS = (None, "process")


def incompatible(exc: BaseException) -> IncompatibleModuleError | None:
    """The IncompatibleModuleError an ImportError from a worker stands for, if any."""
    if isinstance(exc, IncompatibleModuleError):
        return exc
    if not isinstance(exc, ImportError):
        return None
    text = str(exc)
    # The worker's traceback (the chain included) travels as the cause's text:
    # packages such as numpy re-raise the refusal with a message of their own.
    text += "\n" + str(getattr(exc.__cause__, "traceback", "") or "")
    found = _REFUSED.search(text)
    if found is None:
        return None
    extension = found.group(1)
    package = extension.split(".")[0]
    error = IncompatibleModuleError(
        f"cannot import {package!r} in a worker interpreter: its extension module "
        f"{extension!r} does not support sub-interpreters with their own GIL. Run the tasks "
        f"that need it in processes: interpool.Executor(..., fallback=\"process\") does so "
        f"for you (or use concurrent.futures.ProcessPoolExecutor)",
        name=extension,
    )
    error.module = package
    error.__cause__ = exc
    return error


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
