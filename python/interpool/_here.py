"""Calls that belong to this interpreter, which Executor.submit runs on threads here.

An Executor is what asyncio may use as a loop's default executor, and asyncio
gives that executor calls of its own: asyncio.to_thread sends
functools.partial(contextvars.Context.run, fn, ...), whose Context (the
caller's context variables) cannot leave the interpreter; the sendfile
fallback sends a file's readinto; in debug mode getaddrinfo is a method of the
loop. Such a call cannot run on a worker interpreter, and it is I/O the caller
asked a thread for. It runs on a thread of this interpreter, as the
ThreadPoolExecutor asyncio would have used.
"""

from __future__ import annotations

import functools
import sys
import threading
import types
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ._fallback import copy_outcome

# Set on the threads of a Threads pool: shutting the executor down from one of
# them (a task, or a done-callback, which runs there) cannot wait for them all.
_on_our_thread = threading.local()


def bound_here(fn: Any) -> bool:
    """True if fn (under any functools.partial) is a method bound to an object
    that only this interpreter can use: a method of a built-in type bound to an
    instance (Context.run, a file's readinto, a socket's recv, a list's
    append: such objects cannot cross, or would cross as copies whose changes
    nobody here sees), or a method of an asyncio event loop."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    owner = getattr(fn, "__self__", None)
    if owner is None or isinstance(owner, (types.ModuleType, type)):
        return False  # a function, or a method of a module or a class: found by name
    if isinstance(fn, types.BuiltinMethodType):
        return True
    events = sys.modules.get("asyncio.events")  # not imported: no loop exists
    return (isinstance(fn, types.MethodType) and events is not None
            and isinstance(owner, events.AbstractEventLoop))


def _mark_thread() -> None:
    _on_our_thread.marked = True


class Threads:
    """A ThreadPoolExecutor made on first need, whose outcomes go to the
    executor's own futures."""

    def __init__(self, name_prefix: str) -> None:
        self._name_prefix = name_prefix
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False

    def run(self, fut: Future, fn: Callable[..., Any], args: tuple, kwargs: dict) -> bool:
        """Runs fn(*args, **kwargs) on a thread and settles fut with its outcome.
        False once shut down."""
        with self._lock:
            if self._closed:
                return False
            if self._pool is None:
                self._pool = ThreadPoolExecutor(thread_name_prefix=self._name_prefix,
                                                initializer=_mark_thread)
            tfut = self._pool.submit(fn, *args, **kwargs)
        fut._fallback = tfut  # type: ignore[attr-defined]  # cancel() and running() ask it
        tfut.add_done_callback(lambda done: copy_outcome(done, fut))
        return True

    def shutdown(self, wait: bool, cancel_futures: bool) -> None:
        """Takes no more calls; wait=True waits for those taken (also after an
        earlier shutdown(wait=False)), except on one of these threads."""
        with self._lock:
            self._closed = True
            pool = self._pool
        if pool is not None:
            pool.shutdown(wait=wait and not getattr(_on_our_thread, "marked", False),
                          cancel_futures=cancel_futures)
