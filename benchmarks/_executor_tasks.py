"""Worker-side functions of benchmarks/bench_executor.py.

Every backend's workers import this module by name (interpool and the stdlib
sub-interpreters by module name, processes and loky by pickle reference), so it
stays light: nothing but os, time and _thread (built in, or already loaded
in every interpreter), so that importing it costs a worker next to nothing.
No `from __future__ import annotations` either: __future__ is one more module
to load in each worker. The leading underscore keeps `make bench` from
running it as a benchmark.
"""

import os
import time
from _thread import get_ident


def inc(x):
    """The trivial task: per-task overhead dominates."""
    return x + 1


def noop():
    """The round-trip task: does nothing."""
    return None


def _arrive(directory: str) -> None:
    """Leaves one new, uniquely named file in `directory`."""
    name = f"{os.getpid()}-{get_ident()}-{time.perf_counter_ns()}"
    fd = os.open(os.path.join(directory, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)


def _wait_for(directory: str, parties: int, timeout: float) -> None:
    end = time.monotonic() + timeout
    while len(os.listdir(directory)) < parties:
        if time.monotonic() > end:
            raise TimeoutError(f"rendezvous in {directory}: fewer than {parties} arrived "
                               f"within {timeout} s")
        time.sleep(0.0001)


def rendezvous(directory: str, parties: int, timeout: float = 60.0) -> tuple:
    """Task: arrives, then returns once `parties` callers have arrived.

    A barrier that works the same in threads, processes and sub-interpreters
    (it needs nothing but a directory). Submitting `parties` of these to a pool
    of `parties` workers completes only once every worker has started and taken
    one: no worker can take two, since the first never returns before the
    others arrive. Returns (pid, thread id) to show which worker ran it.
    """
    _arrive(directory)
    _wait_for(directory, parties, timeout)
    return os.getpid(), get_ident()


class FileBarrier:
    """A picklable stand-in for multiprocessing.Barrier, good for one use: `wait`
    returns once `parties` callers (in any process or interpreter) have called it;
    it raises threading.BrokenBarrierError after `timeout` seconds, as Barrier does."""

    def __init__(self, directory: str, parties: int) -> None:
        self.directory = directory
        self.parties = parties

    def wait(self, timeout=None) -> None:
        _arrive(self.directory)
        try:
            _wait_for(self.directory, self.parties, 120.0 if timeout is None else timeout)
        except TimeoutError:
            import threading

            raise threading.BrokenBarrierError() from None


# The stdlib sub-interpreter worker for the trivial-task rows, the recipe of
# interpool.demo.tasks.STDLIB_WORKER: exec'd in each interpreter by a thread of
# the parent; gets `sys_path`, `rendezvous_dir`, `parties` and the queues
# (`tasks`, `results`) through its __main__. Takes (index, batch) items from
# `tasks` until None and puts (index, results) on `results`. Before the first
# it meets the other workers (rendezvous, when `rendezvous_dir` is set), then
# says "ready".
STDLIB_TRIVIAL_WORKER = """\
import sys
sys.path[:] = sys_path.split("\\0")
import _executor_tasks
if rendezvous_dir:
    _executor_tasks.rendezvous(rendezvous_dir, parties)
results.put(("ready", None))
inc = _executor_tasks.inc
while True:
    item = tasks.get()
    if item is None:
        break
    index, batch = item
    results.put((index, tuple([inc(x) for x in batch])))
"""
