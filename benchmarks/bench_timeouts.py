"""Tasks that time out: how soon the worker serves again, and what memory stays behind.

A long-running service whose tasks time out now and then must keep flat memory
and get its worker back at once. Each part runs in a fresh Python process:

  1. Turnaround: Executor(1, task_timeout=L) runs a task that spins past its
     limit, with a trivial task queued behind it. The time from the spinning
     task's deadline (its start, which it puts on a queue, + L) to the moment
     the worker starts the queued task, in ms: the watchdog noticing the
     deadline, taking the worker's GIL (a worker running Python gives it up
     within the switch interval, 5 ms), the exception unwinding the task, its
     traceback captured, and the next task taken. The median over the rounds.
  2. Memory: Executor(2, task_timeout=L), a few warm-up timeouts (each worker's
     first error capture imports traceback & co. once), then VmRSS, then N
     tasks that spin past the limit, two at a time, then VmRSS again: the
     growth in all, and per timeout.

The baseline, "stdlib": what replacing the worker's interpreter after each
timeout would cost at the least, CPython's own create + exec + destroy of a
bare interpreter (`_interpreters`; 3.12: `_xxsubinterpreters`), in ms and in
RSS kept per interpreter (CPython keeps about 1.7 MiB of each, see
bench_cycles.py). interpool no longer replaces an interpreter that the
interruption unwound cleanly.

Usage:
  .venv/bin/python benchmarks/bench_timeouts.py [--quick] [--json FILE] [--repeat R]
  (or `make bench`; BENCH_ARGS=--quick)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _common  # noqa: E402

LIMIT = 0.01  # task_timeout, s
# Targets: a worker free again within a few switch intervals; a few MiB over 1,000 timeouts.
TURNAROUND_TARGET_MS = 15.0
GROWTH_TARGET_MIB = 4.0


def child_turnaround(rounds: int) -> dict[str, Any]:
    import interpool
    from interpool import interpreters

    import _timeout_tasks as T

    started = interpreters.create_queue()
    waits = []
    with interpool.Executor(1, task_timeout=LIMIT) as ex:
        ex.submit(T.stamp).result()
        ids = set()
        for _ in range(rounds):
            spinning = ex.submit(T.spin, 60.0, started)
            ready = ex.submit(T.stamp)
            try:
                spinning.result()
            except TimeoutError:
                pass
            deadline = started.get(timeout=60) + LIMIT
            waits.append(1000 * (ready.result() - deadline))
            ids.add(ex.submit(T.interpreter_id).result())
    return {"rounds": rounds, "median_ms": statistics.median(waits), "max_ms": max(waits),
            "min_ms": min(waits), "interpreters": len(ids)}


def child_memory(timeouts: int) -> dict[str, Any]:
    import interpool

    import _timeout_tasks as T

    def time_out(n: int) -> None:
        # A pair at a time (one per worker): a list of n futures alive at once
        # would raise the RSS high-water mark, which stays, by their own size.
        for _ in range(n // 2):
            for f in [ex.submit(T.spin, 60.0), ex.submit(T.spin, 60.0)]:
                try:
                    f.result()
                except TimeoutError:
                    pass
                else:
                    raise AssertionError("a task ran to its end past task_timeout")

    with interpool.Executor(2, task_timeout=LIMIT) as ex:
        time_out(10)
        before = _common.rss_kib()
        start = time.perf_counter()
        time_out(timeouts)
        seconds = time.perf_counter() - start
        after = _common.rss_kib()
    return {"timeouts": timeouts, "rss_before_kib": before, "rss_after_kib": after,
            "growth_mib": (after - before) / 1024, "kib_per_timeout": (after - before) / timeouts,
            "ms_per_timeout_2_workers": 1000 * seconds / timeouts}


def child_stdlib(cycles: int) -> dict[str, Any]:
    try:
        import _interpreters as low

        def cycle() -> None:
            interp = low.create()
            low.exec(interp, "pass")
            low.destroy(interp)
    except ImportError:  # 3.12
        import _xxsubinterpreters as low  # type: ignore[no-redef]

        def cycle() -> None:
            interp = low.create(isolated=True)
            low.run_string(interp, "pass")
            low.destroy(interp)
    for _ in range(3):
        cycle()
    before = _common.rss_kib()
    times = []
    for _ in range(cycles):
        t = time.perf_counter()
        cycle()
        times.append(1000 * (time.perf_counter() - t))
    after = _common.rss_kib()
    return {"cycles": cycles, "median_ms": statistics.median(times),
            "kib_per_interpreter": (after - before) / cycles}


CHILDREN = {"turnaround": child_turnaround, "memory": child_memory, "stdlib": child_stdlib}


def run_child(part: str, n: int) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", part, "--params", json.dumps(n)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = _common.parser(__doc__, quick="a fast smoke run (200 timeouts, 20 rounds)",
                        repeat="timeouts measured for memory (default 1000, quick 200)")
    ap.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    ap.add_argument("--params", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child](json.loads(args.params))))
        return 0

    timeouts = args.repeat or (200 if args.quick else 1000)
    rounds = 20 if args.quick else 100
    info = _common.machine_info()
    _common.print_machine("tasks that time out", info, args.quick)
    print(f"  task_timeout={LIMIT} s; turnaround over {rounds} rounds on 1 worker; memory over "
          f"{timeouts} timeouts on 2 workers; each part in a fresh process", flush=True)
    load = _common.Load()
    turn = run_child("turnaround", rounds)
    mem = run_child("memory", timeouts)
    base = run_child("stdlib", 20 if args.quick else 60)
    others = load.others()

    def fmt(r: dict[str, Any], key: str, spec: str) -> str:
        return "failed" if "error" in r else format(r[key], spec)

    header = ["measure", "interpool", "stdlib interp.", "target"]
    rows: list[_common.Row] = [
        ["timeout turnaround: deadline to next task, ms (median)", fmt(turn, "median_ms", ".1f"),
         fmt(base, "median_ms", ".1f"), f"<= {TURNAROUND_TARGET_MS:g}"],
        [f"RSS growth over {timeouts} timeouts, MiB", fmt(mem, "growth_mib", ".2f"),
         "" if "error" in base else f"{base['kib_per_interpreter'] * timeouts / 1024:.0f}",
         f"<= {GROWTH_TARGET_MIB:g}"],
        ["RSS per timeout, KiB", fmt(mem, "kib_per_timeout", ".1f"),
         fmt(base, "kib_per_interpreter", ".0f"), ""],
    ]
    print()
    print("\n".join(_common.format_table(header, rows)))
    for r in (turn, mem, base):
        if "error" in r:
            print(f"  failed: {r['error']}")
    if "error" not in turn:
        print(f"  turnaround min {turn['min_ms']:.1f} ms, max {turn['max_ms']:.1f} ms; the worker "
              f"ran on {turn['interpreters']} interpreter(s) over {turn['rounds']} timeouts")
    if "error" not in mem:
        print(f"  memory: RSS {mem['rss_before_kib'] / 1024:.1f} -> {mem['rss_after_kib'] / 1024:.1f} "
              f"MiB; {mem['ms_per_timeout_2_workers']:.1f} ms per timeout on 2 workers")
    print("  stdlib: a bare interpreter created, exec('pass'), destroyed: what a replacement "
          "per timeout would cost at the least")
    if others is not None:
        print(f"  other processes used {others['other_cpus_avg']} CPUs meanwhile")

    ok = _common.verdict
    turn_verdict = "" if "error" in turn else ok(turn["median_ms"] <= TURNAROUND_TARGET_MS)
    mem_verdict = "" if "error" in mem else ok(mem["growth_mib"] * 1000 / timeouts <= GROWTH_TARGET_MIB)
    summary = _common.summary(
        f"tasks that time out (task_timeout={LIMIT} s)",
        [_common.summary_row("timeout turnaround: deadline to next task, ms",
                             {"interpool": fmt(turn, "median_ms", ".1f"),
                              "stdlib": fmt(base, "median_ms", ".1f")},
                             f"<= {TURNAROUND_TARGET_MS:g}", turn_verdict),
         _common.summary_row(f"RSS growth over {timeouts} timeouts, MiB",
                             {"interpool": fmt(mem, "growth_mib", ".2f"),
                              "stdlib": "" if "error" in base else
                              f"{base['kib_per_interpreter'] * timeouts / 1024:.0f}"},
                             f"<= {GROWTH_TARGET_MIB:g} per 1000", mem_verdict)],
        ["stdlib: a bare interpreter's create + exec + destroy (ms) and the RSS it keeps, "
         "times the timeouts: what replacing the worker's interpreter per timeout would cost "
         "at the least"])
    if args.json:
        _common.write_json(args.json, {"machine": info, "config": {"quick": args.quick,
                                                                   "limit_s": LIMIT,
                                                                   "timeouts": timeouts,
                                                                   "rounds": rounds},
                                       "turnaround": turn, "memory": mem, "stdlib": base,
                                       "load": others, "summary": summary})
    return 1 if any("error" in r for r in (turn, mem, base)) else 0


if __name__ == "__main__":
    sys.exit(main())
