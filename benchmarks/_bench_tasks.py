"""Functions that benchmarks/bench_engine.py runs in interpool workers.

Workers import functions by (module, qualname), so they live in this importable
module; the leading underscore keeps `make bench` from running it as a benchmark.
Everything here is pure Python with no imports, so that a worker's first call
costs nothing but the import of this file.
"""


def inc(x):
    """The trivial task: per-task overhead dominates."""
    return x + 1


def spin(n):
    """CPU-bound pure Python: holds its interpreter's GIL for the whole call."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total
