"""Shared set-up for the Python tests.

Workers of a Pool are fresh sub-interpreters: they import task functions by
module name. The helper modules live next to this file, so this directory is
put on sys.path here, and pools are given the parent's sys.path.

The source tree (examples/, benchmarks/, the docs) is the one this directory is
in, or $INTERPOOL_SOURCE_DIR when a copy of the tests runs elsewhere (make
test-wheel).

Fixtures: pools (`pool`, `fresh_pool`), executors (`ex`, `make_executor`) and
interpreters of interpool.interpreters (`interp`, `make_interp`, and
`no_interpreter_left_open` for the modules that check that none is left).
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from support import make_pool  # noqa: E402


def pytest_configure(config):
    # `make test-wheel` runs a copy of these tests against an installed wheel and
    # names its site-packages: the package must come from there, not a source tree.
    installed = os.environ.get("INTERPOOL_TEST_INSTALLED")
    if installed:
        import interpool

        where = os.path.realpath(interpool.__file__)
        if not where.startswith(os.path.realpath(installed) + os.sep):
            raise pytest.UsageError(
                f"interpool was imported from {where}, not from the installed wheel in {installed}")


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


def close_quietly(interp):
    """Closes an interpreter of interpool.interpreters unless it is closed already."""
    from interpool import interpreters

    try:
        interp.close()
    except interpreters.InterpreterNotFoundError:
        pass


@pytest.fixture
def interp():
    """A new interpreter (interpool.interpreters.create()), closed after the test."""
    from interpool import interpreters

    made = interpreters.create()
    yield made
    close_quietly(made)


@pytest.fixture
def make_interp():
    """Makes interpreters for one test; all are closed afterwards."""
    from interpool import interpreters

    made = []

    def factory():
        made.append(interpreters.create())
        return made[-1]

    yield factory
    for one in made:
        close_quietly(one)


@pytest.fixture(scope="module")
def no_interpreter_left_open():
    """Fails the module if its tests left interpreters open (and closes them).
    Use: pytestmark = pytest.mark.usefixtures("no_interpreter_left_open")."""
    from interpool import interpreters

    before = {i.id for i in interpreters.list_all()}
    yield
    left = [i for i in interpreters.list_all() if i.id not in before and i.whence == "interpool"]
    for one in left:
        close_quietly(one)
    assert not left, f"interpreters left open by the tests of this module: {left}"
