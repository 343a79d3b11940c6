"""interpool.Executor: a concurrent.futures executor on own-GIL worker interpreters."""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
import types
import weakref
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor as _ThreadPoolExecutor
from typing import Any, Literal, ParamSpec, TypeVar

from . import _exit, _fallback, _functions, _here, _interpool, _worker
from ._functions import Ref as _Ref
from ._functions import for_process as _for_process
from ._functions import main_source as _main_source
from ._functions import reference as _reference
from ._future import _collect, _Future, _State
from ._map import _MapRun

BrokenInterpreterPool = _interpool.BrokenInterpreterPool
NotShareableError = _interpool.NotShareableError

_T = TypeVar("_T")
_P = ParamSpec("_P")

_WORKER_MODULE = _worker.__name__
_FN_KEYWORD = _worker.FN_KEYWORD


def usable_cpus() -> int:
    return _interpool.usable_cpus()


def _rephrase(exc: NotShareableError, chunk_start: int | None = None,
              ref: _Ref | None = None, single: bool = False) -> NotShareableError:
    """Names the user's terms in errors about values that cannot cross: the
    function (sent as a keyword of the worker's call), a map item (the chunk
    is the call's argument 3, a list of argument tuples, or with `single` of
    the items themselves), an argument after
    those interpool put first (`ref.hidden`). Errors interpool did not make
    from its conversion (no `where`) are left as they are."""
    where: str | None = getattr(exc, "where", None)
    path: tuple[int | str, ...] = getattr(exc, "path", ())
    hidden = ref.hidden if ref is not None else 0
    if where == f"keyword argument '{_FN_KEYWORD}'":
        where = "the function"
    elif (chunk_start is not None and single and where == "argument 3" and len(path) >= 1
          and isinstance(path[0], int)):
        return _item_error(exc, chunk_start + path[0], 1, path[1:])
    elif (chunk_start is not None and where == "argument 3" and len(path) >= 2
          and isinstance(path[0], int) and isinstance(path[1], int)
          and ref is not None and path[1] < len(ref.args)):
        # An argument a functools.partial bound: every call's, no item's.
        where = f"argument {path[1] + 1 - hidden}"
        path = path[2:]
    elif chunk_start is not None and where == "argument 4":
        where = "keyword arguments"  # a functools.partial's, which every call gets
    elif (chunk_start is not None and where == "argument 3" and len(path) >= 2
          and isinstance(path[0], int) and isinstance(path[1], int)):
        return _item_error(exc, chunk_start + path[0], path[1] + 1 - hidden, path[2:])
    elif hidden and chunk_start is None:
        return _functions.renumber(exc, hidden)
    else:
        return exc
    return _interpool.not_shareable_at(exc, where, path)


def _item_error(exc: NotShareableError, item: int, argument: int,
                path: tuple[int | str, ...]) -> NotShareableError:
    """`exc` about map item `item`'s argument `argument`, the item kept as data
    (`map_item`, which _MapRun._feed reads)."""
    out = _interpool.not_shareable_at(exc, f"map item {item}, argument {argument}", path)
    out.map_item = item  # type: ignore[attr-defined]
    return out


def _inputs(iterables: tuple[Iterable[Any], ...]) -> tuple[Iterable[Any], bool]:
    """A map's inputs and whether each is its call's one argument: one
    iterable's items go as they are (no tuple per item to make, convert and
    unpack), several iterables as the tuples of zip()."""
    if len(iterables) == 1:
        return iterables[0], True
    return zip(*iterables), False


def _forget(state: _State, owner: int) -> None:
    from . import shared as shared_view

    if _exit.forked is None:
        state.close()  # a fallback process pool closes once every future is settled
    shared_view._pop(owner)


def _initializer_rephrase(exc: NotShareableError, nargs: int) -> NotShareableError:
    """Names the Pool's initializers' values as the user gave them: the first
    initializer's argument 1 is shared=, the second's arguments are initargs."""
    where: str | None = getattr(exc, "where", None)
    path: tuple[int | str, ...] = getattr(exc, "path", ())
    if where == "initializer 1, argument 1":
        return _interpool.not_shareable_at(exc, "shared", path)
    if where == f"initializer 2, keyword argument '{_FN_KEYWORD}'":
        return _interpool.not_shareable_at(exc, "the initializer", path)
    for j in range(nargs):
        if where == f"initializer 2, argument {j + 1}":
            return _interpool.not_shareable_at(exc, f"initargs[{j}]", path)
    return exc


# ---------------------------------------------------------------------------
# Executor
# ---------------------------------------------------------------------------


_executor_numbers = itertools.count()


def _check_thread_name_prefix(prefix: Any) -> None:
    if prefix is None:  # ThreadPoolExecutor takes None for its default name too
        return
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
        thread_name_prefix: str | None = "",
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
        if _exit.forked is not None:
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
        elif max_workers > _interpool.MOST_WORKERS:
            raise ValueError(f"max_workers must be at most {_interpool.MOST_WORKERS} (each worker is a "
                             f"thread and an interpreter), not {max_workers}")
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
        if not isinstance(initargs, tuple):  # a list works too, as it does for the stdlib's pools
            try:
                initargs = tuple(initargs)
            except TypeError:
                raise TypeError(f"initargs must be a tuple of arguments, not {type(initargs).__name__!r}") from None
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
            raise _initializer_rephrase(e, len(initargs)) from None
        self._max_workers = max_workers
        self._thread_name_prefix = thread_name_prefix
        self._here = _here.Threads(f"{thread_name_prefix}-thread")
        self._state = _State(pool, None if fallback is None else _fallback.ProcessFallback(
            max_workers, shared_dict, process_initializer, initargs), task_timeout)
        self._shared = types.MappingProxyType(shared_dict)
        self._handler = threading.Thread(
            target=_collect, args=(self._state,), name="interpool-results", daemon=_exit.IN_MAIN
        )
        self._handler.start()
        from . import shared as shared_view

        shared_view._push(id(self), shared_dict)
        # Collected without shutdown(): stop the workers once their tasks are done.
        self._finalizer = weakref.finalize(self, _forget, self._state, id(self))
        _exit.live.add(self)

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
                      call: tuple | None = None, single: bool = False,
                      key: tuple[str, str] | None | bool = True) -> _Future:
        """Submits (module, qualname, args, kwargs). `accepted`: part of a map()
        that was accepted before shutdown(), which it still completes. With a
        fallback, `call` = (fn, args, kwargs) is what a process would run for
        `ref`'s function, and `key` the function whose later tasks go straight
        to processes once one was refused an import: (module, qualname), None
        for none, True for `ref`'s."""
        state = self._state
        if _exit.forked is not None:
            raise RuntimeError(_exit.forked)
        fut: _Future[Any] = _Future()
        with state.lock:
            if state.broken:
                raise BrokenInterpreterPool(state.broken)
            if state.closed and not accepted:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if _exit.exiting and not accepted:
                raise RuntimeError("cannot schedule new futures after interpreter shutdown")
            fut._chunk_start = chunk_start
            if state.fallback is not None and call is not None and ref is not None:
                fut._call = call
                if key is True:
                    key = (ref.module, ref.qualname) if ref.module and ref.qualname else None
                if key:
                    fut._key = key
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
                # (A shutdown meanwhile, from the arguments' __reduce__, waits for it.)
                state._check_settled()
                if isinstance(e, NotShareableError):
                    raise _rephrase(e, chunk_start, ref, single) from None
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

    def _submit_for(self, key: tuple[str, str] | None, fn: Callable[..., _T], /, *args: Any) -> _Future[_T]:
        """submit(fn, *args) on behalf of the function named by `key`, (module,
        qualname) or None: with fallback="process", a refused import sends that
        function's later tasks to processes, not all of fn's (the joblib
        backend's batches all run one function)."""
        ref = _reference(fn)
        return self._submit_parts(self._call_parts(ref, args, {}), ref=ref,
                                  call=(_for_process(ref, fn), args, {}), key=key)

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
        return self._map(fn, *_inputs(iterables), timeout, chunksize, buffersize, ordered=True)

    def map_unordered(
        self,
        fn: Callable[..., _T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = None,
        buffersize: int | None = None,
    ) -> Iterator[_T]:
        """Like map(), but yields each result as soon as it is ready."""
        return self._map(fn, *_inputs(iterables), timeout, chunksize, buffersize, ordered=False)

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
        return self._map(fn, (tuple(a) for a in iterable), False, timeout, chunksize, buffersize,
                         ordered=True)

    def _map(self, fn: Any, inputs: Iterable[Any], single: bool, timeout: float | None,
             chunksize: int | None, buffersize: int | None, ordered: bool) -> Iterator[Any]:
        run = self._map_run(fn, inputs, single, chunksize, buffersize, ordered)
        end = None if timeout is None else time.monotonic() + timeout
        run.start()
        return run.results(end)

    def _map_run(self, fn: Any, inputs: Iterable[Any], single: bool, chunksize: int | None,
                 buffersize: int | None, ordered: bool) -> _MapRun:
        """`inputs`: each call's argument tuple, or with `single` its one argument."""
        for name, n in (("chunksize", chunksize), ("buffersize", buffersize)):
            if n is not None and not isinstance(n, int):
                raise TypeError(f"{name} must be a positive int or None, not {type(n).__name__!r}")
            if n is not None and n < 1:
                raise ValueError(f"{name} must be a positive int or None, not {n!r}")
        return _MapRun(self, fn, _reference(fn), inputs, single, chunksize, buffersize, ordered)

    def _submit_here(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> _Future:
        state = self._state
        if _exit.forked is not None:
            raise RuntimeError(_exit.forked)
        with state.lock:
            if state.broken:
                raise BrokenInterpreterPool(state.broken)
            if _exit.exiting:
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
        return self._map_run(fn, *_inputs(iterables), chunksize, buffersize, ordered=True).aresults()

    def amap_unordered(
        self,
        fn: Callable[..., _T],
        *iterables: Iterable[Any],
        chunksize: int | None = None,
        buffersize: int | None = None,
    ) -> AsyncGenerator[_T, None]:
        """Like amap(), but yields each result as soon as it is ready."""
        return self._map_run(fn, *_inputs(iterables), chunksize, buffersize,
                             ordered=False).aresults()

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
        if _exit.forked is not None:
            # A copy of the parent's executor: nothing of it runs in this process.
            _exit.live.discard(self)
            self._finalizer()
            return
        state = self._state
        state.close(cancel_pending=cancel_futures)
        self._here.shutdown(wait=False, cancel_futures=cancel_futures)
        if state.fallback is not None and cancel_futures:
            state.fallback.cancel_pending()
        if wait and state.pool.runs_here():
            # A task of this executor, running code in this interpreter
            # (interpreters.get_main().call): waiting would wait for that task.
            self._finalizer()
            _exit.live.discard(self)
            raise RuntimeError("cannot wait for an executor to shut down in one of its own tasks "
                               "(here through the main interpreter): the wait would never end; "
                               "it is shut down, without waiting: call shutdown(wait=False) there")
        if wait and threading.current_thread() is not self._handler:
            self._handler.join()
            if state.fallback is not None:
                state.settled.wait()
                state.fallback.shutdown(wait=True)
            self._here.shutdown(wait=True, cancel_futures=False)
        self._finalizer()  # once: interpool.shared stops showing this executor's values
        _exit.live.discard(self)
