"""interpool demo: CPU-bound pure Python on several cores at once.

The same CPU-bound function (counting primes by trial division, pure Python) is
run K times one after the other in the main interpreter, then as K tasks on an
interpool Pool with 1, 2, ... usable_cpus() workers. Each worker is a thread
owning a sub-interpreter with its own GIL, so the tasks really run at the same
time. For each run the table shows:

  wall s      elapsed time for the K tasks (pool start-up excluded)
  speedup     sequential wall time / this wall time (ideal: the number of workers,
              as long as K is a multiple of it)
  CPU/wall    process CPU time (all threads) / wall time: about the number of
              cores busy at once; threads sharing one GIL would stay near 1
  interps     distinct interpreters that ran the tasks

Run it with: .venv/bin/python examples/parallel_demo.py  (`make demo` runs the larger
AoC day 6 study instead: python -m interpool demo)
Options: --tasks K, --seconds S (the sequential run's target duration, default 3;
the task size is calibrated to it), --workers N (largest pool, default usable_cpus()).
The whole demo takes about 3*S seconds. Timings are only meaningful on an otherwise
idle machine: the load average is printed next to the table.

Workers import functions by module and name: this file imports itself as the module
`parallel_demo` in each worker (its folder is put on the workers' sys.path), so
nothing here runs at import time except definitions.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE = "parallel_demo"


def count_primes(limit):
    """Number of primes below `limit`, by trial division: deliberately pure Python."""
    count = 0
    for n in range(2, limit):
        d = 2
        while d * d <= n:
            if n % d == 0:
                break
            d += 1
        else:
            count += 1
    return count


def task(limit):
    """One task: the prime count and the id of the interpreter that computed it."""
    from interpool import _interpool

    return count_primes(limit), _interpool.interpreter_id()


def measure(fn):
    """Runs fn(); returns (its result, wall seconds, process CPU seconds)."""
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    w1, c1 = time.perf_counter(), time.process_time()
    return out, w1 - w0, c1 - c0


def calibrate(seconds_per_task):
    """A `limit` for which count_primes takes about `seconds_per_task` here."""
    limit = 5_000
    while True:
        _, wall, _ = measure(lambda: count_primes(limit))
        if wall > 0.05:
            break
        limit *= 2
    # Trial division up to sqrt(n), primes being ~1/log(n) of the numbers: the cost
    # grows like limit**1.5 / log(limit), i.e. about limit**1.4 over this range.
    return max(1_000, int(limit * (seconds_per_task / wall) ** (1 / 1.4)))


def worker_counts(max_workers):
    if max_workers <= 8:
        return list(range(1, max_workers + 1))
    counts = [1]
    while counts[-1] * 2 < max_workers:
        counts.append(counts[-1] * 2)
    return counts + [max_workers]


def main(argv=None):
    from interpool import _interpool as ip

    cpus = ip.usable_cpus()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=cpus, help=f"largest pool (default {cpus})")
    ap.add_argument("--tasks", type=int, help="K, the number of tasks (default 2 * workers, >= 4)")
    ap.add_argument("--seconds", type=float, default=3.0,
                    help="target duration of the sequential run (default 3)")
    args = ap.parse_args(argv)
    max_workers = max(1, args.workers)
    k = args.tasks or max(4, 2 * max_workers)

    load = os.getloadavg()
    print(f"interpool demo: Python {sys.version.split()[0]}, {cpus} usable CPUs, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if cpus < 2:
        print("(only one usable CPU: no speedup is possible here)")
    limit = calibrate(args.seconds / k)
    print(f"{k} tasks of count_primes({limit}), pure Python\n")

    # Sequential: the main interpreter, one task after the other.
    results, seq_wall, seq_cpu = measure(lambda: [count_primes(limit) for _ in range(k)])
    expected = results[0]

    header = f"{'workers':>7}  {'wall s':>7}  {'speedup':>7}  {'CPU/wall':>8}  {'interps':>7}"
    print(header)
    print("-" * len(header))
    print(f"{'seq':>7}  {seq_wall:7.2f}  {1.0:6.2f}x  {seq_cpu / seq_wall:8.2f}  {1:>7}")

    sys_path = [HERE] + [p for p in sys.path if p != HERE]
    for workers in worker_counts(max_workers):
        pool = ip.Pool(workers, sys_path=sys_path)
        try:
            # Warm-up: each worker imports this module (not part of the timing).
            for t in [pool.submit(MODULE, "task", (100,)) for _ in range(2 * workers)]:
                t.result()

            def run():
                tasks = [pool.submit(MODULE, "task", (limit,)) for _ in range(k)]
                return [t.result() for t in tasks]

            out, wall, cpu = measure(run)
        finally:
            pool.shutdown()
        assert all(count == expected for count, _ in out), out
        interps = len({interp for _, interp in out})
        print(f"{workers:>7}  {wall:7.2f}  {seq_wall / wall:6.2f}x  {cpu / wall:8.2f}  {interps:>7}")

    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"(other work on the machine lowers the speedup)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
