"""benchmarks/bench_workloads.py, as `make bench` runs it, with its smallest sizes:
every part runs on every backend that imports, writes its numbers and the rows of
the combined table, says whether each target is met and by how much one is missed,
and leaves out worker counts above the machine's CPUs, saying so."""

import json
import os
import subprocess
import sys

from source_tree import ROOT

BENCH = os.path.join(ROOT, "benchmarks", "bench_workloads.py")


def test_workloads_benchmark_quick(tmp_path):
    out = tmp_path / "bench.json"
    chart = tmp_path / "workers.svg"
    r = subprocess.run([sys.executable, BENCH, "--quick", "--workloads", "regex,yaml", "--scale", "0.005",
                        "--wait-tasks", "40", "--workers", "1,2,1024", "--plot", str(chart),
                        "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(out.read_text())
    backends = data["config"]["backends"]
    assert {"fork", "forkserver", "spawn", "threads", "interpool"} <= set(backends)

    real = data["real"]["workloads"]
    assert set(real) == {"regex", "yaml"}
    for entry in real.values():
        assert entry["sequential"]["cpu"] > 0
        for name in backends:
            b = entry["backends"][name]
            assert b["cpu"] > 0 and b["startup"] > 0 and b["total"] >= b["startup"] + b["work"]
    # forkserver's workers are not this process's children: their CPU time is counted all the same
    assert real["yaml"]["backends"]["forkserver"]["cpu"] > real["yaml"]["backends"]["threads"]["cpu"]

    rows = data["data"]["rows"]
    assert set(rows) == {"lines", "results", "bytes", "contexts", "objects"}
    for row in rows.values():
        assert row["floor"]["total"] > 0 and row["vs_floor"] > 0 and row["best_pool"] != "threads"

    waits = data["wait"]["runs"]
    assert {(x["kind"], x["hogs"], x["backend"]) for x in waits} == {
        (k, h, b) for k in ("roundtrip", "map") for h in (0, 2) for b in ("fork", "threads", "interpool")}
    assert all((x["hogs_cpu"] is not None) == bool(x["hogs"]) for x in waits)

    scaling = data["scaling"]
    cpus = os.cpu_count()
    assert scaling["counts"] == [c for c in (1, 2) if c <= cpus] and scaling["dropped"] == [1024]
    assert f"--workers 1024 left out: this machine has {cpus} CPUs" in r.stdout
    assert set(scaling["workloads"]) == {"regex", "yaml", "day6"}
    assert chart.exists() or "no chart: matplotlib does not import" in r.stdout

    # the combined table's rows, each target with its verdict
    measures = {row["measure"]: row for row in data["summary"]["rows"]}
    cpu_row = measures["A. yaml: CPU-s (x seq), cold speedup"]
    assert cpu_row["verdict"].startswith(("met", "MISSED by x"))
    for name in rows:
        verdict = next(v for m, v in measures.items() if m.startswith(f"B. {name}:"))["verdict"]
        assert verdict.count("met") + verdict.count("MISSED by x") == 2, verdict
    assert "interpool / fastest pool (<= 0.5)" in r.stdout
