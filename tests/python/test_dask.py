"""interpool.dask: Dask workers whose tasks run on own-GIL interpreters.

In-process clusters (LocalCluster(processes=False), workers preloaded with
interpool.dask) run day 6 part 2 as Dask tasks, exceptions, lambdas and
closures (by value), arguments that cannot cross and a numpy task; then the scheduler and a worker started with
the `dask` command line, as docs/dask.md tells. The routing of a task graph's
functions is also tested on a WorkerExecutor alone. Each task reports the
interpreter it ran in (interpreters.get_current().id; 0 is the process).
"""

import contextlib
import importlib.util
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import dask_tasks
import interpool
from interpool import interpreters
from interpool.demo import day6
from source_tree import ROOT

HERE = os.path.dirname(os.path.abspath(__file__))

needs_distributed = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="Dask's distributed is not installed (pip install 'interpool[dask]', or make test, "
    "which installs the test extra)",
)


def run_python(code, env=None):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, env=env)


# ---------------------------------------------------------------------------
# WorkerExecutor alone: what runs where in a task graph
# ---------------------------------------------------------------------------


@pytest.fixture
def worker_executor():
    from interpool.dask import WorkerExecutor

    ex = WorkerExecutor(2)
    yield ex
    ex.shutdown(wait=True, cancel_futures=True)


def run_node(ex, node, data=None):
    """What a Dask worker does with a task: submits _run_task_simple; the result."""
    from distributed.worker import _run_task_simple

    msg = ex.submit(_run_task_simple, node, data or {}, 0.0).result(timeout=60)
    if msg["op"] != "task-finished":
        raise msg["actual_exception"]
    assert msg["stop"] >= msg["start"]
    return msg["result"]


@needs_distributed
def test_graph_functions_run_on_interpreters_and_the_rest_in_the_process(worker_executor):
    from dask._task_spec import List, Task, TaskRef

    tagged = dask_tasks.tagged
    # A dependency's value and a nested task in a list; then a task as keyword argument.
    node = Task("k", tagged, List(TaskRef("x"), Task(None, tagged, 1), 2))
    [x, (one, inner_id), two], outer_id = run_node(worker_executor, node, {"x": 5})
    assert (x, one, two) == (5, 1, 2)
    assert outer_id != 0 and inner_id != 0

    node = Task("k", dask_tasks.tagged, value=Task(None, dask_tasks.tagged, "v"))
    (value, inner_id), outer_id = run_node(worker_executor, node)
    assert value == "v" and inner_id != 0 and outer_id != 0

    # A lambda and a closure cross by value (cloudpickle).
    scale = 3
    node = Task("k", lambda v: (v * scale, interpreters.get_current().id), 7)
    value, where = run_node(worker_executor, node)
    assert value == 21 and where != 0

    def closure(v):
        return v + scale, interpreters.get_current().id

    value, where = run_node(worker_executor, Task("k", closure, 1))
    assert value == 4 and where != 0

    # A closure over a lock cannot be pickled: it runs in the process.
    lock = threading.Lock()

    def locked(v):
        with lock:
            return v, interpreters.get_current().id

    assert run_node(worker_executor, Task("k", locked, 1)) == (1, 0)
    # Nor can a lock as an argument.
    assert run_node(worker_executor, Task("k", dask_tasks.type_name_where, lock)) == ("lock", 0)


@needs_distributed
def test_fused_subgraph_functions_run_on_interpreters(worker_executor):
    from dask._task_spec import Task, TaskRef, _execute_subgraph

    first = Task("a", dask_tasks.tagged, TaskRef("x"))
    second = Task("b", dask_tasks.tagged, TaskRef("a"))
    fused = Task.fuse(first, second)
    assert fused.func is _execute_subgraph  # dask's own function runs the subgraph
    ((x, first_id), second_id) = run_node(worker_executor, fused, {"x": "in"})
    assert x == "in" and first_id != 0 and second_id != 0


@needs_distributed
def test_other_calls_run_in_the_process(worker_executor):
    # What a worker runs in its executor besides tasks (its disk benchmark...).
    assert worker_executor.submit(dask_tasks.tagged, 1).result(timeout=60) == (1, 0)


@needs_distributed
def test_task_exception_keeps_its_type_and_the_interpreter_traceback(worker_executor):
    from dask._task_spec import Task

    with pytest.raises(dask_tasks.TaskFailed, match="no such cell") as info:
        run_node(worker_executor, Task("k", dask_tasks.fail, "no such cell"))
    assert isinstance(info.value.__cause__, interpool.RemoteError)
    assert "dask_tasks.py" in info.value.__cause__.traceback


@needs_distributed
def test_runs_on_interpreter_rules():
    import functools
    import operator

    from dask._task_spec import _execute_subgraph

    from interpool.dask import runs_on_interpreter

    lock = threading.Lock()

    def locked():
        with lock:
            pass

    assert runs_on_interpreter(dask_tasks.tagged)
    assert runs_on_interpreter(functools.partial(dask_tasks.count_loops_where, "text"))
    assert runs_on_interpreter(day6.count_loops_in)
    assert runs_on_interpreter(lambda: None)                # by value
    assert not runs_on_interpreter(locked)                  # cloudpickle refuses the lock
    assert not runs_on_interpreter(_execute_subgraph)       # Dask's own
    assert not runs_on_interpreter(operator.getitem)        # a builtin
    assert not runs_on_interpreter(len)
    assert not runs_on_interpreter(dict)                    # a class


# ---------------------------------------------------------------------------
# A Dask cluster whose workers run tasks on interpreters
# ---------------------------------------------------------------------------


def interpool_threads():
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("interpool"))


@contextlib.contextmanager
def cluster(n_workers=2, threads_per_worker=2, preload="interpool.dask"):
    """A client of an in-process cluster whose workers are preloaded with
    interpool.dask; on exit, checks that the workers' interpreters and threads
    are gone."""
    from distributed import Client, LocalCluster

    import interpool.dask  # noqa: F401  (before any Dask server: turns Dask's profiler off)

    interps_before = {i.id for i in interpreters.list_all()}
    threads_before = interpool_threads()
    with LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                      processes=False, preload=[preload], dashboard_address=None) as lc:
        with Client(lc) as client:
            yield client
    assert interpool_threads() == threads_before
    assert {i.id for i in interpreters.list_all()} == interps_before


def chunks(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


@needs_distributed
def test_day6_part2_as_dask_tasks():
    text = day6.generate(40, seed=6)
    grid = day6.parse(text)
    candidates = day6.candidates(grid)
    expected = day6.part2(grid)
    assert expected > 0
    with cluster() as client:
        workers = list(client.scheduler_info()["workers"])
        assert len(workers) == 2
        grid_future = client.scatter(text, broadcast=True)  # sent once to each worker
        assert set(client.who_has(grid_future)[grid_future.key]) == set(workers)
        parts = chunks(candidates, 25)
        futures = client.map(dask_tasks.count_loops_where, [grid_future] * len(parts), parts)
        results = client.gather(futures)
        ran_on = {id_ for _, id_ in results}
        assert sum(count for count, _ in results) == expected
        assert 0 not in ran_on, "every chunk runs on an interpreter, none in the process"
        # The workers' interpreters are alive while the cluster is.
        assert ran_on <= {i.id for i in interpreters.list_all()}


@needs_distributed
def test_exception_crosses_back_through_dask():
    with cluster(n_workers=1) as client:
        future = client.submit(dask_tasks.fail, "guard left the grid")
        with pytest.raises(dask_tasks.TaskFailed, match="guard left the grid") as info:
            future.result(timeout=60)
        # The interpreter's traceback comes along as the cause.
        assert isinstance(info.value.__cause__, interpool.RemoteError)
        assert "in fail" in info.value.__cause__.traceback
        # The worker goes on with the next tasks.
        assert client.submit(dask_tasks.tagged, 1).result(timeout=60)[1] != 0


@needs_distributed
def test_lambdas_and_closures_run_on_interpreters_by_value():
    import dask

    offset = 10

    def closure(v):
        return v + offset, interpreters.get_current().id

    with cluster(n_workers=1) as client:
        assert client.submit(lambda: interpreters.get_current().id).result(timeout=60) != 0
        value, where = client.submit(closure, 1).result(timeout=60)
        assert value == 11 and where != 0
        # A delayed graph of both kinds.
        nested = dask.delayed(dask_tasks.tagged)(dask.delayed(closure)(5))
        ((value, inner_id), outer_id) = nested.compute(scheduler=client)
        assert value == 15 and inner_id != 0 and outer_id != 0


@needs_distributed
def test_arguments_that_cannot_cross_run_in_the_worker_process(caplog):
    import dask

    caplog.set_level(logging.INFO, logger="interpool.dask")
    with cluster(n_workers=1) as client:
        with dask.annotate(executor="threads"):
            lock = client.submit(threading.Lock)  # stays on the worker
        future = client.submit(dask_tasks.type_name_where, lock)
        assert future.result(timeout=60) == ("lock", 0)
        assert client.submit(dask_tasks.type_name_where, 1).result(timeout=60)[1] != 0
    assert any("type_name_where" in r.getMessage() and "worker's process" in r.getMessage()
               for r in caplog.records)


@needs_distributed
def test_task_importing_numpy_runs_in_the_worker_process():
    pytest.importorskip("numpy", reason="numpy is not installed")
    with cluster(n_workers=1) as client:
        assert client.submit(dask_tasks.numpy_sum_where, 10).result(timeout=60) == (45, 0)
        # Later tasks of that function go to the process directly; others still cross.
        assert client.submit(dask_tasks.numpy_sum_where, 5).result(timeout=60) == (10, 0)
        assert client.submit(dask_tasks.tagged, 1).result(timeout=60)[1] != 0


@needs_distributed
def test_call_stack_while_a_task_runs_on_an_interpreter():
    # Worker.get_call_stack calls sys._current_frames(), which makes frame objects
    # for every interpreter's threads with the caller's allocator: the process
    # would abort when the task's frame ends. The preloaded worker answers {}.
    with cluster(n_workers=1) as client:
        future = client.submit(dask_tasks.spin, 1.0)
        deadline = time.monotonic() + 30
        while not any(client.processing().values()):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.2)  # the task has started in an interpreter
        assert client.call_stack() == {}
        assert future.result(timeout=60) != 0


@needs_distributed
def test_dask_profiler_running_is_refused():
    import dask
    from distributed import profile

    from interpool.dask import WorkerExecutor

    # A Dask server started before interpool.dask was imported would have started it.
    assert dask.config.get("distributed.worker.profile.enabled") is False
    stopped = threading.Event()
    # A cycle longer than the test: it never samples.
    profile.watch(interval="10ms", cycle="600s", stop=stopped.is_set)
    try:
        with pytest.raises(RuntimeError, match=r"Dask's profiler runs in this process.*"
                           r"Import interpool.dask in the program that starts the cluster"):
            WorkerExecutor(1)
    finally:
        stopped.set()
    deadline = time.monotonic() + 10
    while any(getattr(t, "_target", None) is profile._watch for t in threading.enumerate()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    WorkerExecutor(1).shutdown()


@needs_distributed
def test_preload_of_ones_own_with_executor_options(tmp_path):
    # docs/dask.md: a preload module that passes options to interpool.Executor.
    preload = tmp_path / "interpool_preload.py"
    preload.write_text(textwrap.dedent("""
        import interpool.dask

        def dask_setup(worker):
            interpool.dask.install(worker, task_timeout=0.5)
    """))
    with cluster(n_workers=1, preload=str(preload)) as client:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            client.submit(dask_tasks.spin, 60).result(timeout=60)
        assert time.monotonic() - start < 30
        assert client.submit(dask_tasks.spin, 0.01).result(timeout=60) != 0


@needs_distributed
def test_threads_executor_runs_tasks_that_need_the_worker():
    import dask

    with cluster(n_workers=1) as client:
        (address,) = client.scheduler_info()["workers"]
        with dask.annotate(executor="threads"):
            future = client.submit(dask_tasks.worker_address_where)
        assert future.result(timeout=60) == (address, 0)


# ---------------------------------------------------------------------------
# The command line of docs/dask.md: `dask scheduler`, `dask worker --preload`
# ---------------------------------------------------------------------------


def tail(path, lines=30):
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:])


@needs_distributed
def test_dask_worker_command_line_with_preload(tmp_path):
    from distributed import Client

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (HERE, env.get("PYTHONPATH")) if p)
    scheduler_file = tmp_path / "scheduler.json"
    logs = {name: tmp_path / f"{name}.log" for name in ("scheduler", "worker")}
    procs = {}

    def start(name, *args):
        with open(logs[name], "w") as log:
            procs[name] = subprocess.Popen([sys.executable, "-m", "dask", *args], env=env,
                                           stdout=log, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL)

    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
              "--scheduler-file", str(scheduler_file))
        deadline = time.monotonic() + 60
        address = None
        while address is None:
            assert procs["scheduler"].poll() is None, tail(logs["scheduler"])
            assert time.monotonic() < deadline, "no scheduler file:\n" + tail(logs["scheduler"])
            with contextlib.suppress(OSError, ValueError, KeyError):
                address = json.loads(scheduler_file.read_text())["address"]
            time.sleep(0.1)
        start("worker", "worker", address, "--nthreads", "2", "--preload", "interpool.dask",
              "--no-dashboard")
        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
            text = day6.generate(30, seed=7)
            grid = day6.parse(text)
            grid_future = client.scatter(text, broadcast=True)
            parts = chunks(day6.candidates(grid), 20)
            results = client.gather(
                client.map(dask_tasks.count_loops_where, [grid_future] * len(parts), parts))
            assert sum(count for count, _ in results) == day6.part2(grid)
            assert 0 not in {id_ for _, id_ in results}, tail(logs["worker"])
            with pytest.raises(dask_tasks.TaskFailed, match="from the command line"):
                client.submit(dask_tasks.fail, "from the command line").result(timeout=60)
            # A lambda reaches the worker by value, and an interpreter too.
            assert client.submit(lambda: interpreters.get_current().id).result(timeout=60) != 0
            client.shutdown()  # closes the scheduler and its workers
        for name, proc in procs.items():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pytest.fail(f"dask {name} still runs 60 s after client.shutdown():\n"
                            + tail(logs[name]))
            assert proc.returncode == 0, f"dask {name} exited with {proc.returncode}:\n" + tail(
                logs[name])
        assert "Run preload setup: interpool.dask" in logs["worker"].read_text()
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@needs_distributed
def test_example_script_on_a_cluster_in_the_script():
    example = os.path.join(ROOT, "examples", "dask_day6.py")
    out = subprocess.run([sys.executable, example, "--size", "30", "--chunk", "20",
                          "--threads", "2"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    expected = day6.part2(day6.parse(day6.generate(30)))
    assert f"part 2: {expected} (" in out.stdout
    assert f"sequential solver: {expected}: same" in out.stdout
