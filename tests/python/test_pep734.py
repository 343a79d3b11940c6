"""interpool.interpreters: the PEP 734 API, and where it goes beyond the stdlib."""

import pickle
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from interpool import interpreters as I

import tasks_helpers  # noqa: F401  (importable in new interpreters: they get our sys.path)


# -- module functions ------------------------------------------------------------


def test_names_match_concurrent_interpreters():
    for name in ["create", "list_all", "get_current", "get_main", "is_shareable", "create_queue",
                 "Interpreter", "Queue", "UNBOUND", "UNBOUND_ERROR", "UNBOUND_REMOVE",
                 "InterpreterError", "InterpreterNotFoundError", "ExecutionFailed",
                 "NotShareableError", "QueueEmpty", "QueueFull", "ItemInterpreterDestroyed"]:
        assert hasattr(I, name), name
    assert issubclass(I.NotShareableError, TypeError)
    assert issubclass(I.ExecutionFailed, I.InterpreterError)
    assert issubclass(I.InterpreterNotFoundError, I.InterpreterError)
    assert issubclass(I.QueueEmpty, queue.Empty)
    assert issubclass(I.QueueFull, queue.Full)


def test_main_current_and_list(interp):
    main = I.get_main()
    assert main.id == 0 and main == I.get_current()
    assert main.whence == "runtime init" and main.is_running()
    assert interp in I.list_all() and main in I.list_all()
    assert interp.whence == "interpool" and not interp.is_running()


def test_one_object_per_id_equality_hash_pickle(interp):
    assert I.Interpreter(interp.id) is interp
    assert hash(interp) == hash(interp.id)
    assert pickle.loads(pickle.dumps(interp)) is interp
    assert interp != I.get_main()


def test_is_shareable():
    assert I.is_shareable((1, "a", b"b", [None, {1: 2.5}], frozenset({3})))
    assert I.is_shareable(I.create_queue())
    assert not I.is_shareable(object())
    assert not I.is_shareable([1, threading.Lock()])


# -- exec, call, prepare_main ----------------------------------------------------------


def test_exec_source_code_object_and_function(interp):
    q = I.create_queue()
    interp.prepare_main(q=q, n=20)
    interp.exec("q.put(n + 1)")
    interp.exec(compile("q.put(n + 2)", "<test>", "exec"))
    interp.exec(_body_using_target_names)
    assert [q.get(timeout=5) for _ in range(3)] == [21, 22, 23]


def _body_using_target_names():
    q.put(n + 3)  # noqa: F821 (q and n are names of the target's __main__)


def test_exec_refuses_functions_with_arguments_or_closures(interp):
    def takes(x):
        return x

    with pytest.raises(ValueError, match="no arguments"):
        interp.exec(takes)
    local = 1

    def closure():
        return local

    with pytest.raises(ValueError, match="closure"):
        interp.exec(closure)


def test_exec_failure_carries_excinfo(interp):
    with pytest.raises(I.ExecutionFailed) as info:
        interp.exec("def inner():\n    raise KeyError('gone')\ninner()")
    exc = info.value
    assert exc.excinfo.type.__name__ == "KeyError"
    assert exc.excinfo.msg == "'gone'"
    assert "inner" in exc.excinfo.errdisplay
    assert "KeyError" in str(exc) and "inner" in str(exc)


def test_call_returns_copies_of_results(interp):
    assert interp.call(len, "abcd") == 4
    assert interp.call(tasks_helpers.add, 2, b=5) == 7
    assert interp.call(sorted, [3, 1, 2]) == [1, 2, 3]


def test_call_failure_is_execution_failed(interp):
    with pytest.raises(I.ExecutionFailed) as info:
        interp.call(int, "x")
    assert info.value.excinfo.type.__name__ == "ValueError"


def test_call_runs_in_the_target_interpreter(interp):
    assert interp.call(I.get_current) == interp
    assert interp.call(tasks_helpers.interp_id) == interp.id


def test_call_in_thread(interp):
    q = I.create_queue()
    t = interp.call_in_thread(tasks_helpers.put_in_queue, q, "from the thread")
    assert isinstance(t, threading.Thread)
    t.join(10)
    assert q.get(timeout=5) == "from the thread"


def test_errors_name_what_and_where(interp):
    with pytest.raises(I.NotShareableError, match=r"'grid'.*'lock'"):
        interp.prepare_main(grid=threading.Lock())
    with pytest.raises(I.NotShareableError, match=r"argument 2"):
        interp.call(tasks_helpers.add, 1, threading.Lock())


# -- lifecycle --------------------------------------------------------------------------


def test_close_then_everything_says_not_found():
    it = I.create()
    it.close()
    for op in (lambda: it.exec("pass"), lambda: it.call(len, ""), it.close,
               lambda: it.prepare_main(x=1), it.is_running):
        with pytest.raises(I.InterpreterNotFoundError):
            op()


def test_close_while_running_is_refused_then_works(interp):
    started, release = I.create_queue(), I.create_queue()
    interp.prepare_main(started=started, release=release)
    t = threading.Thread(target=interp.exec, args=("started.put(1); release.get()",))
    t.start()
    assert started.get(timeout=10) == 1
    assert interp.is_running()
    with pytest.raises(I.InterpreterError, match="running"):
        interp.close()
    release.put(None)
    t.join(10)
    interp.close()


def test_close_from_another_thread(interp):
    interp.exec("import threading")
    errors = []

    def closer():
        try:
            interp.close()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=closer)
    t.start()
    t.join(30)
    assert not t.is_alive() and not errors
    assert interp not in I.list_all()


def test_main_and_foreign_interpreters_cannot_be_closed():
    with pytest.raises(I.InterpreterError, match="not created by interpool"):
        I.get_main().close()


def test_create_inside_a_sub_interpreter(interp):
    q = I.create_queue()
    interp.prepare_main(q=q)
    interp.exec(textwrap.dedent("""
        from interpool import interpreters as I
        sub = I.create()
        q.put(sub.call(len, "nested"))
        sub.close()
    """))
    assert q.get(timeout=10) == 6


# -- queues -------------------------------------------------------------------------------


def test_queue_fifo_bounds_and_nowait():
    q = I.create_queue(2)
    assert q.maxsize == 2 and q.empty() and not q.full()
    q.put(1)
    q.put_nowait(2)
    assert q.full() and q.qsize() == 2
    with pytest.raises(I.QueueFull):
        q.put_nowait(3)
    assert q.get() == 1 and q.get_nowait() == 2
    with pytest.raises(I.QueueEmpty):
        q.get_nowait()


def test_queue_timeouts_are_honoured():
    q = I.create_queue(1)
    for timeout in (0.02, 0.1):
        t0 = time.perf_counter()
        with pytest.raises(I.QueueEmpty):
            q.get(timeout=timeout)
        waited = time.perf_counter() - t0
        assert timeout <= waited < timeout + 1.0
    q.put(0)
    t0 = time.perf_counter()
    with pytest.raises(I.QueueFull):
        q.put(1, timeout=0.05)
    assert 0.05 <= time.perf_counter() - t0 < 1.05


def test_queue_one_object_per_id_and_pickles_as_handle():
    q = I.create_queue()
    assert I.Queue(q.id) is q
    with pytest.raises(I.QueueNotFoundError):
        I.Queue(0)  # ids start at 1
    assert pickle.loads(pickle.dumps(q)) is q


def test_queue_passes_through_prepare_main_call_and_another_queue(interp):
    outer, inner = I.create_queue(), I.create_queue()
    interp.prepare_main(outer=outer)
    outer.put(inner)  # a queue inside a queue
    interp.exec("got = outer.get(timeout=5); got.put('via a queue')")
    assert inner.get(timeout=5) == "via a queue"
    interp.call(tasks_helpers.put_in_queue, inner, "via call")
    assert inner.get(timeout=5) == "via call"


def test_items_survive_the_close_of_their_interpreter():
    q = I.create_queue()
    it = I.create()
    it.prepare_main(q=q)
    it.exec("q.put({'kept': [1, 2]})")
    it.close()
    assert q.get(timeout=5) == {"kept": [1, 2]}


@pytest.mark.parametrize("mode", ["UNBOUND", "UNBOUND_ERROR", "UNBOUND_REMOVE"])
def test_unbound_behaviours_when_asked(mode):
    q = I.create_queue(unbounditems=getattr(I, mode))
    it = I.create()
    it.prepare_main(q=q)
    it.exec("q.put('first')")
    q.put("mine")  # put by this interpreter, which stays
    it.close()
    if mode == "UNBOUND":
        assert q.get(timeout=5) is I.UNBOUND
    elif mode == "UNBOUND_ERROR":
        with pytest.raises(I.ItemInterpreterDestroyed):
            q.get(timeout=5)
    assert q.get(timeout=5) == "mine"
    assert q.empty()


def test_many_interpreters_many_threads_exact_counts():
    q = I.create_queue(64)
    its = [I.create() for _ in range(3)]
    try:
        threads = [it.call_in_thread(tasks_helpers.produce, q, k * 1000, 400)
                   for k, it in enumerate(its) for _ in range(2)]
        got = [q.get(timeout=30) for _ in range(2400)]
        for t in threads:
            t.join(30)
    finally:
        for it in its:
            it.close()
    counts = {}
    for v in got:
        counts[v] = counts.get(v, 0) + 1
    assert sorted(counts) == sorted(k * 1000 + i for k in range(3) for i in range(400))
    assert set(counts.values()) == {2}


def test_blocking_get_waits_for_a_put_from_another_interpreter(interp):
    q = I.create_queue()
    interp.prepare_main(q=q)
    t = threading.Thread(target=interp.exec, args=("import time; time.sleep(0.1); q.put('late')",))
    t0 = time.perf_counter()  # before the sleep can begin: the get waits all of it
    t.start()
    assert q.get(timeout=10) == "late"
    assert time.perf_counter() - t0 >= 0.1
    t.join(10)


CTRL_C = """
import sys
from interpool import interpreters as I
q = I.create_queue()
print("ready", flush=True)
try:
    q.get()
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(0)
"""


def test_ctrl_c_interrupts_a_blocking_get():
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert "interrupted" in out and proc.returncode == 0


MAIN_SCRIPT = """
from interpool import interpreters as I

def shout(word):
    return word.upper() + "!"

if __name__ == "__main__":
    it = I.create()
    print(it.call(shout, "hello"))
    it.close()
"""


def test_call_accepts_functions_of_the_main_script(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(MAIN_SCRIPT)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "HELLO!"
