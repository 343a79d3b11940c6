"""interpool.Executor next to the other ways of running Python in parallel.

One table, 2 workers everywhere (but row 5), every backend measured in the same
run: interpool.Executor, concurrent.futures.ThreadPoolExecutor and
ProcessPoolExecutor (the default start method, fork on Linux before 3.14),
loky's ProcessPoolExecutor (skipped with a note when loky does not import),
the sub-interpreter layer of this Python (3.13: test.support.interpreters and
its queues, used with the exec + queues recipe of interpool.demo.study) and the
interpreters-pep-734 backport from PyPI (skipped with a note when missing).

  1. AoC 2024 day 6 part 2 on the generated 130x130 grid (interpool.demo): the
     backend runners of interpool.demo.study, start-up excluded; the best time
     and the speedup vs the sequential solver. Each parallel run sits between
     two sequential runs, its speedup is the mean of those two over its time,
     and the table shows the median of those speedups over the rounds (a
     machine whose speed drifts, like a VM, makes "best sequential / best
     parallel" mix moments). Target: interpool >= 1.97x at 2 workers and
     ahead of every other backend. Each round also measures the machine's
     ceiling: two sequential solves at once, in 2 separate python processes
     started together; 2 x the sequential time around them / the slower of
     the two is the speedup no backend can pass on this machine (2.00x if
     both CPUs ran as fast together as one alone).
  2. map of a trivial task (inc: x + 1) over 20 000 items, µs per item
     amortized (map call to the last result). Each backend's default chunking
     (interpool: adaptive; processes and loky: chunksize=1; threads: none),
     and in row 2b a fixed chunksize of items / (8 x workers). The stdlib
     recipe and the backport send batches, as the recipe does (8 per worker),
     in both rows. Target: interpool <= 2 µs.
  3. submit(noop).result() round trip, one call at a time: the median over
     2000 calls (200 for the stdlib recipe and the backport, whose queues poll
     every 10 ms); the table shows the median of the rounds' medians, since
     a round's median moves a lot with how fast idle CPUs wake up (on a VM
     especially). Target: interpool <= 50 µs.
  4. Start: from the constructor to one trivial task completed on each of the
     2 workers (2 rendezvous tasks, each waiting until both have started; for
     the recipe, every interpreter created, its loop running, and one
     rendezvous each). The baseline is creating 2 bare interpreters, in
     sequence: _interpreters.create() + exec('pass') (and, apart,
     interpool.interpreters.create() + .exec('pass')). Target: interpool start
     <= 1.3x the _interpreters baseline.
  5. Resident memory per idle worker: in a fresh python process, the growth of
     VmRSS (/proc/self/status) once an executor's 4 workers have each run one
     task and sit idle, divided by 4; for processes and loky the workers' own
     VmRSS summed (their PSS, which shares fairly the pages a forked child
     shares with its parent, is in the JSON). The baseline is 4 bare
     interpreters from _interpreters.create(). Target: interpool <= bare + 1 MiB.

Times are the best of --repeat rounds (row 3: see above), backends
interleaved within each round so that a burst of load from elsewhere hits them
alike; row 5 is the median of its probes. The machine's load is
sampled before the run and the CPU time other processes took during each part
is printed: on a busy machine the parallel numbers are low and noisy.

Usage:
  .venv/bin/python benchmarks/bench_executor.py [--quick] [--json FILE] [--markdown]
      [--repeat R] [--wait-quiet S] [--only 1,2,3,4,5]
  (or `make bench`, which runs every benchmarks/*.py and then prints one table of
  them all, benchmarks/_report.py; BENCH_ARGS=--quick)
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib
import json
import multiprocessing
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _common  # noqa: E402
import _executor_tasks as T  # noqa: E402  (the functions workers run)
from _common import MIB, Load, busy_cpus, read_text  # noqa: E402

import interpool  # noqa: E402
from interpool.demo import study, tasks as demo_tasks  # noqa: E402

WORKERS = 2
TARGETS = {
    "day6_speedup": 1.97,   # x sequential, and ahead of every other backend
    "map_us": 2.0,          # µs per item
    "roundtrip_us": 50.0,   # µs, median
    "start_ratio": 1.3,     # x the start of 2 bare interpreters
    "rss_extra_mib": 1.0,   # MiB per idle worker above a bare interpreter
}
# A measurement during which other processes kept more CPUs busy than this, on
# average, counts as disturbed; the statistics leave it out when others are not.
DISTURBED_CPUS = 0.15


# ---------------------------------------------------------------------------
# The machine and its load (the rest is in _common)
# ---------------------------------------------------------------------------


class Quiet:
    """With --wait-quiet S: before each round, waits (up to S seconds) until other
    processes keep less than `threshold` CPUs busy over a 2 s sample."""

    def __init__(self, max_wait: float, say: Callable[[str], None], threshold: float = 0.15) -> None:
        self.max_wait = max_wait
        self.say = say
        self.threshold = threshold
        self.log: list[dict[str, Any]] = []

    def __call__(self, what: str) -> None:
        if self.max_wait <= 0:
            return
        t0 = time.monotonic()
        busy = None
        while True:
            busy = busy_cpus(2.0)
            if busy is None or busy <= self.threshold or time.monotonic() - t0 > self.max_wait:
                break
        waited = time.monotonic() - t0
        self.log.append({"before": what, "waited_s": round(waited, 1), "busy_cpus": busy})
        if busy is not None and busy > self.threshold:
            self.say(f"  (still {busy} CPUs busy with other work after waiting {waited:.0f} s: going on)")


def vm_rss(pid: int | str = "self") -> int | None:
    """VmRSS of a process, in bytes."""
    text = read_text(f"/proc/{pid}/status")
    if text:
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def pss(pid: int) -> int | None:
    text = read_text(f"/proc/{pid}/smaps_rollup")
    if text:
        for line in text.splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return None


# ---------------------------------------------------------------------------
# Row 1: the day 6 study, with study.py's backend runners (and loky)
# ---------------------------------------------------------------------------


class Loky(study.Backend):
    """loky's ProcessPoolExecutor, through study._run_pool like the stdlib pools;
    loky starts its workers with fork + exec, so a multiprocessing.Barrier cannot
    reach them: a FileBarrier stands in."""

    name = "loky"
    label = "loky (ProcessPoolExecutor)"

    def __init__(self) -> None:
        try:
            import loky
        except ImportError as e:
            self.note = f"loky does not import ({e}): pip install loky to include it"
            self.loky = None
        else:
            self.loky = loky
            self.label = f"loky {loky.__version__}"

    def run(self, work: study.Workload, workers: int, bar: study.Progress) -> study.Timing:
        directory = tempfile.mkdtemp(prefix="bench-executor-")
        barrier = T.FileBarrier(directory, workers + 1)
        make = lambda: _LokyShutdown(self.loky.ProcessPoolExecutor(  # noqa: E731
            workers, initializer=demo_tasks.init_worker, initargs=(work.text, barrier)))
        try:
            return study._run_pool(make, barrier, work, workers, bar, "loky")
        finally:
            shutil.rmtree(directory, ignore_errors=True)


class _LokyShutdown:
    """A loky executor whose shutdown() takes cancel_futures (as study._run_pool
    passes it): loky's has no such argument."""

    def __init__(self, ex: Any) -> None:
        self.ex = ex

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        return self.ex.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.ex.shutdown(wait=wait)


# Table columns, in the order they run within a round: the process pools first,
# before this process has started threads of its own (fork).
COLUMNS = ["interpool", "threads", "processes", "loky", "stdlib", "backport"]
RUN_ORDER = ["processes", "loky", "threads", "stdlib", "backport", "interpool"]


# A child of the ceiling measure: parses the grid, says "ready", waits for a line
# on stdin, solves part 2 sequentially and prints the seconds it took.
_SOLO = """
import sys, time
from interpool.demo import day6, study
work = study.load(None, int(sys.argv[1]), int(sys.argv[2]))
print("ready", flush=True)
sys.stdin.readline()
t = time.perf_counter()
day6.part2(work.grid)
print(time.perf_counter() - t, flush=True)
"""


def two_solves_at_once(size: int, seed: int) -> list[float]:
    """The seconds each of 2 sequential solves took, run at the same time in 2
    processes (started, then released together)."""
    procs = [subprocess.Popen([sys.executable, "-c", _SOLO, str(size), str(seed)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(WORKERS)]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        times = [float(p.stdout.readline()) for p in procs if p.stdout is not None]
    except BaseException:
        for p in procs:
            p.kill()
        raise
    finally:
        for p in procs:
            p.communicate()
    return times


def day6_backends() -> dict[str, study.Backend]:
    return {
        "processes": study.Processes(),
        "loky": Loky(),
        "threads": study.Threads(),
        "stdlib": study.StdlibInterpreters(),
        "backport": study.Backport(),
        "interpool": study.Interpool(),
    }


def bench_day6(size: int, seed: int, repeat: int, say: Callable[[str], None],
               quiet: Callable[[str], None]) -> dict[str, Any]:
    work = study.load(None, size, seed)
    progress = study.Progress(enabled=False)
    seq = study.Sequential()
    backends = day6_backends()
    runs: dict[str, list[dict[str, float]]] = {"sequential": []}
    expected = None
    load = Load()

    def others(meter: Load) -> float:
        o = meter.others()
        return o["other_cpus_avg"] if o else 0.0

    def sequential() -> tuple[float, float]:
        nonlocal expected
        meter = Load()
        t = seq.run(work, 1, progress)
        expected = t.answer if expected is None else expected
        assert t.answer == expected
        busy = others(meter)
        runs["sequential"].append({"seconds": t.seconds, "others": busy})
        return t.seconds, busy

    for r in range(repeat):
        quiet(f"day 6 round {r + 1}")
        # The machine's speed drifts (a VM's host): each parallel run sits between
        # two sequential ones, and its speedup is against their mean.
        before, busy_before = sequential()
        line = [f"sequential {before:.3f} s"]
        for name in RUN_ORDER:
            b = backends[name]
            if b.note:
                continue
            meter = Load()
            t = b.run(work, WORKERS, progress)
            busy = others(meter)
            if t.answer != expected:
                raise study.StudyError(f"{b.label}: part2 {t.answer}, the sequential solver says {expected}")
            after, busy_after = sequential()
            runs.setdefault(name, []).append({
                "seconds": t.seconds, "startup_seconds": t.startup, "others": busy,
                "sequential_around": [before, after], "speedup": (before + after) / 2 / t.seconds,
                "disturbed": max(busy_before, busy, busy_after) > DISTURBED_CPUS})
            line.append(f"{name} {t.seconds:.3f} s ({runs[name][-1]['speedup']:.2f}x"
                        + (", disturbed" if runs[name][-1]["disturbed"] else "") + ")")
            before, busy_before = after, busy_after
        # The machine's ceiling: two sequential solves at once, in 2 processes.
        meter = Load()
        pair = two_solves_at_once(size, seed)
        busy = others(meter)
        after, busy_after = sequential()
        runs.setdefault("ceiling", []).append({
            "seconds": pair, "others": busy, "sequential_around": [before, after],
            "speedup": WORKERS * (before + after) / 2 / max(pair),
            "disturbed": max(busy_before, busy, busy_after) > DISTURBED_CPUS})
        line.append(f"2 solves at once in 2 processes {max(pair):.3f} s (ceiling "
                    f"{runs['ceiling'][-1]['speedup']:.2f}x" + (", disturbed" if runs["ceiling"][-1]["disturbed"]
                                                                else "") + ")")
        say(f"  day 6, round {r + 1}/{repeat}: " + ", ".join(line))
    base = min(x["seconds"] for x in runs["sequential"])
    out: dict[str, Any] = {
        "grid": {"size": size, "seed": seed, "candidates": len(work.candidates)},
        "part2": expected, "workers": WORKERS, "sequential_seconds": base,
        "sequential_runs": runs["sequential"], "backends": {}, "load": load.others(),
    }
    for name, b in backends.items():
        entry: dict[str, Any] = {"label": b.label, "skipped": b.note}
        if not b.note:
            best = min(x["seconds"] for x in runs[name])
            clean = [x for x in runs[name] if not x["disturbed"]] or runs[name]
            entry.update(seconds=best, best_of_speedup=base / best,
                         speedup=statistics.median(x["speedup"] for x in clean),
                         speedup_rounds=len(clean) if clean is not runs[name] else 0,
                         runs=runs[name])
        out["backends"][name] = entry
    clean = [x for x in runs["ceiling"] if not x["disturbed"]] or runs["ceiling"]
    out["ceiling"] = {"speedup": statistics.median(x["speedup"] for x in clean), "runs": runs["ceiling"]}
    return out


# ---------------------------------------------------------------------------
# Rows 2-5: the trivial-task runners
# ---------------------------------------------------------------------------


class Runner:
    """One backend for rows 2 to 5: start() makes a pool whose every worker
    has run one task, then map_inc / roundtrip use it, stop() ends it."""

    name = ""
    label = ""
    note: str | None = None      # why it is skipped (None: it runs)
    ctor_s: float | None = None  # the constructor's share of the last start()
    batches = False              # the recipe: items travel in batches, not through map
    roundtrip_calls: int | None = None  # fewer calls than asked (slow polling)

    def start(self, workers: int) -> None:
        raise NotImplementedError

    def map_inc(self, items: list[int], chunksize: int | None) -> list[int]:
        raise NotImplementedError

    def roundtrip(self, calls: int) -> list[float]:
        raise NotImplementedError

    def worker_pids(self) -> list[int]:
        """The worker processes (for process pools), else []."""
        return []

    def stop(self) -> None:
        raise NotImplementedError


def _rendezvous_all(submit: Callable[..., Any], workers: int) -> list[tuple[int, int]]:
    """Submits one rendezvous per worker and waits for all: returns once each
    worker has taken one (none can take two)."""
    directory = tempfile.mkdtemp(prefix="bench-executor-")
    try:
        futures = [submit(T.rendezvous, directory, workers) for _ in range(workers)]
        who = [f.result(timeout=120) for f in futures]
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if len(set(who)) != workers:
        raise RuntimeError(f"rendezvous ran on {len(set(who))} workers, not {workers}: {who}")
    return who


class FuturesRunner(Runner):
    """A concurrent.futures-style executor."""

    def __init__(self, name: str, label: str, make: Callable[[int], Any] | None,
                 note: str | None = None, chunk_kw: bool = True) -> None:
        self.name, self.label, self.make, self.note = name, label, make, note
        self.chunk_kw = chunk_kw  # map() takes a chunksize that matters
        self.ex: Any = None
        self.who: list[tuple[int, int]] = []

    def start(self, workers: int) -> None:
        t0 = time.perf_counter()
        self.ex = self.make(workers)
        self.ctor_s = time.perf_counter() - t0
        self.who = _rendezvous_all(self.ex.submit, workers)

    def map_inc(self, items: list[int], chunksize: int | None) -> list[int]:
        if chunksize is None or not self.chunk_kw:
            return list(self.ex.map(T.inc, items))
        return list(self.ex.map(T.inc, items, chunksize=chunksize))

    def roundtrip(self, calls: int) -> list[float]:
        submit, noop, clock = self.ex.submit, T.noop, time.perf_counter
        out = []
        for _ in range(calls):
            t0 = clock()
            submit(noop).result()
            out.append(clock() - t0)
        return out

    def worker_pids(self) -> list[int]:
        pids = sorted({pid for pid, _tid in self.who})
        return [] if pids == [os.getpid()] else pids

    def stop(self) -> None:
        ex, self.ex = self.ex, None
        ex.shutdown(wait=True)


class RecipeRunner(Runner):
    """The exec + queues recipe of interpool.demo.study (one thread per
    interpreter exec'ing a loop over a task queue), on the stdlib's
    sub-interpreters or the backport; `info` is the study backend that found
    the modules."""

    batches = True
    ROUNDTRIP_CALLS = 200

    def __init__(self, name: str, info: Any) -> None:
        self.name = name
        self.label = info.label
        self.note = info.note
        if not info.note and getattr(info, "flavour", "pep734") != "pep734":
            self.note = (f"{info.label}, the PEP 554 draft of this Python, has no exec + queues; "
                         "only row 1 measures it")
        self.interpreters, self.queues = info.interpreters, info.queues
        self.roundtrip_calls = self.ROUNDTRIP_CALLS
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self.workers = 0

    def start(self, workers: int) -> None:
        study._claim_queue_type(self.queues)
        self.workers = workers
        self.tasks_q = self.queues.create()
        self.results_q = self.queues.create()
        directory = tempfile.mkdtemp(prefix="bench-executor-")
        sys_path = study._sys_path()
        interpreters, queues_name = self.interpreters, self.queues.__name__

        def body(i: int) -> None:
            interp = interpreters.create()
            try:
                interp.exec(f"import {queues_name}")
                interp.prepare_main(sys_path=sys_path, rendezvous_dir=directory, parties=workers,
                                    tasks=self.tasks_q, results=self.results_q)
                interp.exec(T.STDLIB_TRIVIAL_WORKER)
            finally:
                interp.close()

        try:
            self.threads, self.errors = study._run_interpreter_threads(body, workers)
            for _ in range(workers):
                kind, _ = self._get()
                assert kind == "ready", kind
        except BaseException:
            self.stop()
            raise
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def _get(self) -> Any:
        results_q = self.results_q

        def get() -> Any:
            try:
                return results_q.get_nowait()
            except queue.Empty:  # QueueEmpty of whichever queues module registered last
                return None

        return study._poll(get, self.threads, self.errors, self.name)

    def map_inc(self, items: list[int], chunksize: int | None) -> list[int]:
        parts = study.batches(items, self.workers)  # strided: part i is items[i::len(parts)]
        for i, part in enumerate(parts):
            self.tasks_q.put((i, tuple(part)))
        out: list[int] = [0] * len(items)
        for _ in parts:
            i, values = self._get()
            out[i::len(parts)] = values
        return out

    def roundtrip(self, calls: int) -> list[float]:
        put, clock = self.tasks_q.put, time.perf_counter
        out = []
        for i in range(calls):
            t0 = clock()
            put((0, (i,)))
            self._get()
            out.append(clock() - t0)
        return out

    def stop(self) -> None:
        if self.threads:
            for _ in range(self.workers):
                self.tasks_q.put(None)
            for t in self.threads:
                t.join()
            self.threads = []
        if self.errors:
            raise RuntimeError(f"{self.name}: a worker interpreter failed: {self.errors[0]}")


def trivial_runners() -> dict[str, Runner]:
    try:
        import loky
    except ImportError as e:
        loky, loky_note = None, f"loky does not import ({e}): pip install loky to include it"
    else:
        loky_note = None
    ctx = multiprocessing.get_context()
    return {
        "processes": FuturesRunner(
            "processes", f"ProcessPoolExecutor ({ctx.get_start_method()})",
            lambda n: concurrent.futures.ProcessPoolExecutor(n, mp_context=ctx)),
        "loky": FuturesRunner(
            "loky", f"loky {loky.__version__}" if loky else "loky",
            (lambda n: loky.ProcessPoolExecutor(n)) if loky else None, note=loky_note),
        "threads": FuturesRunner(
            "threads", "ThreadPoolExecutor",
            lambda n: concurrent.futures.ThreadPoolExecutor(n), chunk_kw=False),
        "stdlib": RecipeRunner("stdlib", study.StdlibInterpreters()),
        "backport": RecipeRunner("backport", study.Backport()),
        "interpool": FuturesRunner("interpool", "interpool.Executor",
                                   lambda n: interpool.Executor(n)),
    }


def bare_interpreters(n: int) -> dict[str, float]:
    """Seconds to create n bare interpreters in sequence, each then running
    'pass': with the stdlib's low-level module and with interpool's API.
    Destroying them is timed apart."""
    out: dict[str, float] = {}
    low = _low_level()
    if low is not None:
        mod, create, run = low
        t0 = time.perf_counter()
        ids = []
        for _ in range(n):
            i = create()
            run(i, "pass")
            ids.append(i)
        t1 = time.perf_counter()
        for i in ids:
            mod.destroy(i)
        out["stdlib"] = t1 - t0
        out["stdlib_destroy"] = time.perf_counter() - t1
        _BARE_MODULE[0] = mod.__name__
    from interpool import interpreters as ipi

    t0 = time.perf_counter()
    made = []
    for _ in range(n):
        interp = ipi.create()
        interp.exec("pass")
        made.append(interp)
    t1 = time.perf_counter()
    for interp in made:
        interp.close()
    out["interpool"] = t1 - t0
    out["interpool_destroy"] = time.perf_counter() - t1
    return out


_BARE_MODULE = ["_interpreters"]


def _low_level() -> tuple[Any, Callable[[], int], Callable[[int, str], Any]] | None:
    """(module, create, exec) of the stdlib's low-level sub-interpreter module."""
    try:
        mod = importlib.import_module("_interpreters")  # 3.13
        return mod, mod.create, mod.exec
    except ImportError:
        pass
    try:
        mod = importlib.import_module("_xxsubinterpreters")  # 3.12
        return mod, lambda: mod.create(isolated=True), mod.run_string
    except ImportError:
        return None


def bench_trivial(runners: dict[str, Runner], items: int, roundtrips: int, repeat: int,
                  say: Callable[[str], None], quiet: Callable[[str], None]) -> dict[str, Any]:
    """Rows 2 to 4: each round starts every backend (timed), maps, round-trips,
    stops; backends interleaved; plus the bare interpreters of row 4."""
    data = list(range(items))
    expected = [x + 1 for x in data]
    chunk = max(1, items // (8 * WORKERS))
    res: dict[str, dict[str, list]] = {
        name: {"start_s": [], "ctor_s": [], "stop_s": [], "map_us": [], "map_chunked_us": [], "roundtrip_us": []}
        for name, r in runners.items() if not r.note}
    bare: dict[str, list[float]] = {}
    load = Load()
    # Warm-up: a first start of each (imports, first-use costs), not timed.
    for name in RUN_ORDER:
        r = runners[name]
        if not r.note:
            r.start(WORKERS)
            r.map_inc(data[:200], None)
            r.stop()
    bare_interpreters(WORKERS)
    round_load: list[float] = []
    for rnd in range(repeat):
        quiet(f"trivial tasks round {rnd + 1}")
        meter = Load()
        for name, v in bare_interpreters(WORKERS).items():
            bare.setdefault(name, []).append(v)
        for name in RUN_ORDER:
            r = runners[name]
            if r.note:
                continue
            out = res[name]
            t0 = time.perf_counter()
            r.start(WORKERS)
            out["start_s"].append(time.perf_counter() - t0)
            out["ctor_s"].append(r.ctor_s)
            try:
                r.map_inc(data[:500], None)  # warm: workers have imported inc
                for key, size in (("map_us", None), ("map_chunked_us", chunk)):
                    if key == "map_chunked_us" and (r.batches or (
                            isinstance(r, FuturesRunner) and not r.chunk_kw)):
                        continue  # the same measurement as the default one
                    t0 = time.perf_counter()
                    got = r.map_inc(data, size)
                    dt = time.perf_counter() - t0
                    if got != expected:
                        raise RuntimeError(f"{name}: map(inc) returned wrong results")
                    out[key].append(dt / items * 1e6)
                calls = min(roundtrips, r.roundtrip_calls or roundtrips)
                r.roundtrip(20)  # warm
                out["roundtrip_us"].append(statistics.median(r.roundtrip(calls)) * 1e6)
            finally:
                t0 = time.perf_counter()
                r.stop()
                out["stop_s"].append(time.perf_counter() - t0)
        o = meter.others()
        round_load.append(o["other_cpus_avg"] if o else 0.0)
        say(f"  trivial tasks, round {rnd + 1}/{repeat}: " + ", ".join(
            f"{n} start {v['start_s'][-1] * 1e3:.0f} ms" for n, v in res.items())
            + (f" (disturbed: other processes kept {round_load[-1]} CPUs busy)"
               if round_load[-1] > DISTURBED_CPUS else ""))
    clean = [i for i, x in enumerate(round_load) if x <= DISTURBED_CPUS]
    clean_rounds = clean or list(range(repeat))  # all disturbed: use them all
    summary: dict[str, Any] = {"round_other_cpus": round_load, "clean_rounds": len(clean),
                               "items": items, "chunksize_2b": chunk, "roundtrip_calls": roundtrips,
                               "workers": WORKERS, "backends": {}, "load": load.others()}
    for name, r in runners.items():
        entry: dict[str, Any] = {"label": r.label, "skipped": r.note}
        if not r.note:
            out = res[name]
            entry.update(
                start_s=min(out["start_s"]),
                ctor_s=min(out["ctor_s"]) if None not in out["ctor_s"] else None, stop_s=statistics.median(out["stop_s"]),
                map_us=min(out["map_us"]),
                map_chunked_us=min(out["map_chunked_us"]) if out["map_chunked_us"] else None,
                roundtrip_us=statistics.median(out["roundtrip_us"][i] for i in clean_rounds),
                roundtrip_calls=min(roundtrips, r.roundtrip_calls or roundtrips),
                batches=r.batches, runs=out)
        summary["backends"][name] = entry
    summary["bare"] = {k: min(v) for k, v in bare.items()}
    summary["bare_runs"] = bare
    summary["bare_module"] = _BARE_MODULE[0]
    return summary


# ---------------------------------------------------------------------------
# Row 5: resident memory, each measure in a fresh process
# ---------------------------------------------------------------------------


def rss_probe(name: str, workers: int) -> dict[str, Any]:
    """Runs in a fresh `python bench_executor.py --rss-probe NAME`: VmRSS before
    and after `workers` workers are started (each ran one task) and idle."""
    import gc

    settle = 0.3
    if name == "bare":
        low = _low_level()
        if low is None:
            return {"skipped": "no _interpreters module"}
        mod, create, _run = low
        gc.collect()
        time.sleep(settle)
        before = vm_rss()
        ids = [create() for _ in range(workers)]
        time.sleep(settle)
        after = vm_rss()
        for i in ids:
            mod.destroy(i)
        return {"before": before, "after": after, "per_worker": (after - before) / workers,
                "module": mod.__name__}
    runner = trivial_runners()[name]
    if runner.note:
        return {"skipped": runner.note}
    # Parent-side modules first, so that their import is not counted.
    runner.start(1)
    runner.stop()
    gc.collect()
    time.sleep(settle)
    before = vm_rss()
    runner.start(workers)
    try:
        time.sleep(settle)
        after = vm_rss()
        pids = runner.worker_pids()
        out: dict[str, Any] = {"before": before, "after": after, "workers": workers}
        if pids:
            rss = [vm_rss(p) or 0 for p in pids]
            shares = [pss(p) for p in pids]
            out.update(children_rss=rss, children_pss=shares,
                       per_worker=sum(rss) / workers,
                       pss_per_worker=(sum(shares) / workers) if all(s is not None for s in shares) else None,
                       parent_growth_per_worker=(after - before) / workers)
        else:
            out["per_worker"] = (after - before) / workers
        return out
    finally:
        runner.stop()


def bench_rss(names: list[str], workers: int, probes: int, say: Callable[[str], None]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    load = Load()
    for name in ["bare"] + names:
        runs = []
        skipped = None
        for _ in range(probes):
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--rss-probe", name,
                                   "--rss-workers", str(workers)],
                                  capture_output=True, text=True, timeout=300)
            if proc.returncode != 0:
                raise RuntimeError(f"rss probe {name} failed:\n{proc.stderr[-3000:]}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            if "skipped" in r:
                skipped = r["skipped"]
                break
            runs.append(r)
        if skipped:
            results[name] = {"skipped": skipped}
            continue
        entry: dict[str, Any] = {"per_worker_mib": statistics.median(r["per_worker"] for r in runs) / MIB,
                                 "runs": runs}
        if runs[0].get("pss_per_worker") is not None:
            entry["pss_per_worker_mib"] = statistics.median(r["pss_per_worker"] for r in runs) / MIB
            entry["parent_growth_per_worker_mib"] = statistics.median(
                r["parent_growth_per_worker"] for r in runs) / MIB
        results[name] = entry
        say(f"  RSS per idle worker, {name}: {entry['per_worker_mib']:.2f} MiB")
    return {"workers": workers, "probes": probes, "backends": results, "load": load.others()}


# ---------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------


def build_table(res: dict[str, Any]) -> tuple[list[str], list[list[str]], list[str], dict[str, Any],
                                              dict[str, Any]]:
    """(header, rows, notes, verdicts, summary): the rows of this script's table, whose
    last cell is "target: verdict", and the same rows for the combined table."""
    d6, tr, mem = res.get("day6"), res.get("trivial"), res.get("rss")
    header = ["measure (2 workers)"] + [_common.COLUMNS[c] for c in COLUMNS] + ["interpool target"]
    rows: list[list[str]] = []
    summary_rows: list[dict[str, Any]] = []
    notes: list[str] = []
    summary_notes: list[str] = []  # the notes the combined table needs: markers, baselines, skips
    verdicts: dict[str, Any] = {}

    def skipped(section: dict[str, Any] | None, name: str) -> bool:
        return section is None or bool(section["backends"].get(name, {}).get("skipped"))

    ok = _common.verdict

    def add(measure: str, cells: list[str], target: str = "", verdict: str = "") -> None:
        rows.append([measure] + cells + [f"{target}: {verdict}" if verdict else target])
        summary_rows.append(_common.summary_row(measure, dict(zip(COLUMNS, cells)), target, verdict))

    def note(text: str, combined: bool = True) -> None:
        notes.append(text)
        if combined:
            summary_notes.append(text)

    if d6:
        cells = []
        for c in COLUMNS:
            b = d6["backends"][c]
            cells.append("skipped" if b.get("skipped") else f"{b['seconds']:.3f} {b['speedup']:.2f}x")
        ip = d6["backends"]["interpool"]
        others = [b["speedup"] for n, b in d6["backends"].items() if n != "interpool" and not b.get("skipped")]
        met = ip["speedup"] >= TARGETS["day6_speedup"]
        ahead = all(ip["speedup"] > s for s in others)
        verdicts["1"] = {"speedup": ip["speedup"], "target": TARGETS["day6_speedup"], "met": met,
                         "ahead_of_all": ahead}
        add("1. day 6 part 2: best s, speedup", cells, f">= {TARGETS['day6_speedup']}x, fastest",
            f"{ok(met)}, {'yes' if ahead else 'NO'}")
        runs_ip = [x["seconds"] for x in ip["runs"]]
        seq_runs = [x["seconds"] for x in d6["sequential_runs"]]
        n_clean = [d6["backends"][c]["speedup_rounds"] for c in COLUMNS if not d6["backends"][c].get("skipped")]
        note(combined=False, text=f"row 1: speedup = the median over rounds of (mean of the sequential runs just "
                     f"before and after / the run's time), over the rounds not disturbed by other "
                     f"processes (> {DISTURBED_CPUS} CPUs busy): {min(n_clean)}-{max(n_clean)} of "
                     f"{len(ip['runs'])} per backend (0: all disturbed, all used); sequential best {min(seq_runs):.3f} s, ranged "
                     f"{min(seq_runs):.3f}-{max(seq_runs):.3f} s; interpool ranged {min(runs_ip):.3f}-"
                     f"{max(runs_ip):.3f} s, its speedups {min(x['speedup'] for x in ip['runs']):.2f}-"
                     f"{max(x['speedup'] for x in ip['runs']):.2f}x")
        if "ceiling" in d6:
            ceil = d6["ceiling"]
            note(combined=False, text=f"row 1: this machine's ceiling, 2 sequential solves at once in 2 processes "
                 f"(2 x the sequential time around them / the slower one), paired the same way: "
                 f"{ceil['speedup']:.2f}x (rounds: " + ", ".join(f"{x['speedup']:.2f}x" for x in ceil["runs"]) + ")")
            verdicts["1"]["machine_ceiling"] = ceil["speedup"]
        note(combined=False, text="row 1: best sequential / best time instead: " + ", ".join(
            f"{c} {d6['backends'][c]['best_of_speedup']:.2f}x" for c in COLUMNS
            if not d6["backends"][c].get("skipped")))
    if tr:
        bk = tr["backends"]

        def cell(name: str, key: str, fmt: str, mark: str = "") -> str:
            if skipped(tr, name):
                return "skipped"
            v = bk[name].get(key)
            return "-" if v is None else fmt.format(v) + (mark if bk[name].get("batches") else "")

        add(f"2. map inc, {tr['items']} items: µs/item",
            [cell(c, "map_us", "{:.2f}", " (b)") for c in COLUMNS],
            f"<= {TARGETS['map_us']:g} µs", ok(bk["interpool"]["map_us"] <= TARGETS["map_us"]))
        verdicts["2"] = {"us": bk["interpool"]["map_us"], "target": TARGETS["map_us"],
                         "met": bk["interpool"]["map_us"] <= TARGETS["map_us"]}
        add(f"2b. same, chunksize={tr['chunksize_2b']}: µs/item",
            [cell(c, "map_chunked_us", "{:.2f}") if not (not skipped(tr, c) and bk[c].get("batches"))
             else cell(c, "map_us", "{:.2f}", " (b)") for c in COLUMNS])
        rt_calls = {bk[c].get("roundtrip_calls") for c in COLUMNS if not skipped(tr, c)}
        add("3. submit(noop).result(): median µs", [cell(c, "roundtrip_us", "{:.1f}", " (q)") for c in COLUMNS],
            f"<= {TARGETS['roundtrip_us']:g} µs", ok(bk["interpool"]["roundtrip_us"] <= TARGETS["roundtrip_us"]))
        verdicts["3"] = {"us": bk["interpool"]["roundtrip_us"], "target": TARGETS["roundtrip_us"],
                         "met": bk["interpool"]["roundtrip_us"] <= TARGETS["roundtrip_us"]}
        bare = tr["bare"]
        base = bare.get("stdlib") or bare["interpool"]
        start = bk["interpool"]["start_s"]
        ratio = start / base
        add(f"4. start, {WORKERS} workers ready: ms (x bare)",
            ["skipped" if skipped(tr, c) else f"{bk[c]['start_s'] * 1e3:.1f} {bk[c]['start_s'] / base:.1f}x"
             for c in COLUMNS],
            f"<= {TARGETS['start_ratio']}x", ok(ratio <= TARGETS["start_ratio"]))
        verdicts["4"] = {"start_ms": start * 1e3, "bare_ms": base * 1e3, "ratio": ratio,
                         "ratio_vs_interpool_create": start / bare["interpool"],
                         "target": TARGETS["start_ratio"], "met": ratio <= TARGETS["start_ratio"]}
        note(f"row 4 baseline, {WORKERS} bare interpreters in sequence: "
                     f"{tr.get('bare_module', '_interpreters')}.create() + exec('pass') "
                     f"{bare.get('stdlib', float('nan')) * 1e3:.1f} ms; "
                     f"interpool.interpreters.create() + .exec('pass') {bare['interpool'] * 1e3:.1f} ms "
                     f"(interpool start = {start / bare['interpool']:.2f}x that); of interpool's "
                     f"{start * 1e3:.1f} ms, its constructor took {(bk['interpool'].get('ctor_s') or 0) * 1e3:.1f} ms")
        rt_runs = bk["interpool"]["runs"]["roundtrip_us"]
        note(combined=False, text=f"row 3: the median of the rounds' medians, over the rounds not disturbed by other "
                     f"processes: {tr['clean_rounds']} of {len(rt_runs)} (0: all disturbed, all used); "
                     f"interpool's rounds ranged "
                     f"{min(rt_runs):.1f}-{max(rt_runs):.1f} µs, the threads' "
                     + ("skipped" if skipped(tr, "threads") else
                        f"{min(bk['threads']['runs']['roundtrip_us']):.1f}-"
                        f"{max(bk['threads']['runs']['roundtrip_us']):.1f} µs"))
        note(f"row 3: {'/'.join(str(x) for x in sorted(rt_calls))} calls per run; "
                     "(q): the recipe's queues, whose get() polls every 10 ms in the worker "
                     "(the parent polls every 1 ms, as study.py does)")
        note("(b): the exec + queues recipe sends batches, 8 per worker "
                     "(study.batches), not one item per task; rows 2 and 2b are the same measure")
    if mem:
        mb = mem["backends"]
        bare_mib = mb.get("bare", {}).get("per_worker_mib")
        cells = []
        for c in COLUMNS:
            b = mb.get(c, {})
            if b.get("skipped") or "per_worker_mib" not in b:
                cells.append("skipped")
            else:
                cells.append(f"{b['per_worker_mib']:.2f}" + (" (c)" if "pss_per_worker_mib" in b else ""))
        ip = mb.get("interpool", {}).get("per_worker_mib")
        target = verdict = ""
        if ip is not None and bare_mib is not None:
            limit = bare_mib + TARGETS["rss_extra_mib"]
            target, verdict = f"<= bare + 1 = {limit:.2f}", ok(ip <= limit)
            verdicts["5"] = {"mib": ip, "bare_mib": bare_mib, "limit_mib": limit, "met": ip <= limit}
        add(f"5. RSS per idle worker (N={mem['workers']}): MiB", cells, target, verdict)
        if bare_mib is not None:
            low = mb["bare"]["runs"][0].get("module", "_interpreters")
            note(f"row 5 baseline: a bare interpreter ({low}.create()) adds {bare_mib:.2f} MiB")
        pss_bits = [f"{c} {mb[c]['pss_per_worker_mib']:.2f}" for c in COLUMNS
                    if "pss_per_worker_mib" in mb.get(c, {})]
        if pss_bits:
            note("(c): the worker processes' own VmRSS; their PSS per worker: " + ", ".join(pss_bits)
                         + " MiB (a forked child shares the parent's pages)")
    skips: dict[tuple[str, str], list[str]] = {}
    for section, what in ((d6, "1"), (tr, "2-4"), (mem, "5")):
        if section:
            for name, b in section["backends"].items():
                if b.get("skipped") and name in COLUMNS:
                    skips.setdefault((name, b["skipped"]), []).append(what)
    for (name, why), where in skips.items():
        note(f"{name} skipped (row{'s' if where != ['1'] else ''} {', '.join(where)}): {why}")
    return header, rows, notes, verdicts, _common.summary("", summary_rows, summary_notes)


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = _common.parser(__doc__, quick="a fast smoke run (smaller sizes, 1 round)",
                        repeat="rounds of rows 1-4 (best kept); default 5, --quick 1", epilog=True)
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown too")
    ap.add_argument("--size", type=int, help="day 6 grid size (default 130, --quick 60)")
    ap.add_argument("--seed", type=int, default=2024, help="day 6 grid seed (default 2024)")
    ap.add_argument("--items", type=int, help="row 2 map items (default 20000, --quick 2000)")
    ap.add_argument("--roundtrips", type=int, help="row 3 calls per run (default 2000, --quick 300)")
    ap.add_argument("--rss-workers", type=int, default=4, help="row 5 idle workers (default 4)")
    ap.add_argument("--rss-probes", type=int, help="row 5 fresh processes per backend (default 3, --quick 1)")
    ap.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                    help="before each round, wait up to S seconds for other processes to "
                         "leave the CPUs idle (under 0.15 CPUs busy over 2 s)")
    ap.add_argument("--only", metavar="ROWS", default="1,2,3,4,5",
                    help="comma-separated rows to run (rows 2-4 run together), e.g. --only 1,5")
    ap.add_argument("--rss-probe", metavar="NAME", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.rss_probe:
        print(json.dumps(rss_probe(args.rss_probe, args.rss_workers)))
        return 0

    repeat = args.repeat or (1 if args.quick else 5)
    size = args.size or (60 if args.quick else 130)
    items = args.items or (2000 if args.quick else 20000)
    roundtrips = args.roundtrips or (300 if args.quick else 2000)
    probes = args.rss_probes or (1 if args.quick else 3)
    only = {s.strip() for s in args.only.split(",")}

    def say(line: str = "") -> None:
        print(line, flush=True)

    info = _common.machine_info()
    _common.print_machine("interpool.Executor benchmark", info, args.quick, workers=WORKERS)
    say()

    result: dict[str, Any] = {
        "machine": info,
        "config": {"quick": args.quick, "wait_quiet": args.wait_quiet, "repeat": repeat, "size": size, "seed": args.seed,
                   "items": items, "roundtrips": roundtrips, "rss_workers": args.rss_workers,
                   "rss_probes": probes, "workers": WORKERS},
        "targets": TARGETS,
    }
    started = time.perf_counter()
    quiet = Quiet(args.wait_quiet, say)
    if "1" in only:
        result["day6"] = bench_day6(size, args.seed, repeat, say, quiet)
    if only & {"2", "3", "4"}:
        result["trivial"] = bench_trivial(trivial_runners(), items, roundtrips, repeat, say, quiet)
    if "5" in only:
        result["rss"] = bench_rss(RUN_ORDER, args.rss_workers, probes, say)
    result["machine"]["loadavg_end"] = _common.loadavg()
    result["quiet_waits"] = quiet.log
    result["seconds"] = time.perf_counter() - started

    header, rows, notes, verdicts, summary = build_table(result)
    result["table"] = {"header": header, "rows": rows, "notes": notes}
    result["verdicts"] = verdicts
    summary["title"] = (f"interpool.Executor and the other backends, {WORKERS} workers, "
                        + (f"best of {repeat} rounds" if repeat > 1 else "1 round"))
    result["summary"] = summary
    say()
    say("Times: best of %d round(s); row 1 start-up excluded; x = speedup vs sequential (row 1) "
        "or ratio to 2 bare interpreters (row 4)" % repeat)
    if repeat < 3:
        say(f"(only {repeat} round{'s' if repeat > 1 else ''}: the verdicts are indicative only)")
    for line in _common.format_table(header, rows):
        say(line)
    for n in notes:
        say("  " + n)
    say("  other processes' CPU use during each part (CPUs, average): " + ", ".join(
        f"{k} {result[k]['load']['other_cpus_avg']}" for k in ("day6", "trivial", "rss")
        if k in result and result[k].get("load")))
    say(f"  load average at the end: {result['machine']['loadavg_end']}; "
        f"the run took {result['seconds']:.0f} s")
    if args.markdown:
        say()
        for line in _common.markdown_table(header, rows):
            say(line)
    if args.json:
        _common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
