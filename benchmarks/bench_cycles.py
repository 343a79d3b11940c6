"""Memory across create/close cycles: does anything leak per executor or interpreter?

Each backend runs in a fresh Python process: a few warm-up cycles, then VmRSS is
read, then N more cycles, then VmRSS again; the table shows the growth per cycle.
A cycle of interpool.Executor: create with 2 workers, 20 submits, a map of 100
items, shutdown. A cycle of interpool.interpreters: create, exec, call, close.
A cycle of ThreadPoolExecutor (for scale): the same as the Executor's. The
baseline, "stdlib": the interpreter CPython itself makes and destroys
(`_interpreters.create()` + `exec` + `destroy()`; 3.12: `_xxsubinterpreters`).
CPython 3.12 and 3.13 keep about 1.7 MiB of every sub-interpreter they destroy
(seen with the baseline alone), so interpool is judged per interpreter against
it: what interpool adds on top is what would be its own leak.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

BACKENDS = ("interpool", "interpreters", "stdlib", "threads")
# Interpreters made per cycle.
PER_CYCLE = {"interpool": 2, "interpreters": 1, "stdlib": 1, "threads": 1}
# Growth per cycle below this counts as no leak (allocator noise, caches that settle).
TARGET_KIB = 64.0


def _cycle(backend: str) -> None:
    if backend == "stdlib":
        try:
            import _interpreters as low

            interp = low.create()
            low.exec(interp, "x = sum(range(100))")
        except ImportError:  # 3.12
            import _xxsubinterpreters as low  # type: ignore[no-redef]

            interp = low.create(isolated=True)
            low.run_string(interp, "x = sum(range(100))")
        low.destroy(interp)
        return
    if backend == "interpreters":
        from interpool import interpreters

        interp = interpreters.create()
        interp.exec("x = sum(range(100))")
        interp.call(abs, -3)
        interp.close()
        return
    if backend == "interpool":
        from interpool import Executor as make
    else:
        from concurrent.futures import ThreadPoolExecutor as make  # type: ignore[assignment]
    with make(2) as ex:
        futs = [ex.submit(abs, -i) for i in range(20)]
        assert [f.result() for f in futs] == list(range(20))
        assert sum(ex.map(abs, range(100))) == sum(range(100))


def child(backend: str, warmup: int, cycles: int) -> dict[str, Any]:
    for _ in range(warmup):
        _cycle(backend)
    gc.collect()
    before = _common.rss_kib()
    start = time.perf_counter()
    for _ in range(cycles):
        _cycle(backend)
    seconds = time.perf_counter() - start
    gc.collect()
    after = _common.rss_kib()
    return {"backend": backend, "cycles": cycles, "rss_before_kib": before, "rss_after_kib": after,
            "kib_per_cycle": (after - before) / cycles, "ms_per_cycle": 1000 * seconds / cycles}


def run_child(backend: str, warmup: int, cycles: int) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", backend,
           "--params", json.dumps([warmup, cycles])]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        return {"backend": backend, "error": (r.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = _common.parser(__doc__, quick="a fast smoke run (10 cycles)",
                        repeat="cycles measured per backend (default 60, quick 10)")
    ap.add_argument("--child", choices=BACKENDS, help=argparse_suppress())
    ap.add_argument("--params", help=argparse_suppress())
    args = ap.parse_args(argv)
    if args.child:
        warmup, cycles = json.loads(args.params)
        print(json.dumps(child(args.child, warmup, cycles)))
        return 0

    cycles = args.repeat or (10 if args.quick else 60)
    warmup = 3 if args.quick else 10
    info = _common.machine_info()
    _common.print_machine("create/close cycles", info, args.quick)
    print(f"  {warmup} warm-up cycles, then {cycles} measured, each backend in a fresh process",
          flush=True)
    results = [run_child(b, warmup, cycles) for b in BACKENDS]
    for r in results:
        if "error" not in r:
            r["kib_per_interpreter"] = r["kib_per_cycle"] / PER_CYCLE[r["backend"]]
    header = ["backend", "KiB per cycle", "KiB per interpreter", "ms per cycle",
              "RSS before -> after (MiB)"]
    rows: list[_common.Row] = []
    for r in results:
        if "error" in r:
            rows.append([r["backend"], "failed", "", "", r["error"]])
            continue
        rows.append([r["backend"], f"{r['kib_per_cycle']:.1f}", f"{r['kib_per_interpreter']:.1f}",
                     f"{r['ms_per_cycle']:.1f}",
                     f"{r['rss_before_kib'] / 1024:.1f} -> {r['rss_after_kib'] / 1024:.1f}"])
    print()
    print("\n".join(_common.format_table(header, rows)))
    by = {r["backend"]: r for r in results}
    base = by["stdlib"].get("kib_per_interpreter")
    print(f"no leak of interpool's own: per interpreter, under the stdlib's "
          f"{'?' if base is None else f'{base:.1f}'} KiB + {TARGET_KIB:g} KiB")

    def cell(name: str) -> str:
        r = by[name]
        return "failed" if "error" in r else f"{r['kib_per_interpreter']:.1f}"

    def met(name: str) -> str:
        r = by[name]
        if "error" in r or base is None:
            return ""
        return _common.verdict(r["kib_per_interpreter"] < base + TARGET_KIB)

    target = f"<= stdlib + {TARGET_KIB:g}"
    summary = _common.summary(
        f"memory across create/close cycles ({cycles} measured per backend)",
        [_common.summary_row("Executor(2) cycles: RSS KiB per interpreter",
                             {"interpool": cell("interpool"), "stdlib": cell("stdlib"),
                              "threads": cell("threads")}, target, met("interpool")),
         _common.summary_row("interpreters.create/close: RSS KiB per interpreter",
                             {"interpool": cell("interpreters"), "stdlib": cell("stdlib")},
                             target, met("interpreters"))],
        ["a cycle: create, a few tasks (or exec + call), close; RSS read after gc.collect(); "
         "stdlib: _interpreters.create/exec/destroy, whose growth is CPython's own; threads: "
         "per ThreadPoolExecutor cycle"])
    if args.json:
        _common.write_json(args.json, {"machine": info, "config": {"quick": args.quick,
                                                                   "warmup": warmup, "cycles": cycles},
                                       "backends": by, "summary": summary})
    return 1 if any("error" in r for r in results) else 0


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
