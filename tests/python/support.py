"""Helpers of the tests that run in the test process only: waiting on state,
blocking tasks, extension pools, child processes (the functions workers run are
in the *_tasks.py modules).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import interpool._interpool as ip

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "scripts")

#: Module name under which workers find the task functions of ext_tasks.py.
EXT_TASKS = "ext_tasks"


def wait_until(condition, timeout=30.0, what="condition"):
    """Polls condition() until it is true; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def asleep(native_id, pid="self"):
    """True when the thread `native_id` of process `pid` (this one unless given)
    sleeps in the kernel (a blocking wait; Linux's /proc state S or D)."""
    try:
        with open(f"/proc/{pid}/task/{native_id}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False  # ended
    return stat[stat.rindex(")") + 2] in "SD"


def child_blocked(proc):
    """True when the main thread of the child process `proc` (a Popen) sleeps in
    the kernel: once it has printed that it is about to block, in that call."""
    return asleep(proc.pid, proc.pid)


def block_in(fn, *args, **kwargs):
    """Calls fn(*args, **kwargs) on a new thread and returns that thread once the
    call sleeps in the kernel (the thread has nothing else to do, so asleep means
    blocked in fn). The thread's `outcome` list gets fn's result, or the exception
    it raised; a call that ends at once is returned too (check `outcome`)."""
    outcome = []
    calling = threading.Event()

    def run():
        calling.set()  # from here on, nothing but the call can put this thread to sleep
        try:
            outcome.append(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - returned for the caller to check
            outcome.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.outcome = outcome
    t.start()
    calling.wait(30)
    wait_until(lambda: outcome or asleep(t.native_id), what=f"{getattr(fn, '__qualname__', fn)} to block")
    return t


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


def worker_threads(ex, directory):
    """Native ids of ex's worker threads, one per worker (see on_each_worker)."""
    return on_each_worker(ex, directory, threading.get_native_id)


def _tasks():
    import executor_tasks

    return executor_tasks


def make_pool(workers=2, **kwargs):
    """An extension Pool whose workers can import what this process can (tests/python included)."""
    kwargs.setdefault("sys_path", list(sys.path))
    return ip.Pool(workers, **kwargs)


def worker_thread(pool):
    """Native id of the one worker thread of `pool` (a 1-worker extension Pool),
    once that worker has imported ext_tasks: from then on, while it runs a task
    of ext_tasks, asleep means blocked in a wait of that task."""
    assert pool.size == 1, pool.size
    pool.submit(EXT_TASKS, "add", (0, 0)).result(30)
    return pool.submit("threading", "get_native_id", ()).result(30)


def _child_env(extra=None):
    """This process's environment for a child Python that can import interpool and
    the modules of this directory, with faulthandler on."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([HERE] + [p for p in sys.path if p])
    env["PYTHONFAULTHANDLER"] = "1"
    if extra:
        env.update(extra)
    return env


def run_python(args, timeout=60, cwd=None, env_extra=None):
    """Runs this Python with `args` in a child process (tests/python on PYTHONPATH).

    Returns (CompletedProcess, seconds taken).
    """
    env = _child_env(env_extra)
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


def run_script(source, timeout=60, **kwargs):
    """Runs `source` with this Python in a child process; returns the CompletedProcess.

    The child can import interpool and the helper modules of this directory.
    """
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_child_env(),
        **kwargs,
    )


def assert_clean_exit_stderr(text):
    """No crash, no traceback, no ignored exception in a child's stderr."""
    for bad in ("Fatal Python error", "Traceback", "Exception ignored", "Segmentation fault"):
        assert bad not in text, text


def ctrl_c(script, mode, timeout=60):
    """Runs tests/python/scripts/SCRIPT MODE, which prints "ready" before it
    blocks (scripts/sigint_support.py); sends it SIGINT once its main thread
    sleeps in the blocking call. Returns
    (the line it printed next, seconds from SIGINT to that line, the rest of its
    output, its stderr, its exit status). A child that hangs is killed after
    `timeout` s."""
    proc = subprocess.Popen([sys.executable, os.path.join(SCRIPTS, script), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(timeout, proc.kill)  # a child that hangs ends the reads below
    watchdog.start()
    try:
        assert proc.stdout.readline() == "ready\n"
        wait_until(lambda: child_blocked(proc) or proc.poll() is not None, timeout,
                   "the child to block")
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
