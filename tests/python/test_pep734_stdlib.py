"""Contracts that interpool.interpreters shares with the standard library's PEP 734
module: each test runs on interpool and, where this Python has one (3.13's
test.support.interpreters, 3.14's concurrent.interpreters), on the standard
library's module too, so that it shows what interpool matches. Tests of what
only interpool does (its own defaults, its Executor's workers) are at the end.
"""

import gc
import sys
import threading
import types

import pytest

from interpool import interpreters as I

import executor_tasks as T
import interp_tasks

pytestmark = pytest.mark.usefixtures("no_interpreter_left_open")


def _stdlib_module():
    """The standard library's PEP 734 module of this Python and its import path,
    or None: 3.12 has none (its test.support.interpreters is an older API)."""
    try:
        import _interpreters  # noqa: F401  (3.13+)
    except ImportError:
        return None
    try:
        from concurrent import interpreters as std

        return std, "concurrent.interpreters"
    except ImportError:
        from test.support import interpreters as std

        return std, "test.support.interpreters"


def _impl(name):
    if name == "interpool":
        return types.SimpleNamespace(mod=I, path="interpool.interpreters", name=name)
    found = _stdlib_module()
    if found is None:
        pytest.skip("this Python's standard library has no PEP 734 module")
    std, path = found
    return types.SimpleNamespace(mod=std, path=path, name=name)


@pytest.fixture(params=["interpool", "stdlib"])
def impl(request):
    return _impl(request.param)


def ids(mod=I):
    """The ids of every interpreter of the process, as `mod` lists them."""
    return {i.id for i in mod.list_all()}


def _low_level_interpreter():
    """An interpreter made by the standard library's low-level module, which no
    Interpreter object owns: (id, destroy)."""
    try:
        import _interpreters as low
    except ImportError:
        import _xxsubinterpreters as low  # 3.12: the InterpreterID object keeps it

        handle = low.create(isolated=True)
        return int(handle), lambda: low.destroy(handle)
    iid = low.create()
    return iid, lambda: low.destroy(iid)


# -- an Interpreter object that create() returned owns its interpreter -------------------


def test_an_interpreter_whose_objects_are_all_gone_is_destroyed(impl, monkeypatch):
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    held = impl.mod.create()
    gc.collect()
    assert held.id in ids(impl.mod)  # kept while an object stands for it
    closed = impl.mod.create()
    closed.close()
    del closed  # nothing left to close, quietly

    def make():
        return impl.mod.create().id

    made = [make() for _ in range(3)]
    gc.collect()
    assert not set(made) & ids(impl.mod)
    assert held.id in ids(impl.mod)
    assert unraisable == []


def test_an_object_in_another_interpreter_keeps_it_open(impl):
    keeper = impl.mod.create()
    held = impl.mod.create()
    held_id = held.id
    keeper.exec(f"import {impl.path} as interpreters\nheld = interpreters.Interpreter({held_id})")
    del held
    gc.collect()
    assert held_id in ids(impl.mod)  # keeper's object owns it too
    keeper.exec("del held\nimport gc\ngc.collect()")
    assert held_id not in ids(impl.mod)
    keeper.close()


def test_only_objects_of_interpreters_made_by_create_own_them(impl):
    iid, destroy = _low_level_interpreter()
    try:
        for other in (0, iid):
            obj = impl.mod.Interpreter(other)
            del obj
        made = impl.mod.create().id
        gc.collect()
        assert {0, iid} <= ids(impl.mod)
        assert made not in ids(impl.mod)
    finally:
        destroy()


# -- prepare_main --------------------------------------------------------------------------


def test_prepare_main_with_no_names_is_a_value_error(impl):
    interp = impl.mod.create()
    with pytest.raises(ValueError):
        interp.prepare_main()
    with pytest.raises(ValueError):
        interp.prepare_main({})
    interp.close()


def test_prepare_main_while_it_runs_code_is_refused(impl):
    interp = impl.mod.create()
    started, release = impl.mod.create_queue(), impl.mod.create_queue()
    interp.exec(f"import {type(started).__module__}")  # the queue type, to receive queues
    interp.prepare_main(started=started, release=release, spam="before")
    t = threading.Thread(target=interp.exec, args=("started.put(1)\nrelease.get()",))
    t.start()
    try:
        assert started.get(timeout=30) == 1  # it runs until release gets an item
        with pytest.raises(impl.mod.InterpreterError, match="running") as e:
            interp.prepare_main(spam="during")
        assert not isinstance(e.value, impl.mod.InterpreterNotFoundError)
    finally:
        release.put(None)
        t.join(30)
    interp.exec("assert spam == 'before', spam")
    interp.prepare_main(spam="after")
    interp.exec("assert spam == 'after', spam")
    interp.close()


# -- queues --------------------------------------------------------------------------------


def test_queue_hash_is_the_hash_of_its_id(impl):
    q = impl.mod.create_queue()
    assert hash(q) == hash(q.id)
    assert len({q, q, impl.mod.create_queue()}) == 2


def test_queue_repr_names_its_id(impl):
    q = impl.mod.create_queue()
    assert repr(q) == f"Queue({q.id})"


def test_queue_negative_maxsize_is_kept_and_means_unbounded(impl):
    q = impl.mod.create_queue(maxsize=-10)
    assert q.maxsize == -10
    for i in range(20):
        q.put(i)
    assert q.qsize() == 20 and not q.full()
    assert [q.get() for _ in range(20)] == list(range(20))


def test_queue_negative_maxsize_is_seen_by_other_interpreters(interp):
    q = I.create_queue(maxsize=-3)
    assert interp.call(interp_tasks.queue_info, q)[1] == -3


@pytest.mark.parametrize("option", ["UNBOUND", "UNBOUND_ERROR", "UNBOUND_REMOVE"])
def test_queue_unbounditems_is_the_default_it_was_made_with(impl, option):
    if impl.name == "stdlib" and not hasattr(impl.mod.Queue, "unbounditems"):
        pytest.skip(f"{impl.path} of this Python has no Queue.unbounditems")
    value = getattr(sys.modules[impl.mod.Queue.__module__], option)
    q = impl.mod.create_queue(unbounditems=value)
    assert q.unbounditems is value


def test_queue_unbounditems_default_is_none_for_kept_items():
    """interpool keeps the items of an interpreter that ended unless asked
    otherwise: its queues' default, None, says so (the standard library's is UNBOUND)."""
    assert I.create_queue().unbounditems is None
    assert I.create_queue(unbounditems=None).unbounditems is None


def test_queue_unbounditems_seen_from_another_interpreter(interp):
    q = I.create_queue(unbounditems=I.UNBOUND_REMOVE)
    interp.prepare_main(q=q)
    interp.exec("seen = repr(q.unbounditems)")
    assert interp.call(interp_tasks.main_attr, "seen") == "UNBOUND_REMOVE"


# -- interpool's own: items kept, Executor workers ------------------------------------------


def test_items_of_an_interpreter_destroyed_with_its_last_object_are_kept():
    q = I.create_queue()

    def put_from_a_new_interpreter():
        interp = I.create()
        interp.prepare_main(q=q)
        interp.exec("q.put('kept')")
        return interp.id

    gone = put_from_a_new_interpreter()
    gc.collect()
    assert gone not in ids()
    assert q.get_nowait() == "kept"


def test_objects_of_executor_workers_own_nothing(make_executor):
    ex = make_executor(1)
    worker = ex.submit(T.interp_id).result(timeout=30)
    obj = I.Interpreter(worker)
    assert obj.whence == "interpool worker"
    del obj
    made = I.create().id
    gc.collect()
    assert worker in ids() and made not in ids()
    assert ex.submit(T.interp_id).result(timeout=30) == worker
