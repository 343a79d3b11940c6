"""The day 6 study behind ``python -m interpool demo``: part 2 of Advent of Code
2024 day 6 timed on interpool.Executor (and, with ``--compare``, on threads,
processes and the standard library's sub-interpreters), against the plain
sequential solver.

Every parallel run gets the grid once per worker and is timed from the first
task submitted to the last result, with time.perf_counter. Start-up (creating
the workers, importing day6 and parsing the grid in each of them) is measured
apart and not counted: each backend ends its start-up only when all of its
workers are ready (a barrier, or one "ready" message per interpreter).
"""

from __future__ import annotations

import concurrent.futures
import importlib
import multiprocessing
import os
import platform
import queue
import sys
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import interpool

from . import day6, tasks
from .machine import loadavg, machine_info


class StudyError(Exception):
    """A problem to report in one line (no traceback); `code` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


DEMO_EXTRA = "pip install 'interpool[demo]'"


# ---------------------------------------------------------------------------
# The workload
# ---------------------------------------------------------------------------


@dataclass
class Workload:
    text: str
    grid: day6.Grid
    description: str
    path: str | None = None
    size: int | None = None
    seed: int | None = None
    part1: int = 0
    candidates: list[int] = field(default_factory=list)


def load(path: str | None, size: int, seed: int) -> Workload:
    """The puzzle input in `path`, or a generated size x size grid."""
    if path is not None:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except OSError as e:
            raise StudyError(f"{path}: {e.strerror or e}", code=2) from None
        where = path
    else:
        text = day6.generate(size, seed)
        where = f"generated grid (size {size}, seed {seed})"
    try:
        grid = day6.parse(text)
        part1 = day6.part1(grid)
        candidates = day6.candidates(grid)
    except day6.GridError as e:
        raise StudyError(f"{where}: {e}", code=2) from None
    if path is not None:
        description = f"{path} ({grid.rows}x{grid.cols})"
    else:
        description = f"generated {size}x{size}, seed {seed}"
    return Workload(text, grid, description, path, None if path else size,
                    None if path else seed, part1, candidates)


def batches(candidates: list[int], workers: int, per_worker: int = 8) -> list[list[int]]:
    """`per_worker` batches per worker, strided so that each mixes cells from the
    whole walk (the cost of a candidate depends on where it is)."""
    n = max(1, min(len(candidates), workers * per_worker))
    return [b for b in (candidates[i::n] for i in range(n)) if b]


# ---------------------------------------------------------------------------
# Progress bars (rich or tqdm, on stderr, only on a terminal)
# ---------------------------------------------------------------------------


class _NoBar:
    def advance(self, n: int = 1) -> None:
        pass


_NO_BAR = _NoBar()


class Progress:
    """Makes one transient bar per run, with rich.progress (else tqdm) when installed
    and stderr is a terminal; otherwise bars that show nothing."""

    def __init__(self, enabled: bool = True) -> None:
        self.kind: str | None = None
        if not enabled or not _isatty(sys.stderr):
            return
        for kind in ("rich", "tqdm"):
            try:
                importlib.import_module("rich.progress" if kind == "rich" else "tqdm")
            except ImportError:
                continue
            self.kind = kind
            break

    @contextmanager
    def bar(self, description: str, total: int | None) -> Iterator[Any]:
        if self.kind == "rich":
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress,
                                       TextColumn, TimeElapsedColumn)

            progress = RichProgress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=Console(file=sys.stderr), transient=True,
                redirect_stdout=False, redirect_stderr=False,
            )
            with progress:
                task = progress.add_task(description, total=total)
                yield _RichBar(progress, task)
        elif self.kind == "tqdm":
            from tqdm import tqdm

            with tqdm(total=total, desc=description, file=sys.stderr, leave=False, unit="cell") as t:
                yield _TqdmBar(t)
        else:
            yield _NO_BAR


class _RichBar:
    def __init__(self, progress: Any, task: Any) -> None:
        self.progress = progress
        self.task = task

    def advance(self, n: int = 1) -> None:
        self.progress.advance(self.task, n)


class _TqdmBar:
    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def advance(self, n: int = 1) -> None:
        self.bar.update(n)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# ---------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------


@dataclass
class Timing:
    answer: int
    seconds: float
    startup: float | None = None  # None: nothing to start (sequential)


class Backend:
    name = ""    # key in the JSON output and the plot legend
    label = ""   # the table's row title
    note: str | None = None  # why it is skipped (None: it runs)

    def run(self, work: Workload, workers: int, bar: Progress) -> Timing:  # pragma: no cover
        raise NotImplementedError


class Sequential(Backend):
    name = "sequential"
    label = "sequential (day6.part2)"

    def run(self, work: Workload, workers: int, bar: Progress) -> Timing:
        with bar.bar("sequential", None):
            t0 = time.perf_counter()
            answer = day6.part2(work.grid)
            seconds = time.perf_counter() - t0
        return Timing(answer, seconds)


class Interpool(Backend):
    name = "interpool"
    label = "interpool.Executor"

    def run(self, work: Workload, workers: int, bar: Progress) -> Timing:
        t0 = time.perf_counter()
        ex = interpool.Executor(workers, shared={"grid": work.text})
        try:
            _interpool_warm_up(ex, workers)
            startup = time.perf_counter() - t0
            total = len(work.candidates)
            with bar.bar(f"interpool, workers = {workers}", total) as b:
                answer = 0
                done = 0
                t1 = time.perf_counter()
                for i, looped in enumerate(ex.map(day6.check, work.candidates), 1):
                    answer += looped
                    if i - done >= 64:  # a bar update per result would cost more than the work
                        b.advance(i - done)
                        done = i
                seconds = time.perf_counter() - t1
                b.advance(total - done)
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
        return Timing(answer, seconds, startup)


def _interpool_warm_up(ex: Any, workers: int) -> None:
    """Returns once every worker has imported day6 and parsed the shared grid:
    one rendezvous task per worker, let go only when all of them have arrived."""
    from interpool import _interpool

    arrived, go = _interpool.Queue.create(), _interpool.Queue.create()
    futures = [ex.submit(tasks.rendezvous, arrived, go) for _ in range(workers)]
    deadline = time.monotonic() + 120
    try:
        ready = 0
        while ready < workers:
            try:
                arrived.get(timeout=0.1)
                ready += 1
            except _interpool.QueueEmpty:
                for f in futures:
                    if f.done():
                        f.result()  # a task that ended before the word to go: it failed
                if time.monotonic() > deadline:
                    raise StudyError("interpool workers did not start within 120 s") from None
    finally:
        for _ in range(workers):
            go.put(None)
    for f in futures:
        f.result()


class Threads(Backend):
    name = "threads"
    label = "threads (ThreadPoolExecutor)"

    def run(self, work: Workload, workers: int, bar: Progress) -> Timing:
        barrier = threading.Barrier(workers + 1)
        make = lambda: concurrent.futures.ThreadPoolExecutor(  # noqa: E731
            workers, initializer=tasks.init_worker, initargs=(work.text, barrier))
        return _run_pool(make, barrier, work, workers, bar, "threads")


class Processes(Backend):
    name = "processes"
    label = "processes (ProcessPoolExecutor)"

    def run(self, work: Workload, workers: int, bar: Progress) -> Timing:
        ctx = multiprocessing.get_context()
        barrier = ctx.Barrier(workers + 1)
        make = lambda: concurrent.futures.ProcessPoolExecutor(  # noqa: E731
            workers, mp_context=ctx, initializer=tasks.init_worker, initargs=(work.text, barrier))
        return _run_pool(make, barrier, work, workers, bar, "processes")


def _run_pool(make: Callable[[], concurrent.futures.Executor], barrier: Any, work: Workload,
              workers: int, bar: Progress, what: str) -> Timing:
    """A concurrent.futures pool whose initializer parses the grid, then waits at
    `barrier` (workers + this thread): start-up ends when all are ready."""
    t0 = time.perf_counter()
    ex = make()
    try:
        pings = [ex.submit(tasks.ping) for _ in range(workers)]  # the pools start workers on demand
        try:
            barrier.wait(timeout=120)
        except threading.BrokenBarrierError:
            for f in pings:
                if f.done() and f.exception() is not None:
                    raise f.exception() from None  # type: ignore[misc]
            raise StudyError(f"{what}: the workers did not start within 120 s") from None
        for f in pings:
            f.result()
        startup = time.perf_counter() - t0
        parts = batches(work.candidates, workers)
        with bar.bar(f"{what}, workers = {workers}", len(work.candidates)) as b:
            answer = 0
            t1 = time.perf_counter()
            futures = {ex.submit(tasks.count_batch, p): len(p) for p in parts}
            for done in concurrent.futures.as_completed(futures):
                answer += done.result()
                b.advance(futures[done])
            seconds = time.perf_counter() - t1
    finally:
        ex.shutdown(wait=True, cancel_futures=True)
    return Timing(answer, seconds, startup)


class StdlibInterpreters(Backend):
    """The sub-interpreter layer that ships with this Python, with the widely
    copied recipe: one thread per interpreter exec'ing a loop that takes batches
    of candidates from a queue and puts counts on another."""

    name = "stdlib-interpreters"

    def __init__(self) -> None:
        self.label = "stdlib sub-interpreters"
        self.interpreters: Any = None
        self.queues: Any = None
        self.flavour = ""
        for modname in ("concurrent.interpreters", "test.support.interpreters"):
            try:
                mod = importlib.import_module(modname)
            except ImportError:
                continue
            if hasattr(mod, "create") and hasattr(mod, "Interpreter") and hasattr(mod.Interpreter, "exec"):
                # 3.13: test.support.interpreters.queues; 3.14: concurrent.interpreters._queues
                self.queues = next((importlib.import_module(q) for q in (modname + ".queues", modname + "._queues")
                                    if _importable(q)), None)
                if self.queues is None:
                    continue
                self.interpreters, self.flavour = mod, "pep734"
                self.label = f"{modname} (exec + queues)"
                break
            if hasattr(mod, "create") and hasattr(mod, "create_channel"):
                # 3.12: the PEP 554 draft (Interpreter.run + channels)
                self.interpreters, self.flavour = mod, "pep554"
                self.label = f"{modname} (run + channels)"
                break
        if self.interpreters is None:
            low = [m for m in ("_interpreters", "_xxsubinterpreters") if _importable(m)]
            self.note = (
                "no high-level sub-interpreter module in this Python (test.support.interpreters "
                "is missing or has no create()/exec()/queues)"
                + (f"; only the low-level {', '.join(low)}" if low else "")
            )

    def run(self, work: Workload, workers: int, bar: Progress) -> Timing:
        if self.flavour == "pep734":
            return _run_pep734(self.interpreters, self.queues, work, workers, bar, "stdlib")
        return _run_pep554(self.interpreters, work, workers, bar)


class Backport(Backend):
    """The interpreters-pep-734 backport from PyPI, only where it is installed."""

    name = "interpreters-pep-734"
    label = "interpreters-pep-734 backport"
    # Module names of its releases: interpreters_backports (0.4, 0.5), interpreters_backport (later).
    MODULES = ("interpreters_backports.interpreters", "interpreters_backport.interpreters",
               "interpreters_backport.concurrent.interpreters")

    def __init__(self) -> None:
        self.interpreters: Any = None
        self.queues: Any = None
        problems = []
        for modname in self.MODULES:
            top = modname.split(".")[0]
            if not _importable(top):
                continue
            try:
                self.interpreters = importlib.import_module(modname)
                self.queues = importlib.import_module(modname + ".queues")
            except ImportError as e:
                self.interpreters = None
                problems.append(f"{modname}: {e}")
                continue
            self.label = f"{modname} (backport)"
            break
        if self.interpreters is None:
            self.note = ("does not import here: " + "; ".join(problems) if problems else
                         "not installed (pip install interpreters-pep-734 to include it)")

    def run(self, work: Workload, workers: int, bar: Progress) -> Timing:
        return _run_pep734(self.interpreters, self.queues, work, workers, bar, "backport")


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def _sys_path() -> str:
    return "\0".join(os.path.abspath(p) if p else os.getcwd() for p in sys.path)


def _run_interpreter_threads(body: Callable[[int], None], workers: int) -> tuple[list[threading.Thread], list[BaseException]]:
    """Starts `workers` threads running body(i); failures are collected in the list."""
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            body(i)
        except BaseException as e:  # noqa: BLE001 - reported by the parent
            errors.append(e)

    threads = [threading.Thread(target=target, args=(i,), name=f"interp-{i}", daemon=True)
               for i in range(workers)]
    for t in threads:
        t.start()
    return threads, errors


def _poll(get: Callable[[], Any], threads: list[threading.Thread], errors: list[BaseException],
          what: str) -> Any:
    """The next result, polling (the stdlib queues poll too); raises if workers failed."""
    while True:
        item = get()
        if item is not None:
            return item
        if errors:
            raise StudyError(f"{what}: a worker interpreter failed: {errors[0]}")
        if not any(t.is_alive() for t in threads):
            raise StudyError(f"{what}: the worker interpreters ended early")
        time.sleep(0.001)


def _claim_queue_type(queues: Any) -> None:
    """_interpqueues knows one Queue class per interpreter, that of the queues module
    imported last: with both the stdlib's and the backport's loaded, only one of
    them could send its queues to other interpreters. Registers this one again,
    as its module does on import."""
    register = getattr(getattr(queues, "_queues", None), "_register_heap_types", None)
    if register is not None:
        register(queues.Queue, queues.QueueEmpty, queues.QueueFull)


def _run_pep734(interpreters: Any, queues: Any, work: Workload, workers: int, bar: Progress,
                what: str) -> Timing:
    _claim_queue_type(queues)
    tasks_q = queues.create()
    results_q = queues.create()
    sys_path = _sys_path()

    collected = threading.Event()

    def body(i: int) -> None:
        # Created, run and closed in this thread: on 3.12, closing from another
        # thread an interpreter that imported threading hangs. Closed only once
        # the parent has every result: the items an interpreter put become
        # UNBOUND when it closes (these queues' default).
        interp = interpreters.create()
        try:
            # Queues cross into an interpreter only once it has imported their module.
            interp.exec(f"import {queues.__name__}")
            interp.prepare_main(grid_text=work.text, sys_path=sys_path, tasks=tasks_q, results=results_q)
            interp.exec(tasks.STDLIB_WORKER)
        finally:
            collected.wait()
            interp.close()

    def get() -> Any:
        try:
            return results_q.get_nowait()
        except queue.Empty:  # QueueEmpty of whichever queues module registered last
            return None

    def drain() -> None:
        try:
            while True:
                tasks_q.get_nowait()
        except queue.Empty:
            pass

    return _run_queue_study(body, get, lambda b: tasks_q.put(tuple(b)), lambda: tasks_q.put(None), drain,
                            work, workers, bar, what, collected)


def _run_pep554(interpreters: Any, work: Workload, workers: int, bar: Progress) -> Timing:
    tasks_recv, tasks_send = interpreters.create_channel()
    results_recv, results_send = interpreters.create_channel()
    sys_path = _sys_path()

    collected = threading.Event()

    def body(i: int) -> None:
        # Closed once the parent has every result: this draft's channels drop the
        # items an interpreter sent when it is destroyed.
        interp = interpreters.create(isolated=True)
        try:
            interp.run(tasks.STDLIB_WORKER_CHANNELS, channels={
                "grid_text": work.text, "sys_path": sys_path,
                "tasks": tasks_recv.id, "results": results_send.id,
            })
        finally:
            collected.wait()
            interp.close()

    def get() -> Any:
        text = results_recv.recv_nowait(None)
        if text is None:
            return None
        kind, n, count = text.split()
        return kind, int(n), int(count)

    def drain() -> None:
        while tasks_recv.recv_nowait(None) is not None:
            pass

    # send_nowait: this draft's send() sleeps 2 s after each item.
    return _run_queue_study(body, get, lambda b: tasks_send.send_nowait(array("q", b).tobytes()),
                            lambda: tasks_send.send_nowait(b""), drain, work, workers, bar, "stdlib",
                            collected)


def _run_queue_study(body: Callable[[int], None], get: Callable[[], Any], put: Callable[[list[int]], None],
                     stop: Callable[[], None], drain: Callable[[], None], work: Workload, workers: int,
                     bar: Progress, what: str, collected: threading.Event) -> Timing:
    """The parent's side of the recipe: start-up ends when every interpreter has
    said "ready"; then all batches go on the task queue, then one stop per worker.
    `collected` is set once the results are in (or the run failed): the workers
    close their interpreters only then."""
    t0 = time.perf_counter()
    threads, errors = _run_interpreter_threads(body, workers)
    finished = False
    try:
        for _ in range(workers):
            kind, _n, _count = _poll(get, threads, errors, what)
            assert kind == "ready", kind
        startup = time.perf_counter() - t0
        parts = batches(work.candidates, workers)
        with bar.bar(f"{what}, workers = {workers}", len(work.candidates)) as b:
            answer = 0
            t1 = time.perf_counter()
            for p in parts:
                put(p)
            for _ in range(workers):
                stop()
            for _ in parts:
                _kind, n, count = _poll(get, threads, errors, what)
                answer += count
                b.advance(n)
            seconds = time.perf_counter() - t1
        finished = True
    finally:
        if not finished:  # interrupted or failed: the workers stop after their current batch
            drain()
            for _ in range(workers):
                stop()
        collected.set()
        for t in threads:
            t.join()
    if errors:
        raise StudyError(f"{what}: a worker interpreter failed: {errors[0]}")
    return Timing(answer, seconds, startup)


def backends(compare: bool) -> list[Backend]:
    if not compare:
        return [Sequential(), Interpool()]
    # Processes before anything that starts threads of its own (fork + threads).
    return [Sequential(), Threads(), Processes(), StdlibInterpreters(), Backport(), Interpool()]


# ---------------------------------------------------------------------------
# The study
# ---------------------------------------------------------------------------


@dataclass
class Result:
    backend: Backend
    workers: int | None
    timing: Timing


def _speedup(base: float, seconds: float) -> float:
    return base / seconds if seconds > 0 else float("inf")


def run_study(work: Workload, worker_counts: list[int], compare: bool, progress: Progress,
              repeat: int = 1, out: Any = None) -> tuple[list[Backend], list[Result]]:
    """Runs the study, printing as it goes; returns the backends and their results.
    With repeat > 1 each measurement is made that many times (a fresh executor
    each time) and the fastest is kept."""
    out = out or sys.stdout

    def say(line: str = "") -> None:
        print(line, file=out, flush=True)

    chosen = backends(compare)
    say(f"interpool {interpool.__version__} on Python {platform.python_version()}, "
        f"{interpool.usable_cpus()} usable CPUs")
    say(f"grid: {work.description}, {len(work.candidates)} part-2 candidates")
    say(f"part1 {work.part1}")
    seq = chosen[0]
    ref = _best(seq, work, 1, progress, repeat, None)
    results = [Result(seq, None, ref)]
    say(f"part2 {ref.answer}")
    say()
    say("Times: part 2 from the first task submitted to the last result (time.perf_counter);")
    say("executor start-up (workers started, day6 imported and the grid parsed in each)")
    say("is excluded and shown apart. speedup = sequential time / time."
        + (f" Each time is the best of {repeat} runs." if repeat > 1 else ""))
    say(f"part2 {ref.answer}; sequential {ref.seconds:.6f} s elapsed")
    for backend in chosen[1:]:
        tag = f"  [{backend.name}]" if compare else ""
        if backend.note:
            say(f"{backend.label}: skipped: {backend.note}")
            continue
        for n in worker_counts:
            t = _best(backend, work, n, progress, repeat, ref.answer)
            results.append(Result(backend, n, t))
            say(f"part2 {t.answer}; workers = {n} {t.seconds:.6f} s elapsed"
                f"  speedup {_speedup(ref.seconds, t.seconds):.2f}x"
                f"  (start-up {t.startup:.3f} s){tag}")
    if compare:
        say()
        for line in table(chosen, results, worker_counts):
            say(line)
    return chosen, results


def _best(backend: Backend, work: Workload, workers: int, progress: Progress, repeat: int,
          expected: int | None) -> Timing:
    """The fastest of `repeat` runs; every answer must be `expected` (if given)."""
    best: Timing | None = None
    for _ in range(max(1, repeat)):
        t = backend.run(work, workers, progress)
        if expected is not None and t.answer != expected:
            raise StudyError(f"{backend.label}, workers = {workers}: part2 {t.answer}, "
                             f"but the sequential solver says {expected}")
        if best is None or t.seconds < best.seconds:
            best = t
    assert best is not None
    return best


def table(chosen: list[Backend], results: list[Result], worker_counts: list[int]) -> list[str]:
    """Seconds per worker count and speedup (sequential / seconds), one row per backend."""
    base = results[0].timing.seconds
    by = {(r.backend.name, r.workers): r.timing for r in results}
    cell = 18
    title = max(len(b.label) for b in chosen) + 2
    head = "backend".ljust(title) + "".join(
        (f"{n} worker" + ("s" if n > 1 else "")).rjust(cell) for n in worker_counts)
    lines = ["seconds (speedup vs sequential), start-up excluded", head, "-" * len(head)]
    for b in chosen:
        if b.note:
            lines.append(b.label.ljust(title) + f"skipped: {b.note}")
            continue
        if isinstance(b, Sequential):
            lines.append(b.label.ljust(title) + f"{base:.3f} s".rjust(cell) + "  (any count)")
            continue
        row = b.label.ljust(title)
        for n in worker_counts:
            t = by.get((b.name, n))
            row += (f"{t.seconds:.3f} s {_speedup(base, t.seconds):5.2f}x" if t else "-").rjust(cell)
        lines.append(row)
    return lines


# ---------------------------------------------------------------------------
# Outputs: JSON and plot
# ---------------------------------------------------------------------------


def to_json(work: Workload, worker_counts: list[int], chosen: list[Backend],
            results: list[Result], repeat: int = 1) -> dict[str, Any]:
    base = results[0].timing
    data: dict[str, Any] = {
        "interpool": interpool.__version__,
        "python": {
            "version": platform.python_version(),
            "sys_version": sys.version,
            "implementation": sys.implementation.name,
            "executable": sys.executable,
        },
        "machine": {**machine_info(sample_load=False), "loadavg_end": loadavg()},
        "grid": {
            "source": "file" if work.path else "generated",
            "path": work.path,
            "size": work.size,
            "seed": work.seed,
            "rows": work.grid.rows,
            "cols": work.grid.cols,
        },
        "part1": work.part1,
        "part2": base.answer,
        "candidates": len(work.candidates),
        "workers": worker_counts,
        "timing": "part 2 only, time.perf_counter; start-up excluded (startup_seconds)",
        "repeat": repeat,
        "sequential_seconds": base.seconds,
        "backends": {},
    }
    for b in chosen:
        if isinstance(b, Sequential):
            continue
        entry: dict[str, Any] = {"label": b.label, "skipped": b.note, "runs": {}}
        for r in results:
            if r.backend is b:
                entry["runs"][str(r.workers)] = {
                    "seconds": r.timing.seconds,
                    "startup_seconds": r.timing.startup,
                    "speedup": _speedup(base.seconds, r.timing.seconds),
                    "part2": r.timing.answer,
                }
        data["backends"][b.name] = entry
    return data


def need_matplotlib() -> None:
    """Raises StudyError (exit 2) with the install hint when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise StudyError(f"--plot needs matplotlib, which is not installed: {DEMO_EXTRA}", code=2) from None


def plot(path: str, work: Workload, worker_counts: list[int], chosen: list[Backend],
         results: list[Result]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = results[0].timing.seconds
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.axhline(base, color="grey", linestyle="--", label=f"sequential ({base:.2f} s)")
    for b in chosen:
        points = [(w, r.timing.seconds) for r in results if r.backend is b and (w := r.workers) is not None]
        if points:
            ax.plot([w for w, _ in points], [t for _, t in points], marker="o", label=b.label)
    ax.set_xlabel("workers")
    ax.set_ylabel("seconds (part 2, start-up excluded)")
    ax.set_xticks(worker_counts)
    ax.set_ylim(bottom=0)
    ax.set_title(f"AoC 2024 day 6 part 2: {work.description}\n"
                 f"Python {platform.python_version()}, {interpool.usable_cpus()} usable CPUs")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as e:
        raise StudyError(f"{path}: {e.strerror or e}") from None
    finally:
        plt.close(fig)
