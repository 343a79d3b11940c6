"""Programs as people write them, run as they run them: scripts that import numpy
at their top, lambdas and closures, `python -c`, `python -` (stdin), builtins
that need a frame, refused imports caught inside a task, and the fallback's
warning. Whole programs run as child processes; a notebook runs in
test_notebook.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import interpool  # noqa: E402
from support import run_python  # noqa: E402
from interpool import interpreters  # noqa: E402

pytest.importorskip("numpy")


def run_program(tmp_path, source, *, how="script", no_cloudpickle=False, timeout=120):
    """Runs `source` as a script file, with `python -c` or with `python -` (stdin);
    returns the JSON object of its last stdout line, and the process."""
    source = textwrap.dedent(source)
    if no_cloudpickle:  # as if cloudpickle were not installed
        source = "import sys; sys.modules['cloudpickle'] = None\n" + source
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE] + [p for p in sys.path if p]))
    if how == "script":
        path = tmp_path / "prog.py"
        path.write_text(source)
        args, stdin = [str(path)], None
    elif how == "-c":
        args, stdin = ["-c", source], None
    else:
        args, stdin = ["-"], source
    proc = subprocess.run([sys.executable, *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, cwd=tmp_path, env=env)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc


# -- a script whose top imports a module that refuses interpreters ----------------

NUMPY_SCRIPT = """
    import json
    import os
    import warnings

    import numpy as np
    from numpy import arange
    try:
        import numpy.linalg as la
    except ImportError:
        la = None

    import interpool


    def pure(x):                         # uses no numpy: runs on the interpreters
        return [x * 2, os.getpid()]


    def annotated(x: np.ndarray) -> int:  # an annotation evaluated at load
        return x + 1


    def uses_np(n):
        return int(np.arange(n).sum())


    def uses_from(n):
        return int(arange(n).sum())


    def uses_la():
        return float(la.norm([3.0, 4.0]))


    if __name__ == "__main__":
        out = {"pid": os.getpid()}
        with interpool.Executor(2) as ex:
            out["pure"] = list(ex.map(pure, range(4)))
            out["annotated"] = ex.submit(annotated, 1).result()
            errors = []
            for fn, args in ((uses_np, (5,)), (uses_from, (5,)), (uses_la, ())):
                exc = ex.submit(fn, *args).exception()
                errors.append([type(exc).__name__, isinstance(exc, ImportError),
                               getattr(exc, "module", None), str(exc)])
            out["errors"] = errors
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with interpool.Executor(2, fallback="process") as ex:
                out["fallback"] = [ex.submit(uses_np, 5).result(), ex.submit(uses_np, 6).result(),
                                   list(ex.map(uses_np, [3, 4])), ex.submit(pure, 1).result()]
            out["warnings"] = [[w.category.__name__, str(w.message)] for w in caught
                               if issubclass(w.category, interpool.FallbackWarning)]
        print(json.dumps(out))
"""


def test_script_importing_numpy_runs_its_pure_tasks_on_interpreters(tmp_path):
    out, _ = run_program(tmp_path, NUMPY_SCRIPT)
    pid = out["pid"]
    assert out["pure"] == [[0, pid], [2, pid], [4, pid], [6, pid]]  # this process: interpreters
    assert out["annotated"] == 2
    touched = ["numpy.arange", "numpy.arange(...)", "numpy.linalg.norm"]
    for (name, is_import_error, module, text), used in zip(out["errors"], touched):
        assert (name, is_import_error, module) == ("IncompatibleModuleError", True, "numpy")
        assert f"cannot use {used} in a worker interpreter" in text
        assert "fallback=\"process\"" in text


def test_fallback_runs_numpy_tasks_in_processes_and_warns_once_per_function(tmp_path):
    out, _ = run_program(tmp_path, NUMPY_SCRIPT)
    assert out["fallback"][:3] == [10, 15, [3, 6]]
    assert out["fallback"][3][1] == out["pid"]  # the pure task stayed on the interpreters
    assert len(out["warnings"]) == 1, out["warnings"]
    category, text = out["warnings"][0]
    assert category == "FallbackWarning"
    assert "__main__.uses_np" in text and "'numpy'" in text


def test_top_level_values_computed_from_a_refused_module(tmp_path):
    # Arithmetic, comparisons and np.__version__ at the script's top level: the
    # worker's copy of the script failed to load (TypeError, AttributeError),
    # and every task of the script with it. Now they load as placeholders; a
    # value the top level needs (a test, a length) fails clearly, and with
    # fallback="process" the tasks run in processes.
    pytest.importorskip("numpy")
    out, _ = run_program(tmp_path, """
        import json
        import os
        import sys
        import numpy as np
        import interpool

        EPS = np.finfo(float).eps * 10
        NEW_NUMPY = np.__version__ >= "2"
        SCALED = -(2 ** np.pi) / 3
        if sys.argv[1:] == ["decide"]:
            N = len(np.arange(3))

        def pure(x):
            return [x + 1, os.getpid()]

        def uses_eps():
            return EPS > 0

        if __name__ == "__main__":
            import subprocess
            if sys.argv[1:] == ["decide"]:
                out = {"pid": os.getpid()}
                with interpool.Executor(1) as ex:
                    e = ex.submit(pure, 1).exception()
                    out["error"] = [type(e).__name__, str(e)]
                with interpool.Executor(1, fallback="process") as ex:
                    out["fallback"] = ex.submit(pure, 1).result()
                print(json.dumps(out))
            else:
                with interpool.Executor(1) as ex:
                    out = {"pid": os.getpid(), "pure": ex.submit(pure, 1).result()}
                    e = ex.submit(uses_eps).exception()
                    out["eps"] = [type(e).__name__, str(e)]
                decided = subprocess.run([sys.executable, __file__, "decide"], capture_output=True,
                                         text=True, timeout=60)
                out["decide"] = json.loads(decided.stdout.splitlines()[-1])
                print(json.dumps(out))
    """)
    assert out["pure"] == [2, out["pid"]]  # the script loaded in the worker
    name, text = out["eps"]
    assert name == "IncompatibleModuleError"
    assert "cannot use numpy.finfo(...).eps * ... > ... in a worker interpreter" in text
    decide = out["decide"]
    name, text = decide["error"]
    assert name == "IncompatibleModuleError"
    assert "numpy.arange(...) (as a value your script's top level needs" in text
    assert decide["fallback"][0] == 2 and decide["fallback"][1] != decide["pid"]


def test_a_library_that_catches_the_refusal_still_sees_importerror(tmp_path):
    """PyYAML imports its libyaml extension in a try: and falls back to pure
    Python on ImportError. Imported by the script's top, it must still take that
    path (a placeholder would hide the error from it)."""
    pytest.importorskip("yaml")
    out, _ = run_program(tmp_path, """
        import json
        import yaml
        import interpool

        def load(text):
            return [yaml.__with_libyaml__, yaml.safe_load(text), hasattr(yaml, "CSafeLoader")]

        if __name__ == "__main__":
            with interpool.Executor(1) as ex:
                print(json.dumps(ex.submit(load, "a: [1, 2]").result()))
    """)
    assert out == [False, {"a": [1, 2]}, False]


def test_incompatible_module_error_is_raised_inside_the_task():
    import executor_tasks

    with interpool.Executor(1) as ex:
        caught = ex.submit(executor_tasks.import_numpy_catching).result()
    assert caught == ["IncompatibleModuleError", "numpy", True]


def test_incompatible_module_error_inside_an_interpreter(interp):
    interp.exec(textwrap.dedent("""
        import interpool
        try:
            import numpy
        except interpool.IncompatibleModuleError as e:
            caught = e.module
    """))
    assert interp.call(eval, "caught") == "numpy"


# -- functions by value ------------------------------------------------------------

SCALE = 3


def test_lambda_nested_function_and_recursion_by_value():
    def fact(n):
        return 1 if n < 2 else n * FACT(n - 1)

    global FACT
    FACT = fact
    with interpool.Executor(2) as ex:
        assert list(ex.map(lambda x: x * SCALE, range(4))) == [0, 3, 6, 9]
        assert ex.submit(fact, 6).result() == 720
        assert ex.submit(lambda: interpreters.get_current().id).result() != 0


def test_closure_crosses_through_cloudpickle():
    pytest.importorskip("cloudpickle")
    k = 10
    with interpool.Executor(2) as ex:
        assert list(ex.map(lambda x: x + k, range(3))) == [10, 11, 12]


def test_closure_without_cloudpickle_is_refused_at_submit(tmp_path):
    out, _ = run_program(tmp_path, """
        import json
        import interpool

        def make(k):
            return lambda x: x + k

        if __name__ == "__main__":
            with interpool.Executor(1) as ex:
                try:
                    ex.submit(make(1), 1)
                except TypeError as e:
                    print(json.dumps(str(e)))
    """, no_cloudpickle=True)
    assert "it is a closure" in out and "interpool[cloudpickle]" in out


PROGRAM = """
    import json, os
    import interpool

    scale = 4

    def helper(x):
        return x * scale

    class Box:
        def __init__(self, v):
            self.v = v

    def boxed(x):
        return Box(x).v

    with interpool.Executor(2) as ex:
        out = {
            "map": list(ex.map(helper, range(4))),
            "lambda": ex.submit(lambda x: helper(x) + 1, 2).result(),
            "same_process": ex.submit(lambda: os.getpid()).result() == os.getpid(),
        }
        try:
            out["class"] = ex.submit(boxed, 5).result()
        except Exception as e:
            out["class"] = [type(e).__name__, str(e)]
    print(json.dumps(out))
"""


@pytest.mark.parametrize("how", ["-c", "-"])
@pytest.mark.parametrize("cloudpickle", [True, False])
def test_programs_from_the_command_line_and_stdin(tmp_path, how, cloudpickle):
    if cloudpickle:
        pytest.importorskip("cloudpickle")
    out, proc = run_program(tmp_path, PROGRAM, how=how, no_cloudpickle=not cloudpickle)
    assert out["map"] == [0, 4, 8, 12]
    assert out["lambda"] == 9
    assert out["same_process"] is True
    if cloudpickle:
        assert out["class"] == 5
    else:  # a class of this __main__ needs cloudpickle: its use says so
        name, text = out["class"]
        assert name == "NotShareableError"
        assert "'Box'" in text and "interpool[cloudpickle]" in text


def test_stdin_program_with_fallback_gets_a_clear_error(tmp_path):
    out, _ = run_program(tmp_path, """
        import json
        import interpool

        def uses_np(n):
            import numpy
            return int(numpy.arange(n).sum())

        with interpool.Executor(1, fallback="process") as ex:
            exc = ex.submit(uses_np, 3).exception()
        print(json.dumps([type(exc).__name__, str(exc)]))
    """, how="-")
    name, text = out
    assert name == "CannotSpawn" and "'<stdin>'" in text and "Save the program to a file" in text


def test_functions_by_value_in_interpreters_call_and_initializer(interp):
    assert interp.call(lambda a, b=2: a * b, 21) == 42
    thread_result = []
    t = interp.call_in_thread(lambda: thread_result.append(1))  # runs there: nothing here
    t.join()
    assert thread_result == []
    with interpool.Executor(1, initializer=lambda: interpool.shared.get("x")) as ex:
        assert ex.submit(lambda: 5).result() == 5


def test_functions_by_value_as_arguments_results_and_queue_items(interp):
    def apply(f, x):
        return f(x)

    assert interp.call(apply, lambda y: y * 3, 5) == 15
    assert interp.call(lambda: lambda z: z + 1)(41) == 42  # a function as the result
    q = interpreters.create_queue()
    interp.prepare_main(q=q)
    interp.exec("q.put(lambda: 'from there')")
    assert q.get()() == "from there"
    with interpool.Executor(1) as ex:
        assert ex.submit(apply, lambda y: -y, 2).result() == -2
        assert ex.submit(lambda: [lambda: 1]).result()[0]() == 1


def test_closure_as_argument_needs_cloudpickle(interp):
    pytest.importorskip("cloudpickle")
    k = 7
    assert interp.call(lambda f: f(1), lambda x: x + k) == 8
    # A class that exists only in the interpreter's __main__ comes back by value.
    interp.exec("class Local:\n    def __init__(self):\n        self.v = 3")
    made = interp.call(eval, "Local()")
    assert type(made).__name__ == "Local" and made.v == 3


# -- builtins that need a frame ----------------------------------------------------


def test_call_with_builtins_that_need_a_frame(interp):
    assert interp.call(eval, "1 + 1") == 2
    assert interp.call(exec, "answer = 42") is None
    assert interp.call(eval, "answer") == 42
    names = interp.call(dir)
    assert "answer" in names and names == sorted(names)
    assert interp.call(globals)["answer"] == 42
    assert interp.call(locals)["answer"] == 42
    assert interp.call(vars)["answer"] == 42
    assert interp.call(eval, "x + 1", {"x": 1}) == 2  # explicit namespaces are kept
    with interpool.Executor(1) as ex:
        assert ex.submit(eval, "2 * 21").result() == 42


# -- the functions cache keeps nothing alive ---------------------------------------


def test_a_submitted_bound_method_is_not_kept_alive():
    import gc
    import weakref

    import executor_tasks

    with interpool.Executor(1) as ex:
        obj = executor_tasks.Holder()
        ref = weakref.ref(obj)
        assert ex.submit(obj.method).result() == 7
        del obj
        gc.collect()
        assert ref() is None


def test_functions_defined_under_the_main_guard_cross_by_value(tmp_path):
    out, _ = run_program(tmp_path, """
        import json
        import interpool

        def top(x):
            return x + 1

        if __name__ == "__main__":
            def guarded(x):                # the workers' copy of the script never defines it
                return top(x) * 10
            with interpool.Executor(1) as ex:
                print(json.dumps([ex.submit(guarded, 1).result(), list(ex.map(guarded, [2]))]))
    """)
    assert out == [20, [30]]


def test_fallback_with_an_initializer_by_value(tmp_path):
    out, _ = run_program(tmp_path, """
        import json, os, warnings
        import interpool

        def uses_np(n):
            import numpy
            return [int(numpy.arange(n).sum()), os.environ.get("INIT_TAG"), os.getpid()]

        if __name__ == "__main__":
            warnings.simplefilter("ignore", interpool.FallbackWarning)
            def init(tag):                  # nested: crosses by value, to processes too
                import os
                os.environ["INIT_TAG"] = tag
            with interpool.Executor(1, initializer=init, initargs=("init ran",),
                                    fallback="process") as ex:
                total, tag, pid = ex.submit(uses_np, 4).result()
            print(json.dumps([total, tag, pid != os.getpid()]))
    """)
    assert out == [6, "init ran", True]


def test_fallback_warning_can_be_filtered(tmp_path):
    out, _ = run_program(tmp_path, """
        import json, warnings
        import interpool

        def uses_np(n):
            import numpy
            return int(numpy.arange(n).sum())

        if __name__ == "__main__":
            warnings.simplefilter("error")
            warnings.filterwarnings("ignore", category=interpool.FallbackWarning)
            with interpool.Executor(1, fallback="process") as ex:
                print(json.dumps(ex.submit(uses_np, 4).result()))
    """)
    assert out == 6


# -- classes of the main guard, globals of functions sent by value ------------------

GUARDED_CLASS = """
    import json
    import interpool

    def attr(x):
        return x.v

    if __name__ == "__main__":
        class Guarded:                     # the workers' copy of the script never defines it
            def __init__(self, v):
                self.v = v

        out = {}
        with interpool.Executor(1) as ex:
            for name, run in [("argument", lambda: ex.submit(attr, Guarded(3)).result()),
                              ("global", lambda: ex.submit(lambda: Guarded(4).v).result())]:
                try:
                    out[name] = run()
                except Exception as e:
                    out[name] = [type(e).__name__, str(e)]
        print(json.dumps(out))
"""


def test_a_class_of_the_main_guard_crosses_through_cloudpickle(tmp_path):
    pytest.importorskip("cloudpickle")
    out, _ = run_program(tmp_path, GUARDED_CLASS)
    assert out == {"argument": 3, "global": 4}


def test_a_class_of_the_main_guard_without_cloudpickle_is_refused_at_submit(tmp_path):
    out, _ = run_program(tmp_path, GUARDED_CLASS, no_cloudpickle=True)
    kind, message = out["argument"]
    assert kind == "NotShareableError"
    assert "Guarded" in message and "cloudpickle" in message
    kind, message = out["global"]  # the lambda runs; its global is a stand-in saying why
    assert kind == "NotShareableError" and "'Guarded'" in message and "cloudpickle" in message


def test_globals_of_a_map_by_value_are_pickled_once(tmp_path):
    out, _ = run_program(tmp_path, """
        import json
        import interpool

        class Counted:
            pickled = 0
            def __reduce__(self):
                Counted.pickled += 1
                return (Counted, ())

        TABLE = Counted()
        BIG = list(range(200_000))         # pickled once, then shared, not sent per chunk

        if __name__ == "__main__":
            with interpool.Executor(2) as ex:
                got = list(ex.map(lambda i: (TABLE, BIG[i])[1], range(100), chunksize=10))
            print(json.dumps([Counted.pickled, got == list(range(100))]))
    """)
    assert out == [1, True]


def test_a_global_sent_by_value_is_not_kept_alive_after_the_program_deletes_it(tmp_path):
    out, _ = run_program(tmp_path, """
        import gc
        import json
        import weakref
        import interpool

        class Table:
            size = 3

        if __name__ == "__main__":
            table = Table()
            gone = weakref.ref(table)
            with interpool.Executor(1) as ex:
                sizes = [ex.submit(lambda: table.size).result()]
                del table
                sizes.append(ex.submit(lambda: 4).result())
                gc.collect()
                freed = gone() is None
                table = Table()
                table.size = 5
                sizes.append(ex.submit(lambda: table.size).result())
            print(json.dumps([sizes, freed]))
    """)
    assert out == [[3, 4, 5], True]


def test_a_global_that_cannot_be_sent_is_named_when_used(tmp_path):
    out, _ = run_program(tmp_path, """
        import json
        import threading
        import interpool

        if __name__ == "__main__":
            lk = threading.Lock()

            def uses_lock(use):
                if not use:
                    return "ran"
                with lk:
                    return "locked"

            with interpool.Executor(1) as ex:
                out = [ex.submit(uses_lock, False).result()]
                e = ex.submit(uses_lock, True).exception()
                out += [type(e).__name__, str(e)]
            print(json.dumps(out))
    """)
    assert out[:2] == ["ran", "NotShareableError"]
    assert "'lk'" in out[2] and "'lock'" in out[2] and "ByValue" not in out[2]


@pytest.mark.parametrize("how", ["-c", "-"])
def test_worker_globals_by_value_persist_as_a_scripts_do(tmp_path, how):
    # An initializer's global, a counter the task rebinds, and a value the
    # caller rebinds between submits: as with a script's module in the worker,
    # except that the caller's new binding reaches the worker.
    out, _ = run_program(tmp_path, """
        import json
        import interpool

        calls = 0
        LIMIT = 5

        def init(v):
            global STATE
            STATE = v

        def task(x):
            return STATE + x

        def count(_):
            global calls
            calls += 1
            return calls

        def limit():
            return LIMIT

        with interpool.Executor(1, initializer=init, initargs=(100,)) as ex:
            out = [ex.submit(task, 1).result(), list(ex.map(count, range(3), chunksize=1)),
                   ex.submit(limit).result()]
            LIMIT = 10
            out += [ex.submit(limit).result(), ex.submit(count, 0).result(), calls]
        print(json.dumps(out))
    """, how=how)
    assert out == [101, [1, 2, 3], 5, 10, 4, 0]


@pytest.mark.parametrize("how", ["-c", "-"])
def test_a_global_the_caller_changes_in_place_reaches_the_workers(tmp_path, how):
    # The same dict, list and object, changed in place between two maps: the
    # workers saw the first contents for ever (a wrong result, silently).
    out, _ = run_program(tmp_path, """
        import json
        import types
        import interpool

        params = {"scale": 1}
        seen = []
        box = types.SimpleNamespace(offset=0)
        calls = 0

        def f(x):
            global calls
            calls += 1
            return [x * params["scale"] + box.offset, len(seen), calls]

        with interpool.Executor(1) as ex:
            out = [list(ex.map(f, range(2)))]
            params["scale"] = 100
            seen.append(1)
            box.offset = 7
            out.append(list(ex.map(f, range(2))))
            out.append(ex.submit(f, 1).result())
        print(json.dumps(out))
    """, how=how)
    # the worker's own counter goes on: the caller's `calls` did not change
    assert out == [[[0, 0, 1], [1, 0, 2]], [[7, 1, 3], [107, 1, 4]], [107, 1, 5]]


@pytest.mark.parametrize("how", ["-c", "-"])
def test_a_global_holding_a_function_by_value_keeps_the_workers_changes(tmp_path, how):
    # Its pickle differs at each send (the function's token): the worker's
    # copy was replaced at every submit, losing what the worker's tasks did.
    out, _ = run_program(tmp_path, """
        import json
        import interpool

        def helper(x):
            return x + 1

        table = {"f": helper, "count": 0}

        def bump():
            table["count"] += 1
            return table["f"](table["count"])

        with interpool.Executor(1) as ex:
            print(json.dumps([ex.submit(bump).result() for _ in range(4)]))
    """, how=how)
    assert out == [2, 3, 4, 5]


def test_functions_by_value_that_reach_each_other_through_a_global_value_fail_clearly(tmp_path):
    # The submit never returned: each pickle of the table sent its functions
    # again, each with the table.
    out, _ = run_program(tmp_path, """
        import json
        import interpool

        def even(n):
            return True if n == 0 else TABLE["odd"](n - 1)

        def odd(n):
            return False if n == 0 else TABLE["even"](n - 1)

        TABLE = {"even": even, "odd": odd}

        with interpool.Executor(1) as ex:
            e = ex.submit(even, 4).exception(timeout=60)
        print(json.dumps([type(e).__name__, str(e)]))
    """, how="-c", timeout=90)
    name, text = out
    assert name == "NotShareableError"
    assert "the global 'TABLE' was not sent" in text and "define those functions in a module" in text


@pytest.mark.parametrize("fn, args, position", [
    (vars, ("LOCK",), 1), (dir, ("LOCK",), 1), (eval, ("1", "LOCK"), 2), (len, ("LOCK",), 1)])
def test_frame_builtins_number_the_arguments_as_the_user_does(interp, fn, args, position):
    import threading

    args = tuple(threading.Lock() if a == "LOCK" else a for a in args)
    with pytest.raises(interpreters.NotShareableError, match=f"argument {position} "):
        interp.call(fn, *args)
    with interpool.Executor(1) as ex:
        with pytest.raises(interpreters.NotShareableError, match=f"argument {position} "):
            ex.submit(fn, *args)


# -- datetime's C module in several interpreters ----------------------------------

DATETIME_SCRIPT = """
    import json
    import sys

    import interpool
    from interpool import interpreters


    def parse(text, barrier):
        barrier.wait(60)  # every worker imports them, at the same time
        import decimal, sqlite3, yaml, zoneinfo
        when = yaml.safe_load(text)["when"].replace(tzinfo=zoneinfo.ZoneInfo("UTC"))
        return [when.isoformat(), str(decimal.Decimal(when.minute) / 4)]


    if __name__ == "__main__":
        out = {"main_had_datetime": "_datetime" in sys.modules, "rounds": []}
        for _ in range(4):
            with interpool.Executor(2) as ex:
                barrier = interpool.Barrier(2)
                docs = ["when: 2024-12-06 10:00:00", "when: 2024-11-30 08:30:00"]
                out["rounds"].append(list(ex.map(parse, docs, [barrier] * 2, chunksize=1)))
        first, second = interpreters.create(), interpreters.create()
        for interp in (first, second):
            interp.exec("import datetime; d = datetime.date(2024, 12, 6)")
        first.close()
        second.exec("import datetime; assert datetime.date(2024, 12, 6) == d")
        second.close()
        print(json.dumps(out))
"""


def test_workers_importing_datetime_through_real_libraries_end_cleanly(tmp_path):
    """PyYAML, sqlite3 and zoneinfo import datetime's C module. On CPython 3.13 the
    first interpreter to import it kept parts of its types that later importers
    share: ending it first (or two importing at once) crashed the process, whose
    main interpreter had not imported datetime itself. On 3.12, which refuses that
    module (and decimal's) here, their init functions ran in the worker first and
    left objects of the worker behind (the same crash), and zoneinfo raised
    AttributeError."""
    out, proc = run_program(tmp_path, DATETIME_SCRIPT)
    assert out["main_had_datetime"] is False
    assert out["rounds"] == [[["2024-12-06T10:00:00+00:00", "0"],
                              ["2024-11-30T08:30:00+00:00", "7.5"]]] * 4
    assert proc.stderr == ""


MAIN_IMPORT_FAILS_SCRIPT = """
    import json
    import sys


    class FailOnce:
        calls = 0

        def find_spec(self, name, path=None, target=None):
            if name == "_datetime":
                FailOnce.calls += 1
                if FailOnce.calls == 1:
                    raise RuntimeError("no datetime this time")
            return None


    sys.meta_path.insert(0, FailOnce())
    from interpool import interpreters

    interpreters.create().close()
    after_first = "_datetime" in sys.modules
    interpreters.create().close()
    print(json.dumps([FailOnce.calls, after_first, "_datetime" in sys.modules]))
"""


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="3.14 needs no import in the main interpreter")
def test_a_failed_import_in_the_main_interpreter_is_said_and_tried_again(tmp_path):
    """The main interpreter imports datetime's C module before the first worker
    (see the test above). An import hook that stops it is reported, not hidden,
    and the next creation tries again."""
    out, proc = run_program(tmp_path, MAIN_IMPORT_FAILS_SCRIPT)
    assert out == [2, False, True]
    assert "importing _datetime in the main interpreter" in proc.stderr
    assert "no datetime this time" in proc.stderr


ZONEINFO_SCRIPT = """
    import datetime
    import json
    import zoneinfo

    import interpool


    def offset(day):
        import zoneinfo
        return str(day.replace(tzinfo=zoneinfo.ZoneInfo("UTC")).utcoffset())


    if __name__ == "__main__":
        day = datetime.datetime(2024, 12, 6)
        utc = zoneinfo.ZoneInfo("UTC")
        out = [str(day.replace(tzinfo=utc).utcoffset())]
        with interpool.Executor(1) as ex:
            out.append(ex.submit(offset, day).result())
        out.append(str(day.replace(tzinfo=utc).utcoffset()))
        print(json.dumps(out))
"""


def test_zoneinfo_of_the_main_interpreter_outlives_a_worker_importing_it(tmp_path):
    """On 3.12, the C part of zoneinfo loaded in a worker stored a null pointer
    where the main interpreter's copy keeps datetime's C API: the main
    interpreter's next ZoneInfo use crashed the process. Workers refuse it there,
    and their zoneinfo is the pure-Python one."""
    out, proc = run_program(tmp_path, ZONEINFO_SCRIPT)
    assert out == ["0:00:00"] * 3
    assert proc.stderr == ""
