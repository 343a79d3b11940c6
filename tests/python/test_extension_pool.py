"""interpool._interpool.Pool and Task: results, errors, sub-interpreters,
initializers, shutdown, threads, and the exit hook."""

import concurrent.futures
import fractions
import math
import os
import sys
import threading
import time

import pytest

import interpool._interpool as ip
import ext_tasks
from support import (EXT_TASKS, HERE, assert_clean_exit_stderr, block_in, make_pool, run_script,
                     wait_until)

SLACK = 1.0


def result_or_name(task, timeout=30):
    """The task's result, or the name of the exception type it ended with."""
    try:
        return task.result(timeout)
    except BaseException as e:  # noqa: BLE001
        return type(e).__name__


def run_everywhere(pool, qualname="rendezvous", timeout=30):
    """Runs one `qualname(started, release)` task per worker, all at the same time.

    Returns what each reported on `started` (one item per worker).
    """
    started, release = ip.Queue.create(), ip.Queue.create()
    tasks = [pool.submit(EXT_TASKS, qualname, (started, release)) for _ in range(pool.size)]
    reports = [started.get(timeout=timeout) for _ in tasks]
    for _ in tasks:
        release.put(None)
    for t in tasks:
        t.result(timeout)
    return reports


# ---------------------------------------------------------------------------
# Results and arguments
# ---------------------------------------------------------------------------


def test_simple_results(pool):
    assert pool.submit(EXT_TASKS, "add", (2, 3)).result(30) == 5
    assert pool.submit(EXT_TASKS, "add", ("a", "b")).result(30) == "ab"
    assert pool.submit(EXT_TASKS, "square", (2**70,)).result(30) == 2**140


def test_args_and_kwargs(pool):
    out = pool.submit(EXT_TASKS, "echo", (1, "two", None), {"k": [3], "big": 2**65}).result(30)
    assert out == [(1, "two", None), {"k": [3], "big": 2**65}]
    assert pool.submit(EXT_TASKS, "add", (), {"a": 1, "b": 2}).result(30) == 3
    assert pool.submit(EXT_TASKS, "add", kwargs={"b": 2, "a": 40}).result(30) == 42
    assert pool.submit(EXT_TASKS, "echo").result(30) == [(), {}]
    assert pool.submit(module=EXT_TASKS, qualname="echo", args=(1,), kwargs=None).result(30) == [(1,), {}]


def test_argument_types_arrive_exactly(pool):
    args = (1, 2**70, 1.5, 2j, "s\ud800", b"b", bytearray(b"a"), (1,), [1], {1: 2}, {1}, frozenset(), None, True)
    kinds, kw = pool.submit(EXT_TASKS, "describe", args, {"f": fractions.Fraction(1, 2)}).result(30)
    assert kinds == [type(a).__name__ for a in args]
    assert kw == {"f": "Fraction"}


def test_result_types_come_back_exactly(pool):
    args = ({"a": (1, [2, {3}])}, 2**100, -0.0, "\udfff", bytearray(b"x"), fractions.Fraction(5, 3))
    for a in args:
        out = pool.submit(EXT_TASKS, "echo", (a,)).result(30)[0][0]
        assert type(out) is type(a)
        assert out == a or (isinstance(a, float) and math.copysign(1, out) == math.copysign(1, a))


def test_static_class_and_nested_methods(pool):
    assert pool.submit(EXT_TASKS, "Calc.triple", (4,)).result(30) == 12
    assert pool.submit(EXT_TASKS, "Calc.scale", (5,)).result(30) == 15
    assert pool.submit(EXT_TASKS, "Calc.Inner.negate", (6,)).result(30) == -6


def test_builtin_and_stdlib_functions(pool):
    assert pool.submit("math", "factorial", (30,)).result(30) == math.factorial(30)
    assert pool.submit("builtins", "sorted", ([3, 1, 2],)).result(30) == [1, 2, 3]
    assert pool.submit("builtins", "divmod", (17, 5)).result(30) == (3, 2)
    assert pool.submit("operator", "mul", (6, 7)).result(30) == 42
    assert pool.submit("fractions", "Fraction", (3, 6)).result(30) == fractions.Fraction(1, 2)


def test_result_twice_and_from_threads(pool):
    task = pool.submit(EXT_TASKS, "sleep_then", (0.1, {"v": [1]}))
    outs = []
    threads = [threading.Thread(target=lambda: outs.append(task.result(30))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    outs.append(task.result(30))
    assert outs == [{"v": [1]}] * 5
    assert outs[0] is not outs[1]  # each call builds its own object


def test_done_and_result_timeout(pool):
    task = pool.submit(EXT_TASKS, "sleep_then", (0.4, "late"))
    assert not task.done()
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        task.result(timeout=0.05)
    took = time.monotonic() - t0
    assert 0.05 <= took < 0.05 + SLACK
    assert task.result(30) == "late"
    assert task.done()
    with pytest.raises(ValueError):
        task.result(timeout=-1)


@pytest.mark.parametrize("timeout", [1e10, float("inf")])
def test_result_huge_timeout_waits(pool, timeout):
    task = pool.submit(EXT_TASKS, "sleep_then", (0.2, "v"))
    try:
        out = task.result(timeout)
    except (OverflowError, ValueError):
        out = "refused"
    except TimeoutError:
        out = "gave up at once"
    finally:
        task.result(30)
    assert out in ("v", "refused")


def test_take_claims_an_outcome_once(fresh_pool):
    # With a token, an outcome goes to whichever of Task.take() and
    # completions() claims it first; the other never sees it.
    p = fresh_pool(1)
    taken = p.submit(EXT_TASKS, "add", (1, 2), token=1)
    assert taken.take(30) == (True, 3)
    assert taken.take(30) is None
    with pytest.raises(RuntimeError, match="delivered"):
        taken.result(0)
    failed = p.submit(EXT_TASKS, "raise_value_error", ("boom",), token=2)
    ok, exc = failed.take(30)
    assert ok is False and isinstance(exc, ValueError)
    collected = p.submit(EXT_TASKS, "add", (2, 3), token=3)
    batch = []
    while not batch:
        batch = p.completions(30)
    assert batch == [(3, True, 5)]  # tokens 1 and 2 were claimed by take()
    assert collected.take(0) is None
    p.close()
    assert p.completions(30) is None


def test_take_timeout_and_cancel(fresh_pool):
    p = fresh_pool(1)
    started, release = ip.Queue.create(), ip.Queue.create()
    blocker = p.submit(EXT_TASKS, "rendezvous", (started, release), token=1)
    started.get(timeout=30)
    queued = p.submit(EXT_TASKS, "add", (1, 2), token=2)
    with pytest.raises(TimeoutError):
        queued.take(0.05)
    t = block_in(queued.take, 60)
    assert not t.outcome
    assert queued.cancel()
    t.join(10)
    assert t.outcome == [None]  # cancelled: the outcome comes when a worker dequeues it
    release.put(None)
    assert blocker.take(30)[0] is True
    p.close()
    got = []
    while (batch := p.completions(30)) is not None:
        got += batch
    assert [(token, type(payload).__name__) for token, _ok, payload in got] == [
        (2, "CancelledError")]


def test_task_type_cannot_be_instantiated():
    with pytest.raises(TypeError):
        ip.Task()


# ---------------------------------------------------------------------------
# Errors raised by tasks
# ---------------------------------------------------------------------------


def test_builtin_exception_same_type_with_remote_traceback(pool):
    with pytest.raises(ValueError, match="^boom$") as info:
        pool.submit(EXT_TASKS, "raise_value_error", ("boom",)).result(30)
    exc = info.value
    assert type(exc) is ValueError
    cause = exc.__cause__
    assert isinstance(cause, ip.RemoteError)
    text = str(cause)
    assert "Traceback" in text
    assert "raise_value_error" in text  # the worker's function
    assert "ext_tasks.py" in text
    assert "ValueError: boom" in text
    assert cause.traceback and "raise_value_error" in cause.traceback
    assert cause.type_name == "ValueError"
    assert cause.message == "boom"


def test_user_defined_exception(pool):
    with pytest.raises(ext_tasks.HelperError, match="custom") as info:
        pool.submit(EXT_TASKS, "raise_helper_error", ("custom",)).result(30)
    assert type(info.value) is ext_tasks.HelperError
    assert "raise_helper_error" in str(info.value.__cause__)
    assert info.value.__cause__.type_name == "ext_tasks.HelperError"


def test_chained_exception_traceback(pool):
    with pytest.raises(RuntimeError, match="outer failure") as info:
        pool.submit(EXT_TASKS, "raise_chained").result(30)
    text = info.value.__cause__.traceback
    assert "KeyError" in text and "missing" in text
    assert "direct cause" in text
    assert "raise_chained" in text


def test_unpicklable_exception_becomes_remote_error(pool):
    with pytest.raises(ip.RemoteError) as info:
        pool.submit(EXT_TASKS, "raise_local_error", ("local message",)).result(30)
    exc = info.value
    assert type(exc) is ip.RemoteError
    assert exc.type_name == "ext_tasks.raise_local_error.<locals>.LocalError"
    assert exc.message == "local message"
    assert "Traceback" in exc.traceback
    assert "raise_local_error" in exc.traceback
    assert "LocalError: local message" in exc.traceback
    assert "local message" in str(exc)
    assert "LocalError" in str(exc)


def test_exception_that_cannot_be_rebuilt_becomes_remote_error(pool):
    # It pickles, but unpickling fails (its __init__ needs two arguments).
    with pytest.raises(ip.RemoteError) as info:
        pool.submit(EXT_TASKS, "raise_two_arg_error", ("first", "second")).result(30)
    assert info.value.type_name == "ext_tasks.TwoArgError"
    assert info.value.message == "first"
    assert "raise_two_arg_error" in info.value.traceback


def test_not_shareable_error_raised_in_worker(pool):
    with pytest.raises(ip.NotShareableError, match="does not pickle") as info:
        pool.submit(EXT_TASKS, "make_not_shareable_inside").result(30)
    assert type(info.value) is ip.NotShareableError  # this interpreter's class
    assert "make_not_shareable_inside" in str(info.value.__cause__)


def test_interpool_exception_raised_in_worker_keeps_its_type(pool):
    with pytest.raises(ip.QueueEmpty):
        pool.submit(EXT_TASKS, "raise_queue_empty").result(30)


@pytest.mark.parametrize(
    "name",
    [
        "NotShareableError",
        "RemoteError",
        "InterpreterError",
        "BrokenInterpreterPool",
        "QueueEmpty",
        "QueueFull",
        "QueueClosed",
        "ItemInterpreterDestroyed",
    ],
)
def test_extension_exceptions_pickle(name):
    # Task exceptions cross back by pickle: the extension's own must pickle too.
    import pickle

    cls = getattr(ip, name)
    out = pickle.loads(pickle.dumps(cls("message")))
    assert type(out) is cls
    assert str(out) == "message"


def test_remote_error_for_interpool_exception_describes_it(pool):
    # Whatever the type it comes back as, the description must be there.
    with pytest.raises(Exception) as info:
        pool.submit(EXT_TASKS, "raise_queue_empty").result(30)
    exc = info.value
    described = getattr(exc, "type_name", None) or type(exc).__name__
    assert "QueueEmpty" in described
    assert "empty" in str(exc)


def test_base_exceptions_do_not_kill_the_worker(fresh_pool):
    p = fresh_pool(1)
    with pytest.raises(SystemExit) as info:
        p.submit(EXT_TASKS, "raise_system_exit").result(30)
    assert info.value.code == 3
    with pytest.raises(KeyboardInterrupt):
        p.submit(EXT_TASKS, "raise_keyboard_interrupt").result(30)
    # The same worker (there is only one) goes on running tasks.
    assert p.submit(EXT_TASKS, "add", (1, 1)).result(30) == 2


def test_missing_module(pool):
    with pytest.raises(ModuleNotFoundError, match="no_such_module_for_interpool"):
        pool.submit("no_such_module_for_interpool", "f").result(30)


def test_missing_function(pool):
    with pytest.raises(AttributeError, match="no_such_function"):
        pool.submit(EXT_TASKS, "no_such_function").result(30)
    with pytest.raises(AttributeError, match="missing"):
        pool.submit(EXT_TASKS, "Calc.missing").result(30)


def test_not_callable(pool):
    with pytest.raises(TypeError, match="not callable"):
        pool.submit(EXT_TASKS, "NOT_CALLABLE").result(30)


def test_wrong_arguments_raise_type_error(pool):
    with pytest.raises(TypeError):
        pool.submit(EXT_TASKS, "add", (1,)).result(30)


def test_unshareable_result(pool):
    with pytest.raises(ip.NotShareableError) as info:
        pool.submit(EXT_TASKS, "return_lock").result(30)
    assert "the result" in str(info.value)
    assert "does not pickle" in str(info.value)
    with pytest.raises(ip.NotShareableError) as info:
        pool.submit(EXT_TASKS, "return_nested_unshareable").result(30)
    assert "the result['bad'][1]" in str(info.value)


def test_pool_survives_errors(pool):
    for qualname in ("raise_value_error", "no_such_function", "return_lock"):
        t = pool.submit(EXT_TASKS, qualname, ("x",) if qualname == "raise_value_error" else ())
        with pytest.raises(Exception):
            t.result(30)
    assert pool.submit(EXT_TASKS, "add", (20, 22)).result(30) == 42


# ---------------------------------------------------------------------------
# Errors at submit
# ---------------------------------------------------------------------------


def test_unshareable_arguments_are_named(pool):
    with pytest.raises(ip.NotShareableError) as info:
        pool.submit(EXT_TASKS, "add", (1, threading.Lock()))
    assert "argument 2" in str(info.value)
    assert "does not pickle" in str(info.value)
    with pytest.raises(ip.NotShareableError) as info:
        pool.submit(EXT_TASKS, "add", (1,), {"b": [0, threading.Lock()]})
    assert "keyword argument 'b'" in str(info.value)
    assert "[1]" in str(info.value)
    a = []
    a.append(a)
    with pytest.raises(ip.NotShareableError, match="cycle"):
        pool.submit(EXT_TASKS, "echo", (a,))


def test_bad_submit_arguments(pool):
    with pytest.raises(TypeError):
        pool.submit(1, "f")
    with pytest.raises(TypeError):
        pool.submit(EXT_TASKS, None)
    with pytest.raises(TypeError, match="tuple"):
        pool.submit(EXT_TASKS, "add", [1, 2])
    with pytest.raises(TypeError, match="dict"):
        pool.submit(EXT_TASKS, "add", (1, 2), [("a", 1)])
    with pytest.raises(TypeError):
        pool.submit(EXT_TASKS, "echo", (), {1: "non-str key"})


def test_bad_pool_arguments():
    with pytest.raises(ValueError):
        ip.Pool(-1)
    with pytest.raises(TypeError):
        ip.Pool(1, sys_path=[HERE, 42])
    with pytest.raises(TypeError):
        ip.Pool(1, sys_path=42)
    with pytest.raises(TypeError):
        ip.Pool(1, initializers=[("only_module",)])
    with pytest.raises(ip.NotShareableError):
        ip.Pool(1, initializers=[(EXT_TASKS, "set_state", (threading.Lock(),), {})])


# ---------------------------------------------------------------------------
# Sub-interpreters
# ---------------------------------------------------------------------------


def test_main_interpreter_id_is_zero():
    assert ip.interpreter_id() == 0


def test_tasks_run_in_distinct_sub_interpreters(fresh_pool):
    p = fresh_pool(3)
    assert p.size == 3
    ids = run_everywhere(p)
    assert len(ids) == 3
    assert all(i > 0 for i in ids)
    assert len(set(ids)) == 3  # one interpreter per worker, all running at once


def test_worker_module_state_is_its_own(pool):
    theirs = pool.submit(EXT_TASKS, "module_identity").result(30)
    assert theirs["interpreter"] > 0
    assert theirs["module"] != id(ip)
    assert theirs["Queue"] != id(ip.Queue)
    assert theirs["QueueEmpty"] != id(ip.QueueEmpty)
    assert theirs["NotShareableError"] != id(ip.NotShareableError)


def test_workers_default_size():
    assert ip.usable_cpus() >= 1
    p = ip.Pool()
    try:
        assert p.size == ip.usable_cpus()
    finally:
        p.shutdown()
    p = ip.Pool(0)
    try:
        assert p.size == ip.usable_cpus()
    finally:
        p.shutdown()


def test_usable_cpus_matches_affinity():
    assert ip.usable_cpus() == len(os.sched_getaffinity(0))


def test_nested_pool_inside_a_worker(fresh_pool):
    p = fresh_pool(1)
    worker_id, value = p.submit(EXT_TASKS, "nested_pool_factorial", (12,)).result(60)
    assert worker_id > 0
    assert value == math.factorial(12)


# ---------------------------------------------------------------------------
# sys_path
# ---------------------------------------------------------------------------


def test_sys_path_is_given_to_workers(fresh_pool):
    path = [HERE, "/nonexistent/interpool-test-dir"] + [p for p in sys.path if p != HERE]
    p = fresh_pool(1, sys_path=path)
    assert p.submit(EXT_TASKS, "worker_sys_path").result(30) == path


def test_without_sys_path_workers_cannot_see_test_helpers(fresh_pool):
    p = ip.Pool(1)
    try:
        default_path = p.submit("builtins", "eval", ("__import__('sys').path", {})).result(30)
        assert isinstance(default_path, list) and default_path
        if HERE in default_path:
            pytest.skip("tests/python is on the default path of new interpreters here")
        with pytest.raises(ModuleNotFoundError, match=EXT_TASKS):
            p.submit(EXT_TASKS, "add", (1, 2)).result(30)
    finally:
        p.shutdown()
    # ... and they can with sys_path.
    p2 = fresh_pool(1, sys_path=[HERE] + default_path)
    assert p2.submit(EXT_TASKS, "add", (1, 2)).result(30) == 3


# ---------------------------------------------------------------------------
# Initializers
# ---------------------------------------------------------------------------


def test_initializer_runs_once_in_each_worker(fresh_pool):
    p = fresh_pool(2, initializers=[(EXT_TASKS, "set_state", ("configured",), {"suffix": "!"})])
    reports = run_everywhere(p, "state_rendezvous")
    ids = sorted(r[0] for r in reports)
    assert len(set(ids)) == 2
    for interp, state, calls in reports:
        assert state == ("configured", "!", interp)  # set in that very interpreter
        assert calls == 1


def test_initializers_run_in_order(fresh_pool):
    p = fresh_pool(
        1,
        initializers=[
            (EXT_TASKS, "set_state", ("first",)),  # args and kwargs may be left out
            (EXT_TASKS, "set_state", ("second",), {"suffix": "x"}),
        ],
    )
    state, calls, interp = p.submit(EXT_TASKS, "get_state").result(30)
    assert state == ("second", "x", interp)
    assert calls == 2


def test_main_interpreter_state_untouched(fresh_pool):
    p = fresh_pool(1, initializers=[(EXT_TASKS, "set_state", ("worker only",), {})])
    assert p.submit(EXT_TASKS, "get_state").result(30)[0][0] == "worker only"
    assert ext_tasks.STATE is None


@pytest.mark.parametrize(
    "initializer, type_name, message",
    [
        ((EXT_TASKS, "failing_initializer", ("init exploded",), {}), "ValueError", "init exploded"),
        (("no_such_module_for_interpool", "f", (), {}), "ModuleNotFoundError", "no_such_module_for_interpool"),
        ((EXT_TASKS, "no_such_function", (), {}), "AttributeError", "no_such_function"),
    ],
)
def test_failing_initializer_breaks_the_pool(fresh_pool, initializer, type_name, message):
    assert issubclass(ip.BrokenInterpreterPool, concurrent.futures.BrokenExecutor)
    p = fresh_pool(2, initializers=[initializer])
    tasks = []
    for i in range(5):
        try:
            tasks.append(p.submit(EXT_TASKS, "add", (i, i)))
        except ip.BrokenInterpreterPool:
            pass  # the pool may already be known broken
    for t in tasks:
        with pytest.raises(ip.BrokenInterpreterPool) as info:
            t.result(30)
        assert type_name in str(info.value)
        assert message in str(info.value)
    # Once a task has ended broken (or submit refused), later submits raise.
    with pytest.raises(ip.BrokenInterpreterPool) as info:
        p.submit(EXT_TASKS, "add", (1, 1))
    assert message in str(info.value)
    p.shutdown()


def test_broken_pool_later_submit_raises_right_away(fresh_pool):
    p = fresh_pool(1, initializers=[(EXT_TASKS, "failing_initializer", (), {})])
    try:
        t = p.submit(EXT_TASKS, "add", (1, 2))
    except ip.BrokenInterpreterPool:
        pass
    else:
        with pytest.raises(ip.BrokenInterpreterPool):
            t.result(30)
    with pytest.raises(ip.BrokenInterpreterPool, match="initializer failed"):
        p.submit(EXT_TASKS, "add", (1, 2))


# ---------------------------------------------------------------------------
# Shutdown
# ---------------------------------------------------------------------------


def test_shutdown_waits_for_every_task():
    p = make_pool(2)
    tasks = [p.submit(EXT_TASKS, "sleep_then", (0.01, i)) for i in range(30)]
    p.shutdown()
    assert all(t.done() for t in tasks)
    assert [t.result(0) for t in tasks] == list(range(30))


def test_shutdown_cancel_pending_accounts_for_every_task():
    p = make_pool(2)
    started, release = ip.Queue.create(), ip.Queue.create()
    # Both workers busy, the rest queued behind them.
    running = [p.submit(EXT_TASKS, "rendezvous", (started, release)) for _ in range(2)]
    ids = [started.get(timeout=30) for _ in running]
    queued = [p.submit(EXT_TASKS, "sleep_then", (0.0, i)) for i in range(58)]
    shutdown = threading.Thread(target=p.shutdown, kwargs={"cancel_pending": True})
    shutdown.start()
    # The queued ones end cancelled while the running ones still run...
    wait_until(lambda: all(t.done() for t in queued), what="the queued tasks to be cancelled")
    assert not any(t.done() for t in running)
    release.put(None)
    release.put(None)
    shutdown.join(30)
    assert not shutdown.is_alive()
    # ...which then end with their own results.
    assert sorted(t.result(0) for t in running) == sorted(ids)
    assert [result_or_name(t, 0) for t in queued] == ["CancelledError"] * 58
    with pytest.raises(concurrent.futures.CancelledError):
        queued[-1].result()


def test_submit_after_shutdown():
    p = make_pool(1)
    assert p.size == 1
    p.shutdown()
    with pytest.raises(RuntimeError) as info:
        p.submit(EXT_TASKS, "add", (1, 2))
    assert type(info.value) is RuntimeError  # not BrokenInterpreterPool (a RuntimeError too)
    p.shutdown()  # twice is fine
    p.shutdown(cancel_pending=True)
    with pytest.raises(RuntimeError):
        p.submit("math", "factorial", (3,))


def test_pool_dropped_without_shutdown_still_runs_its_tasks():
    task = make_pool(1).submit(EXT_TASKS, "sleep_then", (0.1, "ran"))
    # The Pool object is gone: dropping it waited for its worker.
    assert task.done()
    assert task.result(0) == "ran"


def test_create_and_shutdown_cycles():
    for i in range(20):
        p = make_pool(2)
        assert p.submit("math", "factorial", (i,)).result(30) == math.factorial(i)
        p.shutdown()


# ---------------------------------------------------------------------------
# Many submitters
# ---------------------------------------------------------------------------


def test_threads_submitting_concurrently(pool):
    n_threads, per_thread = 8, 500
    totals = [None] * n_threads
    errors = []

    def submitter(k):
        try:
            tasks = [pool.submit(EXT_TASKS, "square", (k * per_thread + i,)) for i in range(per_thread)]
            totals[k] = sum(t.result(60) for t in tasks)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=submitter, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(100)
    assert not errors
    n = n_threads * per_thread
    assert sum(totals) == sum(i * i for i in range(n)) == (n - 1) * n * (2 * n - 1) // 6


def test_many_small_tasks_in_order_of_submission(pool):
    tasks = [pool.submit(EXT_TASKS, "add", (i, 1)) for i in range(2000)]
    assert [t.result(60) for t in tasks] == list(range(1, 2001))


# ---------------------------------------------------------------------------
# Exit without shutdown (the atexit hook), in a child process
# ---------------------------------------------------------------------------


def test_exit_without_shutdown(tmp_path):
    marker = tmp_path / "marker.txt"
    t0 = time.monotonic()
    proc = run_script(
        f"""
        import sys
        import interpool._interpool as ip
        pool = ip.Pool(2, sys_path=sys.path)
        tasks = [pool.submit("math", "factorial", (i,)) for i in range(50)]
        print(sum(t.result(30) for t in tasks[:10]), flush=True)
        # Still running at exit: the exit hook lets it finish.
        slow = pool.submit("ext_tasks", "write_file_after", ({str(marker)!r}, 0.3, "finished"))
        print("exiting", flush=True)
        """,
        timeout=60,
    )
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(sum(math.factorial(i) for i in range(10))), "exiting"]
    assert_clean_exit_stderr(proc.stderr)
    assert marker.read_text() == "finished"
    assert took < 30


def test_exit_with_pools_in_odd_places():
    proc = run_script(
        """
        import sys
        import interpool._interpool as ip

        class Holder:
            pass

        kept = [ip.Pool(1), ip.Pool(1)]
        cycle = Holder()
        cycle.pool = ip.Pool(1)
        cycle.me = cycle
        del cycle
        for p in kept:
            p.submit("time", "sleep", (0.1,))
        shut = ip.Pool(1)
        shut.shutdown()
        print("bye", flush=True)
        sys.exit(0)
        """,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "bye"
    assert_clean_exit_stderr(proc.stderr)


def test_exit_after_exception_in_main():
    proc = run_script(
        """
        import interpool._interpool as ip
        pool = ip.Pool(1)
        pool.submit("time", "sleep", (0.1,))
        raise SystemExit("stopping with a message")
        """,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "stopping with a message" in proc.stderr
    assert "Fatal Python error" not in proc.stderr


# Regression (3.12): ending a worker whose interpreter imported threading used to
# print "Exception ignored in: <module 'threading'> ... assert tlock.locked()".
def test_worker_importing_threading_ends_quietly():
    proc = run_script(
        """
        import interpool._interpool as ip
        pool = ip.Pool(1)
        print(pool.submit("threading", "get_ident").result(30) > 0, flush=True)
        pool.shutdown()
        print("after shutdown", flush=True)
        """,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "after", "shutdown"]
    assert "Exception ignored" not in proc.stderr, proc.stderr
    assert "AssertionError" not in proc.stderr, proc.stderr
