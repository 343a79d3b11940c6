"""The exec + queues executor recipe, on interpool.interpreters.

A widely copied way to use PEP 734 interpreters as a process-free worker pool: a
thread per worker, each thread `exec`s a loop in its own interpreter; the loop
imports `module.entrypoint`, takes tasks from one queue and puts results on
another. Constant state is bound once per interpreter, not sent with every task:

    with Executor("mymodule", "work", workers=4, table=big_table) as ex:
        results = list(ex.map(items))        # work(item, table=big_table) for each item

On 3.13's standard library layer the recipe needs workarounds: the worker must
import the queues module before prepare_main accepts a queue, blocking gets poll
every 10 ms, and timeouts are whole seconds. On interpool.interpreters the Queue
objects go straight through prepare_main, gets wake on the put, and nothing else
is needed.

Run the demo:  .venv/bin/python examples/exec_queue_executor.py [--workers N]
    [--tasks K] [--size S] [--quick]
It counts the primes below K*S in K blocks, by trial division by a table of small
primes computed once in the parent and bound once in each worker interpreter; it
checks the counts against a sequential run in the main interpreter and prints
the timings. Workers import this file as the module `exec_queue_executor` (its
folder is on their sys.path): nothing here runs at import time but definitions.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Any, Iterable, Iterator

from interpool import interpreters

# The loop each worker interpreter runs (with exec, in a thread of the parent).
# prepare_main bound: tasks, results (queues), module, entrypoint (names), bind (dict).
WORKER_LOOP = """
import importlib, traceback
fn = getattr(importlib.import_module(module), entrypoint)
while True:
    task = tasks.get()
    if task is None:
        break
    batch, index, item = task
    try:
        results.put((batch, index, True, fn(item, **bind)))
    except BaseException as e:
        results.put((batch, index, False, (type(e).__name__, str(e), traceback.format_exc())))
"""


class TaskFailed(Exception):
    """The entrypoint raised in a worker; the message has the worker's traceback."""


class Executor:
    """`workers` interpreters, each running WORKER_LOOP in a thread of its own."""

    def __init__(self, module: str, entrypoint: str, workers: int = 2, **bind: Any) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.tasks = interpreters.create_queue()
        self.results = interpreters.create_queue()
        self._lock = threading.Lock()  # one map() at a time
        self._batch = 0  # which map() a result belongs to (an abandoned map leaves some)
        self._interps: list[interpreters.Interpreter] = []
        self._threads: list[threading.Thread] = []
        self._crashed: list[BaseException] = []
        try:
            for _ in range(workers):
                interp = interpreters.create()
                self._interps.append(interp)
                # The queues themselves, directly: no import-first workaround.
                interp.prepare_main(tasks=self.tasks, results=self.results,
                                    module=module, entrypoint=entrypoint, bind=bind)
            for interp in self._interps:
                thread = threading.Thread(target=self._run, args=(interp,), daemon=True)
                thread.start()
                self._threads.append(thread)
        except BaseException:
            self.shutdown()
            raise

    def _run(self, interp: interpreters.Interpreter) -> None:
        try:
            interp.exec(WORKER_LOOP)
        except BaseException as e:  # e.g. the module does not import: map() reports it
            self._crashed.append(e)

    def map(self, items: Iterable[Any]) -> Iterator[Any]:
        """entrypoint(item, **bind) for each item, in the order of items."""
        with self._lock:
            self._batch += 1
            batch = self._batch
            count = 0
            for index, item in enumerate(items):
                self.tasks.put((batch, index, item))
                count += 1
            done: dict[int, tuple[bool, Any]] = {}
            next_index = 0
            while next_index < count:
                try:
                    result_batch, index, ok, value = self.results.get(timeout=0.5)
                except interpreters.QueueEmpty:
                    if self._crashed:
                        raise TaskFailed(f"a worker stopped: {self._crashed[0]}") from self._crashed[0]
                    continue
                if result_batch != batch:
                    continue  # left over from a map() whose caller stopped early
                done[index] = (ok, value)
                while next_index in done:
                    ok, value = done.pop(next_index)
                    if not ok:
                        name, message, tb = value
                        raise TaskFailed(f"{name}: {message} (task {next_index})\n\nIn the worker:\n{tb}")
                    yield value
                    next_index += 1

    def shutdown(self) -> None:
        """Drops the tasks not started yet (e.g. after Ctrl-C in map), lets each worker
        finish its current task, then closes the interpreters."""
        try:
            while True:
                self.tasks.get_nowait()
        except interpreters.QueueEmpty:
            pass
        for _ in self._threads:
            self.tasks.put(None)
        for thread in self._threads:
            thread.join()
        for interp in self._interps:
            interp.close()
        self._threads.clear()
        self._interps.clear()

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


# -- the demo: a CPU-bound function of a small module (this one) ----------------------

MODULE = "exec_queue_executor" if __name__ == "__main__" else __name__


def small_primes_below(n: int) -> list[int]:
    """The constant state: primes below n, by a sieve (computed once, in the parent)."""
    sieve = bytearray([1]) * n
    sieve[:2] = b"\x00\x00"
    for p in range(2, int(n ** 0.5) + 1):
        if sieve[p]:
            sieve[p * p::p] = bytearray(len(range(p * p, n, p)))
    return [p for p in range(n) if sieve[p]]


def count_primes(block: tuple[int, int], *, small_primes: list[int]) -> int:
    """Primes in [lo, hi), by trial division by small_primes (pure Python, CPU-bound).
    small_primes must reach sqrt(hi)."""
    lo, hi = block
    count = 0
    for n in range(max(lo, 2), hi):
        for p in small_primes:
            if p * p > n:
                count += 1
                break
            if n % p == 0:
                break
        else:
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--tasks", type=int, default=16, help="blocks of numbers (tasks)")
    ap.add_argument("--size", type=int, default=60_000, help="numbers per block")
    ap.add_argument("--quick", action="store_true", help="a small run (about a second)")
    args = ap.parse_args(argv)
    if args.quick:
        args.tasks, args.size = 8, 5_000
    limit = args.tasks * args.size
    blocks = [(k * args.size, (k + 1) * args.size) for k in range(args.tasks)]
    table = small_primes_below(int(limit ** 0.5) + 2)
    print(f"primes below {limit:,} in {args.tasks} blocks; trial division by {len(table)} small primes "
          f"(bound once per interpreter); {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    start = time.perf_counter()
    expected = [count_primes(b, small_primes=table) for b in blocks]
    sequential = time.perf_counter() - start
    print(f"  {'sequential (main interpreter)':32} {sequential:8.3f} s   {sum(expected):>10,} primes")

    for workers in sorted({1, args.workers}):
        start = time.perf_counter()
        with Executor(MODULE, "count_primes", workers=workers, small_primes=table) as ex:
            ready = time.perf_counter()
            counts = list(ex.map(blocks))
            elapsed = time.perf_counter() - ready
        total = time.perf_counter() - start
        if counts != expected:
            print(f"error: {workers} workers counted {counts}, expected {expected}", file=sys.stderr)
            return 1
        print(f"  {f'Executor, {workers} worker' + ('s' if workers > 1 else ''):32} {elapsed:8.3f} s   "
              f"{sum(counts):>10,} primes   speedup {sequential / elapsed:4.2f}x   "
              f"(with start-up and shutdown: {total:.3f} s)")
    print("per block:", counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
