"""Worker-side functions of the day 6 study (``python -m interpool demo``).

Workers import this module by name, so it stays light: the standard library
and day6 only. The study itself (timing, tables, plots) is in ``study.py``.

- ``interpool.Executor`` runs ``day6.check`` directly (the grid comes from
  ``interpool.shared``); ``rendezvous`` is its warm-up.
- ``ThreadPoolExecutor`` and ``ProcessPoolExecutor`` get the grid once per
  worker through their initializer (``init_worker``), then count batches.
"""

from __future__ import annotations

import threading
from typing import Any

from . import day6

# Per worker: a thread of a ThreadPoolExecutor, or a ProcessPoolExecutor process.
_local = threading.local()


def init_worker(text: str, barrier: Any = None) -> None:
    """Initializer: parses the grid once for this worker; then, if given, waits
    at `barrier` with the other workers and the parent (the end of start-up)."""
    grid = day6.parse(text)
    _local.state = (grid, bytearray(grid.cells))
    if barrier is not None:
        barrier.wait(timeout=120)


def ping() -> None:
    """A task that does nothing: submitted to make pools start their workers."""


def count_batch(batch: list[int]) -> int:
    """Task: how many of the obstacles in `batch` make the guard loop."""
    grid, cells = _local.state
    return sum(day6.loops(cells, grid.width, grid.start, i) for i in batch)


def rendezvous(arrived: Any, go: Any) -> None:
    """interpool warm-up task: loads day6 and the shared grid in this worker,
    reports on `arrived`, then waits for the parent's word on `go`. The parent
    sends one per worker and lets them go together, so each runs on its own
    worker: every worker is then ready for the timed run."""
    day6._shared_grid()  # noqa: SLF001 - the per-worker cache that check() uses
    arrived.put(None)
    go.get(timeout=120)


# The stdlib sub-interpreter worker (run by `exec` in each interpreter). It gets
# `grid_text`, `sys_path` and the queues (`tasks`, `results`) through its __main__.
STDLIB_WORKER = """\
import sys
sys.path[:] = sys_path.split("\\0")
from interpool.demo import day6
grid = day6.parse(grid_text)
cells = bytearray(grid.cells)
results.put(("ready", 0, 0))
while True:
    batch = tasks.get()
    if batch is None:
        break
    results.put(("done", len(batch), sum(day6.loops(cells, grid.width, grid.start, i) for i in batch)))
"""

# The same for 3.12's PEP 554 draft (`test.support.interpreters`: run + channels).
# Only str, bytes, int and None cross its channels: a batch travels as the
# bytes of an array, a result as "items count".
STDLIB_WORKER_CHANNELS = """\
import sys, time
from array import array
sys.path[:] = sys_path.split("\\0")
import _xxinterpchannels as _channels
from interpool.demo import day6
grid = day6.parse(grid_text)
cells = bytearray(grid.cells)
_channels.send(results, "ready 0 0")
_none = object()
while True:
    data = _channels.recv(tasks, _none)
    if data is _none:
        time.sleep(0.01)  # what RecvChannel.recv() does between tries
        continue
    if not data:
        break
    batch = array("q")
    batch.frombytes(data)
    count = sum(day6.loops(cells, grid.width, grid.start, i) for i in batch)
    _channels.send(results, f"done {len(batch)} {count}")
"""
