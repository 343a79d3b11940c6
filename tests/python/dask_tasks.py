"""Task functions for test_dask.py.

Module level on purpose: interpreters import them by module and name, and so
do the Dask scheduler and workers of the command-line test (PYTHONPATH). Each
returns the id of the interpreter it ran in: 0 is the worker's process itself.
"""

from interpool import interpreters
from interpool.demo import day6


class TaskFailed(Exception):
    """Raised by fail(): a type the client can import, to check it comes back as itself."""


def where():
    return interpreters.get_current().id


def tagged(value):
    """(value, id of the interpreter this ran in)."""
    return value, interpreters.get_current().id


def count_loops_where(text, obstacles):
    """Day 6 part 2 for a chunk of candidates, and where it ran."""
    return day6.count_loops_in(text, obstacles), interpreters.get_current().id


def fail(message):
    raise TaskFailed(message)


def numpy_sum_where(n):
    import numpy  # refuses sub-interpreters: the task runs in the worker's process

    return int(numpy.arange(n).sum()), interpreters.get_current().id


def worker_address_where():
    """Dask's get_worker() works only in the worker's process (executor "threads")."""
    from distributed import get_worker

    return get_worker().address, interpreters.get_current().id


def type_name_where(obj):
    return type(obj).__name__, interpreters.get_current().id


def spin(seconds):
    """Runs Python code for `seconds`; where it ran."""
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return interpreters.get_current().id
