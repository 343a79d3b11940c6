"""The futures an Executor returns and the state they share with its result
thread: the claim of each task's outcome, its settling, the hand-over to the
process fallback."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures._base import LOGGER
from typing import Any, TypeVar

from . import _exit, _fallback, _interpool

BrokenInterpreterPool = _interpool.BrokenInterpreterPool
NotShareableError = _interpool.NotShareableError

_T = TypeVar("_T")

# Set on an executor's result thread, which settles the futures nobody claimed.
_on_result_thread = threading.local()


def _raised_by_task(exc: BaseException) -> bool:
    """True for an exception a task raised (rebuilt here, with the worker's
    traceback as its cause), False for one raised in this process (Ctrl-C)."""
    return isinstance(exc.__cause__, _interpool.RemoteError)


class _Outcome(Future[_T]):
    """A Future whose result() raises an exception that is false in a boolean
    context (its class defines __bool__ or __len__): Future.result of Python
    3.12 and 3.13 returned None for it (fixed in 3.14)."""

    def _Future__get_result(self) -> _T:  # what Future.result calls once it is done
        exc = self._exception
        if exc is not None:
            try:
                raise exc
            finally:
                del exc, self  # no cycle through the traceback's frame
        return self._result  # type: ignore[return-value]


class _Future(_Outcome[_T]):
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

    def _invoke_callbacks(self) -> None:
        # On the result thread, a callback that raises what Future lets through
        # (SystemExit, KeyboardInterrupt...) is reported as the others are, and
        # the later callbacks run: else it ended the thread that completes every
        # future, and wait(), as_completed() and callbacks hung from then on.
        if not getattr(_on_result_thread, "yes", False):
            return super()._invoke_callbacks()  # type: ignore[misc]
        for callback in self._done_callbacks:  # type: ignore[attr-defined]
            try:
                callback(self)
            except BaseException:
                LOGGER.exception("exception calling callback for %r", self)

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
        # Held while a submit converts its arguments, which runs their
        # __reduce__: reentrant, so that one may submit too.
        self.lock = threading.RLock()
        self.closed = False          # shutdown() was called: no new work from callers
        self.cancelling = False      # ... with cancel_futures=True
        self.feeding = 0             # map() calls still submitting the inputs they accepted
        self.pool_closed = False
        self.broken: str | None = None
        # Set once the pool is closed and every future it took is settled.
        self.settled = threading.Event()

    def begin_feed(self) -> None:
        if _exit.forked is not None:
            raise RuntimeError(_exit.forked)
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
    _on_result_thread.yes = True
    pool = state.pool
    settle = state.settle
    while True:
        try:
            batch = pool.completions()
        except _interpool.TaskInterrupted:
            # An executor that a task made in a worker, whose task ended: interpool
            # interrupts the threads it left, this one too. Its pool ends with
            # that interpreter.
            return
        if batch is None:
            break
        for token, ok, payload in batch:
            try:
                settle(token, ok, payload)
            except BaseException:  # the thread goes on: the other outcomes are given
                LOGGER.critical("interpool could not settle a future", exc_info=True)
    pool.join()
