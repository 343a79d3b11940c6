"""The source tree the tests check (examples/, benchmarks/, tools/, docs, tests/typing):
the one this directory is in, or $INTERPOOL_SOURCE_DIR when a copy of the tests
runs elsewhere (make test-wheel)."""

import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("INTERPOOL_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
