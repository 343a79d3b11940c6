"""Cross-interpreter queue benchmark: interpool.interpreters next to the standard
library's PEP 734 layer and the interpreters-pep-734 backport, in one run.

Two measures, each repeated (--repeat) with the median shown:

  round trip   the main interpreter puts a small int on a queue; a worker
               interpreter (a thread exec-ing a loop) gets it and puts it on a
               second queue; the main interpreter gets the reply. µs per round
               trip: the median (p50) and p99 of every round trip, and the mean
               of a repetition (median over repetitions). A round trip is two
               thread wake-ups, so on a loaded machine the mean suffers first.
               Target for interpool: <= 50 µs.
  throughput   a worker interpreter puts N small ints on a queue as fast as it can
               while the main interpreter gets them. Items per second, from the
               start signal to the last get. Target for interpool: >= 200k/s.

Backends (a backend that does not import is skipped with a note):

  interpool     interpool.interpreters (create_queue; queues go through prepare_main)
  stdlib        3.14: concurrent.interpreters; 3.13: test.support.interpreters and
                test.support.interpreters.queues (the worker imports the queues
                module before prepare_main accepts a queue; gets and blocked puts
                poll every 10 ms). 3.12's test.support.interpreters is the PEP 554
                draft (channels, no queues): skipped.
  backport      the interpreters-pep-734 package from PyPI (`pip install
                interpreters-pep-734`), imported as interpreters_backport.interpreters
                (releases up to 0.5) or interpreters_backports.interpreters. On 3.13
                it wraps the same built-in _interpreters/_interpqueues modules.

Each backend runs in a child process of its own: the standard library layer and the
backport register their Queue class with the same built-in module, and only the
last one registered can cross interpreters.

The load average is printed before and after the run (numbers on a busy machine
are not meaningful: rerun, or compare backends of one run).

Usage:
  .venv/bin/python benchmarks/bench_queues.py [--quick] [--json FILE] [--repeat R]
      [--items N] [--roundtrips K] [--backend NAME ...]
  (or `make bench`, which runs every benchmarks/*.py and then prints one table of
  them all, benchmarks/_report.py; BENCH_ARGS=--quick)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _common  # noqa: E402

ROUNDTRIP_TARGET_US = 50.0
THROUGHPUT_TARGET = 200_000.0

BACKENDS = ("interpool", "stdlib", "backport")

# What runs in the worker interpreter. prepare_main bound the queues and n.
ROUNDTRIP_WORKER = """
while True:
    x = req.get()
    if x is None:
        break
    rep.put(x)
"""

PRODUCER_WORKER = """
go.get()
for i in range(n):
    q.put(i)
q.put(None)
"""


# ---------------------------------------------------------------------------
# Backends: (interpreters module, create_queue, code the worker runs first)
# ---------------------------------------------------------------------------


class Skip(Exception):
    pass


def load_backend(name: str):
    """Returns (label, interpreters module, create_queue, worker set-up code)."""
    import importlib

    if name == "interpool":
        from interpool import interpreters

        return "interpool.interpreters", interpreters, interpreters.create_queue, ""
    if name == "stdlib":
        for modname, qname in (("concurrent.interpreters", "concurrent.interpreters._queues"),
                               ("test.support.interpreters", "test.support.interpreters.queues")):
            try:
                mod = importlib.import_module(modname)
            except ImportError:
                continue
            if not hasattr(getattr(mod, "Interpreter", None), "exec"):
                raise Skip(f"{modname} is the PEP 554 draft (Interpreter.run and channels, no queues)")
            try:
                qmod = importlib.import_module(qname)
            except ImportError as e:
                raise Skip(f"{qname} does not import: {e}") from None
            return f"{modname} (stdlib)", mod, qmod.create, f"import {qname}\n"
        raise Skip("no PEP 734 module in this Python's standard library "
                   "(test.support.interpreters with queues needs 3.13)")
    if name == "backport":
        problems = []
        for modname in ("interpreters_backport.interpreters", "interpreters_backports.interpreters"):
            try:
                mod = importlib.import_module(modname)
                qmod = importlib.import_module(modname + ".queues")
            except ImportError as e:
                problems.append(f"{modname}: {e}")
                continue
            try:
                from importlib.metadata import version

                label = f"interpreters-pep-734 {version('interpreters-pep-734')}"
            except Exception:  # noqa: BLE001
                label = "interpreters-pep-734"
            return f"{label} ({modname})", mod, qmod.create, f"import {modname}.queues\n"
        if all("No module named 'interpreters_backport" in p for p in problems):
            raise Skip("not installed (pip install interpreters-pep-734 to include it)")
        raise Skip("does not import here: " + "; ".join(problems))
    raise ValueError(f"unknown backend {name!r}")


# ---------------------------------------------------------------------------
# Measures (in the child process of one backend)
# ---------------------------------------------------------------------------


def start_worker(interp, setup: str, code: str, **names) -> threading.Thread:
    if setup:
        interp.exec(setup)  # the stdlib layer: the queues module before prepare_main
    interp.prepare_main(**names)
    errors = []

    def run():
        try:
            interp.exec(code)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.errors = errors  # type: ignore[attr-defined]
    thread.start()
    return thread


def measure_roundtrip(mod, create_queue, setup: str, repeat: int, count: int, budget: float) -> dict:
    """µs per round trip: `count` round trips (or as many as fit in `budget` seconds)
    per repetition, each timed on its own. Returns the median of every round trip
    (p50, robust to bursts of load from other processes), p90 and p99, and the mean
    of each repetition."""
    interp = mod.create()
    req, rep = create_queue(), create_queue()
    worker = start_worker(interp, setup, ROUNDTRIP_WORKER, req=req, rep=rep)
    clock = time.perf_counter_ns
    try:
        for i in range(min(20, count)):  # warm-up: the worker is in its loop
            req.put(i)
            rep.get()
        each: list[int] = []
        means, done = [], []
        for _ in range(repeat):
            start = clock()
            limit = start + int(budget * 1e9)
            n = 0
            while n < count:
                t0 = clock()
                req.put(n)
                if rep.get() != n:
                    raise RuntimeError("round trip returned the wrong item")
                t1 = clock()
                each.append(t1 - t0)
                n += 1
                if t1 > limit:
                    break
            means.append((clock() - start) / n / 1e3)
            done.append(n)
        req.put(None)
        worker.join(60)
        if worker.errors:  # type: ignore[attr-defined]
            raise RuntimeError(f"worker failed: {worker.errors[0]}")  # type: ignore[attr-defined]
    finally:
        if not worker.is_alive():
            interp.close()
    each.sort()

    def pct(p: float) -> float:
        return each[min(len(each) - 1, int(p * len(each)))] / 1e3

    return {"us_p50": pct(0.5), "us_p90": pct(0.9), "us_p99": pct(0.99),
            "us_mean_median": statistics.median(means), "us_mean_min": min(means),
            "means_us": means, "roundtrips": done}


def measure_throughput(mod, create_queue, setup: str, repeat: int, items: int) -> dict:
    """Items/s: a worker puts `items` ints, the main interpreter gets them."""
    samples = []
    for _ in range(repeat):
        interp = mod.create()
        q, go = create_queue(), create_queue()
        worker = start_worker(interp, setup, PRODUCER_WORKER, q=q, go=go, n=items)
        time.sleep(0.05)  # the worker is waiting for `go`
        try:
            start = time.perf_counter()
            go.put(1)
            got = 0
            while q.get() is not None:
                got += 1
            elapsed = time.perf_counter() - start
            worker.join(60)
            if worker.errors:  # type: ignore[attr-defined]
                raise RuntimeError(f"worker failed: {worker.errors[0]}")  # type: ignore[attr-defined]
            if got != items:
                raise RuntimeError(f"got {got} items of {items}")
        finally:
            if not worker.is_alive():
                interp.close()
        samples.append(items / elapsed)
    return {"items_per_s_median": statistics.median(samples), "items_per_s_max": max(samples),
            "samples": samples, "items": items}


def child(name: str, params: dict) -> dict:
    try:
        label, mod, create_queue, setup = load_backend(name)
    except Skip as e:
        return {"backend": name, "skipped": str(e)}
    out = {"backend": name, "label": label, "skipped": None}
    out["roundtrip"] = measure_roundtrip(mod, create_queue, setup, params["repeat"],
                                         params["roundtrips"], params["budget"])
    out["throughput"] = measure_throughput(mod, create_queue, setup, params["repeat"], params["items"])
    return out


# ---------------------------------------------------------------------------
# The parent: one child per backend, then the table
# ---------------------------------------------------------------------------


def run_child(name: str, params: dict, timeout: float) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name, "--params", json.dumps(params)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"backend": name, "skipped": None, "error": f"no result after {timeout:.0f} s"}
    if proc.returncode != 0 or not proc.stdout.strip():
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"backend": name, "skipped": None, "error": f"exit status {proc.returncode}: {tail}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_table(results: list[dict]) -> None:
    head = (f"{'backend':64} {'round trip µs: p50':>18} {'p99':>9} {'mean':>9}"
            f" {'throughput items/s':>19} {'(max)':>11}")
    print(head)
    print("-" * len(head))
    notes = []
    for r in results:
        if r.get("skipped") or r.get("error"):
            notes.append(f"{r['backend']}: " + (f"skipped: {r['skipped']}" if r.get("skipped")
                                                   else f"failed: {r['error']}"))
            continue
        rt, tp = r["roundtrip"], r["throughput"]
        print(f"{r['label']:64} {rt['us_p50']:18,.1f} {rt['us_p99']:9,.1f} {rt['us_mean_median']:9,.1f}"
              f" {tp['items_per_s_median']:19,.0f} {tp['items_per_s_max']:11,.0f}")
    for note in notes:
        print(f"  {note}")
    print("  (p50/p99: of every round trip; mean: median over repetitions of their mean; "
          "throughput: median and best repetition)")
    ours = next((r for r in results if r["backend"] == "interpool" and "roundtrip" in r), None)
    if ours:
        rt_ok = ours["roundtrip"]["us_p50"] <= ROUNDTRIP_TARGET_US
        mean_ok = ours["roundtrip"]["us_mean_median"] <= ROUNDTRIP_TARGET_US
        tp_ok = ours["throughput"]["items_per_s_median"] >= THROUGHPUT_TARGET
        print(f"interpool targets: round trip <= {ROUNDTRIP_TARGET_US:.0f} µs: "
              f"p50 {'met' if rt_ok else 'NOT met'}, mean {'met' if mean_ok else 'NOT met'}; "
              f"throughput >= {THROUGHPUT_TARGET:,.0f} items/s: {'met' if tp_ok else 'NOT met'}")


def summary(results: list[dict]) -> dict:
    """This script's rows of the combined table (`make bench`)."""

    def cells(get: Callable[[dict], float], fmt: str) -> dict[str, str]:
        out = {}
        for r in results:
            if r.get("skipped"):
                out[r["backend"]] = "skipped"
            elif r.get("error"):
                out[r["backend"]] = "failed"
            else:
                out[r["backend"]] = fmt.format(get(r))
        return out

    ours = next((r for r in results if r["backend"] == "interpool" and "roundtrip" in r), None)

    def check(met: Callable[[dict], bool]) -> str:
        return _common.verdict(met(ours)) if ours else ""

    rt_target = f"<= {ROUNDTRIP_TARGET_US:.0f} µs"
    rows = [
        _common.summary_row("round trip main <-> worker, p50: µs",
                            cells(lambda r: r["roundtrip"]["us_p50"], "{:,.1f}"), rt_target,
                            check(lambda r: r["roundtrip"]["us_p50"] <= ROUNDTRIP_TARGET_US)),
        _common.summary_row("  same, mean: µs",
                            cells(lambda r: r["roundtrip"]["us_mean_median"], "{:,.1f}"), rt_target,
                            check(lambda r: r["roundtrip"]["us_mean_median"] <= ROUNDTRIP_TARGET_US)),
        _common.summary_row("  same, p99: µs", cells(lambda r: r["roundtrip"]["us_p99"], "{:,.1f}")),
        _common.summary_row("throughput worker -> main: items/s",
                            cells(lambda r: r["throughput"]["items_per_s_median"], "{:,.0f}"),
                            f">= {THROUGHPUT_TARGET:,.0f}/s",
                            check(lambda r: r["throughput"]["items_per_s_median"] >= THROUGHPUT_TARGET)),
    ]
    labels = [f"{r['backend']}: {r['label']}" for r in results if r.get("label")]
    notes = ["columns: " + ", ".join(labels)] if labels else []
    notes += [f"{r['backend']}: " + (f"skipped: {r['skipped']}" if r.get("skipped") else f"failed: {r['error']}")
              for r in results if r.get("skipped") or r.get("error")]
    return _common.summary("queues of interpool.interpreters vs the stdlib's and the backport's", rows,
                           notes)


def main(argv: list[str] | None = None) -> int:
    ap = _common.parser(__doc__, quick="a fast smoke run (a few seconds)",
                        repeat="repetitions of each measure (median shown; default 5, quick 3)")
    ap.add_argument("--items", type=int, help="items per throughput run (default 200000, quick 20000)")
    ap.add_argument("--roundtrips", type=int,
                    help="round trips per repetition (default 20000, quick 2000); a slow backend "
                         "stops at a time budget (2 s, quick 0.3 s)")
    ap.add_argument("--backend", action="append", choices=BACKENDS,
                    help="only this backend (repeatable; default: all)")
    ap.add_argument("--child", choices=BACKENDS, help=argparse.SUPPRESS)
    ap.add_argument("--params", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        print(json.dumps(child(args.child, json.loads(args.params))))
        return 0

    params = {
        "repeat": args.repeat or (3 if args.quick else 5),
        "items": args.items or (20_000 if args.quick else 200_000),
        "roundtrips": args.roundtrips or (2_000 if args.quick else 20_000),
        "budget": 0.3 if args.quick else 2.0,
    }
    backends = args.backend or list(BACKENDS)
    info = _common.machine_info()
    _common.print_machine("queue benchmark", info, args.quick)
    print(f"  {params['repeat']} repetitions; round trips: up to {params['roundtrips']:,} per repetition "
          f"(or {params['budget']} s); throughput: {params['items']:,} items per repetition; medians shown",
          flush=True)
    results = [run_child(name, params, timeout=600) for name in backends]
    info["loadavg_end"] = _common.loadavg()
    print()
    print_table(results)
    print(f"load average after the run {info['loadavg_end']}")
    if args.json:
        _common.write_json(args.json, {
            "machine": info, "config": {"quick": args.quick, **params},
            "targets": {"roundtrip_us": ROUNDTRIP_TARGET_US, "throughput_items_per_s": THROUGHPUT_TARGET},
            "backends": {r["backend"]: r for r in results}, "summary": summary(results)})
    return 1 if any(r.get("error") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
