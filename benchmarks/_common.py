"""What the benchmark scripts share: the machine and its load, the options every
script takes (--quick, --json, --repeat), plain-text and Markdown tables, and the
summary each script writes into its JSON for the combined table of `make bench`
(benchmarks/_report.py).

The leading underscore keeps `make bench` from running it as a benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

MIB = 1024 * 1024

# The value columns of the combined table, in order: interpool, then each baseline.
# A summary row names its values by these keys.
COLUMNS = {
    "interpool": "interpool",
    "threads": "threads",
    "processes": "processes",
    "loky": "loky",
    "stdlib": "stdlib interp.",
    "backport": "backport",
    "engine": "C++ engine",
}


# ---------------------------------------------------------------------------
# The machine and its load
# ---------------------------------------------------------------------------


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def rss_kib() -> int:
    """This process's resident memory (VmRSS), KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _stat_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of every CPU, from /proc/stat."""
    text = read_text("/proc/stat")
    if not text:
        return None
    fields = [int(x) for x in text.splitlines()[0].split()[1:]]
    total = sum(fields[:8])
    return total - fields[3] - fields[4], total


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Load:
    """CPU time taken by other processes between creation and others(): busy time
    of every CPU (/proc/stat) minus this process's own (and its reaped children's)."""

    HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self) -> None:
        self.jiffies = _stat_jiffies()
        self.own = _own_cpu()
        self.wall = time.monotonic()

    def others(self) -> dict[str, float] | None:
        now = _stat_jiffies()
        if now is None or self.jiffies is None:
            return None
        busy = (now[0] - self.jiffies[0]) / self.HZ
        wall = time.monotonic() - self.wall
        others = max(0.0, busy - (_own_cpu() - self.own))
        return {"wall_s": round(wall, 2), "other_cpu_s": round(others, 2),
                "other_cpus_avg": round(others / wall, 2) if wall > 0 else 0.0}


def busy_cpus(seconds: float = 1.0) -> float | None:
    """CPUs kept busy by other processes over the next `seconds`.

    Sampled before a benchmark starts, this is a better guide than the load
    average, which lags by a minute.
    """
    load = Load()
    time.sleep(seconds)
    o = load.others()
    return None if o is None else o["other_cpus_avg"]


def machine_info(sample_load: bool = True) -> dict[str, Any]:
    """The machine, the Python, the interpool build and (sample_load) the load now."""
    cpuinfo = read_text("/proc/cpuinfo") or ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor() or "?")
    meminfo = read_text("/proc/meminfo") or ""
    mem_kib = next((int(line.split()[1]) for line in meminfo.splitlines()
                    if line.startswith("MemTotal:")), None)
    osrel = read_text("/etc/os-release") or ""
    pretty = next((line.split("=", 1)[1].strip().strip('"') for line in osrel.splitlines()
                   if line.startswith("PRETTY_NAME=")), platform.system())
    try:
        import interpool
    except ImportError:
        usable, version, module = None, None, None
    else:
        usable, version = interpool.usable_cpus(), interpool.__version__
        module = os.path.dirname(interpool.__file__)
    info: dict[str, Any] = {
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "ram_gib": round(mem_kib / MIB, 1) if mem_kib else None,
        "os": pretty,
        "kernel": platform.release(),
        "platform": platform.platform(),
        "implementation": platform.python_implementation(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "interpool": version,
        "interpool_module": module,
    }
    if sample_load:
        info["loadavg_start"] = loadavg()
        info["busy_cpus_start"] = busy_cpus()
    return info


def machine_line(info: dict[str, Any]) -> str:
    """One line: CPU, CPUs, RAM, OS, Python, interpool."""
    return (f"{info.get('cpu_model', '?')}, {info.get('cpu_count', '?')} CPUs "
            f"({info.get('usable_cpus', '?')} usable), {info.get('ram_gib', '?')} GiB RAM, "
            f"{info.get('os', '?')}, Linux {info.get('kernel', '?')}; "
            f"Python {info.get('python', '?')} ({info.get('python_executable', '?')}), "
            f"interpool {info.get('interpool', '?')}")


def print_machine(title: str, info: dict[str, Any], quick: bool, workers: int | None = None) -> None:
    """The heading of a script's output: the machine, its load, and warnings when
    parallel numbers cannot be meaningful (fewer usable CPUs than `workers`, other
    work running)."""
    print(f"{title}{' (--quick)' if quick else ''}")
    print(f"  {machine_line(info)}")
    print(f"  before the run: load average {info.get('loadavg_start')}, "
          f"CPUs busy with other work (1 s sample) {info.get('busy_cpus_start')}")
    usable = info.get("usable_cpus")
    if workers is not None and usable is not None and usable < workers:
        print(f"  WARNING: fewer than {workers} usable CPUs: no parallel speedup is possible")
    busy = info.get("busy_cpus_start")
    if busy is None and info.get("loadavg_start"):
        busy = info["loadavg_start"][0]
    if busy is not None and busy > 0.25:
        print("  WARNING: other work is running: parallel numbers will be low and noisy")


# ---------------------------------------------------------------------------
# Options and output
# ---------------------------------------------------------------------------


def parser(doc: str, quick: str, repeat: str, epilog: bool = False) -> argparse.ArgumentParser:
    """An argument parser with the options every script takes (the ones `make bench`
    passes): --quick, --json FILE and --repeat R; `quick` and `repeat` are their help."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0], epilog=doc if epilog else None,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help=quick)
    ap.add_argument("--json", metavar="FILE",
                    help="also write every number to FILE (with the summary rows that "
                         "benchmarks/_report.py puts in the combined table)")
    ap.add_argument("--repeat", type=int, help=repeat)
    return ap


def write_json(path: str, data: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    print(f"wrote {path}")


Row = list[str] | str  # a str row is a section title, printed as it is


def format_table(header: list[str], rows: list[Row], left: tuple[int, ...] = (0, -1)) -> list[str]:
    """Lines of a plain-text table: columns `left` aligned left, the others right."""
    cells = [r for r in rows if not isinstance(r, str)]
    n = len(header)
    left_cols = {i % n for i in left}
    widths = [max(len(r[i]) for r in [header] + cells) for i in range(n)]

    def fmt(r: list[str]) -> str:
        return "  ".join(v.ljust(w) if i in left_cols else v.rjust(w)
                         for i, (v, w) in enumerate(zip(r, widths))).rstrip()

    line = "-" * max(len(fmt(r)) for r in [header] + cells)
    return [fmt(header), line] + [r if isinstance(r, str) else fmt(r) for r in rows] + [line]


def markdown_table(header: list[str], rows: list[list[str]], left: tuple[int, ...] = (0, -1)) -> list[str]:
    """Lines of a Markdown table: columns `left` aligned left, the others right."""
    left_cols = {i % len(header) for i in left}
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" if i in left_cols else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


# ---------------------------------------------------------------------------
# The summary: what the combined table shows of a script
# ---------------------------------------------------------------------------


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def summary_row(measure: str, values: dict[str, str], target: str = "", verdict: str = "") -> dict[str, Any]:
    """One row of the combined table: `values` by COLUMNS key ("skipped", "failed",
    ... where a backend did not run; a missing key: the measure has no such column)."""
    unknown = set(values) - set(COLUMNS)
    if unknown:
        raise ValueError(f"summary row {measure!r}: unknown columns {sorted(unknown)}")
    return {"measure": measure, "values": values, "target": target, "verdict": verdict}


def summary(title: str, rows: list[dict[str, Any]], notes: list[str] | None = None) -> dict[str, Any]:
    """The "summary" entry of a script's JSON: a title for its section of the combined
    table, its rows (summary_row) and notes printed under the table."""
    return {"title": title, "rows": rows, "notes": notes or []}
