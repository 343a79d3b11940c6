"""interpool.joblib: joblib's Parallel on interpool's interpreters.

Each test uses joblib as its users do (parallel_config, Parallel, delayed),
with the task functions of joblib_tasks.py, which report the process and the
interpreter they ran in (interpreters.get_current().id; 0 is the main one).
The tests that stop work wait for files that the tasks write (states), never
for a time.
"""

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

joblib = pytest.importorskip(
    "joblib", reason="joblib is not installed (pip install 'interpool[joblib]', or make test, "
    "which installs the test extra)")

from joblib import Parallel, delayed, parallel_config  # noqa: E402

import interpool  # noqa: E402
import interpool.joblib  # noqa: E402
from interpool import interpreters  # noqa: E402
import joblib_tasks  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
JOBLIB_VERSION = tuple(int(p) for p in joblib.__version__.split(".")[:2])


def run_python(code, cwd=None):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def wait_until(condition, what, limit=30.0):
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {limit} s"
        time.sleep(0.01)


# ---------------------------------------------------------------------------
# Packaging
# ---------------------------------------------------------------------------


def test_importing_registers_the_backend():
    from joblib.parallel import BACKENDS

    assert BACKENDS["interpool"] is interpool.joblib.InterpoolBackend


# ---------------------------------------------------------------------------
# Where and how the calls run
# ---------------------------------------------------------------------------


def test_results_in_order_from_workers_of_this_process():
    with parallel_config(backend="interpool", n_jobs=2):
        out = Parallel()(delayed(joblib_tasks.where)(i) for i in range(50))
    assert [x for x, _, _ in out] == list(range(50))
    assert {pid for _, pid, _ in out} == {os.getpid()}
    assert 0 not in {interp for _, _, interp in out}


MAIN_SCRIPT = """
import os
{top}
from interpool import interpreters

def work(x):
    return x * x, os.getpid(), interpreters.get_current().id

if __name__ == "__main__":
    {guarded}
    with parallel_config(backend="interpool", n_jobs=2):
        out = Parallel()(delayed(work)(i) for i in range(20))
    print([r[0] for r in out])
    print({{r[1] for r in out}} == {{os.getpid()}}, 0 in {{r[2] for r in out}})
"""
JOBLIB_IMPORTS = "from joblib import Parallel, delayed, parallel_config; import interpool.joblib"


@pytest.mark.parametrize("imports", ["top", "guarded"])
def test_a_script_with_its_functions_in_main(tmp_path, imports):
    """A program as people write it, the function in the script: workers load
    the script as __mp_main__, and with it joblib, if it is imported at the top."""
    script = tmp_path / "script.py"
    script.write_text(MAIN_SCRIPT.format(top=JOBLIB_IMPORTS if imports == "top" else "",
                                         guarded=JOBLIB_IMPORTS if imports == "guarded" else ""))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    # (On 3.12 joblib cannot be imported in a worker: the script's top-level joblib
    # imports bind placeholders there, which `work` does not touch.)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [str([i * i for i in range(20)]), "True False"]


def test_a_script_without_a_main_guard_is_told(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent("""
        from joblib import Parallel, delayed, parallel_config
        import interpool.joblib

        def work(x):
            return x

        with parallel_config(backend="interpool", n_jobs=2):
            print(Parallel()(delayed(work)(i) for i in range(4)))
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode != 0
    # (On 3.12 the worker cannot import joblib: the `with` of a placeholder says the same.)
    assert 'if __name__ == "__main__":' in out.stderr
    if sys.version_info >= (3, 13):
        assert "RuntimeError: a joblib Parallel call on the interpool backend ran while a worker " \
               "was loading your script" in out.stderr


def test_auto_batching_grows_the_batches_of_fast_calls():
    n = 3000
    with parallel_config(backend="interpool", n_jobs=2):
        parallel = Parallel()  # batch_size="auto"
        out = parallel(delayed(joblib_tasks.square)(i) for i in range(n))
    assert out == [i * i for i in range(n)]
    assert parallel.n_dispatched_tasks == n
    # One call per batch would be n batches: joblib sent each of these to a worker as one task.
    assert parallel.n_dispatched_batches < n // 10


def test_n_jobs_minus_one_is_every_usable_cpu(tmp_path):
    cpus = interpool.usable_cpus()
    with parallel_config(backend="interpool", n_jobs=-1):
        assert joblib.effective_n_jobs() == cpus
        assert joblib.effective_n_jobs(-2) == max(cpus - 1, 1)
        # Each call waits until `cpus` calls run at once: as many workers as CPUs.
        out = Parallel(batch_size=1)(
            delayed(joblib_tasks.meet)(i, cpus, str(tmp_path)) for i in range(cpus))
    assert len(set(out)) == cpus


def test_workers_are_kept_between_parallel_calls(tmp_path):
    seen = []
    for run in range(2):
        folder = tmp_path / str(run)
        folder.mkdir()
        with parallel_config(backend="interpool", n_jobs=2):
            seen.append(set(Parallel(batch_size=1)(
                delayed(joblib_tasks.meet)(i, 2, str(folder)) for i in range(2))))
    assert seen[0] == seen[1] and len(seen[0]) == 2


def test_executor_options(tmp_path):
    with parallel_config(backend="interpool", n_jobs=2, shared={"k": 5}):
        assert Parallel()(delayed(joblib_tasks.read_shared)("k") for _ in range(4)) == [5] * 4
    with pytest.raises(TypeError, match=r"unexpected option\(s\) \['initializer'\]"):
        with parallel_config(backend="interpool", n_jobs=2, initializer=print):
            pass


def test_fallback_process_runs_the_calls_that_import_numpy_in_processes():
    pytest.importorskip("numpy")
    with parallel_config(backend="interpool", n_jobs=2, fallback="process"):
        out = Parallel()(delayed(joblib_tasks.numpy_sum)(n) for n in range(6))
    assert [total for total, _ in out] == [n * (n - 1) // 2 for n in range(6)]
    assert os.getpid() not in {pid for _, pid in out}
    with parallel_config(backend="interpool", n_jobs=2, fallback="process"):
        # Only that function's batches go to processes from then on: every
        # batch ran one function of interpool's, which all followed.
        Parallel()(delayed(joblib_tasks.numpy_sum)(n) for n in range(3))
        assert {pid for _, pid, _ in Parallel()(delayed(joblib_tasks.where)(i) for i in range(6))} == {
            os.getpid()}
    with parallel_config(backend="interpool", n_jobs=2):
        with pytest.raises(interpool.IncompatibleModuleError, match="numpy"):
            Parallel()(delayed(joblib_tasks.numpy_sum)(n) for n in range(6))


def test_n_jobs_one_runs_in_the_calling_thread(monkeypatch):
    # As joblib's own backends do: no worker for a single job, nor an executor
    # asked for. (Not read from interpreters.list_all(): executors that earlier
    # tests keep may replace a worker's interpreter meanwhile.)
    acquired = []
    acquire = interpool.joblib._executors.acquire
    monkeypatch.setattr(interpool.joblib._executors, "acquire",
                        lambda *args: acquired.append(args) or acquire(*args))
    with parallel_config(backend="interpool", n_jobs=1):
        out = Parallel()(delayed(joblib_tasks.where)(i) for i in range(3))
    assert {interp for _, _, interp in out} == {0}
    assert {pid for _, pid, _ in out} == {os.getpid()}
    assert acquired == []


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


def test_the_first_error_is_raised_and_the_other_calls_are_stopped(tmp_path):
    n = 20
    folder = str(tmp_path)

    def started():
        return sorted(int(f.split("-")[1]) for f in os.listdir(folder) if f.startswith("started-"))

    try:
        with parallel_config(backend="interpool", n_jobs=2):
            with pytest.raises(joblib_tasks.TaskFailed, match="item 0 failed"):
                # Every call is sent at once: those no worker has started are pending.
                Parallel(batch_size=1, pre_dispatch="all")(
                    delayed(joblib_tasks.fail_or_block)(i, folder) for i in range(n))
            # The running calls were interrupted: each call that started ends,
            # without the file "release".
            wait_until(lambda: all(os.path.exists(os.path.join(folder, f"ended-{i}"))
                                   for i in started()), "the started calls end")
            joblib_tasks.touch(os.path.join(folder, "release"))
            # The next call's batches queue behind any call of the first that is
            # still pending: once they are done, those have run (and said so).
            assert Parallel()(delayed(joblib_tasks.square)(i) for i in range(10)) == [
                i * i for i in range(10)]
    finally:
        joblib_tasks.touch(os.path.join(folder, "release"))
    ran = started()
    assert 1 in ran and len(ran) <= 2, ran  # item 1, and one its worker took after item 0
    for i in ran:
        with open(os.path.join(folder, f"ended-{i}")) as f:
            assert f.read() == "TaskInterrupted"


def test_an_argument_that_does_not_pickle_is_named():
    lock = threading.Lock()
    with parallel_config(backend="interpool", n_jobs=2):
        with pytest.raises(interpool.NotShareableError) as info:
            Parallel()(delayed(joblib_tasks.square)(x) for x in [1, lock])
    message = str(info.value)
    assert "argument 1 of a call to 'square'" in message
    assert "'lock' object does not pickle" in message


def test_a_lambda_in_delayed():
    def nested(x):
        return -x

    with parallel_config(backend="interpool", n_jobs=2):
        assert Parallel()(delayed(lambda x: x * 2)(i) for i in range(4)) == [0, 2, 4, 6]
        assert Parallel()(delayed(nested)(i) for i in range(3)) == [0, -1, -2]


def test_a_closure_without_cloudpickle_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "cloudpickle", None)  # as if not installed
    k = 2
    with parallel_config(backend="interpool", n_jobs=2):
        with pytest.raises(interpool.NotShareableError) as info:
            Parallel()(delayed(lambda x: x * k)(i) for i in range(4))
    assert "closure" in str(info.value) and "interpool[cloudpickle]" in str(info.value)


# ---------------------------------------------------------------------------
# return_as
# ---------------------------------------------------------------------------


def test_return_as_generator_yields_in_order_and_lazily(tmp_path):
    folder = str(tmp_path)
    n = 30
    pulled = []

    def calls():
        for i in range(n):
            pulled.append(i)
            yield delayed(joblib_tasks.first_or_wait)(i, folder)

    try:
        with parallel_config(backend="interpool", n_jobs=2):
            results = Parallel(return_as="generator", batch_size=1)(calls())
            # Item 0 is there while the other calls wait: yielded before they end,
            # and only the first calls have been read from the input.
            assert next(results) == 0
            assert len(pulled) < n
            joblib_tasks.touch(os.path.join(folder, "release"))
            assert list(results) == list(range(1, n))
    finally:
        joblib_tasks.touch(os.path.join(folder, "release"))


@pytest.mark.skipif(JOBLIB_VERSION < (1, 4), reason="return_as='generator_unordered' is joblib 1.4's")
def test_return_as_generator_unordered_yields_as_calls_end(tmp_path):
    folder = str(tmp_path)
    try:
        with parallel_config(backend="interpool", n_jobs=2):
            results = Parallel(return_as="generator_unordered", batch_size=1)(
                delayed(joblib_tasks.first_or_wait)(i, folder) for i in (1, 0))
            # The call of 1 waits for "release"; 0 ends first and comes first.
            assert next(results) == 0
            joblib_tasks.touch(os.path.join(folder, "release"))
            assert list(results) == [1]
    finally:
        joblib_tasks.touch(os.path.join(folder, "release"))


# ---------------------------------------------------------------------------
# Inside a worker
# ---------------------------------------------------------------------------


@pytest.mark.skipif(sys.version_info < (3, 13),
                    reason="joblib cannot be imported in a sub-interpreter of Python 3.12")
def test_nested_parallel_calls_run_sequentially_in_the_worker():
    with parallel_config(backend="interpool", n_jobs=2):
        out = Parallel(batch_size=1)(delayed(joblib_tasks.nested)(3) for _ in range(4))
    for outer, backend, inner, explicit, warned in out:
        assert outer != 0
        assert backend == "SequentialBackend"
        assert inner == [outer] * 3
        assert explicit == [outer] * 3
        assert any("runs sequentially" in w for w in warned), warned


def test_faulthandler_in_a_worker_says_why_it_is_empty():
    with parallel_config(backend="interpool", n_jobs=2):
        out = Parallel()(delayed(joblib_tasks.call_faulthandler)() for _ in range(2))
    for message in out:
        assert message == "called" or "CPython cannot load faulthandler in a sub-interpreter" in message
