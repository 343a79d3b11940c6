"""AoC 2024 day 6 part 2 as Dask tasks, run on interpreters (docs/dask.md).

    python examples/dask_day6.py                    # a Dask cluster in this process
    python examples/dask_day6.py tcp://HOST:8786    # a running cluster whose workers
                                                    # were started with --preload interpool.dask

The grid goes once to each worker (client.scatter(..., broadcast=True)); each
task counts the loops of a chunk of candidate obstructions with
interpool.demo.day6.count_loops_in, which the workers import by name, so it
runs on their interpreters. The answer is checked against the sequential
solver unless --no-check.

Options: --size N (a generated N x N grid, default 130), --grid FILE (a puzzle
input instead), --chunk K (candidates per task, default 100), --threads T (for
the local cluster: its interpreters, default the usable CPUs).
"""

from __future__ import annotations

import argparse
import time

from distributed import Client, LocalCluster

import interpool
import interpool.dask  # noqa: F401  (before any Dask server starts: turns Dask's profiler off)
from interpool.demo import day6


def solve(client: Client, text: str, chunk: int) -> tuple[int, int]:
    """(part 2, number of tasks) on the cluster of `client`."""
    grid = day6.parse(text)
    candidates = day6.candidates(grid)
    chunks = [candidates[i:i + chunk] for i in range(0, len(candidates), chunk)]
    grid_future = client.scatter(text, broadcast=True)
    futures = client.map(day6.count_loops_in, [grid_future] * len(chunks), chunks)
    return sum(client.gather(futures)), len(chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scheduler", nargs="?", help="address of a running scheduler")
    parser.add_argument("--size", type=int, default=130)
    parser.add_argument("--grid", help="a puzzle input file")
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-check", action="store_true")
    args = parser.parse_args()
    if args.grid:
        with open(args.grid) as f:
            text = f.read()
    else:
        text = day6.generate(args.size)

    if args.scheduler:
        client = Client(args.scheduler)
        cluster = None
    else:
        # One worker in this process whose tasks run on interpreters.
        cluster = LocalCluster(n_workers=1, processes=False, dashboard_address=None,
                               threads_per_worker=args.threads or interpool.usable_cpus(),
                               preload=["interpool.dask"])
        client = Client(cluster)
    try:
        threads = sum(w["nthreads"] for w in client.scheduler_info()["workers"].values())
        start = time.perf_counter()
        answer, tasks = solve(client, text, args.chunk)
        seconds = time.perf_counter() - start
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    print(f"part 2: {answer} ({tasks} tasks on {threads} worker threads, {seconds:.2f} s)")
    if not args.no_check:
        expected = day6.part2(day6.parse(text))
        print(f"sequential solver: {expected}: {'same' if answer == expected else 'DIFFERENT'}")
        if answer != expected:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
