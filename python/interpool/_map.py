"""Executor.map and its kin: the run that reads the inputs, sizes chunks from
measured task times and feeds them as results come back."""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from concurrent.futures import CancelledError, Future
from typing import TYPE_CHECKING, Any

from . import _fallback, _interpool, _worker
from ._functions import Ref as _Ref
from ._functions import for_process as _for_process
from ._future import _Future, _Outcome, _raised_by_task
from ._worker import FN_KEYWORD

if TYPE_CHECKING:
    from ._executor import Executor

_WORKER_MODULE = _worker.__name__


def _rephrase_result(exc: BaseException, chunk_start: int | None) -> BaseException:
    """A map chunk's result that cannot cross, named as the user sees it: the
    chunk's value is (results, seconds), so "the result[0][k]" is the result of
    item chunk_start + k."""
    where = getattr(exc, "where", None)
    path: tuple[int | str, ...] = getattr(exc, "path", ())
    if (chunk_start is None or where != "the result" or len(path) < 2 or path[0] != 0
            or not isinstance(path[1], int) or not isinstance(exc, _interpool.NotShareableError)):
        return exc
    return _interpool.not_shareable_at(exc, f"the result of map item {chunk_start + path[1]}",
                                       path[2:])


class _Slot(_Outcome):
    """map_unordered: where the outcome of the i-th chunk to finish goes. It is
    no task, so cancel() does nothing (asyncio.wrap_future cancels what it wraps
    when the awaiting task is cancelled; _MapRun._stop deals with the chunks)."""

    def cancel(self) -> bool:
        return False


class _MapRun:
    # Work per chunk once task times are known: long enough that per-chunk costs
    # vanish, short enough to balance.
    TARGET_SECONDS = 0.02

    def __init__(self, ex: Executor, fn: Any, ref: _Ref, inputs: Iterable[Any], single: bool,
                 chunksize: int | None, buffersize: int | None, ordered: bool) -> None:
        self.ex = ex
        self.fn = fn
        self.ref = ref
        self.total: int | None = None  # known once the inputs are read at once
        # A list or tuple is kept as it is for start(): list() copies its
        # references at once, and from an iterator over it one at a time.
        self.given: Iterable[Any] | None = inputs if type(inputs) in (list, tuple) else iter(inputs)
        self.source: Iterator[Any] = iter(())
        self.inputs: list | None = None  # all of them, read at once (without buffersize)
        self.single = single  # each input is its call's one argument, not an argument tuple
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
        given, self.given = self.given, None
        assert given is not None, "a map run starts once"
        if self.buffersize is None:
            self.inputs = list(given)
            self.total = len(self.inputs)
            if not self.inputs:  # nothing to submit: no error after shutdown, as with
                self.exhausted = True  # concurrent.futures
                return
            # Accepted now: submitted in full even if shutdown() comes first.
            self.ex._state.begin_feed()
            self.accepted = True
        else:
            self.source = iter(given)
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
                if self.inputs is not None:  # a slice copies the references at once
                    chunk = self.inputs[self.taken:self.taken + size]
                else:
                    chunk = list(itertools.islice(self.source, size))
                if not chunk:
                    self.exhausted = True
                    self.inputs = None
                    break
                start = self.taken
                try:
                    fut = self._submit(chunk, start)
                except _interpool.NotShareableError as e:
                    bad: int | None = getattr(e, "map_item", None)
                    if bad is None:
                        raise
                    # An item that cannot cross: the items before it still run,
                    # and its error comes after their results, as an item's
                    # exception would.
                    self.exhausted = True
                    self.error = e
                    self.inputs = None
                    self.changed.notify_all()
                    if bad == start:
                        break
                    chunk = chunk[:bad - start]
                    fut = self._submit(chunk, start)
                self.taken += len(chunk)
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
        single = self.single
        if ref.args:
            chunk = [ref.args + (x,) for x in chunk] if single else [ref.args + a for a in chunk]
            single = False
        fn = None if ref.pickled is None else {FN_KEYWORD: ref.pickled}
        timed = self.ex._state.task_timeout is not None
        parts = (_WORKER_MODULE, "run_chunk",
                 (ref.module, ref.qualname, chunk, kwargs, timed, single), fn)
        call: tuple[Any, ...] = (_fallback.run_chunk,
                                 (_for_process(ref, self.fn), raw, {}, self.single), {})
        return self.ex._submit_parts(parts, chunk_start=start, accepted=self.accepted,
                                     ref=ref, call=call, single=single)

    def _chunk_done(self, n: int, fut: Future) -> None:
        # Runs on the result thread (or in feed(), if the chunk was already done).
        with self.lock:
            self.in_flight -= 1
            self.pending.discard(fut)
            if not fut.cancelled() and fut.exception() is None:
                self.spent += fut.result()[1]
                self.measured += n
            if not self.ordered:
                if fut.cancelled():
                    # No slot for it: the chunks still running fill theirs first,
                    # and the caller meets the cancellation after their results.
                    self.submitted -= 1
                    self.exhausted = True
                    if self.error is None:
                        self.error = CancelledError()
                    # The caller may wait for the slot that no chunk will fill now.
                    stranded = self.slots.get(self.submitted)
                    if stranded is not None and not stranded.done():
                        stranded.set_exception(CancelledError())
                elif isinstance(error := fut.exception(), _interpool.NotShareableError):
                    start = getattr(fut, "_chunk_start", None)
                    self._next_slot().set_exception(_rephrase_result(error, start))
                else:
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

    @staticmethod
    def _raise_failure(done: tuple) -> None:
        """A chunk whose item raised after others gave results (_worker.call_each):
        its exception, now that those results are yielded."""
        if len(done) > 2:
            _interpool.raise_task_error(done[2])

    def _yielded(self, n: int) -> None:
        with self.lock:
            self.yielded += n

    def results(self, end: float | None) -> Iterator[Any]:
        """map(): the results, item by item (ChunkItems pops each chunk's list in
        C: no Python code runs per item)."""
        return _interpool.ChunkItems(self._result_lists(end))

    def _result_lists(self, end: float | None) -> Iterator[list]:
        """Each chunk's results, reversed for ChunkItems; waits for each chunk in
        this thread. Resumed when the caller has taken every item of the last."""
        try:
            for fut in self._chunks(end):
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0 and not fut.done():
                    raise TimeoutError()
                try:
                    done = fut.result(remaining)
                except _interpool.NotShareableError as e:
                    raise _rephrase_result(e, getattr(fut, "_chunk_start", None)) from None
                items = done[0]
                n = self._take_over(items)
                yield items
                del items
                self._yielded(n)
                self._raise_failure(done)
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
                try:
                    done = await asyncio.wrap_future(fut)
                except _interpool.NotShareableError as e:
                    raise _rephrase_result(e, getattr(fut, "_chunk_start", None)) from None
                items = done[0]
                n = self._take_over(items)
                while items:
                    yield items.pop()
                self._yielded(n)
                self._raise_failure(done)
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
