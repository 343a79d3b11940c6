"""Command line: ``python -m interpool demo`` (the day 6 study) and ``python -m interpool info``.

Errors are one line on stderr, ``error: ...``, without a traceback: exit
status 2 for bad input (options, grid files), 1 when a run goes wrong.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import re
import sys
import sysconfig
import time
from collections.abc import Callable

PROG = "python -m interpool"
MAX_WORKERS = 1024


def worker_counts(text: str) -> list[int]:
    """`1,2,4`, `1-8` or mixes like `1,3-4` -> sorted distinct counts (argparse type)."""
    counts: set[int] = set()
    for item in text.split(","):
        item = item.strip()
        m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", item)
        if not m:
            raise argparse.ArgumentTypeError(
                f"{item!r} is not a worker count or a range (expected e.g. 1,2,4 or 1-8 or 1,3-4)")
        low = int(m[1])
        high = int(m[2]) if m[2] is not None else low
        if low < 1:
            raise argparse.ArgumentTypeError(f"{item!r}: worker counts start at 1")
        if high < low:
            raise argparse.ArgumentTypeError(f"{item!r}: empty range, the end is below the start")
        if high > MAX_WORKERS:
            raise argparse.ArgumentTypeError(f"{item!r}: at most {MAX_WORKERS} workers")
        counts.update(range(low, high + 1))
    return sorted(counts)


def whole_number(low: int, high: int, what: str) -> Callable[[str], int]:
    """An argparse type: a whole number from low to high (`what` names it in errors)."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= n <= high:
            raise argparse.ArgumentTypeError(f"{n}: {what} must be between {low} and {high}")
        return n

    return parse


grid_size = whole_number(8, 1000, "the size")
repeat_count = whole_number(1, 100, "the count")


def plot_file(text: str) -> str:
    if not text.lower().endswith((".svg", ".png")):
        raise argparse.ArgumentTypeError(f"{text!r}: the file name must end in .svg or .png")
    return text


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="interpool: parallel Python on CPython sub-interpreters, each with its own GIL.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from . import usable_cpus

    cpus = usable_cpus()
    demo = sub.add_parser(
        "demo",
        help="time Advent of Code 2024 day 6 part 2 on interpool.Executor",
        description=(
            "Solves Advent of Code 2024 day 6 (part 1, then part 2 sequentially), then times "
            "part 2 on interpool.Executor for each worker count: the grid goes once to each "
            "worker, the candidate cells are mapped with day6.check. Start-up is excluded "
            "from the times and shown apart; speedup is against the sequential solver."
        ),
    )
    source = demo.add_argument_group("input (default: a generated 130x130 grid, seed 2024)")
    source.add_argument("--grid", metavar="FILE", help="your own puzzle input")
    source.add_argument("--size", type=grid_size, metavar="N",
                        help="size of the generated grid (default 130)")
    source.add_argument("--seed", type=int, metavar="N", help="seed of the generated grid (default 2024)")
    # The default goes through worker_counts like a value given on the command line.
    demo.add_argument("--workers", type=worker_counts, default=f"1-{min(cpus + 2, MAX_WORKERS)}",
                      metavar="LIST",
                      help="worker counts: 1,2,4 or 1-8 or 1,3-4 (default %(default)s: "
                           "1 to the usable CPUs + 2)")
    demo.add_argument("--compare", action="store_true",
                      help="also run the workload on threads, processes and the standard library's "
                           "sub-interpreters (and the interpreters-pep-734 backport, if installed), "
                           "and print a table")
    demo.add_argument("--plot", type=plot_file, metavar="FILE",
                      help="write a chart of seconds vs workers (.svg or .png; needs matplotlib: "
                           "pip install 'interpool[demo]')")
    demo.add_argument("--json", metavar="FILE", help="write the raw numbers as JSON")
    demo.add_argument("--repeat", type=repeat_count, default=1, metavar="N",
                      help="time each run N times (a fresh executor each time) and keep the "
                           "fastest (default 1)")
    demo.add_argument("--no-progress", action="store_true",
                      help="no progress bar (there is none anyway when stderr is not a terminal, "
                           "or without rich or tqdm)")
    info = sub.add_parser(
        "info", help="Python build, sub-interpreter support, CPUs, interpool version",
        description="Shows the Python version and build, whether own-GIL sub-interpreters work "
                    "(an interpool.Executor(1) is started to check), the usable CPUs, and interpool's "
                    "version and extension.",
    )
    return parser, {"demo": demo, "info": info}


def main(argv: list[str] | None = None) -> int:
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from .demo.study import StudyError

    try:
        if args.command == "demo":
            if args.grid is not None and (args.size is not None or args.seed is not None):
                commands["demo"].error("--grid reads your input: --size and --seed are for generated grids")
            return demo(args)
        return info()
    except StudyError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def demo(args: argparse.Namespace) -> int:
    from .demo import study
    from .demo.machine import write_json

    if args.plot:
        study.need_matplotlib()  # before the long part
    work = study.load(args.grid, args.size if args.size is not None else 130,
                      args.seed if args.seed is not None else 2024)
    counts = args.workers  # the default too is parsed by worker_counts
    progress = study.Progress(enabled=not args.no_progress)
    chosen, results = study.run_study(work, counts, args.compare, progress, repeat=args.repeat)
    if args.json:
        try:
            write_json(args.json, study.to_json(work, counts, chosen, results, args.repeat))
        except OSError as e:
            raise study.StudyError(f"{args.json}: {e.strerror or e}") from None
    if args.plot:
        study.plot(args.plot, work, counts, chosen, results)
        print(f"wrote {args.plot}")
    return 0


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def info() -> int:
    import interpool
    from interpool import _interpool

    from .demo import study

    status = 0
    gil = "free-threaded" if sysconfig.get_config_var("Py_GIL_DISABLED") else "with the GIL"
    debug = ", debug" if hasattr(sys, "gettotalrefcount") else ""
    build, built_on = platform.python_build()
    print(f"interpool {interpool.__version__}")
    print(f"extension: {_interpool.__file__}")
    print(f"python: {sys.version}")
    print(f"implementation: {sys.implementation.name} {platform.python_version()} "
          f"({sys.implementation.cache_tag}), {gil}{debug}; build {build}, {built_on}; "
          f"{platform.python_compiler()}")
    print(f"executable: {sys.executable}")
    if sys.version_info < (3, 12):
        print("own-GIL sub-interpreters: no (Python 3.12 or later is needed)")
        status = 1
    else:
        try:
            t0 = time.perf_counter()
            with interpool.Executor(1) as ex:
                worker = ex.submit(_interpool.interpreter_id).result(timeout=60)
            seconds = time.perf_counter() - t0
        except Exception as e:  # noqa: BLE001 - reported
            print(f"own-GIL sub-interpreters: no: interpool.Executor(1) failed: {type(e).__name__}: {e}")
            status = 1
        else:
            print(f"own-GIL sub-interpreters: yes (Python 3.12+; interpool.Executor(1) ran a task in "
                  f"interpreter {worker}, this one is {_interpool.interpreter_id()}: {seconds:.3f} s)")
    print(f"CPUs usable: {interpool.usable_cpus()} (of {os.cpu_count()} in the machine)")
    std = study.StdlibInterpreters()
    print(f"stdlib sub-interpreters (demo --compare): {std.note and 'skipped: ' + std.note or std.label}")
    backport = study.Backport()
    print(f"interpreters-pep-734 backport: {backport.note and 'skipped: ' + backport.note or backport.label}")
    print("demo extras: " + ", ".join(f"{d} {_version(d)}" for d in ("rich", "tqdm", "matplotlib")))
    return status


if __name__ == "__main__":
    sys.exit(main())
