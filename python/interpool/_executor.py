"""interpool.Executor: a concurrent.futures executor on own-GIL worker interpreters."""

from __future__ import annotations

import atexit
import functools
import itertools
import os
import sys
import threading
import time
import types
import weakref
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping
from concurrent.futures import CancelledError, Future
from concurrent.futures import ThreadPoolExecutor as _ThreadPoolExecutor
from typing import Any, Literal, ParamSpec, TypeVar

from . import _fallback, _here, _interpool, _worker
from ._functions import Ref as _Ref
from ._functions import for_process as _for_process
from ._functions import main_source as _main_source
from ._functions import reference as _reference

BrokenInterpreterPool = _interpool.BrokenInterpreterPool
NotShareableError = _interpool.NotShareableError

_T = TypeVar("_T")
_P = ParamSpec("_P")

_WORKER_MODULE = "interpool._worker"
_FN_KEYWORD = _worker.FN_KEYWORD


def usable_cpus() -> int:
    return _interpool.usable_cpus()


def _rephrase(exc: NotShareableError, chunk_start: int | None = None) -> NotShareableError:
    """Names the user's terms in errors about values that cannot cross: the
    function (sent as a keyword of the worker's call), a map item (the chunk
    is the call's argument 3, a list of argument tuples). Errors interpool did
    not make from its conversion (no `where`) are left as they are."""
    where: str | None = getattr(exc, "where", None)
    path: tuple[int | str, ...] = getattr(exc, "path", ())
    if where == f"keyword argument '{_FN_KEYWORD}'":
        where = "the function"
    elif (chunk_start is not None and where == "argument 3" and len(path) >= 2
          and isinstance(path[0], int) and isinstance(path[1], int)):
        where = f"map item {chunk_start + path[0]}, argument {path[1] + 1}"
        path = path[2:]
    else:
        return exc
    return _interpool.not_shareable_at(exc, where, path)


# ---------------------------------------------------------------------------
# Futures and the result thread
# ---------------------------------------------------------------------------


def _raised_by_task(exc: BaseException) -> bool:
    """True for an exception a task raised (rebuilt here, with the worker's
    traceback as its cause), False for one raised in this process (Ctrl-C)."""
    return isinstance(exc.__cause__, _interpool.RemoteError)


class _Future(Future[_T]):
    """A Future whose cancel() also withdraws the task from the workers' queue,
    and whose result() waits on the engine: the thread that asks settles it,
    without a detour through the result thread."""

    _task: Any = None
    _owner: _State | None = None  # (Future has a _state of its own)
    _token = 0
    # With fallback="process": what to run in a process if the worker refuses an
    # import, (fn, args, kwargs) and the function's (module, qualname); then the
    # process pool's future.
    _call: tuple | None = None
    _key: tuple[str, str] | None = None
    _fallback: Future | None = None
    _chunk_start: int | None = None  # a map chunk's first item (for errors)

    def interrupt(self) -> bool:
        """Stops the task if a worker runs it. True means its outcome is decided:
        result() raises interpool.TaskInterrupted (TimeoutError if its
        task_timeout had already stopped it), even if its code finishes before
        the interruption reaches it. False means nothing changed: the task is
        not running (cancel() withdraws a pending one) or has already ended.

        The interruption is an exception raised in the task's code at its next
        bytecode (a call that released the GIL, such as time.sleep, is
        interrupted when it returns); the worker's interpreter serves on once
        that exception has unwound the task, and is replaced by a fresh one if
        the task caught it and went on."""
        task = self._task
        return task is not None and self._fallback is None and task.interrupt()

    def _abandon(self) -> None:
        """Nobody waits for the outcome any more (the asyncio task awaiting it
        was cancelled): withdraws the task if no worker has started it, else
        interrupts it, so that no worker stays busy for nobody."""
        if not self.done() and not self.cancel():
            self.interrupt()

    def _settle_here(self, timeout: float | None) -> None:
        """Waits for the task (GIL released) and settles this future, unless the
        result thread claims the outcome first. TimeoutError if it runs late."""
        task = self._task
        if task is None or self._owner is None or self.done():
            return
        got = None
        try:
            got = task.take(timeout)
        finally:  # claimed outcomes are settled, even if an exception comes in between
            if got is not None:
                self._owner.settle(self._token, *got)

    def _wait(self, get: Callable[[float | None], Any], timeout: float | None) -> Any:
        """Future.result or Future.exception (`get`), after waiting on the engine.
        Ctrl-C while waiting stops this executor's work."""
        try:
            if not self.done():
                end = None if timeout is None else time.monotonic() + timeout
                self._settle_here(timeout)
                if end is not None:
                    timeout = max(0.0, end - time.monotonic())
            return get(timeout)
        except KeyboardInterrupt as e:
            if self._owner is not None and not _raised_by_task(e):
                self._owner.stop_everything()
            raise

    def result(self, timeout: float | None = None) -> _T:
        return self._wait(super().result, timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        return self._wait(super().exception, timeout)

    def cancel(self) -> bool:
        if self.cancelled():
            return True
        if self._fallback is not None:
            return self._fallback.cancel() and super().cancel()
        task = self._task
        if task is not None and not task.cancel():
            return False  # a worker has started it (or it already ended)
        return super().cancel()

    def running(self) -> bool:
        if self._fallback is not None:
            return self._fallback.running()
        task = self._task
        if task is not None and task.running():
            return True
        return super().running()

    def __repr__(self) -> str:
        # Future's repr shows its _state, which stays PENDING while a worker runs
        # the task (running() asks the task).
        text = super().__repr__()
        if text.endswith(" state=pending>") and self.running():
            return text[: -len("pending>")] + "running>"
        return text


# Named as the futures of every executor are: <Future at 0x... state=...> is their repr.
_Future.__name__ = _Future.__qualname__ = "Future"


class _State:
    """What the executor and its result thread share. Holds no reference to
    the Executor, so an executor nobody references can be collected."""

    def __init__(self, pool: Any, fallback: _fallback.ProcessFallback | None = None,
                 task_timeout: float | None = None) -> None:
        self.pool = pool
        self.fallback = fallback
        self.task_timeout = task_timeout
        self.futures: dict[int, _Future] = {}
        self.tokens = itertools.count(1)
        self.lock = threading.Lock()
        self.closed = False          # shutdown() was called: no new work from callers
        self.cancelling = False      # ... with cancel_futures=True
        self.feeding = 0             # map() calls still submitting the inputs they accepted
        self.pool_closed = False
        self.broken: str | None = None
        # Set once the pool is closed and every future it took is settled.
        self.settled = threading.Event()

    def begin_feed(self) -> None:
        if _forked is not None:
            raise RuntimeError(_forked)
        with self.lock:
            if self.closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self.feeding += 1

    def end_feed(self) -> None:
        with self.lock:
            self.feeding -= 1
        self._close_pool_when_fed()

    def close(self, cancel_pending: bool = False) -> None:
        with self.lock:
            self.closed = True
            self.cancelling = self.cancelling or cancel_pending
            pending = list(self.futures.values()) if cancel_pending else []
        # Cancelled before shutdown() returns; a worker that takes one skips it.
        for fut in pending:
            fut.cancel()
        self._close_pool_when_fed()

    def settle(self, token: int, ok: bool, payload: Any) -> None:
        """Gives a task's outcome to its future (on whichever thread claimed it)."""
        fut = self.futures.get(token)
        if fut is None:
            return
        handed = False
        try:
            if not ok and isinstance(payload, ImportError) and not fut.cancelled():
                # While the future is still listed: _check_settled must not find no
                # future left and close the fallback before the fallback has this task.
                try:
                    handed, payload = self._reroute(fut, payload)
                except Exception as e:  # a fallback that failed to take it
                    e.__cause__ = e.__cause__ or payload
                    payload = e
        finally:
            # Even when Ctrl-C comes during the hand-over, the future ends (with the
            # task's own error) and leaves the list. Unlisted before its outcome is
            # given: a done-callback may shut the executor down and wait.
            self.futures.pop(token, None)
            if not handed:
                self._give(fut, ok, payload)
            self._check_settled()

    def _reroute(self, fut: _Future, error: ImportError) -> tuple[bool, BaseException]:
        """(True, _) if the task went to the fallback's processes; else (False,
        the exception its future gets: IncompatibleModuleError for a refused import)."""
        refused = _fallback.incompatible(error)
        if refused is None:
            return False, error
        if self.fallback is not None and fut._call is not None:
            try:
                handed = self._run_in_process(fut)
            except NotShareableError:  # the function goes to processes; this call cannot
                self.fallback.warn_rerouted(fut._call, fut._key, refused)
                raise
            if handed:
                self.fallback.warn_rerouted(fut._call, fut._key, refused)
                return True, error
        return False, refused

    def _give(self, fut: _Future, ok: bool, payload: Any) -> None:
        if ok and not fut.cancelled():
            fut.set_result(payload)
        elif fut.cancelled() or isinstance(payload, CancelledError):
            # Cancelled by the caller, by shutdown(cancel_futures=True), or in the
            # moment between submit and the task's registration: tell waiters once.
            Future.cancel(fut)
            try:
                fut.set_running_or_notify_cancel()
            except RuntimeError:
                pass  # already notified
        else:
            if isinstance(payload, BrokenInterpreterPool):
                self.broken = str(payload)
            fut.set_exception(payload)

    def _run_in_process(self, fut: _Future) -> bool:
        assert self.fallback is not None and fut._call is not None
        try:
            return self.fallback.run(fut, fut._call, fut._key)
        except _fallback.CannotSpawn:
            raise
        except RuntimeError:  # the process pool refuses tasks at interpreter exit
            return False

    def _check_settled(self) -> None:
        if self.pool_closed and not self.futures and not self.settled.is_set():
            self.settled.set()
            if self.fallback is not None:
                # Whatever went to processes is queued there: no more will.
                self.fallback.shutdown(wait=False)

    def stop_everything(self) -> None:
        """Ctrl-C while waiting for results: cancels the tasks not started and
        interrupts the running ones, so that the program can exit promptly
        (a `with` block's shutdown then has nothing long to wait for)."""
        with self.lock:
            pending = list(self.futures.values())
        for fut in pending:
            fut.cancel()
        self.pool.interrupt_all()
        if self.fallback is not None:
            self.fallback.cancel_pending()

    def _close_pool_when_fed(self) -> None:
        # The engine stops taking tasks once every map() has submitted all it accepted.
        with self.lock:
            if not self.closed or self.feeding or self.pool_closed:
                return
            self.pool_closed = True
            cancel = self.cancelling
        self.pool.close(cancel_pending=cancel)
        self._check_settled()


def _collect(state: _State) -> None:
    """The result thread: takes the outcomes that no result() call claimed, in
    batches, and settles their futures."""
    pool = state.pool
    settle = state.settle
    while True:
        batch = pool.completions()
        if batch is None:
            break
        for token, ok, payload in batch:
            settle(token, ok, payload)
    pool.join()


def _forget(state: _State, owner: int) -> None:
    from . import shared as shared_view

    if _forked is None:
        state.close()  # a fallback process pool closes once every future is settled
    shared_view._pop(owner)


_live: weakref.WeakSet[Executor] = weakref.WeakSet()
_exiting = False
# In a process forked while interpool ran workers or interpreters: the message
# its executors refuse work with. Their workers and result threads stayed in
# the parent, and a lock one of those threads held at the fork stays held here,
# so nothing in such a child takes an executor's lock or waits for its threads.
_forked: str | None = None


def _after_fork_in_child() -> None:
    global _forked
    _forked = _interpool.fork_refusal("cannot submit a task")
    if _forked is None:
        return
    # The futures of tasks the parent runs: their outcomes come there, not here.
    lost = _interpool.fork_refusal("the task of this future runs in the parent process")
    for ex in list(_live):
        for fut in list(ex._state.futures.values()):
            lock = fut._condition
            if fut.done() or not lock.acquire(blocking=False):
                continue  # being settled by a thread that did not come along: left
            lock.release()
            try:
                fut.set_exception(RuntimeError(lost))
            except Exception:  # an InvalidStateError: it ended meanwhile
                pass


os.register_at_fork(after_in_child=_after_fork_in_child)


# In the main interpreter, result threads are daemon threads and executors left
# open are finished after threading has joined the program's threads. Other
# interpreters allow no daemon threads: there the executors finish before.
_IN_MAIN = _interpool.interpreter_id() == 0


def _at_main_thread_end() -> None:
    # Before threading joins the non-daemon threads. Executors left open take
    # no new tasks from now on (as concurrent.futures' executors at interpreter
    # exit) and go on with those they accepted, which those threads may still
    # be feeding.
    global _exiting
    _exiting = True
    if not _IN_MAIN and _forked is None:
        _finish_open_executors()


def _at_exit() -> None:
    # Every non-daemon thread has ended: a task waiting with no timeout on an
    # interpool object can now be woken only by another task. Once every task
    # waits so, none ever will: the engine interrupts them (TaskInterrupted)
    # rather than let the program hang. Then each executor finishes.
    if _forked is not None:
        return  # the executors' workers are the parent's
    if _IN_MAIN:
        _interpool.end_stuck_tasks()
    _finish_open_executors()


def _finish_open_executors() -> None:
    for ex in list(_live):
        ex.shutdown(wait=True)


threading._register_atexit(_at_main_thread_end)  # type: ignore[attr-defined]
atexit.register(_at_exit)


# ---------------------------------------------------------------------------
# Executor
# ---------------------------------------------------------------------------


_executor_numbers = itertools.count()


def _check_thread_name_prefix(prefix: Any) -> None:
    if isinstance(prefix, str):
        if "\0" in prefix:
            raise ValueError(f"thread_name_prefix must not contain NUL characters: {prefix!r}")
        return
    hint = ""
    if callable(prefix):
        hint = (" (the initializer is the third argument, after thread_name_prefix, as for "
                "ThreadPoolExecutor: pass it as initializer=...)")
    elif type(prefix).__module__ == "multiprocessing.context":
        hint = (" (ProcessPoolExecutor's second argument, mp_context, has no equivalent: "
                "the workers are interpreters, not processes)")
    raise TypeError(f"thread_name_prefix must be a str, not {type(prefix).__name__!r}{hint}")


class Executor(_ThreadPoolExecutor):
    """Runs callables in parallel on worker interpreters, each with its own GIL.

    A ThreadPoolExecutor by class only (as Python 3.14's InterpreterPoolExecutor
    is), so that asyncio takes it as a loop's default executor: none of
    ThreadPoolExecutor's state or threads exist in it.

    Args:
        max_workers: number of workers (default: the CPUs this process may use).
        thread_name_prefix: the workers' threads are named
            ``f"{thread_name_prefix}_{i}"`` (default ``"interpool-<n>"``), where
            the OS shows thread names (cut to its 15 bytes on Linux, the
            ``_<i>`` kept) and as ``threading.current_thread().name`` in them.
        initializer, initargs: called in each worker before its first task; if it
            raises, the executor is broken (BrokenInterpreterPool).
        shared: names to values sent once to each worker, read there (and here)
            through ``interpool.shared``.
        max_tasks_per_worker: replace a worker's interpreter after this many tasks
            (a chunk of ``map`` counts as one task).
        max_tasks_per_child: ProcessPoolExecutor's name for max_tasks_per_worker.
        fallback: None, or ``"process"``: a task that imports an extension module
            that refuses sub-interpreters (IncompatibleModuleError, e.g. numpy)
            runs again in a process pool of ``max_workers`` processes (spawned on
            first need, with the same ``shared``, initializer and initargs), and
            later tasks of the same function go there directly. The function and
            its arguments must then pickle.
        task_timeout: seconds a task may run (for map, each item) before it is
            interrupted; its future then raises TimeoutError (map raises it
            too), and the worker's interpreter is replaced. None: no limit.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., Any] | None = None,
        initargs: tuple = (),
        *,
        shared: Mapping[str, Any] | None = None,
        max_tasks_per_worker: int | None = None,
        max_tasks_per_child: int | None = None,
        fallback: Literal["process"] | None = None,
        task_timeout: float | None = None,
    ) -> None:
        # ThreadPoolExecutor.__init__ is not called: it would make a thread pool.
        if _forked is not None:
            raise RuntimeError(_interpool.fork_refusal("cannot create an Executor"))
        if _worker.loading_main:
            raise RuntimeError(
                "an interpool.Executor was created while a worker was loading your script: "
                "protect the code that starts executors with `if __name__ == \"__main__\":`"
            )
        if max_workers is None:
            max_workers = usable_cpus()
        elif not isinstance(max_workers, int) or isinstance(max_workers, bool):
            raise TypeError(f"max_workers must be an int, not {type(max_workers).__name__!r}")
        elif max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        _check_thread_name_prefix(thread_name_prefix)
        thread_name_prefix = thread_name_prefix or f"interpool-{next(_executor_numbers)}"
        max_tasks_name = "max_tasks_per_worker"
        if max_tasks_per_child is not None:
            if max_tasks_per_worker is not None:
                raise TypeError("give max_tasks_per_worker or max_tasks_per_child (its "
                                "ProcessPoolExecutor name), not both")
            max_tasks_per_worker, max_tasks_name = max_tasks_per_child, "max_tasks_per_child"
        if max_tasks_per_worker is not None:
            if not isinstance(max_tasks_per_worker, int) or isinstance(max_tasks_per_worker, bool):
                raise TypeError(f"{max_tasks_name} must be an int or None, "
                                f"not {type(max_tasks_per_worker).__name__!r}")
            if max_tasks_per_worker < 1:
                raise ValueError(f"{max_tasks_name} must be >= 1, not {max_tasks_per_worker!r}")
        if shared is None:
            shared_dict: dict[str, Any] = {}
        elif isinstance(shared, Mapping):
            shared_dict = dict(shared)
            for key in shared_dict:
                if not isinstance(key, str):
                    raise TypeError(f"shared keys must be str, not {type(key).__name__!r} ({key!r})")
        else:
            raise TypeError(f"shared must be a mapping of names to values, not {type(shared).__name__!r}")
        if not isinstance(initargs, tuple):
            raise TypeError(f"initargs must be a tuple, not {type(initargs).__name__!r}")
        _fallback.check(fallback)
        if task_timeout is not None:
            if not isinstance(task_timeout, (int, float)) or isinstance(task_timeout, bool):
                raise TypeError(f"task_timeout must be a number of seconds or None, "
                                f"not {type(task_timeout).__name__!r}")
            if not task_timeout > 0:
                raise ValueError(f"task_timeout must be > 0, not {task_timeout!r}")

        initializers: list[tuple] = [(_WORKER_MODULE, "setup", (shared_dict, _main_source()), None)]
        process_initializer = initializer  # what a fallback process runs: what pickles
        if initializer is not None:
            ref = _reference(initializer, "the initializer")
            initializers.append(self._call_parts(ref, initargs, {}))
            process_initializer = _for_process(ref, initializer)
        try:
            pool = _interpool.Pool(
                max_workers,
                sys_path=[os.path.abspath(p) if p else os.getcwd() for p in sys.path],
                initializers=initializers,
                max_tasks_per_worker=max_tasks_per_worker or 0,
                thread_name_prefix=thread_name_prefix,
            )
        except NotShareableError as e:
            if getattr(e, "where", None) != "argument 1":  # (shared= is the Pool's first)
                raise
            raise _interpool.not_shareable_at(e, "shared", getattr(e, "path", ())) from None
        self._max_workers = max_workers
        self._thread_name_prefix = thread_name_prefix
        self._here = _here.Threads(f"{thread_name_prefix}-thread")
        self._state = _State(pool, None if fallback is None else _fallback.ProcessFallback(
            max_workers, shared_dict, process_initializer, initargs), task_timeout)
        self._shared = types.MappingProxyType(shared_dict)
        self._handler = threading.Thread(
            target=_collect, args=(self._state,), name="interpool-results", daemon=_IN_MAIN
        )
        self._handler.start()
        from . import shared as shared_view

        shared_view._push(id(self), shared_dict)
        # Collected without shutdown(): stop the workers once their tasks are done.
        self._finalizer = weakref.finalize(self, _forget, self._state, id(self))
        _live.add(self)

    # -- properties ----------------------------------------------------------

    @property
    def max_workers(self) -> int:
        return self._max_workers

    @property
    def shared(self) -> Mapping[str, Any]:
        """The values sent once to each worker (read-only)."""
        return self._shared

    # -- submitting ----------------------------------------------------------

    @staticmethod
    def _call_parts(ref: _Ref, args: tuple, kwargs: dict) -> tuple:
        """(module, qualname, args, kwargs) for the engine."""
        if ref.args:
            args = ref.args + args
        if ref.kwargs:
            kwargs = {**ref.kwargs, **kwargs}
        if ref.pickled is None:
            return (ref.module, ref.qualname, args, kwargs or None)
        return (_WORKER_MODULE, "call", args, {**kwargs, _FN_KEYWORD: ref.pickled})

    def _submit_parts(self, parts: tuple, chunk_start: int | None = None,
                      accepted: bool = False, ref: _Ref | None = None,
                      call: tuple | None = None) -> _Future:
        """Submits (module, qualname, args, kwargs). `accepted`: part of a map()
        that was accepted before shutdown(), which it still completes. With a
        fallback, `call` = (fn, args, kwargs) is what a process would run for
        `ref`'s function."""
        state = self._state
        if _forked is not None:
            raise RuntimeError(_forked)
        fut: _Future[Any] = _Future()
        with state.lock:
            if state.broken:
                raise BrokenInterpreterPool(state.broken)
            if state.closed and not accepted:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if _exiting and not accepted:
                raise RuntimeError("cannot schedule new futures after interpreter shutdown")
            if state.fallback is not None and call is not None and ref is not None:
                fut._call = call
                fut._chunk_start = chunk_start
                if ref.module is not None:
                    fut._key = (ref.module, ref.qualname)  # type: ignore[assignment]
                    if fut._key in state.fallback.known and state.fallback.run(fut, call, None):
                        return fut  # this function's imports refuse sub-interpreters
            token = next(state.tokens)
            state.futures[token] = fut
            fut._owner = state
            fut._token = token
            try:
                fut._task = state.pool.submit(*parts, token=token, timeout=state.task_timeout)
            except BaseException as e:
                del state.futures[token]
                if isinstance(e, NotShareableError):
                    raise _rephrase(e, chunk_start) from None
                raise
        return fut

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _Future[_T]:
        """Schedules fn(*args, **kwargs) on a worker; returns a Future (with
        interrupt() besides the usual methods). A method bound to an object
        only this interpreter can use (asyncio.to_thread's Context.run, a
        file's readinto) runs on a thread here instead."""
        if _here.bound_here(fn):
            return self._submit_here(fn, args, kwargs)
        ref = _reference(fn)
        return self._submit_parts(self._call_parts(ref, args, kwargs), ref=ref,
                                  call=(_for_process(ref, fn), args, kwargs))

    def map(
        self,
        fn: Callable[..., _T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = None,
        buffersize: int | None = None,
    ) -> Iterator[_T]:
        """Like builtin map(fn, *iterables), run in parallel; results in order.

        chunksize=None sizes chunks from measured task times (small first, then
        about 20 ms of work each, smaller again near the end so that workers
        finish together). buffersize bounds how many inputs are taken ahead of
        the results yielded; without it the inputs are read at once.
        """
        return self._map(fn, zip(*iterables), timeout, chunksize, buffersize, ordered=True)

    def map_unordered(
        self,
        fn: Callable[..., _T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = None,
        buffersize: int | None = None,
    ) -> Iterator[_T]:
        """Like map(), but yields each result as soon as it is ready."""
        return self._map(fn, zip(*iterables), timeout, chunksize, buffersize, ordered=False)

    def starmap(
        self,
        fn: Callable[..., _T],
        iterable: Iterable[Iterable[Any]],
        *,
        timeout: float | None = None,
        chunksize: int | None = None,
        buffersize: int | None = None,
    ) -> Iterator[_T]:
        """Like itertools.starmap(fn, iterable), run in parallel; results in order."""
        return self._map(fn, (tuple(a) for a in iterable), timeout, chunksize, buffersize, ordered=True)

    def _map(self, fn: Any, argtuples: Iterable[tuple], timeout: float | None,
             chunksize: int | None, buffersize: int | None, ordered: bool) -> Iterator[Any]:
        run = self._map_run(fn, argtuples, chunksize, buffersize, ordered)
        end = None if timeout is None else time.monotonic() + timeout
        run.start()
        return run.results(end)

    def _map_run(self, fn: Any, argtuples: Iterable[tuple], chunksize: int | None,
                 buffersize: int | None, ordered: bool) -> _MapRun:
        if chunksize is not None and (not isinstance(chunksize, int) or chunksize < 1):
            raise ValueError("chunksize must be a positive int or None")
        if buffersize is not None and (not isinstance(buffersize, int) or buffersize < 1):
            raise ValueError("buffersize must be None or a positive int")
        return _MapRun(self, fn, _reference(fn), argtuples, chunksize, buffersize, ordered)

    def _submit_here(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> _Future:
        state = self._state
        if _forked is not None:
            raise RuntimeError(_forked)
        with state.lock:
            if state.broken:
                raise BrokenInterpreterPool(state.broken)
            if _exiting:
                raise RuntimeError("cannot schedule new futures after interpreter shutdown")
        fut: _Future[Any] = _Future()
        if state.closed or not self._here.run(fut, fn, args, kwargs):
            raise RuntimeError("cannot schedule new futures after shutdown")
        return fut

    # ThreadPoolExecutor's machinery, never used here (its __init__ does not
    # run): whoever calls these finds no thread pool to grow or to break.
    def _adjust_thread_count(self) -> None:
        pass

    def _initializer_failed(self) -> None:
        pass

    # -- asyncio -------------------------------------------------------------
    # loop.set_default_executor(Executor()) is accepted (a ThreadPoolExecutor by
    # class); loop.run_in_executor(None, fn, ...) then runs fn on a worker, and
    # asyncio's own calls bound to this interpreter (to_thread) on threads here.
    # Awaiting uses the futures' done-callbacks (asyncio.wrap_future): no thread
    # waits per task. asyncio is imported on first use, as most programs never do.

    async def run(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``await ex.run(fn, *args, **kwargs)``: runs the call on a worker and
        returns its result, or raises its exception.

        The task is submitted when the coroutine starts. Cancelling the
        awaiting asyncio task (``task.cancel()``, ``asyncio.wait_for``,
        ``asyncio.timeout``) withdraws the task if no worker has started it,
        and interrupts it if one has (interpool.TaskInterrupted is raised in
        its code, as by Future.interrupt), so that the worker is free at once
        instead of finishing work whose result nobody will read. A task that
        fell back to a process (fallback="process") is withdrawn only if it has
        not started.
        """
        import asyncio

        fut = self.submit(fn, *args, **kwargs)
        try:
            return await asyncio.wrap_future(fut)
        finally:
            fut._abandon()

    def amap(
        self,
        fn: Callable[..., _T],
        *iterables: Iterable[Any],
        chunksize: int | None = None,
        buffersize: int | None = None,
    ) -> AsyncGenerator[_T, None]:
        """``async for r in ex.amap(fn, *iterables)``: map() for asyncio, results
        in order, in the same chunks as map().

        The inputs are read, and the first chunks submitted, when the iteration
        starts (all inputs then, unless buffersize bounds how many are read
        ahead of the results). The exception of an item is raised at that
        item. Leaving the loop early (break, an exception, cancelling the
        consuming task) cancels the chunks not started and interrupts the
        running ones, as run() does. For a time limit use ``asyncio.timeout``.
        A break stops the work when the loop closes the iterator (soon after,
        on the event loop); ``contextlib.aclosing`` stops it at once.
        """
        return self._map_run(fn, zip(*iterables), chunksize, buffersize, ordered=True).aresults()

    def amap_unordered(
        self,
        fn: Callable[..., _T],
        *iterables: Iterable[Any],
        chunksize: int | None = None,
        buffersize: int | None = None,
    ) -> AsyncGenerator[_T, None]:
        """Like amap(), but yields each result as soon as it is ready."""
        return self._map_run(fn, zip(*iterables), chunksize, buffersize, ordered=False).aresults()

    # -- shutting down -------------------------------------------------------

    def terminate_workers(self) -> None:
        """Stops all work now: cancels the pending tasks, interrupts the running
        ones (their futures raise interpool.TaskInterrupted; see
        Future.interrupt), and shuts the executor down, waiting for its workers."""
        self.shutdown(wait=False, cancel_futures=True)
        self._state.pool.interrupt_all()
        self.shutdown(wait=True)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stops accepting tasks; cancel_futures cancels those not started;
        wait=True waits for the rest and for the workers to end."""
        if _forked is not None:
            # A copy of the parent's executor: nothing of it runs in this process.
            _live.discard(self)
            self._finalizer()
            return
        state = self._state
        state.close(cancel_pending=cancel_futures)
        self._here.shutdown(wait=False, cancel_futures=cancel_futures)
        if state.fallback is not None and cancel_futures:
            state.fallback.cancel_pending()
        if wait and threading.current_thread() is not self._handler:
            self._handler.join()
            if state.fallback is not None:
                state.settled.wait()
                state.fallback.shutdown(wait=True)
            self._here.shutdown(wait=True, cancel_futures=False)
        self._finalizer()  # once: interpool.shared stops showing this executor's values
        _live.discard(self)


# ---------------------------------------------------------------------------
# map: chunks sized from measured times, fed as results come back
# ---------------------------------------------------------------------------


class _Slot(Future):
    """map_unordered: where the outcome of the i-th chunk to finish goes. It is
    no task, so cancel() does nothing (asyncio.wrap_future cancels what it wraps
    when the awaiting task is cancelled; _MapRun._stop deals with the chunks)."""

    def cancel(self) -> bool:
        return False


class _MapRun:
    # Work per chunk once task times are known: long enough that per-chunk costs
    # vanish, short enough to balance.
    TARGET_SECONDS = 0.02

    def __init__(self, ex: Executor, fn: Any, ref: _Ref, argtuples: Iterable[tuple],
                 chunksize: int | None, buffersize: int | None, ordered: bool) -> None:
        self.ex = ex
        self.fn = fn
        self.ref = ref
        self.total: int | None = None  # known once the inputs are read at once
        self.source = iter(argtuples)
        self.fixed = chunksize
        self.buffersize = buffersize
        self.ordered = ordered
        self.workers = ex.max_workers
        # Reentrant: a chunk that is already done runs its callback inside feed().
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.taken = 0          # inputs read so far
        self.yielded = 0        # results handed to the caller
        self.in_flight = 0      # chunks submitted and not finished
        self.exhausted = False  # the inputs have run out (or feeding failed)
        self.stopped = False    # the caller stopped iterating
        self.error: BaseException | None = None
        self.ordered_chunks: list[_Future | None] = []  # map: in submission order
        self.pending: set[_Future] = set()
        # map_unordered: slots[i] gets the outcome of the i-th chunk to finish.
        self.slots: dict[int, _Slot] = {}
        self.finished = 0
        self.submitted = 0
        self.spent = 0.0        # seconds measured in workers
        self.measured = 0       # items those seconds cover
        self.accepted = False   # counted in the executor's feeding (map without buffersize)
        self.fed = False        # ... and that count was given back

    def _next_size(self) -> int:
        if self.fixed is not None:
            return self.fixed
        if self.measured == 0:
            return 1  # cost unknown: one item per chunk until a chunk reports its time
        per_item = max(self.spent / self.measured, 1e-7)
        size = int(self.TARGET_SECONDS / per_item) or 1
        if self.total is not None:
            # Near the end, smaller chunks so that the workers finish together.
            size = min(size, max(1, (self.total - self.taken) // (2 * self.workers)))
        return max(1, size)

    def start(self) -> None:
        """Reads the inputs (all of them without buffersize, as concurrent.futures
        does) and submits the first chunks."""
        if self.buffersize is None:
            inputs = list(self.source)
            self.total = len(inputs)
            self.source = iter(inputs)
            # Accepted now: submitted in full even if shutdown() comes first.
            self.ex._state.begin_feed()
            self.accepted = True
        self.feed()

    def feed(self) -> None:
        """Submits chunks until 2 per worker are in flight (and the buffer allows)."""
        try:
            self._feed()
        except BaseException:
            with self.lock:
                self.exhausted = True  # submitting failed (shut down, broken): no more
            raise
        finally:
            if self.exhausted or self.stopped:
                self._done_feeding()

    def _done_feeding(self) -> None:
        with self.lock:
            if not self.accepted or self.fed:
                return
            self.fed = True
        self.ex._state.end_feed()

    def _feed(self) -> None:
        with self.lock:
            if self.ex._state.cancelling and not self.exhausted:
                # shutdown(cancel_futures=True): inputs not submitted are cancelled.
                self.exhausted = True
                self.error = CancelledError()
                self.changed.notify_all()
            while not self.exhausted and not self.stopped and self.in_flight < 2 * self.workers:
                size = self._next_size()
                if self.buffersize is not None:
                    room = self.buffersize - (self.taken - self.yielded)
                    if room <= 0:
                        break
                    size = min(size, room)
                chunk = list(itertools.islice(self.source, size))
                if not chunk:
                    self.exhausted = True
                    break
                start = self.taken
                self.taken += len(chunk)
                fut = self._submit(chunk, start)
                self.in_flight += 1
                self.submitted += 1
                self.pending.add(fut)
                if self.ordered:
                    self.ordered_chunks.append(fut)
                fut.add_done_callback(functools.partial(self._chunk_done, len(chunk)))
                self.changed.notify_all()

    def _submit(self, chunk: list, start: int) -> _Future:
        raw = chunk
        ref = self.ref
        kwargs = ref.kwargs or {}
        if ref.args:
            chunk = [ref.args + args for args in chunk]
        fn = None if ref.pickled is None else {_FN_KEYWORD: ref.pickled}
        timed = self.ex._state.task_timeout is not None
        parts = (_WORKER_MODULE, "run_chunk", (ref.module, ref.qualname, chunk, kwargs, timed), fn)
        call: tuple[Any, ...] = (_fallback.run_chunk, (_for_process(ref, self.fn), raw, {}), {})
        return self.ex._submit_parts(parts, chunk_start=start, accepted=self.accepted,
                                     ref=ref, call=call)

    def _chunk_done(self, n: int, fut: Future) -> None:
        # Runs on the result thread (or in feed(), if the chunk was already done).
        with self.lock:
            self.in_flight -= 1
            self.pending.discard(fut)
            if not fut.cancelled() and fut.exception() is None:
                self.spent += fut.result()[1]
                self.measured += n
            if not self.ordered:
                _fallback.copy_outcome(fut, self._next_slot())
            self.changed.notify_all()
        if self.buffersize is None and not self.stopped:
            try:
                self.feed()
            except BaseException as e:  # e.g. shut down meanwhile: the caller sees it
                with self.lock:
                    self.error = e
                    self.exhausted = True
                    self.changed.notify_all()
                    if not self.ordered:
                        self._next_slot().set_exception(e)  # the caller sees it next
                self._done_feeding()

    def _slot(self, index: int) -> _Slot:
        with self.lock:
            slot = self.slots.get(index)
            if slot is None:
                slot = self.slots[index] = _Slot()
            return slot

    def _next_slot(self) -> _Slot:
        with self.lock:
            self.finished += 1
            return self._slot(self.finished - 1)

    def _next_chunk(self, index: int, end: float | None) -> Future | None:
        """The future of the index-th chunk to yield (map_unordered: of the
        index-th to finish), or None when all are yielded."""
        with self.lock:
            while True:
                if self.ordered and index < len(self.ordered_chunks):
                    return self.ordered_chunks[index]
                if not self.ordered and index < self.submitted:
                    return self._slot(index)
                if self.exhausted:
                    if self.error is not None:
                        raise self.error
                    return None
                # Nothing submitted ahead: feed, or wait for a chunk to finish first.
                before = self.submitted
                self.feed()
                if self.submitted == before and not self.exhausted:
                    remaining = None if end is None else end - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise TimeoutError()
                    self.changed.wait(remaining)

    def _chunks(self, end: float | None) -> Iterator[Future]:
        """The futures of the chunks in the order their items are yielded; the
        caller waits for each and yields its items before asking for the next."""
        index = 0
        while (fut := self._next_chunk(index, end)) is not None:
            yield fut
            with self.lock:  # let the chunk go once its results are yielded
                if self.ordered:
                    self.ordered_chunks[index] = None
                else:
                    del self.slots[index]
            index += 1
            if self.buffersize is not None:
                self.feed()

    def _take_over(self, items: list) -> int:
        """Reverses a chunk's results (the list its future holds) for the
        caller to yield with items.pop(): each result leaves the list as it is
        handed over, so that the caller's `del` frees it, as with
        concurrent.futures (a loop variable or the list would keep it until the
        next chunk). Returns their number, for _yielded."""
        items.reverse()
        return len(items)

    def _yielded(self, n: int) -> None:
        with self.lock:
            self.yielded += n

    def results(self, end: float | None) -> Iterator[Any]:
        """map(): waits for each chunk in this thread."""
        try:
            for fut in self._chunks(end):
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0 and not fut.done():
                    raise TimeoutError()
                items = fut.result(remaining)[0]
                n = self._take_over(items)
                while items:
                    yield items.pop()
                self._yielded(n)
        except KeyboardInterrupt as e:
            if not _raised_by_task(e):
                self.ex._state.stop_everything()  # Ctrl-C while waiting: stop this executor's work
            raise
        finally:
            self._stop(_Future.cancel)

    async def aresults(self) -> AsyncGenerator[Any, None]:
        """amap(): awaits each chunk; starts the run on the first iteration."""
        import asyncio

        try:
            self.start()
            for fut in self._chunks(None):
                items = (await asyncio.wrap_future(fut))[0]
                n = self._take_over(items)
                while items:
                    yield items.pop()
                self._yielded(n)
        finally:
            self._stop(_Future._abandon)

    def _stop(self, stop: Callable[[_Future], Any]) -> None:
        """The caller stopped iterating: `stop` the chunks that are still pending
        (map: cancel the ones not started; amap: interrupt the running ones too)."""
        self.stopped = True
        with self.lock:
            pending = list(self.pending)
        for fut in pending:
            stop(fut)
        self._done_feeding()
