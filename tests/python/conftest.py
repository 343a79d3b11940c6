"""Shared set-up for the Python tests.

Workers of a Pool are fresh sub-interpreters: they import task functions by
module name. The helper modules live next to this file, so this directory is
put on sys.path here, and pools are given the parent's sys.path.
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from ext_support import make_pool  # noqa: E402


@pytest.fixture(scope="module")
def pool():
    """A 2-worker pool shared by the tests of one module (created once: creating is slow)."""
    p = make_pool(2)
    yield p
    p.shutdown()


@pytest.fixture
def fresh_pool():
    """Makes pools for one test (make_pool's arguments); all are shut down afterwards."""
    pools = []

    def factory(workers=2, **kwargs):
        p = make_pool(workers, **kwargs)
        pools.append(p)
        return p

    yield factory
    for p in pools:
        p.shutdown(cancel_pending=True)


@pytest.fixture(scope="module")
def ex():
    """A 2-worker interpool.Executor shared by the tests of one module that leave it idle."""
    import interpool

    executor = interpool.Executor(2)
    yield executor
    executor.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def make_executor():
    """Makes executors for one test; all are shut down (queued work cancelled) afterwards."""
    import interpool

    made = []

    def factory(*args, **kwargs):
        e = interpool.Executor(*args, **kwargs)
        made.append(e)
        return e

    yield factory
    for e in made:
        e.shutdown(wait=True, cancel_futures=True)
