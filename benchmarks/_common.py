"""What the benchmark scripts share: the machine and its load (interpool.demo.machine,
the description the demo writes too), the options every script takes (--quick,
--json, --repeat), plain-text and Markdown tables, and the summary each script
writes into its JSON for the combined table of `make bench` (benchmarks/_report.py).

The leading underscore keeps `make bench` from running it as a benchmark.
"""

from __future__ import annotations

import argparse
from typing import Any

from interpool.demo.machine import (  # noqa: F401  (the scripts use them as _common.X)
    Load,
    busy_cpus,
    loadavg,
    machine_info,
    machine_line,
    read_text,
    write_json,
)

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


def rss_kib() -> int:
    """This process's resident memory (VmRSS), KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


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
