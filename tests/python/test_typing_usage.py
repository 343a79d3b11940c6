"""tests/typing/usage.py, which `make typecheck` checks with mypy --strict against
the stubs, also runs: what it claims of the API holds at run time."""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from support import run_python  # noqa: E402
from source_tree import ROOT  # noqa: E402

USAGE = os.path.join(ROOT, "tests", "typing", "usage.py")


def test_typing_usage_runs():
    proc, _ = run_python([USAGE], timeout=120)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert proc.stdout.strip().splitlines()[-1] == "usage: ok"
