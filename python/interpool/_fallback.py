"""Extension modules that refuse sub-interpreters, and Executor(fallback="process").

CPython refuses to load, in an interpreter with its own GIL, an extension module
that does not declare support for it (single-phase init, or multi-phase without
Py_MOD_PER_INTERPRETER_GIL_SUPPORTED). Workers raise IncompatibleModuleError for
such an import (see _refused); with fallback="process" the task runs again in a
process pool instead.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import pickle
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future, InvalidStateError, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.reduction import ForkingPickler
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


def run_pickled(payload: bytes) -> Any:
    """A task in a fallback process: its call, pickled in the parent by
    ProcessFallback.run. Loaded here, inside the task, so that a call the
    process cannot rebuild fails that task alone: the process pool's own
    unpickling of a call ends its process and breaks the pool."""
    fn, args, kwargs = pickle.loads(payload)
    return fn(*args, **kwargs)


def run_chunk(fn: Callable[..., Any], chunk: list, kwargs: dict,
              single: bool = False) -> tuple:
    """A map chunk in a fallback process; returns what _worker.run_chunk returns."""
    return _worker.call_each(fn, chunk, kwargs, single)


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
        outcome. False if the fallback is shut down. NotShareableError, and
        nothing sent, if the call cannot reach a process (see pickle_call)."""
        if key is not None:
            with self._lock:
                self.known.add(key)  # whatever its arguments, the function needs processes
        payload = pickle_call(call, getattr(fut, "_chunk_start", None))
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
            pfut = self._pool.submit(run_pickled, payload)
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


def _by_reference_types() -> tuple[type, ...]:
    from . import _interpool

    return tuple(getattr(_interpool, name) for name in (
        "SharedBuffer", "SharedBufferView", "Lock", "RLock", "Event", "Semaphore",
        "BoundedSemaphore", "Barrier", "AtomicInt", "Queue"))


class _ByReference(Exception):
    def __init__(self, obj: Any) -> None:
        super().__init__(obj)
        self.obj = obj


class _ProcessPickler(ForkingPickler):
    """multiprocessing's pickler (the one the process pool uses), refusing the
    objects interpool shares by reference: they pickle as the id of an object of
    this process, which no other process has."""

    by_reference: tuple[type, ...] = ()

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, self.by_reference):
            raise _ByReference(obj)
        return NotImplemented


def _pickle(obj: Any) -> bytes:
    if not _ProcessPickler.by_reference:
        _ProcessPickler.by_reference = _by_reference_types()
    buffer = io.BytesIO()
    _ProcessPickler(buffer, pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


def pickle_call(call: tuple, chunk_start: int | None = None) -> bytes:
    """call = (fn, args, kwargs) pickled for a fallback process, or
    NotShareableError naming the part that cannot go there (`chunk_start`: the
    map item a run_chunk call's chunk starts at) and why: it does not pickle,
    or it is (or holds) an interpool object shared by reference, which lives in
    this process only. Checked here, so that such a task fails alone."""
    try:
        return _pickle(call)
    except Exception as exc:  # noqa: BLE001  (any pickling failure; located below)
        failure = exc
    from . import NotShareableError

    for where, part in _parts(call, chunk_start):
        try:
            _pickle(part)
        except _ByReference as e:
            held = "" if e.obj is part else f", which holds {_a(type(e.obj))}"
            raise NotShareableError(
                f"{where} ({_a(type(part))}{held}) cannot reach a process: "
                f"fallback=\"process\" runs {_name_of(call)} in another process, and "
                f"interpool's SharedBuffer, locks, events, semaphores, barriers, AtomicInt "
                f"and queues are shared by the interpreters of one process only. Pass such "
                f"a task the data itself (bytes(buffer), a value), or use multiprocessing's "
                f"shared objects for tasks that need processes") from None
        except Exception as e:  # noqa: BLE001
            raise NotShareableError(
                f"{where} ({_a(type(part))}) cannot reach a process: it does not pickle "
                f"({type(e).__name__}: {e}), and fallback=\"process\" runs "
                f"{_name_of(call)} in another process") from e
    raise NotShareableError(
        f"the call of {_name_of(call)} cannot reach a process: it does not pickle "
        f"({type(failure).__name__}: {failure})") from failure


def _parts(call: tuple, chunk_start: int | None) -> Iterator[tuple[str, Any]]:
    """(name, object) of each part of call = (fn, args, kwargs), as the user
    sees them: a map chunk's items and their arguments."""
    fn, args, kwargs = call
    if fn is run_chunk:
        fn, chunk, kwargs, single = args
        yield "the function", fn
        start = chunk_start or 0
        for i, item in enumerate(chunk):
            for j, arg in enumerate((item,) if single else item):
                yield f"map item {start + i}, argument {j + 1}", arg
    else:
        yield "the function", fn
        for j, arg in enumerate(args):
            yield f"argument {j + 1}", arg
    for name, value in kwargs.items():
        yield f"keyword argument {name!r}", value


def _a(cls: type) -> str:
    module = getattr(cls, "__module__", "builtins")
    name = cls.__qualname__ if module in ("builtins", None) else f"{module}.{cls.__qualname__}"
    name = name.replace("interpool._interpool.", "interpool.")
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


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
