"""Helpers for the test_executor* modules that run in the test process only
(the functions workers run are in executor_tasks.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "scripts")


def wait_until(condition, timeout=30.0, what="condition"):
    """Polls condition() until it is true; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


class Gates:
    """Files that block executor_tasks.wait_for_file tasks until opened.

    blocker(ex, i) submits a task that marks itself started, then waits for the
    gate; wait_started(n) waits until n blockers run; open() releases them all.
    """

    def __init__(self, directory):
        self.dir = str(directory)
        self.gate = os.path.join(self.dir, "gate")
        self.count = 0

    def started_path(self, i):
        return os.path.join(self.dir, f"started-{i}")

    def blocker(self, ex, value=None):
        i = self.count
        self.count += 1
        return ex.submit(
            _tasks().wait_for_file, self.gate, i if value is None else value, 60.0, self.started_path(i)
        )

    def wait_started(self, n, timeout=30.0):
        wait_until(
            lambda: sum(os.path.exists(self.started_path(i)) for i in range(self.count)) >= n,
            timeout,
            f"{n} blocking tasks to start",
        )

    def open(self):
        with open(self.gate, "w"):
            pass


def on_each_worker(ex, directory, fn, *args):
    """Runs fn(*args) exactly once on each of ex's workers (see executor_tasks.rendezvous);
    returns the results in no particular order."""
    os.makedirs(directory, exist_ok=False)
    n = ex.max_workers
    futures = [ex.submit(_tasks().rendezvous, str(directory), n, fn, *args) for _ in range(n)]
    return [f.result(timeout=60) for f in futures]


def _tasks():
    import executor_tasks

    return executor_tasks


def run_python(args, timeout=60, cwd=None, env_extra=None):
    """Runs this Python with `args` in a child process (tests/python on PYTHONPATH).

    Returns (CompletedProcess, seconds taken).
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([HERE] + [p for p in sys.path if p])
    env["PYTHONFAULTHANDLER"] = "1"
    if env_extra:
        env.update(env_extra)
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
    )
    return proc, time.monotonic() - start


def script(name):
    return os.path.join(SCRIPTS, name)
