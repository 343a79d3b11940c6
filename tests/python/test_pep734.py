"""The conformance suite of interpool.interpreters, the PEP 734 API (3.14's
concurrent.interpreters) on 3.12 and 3.13 -- module functions, Interpreter
objects, exec/call/prepare_main, errors, and the lifecycle of interpreters.

Queues are in test_pep734_queue.py; programs run as scripts (Ctrl-C, __main__
functions, the example, the benchmark) in test_pep734_scripts.py; the contracts
shown side by side with the standard library's module in test_pep734_stdlib.py.

Every interpreter a test creates is closed by the end of the test (the fixtures
of conftest.py close what is left); the module checks at its end that none is left open.
"""

import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
import threading
import types

import pytest

from interpool import interpreters as I

import interp_tasks
import value_shapes
from support import run_script, wait_until

PY312 = sys.version_info < (3, 13)


pytestmark = pytest.mark.usefixtures("no_interpreter_left_open")


def run_python(code, timeout=60, args=()):
    """Runs code in a fresh `python -c`; returns the CompletedProcess (TimeoutExpired
    is turned into a failure that says the program hung)."""
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else e.stdout
        pytest.fail(f"the program hung (no exit after {timeout} s); its output so far: {out!r}")


# ---------------------------------------------------------------------------
# The module's names
# ---------------------------------------------------------------------------

PEP734_NAMES = [
    "create", "list_all", "get_current", "get_main", "is_shareable", "create_queue",
    "Interpreter", "Queue", "InterpreterError", "InterpreterNotFoundError", "ExecutionFailed",
    "NotShareableError", "QueueEmpty", "QueueFull", "ItemInterpreterDestroyed",
    "UNBOUND", "UNBOUND_ERROR", "UNBOUND_REMOVE",
]


@pytest.mark.parametrize("name", PEP734_NAMES)
def test_module_has_the_pep734_names(name):
    assert hasattr(I, name)
    assert name in I.__all__


def test_stdlib_names_are_all_here():
    """Every public name of the standard library's module (3.14 concurrent.interpreters,
    or 3.13's test.support.interpreters) exists here."""
    try:
        import concurrent.interpreters as std
    except ImportError:
        if PY312:
            pytest.skip("3.12 has no PEP 734 module in the standard library")
        std = pytest.importorskip("test.support.interpreters")
    missing = [n for n in std.__all__ if not hasattr(I, n)]
    assert not missing


def test_exception_hierarchy():
    import queue

    assert issubclass(I.InterpreterNotFoundError, I.InterpreterError)
    assert issubclass(I.ExecutionFailed, I.InterpreterError)
    assert issubclass(I.InterpreterError, Exception)
    assert issubclass(I.NotShareableError, TypeError)
    assert issubclass(I.QueueEmpty, queue.Empty)
    assert issubclass(I.QueueFull, queue.Full)
    assert issubclass(I.ItemInterpreterDestroyed, Exception)


def test_unbound_constants_are_distinct_singletons():
    consts = [I.UNBOUND, I.UNBOUND_ERROR, I.UNBOUND_REMOVE]
    assert len({id(c) for c in consts}) == 3
    assert [repr(c) for c in consts] == ["UNBOUND", "UNBOUND_ERROR", "UNBOUND_REMOVE"]
    from interpool import interpreters as again

    assert again.UNBOUND is I.UNBOUND


# ---------------------------------------------------------------------------
# create, list_all, get_current, get_main
# ---------------------------------------------------------------------------


def test_create_returns_a_new_interpreter(interp):
    assert isinstance(interp, I.Interpreter)
    assert isinstance(interp.id, int) and interp.id > 0
    assert interp.whence == "interpool"
    assert not interp.is_running()
    assert interp != I.get_main()


def test_each_create_is_a_distinct_interpreter(make_interp):
    a, b = make_interp(), make_interp()
    assert a.id != b.id
    assert a.call(interp_tasks.current_id) == a.id
    assert b.call(interp_tasks.current_id) == b.id


def test_list_all_has_main_and_created(make_interp):
    a, b = make_interp(), make_interp()
    everything = I.list_all()
    assert all(isinstance(i, I.Interpreter) for i in everything)
    assert I.get_main() in everything
    assert a in everything and b in everything
    ids = [i.id for i in everything]
    assert len(ids) == len(set(ids))
    a.close()
    assert a not in I.list_all()
    assert b in I.list_all()


def test_get_main_and_get_current_in_main():
    main = I.get_main()
    assert main.id == 0
    assert main.whence == "runtime init"
    assert main.is_running()
    assert I.get_current() is main


def test_get_current_inside_an_interpreter(interp):
    assert interp.call(interp_tasks.current_id) == interp.id
    interp.exec("from interpool import interpreters as I; me = I.get_current().id; "
                "main = I.get_main().id; main_whence = I.get_main().whence")
    assert interp.call(interp_tasks.main_attr, "me") == interp.id
    assert interp.call(interp_tasks.main_attr, "main") == 0
    assert interp.call(interp_tasks.main_attr, "main_whence") == "runtime init"


# ---------------------------------------------------------------------------
# Interpreter objects: identity, equality, hashing, pickling
# ---------------------------------------------------------------------------


def test_one_object_per_id(interp):
    assert I.Interpreter(interp.id) is interp
    assert [i for i in I.list_all() if i.id == interp.id][0] is interp
    assert I.Interpreter(0) is I.get_main() is I.get_current()


def test_equality_and_hash_by_id(interp):
    assert interp == I.Interpreter(interp.id)
    assert hash(interp) == hash(interp.id)
    assert len({interp, I.Interpreter(interp.id), I.get_main()}) == 2
    assert interp != interp.id  # an Interpreter is not its id
    assert repr(interp) == f"Interpreter({interp.id})"


def test_pickles_as_a_handle(interp):
    data = pickle.dumps(interp)
    assert pickle.loads(data) is interp
    assert pickle.loads(pickle.dumps(I.get_main())) is I.get_main()


def test_pickled_handle_in_another_interpreter(make_interp):
    a, b = make_interp(), make_interp()
    a.prepare_main(data=pickle.dumps(b), main_data=pickle.dumps(I.get_main()))
    a.exec(textwrap.dedent("""
        import pickle
        from interpool import interpreters as I
        b = pickle.loads(data)
        info = (b.id, b.whence, b is I.Interpreter(b.id), pickle.loads(main_data) is I.get_main())
        b.exec("marker = 'set from another interpreter'")
    """))
    assert a.call(interp_tasks.main_attr, "info") == (b.id, "interpool", True, True)
    assert b.call(interp_tasks.main_attr, "marker") == "set from another interpreter"


def test_one_object_per_id_inside_an_interpreter(interp):
    checks = interp.call(interp_tasks.identity_checks, 0)
    assert checks == {"main_is_same": True, "main_eq": True, "current_is_same": True,
                      "current_in_list": True}


def test_constructor_checks_its_argument():
    with pytest.raises(TypeError):
        I.Interpreter("1")
    with pytest.raises(ValueError):
        I.Interpreter(-1)
    with pytest.raises(I.InterpreterNotFoundError):
        I.Interpreter(10**9)


def test_id_is_read_only(interp):
    with pytest.raises(AttributeError):
        interp.id = 5


# ---------------------------------------------------------------------------
# prepare_main
# ---------------------------------------------------------------------------


def test_prepare_main_binds_names(interp):
    interp.prepare_main({"a": 1, "b": "two"}, c=(3.0, None), d=[1, {"k": b"v"}])
    for name, value in [("a", 1), ("b", "two"), ("c", (3.0, None)), ("d", [1, {"k": b"v"}])]:
        assert interp.call(interp_tasks.main_attr, name) == value
    interp.exec("assert a == 1 and b == 'two' and d[1]['k'] == b'v'")


def test_prepare_main_keywords_win_over_the_dict(interp):
    interp.prepare_main({"x": 1}, x=2)
    assert interp.call(interp_tasks.main_attr, "x") == 2


def test_prepare_main_without_names_says_what_it_needs(interp):
    with pytest.raises(ValueError, match="names to bind"):
        interp.prepare_main()
    with pytest.raises(ValueError, match="names to bind"):
        interp.prepare_main({})
    # Not a mapping: said so ("'int' object is not iterable" named neither).
    with pytest.raises(TypeError, match=r"prepare_main\(\) takes a mapping of names to values .*not 'int'"):
        interp.prepare_main(1)
    interp.prepare_main([("pairs", 1)])  # what dict() takes, as the standard library's does


def test_prepare_main_copies_values(interp):
    data = [1, 2]
    interp.prepare_main(data=data)
    interp.exec("data.append(3)")
    assert data == [1, 2]
    assert interp.call(interp_tasks.main_attr, "data") == [1, 2, 3]


def test_prepare_main_objects_of_modules_cross_by_pickle(interp):
    interp.prepare_main(p=interp_tasks.Point(3, -4))
    interp.exec("n = p.norm1()")
    assert interp.call(interp_tasks.main_attr, "n") == 7


def test_prepare_main_names_the_unshareable_value(interp):
    with pytest.raises(I.NotShareableError) as e:
        interp.prepare_main(ok=1, grid=threading.Lock())
    assert "'grid'" in str(e.value)
    assert "lock" in str(e.value)
    with pytest.raises(I.NotShareableError, match="'grid'"):
        interp.prepare_main({"grid": threading.Lock()})
    # Nothing was bound: the values are checked before any is set.
    assert not interp.call(interp_tasks.main_has, "ok")


def test_prepare_main_names_must_be_str(interp):
    with pytest.raises(TypeError):
        interp.prepare_main({1: "x"})


# ---------------------------------------------------------------------------
# exec
# ---------------------------------------------------------------------------


def test_exec_source_runs_in_main(interp):
    interp.exec("x = 6 * 7\nimport sys\nname = __name__")
    assert interp.call(interp_tasks.main_attr, "x") == 42
    assert interp.call(interp_tasks.main_attr, "name") == "__main__"


def test_exec_keeps_state_between_calls(interp):
    interp.exec("items = []")
    for i in range(3):
        interp.exec(f"items.append({i})")
    assert interp.call(interp_tasks.main_attr, "items") == [0, 1, 2]


def test_call_runs_a_stateless_function_of_a_module_in_main(interp):
    # As 3.14's: a function that names builtins only crosses as its code and
    # runs in the interpreter's __main__; one that names its module's globals
    # runs in its module.
    assert interp.call(interp_tasks.global_named, "__name__") == "__main__"
    assert interp.call(interp_tasks.global_named, "spam") is None
    interp.exec("spam = True")
    assert interp.call(interp_tasks.global_named, "spam") is True
    interp.call(interp_tasks.bind_global, "spam", 42)
    interp.exec("assert spam == 42, spam")
    assert interp.call(interp_tasks.module_of_the_call) == "interp_tasks"


def test_exec_code_object(interp):
    code = compile("from_code = sum(range(10))", "<test>", "exec")
    interp.exec(code)
    assert interp.call(interp_tasks.main_attr, "from_code") == 45


def _body_without_arguments():
    global body_result  # binds in the __main__ of the interpreter that runs the body
    import sys

    body_result = (sys.version_info[:2], __name__)


def test_exec_function_runs_its_body(interp):
    interp.exec(_body_without_arguments)
    assert interp.call(interp_tasks.main_attr, "body_result") == (tuple(sys.version_info[:2]), "__main__")


def _takes_an_argument(x):
    return x


def test_exec_refuses_functions_with_arguments_or_closures(interp):
    with pytest.raises(ValueError, match="no arguments"):
        interp.exec(_takes_an_argument)
    y = 1

    def closure():
        return y

    with pytest.raises(ValueError, match=r"closure: it uses names of an enclosing function \(y\)"):
        interp.exec(closure)


def _returns_after_a_side_effect():
    global ran_anyway
    ran_anyway = True
    return 5


def _returns_none_explicitly():
    global returned_none
    returned_none = True
    if returned_none:
        return None
    return


def test_exec_refuses_code_that_takes_arguments_or_returns_a_value_before_running_it(interp):
    # As the standard library's exec(): a script takes nothing and returns nothing.
    refused = {
        "a code object with arguments": _takes_an_argument.__code__,
        "a code object with *args": compile("def f(*a): pass", "<test>", "exec").co_consts[0],
        "a function that returns a value": _returns_after_a_side_effect,
        "its code object": _returns_after_a_side_effect.__code__,
        "a lambda": lambda: 0,
        "an expression's code": compile("1 + 1", "<test>", "eval"),
    }
    for what, code in refused.items():
        with pytest.raises(ValueError, match="takes arguments|returns a value|no arguments"):
            interp.exec(code)
    interp.exec("ran_anyway = False")
    assert interp.call(interp_tasks.main_attr, "ran_anyway") is False  # nothing ran
    interp.exec(_returns_none_explicitly)  # a return of None is a script's
    assert interp.call(interp_tasks.main_attr, "returned_none") is True


def test_exec_refuses_code_it_cannot_run_alone():
    """A code object that needs an enclosing function's cells is refused, in
    a new interpreter and in the main one (run, it crashed the process), and so
    is a generator's or a coroutine's code, whose body would not run. In a
    child process: without the check, the process dies."""
    proc = run_script(
        """
        from interpool import interpreters as I
        from interpool import _interpool

        def outer():
            v = 1
            def inner():
                return v
            return inner

        def gen():
            yield 1

        async def coro():
            pass

        async def agen():
            yield 1

        it = I.create()
        for target in (it, I.get_main()):
            for code in (outer().__code__, gen.__code__, coro.__code__, agen.__code__, gen):
                try:
                    target.exec(code)
                    print("ran", flush=True)
                except ValueError as e:
                    print(str(e).split(":")[1].strip(), flush=True)
        # Below the face, the extension refuses it too (its failure comes back as data).
        import marshal
        failure = _interpool.interp_exec(it.id, marshal.dumps(outer().__code__))
        print(failure[1:3], flush=True)
        print("end", flush=True)
        """
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:5] == ["it uses names of an enclosing function (v); pass a function without them, or source text",
                         "it is a generator's, whose body would not run; pass a plain function, or source text",
                         "it is a coroutine's, whose body would not run; pass a plain function, or source text",
                         "it is an async generator's, whose body would not run; pass a plain function, or source text",
                         "it is a generator's, whose body would not run; pass a plain function, or source text"]
    assert lines[5:10] == lines[:5]
    assert lines[10:] == [
        "('ValueError', 'the code uses names of an enclosing function (free variables): it cannot run alone')", "end"]


@pytest.mark.parametrize("bad", [42, b"x = 1", None, ["x = 1"]])
def test_exec_refuses_other_types(interp, bad):
    with pytest.raises(TypeError):
        interp.exec(bad)


def test_exec_source_with_a_nul_character_is_refused(interp):
    with pytest.raises((ValueError, SyntaxError, I.ExecutionFailed)):
        interp.exec("x = 1\0raise SystemExit('after the NUL')")


def test_exec_runs_in_the_calling_thread(interp):
    interp.exec("import threading; tid = threading.get_ident()")
    assert interp.call(interp_tasks.main_attr, "tid") == threading.get_ident()


def test_exec_from_another_thread(interp):
    errors = []

    def run():
        try:
            interp.exec("import threading; other_tid = threading.get_ident()")
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    assert not errors
    tid = interp.call(interp_tasks.main_attr, "other_tid")
    assert tid == t.ident != threading.get_ident()


def test_exec_in_main_from_a_sub_interpreter(interp):
    import __main__

    try:
        interp.exec("from interpool import interpreters as I\n"
                    "I.get_main().exec('_interpool_test_marker = 17')")
        assert __main__._interpool_test_marker == 17
    finally:
        __main__.__dict__.pop("_interpool_test_marker", None)


# ---------------------------------------------------------------------------
# ExecutionFailed
# ---------------------------------------------------------------------------


def test_exec_failure_raises_execution_failed(interp):
    with pytest.raises(I.ExecutionFailed) as e:
        interp.exec("x = 1\nraise ValueError('bad value 42')")
    info = e.value.excinfo
    assert info.type.__name__ == "ValueError"
    assert info.type.__qualname__ == "ValueError"
    assert info.type.__module__ == "builtins"
    assert info.msg == "bad value 42"
    assert info.formatted == "ValueError: bad value 42"
    assert "Traceback (most recent call last)" in info.errdisplay
    assert "line 2" in info.errdisplay
    text = str(e.value)
    assert text.startswith("ValueError: bad value 42")
    assert "Uncaught in the interpreter" in text
    assert "Traceback (most recent call last)" in text
    assert isinstance(e.value, I.InterpreterError)
    # The interpreter lives on, with what ran before the error.
    assert interp.call(interp_tasks.main_attr, "x") == 1


def test_exec_failure_of_a_module_exception_type(interp):
    with pytest.raises(I.ExecutionFailed) as e:
        interp.exec("import interp_tasks\ninterp_tasks.fail('from a module')")
    info = e.value.excinfo
    assert info.type.__name__ == "CustomError"
    assert info.type.__module__ == "interp_tasks"
    assert info.msg == "from a module"
    assert info.formatted == "interp_tasks.CustomError: from a module"
    assert "in fail" in info.errdisplay  # the frame of interp_tasks.fail


def test_exec_syntax_error(interp):
    with pytest.raises(I.ExecutionFailed) as e:
        interp.exec("def (")
    assert e.value.excinfo.type.__name__ == "SyntaxError"
    assert "SyntaxError" in str(e.value)


def test_exec_system_exit_does_not_end_the_process(interp):
    with pytest.raises(I.ExecutionFailed) as e:
        interp.exec("raise SystemExit(3)")
    assert e.value.excinfo.type.__name__ == "SystemExit"
    assert interp.call(interp_tasks.add, 1, 1) == 2


def test_call_failure_raises_execution_failed(interp):
    with pytest.raises(I.ExecutionFailed) as e:
        interp.call(interp_tasks.fail, "call failed")
    info = e.value.excinfo
    assert (info.type.__name__, info.type.__module__, info.msg) == ("CustomError", "interp_tasks", "call failed")
    assert "interp_tasks.CustomError: call failed" in str(e.value)
    assert "in fail" in str(e.value)


# ---------------------------------------------------------------------------
# call
# ---------------------------------------------------------------------------


def test_call_returns_the_result(interp):
    assert interp.call(interp_tasks.add, 2, 3) == 5
    assert interp.call(interp_tasks.add, 2, b=5) == 7
    assert interp.call(divmod, 17, 5) == (3, 2)
    assert interp.call(interp_tasks.echo_args) == ((), {})


def test_call_keeps_an_object_in_two_places_one_object(interp):
    assert interp.call(value_shapes.shared_levels, [[1]] * 2) == 1
    assert interp.call(value_shapes.shared_levels, value_shapes.doubling(3)) == 3
    assert interp.call(value_shapes.shared_levels, value_shapes.doubling(60)) == 60
    out = interp.call(value_shapes.doubling, 60)
    assert value_shapes.shared_levels(out) == 60


def test_prepare_main_binds_one_object_to_two_names(interp):
    shared = [1]
    interp.prepare_main(a=shared, b=shared)
    interp.exec("assert a is b, (a, b)")


def test_call_runs_in_the_interpreter_and_the_calling_thread(interp):
    assert interp.call(interp_tasks.current_id) == interp.id
    assert interp.call(I.get_current) is interp  # an Interpreter result: the same object
    assert interp.call(interp_tasks.thread_ident) == threading.get_ident()


def test_call_passes_arguments_as_copies(interp):
    arg = {"k": [1, 2]}
    args, kwargs = interp.call(interp_tasks.echo_args, arg, 2.5, None, flag=True, data=b"\x00")
    assert args == (arg, 2.5, None) and kwargs == {"flag": True, "data": b"\x00"}
    assert args[0] is not arg


def test_call_keyword_named_callable(interp):
    # The callable is positional-only: a keyword argument may use its name.
    assert interp.call(interp_tasks.echo_args, callable=1) == ((), {"callable": 1})


def test_call_objects_cross_by_pickle(interp):
    p = interp_tasks.Point(1, 2)
    assert interp.call(interp_tasks.echo_args, p) == ((p,), {})
    assert interp.call(p.norm1) == 3  # a bound method
    assert interp.call(interp_tasks.Point, 5, 6) == interp_tasks.Point(5, 6)


def test_call_partial(interp):
    import functools

    assert interp.call(functools.partial(interp_tasks.add, 10), 5) == 15


def test_call_sends_lambdas_and_nested_functions_by_value(interp):
    assert interp.call(lambda: 1) == 1

    def nested(x):
        return [x, I.get_current().id]

    assert interp.call(nested, 2) == [2, interp.id]


def test_call_too_deep_argument_error_is_short(interp):
    x = []
    for _ in range(4999):
        x = [x]
    with pytest.raises(I.NotShareableError) as e:
        interp.call(interp_tasks.add, 1, x)
    message = str(e.value)
    assert message.startswith("cannot share argument 2[0][0][0][0]...[0][0] (a 'list' object "
                              "nested 1001 levels deep)"), message
    assert message.endswith("the limit is 1000 levels of nesting") and len(message) < 200, message


def test_call_result_that_cannot_cross_carries_its_place_as_data(interp):
    with pytest.raises(I.NotShareableError) as e:
        interp.call(interp_tasks.lock_in_grid)
    assert (e.value.where, e.value.path, e.value.what) == ("the result", ("['grid']", 1),
                                                           "a 'lock' object")


def test_call_names_the_unshareable_argument(interp):
    with pytest.raises(I.NotShareableError) as e:
        interp.call(interp_tasks.add, 1, threading.Lock())
    assert "argument 2" in str(e.value)
    with pytest.raises(I.NotShareableError, match="argument 1"):
        interp.call(interp_tasks.add, threading.Lock())
    with pytest.raises(I.NotShareableError, match="keyword argument 'b'"):
        interp.call(interp_tasks.add, 1, b=threading.Lock())
    with pytest.raises(I.NotShareableError, match=r"argument 2\[0\]"):
        interp.call(interp_tasks.echo_args, 1, [threading.Lock()])


def test_call_in_thread_returns_the_started_thread(interp):
    q = I.create_queue()
    t = interp.call_in_thread(interp_tasks.delayed_put, q, 0.05, "done")
    assert isinstance(t, threading.Thread)
    assert t.ident is not None  # started
    assert q.get(timeout=30) == "done"
    t.join(30)
    assert not t.is_alive()


def test_call_in_thread_arguments(interp):
    q = I.create_queue()
    t = interp.call_in_thread(interp_tasks.put_all, q, ["a", "b"])
    t.join(30)
    assert [q.get_nowait(), q.get_nowait()] == ["a", "b"]
    t = interp.call_in_thread(interp_tasks.put_with_unbound, q, item="kw", mode_name=None)
    t.join(30)
    assert q.get_nowait() == "kw"


def test_call_in_thread_many_threads(interp):
    q = I.create_queue()
    threads = [interp.call_in_thread(interp_tasks.produce, q, k, 50) for k in range(4)]
    for t in threads:
        t.join(60)
    got = sorted(q.get_nowait() for _ in range(200))
    assert got == sorted((k, i) for k in range(4) for i in range(50))
    assert q.empty()


# ---------------------------------------------------------------------------
# is_shareable
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, True, 1, 2**100, 1.5, "s", b"b", (1, "a", (None,)),
                                   [None, {1: 2.5}], frozenset({3})])
def test_is_shareable_true(value):
    assert I.is_shareable(value)


def test_is_shareable_memoryview():
    """As in 3.14's concurrent.interpreters; here it crosses as a copy unless it is
    over an interpool.SharedBuffer (test_shared_buffer.py)."""
    assert I.is_shareable(memoryview(b"data"))


def test_is_shareable_queue():
    assert I.is_shareable(I.create_queue())


@pytest.mark.parametrize("value", [object(), threading.Lock(), types.SimpleNamespace(a=1),
                                   interp_tasks.Point(1, 2), (1, object()), [1, threading.Lock()]])
def test_is_shareable_false(value):
    assert not I.is_shareable(value)


# ---------------------------------------------------------------------------
# Lifecycle
# ---------------------------------------------------------------------------


def test_close_then_every_operation_raises_not_found(interp):
    q = I.create_queue()
    interp.close()
    operations = {
        "exec": lambda: interp.exec("x = 1"),
        "call": lambda: interp.call(interp_tasks.add, 1, 2),
        "prepare_main": lambda: interp.prepare_main(q=q),
        "is_running": lambda: interp.is_running(),
        "whence": lambda: interp.whence,
        "close": lambda: interp.close(),
    }
    for name, op in operations.items():
        with pytest.raises(I.InterpreterNotFoundError):
            op()
    assert interp.id > 0  # the id stays readable
    assert interp not in I.list_all()


def test_call_in_thread_on_a_closed_interpreter_fails_in_the_thread(interp):
    interp.close()
    seen = []
    old_hook = threading.excepthook
    threading.excepthook = lambda args: seen.append(args.exc_type)
    try:
        interp.call_in_thread(interp_tasks.add, 1, 2).join(30)
    finally:
        threading.excepthook = old_hook
    assert seen == [I.InterpreterNotFoundError]


def test_constructing_a_closed_interpreter_by_id_fails_once_it_is_gone():
    interp = I.create()
    iid = interp.id
    interp.close()
    del interp
    import gc

    gc.collect()
    with pytest.raises(I.InterpreterNotFoundError):
        I.Interpreter(iid)


def test_constructing_a_closed_interpreter_by_id_fails(interp):
    interp.close()
    with pytest.raises(I.InterpreterNotFoundError):
        I.Interpreter(interp.id)


def test_close_while_running_raises_a_clear_error(interp):
    started, stop = I.create_queue(), I.create_queue()
    interp.prepare_main(started=started, stop=stop)
    t = threading.Thread(target=interp.exec, args=("started.put(1); stop.get()",))
    t.start()
    try:
        assert started.get(timeout=30) == 1
        assert interp.is_running()
        with pytest.raises(I.InterpreterError, match="running") as e:
            interp.close()
        assert not isinstance(e.value, I.InterpreterNotFoundError)
        assert interp in I.list_all()  # still there, still usable afterwards
    finally:
        stop.put("stop")
        t.join(30)
    assert not interp.is_running()
    interp.close()
    assert interp not in I.list_all()


def test_is_running_during_call(interp):
    q = I.create_queue()
    t = interp.call_in_thread(interp_tasks.get_n, q, 1)
    wait_until(interp.is_running, what="the call to start running")
    q.put("go")
    t.join(30)
    assert not interp.is_running()


def test_close_waits_for_threads_the_interpreter_started(interp):
    # The thread ends only once close() waits for it: if close returned without
    # waiting, the thread would still be held.
    _, thread_ended = _close_holding_a_thread(interp, lambda: None)
    assert thread_ended
    assert interp not in I.list_all()


def test_close_itself_fails_clearly(interp):
    with pytest.raises(I.ExecutionFailed) as e:
        interp.exec("from interpool import interpreters as I\nI.get_current().close()")
    assert e.value.excinfo.type.__name__ == "InterpreterError"
    assert "interpreter" in e.value.excinfo.msg
    assert interp in I.list_all()


def test_close_main_fails_clearly():
    with pytest.raises(I.InterpreterError, match="not created by interpool") as e:
        I.get_main().close()
    assert not isinstance(e.value, I.InterpreterNotFoundError)
    assert I.get_main().is_running()


def test_close_main_from_a_sub_interpreter_fails_clearly(interp):
    with pytest.raises(I.ExecutionFailed) as e:
        interp.exec("from interpool import interpreters as I\nI.get_main().close()")
    assert e.value.excinfo.type.__name__ == "InterpreterError"
    assert "not created by interpool" in e.value.excinfo.msg


def _foreign_interpreter():
    """An interpreter made by the standard library's low-level module: (id, handle to keep)."""
    try:
        import _interpreters
    except ImportError:
        import _xxsubinterpreters as low  # 3.12: the InterpreterID object owns the interpreter

        handle = low.create(isolated=True)
        return int(handle), (low, handle)
    iid = _interpreters.create()
    return iid, (_interpreters, iid)


def test_close_of_an_interpreter_not_created_by_interpool_fails_clearly():
    iid, (low, handle) = _foreign_interpreter()
    try:
        foreign = I.Interpreter(iid)
        assert foreign in I.list_all()
        assert I.Interpreter(handle) == foreign  # 3.12: an InterpreterID object, taken as its int
        assert foreign.whence not in ("interpool", "runtime init")
        with pytest.raises(I.InterpreterError, match="not created by interpool") as e:
            foreign.close()
        assert not isinstance(e.value, I.InterpreterNotFoundError)
        assert foreign in I.list_all()
    finally:
        low.destroy(handle)


def test_exec_on_an_interpreter_not_created_by_interpool_says_why():
    iid, (low, handle) = _foreign_interpreter()
    try:
        foreign = I.Interpreter(iid)
        with pytest.raises(I.InterpreterError) as e:
            foreign.exec("x = 1")
        assert not isinstance(e.value, I.InterpreterNotFoundError), str(e.value)
        assert f"interpreter {iid} was not created by interpool" in str(e.value)
        assert "use the module that created" in str(e.value)
        for attempt in (lambda: foreign.prepare_main(x=1), lambda: foreign.call(len, "ab")):
            with pytest.raises(I.InterpreterError, match="not created by interpool") as e:
                attempt()
            assert not isinstance(e.value, (I.InterpreterNotFoundError, I.ExecutionFailed))
        assert foreign in I.list_all()
    finally:
        low.destroy(handle)


def test_create_in_a_sub_interpreter(interp):
    info = interp.call(interp_tasks.nested_create_and_call)
    assert info["parent"] == interp.id
    assert info["sub"] not in (0, interp.id)
    assert info["whence"] == "interpool"
    assert info["result"] == 5
    assert info["sub_current"] == info["sub"]
    assert info["y"] == 21
    assert info["listed"]
    assert info["sub"] not in [i.id for i in I.list_all()]  # closed by the sub-interpreter


def test_create_in_a_sub_interpreter_with_exec(interp):
    interp.exec(textwrap.dedent("""
        from interpool import interpreters as I
        sub = I.create()
        sub.prepare_main(n=5)
        sub.exec("total = sum(range(n))")
        sub_id = sub.id
    """))
    sub_id = interp.call(interp_tasks.main_attr, "sub_id")
    # Interpreters are process-wide: the main interpreter sees and uses it too.
    sub = I.Interpreter(sub_id)
    assert sub in I.list_all()
    assert sub.whence == "interpool"
    assert sub.call(interp_tasks.main_attr, "total") == 10
    # Closing the parent does not close the child.
    interp.close()
    assert sub in I.list_all()
    assert sub.call(interp_tasks.add, 1, 2) == 3
    sub.close()
    assert sub not in I.list_all()


def test_closed_by_a_sub_interpreter(make_interp):
    a, b = make_interp(), make_interp()
    a.prepare_main(target=b.id)
    a.exec("from interpool import interpreters as I\nI.Interpreter(target).close()")
    assert b not in I.list_all()
    with pytest.raises(I.InterpreterNotFoundError):
        b.exec("x = 1")


def test_many_interpreters_in_threads_exact_results(make_interp):
    interps = [make_interp() for _ in range(4)]
    results = {}
    lock = threading.Lock()

    def work(interp, k):
        for i in range(20):
            r = interp.call(interp_tasks.add, k * 1000, i)
            with lock:
                results[(k, i)] = r

    threads = [threading.Thread(target=work, args=(interp, k)) for k, interp in enumerate(interps)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {(k, i): k * 1000 + i for k in range(4) for i in range(20)}


# Closing on another thread: run in a child process, so that a hang fails the test
# (after `timeout` seconds) instead of stopping the whole run.

CLOSE_ON_OTHER_THREAD = {
    "used on a thread, closed on main": """
        import threading
        from interpool import interpreters as I
        a = I.create()
        t = threading.Thread(target=a.exec, args=("x = 1",)); t.start(); t.join()
        a.close()
        print("closed", a not in I.list_all())
    """,
    "call_in_thread, closed on main": """
        from interpool import interpreters as I
        a = I.create()
        a.call_in_thread(divmod, 7, 2).join()
        a.close()
        print("closed", a not in I.list_all())
    """,
    "used on main, closed on a thread": """
        import threading
        from interpool import interpreters as I
        a = I.create()
        a.exec("x = 1")
        t = threading.Thread(target=a.close); t.start(); t.join()
        print("closed", a not in I.list_all())
    """,
    "created on a thread, left open at exit": """
        import threading
        from interpool import interpreters as I
        made = []
        t = threading.Thread(target=lambda: made.append(I.create().call(divmod, 7, 2))); t.start(); t.join()
        print("closed", made == [(3, 1)])
    """,
}


# 3.12 hung in threading._shutdown in these cases until 10ffaf2.
@pytest.mark.parametrize("case", sorted(CLOSE_ON_OTHER_THREAD))
def test_close_on_a_thread_other_than_first_use(case):
    proc = run_python(CLOSE_ON_OTHER_THREAD[case], timeout=20)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "closed True\n"
    assert proc.stderr == ""


def test_close_from_another_thread(interp):
    interp.exec("x = 1")  # used on this thread, closed on another
    errors = []

    def close():
        try:
            interp.close()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=close)
    t.start()
    t.join(30)
    assert not t.is_alive() and not errors
    assert interp not in I.list_all()
    with pytest.raises(I.InterpreterNotFoundError):
        interp.exec("x = 1")


def test_concurrent_close_only_one_wins(make_interp):
    interp = make_interp()
    interp.exec("x = 1")
    outcomes = []
    barrier = threading.Barrier(4)

    def close():
        barrier.wait()
        try:
            interp.close()
            outcomes.append("closed")
        except I.InterpreterError:
            outcomes.append("refused")  # which error: test_interpreter_being_closed_...

    threads = [threading.Thread(target=close) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["closed", "refused", "refused", "refused"]
    assert interp not in I.list_all()


# In the interpreter: a thread held until the file `release` exists, and a
# threading._shutdown (what ending an interpreter runs to join its threads) that
# first creates the file `joining`.
_HELD_THREAD = """
import os, threading, time

def _shutdown(join=threading._shutdown):
    open(joining, "w").close()
    join()

threading._shutdown = _shutdown

def hold():
    deadline = time.monotonic() + 60
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.005)
    open(ended, "w").close()

threading.Thread(target=hold).start()
"""


def _close_holding_a_thread(interp, probe):
    """Closes interp on this thread while a thread it started is held; once the
    close waits for that thread, runs probe() on another thread, then lets the
    thread end. Returns (what probe returned or raised, whether the held thread
    had ended when close returned)."""
    with tempfile.TemporaryDirectory() as d:
        joining, release, ended = (os.path.join(d, name) for name in ("joining", "release", "ended"))
        interp.prepare_main(joining=joining, release=release, ended=ended)
        interp.exec(_HELD_THREAD)
        seen = []

        def observe():
            try:
                wait_until(lambda: os.path.exists(joining), what="close to wait for the thread")
                try:
                    seen.append(probe())
                except Exception as e:  # noqa: BLE001
                    seen.append(e)
            finally:
                open(release, "w").close()

        t = threading.Thread(target=observe)
        t.start()
        interp.close()
        thread_ended = os.path.exists(ended)
        t.join(60)
        assert seen, "the close never waited for the interpreter's thread"
        return seen[0], thread_ended


def _while_closing(interp, probe):
    """Closes interp on this thread while it waits for a thread it started; runs
    probe() on another thread meanwhile; returns what probe returned or raised."""
    return _close_holding_a_thread(interp, probe)[0]


def test_interpreter_being_closed_is_not_closed_twice(interp):
    result = _while_closing(interp, interp.close)
    assert isinstance(result, I.InterpreterError)
    assert interp not in I.list_all()


def test_interpreter_being_closed_is_reported_as_such(interp):
    error = _while_closing(interp, interp.close)
    assert "not created by interpool" not in str(error), str(error)


def test_whence_while_being_closed(interp):
    whence = _while_closing(interp, lambda: interp.whence)
    assert whence == "interpool" or isinstance(whence, I.InterpreterNotFoundError), whence


def test_second_close_while_being_closed_says_so(interp):
    error = _while_closing(interp, interp.close)
    assert type(error) is I.InterpreterError
    assert f"interpreter {interp.id} is being closed" in str(error)


@pytest.mark.parametrize("use", ["exec", "call", "prepare_main"])
def test_use_while_being_closed_says_so(interp, use):
    probes = {"exec": lambda: interp.exec("pass"), "call": lambda: interp.call(len, "ab"),
              "prepare_main": lambda: interp.prepare_main(x=1)}
    error = _while_closing(interp, probes[use])
    assert type(error) is I.InterpreterError, repr(error)
    assert f"interpreter {interp.id} is being closed" in str(error)
    with pytest.raises(I.InterpreterNotFoundError):
        probes[use]()


def test_program_exits_with_interpreters_left_open():
    proc = run_python("""
        from interpool import interpreters as I
        a = I.create(); b = I.create()
        a.prepare_main(x=1)
        b.exec("import json")
        q = I.create_queue()
        a.prepare_main(q=q)
        a.exec("q.put(x + 1)")
        print(q.get(timeout=10))
    """, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "2\n"
    assert proc.stderr == ""


def test_unshareable_result_and_callable_raise_not_shareable_error(interp, monkeypatch):
    """As 3.14's concurrent.interpreters: NotShareableError itself, not an
    ExecutionFailed, when the result cannot come back or the callable cannot go."""
    with pytest.raises(I.NotShareableError, match="the result"):
        interp.call(interp_tasks.make_lock)
    with pytest.raises(I.NotShareableError, match="the result"):
        interp.call(interp_tasks.main_attr, "__builtins__")  # a module
    # Raised by the function itself, it is the function's error.
    with pytest.raises(I.ExecutionFailed, match="NotShareableError"):
        interp.call(interp_tasks.raise_not_shareable)
    monkeypatch.setitem(sys.modules, "cloudpickle", None)  # as if not installed
    k = 1
    with pytest.raises(I.NotShareableError, match="closure"):
        interp.call(lambda: k)


def test_a_callable_that_cannot_cross_is_named(interp):
    holder = interp_tasks.LockHolder()
    with pytest.raises(I.NotShareableError) as info:
        interp.call(holder.method)
    assert "the callable 'LockHolder.method'" in str(info.value)
    assert "__interpool_fn__" not in str(info.value)
    with pytest.raises(I.NotShareableError, match="argument 1"):  # an argument is named as such
        interp.call(interp_tasks.add, threading.Lock())


def test_a_function_that_names_no_globals_runs_in_the_interpreters_main(interp):
    # As 3.14's call(): such a function sees what exec and prepare_main bound in
    # __main__, and what it binds there stays.
    def get(name):
        return globals().get(name)

    def put(name, value):
        globals()[name] = value

    assert interp.call(get, "__name__") == "__main__"
    interp.exec("spam = True")
    assert interp.call(get, "spam") is True
    interp.call(put, "spam", 42)
    assert interp.call(eval, "spam") == 42
