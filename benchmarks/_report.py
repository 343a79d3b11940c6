"""The combined table of `make bench`: every benchmark of one run, with its baselines.

Reads the JSON that each benchmarks/bench_*.py wrote with --json (its "summary":
rows by column, target, verdict; see _common.summary) and prints the machine once,
then one table: a section per script, a row per measure, a column for interpool
and for each baseline that some measure has (threads, processes, loky, the stdlib's
sub-interpreters, the backport, the C++ engine), then target and verdict. A script
that was skipped, failed, or left no readable results gets a line saying so.

Usage (the Makefile's bench target runs it after the scripts):
  .venv/bin/python benchmarks/_report.py RESULTS_DIR [SCRIPT=STATUS ...] [--markdown]

SCRIPT=STATUS names a script run (benchmarks/bench_x.py, whose results are
RESULTS_DIR/bench_x.json) and its exit status, or `skipped`; without any, every
RESULTS_DIR/*.json is reported. The leading underscore keeps `make bench` from
running this file as a benchmark.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import _common  # noqa: E402


class Section:
    """One script's part of the table: its rows, or why it has none."""

    def __init__(self, script: str, status: str | None, path: str) -> None:
        self.script = script
        self.status = status  # exit status as given, "skipped", or None (not given)
        self.path = path
        self.data: dict[str, Any] | None = None
        self.problem: str | None = None  # why there are no rows
        self.rows: list[dict[str, Any]] = []
        self.title = ""
        self.notes: list[str] = []
        self.load()

    def load(self) -> None:
        if self.status == "skipped":
            self.problem = "skipped (not in BENCHES)"
            return
        failed = self.status not in (None, "0")
        if not os.path.exists(self.path):
            self.problem = (f"FAILED (exit status {self.status}) before writing {self.path}: see its output above"
                            if failed else f"no results: {self.path} is missing")
            return
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            summary = data["summary"]
            rows = [r for r in summary["rows"] if isinstance(r.get("measure"), str)
                    and isinstance(r.get("values"), dict)]
            self.title = str(summary.get("title", ""))
            self.notes = [str(n) for n in summary.get("notes", [])]
        except (OSError, ValueError) as e:
            self.problem = f"unreadable results {self.path}: {e}"
            return
        except (KeyError, TypeError, AttributeError) as e:
            self.problem = f"no summary in {self.path} (missing {e}): written by an older version?"
            return
        self.data, self.rows = data, rows
        if failed:
            self.notes.insert(0, f"exited with status {self.status}: some of its numbers are missing "
                                 "(see its output above)")
        if not rows:
            self.problem = f"no rows in the summary of {self.path}"

    def heading(self) -> str:
        name = os.path.basename(self.script)
        if self.problem:
            return f"{name}: {self.problem}"
        bits = [self.title] if self.title else []
        machine = (self.data or {}).get("machine") or {}
        if machine.get("busy_cpus_start") is not None:
            bits.append(f"CPUs busy with other work at its start: {machine['busy_cpus_start']}")
        if ((self.data or {}).get("config") or {}).get("quick"):
            bits.append("--quick")
        if self.status not in (None, "0"):
            bits.append(f"exit status {self.status}")
        return f"{name}: " + "; ".join(bits)


def parse_runs(results: str, runs: list[str]) -> list[Section]:
    if not runs:
        paths = sorted(glob.glob(os.path.join(results, "*.json")))
        return [Section(os.path.splitext(os.path.basename(p))[0] + ".py", None, p) for p in paths]
    sections = []
    for run in runs:
        script, sep, status = run.rpartition("=")
        if not sep or not script:
            raise SystemExit(f"{run!r}: expected SCRIPT=STATUS, e.g. benchmarks/bench_queues.py=0")
        name = os.path.splitext(os.path.basename(script))[0]
        sections.append(Section(script, status, os.path.join(results, name + ".json")))
    return sections


def machine(sections: list[Section]) -> dict[str, Any]:
    """The machine of the first results that have one, else this one (same run, same machine)."""
    for s in sections:
        if s.data and isinstance(s.data.get("machine"), dict):
            return s.data["machine"]
    return _common.machine_info(sample_load=False)


def build(sections: list[Section]) -> tuple[list[str], list[_common.Row], list[list[str]]]:
    """(header, text rows with section titles, Markdown rows)."""
    used = [c for c in _common.COLUMNS if any(c in r["values"] for s in sections for r in s.rows)]
    has_target = any(r.get("target") or r.get("verdict") for s in sections for r in s.rows)
    header = ["measure"] + [_common.COLUMNS[c] for c in used] + (["target", "verdict"] if has_target else [])
    text: list[_common.Row] = []
    markdown: list[list[str]] = []
    blank = [""] * (len(header) - 1)
    for s in sections:
        text.append(s.heading())
        markdown.append([f"**{s.heading()}**"] + blank)
        for r in s.rows:
            cells = [str(r["values"].get(c, "")) for c in used]
            if has_target:
                cells += [str(r.get("target", "")), str(r.get("verdict", ""))]
            text.append(["  " + r["measure"]] + cells)
            markdown.append([r["measure"].strip()] + cells)
    return header, text, markdown


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("results", metavar="RESULTS_DIR", help="where the scripts wrote their JSON")
    ap.add_argument("runs", metavar="SCRIPT=STATUS", nargs="*", help="the scripts run and their exit status")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown too")
    args = ap.parse_args(argv)

    sections = parse_runs(args.results, args.runs)
    print("== every benchmark of this run, with its baselines")
    print(f"machine: {_common.machine_line(machine(sections))}")
    if not sections:
        print(f"no results in {args.results}")
        return 0
    header, text, markdown = build(sections)
    if len(header) == 1:  # no rows at all: only the sections' lines
        for s in sections:
            print(s.heading())
        return 0
    left = (0, -2, -1) if header[-1] == "verdict" else (0,)
    for line in _common.format_table(header, text, left=left):
        print(line)
    notes = [(os.path.basename(s.script), n) for s in sections for n in s.notes]
    for name, note in notes:
        print(f"  {name}: {note}")
    if any(((s.data or {}).get("config") or {}).get("quick") for s in sections):
        print("  --quick: small sizes and few rounds: the verdicts are indicative only")
    if args.markdown:
        print()
        for line in _common.markdown_table(header, markdown, left=left):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
