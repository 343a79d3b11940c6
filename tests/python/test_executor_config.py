"""interpool.Executor set-up: shared=, initializer/initargs, the constructor's
ThreadPoolExecutor order and thread names, max_tasks_per_worker (and
max_tasks_per_child), and what workers inherit from the parent (sys.path,
working directory)."""

from __future__ import annotations

import gc
import os
import sys
import textwrap
import threading
from collections import Counter

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import interpool  # noqa: E402
import executor_tasks as T  # noqa: E402
from support import on_each_worker, wait_until  # noqa: E402

MAIN_ID = interpool._interpool.interpreter_id()




# ---------------------------------------------------------------------------
# shared=
# ---------------------------------------------------------------------------


def test_shared_visible_in_every_worker_and_sent_once(make_executor, tmp_path):
    e = make_executor(2, shared={"counted": T.CountedShared("payload"), "plain": [1, 2, 3]})
    reports = list(e.map(T.shared_report, ["counted"] * 400))
    reports += list(e.map(T.shared_report, ["counted"] * 40, chunksize=1))
    reports += [e.submit(T.shared_report, "counted").result(timeout=30) for _ in range(20)]
    reports += on_each_worker(e, tmp_path / "meet1", T.shared_report, "counted")
    ids = {r[0] for r in reports}
    assert MAIN_ID not in ids
    assert len(ids) == 2
    # Unpickled exactly once in each worker interpreter, whatever the number of tasks.
    assert {(r[0], r[1]) for r in reports} == {(i, 1) for i in ids}
    assert {r[2] for r in reports} == {"payload"}
    plain = on_each_worker(e, tmp_path / "meet2", T.shared_report, "plain")
    assert [r[2] for r in plain] == [[1, 2, 3]] * 2
    # The parent reads the original object, not a copy made by unpickling.
    assert T.UNPICKLED == 0
    assert interpool.shared["counted"].payload == "payload"


def test_shared_resent_to_replacement_workers(make_executor):
    e = make_executor(1, shared={"counted": T.CountedShared(7)}, max_tasks_per_worker=3)
    reports = [e.submit(T.shared_report, "counted").result(timeout=30) for _ in range(9)]
    per_interp = Counter(r[0] for r in reports)
    assert len(per_interp) == 3 and set(per_interp.values()) == {3}
    assert {r[1:] for r in reports} == {(1, 7)}


def test_shared_in_parent_while_open_and_after_shutdown(make_executor):
    before = dict(interpool.shared)
    e1 = make_executor(1, shared={"who": "e1", "only1": 1})
    assert interpool.shared["who"] == "e1" and dict(interpool.shared) == {"who": "e1", "only1": 1}
    e2 = make_executor(1, shared={"who": "e2"})
    assert dict(interpool.shared) == {"who": "e2"}  # the most recent open executor's
    assert e1.submit(T.shared_snapshot).result(timeout=30)[1] == {"who": "e1", "only1": 1}
    assert e2.submit(T.shared_snapshot).result(timeout=30)[1] == {"who": "e2"}
    e2.shutdown()
    assert dict(interpool.shared) == {"who": "e1", "only1": 1}
    e1.shutdown()
    assert dict(interpool.shared) == before
    assert "who" not in interpool.shared


def test_shared_in_parent_after_out_of_order_shutdown(make_executor):
    before = dict(interpool.shared)
    e1 = make_executor(1, shared={"who": "e1"})
    e2 = make_executor(1, shared={"who": "e2"})
    e1.shutdown()
    assert dict(interpool.shared) == {"who": "e2"}
    e2.shutdown()
    assert dict(interpool.shared) == before


def test_shared_is_read_only(make_executor):
    e = make_executor(1, shared={"a": 1})
    with pytest.raises(TypeError):
        interpool.shared["a"] = 2  # type: ignore[index]
    with pytest.raises(TypeError):
        e.shared["a"] = 2  # type: ignore[index]
    assert e.shared == {"a": 1}
    assert e.submit(T.shared_try_write, "a").result(timeout=30) == "TypeError"


def test_shared_is_a_snapshot_of_the_mapping(make_executor):
    d = {"a": 1}
    e = make_executor(1, shared=d)
    d["a"] = 2
    d["b"] = 3
    assert dict(e.shared) == {"a": 1}
    assert e.submit(T.shared_snapshot).result(timeout=30)[1] == {"a": 1}


def test_shared_missing_key_message(make_executor):
    e = make_executor(1, shared={"a": 1})
    with pytest.raises(KeyError, match="Executor\\(shared="):
        e.submit(T.shared_missing, "nope").result(timeout=30)


def test_shared_default_is_empty_in_workers(make_executor):
    e = make_executor(1)
    assert e.submit(T.shared_snapshot).result(timeout=30)[1] == {}
    assert dict(e.shared) == {}


def test_shared_unshareable_value_named(make_executor):
    with pytest.raises(interpool.NotShareableError, match=r"shared\['lock'\]"):
        make_executor(1, shared={"lock": threading.Lock()})


def test_unshareable_initargs_named_apart_from_shared(make_executor):
    # Both are arguments of the workers' initializers: each is named as given.
    with pytest.raises(interpool.NotShareableError) as info:
        make_executor(1, initializer=T.add, initargs=(threading.Lock(), 1))
    assert (info.value.where, info.value.path) == ("initargs[0]", ())
    assert str(info.value).startswith("cannot share initargs[0] (a 'lock' object)")
    with pytest.raises(interpool.NotShareableError) as info:
        make_executor(1, shared={"k": [threading.Lock()]}, initializer=T.add, initargs=(1, 2))
    assert (info.value.where, info.value.path) == ("shared", ("['k']", 0))


def _open_and_drop_executor():
    e = interpool.Executor(1, shared={"dropped": True})
    assert e.submit(T.add, 1, 2).result(timeout=30) == 3
    assert interpool.shared["dropped"] is True


def test_shared_reverts_when_executor_is_collected():
    """An executor collected without shutdown() closes, and interpool.shared forgets it."""
    before = dict(interpool.shared)
    threads = threading.active_count()
    _open_and_drop_executor()
    gc.collect()
    wait_until(lambda: threading.active_count() <= threads, 10, "the dropped executor's thread to end")
    assert dict(interpool.shared) == before


# ---------------------------------------------------------------------------
# initializer
# ---------------------------------------------------------------------------


def test_initializer_sets_worker_state(make_executor, tmp_path):
    e = make_executor(2, initializer=T.init_set_state, initargs=({"ready": [1, 2]},))
    reports = list(e.map(T.state_report, [0.0] * 50, chunksize=1))
    reports += on_each_worker(e, tmp_path / "meet", T.state_report)
    assert len({i for i, _ in reports}) == 2
    assert [s for _, s in reports] == [{"ready": [1, 2]}] * 52
    assert T.STATE is None  # the parent is untouched


def test_initargs_may_be_a_list_but_must_be_arguments(make_executor):
    # As for the stdlib's pools, which call initializer(*initargs).
    e = make_executor(1, initializer=T.init_set_state, initargs=["from a list"])
    assert e.submit(T.get_state).result(timeout=60) == "from a list"
    with pytest.raises(TypeError, match="^initargs must be a tuple of arguments, not 'int'$"):
        make_executor(1, initializer=T.init_set_state, initargs=5)


def test_initializer_runs_once_per_worker(make_executor, tmp_path):
    e = make_executor(2, initializer=T.init_count)
    calls = list(e.map(T.get_init_calls, [0.0] * 200))
    calls += on_each_worker(e, tmp_path / "meet", T.get_init_calls)
    assert len({i for i, _ in calls}) == 2
    assert {c for _, c in calls} == {1}
    assert T.INIT_CALLS == 0


def test_initializer_partial(make_executor):
    import functools

    e = make_executor(1, initializer=functools.partial(T.init_set_state, "from partial"))
    assert e.submit(T.get_state).result(timeout=30) == "from partial"


def test_what_the_initializer_returns_is_dropped(make_executor):
    # import_module returns a module, which cannot reach another interpreter:
    # as with ThreadPoolExecutor, the return value is no one's and is not sent.
    import importlib

    e = make_executor(2, initializer=importlib.import_module, initargs=("executor_tasks",))
    assert e.submit(T.square, 3).result(timeout=30) == 9


def test_initializer_runs_in_replacement_workers(make_executor):
    e = make_executor(1, initializer=T.init_set_state, initargs=("again",), max_tasks_per_worker=2)
    got = [(e.submit(T.get_state).result(timeout=30), e.submit(T.interp_id).result(timeout=30)) for _ in range(3)]
    assert [s for s, _ in got] == ["again"] * 3
    assert len({i for _, i in got}) == 3


# ---------------------------------------------------------------------------
# The constructor as ThreadPoolExecutor's: positional order, thread names
# ---------------------------------------------------------------------------


def test_positional_arguments_in_thread_pool_executor_order(make_executor):
    # The order of ThreadPoolExecutor and 3.14's InterpreterPoolExecutor.
    e = make_executor(1, "positional", T.init_set_state, ("set positionally",))
    assert e.submit(T.get_state).result(timeout=30) == "set positionally"
    assert e.submit(T.thread_names).result(timeout=30)[2] == "positional_0"


@pytest.mark.parametrize("prefix, message", [
    (T.init_set_state, "must be a str, not 'function' .the initializer is the third argument"),
    (7, "thread_name_prefix must be a str, not 'int'"),
    (b"bytes", "thread_name_prefix must be a str, not 'bytes'"),
])
def test_thread_name_prefix_must_be_a_str(prefix, message):
    with pytest.raises(TypeError, match=message):
        interpool.Executor(1, prefix)


def test_thread_name_prefix_none_gives_the_default_names(make_executor):
    # ThreadPoolExecutor(4, None, init, args) is code people migrate as it is.
    e = make_executor(1, None)
    assert e.submit(T.thread_names).result(timeout=30)[2].startswith("interpool-")


def test_thread_name_prefix_from_process_pool_position_is_explained():
    import multiprocessing

    with pytest.raises(TypeError, match="mp_context, has no equivalent"):
        interpool.Executor(1, multiprocessing.get_context("spawn"))  # type: ignore[arg-type]


def test_thread_name_prefix_with_nul_is_refused():
    with pytest.raises(ValueError, match="NUL"):
        interpool.Executor(1, "a\0b")


def test_thread_name_prefix_names_the_worker_threads(make_executor, tmp_path):
    """As the OS shows them (/proc/self/task/<tid>/comm), as threading and
    logging show them: f"{prefix}_{i}", as ThreadPoolExecutor names its threads."""
    e = make_executor(2, thread_name_prefix="crunch")
    names = on_each_worker(e, tmp_path / "meet", T.thread_names)
    assert sorted(n[1:] for n in names) == [("crunch_0",) * 3, ("crunch_1",) * 3]


def test_default_thread_names_tell_executors_apart(make_executor, tmp_path):
    first = on_each_worker(make_executor(2), tmp_path / "first", T.thread_names)
    second = on_each_worker(make_executor(1), tmp_path / "second", T.thread_names)
    prefixes = set()
    for _, os_name, name, logged in first + second:
        assert os_name == name == logged
        prefix, _, index = name.rpartition("_")
        assert prefix.startswith("interpool-") and index in {"0", "1"}
        prefixes.add(prefix)
    assert len(prefixes) == 2
    assert sorted(n[2].rpartition("_")[2] for n in first) == ["0", "1"]


def test_long_thread_name_prefix_keeps_the_worker_number_for_the_os(make_executor, tmp_path):
    # Linux shows 15 bytes of a thread's name: the prefix is cut, not "_<i>",
    # and not inside a character; threading has the whole name.
    e = make_executor(2, thread_name_prefix="image-resizer-pool")
    names = sorted(on_each_worker(e, tmp_path / "ascii", T.thread_names), key=lambda n: n[2])
    assert [n[1:3] for n in names] == [("image-resizer_0", "image-resizer-pool_0"),
                                       ("image-resizer_1", "image-resizer-pool_1")]
    e = make_executor(1, thread_name_prefix="é" * 10)  # 2 bytes each
    assert e.submit(T.thread_names).result(timeout=30)[1:3] == ("é" * 6 + "_0", "é" * 10 + "_0")


def test_replacement_worker_has_its_slot_s_name(make_executor):
    e = make_executor(1, thread_name_prefix="renewed", max_tasks_per_worker=1)
    names = [e.submit(T.thread_names).result(timeout=30) for _ in range(3)]
    assert len({n[0] for n in names}) == 3  # three interpreters
    assert {n[1:] for n in names} == {("renewed_0",) * 3}


def test_the_signature_matches_thread_pool_executor():
    import inspect
    from concurrent.futures import ThreadPoolExecutor

    ours = list(inspect.signature(interpool.Executor).parameters.values())
    theirs = list(inspect.signature(ThreadPoolExecutor).parameters.values())
    assert [(p.name, p.kind, p.default) for p in ours[:4]] == [
        (p.name, p.kind, p.default) for p in theirs]


# ---------------------------------------------------------------------------
# max_tasks_per_worker
# ---------------------------------------------------------------------------


def test_max_tasks_per_worker_replaces_interpreters(make_executor):
    e = make_executor(1, max_tasks_per_worker=2)
    reports = [e.submit(T.count_task).result(timeout=30) for _ in range(6)]
    ids = [r[0] for r in reports]
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[4] == ids[5]
    assert len(set(ids)) == 3
    assert [r[1] for r in reports] == [1, 2, 1, 2, 1, 2]  # fresh module state each time


def test_max_tasks_per_worker_counts_a_map_chunk_as_one_task(make_executor):
    e = make_executor(1, max_tasks_per_worker=1)
    out = list(e.map(T.count_task, range(12), chunksize=4))
    ids = [i for i, _ in out]
    assert len(set(ids)) == 3
    assert ids == [ids[0]] * 4 + [ids[4]] * 4 + [ids[8]] * 4
    assert [n for _, n in out] == [1, 2, 3, 4] * 3


def test_without_max_tasks_per_worker_interpreters_are_kept(make_executor):
    e = make_executor(1)
    ids = {e.submit(T.interp_id).result(timeout=30) for _ in range(20)}
    assert len(ids) == 1 and MAIN_ID not in ids


def test_max_tasks_per_child_is_max_tasks_per_worker(make_executor):
    """ProcessPoolExecutor's name for it."""
    e = make_executor(1, max_tasks_per_child=2)
    reports = [e.submit(T.count_task).result(timeout=30) for _ in range(6)]
    assert len({r[0] for r in reports}) == 3
    assert [r[1] for r in reports] == [1, 2, 1, 2, 1, 2]


@pytest.mark.parametrize("kwargs, error, message", [
    ({"max_tasks_per_worker": 2, "max_tasks_per_child": 2}, TypeError,
     "max_tasks_per_worker or max_tasks_per_child"),
    ({"max_tasks_per_child": 0}, ValueError, "max_tasks_per_child must be >= 1"),
    ({"max_tasks_per_child": "3"}, TypeError, "max_tasks_per_child must be an int"),
])
def test_max_tasks_per_child_validation(kwargs, error, message):
    with pytest.raises(error, match=message):
        interpool.Executor(1, **kwargs)


@pytest.mark.parametrize("max_workers, error, message", [
    (0, ValueError, "max_workers must be greater than 0"),
    ("2", TypeError, "max_workers must be an int, not 'str'"),
    (100_000, ValueError, r"max_workers must be at most 16384 \(each worker is a thread and an "
                          r"interpreter\), not 100000"),
])
def test_max_workers_validation(max_workers, error, message):
    # Past the engine's limit it was the engine's InterpreterError, naming a
    # C++ option.
    with pytest.raises(error, match=message):
        interpool.Executor(max_workers)


def test_max_tasks_per_worker_under_load(make_executor):
    e = make_executor(2, max_tasks_per_worker=5)
    out = list(e.map(T.count_task, range(60), chunksize=1))
    assert len(out) == 60
    per_interp = Counter(i for i, _ in out)
    assert max(per_interp.values()) <= 5
    assert len(per_interp) >= 12
    assert all(n <= 5 for _, n in out)


# ---------------------------------------------------------------------------
# What workers inherit
# ---------------------------------------------------------------------------


def test_workers_see_parent_sys_path(make_executor, tmp_path, monkeypatch):
    extra = tmp_path / "extra_dir"
    extra.mkdir()
    (extra / "executor_extra_module_xyz.py").write_text(
        textwrap.dedent(
            """
            def where():
                return __file__
            """
        )
    )
    monkeypatch.syspath_prepend(str(extra))
    import executor_extra_module_xyz  # type: ignore[import-not-found]

    try:
        e = make_executor(1)
        path = e.submit(T.get_sys_path).result(timeout=30)
        assert str(extra) in path
        assert HERE in path
        for entry in sys.path:
            assert (os.path.abspath(entry) if entry else os.getcwd()) in path
        assert e.submit(executor_extra_module_xyz.where).result(timeout=30) == executor_extra_module_xyz.__file__
    finally:
        sys.modules.pop("executor_extra_module_xyz", None)


def test_workers_see_parent_working_directory(make_executor, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    e = make_executor(1)
    assert e.submit(T.getcwd).result(timeout=30) == str(tmp_path)
    assert e.submit(os.getcwd).result(timeout=30) == os.getcwd()
    (tmp_path / "relative.txt").write_text("seen")
    assert e.submit(T.append_line, "relative.txt", "more").result(timeout=30) == "more"
    assert (tmp_path / "relative.txt").read_text() == "seenmore\n"


def test_relative_sys_path_entry_is_made_absolute(make_executor, tmp_path, monkeypatch):
    (tmp_path / "executor_rel_module_xyz.py").write_text("def f():\n    return 'rel'\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend("")
    import executor_rel_module_xyz  # type: ignore[import-not-found]

    try:
        e = make_executor(1)
        assert e.submit(executor_rel_module_xyz.f).result(timeout=30) == "rel"
        assert str(tmp_path) in e.submit(T.get_sys_path).result(timeout=30)
    finally:
        sys.modules.pop("executor_rel_module_xyz", None)


def test_workers_are_other_interpreters_with_their_own_modules(make_executor, tmp_path):
    e = make_executor(2)
    ids = set(on_each_worker(e, tmp_path / "meet", T.interp_id))
    assert MAIN_ID not in ids and len(ids) == 2
    assert e.submit(T.module_name).result(timeout=30) == "executor_tasks"


def test_nested_executor_inside_a_worker(make_executor):
    e = make_executor(1)
    assert e.submit(T.executor_in_worker, 6).result(timeout=60) == 36


def test_workers_stay_light(make_executor):
    # Every worker imports interpool for `shared`: it must not drag in modules
    # that cost each worker memory and start-up time (see docs/benchmarks.md, rows 4-5).
    import worker_probe

    ex = make_executor(1)
    loaded = set(ex.submit(worker_probe.loaded_modules).result(timeout=60))
    assert "interpool._worker" in loaded  # the probe really ran in a worker
    heavy = {"threading", "queue", "weakref", "collections", "typing", "importlib.util",
             "concurrent.futures", "importlib.abc", "types"}
    assert loaded & heavy == set()


def test_workers_are_listed_as_interpool_workers(make_executor):
    from interpool import interpreters

    ex = make_executor(1)
    wid = ex.submit(T.interp_id).result(timeout=60)
    [worker] = [i for i in interpreters.list_all() if i.id == wid]
    assert worker.whence == "interpool worker"
    for attempt in (lambda: worker.exec("pass"), lambda: worker.call(len, "ab"), worker.close):
        # not the caller's to run code in, or to close; the message says whose it is
        with pytest.raises(interpreters.InterpreterError,
                           match=rf"^interpreter {wid} is a worker of an interpool pool: "):
            attempt()
    ex.shutdown(wait=True)
    assert wid not in [i.id for i in interpreters.list_all()]


def test_workers_are_interpool_workers_from_the_start(make_executor):
    """A worker's interpreter is listed as an interpool worker as soon as it
    exists, not once the worker has set itself up (it said 'unknown' until
    then, which could last through a whole map)."""
    from interpool import interpreters

    for _ in range(3):
        before = {i.id for i in interpreters.list_all()}
        ex = make_executor(2)
        ex.submit(int).result(timeout=60)  # the executor's workers exist
        workers = [i for i in interpreters.list_all() if i.id not in before]
        assert len(workers) == 2
        assert [i.whence for i in workers] == ["interpool worker"] * 2
        ex.shutdown(wait=True)
