"""Real workloads, data movement and the CPU cost of waiting: interpool next to
process pools, loky and threads, on the questions users decide by.

Every backend runs in the same run, with 2 workers (or each count of --workers):
interpool.Executor, concurrent.futures.ProcessPoolExecutor with each start method
(fork, forkserver, spawn), loky's ProcessPoolExecutor (skipped with a note when
loky does not import) and ThreadPoolExecutor. The workers' functions and the
inputs are in benchmarks/_workloads.py, a module every backend imports by name.

  A. Real workloads, 1-3 s sequential each: Jinja2 rendering (1,600 nested
     contexts), Python-Markdown, ast.parse and a walk over the stdlib's files,
     regex log parsing, PyYAML (its pure-Python SafeLoader and SafeDumper),
     tomlkit, sympy. Each backend: a fresh executor, a start-up task per worker
     that imports the workload's library (and meets the others, so each worker
     ran one), then map(fn, inputs, chunksize=inputs / (8 x workers)), then
     shutdown. Start-up is reported apart and included in the cold speedup;
     the warm speedup is the map alone. CPU-seconds are this process's and its
     children's (resource.getrusage SELF + CHILDREN, read before the executor
     is made and after its shutdown: interpool's workers are threads of this
     process, and the pools' worker processes are reaped children), plus, for
     forkserver, whose workers are the fork server's children, their own
     (/proc/PID/stat, read before shutdown). Before a pool starts, sympy's cache
     is cleared in the caller, so that fork does not hand the workers the
     sequential run's results (it still hands them the imported modules).
     Targets: interpool's CPU-seconds no more than the fastest process pool's,
     but where fork's inherited state explains it (then no more than forkserver,
     spawn and loky's).
  B. Data movement, the work trivial: 200,000 lines of ~100 characters through
     map(len, chunksize=2000); 400 tasks each returning 5,000 tuples; 40 tasks
     each given 8 MiB of bytes; the 1,600 Jinja2 contexts (dicts of lists of
     dicts of str, float, list) mapped with a trivial function, chunks of 100;
     200 tasks each returning 1,000 objects that pickle (a class with a
     datetime, a float, a str and a tuple every object of the result holds).
     Executors started and warm; the time from map() to the last result. The
     floor: pickle.loads(pickle.dumps(x)) of the same chunks of inputs and of
     results, in this process. Targets: interpool at least 2x cheaper than the
     fastest process pool, and no more than the floor.
  C. The cost of waiting: many short tasks (submit(f).result() one at a time,
     and map of short tasks), on an idle machine and with 2 CPU hogs (processes
     spinning in a loop) beside it: wall, CPU-seconds of this process and its
     children, CPU-seconds per task above the tasks' own work, and the CPU time
     the hogs got during the run. The engine spins up to 50 µs before it sleeps
     (src/core/sync.cpp, kMaxSpin) while it believes a CPU is free, and it
     counts only its own threads; no switch turns the spin off, so threads (which
     sleep at once) stand beside it.
  D. With --workers 1,2,4,...: each real workload and AoC day 6 (the demo's
     backend runners) on interpool, fork and forkserver for each count (capped at
     os.cpu_count(), saying so), speedup against the sequential run, a table and
     a chart (--plot, .svg or .png with matplotlib; a text chart without).

Times are medians of --repeat rounds, the backends interleaved within each
round; the spread of the rounds and the CPU time other processes took
(/proc/stat) are printed, since on a shared machine the parallel numbers move.

Usage:
  .venv/bin/python benchmarks/bench_workloads.py [--quick] [--repeat R] [--only A,B,C,D]
      [--workers 1,2,4,8,16] [--plot FILE] [--json FILE] [--markdown]
  (or `make bench`, which runs every benchmarks/*.py; `make bench WORKERS=1,2,4`
  adds part D and its chart, build/bench-results/bench_workloads-workers.svg)
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import pickle
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _common  # noqa: E402
import _workloads as W  # noqa: E402
from _common import MIB, Load  # noqa: E402

import interpool  # noqa: E402

WORKERS = 2
HZ = os.sysconf("SC_CLK_TCK")
# The process pools, then the rest; within a round the pools run first, before
# this process has threads of its own to fork with.
POOLS = ["fork", "forkserver", "spawn", "loky"]
BACKENDS = POOLS + ["threads", "interpool"]
LABELS = {"sequential": "sequential", "fork": "fork pool", "forkserver": "forkserver pool",
          "spawn": "spawn pool", "loky": "loky", "threads": "threads", "interpool": "interpool"}
DATA_TARGET_VS_POOL = 0.5   # interpool's time / the fastest process pool's
DATA_TARGET_VS_FLOOR = 1.0  # interpool's time / the pickle round trip's


def loky_module() -> tuple[Any, str | None]:
    try:
        import loky
    except ImportError as e:
        return None, f"loky does not import ({e}): pip install loky to include it"
    return loky, None


def make_executor(name: str, workers: int) -> concurrent.futures.Executor:
    if name == "interpool":
        return interpool.Executor(workers)
    if name == "threads":
        return concurrent.futures.ThreadPoolExecutor(workers)
    if name == "loky":
        loky, note = loky_module()
        if loky is None:
            raise RuntimeError(note)
        return loky.ProcessPoolExecutor(workers)
    return concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(name))


# ---------------------------------------------------------------------------
# CPU time
# ---------------------------------------------------------------------------


def own_cpu() -> float:
    """CPU-seconds of this process (every thread, so interpool's workers) and of
    its reaped children."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU-seconds) of a live process, from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / HZ


def foreign_workers_cpu(ex: Any) -> float:
    """CPU-seconds of the executor's worker processes that are not this process's
    children (forkserver's), which RUSAGE_CHILDREN will not count."""
    total = 0.0
    for pid in list(getattr(ex, "_processes", None) or {}):
        st = proc_stat(pid)
        if st is not None and st[0] != os.getpid():
            total += st[1]
    return total


def warm_up(ex: concurrent.futures.Executor, workload: str, workers: int) -> list[tuple[int, int]]:
    """One start-up task per worker (imports, per-worker state); returns once every
    worker has run one."""
    directory = tempfile.mkdtemp(prefix="bench-workloads-")
    try:
        futures = [ex.submit(W.warm, workload, directory, workers) for _ in range(workers)]
        return [f.result(timeout=300) for f in futures]
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------------------
# A. Real workloads
# ---------------------------------------------------------------------------


@dataclass
class Workload:
    name: str
    label: str
    fn: Callable[[Any], Any]
    inputs: Callable[[float], list[Any]]  # scale -> the inputs


WORKLOADS = [
    Workload("jinja2", "Jinja2: render nested contexts", W.jinja_render,
             lambda s: W.contexts(max(16, int(1600 * s)))),
    Workload("markdown", "Python-Markdown: documents to HTML", W.markdown_render,
             lambda s: W.markdown_docs(max(16, int(160 * s)))),
    Workload("ast", "ast.parse + walk of stdlib files", W.ast_walk,
             lambda s: W.stdlib_files(max(16, int(400 * s)))),
    Workload("regex", "re: parse access-log lines", W.regex_parse,
             lambda s: W.log_blocks(max(16, int(500 * s)))),
    Workload("yaml", "PyYAML (pure): load + dump", W.yaml_roundtrip,
             lambda s: W.yaml_docs(max(16, int(200 * s)))),
    Workload("tomlkit", "tomlkit: parse + edit + dump", W.tomlkit_roundtrip,
             lambda s: W.toml_docs(max(16, int(450 * s)))),
    Workload("sympy", "sympy: expand, factor, integrate", W.sympy_task,
             lambda s: list(range(max(16, int(40 * s))))),
]


def chunksize_for(items: list[Any], workers: int) -> int:
    return max(1, len(items) // (8 * workers))


def run_sequential(w: Workload, items: list[Any]) -> dict[str, Any]:
    W.clear_caches(w.name)  # the threads' run, in this process, filled sympy's cache
    c0, t0 = own_cpu(), time.perf_counter()
    out = [w.fn(x) for x in items]
    return {"wall": time.perf_counter() - t0, "cpu": own_cpu() - c0, "out": out}


def run_backend(name: str, w: Workload, items: list[Any], workers: int) -> dict[str, Any]:
    """A fresh executor: start-up (imports in each worker), the map, shutdown."""
    W.clear_caches(w.name)
    c0, t0 = own_cpu(), time.perf_counter()
    ex = make_executor(name, workers)
    try:
        who = warm_up(ex, w.name, workers)
        t1 = time.perf_counter()
        out = list(ex.map(w.fn, items, chunksize=chunksize_for(items, workers)))
        t2 = time.perf_counter()
        foreign = foreign_workers_cpu(ex)
    finally:
        ex.shutdown(wait=True)
    t3 = time.perf_counter()
    cpu = own_cpu() - c0 + foreign
    if name != "threads" and len(set(who)) != workers:
        raise RuntimeError(f"{name}: the start-up tasks ran on {len(set(who))} workers, not {workers}")
    return {"startup": t1 - t0, "work": t2 - t1, "shutdown": t3 - t2, "total": t3 - t0, "cpu": cpu,
            "out": out}


def bench_real(names: list[str], workloads: list[Workload], scale: float, repeat: int, workers: int,
               say: Callable[[str], None]) -> dict[str, Any]:
    load = Load()
    results: dict[str, Any] = {}
    for w in workloads:
        items = w.inputs(scale)
        __import__(W.LIBRARIES[w.name])  # the caller has the library, as a user's program does
        seq_runs: list[dict[str, Any]] = []
        runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        expected = None
        for r in range(repeat):
            meter = Load()
            s = run_sequential(w, items)
            expected = s.pop("out") if expected is None else expected
            seq_runs.append(s)
            line = [f"sequential {s['wall']:.2f} s"]
            for n in names:
                x = run_backend(n, w, items, workers)
                if x.pop("out") != expected:
                    raise RuntimeError(f"{w.name} on {n}: the results differ from the sequential run's")
                x["speedup_cold"] = s["wall"] / x["total"]
                x["speedup_warm"] = s["wall"] / x["work"]
                runs[n].append(x)
                line.append(f"{n} {x['total']:.2f} s ({x['speedup_cold']:.2f}x)")
            o = meter.others()
            say(f"  {w.name}, round {r + 1}/{repeat} (others {o['other_cpus_avg'] if o else '?'} CPUs): "
                + ", ".join(line))
        seq_cpu = statistics.median(s["cpu"] for s in seq_runs)
        entry: dict[str, Any] = {
            "label": w.label, "items": len(items), "chunksize": chunksize_for(items, workers),
            "sequential": {"wall": statistics.median(s["wall"] for s in seq_runs), "cpu": seq_cpu,
                           "runs": seq_runs},
            "backends": {}}
        for n in names:
            xs = runs[n]
            med = {k: statistics.median(x[k] for x in xs) for k in
                   ("startup", "work", "shutdown", "total", "cpu", "speedup_cold", "speedup_warm")}
            med["cpu_ratio"] = med["cpu"] / seq_cpu
            med["speedup_cold_range"] = [min(x["speedup_cold"] for x in xs), max(x["speedup_cold"] for x in xs)]
            med["cpu_range"] = [min(x["cpu"] for x in xs), max(x["cpu"] for x in xs)]
            med["runs"] = xs
            entry["backends"][n] = med
        results[w.name] = entry
    return {"workers": workers, "scale": scale, "workloads": results, "load": load.others()}


def real_verdict(entry: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Interpool's CPU-seconds against the fastest process pool's, and against the
    pools that inherit nothing (forkserver, spawn, loky)."""
    b = entry["backends"]
    ip = b["interpool"]["cpu"]
    pools = {n: b[n]["cpu"] for n in POOLS if n in b}
    cold = {n: v for n, v in pools.items() if n != "fork"}
    best = min(pools, key=pools.__getitem__)
    v: dict[str, Any] = {"interpool_cpu": ip, "best_pool": best, "best_pool_cpu": pools[best],
                         "ratio": ip / pools[best]}
    if ip <= pools[best]:
        v["met"] = True
        return "met", v
    if cold:
        best_cold = min(cold, key=cold.__getitem__)
        v.update(best_cold_pool=best_cold, ratio_cold=ip / cold[best_cold])
        if best == "fork" and ip <= cold[best_cold]:
            v["met"] = "fork's inherited state"
            return f"met but vs fork (x{ip / pools[best]:.2f}: inherited state)", v
    v["met"] = False
    text = f"MISSED by x{ip / pools[best]:.2f} ({best})"
    if best == "fork" and cold:
        text += f", x{v['ratio_cold']:.2f} ({v['best_cold_pool']})"
    return text, v


# ---------------------------------------------------------------------------
# B. Data movement
# ---------------------------------------------------------------------------


@dataclass
class DataRow:
    name: str
    label: str
    fn: Callable[[Any], Any]
    inputs: Callable[[float], list[Any]]
    chunksize: Callable[[float], int]


DATA_ROWS = [
    DataRow("lines", "200k lines of ~100 chars, map(chunksize=2000)", W.line_length,
            lambda s: W.lines(int(200_000 * s)), lambda s: max(1, int(2000 * s))),
    DataRow("results", "400 tasks each returning 5,000 tuples", W.make_rows,
            lambda s: list(range(max(4, int(400 * s)))), lambda s: 1),
    DataRow("bytes", "40 tasks each given 8 MiB of bytes", W.nbytes,
            lambda s: [bytes([i]) * (8 * MIB) for i in range(max(2, int(40 * s)))], lambda s: 1),
    DataRow("contexts", "1,600 nested contexts, trivial fn, chunks of 100", W.context_items,
            lambda s: W.contexts(max(16, int(1600 * s))), lambda s: max(1, int(100 * s))),
    DataRow("objects", "200 tasks each returning 1,000 objects that pickle (with datetimes)",
            W.make_events, lambda s: list(range(max(4, int(200 * s)))), lambda s: 1),
]


def pickle_floor(fn: Callable[[Any], Any], items: list[Any], chunksize: int) -> dict[str, float]:
    """pickle.loads(pickle.dumps(x)) of each chunk of inputs and of its results, in
    this process: what rebuilding the same objects costs without any crossing."""
    chunks = [items[i:i + chunksize] for i in range(0, len(items), chunksize)]
    results = [[fn(x) for x in c] for c in chunks]
    dumps, loads, hp = pickle.dumps, pickle.loads, pickle.HIGHEST_PROTOCOL
    t0 = time.perf_counter()
    for c in chunks:
        loads(dumps(c, hp))
    t1 = time.perf_counter()
    for r in results:
        loads(dumps(r, hp))
    t2 = time.perf_counter()
    return {"inputs": t1 - t0, "results": t2 - t1, "total": t2 - t0}


def bench_data(names: list[str], scale: float, repeat: int, workers: int,
               say: Callable[[str], None]) -> dict[str, Any]:
    load = Load()
    rows = [(r, r.inputs(scale), r.chunksize(scale)) for r in DATA_ROWS]
    executors: dict[str, Any] = {}
    times: dict[str, dict[str, list[float]]] = {r.name: {n: [] for n in names} for r, _, _ in rows}
    floors: dict[str, list[dict[str, float]]] = {r.name: [] for r, _, _ in rows}
    seq: dict[str, list[float]] = {r.name: [] for r, _, _ in rows}
    try:
        for n in names:  # process pools first: fork before this process has threads
            ex = executors[n] = make_executor(n, workers)
            warm_up(ex, "regex", workers)
        for rnd in range(repeat):
            meter = Load()
            for r, items, cs in rows:
                t0 = time.perf_counter()
                expected = [r.fn(x) for x in items]
                seq[r.name].append(time.perf_counter() - t0)
                floors[r.name].append(pickle_floor(r.fn, items, cs))
                for n in names:
                    t0 = time.perf_counter()
                    out = list(executors[n].map(r.fn, items, chunksize=cs))
                    times[r.name][n].append(time.perf_counter() - t0)
                    if out != expected:
                        raise RuntimeError(f"data row {r.name} on {n}: wrong results")
                    del out
                del expected
            o = meter.others()
            say(f"  data movement, round {rnd + 1}/{repeat} (others {o['other_cpus_avg'] if o else '?'} CPUs): "
                + "; ".join(f"{r.name}: interpool {times[r.name]['interpool'][-1]:.3f} s, floor "
                            f"{floors[r.name][-1]['total']:.3f} s" for r, _, _ in rows))
    finally:
        for ex in executors.values():
            ex.shutdown(wait=True)
    out: dict[str, Any] = {}
    for r, items, cs in rows:
        med = {n: statistics.median(times[r.name][n]) for n in names}
        floor = {k: statistics.median(f[k] for f in floors[r.name]) for k in ("inputs", "results", "total")}
        pools = {n: med[n] for n in POOLS if n in med}
        best = min(pools, key=pools.__getitem__) if pools else None
        ip = med["interpool"]
        entry: dict[str, Any] = {
            "label": r.label, "items": len(items), "chunksize": cs,
            "sequential_work": statistics.median(seq[r.name]), "floor": floor, "seconds": med,
            "ranges": {n: [min(v), max(v)] for n, v in times[r.name].items()},
            "runs": times[r.name], "floor_runs": floors[r.name]}
        if best:
            entry["best_pool"] = best
            entry["vs_best_pool"] = ip / pools[best]
        entry["vs_floor"] = ip / floor["total"]
        out[r.name] = entry
    return {"workers": workers, "scale": scale, "rows": out, "load": load.others()}


def missed_by(ratio: float, target: float) -> str:
    return "met" if ratio <= target else f"MISSED by x{ratio / target:.2f}"


# ---------------------------------------------------------------------------
# C. The cost of waiting
# ---------------------------------------------------------------------------


_HOG = "import time\nwhile True:\n    pass\n"


class Hogs:
    """n processes that spin in a loop, and the CPU time they got."""

    def __init__(self, n: int) -> None:
        self.procs = [subprocess.Popen([sys.executable, "-c", _HOG]) for _ in range(n)]

    def cpu(self) -> float:
        return sum((proc_stat(p.pid) or (0, 0.0))[1] for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()


def calibrate_loop(target_us: float) -> int:
    """Iterations of W.loop that take about target_us of CPU time here (CPU time, not
    wall: on a busy machine the wall time of a loop counts other processes' turns)."""
    n = 1000
    while True:
        t0 = time.thread_time()
        for _ in range(20):
            W.loop(n)
        us = (time.thread_time() - t0) / 20 * 1e6
        if us > 200:
            return max(1, int(n * target_us / us))
        n *= 2


def wait_run(ex: Any, kind: str, n_iter: int, tasks: int) -> None:
    if kind == "roundtrip":
        submit, fn = ex.submit, W.loop
        for _ in range(tasks):
            submit(fn, n_iter).result()
    else:
        for _ in ex.map(W.loop, [n_iter] * tasks):
            pass


def bench_wait(names: list[str], tasks: int, task_us: float, repeat: int, workers: int,
               say: Callable[[str], None]) -> dict[str, Any]:
    load = Load()
    n_iter = calibrate_loop(task_us)
    # The tasks' own CPU time, measured sequentially (idle machine).
    c0 = own_cpu()
    for _ in range(tasks):
        W.loop(n_iter)
    work_cpu = own_cpu() - c0
    kinds = {"roundtrip": f"submit(f).result() x {tasks}, one at a time",
             "map": f"map(f, {tasks} items), default chunking"}
    results: dict[str, Any] = {"tasks": tasks, "task_us": work_cpu / tasks * 1e6, "work_cpu": work_cpu,
                               "kinds": kinds, "runs": []}
    executors = {}
    try:
        for n in names:
            executors[n] = make_executor(n, workers)
            warm_up(executors[n], "regex", workers)
        for rnd in range(repeat):
            for hogs_n in (0, 2):
                hogs = Hogs(hogs_n) if hogs_n else None
                try:
                    if hogs:
                        time.sleep(0.3)  # the hogs running
                    for kind in kinds:
                        for n in names:
                            ex = executors[n]
                            h0, p0 = (hogs.cpu() if hogs else 0.0), worker_processes_cpu(ex)
                            sw0 = resource.getrusage(resource.RUSAGE_SELF)
                            c0, t0 = own_cpu(), time.perf_counter()
                            wait_run(ex, kind, n_iter, tasks)
                            wall = time.perf_counter() - t0
                            sw1 = resource.getrusage(resource.RUSAGE_SELF)
                            # this process's threads (interpool's workers, the pools' own threads)
                            # and, for the pools, their live worker processes
                            cpu = own_cpu() - c0 + worker_processes_cpu(ex) - p0
                            results["runs"].append({
                                "round": rnd, "hogs": hogs_n, "kind": kind, "backend": n, "wall": wall,
                                "cpu": cpu, "hogs_cpu": (hogs.cpu() - h0) if hogs else None,
                                # this process's threads: switches they asked for (a sleep) and
                                # preemptions (another thread or process took the CPU)
                                "voluntary_switches": sw1.ru_nvcsw - sw0.ru_nvcsw,
                                "involuntary_switches": sw1.ru_nivcsw - sw0.ru_nivcsw})
                finally:
                    if hogs:
                        hogs.stop()
            say(f"  waiting, round {rnd + 1}/{repeat}: " + ", ".join(
                f"{x['backend']} {x['kind']} hogs={x['hogs']}: {x['cpu']:.2f} CPU-s"
                for x in results["runs"] if x["round"] == rnd and x["backend"] == "interpool"))
    finally:
        for ex in executors.values():
            ex.shutdown(wait=True)
    results["load"] = load.others()
    return results


def worker_processes_cpu(ex: Any) -> float:
    """CPU-seconds so far of an executor's live worker processes (0 for threads)."""
    return sum((proc_stat(pid) or (0, 0.0))[1] for pid in list(getattr(ex, "_processes", None) or {}))


def wait_table(res: dict[str, Any], names: list[str]) -> list[dict[str, Any]]:
    """Medians per (kind, hogs, backend)."""
    out = []
    for kind in res["kinds"]:
        for hogs in (0, 2):
            for n in names:
                xs = [x for x in res["runs"] if x["kind"] == kind and x["hogs"] == hogs and x["backend"] == n]
                if not xs:
                    continue
                out.append({"kind": kind, "hogs": hogs, "backend": n,
                            "wall": statistics.median(x["wall"] for x in xs),
                            "cpu": statistics.median(x["cpu"] for x in xs),
                            "cpu_range": [min(x["cpu"] for x in xs), max(x["cpu"] for x in xs)],
                            "hogs_cpu": statistics.median(x["hogs_cpu"] for x in xs) if hogs else None,
                            "preempted": statistics.median(x["involuntary_switches"] for x in xs),
                            "slept": statistics.median(x["voluntary_switches"] for x in xs)})
    return out


# ---------------------------------------------------------------------------
# D. Many cores: speedup against workers
# ---------------------------------------------------------------------------

SCALE_BACKENDS = ["fork", "forkserver", "interpool"]
COLORS = {"fork": "tab:blue", "forkserver": "tab:orange", "interpool": "tab:green"}


def worker_list(text: str) -> list[int]:
    """`1,2,4,8,16` or ranges like `1-8` (as the demo's --workers takes them)."""
    from interpool.__main__ import worker_counts

    try:
        return worker_counts(text)
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError(f"--workers: {e}") from None


def bench_scaling(counts: list[int], workloads: list[Workload], scale: float, repeat: int, day6_size: int,
                  say: Callable[[str], None]) -> dict[str, Any]:
    """Each workload (cold: start-up included) and day 6 (the demo's runners, start-up
    excluded as the demo does) for each worker count: median speedup against the
    sequential run of the same round."""
    from interpool.demo import study

    load = Load()
    out: dict[str, Any] = {"counts": counts, "workloads": {}}
    for w in workloads:
        items = w.inputs(scale)
        __import__(W.LIBRARIES[w.name])
        sp: dict[str, dict[int, list[float]]] = {n: {c: [] for c in counts} for n in SCALE_BACKENDS}
        seqs = []
        for _ in range(repeat):
            s = run_sequential(w, items)
            seqs.append(s["wall"])
            for c in counts:
                for n in SCALE_BACKENDS:
                    x = run_backend(n, w, items, c)
                    sp[n][c].append(s["wall"] / x["total"])
        out["workloads"][w.name] = {"label": w.label, "sequential": statistics.median(seqs), "speedup": {
            n: {str(c): statistics.median(v) for c, v in per.items()} for n, per in sp.items()},
            "ranges": {n: {str(c): [min(v), max(v)] for c, v in per.items()} for n, per in sp.items()}}
        say(f"  {w.name}: " + "; ".join(
            f"{n} " + " ".join(f"{c}:{statistics.median(sp[n][c]):.2f}x" for c in counts) for n in SCALE_BACKENDS))
    # AoC day 6, the demo's workload, through the demo's own runners.
    work = study.load(None, day6_size, 2024)
    bar = study.Progress(enabled=False)
    runners = {"fork": study.Processes(), "interpool": study.Interpool()}
    sp6: dict[str, dict[int, list[float]]] = {n: {c: [] for c in counts} for n in runners}
    seqs = []
    for _ in range(repeat):
        base = study.Sequential().run(work, 1, bar)
        seqs.append(base.seconds)
        for c in counts:
            for n, b in runners.items():
                t = b.run(work, c, bar)
                if t.answer != base.answer:
                    raise RuntimeError(f"day 6 on {n}: {t.answer}, the sequential solver says {base.answer}")
                sp6[n][c].append(base.seconds / t.seconds)
    out["workloads"]["day6"] = {
        "label": f"AoC 2024 day 6 part 2 ({day6_size}x{day6_size}, the demo; start-up excluded)",
        "sequential": statistics.median(seqs),
        "speedup": {n: {str(c): statistics.median(v) for c, v in per.items()} for n, per in sp6.items()},
        "ranges": {n: {str(c): [min(v), max(v)] for c, v in per.items()} for n, per in sp6.items()}}
    say("  day6: " + "; ".join(f"{n} " + " ".join(f"{c}:{statistics.median(sp6[n][c]):.2f}x" for c in counts)
                               for n in runners))
    out["load"] = load.others()
    return out


def text_chart(res: dict[str, Any]) -> list[str]:
    """Speedup against workers as bars of #, one line per (workload, backend, count)."""
    lines = []
    top = max(max(v.values()) for w in res["workloads"].values() for v in w["speedup"].values())
    width = 40
    for name, w in res["workloads"].items():
        lines.append(f"{name}:")
        for n, per in w["speedup"].items():
            for c, v in per.items():
                lines.append(f"  {n:<10} {c:>3} workers {v:5.2f}x " + "#" * max(1, round(v / top * width)))
    return lines


def plot_scaling(res: dict[str, Any], path: str) -> str | None:
    """A chart of speedup against workers, one panel per workload; None if
    matplotlib does not import (the text chart stands in)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return f"no chart: matplotlib does not import ({e}); pip install matplotlib"
    names = list(res["workloads"])
    cols = 4
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    counts = res["counts"]
    for ax, name in zip(axes.flat, names):
        w = res["workloads"][name]
        ax.plot(counts, counts, ":", color="grey", label="ideal")
        for n, per in w["speedup"].items():
            ax.plot(counts, [per[str(c)] for c in counts], "o-", label=n, color=COLORS.get(n))
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("workers")
        ax.set_ylabel("speedup vs sequential")
        ax.set_xticks(counts)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"speedup against workers ({os.cpu_count()} CPUs; start-up included but for day 6)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return None


# ---------------------------------------------------------------------------
# The tables
# ---------------------------------------------------------------------------


def fmt_range(lo: float, hi: float, unit: str = "x") -> str:
    return f"{lo:.2f}-{hi:.2f}{unit}"


def build_tables(res: dict[str, Any], names: list[str], say: Callable[[str], None]) -> dict[str, Any]:
    """Prints the tables; returns the summary rows and notes of the combined table."""
    summary_rows: list[dict[str, Any]] = []
    notes: list[str] = []
    verdicts: dict[str, Any] = {}
    cols = ["sequential"] + names
    real = res.get("real")
    if real:
        wl = real["workloads"]
        say(f"\nA. Real workloads, {real['workers']} workers: wall speedup vs sequential, cold (start-up "
            "included) / warm (the map alone); medians")
        rows = []
        for name, e in wl.items():
            b = e["backends"]
            pools = [n for n in POOLS if n in b]
            best_cold = max(b[n]["speedup_cold"] for n in pools)
            best_warm = max(b[n]["speedup_warm"] for n in pools)
            rows.append([f"{name} ({e['items']} inputs)", f"{e['sequential']['wall']:.2f} s"]
                        + [f"{b[n]['speedup_cold']:.2f}/{b[n]['speedup_warm']:.2f}x" for n in names]
                        + [f"{b['interpool']['speedup_cold'] / best_cold:.2f}/"
                           f"{b['interpool']['speedup_warm'] / best_warm:.2f}"])
        for line in _common.format_table(["workload"] + [LABELS[c] for c in cols]
                                         + ["interpool / fastest pool"], rows):
            say(line)
        say("\n   start-up (executor made, library imported in each worker), s; and the spread of the cold "
            "speedup over the rounds")
        rows = []
        for name, e in wl.items():
            b = e["backends"]
            rows.append([name, "-"] + [f"{b[n]['startup']:.3f} ({fmt_range(*b[n]['speedup_cold_range'])})"
                                       for n in names])
        for line in _common.format_table(["workload"] + [LABELS[c] for c in cols], rows):
            say(line)
        say("\n   CPU-seconds (this process + children, + forkserver's workers) and their ratio to the "
            "sequential run's; the target: interpool <= the fastest process pool")
        rows = []
        for name, e in wl.items():
            b = e["backends"]
            text, v = real_verdict(e)
            verdicts[f"A.{name}"] = v
            rows.append([name, f"{e['sequential']['cpu']:.2f}"]
                        + [f"{b[n]['cpu']:.2f} {b[n]['cpu_ratio']:.2f}" for n in names] + [text])
            summary_rows.append(_common.summary_row(
                f"A. {name}: CPU-s (x seq), cold speedup",
                {"interpool": f"{b['interpool']['cpu']:.2f} ({b['interpool']['cpu_ratio']:.2f}) "
                              f"{b['interpool']['speedup_cold']:.2f}x",
                 "threads": f"{b['threads']['cpu']:.2f} ({b['threads']['cpu_ratio']:.2f}) "
                            f"{b['threads']['speedup_cold']:.2f}x" if "threads" in b else "skipped",
                 "processes": f"{b['fork']['cpu']:.2f} ({b['fork']['cpu_ratio']:.2f}) "
                              f"{b['fork']['speedup_cold']:.2f}x" if "fork" in b else "skipped",
                 "loky": f"{b['loky']['cpu']:.2f} ({b['loky']['cpu_ratio']:.2f}) "
                         f"{b['loky']['speedup_cold']:.2f}x" if "loky" in b else "skipped"},
                "CPU <= fastest pool", text))
        for line in _common.format_table(["workload"] + [LABELS[c] for c in cols] + ["interpool CPU target"], rows):
            say(line)
        notes.append("A: processes = the fork pool; forkserver and spawn are in this script's own table")
    data = res.get("data")
    if data:
        say(f"\nB. Data movement, {data['workers']} workers, warm executors: seconds from map() to the last "
            "result (median), the floor (pickle round trip of the same inputs and results in one process), "
            "and interpool's ratios")
        rows = []
        for name, e in data["rows"].items():
            s = e["seconds"]
            best = e.get("best_pool")
            vs_pool = e.get("vs_best_pool")
            t_pool = missed_by(vs_pool, DATA_TARGET_VS_POOL) if vs_pool is not None else "-"
            t_floor = missed_by(e["vs_floor"], DATA_TARGET_VS_FLOOR)
            verdicts[f"B.{name}"] = {"vs_best_pool": vs_pool, "best_pool": best, "vs_floor": e["vs_floor"],
                                     "met_pool": vs_pool is not None and vs_pool <= DATA_TARGET_VS_POOL,
                                     "met_floor": e["vs_floor"] <= DATA_TARGET_VS_FLOOR}
            rows.append([e["label"], f"{e['sequential_work']:.3f}", f"{e['floor']['total']:.3f}"]
                        + [f"{s[n]:.3f}" for n in names]
                        + [f"{vs_pool:.2f} ({best}): {t_pool}" if vs_pool is not None else "-",
                           f"{e['vs_floor']:.2f}: {t_floor}"])
            summary_rows.append(_common.summary_row(
                f"B. {name}: s (floor {e['floor']['total']:.3f})",
                {"interpool": f"{s['interpool']:.3f}",
                 "threads": f"{s['threads']:.3f}" if "threads" in s else "skipped",
                 "processes": f"{min(s[n] for n in POOLS if n in s and n != 'loky'):.3f}",
                 "loky": f"{s['loky']:.3f}" if "loky" in s else "skipped"},
                "<= 0.5x pool, <= floor", f"{t_pool}; floor {t_floor}"))
        header = ["row", "seq. work", "floor"] + [LABELS[n] for n in names] + [
            "interpool / fastest pool (<= 0.5)", "interpool / floor (<= 1)"]
        for line in _common.format_table(header, rows, left=(0, -2, -1)):
            say(line)
        say("   spread over the rounds (min-max s): " + "; ".join(
            f"{name}: interpool {fmt_range(*e['ranges']['interpool'], ' s')}, " + ", ".join(
                f"{n} {fmt_range(*e['ranges'][n], ' s')}" for n in POOLS if n in e["ranges"])
            for name, e in data["rows"].items()))
        say("   floor split (inputs / results, s): " + "; ".join(
            f"{name} {e['floor']['inputs']:.3f}/{e['floor']['results']:.3f}" for name, e in data["rows"].items()))
        notes.append("B: processes = the fastest of the fork, forkserver and spawn pools; "
                     "target: interpool <= 0.5x the fastest process pool and <= the pickle floor")
    wait = res.get("wait")
    if wait:
        wn = [n for n in ("interpool", "threads", "fork") if n in names]
        tab = wait_table(wait, wn)
        say(f"\nC. The cost of waiting: {wait['tasks']} tasks of ~{wait['task_us']:.0f} µs CPU each "
            f"({wait['work_cpu']:.2f} CPU-s of work), {WORKERS} workers, without and with 2 CPU hogs; "
            "CPU-s of this process + its worker processes, medians")
        rows = []
        for x in tab:
            over = (x["cpu"] - wait["work_cpu"]) / wait["tasks"] * 1e6
            rows.append([wait["kinds"][x["kind"]], str(x["hogs"]), LABELS[x["backend"]], f"{x['wall']:.3f}",
                         f"{x['wall'] / wait['tasks'] * 1e6:.0f}",
                         f"{x['cpu']:.3f} ({fmt_range(*x['cpu_range'], '')})", f"{over:.1f}",
                         f"{x['slept'] / wait['tasks']:.2f}/{x['preempted'] / wait['tasks']:.2f}",
                         "-" if x["hogs_cpu"] is None else f"{x['hogs_cpu']:.2f} of {2 * x['wall']:.2f}"])
            if x["backend"] == "interpool":
                summary_rows.append(_common.summary_row(
                    f"C. {x['kind']}, {x['hogs']} hogs: CPU-s",
                    {c: f"{y['cpu']:.3f}" for c, y in
                     (("interpool" if y["backend"] == "interpool" else
                       "threads" if y["backend"] == "threads" else "processes", y)
                      for y in tab if y["kind"] == x["kind"] and y["hogs"] == x["hogs"])}))
        for line in _common.format_table(["tasks", "hogs", "backend", "wall s", "wall µs/task", "CPU-s (range)",
                                          "CPU µs/task over the work", "sleeps/preemptions per task",
                                          "hogs' CPU-s of 2 x wall"], rows,
                                         left=(0, 2)):
            say(line)
        notes.append("C: no switch turns the engine's spin off (src/core/sync.cpp, kMaxSpin 50 µs); "
                     "threads sleep at once and stand beside it")
    scaling = res.get("scaling")
    if scaling:
        counts = scaling["counts"]
        say(f"\nD. Speedup against workers (median; cold, start-up included, but day 6: start-up "
            f"excluded as in the demo); {os.cpu_count()} CPUs")
        rows = []
        for name, w in scaling["workloads"].items():
            for n, per in w["speedup"].items():
                rows.append([name, n] + [f"{per[str(c)]:.2f}x" for c in counts])
        for line in _common.format_table(["workload", "backend"] + [f"{c} w" for c in counts], rows,
                                         left=(0, 1)):
            say(line)
        for line in text_chart(scaling):
            say("   " + line)
    return {"rows": summary_rows, "notes": notes, "verdicts": verdicts}


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = _common.parser(__doc__, quick="a fast smoke run (small inputs, 1 round)",
                        repeat="rounds (medians kept); default 3, --quick 1", epilog=True)
    ap.add_argument("--only", metavar="PARTS", default=None,
                    help="comma-separated parts to run: A (real workloads), B (data movement), "
                         "C (waiting), D (many cores, with --workers); default A,B,C (and D with --workers)")
    ap.add_argument("--workloads", metavar="NAMES",
                    help="comma-separated real workloads (default all: "
                         + ",".join(w.name for w in WORKLOADS) + ")")
    ap.add_argument("--scale", type=float, help="input size factor of parts A, B and D (default 1, --quick 0.05)")
    ap.add_argument("--workers", type=worker_list, metavar="LIST",
                    help="part D: worker counts, e.g. 1,2,4,8,16 or 1-8 (capped at os.cpu_count())")
    ap.add_argument("--plot", metavar="FILE",
                    help="part D's chart (.svg or .png; default: next to --json, else none)")
    ap.add_argument("--wait-tasks", type=int, help="part C's tasks (default 4000, --quick 300)")
    ap.add_argument("--markdown", action="store_true", help="also print the summary as Markdown")
    args = ap.parse_args(argv)

    repeat = args.repeat or (1 if args.quick else 3)
    scale = args.scale or (0.05 if args.quick else 1.0)
    parts = set((args.only or ("A,B,C,D" if args.workers else "A,B,C")).upper().split(","))
    if "D" in parts and not args.workers:
        ap.error("part D needs --workers, e.g. --workers 1,2,4")
    workloads = WORKLOADS
    if args.workloads:
        wanted = args.workloads.split(",")
        unknown = [x for x in wanted if x not in {w.name for w in WORKLOADS}]
        if unknown:
            ap.error(f"--workloads: unknown {unknown}; the workloads are {[w.name for w in WORKLOADS]}")
        workloads = [w for w in WORKLOADS if w.name in wanted]
    loky, loky_note = loky_module()
    names = [n for n in BACKENDS if n != "loky" or loky is not None]

    def say(line: str = "") -> None:
        print(line, flush=True)

    info = _common.machine_info()
    _common.print_machine("Real workloads, data movement, the cost of waiting", info, args.quick, workers=WORKERS)
    if loky_note:
        say(f"  loky skipped: {loky_note}")
    res: dict[str, Any] = {"machine": info, "config": {
        "quick": args.quick, "repeat": repeat, "scale": scale, "workers": WORKERS, "parts": sorted(parts),
        "backends": names, "loky": getattr(loky, "__version__", None)}}
    started = time.perf_counter()
    if "A" in parts:
        say("\nA. real workloads")
        res["real"] = bench_real(names, workloads, scale, repeat, WORKERS, say)
    if "B" in parts:
        say("\nB. data movement")
        res["data"] = bench_data(names, scale, repeat, WORKERS, say)
    if "C" in parts:
        say("\nC. the cost of waiting")
        wn = [n for n in ("fork", "threads", "interpool")]
        res["wait"] = bench_wait(wn, args.wait_tasks or (300 if args.quick else 4000), 50.0, repeat, WORKERS, say)
    if "D" in parts:
        cpus = os.cpu_count() or 1
        counts = [c for c in args.workers if c <= cpus]
        dropped = [c for c in args.workers if c > cpus]
        if dropped:
            say(f"\nD. --workers {','.join(map(str, dropped))} left out: this machine has {cpus} CPUs")
        if not counts:
            counts = [1]
        say(f"\nD. many cores: workers {counts}")
        res["scaling"] = bench_scaling(counts, workloads, scale, repeat, 60 if args.quick else 130, say)
        res["scaling"]["dropped"] = dropped
        plot = args.plot or (os.path.splitext(args.json)[0] + "-workers.svg" if args.json else None)
        if plot:
            problem = plot_scaling(res["scaling"], plot)
            res["scaling"]["chart"] = None if problem else plot
            say(problem or f"chart: {plot}")
    res["machine"]["loadavg_end"] = _common.loadavg()
    res["seconds"] = time.perf_counter() - started
    tables = build_tables(res, names, say)
    res["verdicts"] = tables["verdicts"]
    say("\n  other processes' CPU use during each part (CPUs, average): " + ", ".join(
        f"{k} {res[k]['load']['other_cpus_avg']}" for k in ("real", "data", "wait", "scaling")
        if k in res and res[k].get("load")))
    say(f"  load average at the end: {res['machine']['loadavg_end']}; the run took {res['seconds']:.0f} s")
    if repeat < 3:
        say(f"  (only {repeat} round{'s' if repeat > 1 else ''}: the verdicts are indicative only)")
    res["summary"] = _common.summary(
        f"real workloads, data movement, waiting; {WORKERS} workers, median of {repeat}", tables["rows"],
        tables["notes"])
    if args.markdown:
        say()
        for line in _common.markdown_table(
                ["measure"] + list(_common.COLUMNS.values())[:4] + ["target", "verdict"],
                [[r["measure"]] + [r["values"].get(c, "") for c in list(_common.COLUMNS)[:4]]
                 + [r["target"], r["verdict"]] for r in tables["rows"]]):
            say(line)
    if args.json:
        _common.write_json(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
