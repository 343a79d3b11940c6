"""Shared memory: handing big data to workers, and summing it in parallel.

Two measures, W workers (--workers, default 2):

  1. Hand-off: W tasks, each given the same data and returning its len() (the
     bytes are not touched), from the first submit to the last result; the
     median over 20 x --repeat rounds (the copied 256 MiB: --repeat / 5 rounds,
     at least 1 with --quick, else 3). Sizes 1 KiB and 256 MiB (--big-mib):
       interpool     an interpool.SharedBuffer: crosses as a handle, so the cost
                     does not depend on the size. The two sizes alternate round
                     by round. Target: the 256 MiB hand-off takes at most 2x the
                     1 KiB one.
       interpool, bytes   the same bytes as a `bytes` object: copied into each
                     worker (a row of its own).
       processes     concurrent.futures.ProcessPoolExecutor (spawn) given the
                     same bytes: pickled and piped to each worker.
  2. Parallel sum: N 64-bit ints (--ints, default 2**24; quick 2**22) summed in
     W slices, one task per worker, against a sequential sum(memoryview.cast('q'))
     in the main interpreter; the best time of --repeat rounds and the speedup:
       interpool     the slices of one SharedBuffer
       threads       ThreadPoolExecutor over the same buffer (the GIL serialises)
       processes     ProcessPoolExecutor (spawn) over a multiprocessing.shared_memory
                     block, attached by name in each task
     The CPUs that other processes kept busy during each sum are printed: a
     parallel sum needs idle CPUs to mean anything.

Pools are started and warmed up (one task per worker) before timing; start-up
is not measured. The process pool runs first, before this process starts the
threads of interpool's workers.

Usage:
  .venv/bin/python benchmarks/bench_shared.py [--quick] [--json FILE] [--repeat R]
      [--workers W] [--big-mib M] [--ints N]
  (or `make bench`, which runs every benchmarks/*.py and then prints one table of
  them all, benchmarks/_report.py; BENCH_ARGS=--quick)
"""

from __future__ import annotations

import array
import concurrent.futures
import multiprocessing
import os
import statistics
import sys
import time
from multiprocessing import shared_memory
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _common  # noqa: E402
import _shared_tasks as T  # noqa: E402  (the functions workers run)
from _common import MIB  # noqa: E402

import interpool  # noqa: E402

KIB = 1024
HANDOFF_RATIO_TARGET = 2.0  # 256 MiB hand-off / 1 KiB hand-off, interpool


def say(line: str = "") -> None:
    print(line, flush=True)


def handoff_once(submit: Callable[..., concurrent.futures.Future], data: Any, workers: int) -> float:
    """Seconds from the first submit of `workers` size(data) tasks to the last result."""
    t0 = time.perf_counter()
    futures = [submit(T.size, data) for _ in range(workers)]
    sizes = [f.result() for f in futures]
    elapsed = time.perf_counter() - t0
    if sizes != [len(data)] * workers:
        raise RuntimeError(f"hand-off: workers saw sizes {sizes}, expected {len(data)}")
    return elapsed


def stats(times: list[float]) -> dict[str, Any]:
    return {"median_s": statistics.median(times), "min_s": min(times), "rounds": len(times),
            "times_s": times}


def handoff(submit: Callable[..., concurrent.futures.Future], data: Any, workers: int,
            rounds: int) -> dict[str, Any]:
    return stats([handoff_once(submit, data, workers) for _ in range(rounds)])


def handoff_pair(submit: Callable[..., concurrent.futures.Future], small: Any, big: Any,
                 workers: int, rounds: int) -> dict[str, Any]:
    """Both sizes, in alternating rounds: a burst of load from elsewhere hits both alike."""
    times: dict[str, list[float]] = {"small": [], "big": []}
    for _ in range(rounds):
        for key, data in (("small", small), ("big", big)):
            times[key].append(handoff_once(submit, data, workers))
    return {key: stats(t) for key, t in times.items()}


def process_cpu(pids: list[int]) -> float:
    """CPU seconds used so far by these (live) processes, from /proc/PID/stat."""
    total = 0
    for pid in pids:
        text = _common.read_text(f"/proc/{pid}/stat")
        if text:
            fields = text.rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _common.Load.HZ


def parallel_sum(submit: Callable[..., concurrent.futures.Future], make_args: Callable[[int, int], tuple],
                 n: int, workers: int, expected: int, repeat: int,
                 pids: list[int] | None = None) -> dict[str, Any]:
    """Best seconds for summing [0, n) in `workers` slices, one task each, and the
    CPUs that other processes kept busy meanwhile."""
    bounds = [(n * i // workers, n * (i + 1) // workers) for i in range(workers)]
    times = []
    load = _common.Load()
    own = process_cpu(pids or [])
    for _ in range(repeat):
        t0 = time.perf_counter()
        futures = [submit(*make_args(a, b)) for a, b in bounds]
        total = sum(f.result() for f in futures)
        times.append(time.perf_counter() - t0)
        if total != expected:
            raise RuntimeError(f"parallel sum: got {total}, expected {expected}")
    others = load.others()
    if others and pids:  # the pool's live processes are ours, not "others"
        cpu = max(0.0, others["other_cpu_s"] - (process_cpu(pids) - own))
        others.update(other_cpu_s=round(cpu, 2), other_cpus_avg=round(cpu / others["wall_s"], 2))
    return {"best_s": min(times), "times_s": times, "others": others}


def warm_up(ex: concurrent.futures.Executor, workers: int) -> None:
    for f in [ex.submit(T.size, b"") for _ in range(workers)]:
        f.result()


def run(args: Any) -> dict[str, Any]:
    workers = args.workers
    repeat = args.repeat or (5 if args.quick else 30)
    big_repeat = max(1, repeat // 5) if args.quick else max(3, repeat // 5)
    cheap = 20 * repeat  # hand-offs that take well under a millisecond
    small = KIB
    big = args.big_mib * MIB
    n = args.ints or (2**22 if args.quick else 2**24)
    expected = n * (n - 1) // 2
    out: dict[str, Any] = {"handoff": {}, "sum": {}}

    say(f"data: {small} B and {args.big_mib} MiB for the hand-off, {n:,} ints "
        f"({n * 8 / MIB:.0f} MiB) for the sum; {workers} workers")
    small_bytes, big_bytes = bytes(small), b"\x01" * big
    ints = array.array("q", range(n))

    # Processes first: this process has no other threads yet.
    say("== processes (ProcessPoolExecutor, spawn)")
    ctx = multiprocessing.get_context("spawn")
    shm = shared_memory.SharedMemory(create=True, size=n * 8)
    try:
        view = shm.buf.cast("q")
        view[:] = ints
        view.release()
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as ex:
            warm_up(ex, workers)
            out["handoff"]["processes"] = {
                "small": handoff(ex.submit, small_bytes, workers, cheap),
                "big": handoff(ex.submit, big_bytes, workers, big_repeat)}
            out["sum"]["processes"] = parallel_sum(
                ex.submit, lambda a, b: (T.sum_shm, shm.name, a, b), n, workers, expected, repeat,
                pids=list(ex._processes))
    finally:
        shm.close()
        shm.unlink()

    say("== sequential")
    data = interpool.SharedBuffer(n * 8)
    data.cast("q")[:] = ints
    del ints
    times = []
    load = _common.Load()
    for _ in range(repeat):
        t0 = time.perf_counter()
        total = T.sum_slice(data, 0, n)
        times.append(time.perf_counter() - t0)
    if total != expected:
        raise RuntimeError(f"sequential sum: got {total}, expected {expected}")
    out["sum"]["sequential"] = {"best_s": min(times), "times_s": times, "others": load.others()}

    say("== threads (ThreadPoolExecutor)")
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        out["sum"]["threads"] = parallel_sum(
            ex.submit, lambda a, b: (T.sum_slice, data, a, b), n, workers, expected, repeat)

    say("== interpool (Executor)")
    small_buf = interpool.SharedBuffer.from_bytes(small_bytes)
    big_buf = interpool.SharedBuffer.from_bytes(big_bytes)
    with interpool.Executor(workers) as ex:
        warm_up(ex, workers)
        out["handoff"]["interpool"] = handoff_pair(ex.submit, small_buf, big_buf, workers, cheap)
        out["handoff"]["interpool_bytes"] = {
            "small": handoff(ex.submit, small_bytes, workers, cheap),
            "big": handoff(ex.submit, big_bytes, workers, big_repeat)}
        out["sum"]["interpool"] = parallel_sum(
            ex.submit, lambda a, b: (T.sum_slice, data, a, b), n, workers, expected, repeat)
    out["config"] = {"workers": workers, "repeat": repeat, "big_repeat": big_repeat,
                     "handoff_rounds": cheap,
                     "small_bytes": small, "big_bytes": big, "ints": n}
    return out


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.2f}"


def table(out: dict[str, Any]) -> tuple[list[str], list[list[str]], dict[str, Any]]:
    cfg = out["config"]
    big_label = f"{cfg['big_bytes'] // MIB} MiB"
    h = out["handoff"]
    s = out["sum"]
    seq = s["sequential"]["best_s"]
    rows = []
    for key, label in (("interpool", "interpool.SharedBuffer"), ("interpool_bytes", "interpool, bytes"),
                       ("processes", "processes, bytes")):
        r = h[key]
        rows.append([f"hand-off to {cfg['workers']} workers: {label}", ms(r["small"]["median_s"]),
                     ms(r["big"]["median_s"]), f"{r['big']['median_s'] / r['small']['median_s']:,.1f}x"])
    header = ["measure", "1 KiB: ms", f"{big_label}: ms", "ratio"]
    sum_rows = [["sequential sum", ms(seq), "", "1.00x"]]
    for key, label in (("interpool", "interpool.SharedBuffer"), ("threads", "threads"),
                       ("processes", "processes, shared_memory")):
        best = s[key]["best_s"]
        sum_rows.append([f"parallel sum, {cfg['workers']} workers: {label}", ms(best), "",
                         f"{seq / best:.2f}x"])
    ratio = h["interpool"]["big"]["median_s"] / h["interpool"]["small"]["median_s"]
    verdicts = {"handoff_ratio": ratio, "handoff_met": ratio <= HANDOFF_RATIO_TARGET}
    return header, rows + sum_rows, verdicts


def summary(out: dict[str, Any], verdicts: dict[str, Any]) -> dict[str, Any]:
    cfg = out["config"]
    h, s = out["handoff"], out["sum"]
    big_label = f"{cfg['big_bytes'] // MIB} MiB"
    seq = s["sequential"]["best_s"]
    w = cfg["workers"]
    rows = [
        _common.summary_row(f"hand 1 KiB to {w} workers: ms",
                            {"interpool": ms(h["interpool"]["small"]["median_s"]),
                             "processes": ms(h["processes"]["small"]["median_s"])}),
        _common.summary_row(f"hand {big_label} to {w} workers: ms",
                            {"interpool": ms(h["interpool"]["big"]["median_s"]),
                             "processes": ms(h["processes"]["big"]["median_s"])}),
        _common.summary_row(f"  {big_label} / 1 KiB",
                            {"interpool": f"{verdicts['handoff_ratio']:.1f}x",
                             "processes": f"{h['processes']['big']['median_s'] / h['processes']['small']['median_s']:,.0f}x"},
                            f"<= {HANDOFF_RATIO_TARGET:.0f}x", _common.verdict(verdicts["handoff_met"])),
        _common.summary_row(f"  same {big_label} as bytes (copied): ms",
                            {"interpool": ms(h["interpool_bytes"]["big"]["median_s"])}),
        _common.summary_row(f"sum {cfg['ints']:,} int64, {w} workers: speedup",
                            {k: f"{seq / s[k]['best_s']:.2f}x" for k in ("interpool", "threads", "processes")}),
    ]
    notes = ["interpool: SharedBuffer handles; processes: ProcessPoolExecutor (spawn), bytes pickled "
             "for the hand-off, multiprocessing.shared_memory for the sum"]
    busy = [(v.get("others") or {}).get("other_cpus_avg") for v in s.values()]
    if any(b is not None and b > 0.25 for b in busy):
        notes.append("other processes kept CPUs busy during the sums (up to "
                     f"{max(b for b in busy if b is not None)} on average): the speedups are not meaningful")
    return _common.summary(f"shared memory: hand-off and parallel sum, {w} workers", rows, notes)


def main(argv: list[str] | None = None) -> int:
    ap = _common.parser(__doc__, quick="a fast smoke run (fewer rounds, 2**22 ints)",
                        repeat="rounds of each measure (default 30, --quick 5); the big "
                               "copied hand-offs run a fifth as many", epilog=True)
    ap.add_argument("--workers", type=int, default=2, help="workers of every pool (default 2)")
    ap.add_argument("--big-mib", type=int, default=256, help="the big hand-off, MiB (default 256)")
    ap.add_argument("--ints", type=int, help="ints summed (default 2**24, --quick 2**22)")
    args = ap.parse_args(argv)

    info = _common.machine_info()
    _common.print_machine("shared memory benchmark", info, args.quick, workers=args.workers)
    started = time.perf_counter()
    out = run(args)
    info["loadavg_end"] = _common.loadavg()
    header, rows, verdicts = table(out)
    say()
    for line in _common.format_table(header, rows):
        say(line)
    say(f"interpool target: the {args.big_mib} MiB hand-off within {HANDOFF_RATIO_TARGET:.0f}x of "
        f"the 1 KiB one: {'met' if verdicts['handoff_met'] else 'NOT met'} "
        f"({verdicts['handoff_ratio']:.2f}x)")
    say("(hand-off: median of the rounds; sum: best round; speedup vs the sequential sum)")
    busy = {k: (v.get("others") or {}).get("other_cpus_avg") for k, v in out["sum"].items()}
    say("CPUs kept busy by other processes during the sums: "
        + ", ".join(f"{k} {v}" for k, v in busy.items())
        + ("  (parallel sums need idle CPUs: these are not meaningful)"
           if any(v is not None and v > 0.25 for v in busy.values()) else ""))
    say(f"load average after the run {info['loadavg_end']}")
    if args.json:
        _common.write_json(args.json, {
            "machine": info, "config": {"quick": args.quick, **out["config"]},
            "targets": {"handoff_ratio": HANDOFF_RATIO_TARGET}, "results": out,
            "verdicts": verdicts, "seconds": time.perf_counter() - started,
            "summary": summary(out, verdicts)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
