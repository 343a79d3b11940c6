"""Helpers shared by the test_extension_* modules (not tests themselves)."""

import os
import subprocess
import sys
import textwrap

import interpool._interpool as ip

HERE = os.path.dirname(os.path.abspath(__file__))

#: Module name under which workers find the task functions of tasks_helpers.py.
HELPERS = "tasks_helpers"


def make_pool(workers=2, **kwargs):
    """A Pool whose workers can import what this process can (tests/python included)."""
    kwargs.setdefault("sys_path", list(sys.path))
    return ip.Pool(workers, **kwargs)


def run_script(source, timeout=60, **kwargs):
    """Runs `source` with this Python in a child process; returns the CompletedProcess.

    The child can import interpool and the helper modules of this directory.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([HERE] + [p for p in sys.path if p])
    env["PYTHONFAULTHANDLER"] = "1"
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        **kwargs,
    )


def assert_clean_exit_stderr(text):
    """No crash, no traceback, no ignored exception in a child's stderr."""
    for bad in ("Fatal Python error", "Traceback", "Exception ignored", "Segmentation fault"):
        assert bad not in text, text


def ctrl_c(script, mode, timeout=60):
    """Runs tests/python/scripts/SCRIPT MODE, which prints "ready" before it
    blocks (scripts/sigint_support.py); sends it SIGINT 0.3 s later. Returns
    (the line it printed next, seconds from SIGINT to that line, the rest of its
    output, its stderr, its exit status). A child that hangs is killed after
    `timeout` s."""
    import signal
    import threading
    import time

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts", script)
    proc = subprocess.Popen([sys.executable, path, mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(timeout, proc.kill)  # a child that hangs ends the reads below
    watchdog.start()
    try:
        assert proc.stdout.readline() == "ready\n"
        time.sleep(0.3)  # well inside the blocking call
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        line = proc.stdout.readline()
        delay = time.monotonic() - sent
        out = proc.stdout.read()  # (not communicate(): it would skip what readline buffered)
        err = proc.stderr.read()
        proc.wait(30)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return line, delay, out, err, proc.returncode
