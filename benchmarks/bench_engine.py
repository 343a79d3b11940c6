"""interpool engine benchmark: proof of parallelism and per-task costs.

Prints one table, with concurrent.futures.ThreadPoolExecutor measured in the
same run for comparison:

  a. Two CPU-bound pure-Python tasks on two workers. "CPU / wall" is the process
     CPU time (every thread) divided by the wall time: about 2 means both
     interpreters' GILs ran at the same time; threads sharing one GIL give about 1.
     "speedup" is the wall time of running both tasks one after the other in the
     main interpreter divided by the parallel wall time.
  b. Per-task cost of a trivial task (x + 1) through the Python API: N tasks
     submitted, then every result waited for, in µs per task ("submit" is the
     submitting loop alone, "total" includes waiting for all results).
  c. Engine-level cost of a trivial task, from the C++ Google Benchmark binary
     interpool_engine_bench (benchmarks/engine_bench.cpp), if it has been built:
     tasks submitted from C++, no Python caller. Target: <= 1 µs per task.
     "queue drained" splits that cost: the batch is queued while the workers are
     held busy, so the submit loop runs uncontended and the workers then drain a
     full queue without sleeping; the difference from the plain number is the
     hand-over (futex sleeps and wake-ups, contention on the shared queue).

Every measure is repeated (--repeat, default 5) and the median is shown. The
machine's load average is printed before and after: on a busy machine the
parallel numbers are not meaningful.

Usage:
  .venv/bin/python benchmarks/bench_engine.py [--quick] [--json FILE]
      [--repeat R] [--tasks N] [--task-seconds S] [--engine-bench PATH | --no-engine]
  (or `make bench`, which builds the C++ binary, runs every benchmarks/*.py and then
  prints one table of them all, benchmarks/_report.py; BENCH_ARGS=--quick)

The C++ binary is looked for at --engine-bench, $INTERPOOL_ENGINE_BENCH, then
build/*/benchmarks/interpool_engine_bench (newest first). Build it with:
  .venv/bin/cmake -S . -B build/bench -G Ninja -DCMAKE_MAKE_PROGRAM=$PWD/.venv/bin/ninja \\
    -DCMAKE_BUILD_TYPE=Release -DINTERPOOL_BUILD_BENCHMARKS=ON \\
    -DPython_EXECUTABLE=/path/to/python3.13
  .venv/bin/cmake --build build/bench --target interpool_engine_bench
"""

from __future__ import annotations

import concurrent.futures
import glob
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _bench_tasks  # noqa: E402  (functions the workers run)
import _common  # noqa: E402

from interpool import _interpool as ip  # noqa: E402

TASKS_MODULE = "_bench_tasks"
ENGINE_TARGET_US = 1.0


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def measure(fn) -> tuple[float, float]:
    """Runs fn(); returns (wall seconds, process CPU seconds over every thread)."""
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    w1, c1 = time.perf_counter(), time.process_time()
    return w1 - w0, c1 - c0


def median(xs):
    return statistics.median(xs)


def calibrate_spin(seconds: float) -> int:
    """The spin() argument that takes about `seconds` in this interpreter."""
    n = 50_000
    best = min(measure(lambda: _bench_tasks.spin(n))[0] for _ in range(3))
    return max(10_000, int(n * seconds / best))


def new_pool(workers: int):
    pool = ip.Pool(workers, sys_path=sys.path)
    # Warm-up: every worker imports the task module and caches the functions.
    warm = [pool.submit(TASKS_MODULE, "inc", (i,)) for i in range(200 * workers)]
    warm += [pool.submit(TASKS_MODULE, "spin", (1000,)) for _ in range(4 * workers)]
    for t in warm:
        t.result()
    return pool


def new_threads(workers: int):
    ex = concurrent.futures.ThreadPoolExecutor(workers)
    for f in [ex.submit(_bench_tasks.inc, i) for i in range(200 * workers)]:
        f.result()
    return ex


# ---------------------------------------------------------------------------
# a. Two CPU-bound tasks on two workers
# ---------------------------------------------------------------------------


def bench_cpu_parallel(repeat: int, task_seconds: float, workers: int = 2) -> dict:
    n = calibrate_spin(task_seconds)
    spin = _bench_tasks.spin
    expected = spin(n)

    def sequential():
        for _ in range(workers):
            assert spin(n) == expected

    pool = new_pool(workers)
    try:

        def on_pool():
            tasks = [pool.submit(TASKS_MODULE, "spin", (n,)) for _ in range(workers)]
            assert all(t.result() == expected for t in tasks)

        ex = new_threads(workers)
        try:

            def on_threads():
                futures = [ex.submit(spin, n) for _ in range(workers)]
                assert all(f.result() == expected for f in futures)

            runs = {"sequential": [], "interpool": [], "threads": []}
            # Interleaved so that a burst of load from elsewhere hits all three alike.
            for _ in range(repeat):
                runs["sequential"].append(measure(sequential))
                runs["interpool"].append(measure(on_pool))
                runs["threads"].append(measure(on_threads))
        finally:
            ex.shutdown()
    finally:
        pool.shutdown()

    seq_wall = median([w for w, _ in runs["sequential"]])
    out = {"workers": workers, "spin_n": n, "sequential_wall_s": seq_wall,
           "sequential_cpu_per_wall": median([c / w for w, c in runs["sequential"]])}
    for name in ("interpool", "threads"):
        wall = median([w for w, _ in runs[name]])
        out[name] = {
            "wall_s": wall,
            "cpu_per_wall": median([c / w for w, c in runs[name]]),
            "speedup": seq_wall / wall,
            "runs": [{"wall_s": w, "cpu_s": c} for w, c in runs[name]],
        }
    out["sequential_runs"] = [{"wall_s": w, "cpu_s": c} for w, c in runs["sequential"]]
    return out


# ---------------------------------------------------------------------------
# b. Trivial tasks through the Python API
# ---------------------------------------------------------------------------


def bench_trivial(repeat: int, n: int, workers: int) -> dict:
    expected = n * (n + 1) // 2

    def run(submit_all, wait_all):
        submits, totals = [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            pending = submit_all()
            t1 = time.perf_counter()
            total = wait_all(pending)
            t2 = time.perf_counter()
            assert total == expected, (total, expected)
            del pending
            submits.append((t1 - t0) / n * 1e6)
            totals.append((t2 - t0) / n * 1e6)
        return {"submit_us": median(submits), "total_us": median(totals),
                "total_us_runs": totals}

    pool = new_pool(workers)
    try:
        submit = pool.submit
        res_pool = run(lambda: [submit(TASKS_MODULE, "inc", (i,)) for i in range(n)],
                       lambda ts: sum(t.result() for t in ts))
    finally:
        pool.shutdown()

    ex = new_threads(workers)
    try:
        tsubmit, inc = ex.submit, _bench_tasks.inc
        res_threads = run(lambda: [tsubmit(inc, i) for i in range(n)],
                          lambda fs: sum(f.result() for f in fs))
    finally:
        ex.shutdown()
    return {"workers": workers, "tasks": n, "interpool": res_pool, "threads": res_threads}


# ---------------------------------------------------------------------------
# c. The C++ engine benchmark
# ---------------------------------------------------------------------------


def find_engine_bench(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    env = os.environ.get("INTERPOOL_ENGINE_BENCH")
    if env:
        return env
    found = [p for p in glob.glob(os.path.join(ROOT, "build", "*", "benchmarks",
                                               "interpool_engine_bench"))
             if os.access(p, os.X_OK)]
    return max(found, key=os.path.getmtime) if found else None


def bench_engine_cpp(path: str, repeat: int, quick: bool) -> dict:
    cmd = [path, "--benchmark_format=json"]
    if quick:
        cmd += ["--benchmark_min_time=0.05",
                "--benchmark_filter=PoolTrivialTask|PoolPrefilledDrain|ToValue|ToPython"]
    if repeat > 1:
        cmd += [f"--benchmark_repetitions={min(repeat, 3)}",
                "--benchmark_report_aggregates_only=true"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}:\n"
                           f"{proc.stderr[-2000:]}")
    data = json.loads(proc.stdout)
    # One number per benchmark: the median aggregate if repeated, else the single run.
    results: dict[str, dict] = {}
    for b in data["benchmarks"]:
        if b.get("error_occurred"):
            raise RuntimeError(f"{b['name']}: {b.get('error_message')}")
        name = b.get("run_name", b["name"])
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        ips = b.get("items_per_second")
        if ips:
            results[name] = {"ns_per_item": 1e9 / ips, "items_per_second": ips}
            if "submit_ns" in b:
                results[name]["submit_ns_per_item"] = b["submit_ns"]
    ctx = data.get("context", {})
    return {"binary": path, "command": cmd, "python": ctx.get("python"),
            "library_build_type": ctx.get("library_build_type"), "results": results}


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n > 1 else ''}"


def table_rows(cpu: dict, trivial: dict[int, dict], n_tasks: int, engine: dict | None,
               engine_note: str | None) -> list[_common.Row]:
    """This script's own table: (measure, interpool, threads, note) rows and section titles."""
    rows: list[_common.Row] = []
    w = cpu["workers"]
    rows.append(f"a. {w} CPU-bound tasks (spin({cpu['spin_n']}), "
                f"~{cpu['sequential_wall_s'] / w:.2f} s each) on {w} workers")
    rows.append(["  sequential, main interpreter: wall", f"{cpu['sequential_wall_s']:.3f} s",
                 "", f"CPU/wall {cpu['sequential_cpu_per_wall']:.2f}"])
    rows.append(["  parallel: wall", f"{cpu['interpool']['wall_s']:.3f} s",
                 f"{cpu['threads']['wall_s']:.3f} s", ""])
    rows.append(["  speedup vs sequential", f"{cpu['interpool']['speedup']:.2f}x",
                 f"{cpu['threads']['speedup']:.2f}x", f"ideal {w}x"])
    rows.append(["  process CPU time / wall time", f"{cpu['interpool']['cpu_per_wall']:.2f}",
                 f"{cpu['threads']['cpu_per_wall']:.2f}",
                 f"~{w}: {w} GILs ran at once; ~1: one GIL"])
    rows.append(f"b. trivial task inc(x) through the Python API, N={n_tasks}, µs per task")
    for wk, r in trivial.items():
        rows.append([f"  {plural(wk, 'worker')}: submit loop only",
                     f"{r['interpool']['submit_us']:.2f}", f"{r['threads']['submit_us']:.2f}", ""])
        rows.append([f"  {plural(wk, 'worker')}: submit + wait all",
                     f"{r['interpool']['total_us']:.2f}", f"{r['threads']['total_us']:.2f}",
                     f"interpool {r['threads']['total_us'] / r['interpool']['total_us']:.1f}x "
                     "faster" if r['interpool']['total_us'] < r['threads']['total_us'] else
                     f"interpool {r['interpool']['total_us'] / r['threads']['total_us']:.1f}x "
                     "slower"])
    rows.append("c. engine level (C++ caller, operator.pos(i)), from interpool_engine_bench")
    if not engine:
        rows.append(["  trivial task: µs/task", "n/a", "", (engine_note or "?").splitlines()[0][:80]])
        return rows
    res = engine["results"]
    for wk in (1, 2):
        r = res.get(f"PoolTrivialTask/workers:{wk}/real_time")
        if r:
            us = r["ns_per_item"] / 1000
            verdict = "OK" if us <= ENGINE_TARGET_US else "MISSED"
            sub = r.get("submit_ns_per_item")
            rows.append([f"  trivial task, {plural(wk, 'worker')}: µs/task",
                         f"{us:.3f}", "", f"target <= {ENGINE_TARGET_US:g} µs: {verdict}"
                         + (f" (submit loop alone {sub / 1000:.3f})" if sub else "")])
    for wk in (1, 2):
        r = res.get(f"PoolTrivialTaskBatched/workers:{wk}/real_time")
        if r:
            us = r["ns_per_item"] / 1000
            verdict = "OK" if us <= ENGINE_TARGET_US else "MISSED"
            rows.append([f"  same, submitted as one batch (submit_all), {plural(wk, 'worker')}: "
                         "µs/task", f"{us:.3f}", "", f"target <= {ENGINE_TARGET_US:g} µs: {verdict}"])
    for wk in (1, 2):
        r = res.get(f"PoolPrefilledDrain/workers:{wk}/manual_time")
        if r:
            sub = r.get("submit_ns_per_item")
            rows.append([f"  queue drained, {plural(wk, 'worker')}: µs/task",
                         f"{r['ns_per_item'] / 1000:.3f}", "",
                         "worker side alone, no wake-ups"
                         + (f" (uncontended submit {sub / 1000:.3f})" if sub else "")])
    r = res.get("PoolRoundTrip/workers:1/real_time")
    if r:
        rows.append(["  one task round trip (submit, wait): µs", f"{r['ns_per_item'] / 1000:.2f}",
                     "", "latency, 1 worker"])
    for name, label in (("ToValueSmallTuple", "to_value((1, 2.5, 'abc', None, True)): ns"),
                        ("ToPythonSmallTuple", "to_python(same): ns")):
        r = res.get(name)
        if r:
            rows.append([f"  {label}", f"{r['ns_per_item']:.0f}", "", ""])
    return rows


def summary(cpu: dict, trivial: dict[int, dict], n_tasks: int, engine: dict | None,
            engine_status: str) -> dict:
    """This script's rows of the combined table (`make bench`): interpool is the raw
    _interpool.Pool called from Python; "C++ engine" the same pool called from C++.
    `engine_status` fills the C++ engine cells when the binary did not run."""
    rows = []
    w = cpu["workers"]
    rows.append(_common.summary_row(
        f"{w} CPU-bound tasks, {w} workers: speedup",
        {k: f"{cpu[k]['speedup']:.2f}x" for k in ("interpool", "threads")}, f"ideal {w}x"))
    rows.append(_common.summary_row(
        "  same: process CPU time / wall time",
        {k: f"{cpu[k]['cpu_per_wall']:.2f}" for k in ("interpool", "threads")}))
    res = engine["results"] if engine else {}

    def engine_us(name: str) -> tuple[str, bool | None]:
        r = res.get(name)
        if not engine:
            return engine_status, None
        if not r:
            return "-", None
        return f"{r['ns_per_item'] / 1000:.3f}", r["ns_per_item"] / 1000 <= ENGINE_TARGET_US

    target = f"C++ engine <= {ENGINE_TARGET_US:g} µs"
    for wk, r in trivial.items():
        cell, met = engine_us(f"PoolTrivialTask/workers:{wk}/real_time")
        rows.append(_common.summary_row(
            f"trivial task, {plural(wk, 'worker')}: µs/task",
            {"interpool": f"{r['interpool']['total_us']:.2f}",
             "threads": f"{r['threads']['total_us']:.2f}", "engine": cell},
            target, "" if met is None else _common.verdict(met)))
    if not engine:
        rows.append(_common.summary_row("engine-only measures (submit_all, drain, round trip)",
                                        {"engine": engine_status}))
        return _common.summary("_interpool.Pool (Python and C++ callers) vs ThreadPoolExecutor",
                               rows, _summary_notes(n_tasks))
    for wk in (1, 2):
        cell, met = engine_us(f"PoolTrivialTaskBatched/workers:{wk}/real_time")
        if cell != "-":
            rows.append(_common.summary_row(f"  same, one submit_all batch, {plural(wk, 'worker')}",
                                            {"engine": cell}, target, _common.verdict(bool(met))))
    for wk in (1, 2):
        cell, _ = engine_us(f"PoolPrefilledDrain/workers:{wk}/manual_time")
        if cell != "-":
            rows.append(_common.summary_row(f"  same, queue drained (worker side), {plural(wk, 'worker')}",
                                            {"engine": cell}))
    r = res.get("PoolRoundTrip/workers:1/real_time")
    if r:
        rows.append(_common.summary_row("one task round trip, 1 worker: µs",
                                        {"engine": f"{r['ns_per_item'] / 1000:.2f}"}))
    for name, label in (("ToValueSmallTuple", "to_value(small tuple): ns"),
                        ("ToPythonSmallTuple", "to_python(small tuple): ns")):
        r = res.get(name)
        if r:
            rows.append(_common.summary_row(label, {"engine": f"{r['ns_per_item']:.0f}"}))
    return _common.summary("_interpool.Pool (Python and C++ callers) vs ThreadPoolExecutor",
                           rows, _summary_notes(n_tasks))


def _summary_notes(n_tasks: int) -> list[str]:
    return ["CPU time / wall time: ~2 when 2 GILs ran at once, ~1 with one GIL",
            f"trivial task: interpool and threads submit inc(x) from Python ({n_tasks} tasks, "
            "then every result waited for); C++ engine: operator.pos(i) submitted from C++ "
            "(interpool_engine_bench, batches of 10000)"]


def main(argv: list[str] | None = None) -> int:
    ap = _common.parser(__doc__, quick="a fast smoke run (a few seconds)",
                        repeat="repetitions of each measure (median shown; default 5, quick 2)")
    ap.add_argument("--tasks", type=int, help="trivial tasks per measure (default 20000)")
    ap.add_argument("--task-seconds", type=float,
                    help="duration of one CPU-bound task (default 0.3)")
    ap.add_argument("--engine-bench", metavar="PATH", help="the interpool_engine_bench binary")
    ap.add_argument("--no-engine", action="store_true", help="skip the C++ engine benchmark")
    args = ap.parse_args(argv)

    repeat = args.repeat or (2 if args.quick else 5)
    n_tasks = args.tasks or (2000 if args.quick else 20000)
    task_seconds = args.task_seconds or (0.05 if args.quick else 0.3)

    info = _common.machine_info()
    _common.print_machine("interpool engine benchmark", info, args.quick, workers=2)
    print(f"  median of {repeat} runs per measure")
    print(flush=True)

    result = {"machine": info, "config": {"quick": args.quick, "repeat": repeat,
                                          "tasks": n_tasks, "task_seconds": task_seconds}}

    cpu = bench_cpu_parallel(repeat, task_seconds)
    result["cpu_parallel"] = cpu
    trivial = {w: bench_trivial(repeat, n_tasks, w) for w in (1, 2)}
    result["trivial"] = {str(w): r for w, r in trivial.items()}

    engine = None
    engine_note = None
    engine_status = ""  # the C++ engine cells of the combined table when it did not run
    engine_failed = False  # found but did not run: the exit status says so
    if args.no_engine:
        engine_note, engine_status = "skipped (--no-engine)", "skipped"
    else:
        path = find_engine_bench(args.engine_bench)
        if not path:
            engine_note = ("not built: see the docstring (build/*/benchmarks/"
                           "interpool_engine_bench)")
            engine_status = "not built"
        else:
            try:
                engine = bench_engine_cpp(path, repeat, args.quick)
            except (OSError, RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
                engine_note, engine_status = f"failed: {e}", "failed"
                engine_failed = True
    result["engine"] = engine if engine else {"skipped": engine_note}

    header = ["measure", "interpool", "ThreadPoolExecutor", "note"]
    for line in _common.format_table(header, table_rows(cpu, trivial, n_tasks, engine, engine_note)):
        print(line)
    if engine_note and "\n" in engine_note:
        print(engine_note)
    if engine:
        embedded = (engine.get("python") or "?").split()[0]
        print(f"engine numbers: {os.path.relpath(engine['binary'])}, embedded Python {embedded}"
              + ("" if embedded == info["python"] else
                 f" (NOT this Python, {info['python']}: rebuild it against this one)"))
    result["machine"]["loadavg_end"] = _common.loadavg()
    print(f"load average at the end: {result['machine']['loadavg_end']}")

    result["summary"] = summary(cpu, trivial, n_tasks, engine, engine_status)
    if engine_note:
        result["summary"]["notes"].append(f"C++ engine: {engine_note.splitlines()[0][:200]}")
    if args.json:
        _common.write_json(args.json, result)
    return 1 if engine_failed else 0


if __name__ == "__main__":
    sys.exit(main())
