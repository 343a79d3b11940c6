"""What becomes of the executors left open when the program ends, and of
those a forked child inherits: the process-wide hooks, and the state they set
that executors consult (the open executors, exiting, forked)."""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from typing import TYPE_CHECKING

from . import _interpool

if TYPE_CHECKING:
    from ._executor import Executor

# The executors not shut down yet: finished at exit, disowned in a forked child.
live: weakref.WeakSet[Executor] = weakref.WeakSet()
# The main thread has ended: executors take no new tasks (as concurrent.futures' do).
exiting = False
# In a process forked while interpool ran workers or interpreters: the message
# its executors refuse work with. Their workers and result threads stayed in
# the parent, and a lock one of those threads held at the fork stays held here,
# so nothing in such a child takes an executor's lock or waits for its threads.
forked: str | None = None


def _after_fork_in_child() -> None:
    global forked
    forked = _interpool.fork_refusal("cannot submit a task")
    if forked is None:
        return
    # The futures of tasks the parent runs: their outcomes come there, not here.
    lost = _interpool.fork_refusal("the task of this future runs in the parent process")
    for ex in list(live):
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
IN_MAIN = _interpool.interpreter_id() == 0


def _at_main_thread_end() -> None:
    # Before threading joins the non-daemon threads. Executors left open take
    # no new tasks from now on (as concurrent.futures' executors at interpreter
    # exit) and go on with those they accepted, which those threads may still
    # be feeding.
    global exiting
    exiting = True
    if not IN_MAIN and forked is None:
        _finish_open_executors()


def _at_exit() -> None:
    # Every non-daemon thread has ended: a task waiting with no timeout on an
    # interpool object can now be woken only by another task. Once every task
    # waits so, none ever will: the engine interrupts them (TaskInterrupted)
    # rather than let the program hang. Then each executor finishes.
    if forked is not None:
        return  # the executors' workers are the parent's
    if IN_MAIN:
        _interpool.end_stuck_tasks()
    _finish_open_executors()


def _finish_open_executors() -> None:
    # All stop taking tasks first: an idle executor's workers then end, and do
    # not keep the tasks queued in another one from counting as stuck.
    executors = list(live)
    for ex in executors:
        ex.shutdown(wait=False)
    for ex in executors:
        ex.shutdown(wait=True)


def drop_atexit_handlers() -> None:
    """os._exit in a task: its worker's interpreter ends without the handlers
    registered with atexit, as a process does at os._exit. interpool's own
    (which shut down the executors made in that interpreter) stay."""
    atexit._clear()
    atexit.register(_interpool._shutdown_pools)
    atexit.register(_at_exit)


threading._register_atexit(_at_main_thread_end)  # type: ignore[attr-defined]
atexit.register(_at_exit)
