"""The extension inside sub-interpreters made by the standard library with the
isolated configuration (own GIL, own obmalloc, multi-phase init required).

3.13: _interpreters.create('isolated') + run_string (returns None or an
exception snapshot). 3.12: _xxsubinterpreters.create(isolated=True) +
run_string (raises RunFailedError). Results come back through interpool
Queues, reached inside with queue_from_id.
"""

import sys
import textwrap
import threading

import pytest

import interpool._interpool as ip
from support import HERE

if sys.version_info >= (3, 13):
    _interpreters = pytest.importorskip("_interpreters")

    def _create(config="isolated"):
        return _interpreters.create(config)

    def _run(iid, code):
        failure = _interpreters.run_string(iid, code)
        if failure is not None:
            raise SubInterpreterFailed(f"{failure.type.__name__}: {failure.msg}\n{failure.errdisplay}")

    def _config(iid):
        return _interpreters.get_config(iid)

else:
    _interpreters = pytest.importorskip("_xxsubinterpreters")

    def _create(config="isolated"):
        return _interpreters.create(isolated=(config == "isolated"))

    def _run(iid, code):
        try:
            _interpreters.run_string(iid, code)
        except _interpreters.RunFailedError as e:
            raise SubInterpreterFailed(str(e)) from e

    def _config(iid):
        return None


class SubInterpreterFailed(AssertionError):
    """Code run in a sub-interpreter raised; the message describes it."""


class SubInterpreter:
    """A stdlib sub-interpreter whose code can import what this process can."""

    def __init__(self, config="isolated"):
        self.id = _create(config)
        self.closed = False
        self.run(f"import sys; sys.path[:] = {list(sys.path) + [HERE]!r}")

    def run(self, code, **names):
        """Runs code there; `names` are formatted in ({name} placeholders)."""
        code = textwrap.dedent(code)
        if names:
            code = code.format(**names)
        _run(self.id, code)

    def close(self):
        if not self.closed:
            self.closed = True
            _interpreters.destroy(self.id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.fixture
def sub():
    with SubInterpreter() as s:
        yield s


def test_stdlib_isolated_config():
    with SubInterpreter() as s:
        config = _config(s.id)
        if config is not None:  # 3.13 can tell
            assert config.gil == "own"
            assert config.check_multi_interp_extensions is True
            assert config.use_main_obmalloc is False


def test_errors_inside_are_reported(sub):
    # The harness itself must be able to fail.
    with pytest.raises(SubInterpreterFailed, match="ZeroDivisionError"):
        sub.run("1 / 0")


def test_extension_imports_and_reports_its_interpreter(sub):
    q = ip.Queue.create()
    sub.run(
        """
        import interpool
        import interpool._interpool as m
        assert interpool._interpool is m
        m.queue_from_id({qid}).put(m.interpreter_id())
        """,
        qid=q.id,
    )
    their_id = q.get(timeout=10)
    assert their_id == int(sub.id)
    assert their_id != ip.interpreter_id() == 0


def test_roundtrip_inside(sub):
    q = ip.Queue.create()
    sub.run(
        """
        import fractions
        import interpool._interpool as m
        out = m.queue_from_id({qid})
        value = {{"big": 2**100, "s": "\\ud800", "t": (1, [2, {{3}}]), "f": fractions.Fraction(1, 3)}}
        back = m.roundtrip(value)
        assert back == value and back is not value
        assert type(back["f"]) is fractions.Fraction
        out.put(back)
        out.put(m.value_kind(value["f"]))
        try:
            m.roundtrip({{"grid": [0, __import__("threading").Lock()]}})
        except m.NotShareableError as e:
            out.put(("refused", str(e)))
        a = []
        a.append(a)
        try:
            m.roundtrip(a)
        except TypeError as e:
            out.put(("cycle", str(e)))
        """,
        qid=q.id,
    )
    import fractions

    assert q.get(timeout=10) == {"big": 2**100, "s": "\ud800", "t": (1, [2, {3}]), "f": fractions.Fraction(1, 3)}
    assert q.get(timeout=10) == "pickled object"
    kind, msg = q.get(timeout=10)
    assert kind == "refused" and "the object['grid'][1]" in msg and "does not pickle" in msg
    kind, msg = q.get(timeout=10)
    assert kind == "cycle" and "cycle" in msg


def test_queue_inside(sub):
    q = ip.Queue.create()
    sub.run(
        """
        import interpool._interpool as m
        out = m.queue_from_id({qid})
        local = m.Queue.create(2)
        local.put(1)
        local.put(2)
        assert local.full()
        try:
            local.put(3, timeout=0.01)
        except m.QueueFull:
            out.put("full")
        out.put([local.get(), local.get()])
        try:
            local.get(timeout=0.01)
        except m.QueueEmpty:
            out.put("empty")
        local.close()
        try:
            local.put(1)
        except m.QueueClosed:
            out.put("closed")
        assert m.queue_from_id(local.id) is local
        """,
        qid=q.id,
    )
    assert [q.get(timeout=10) for _ in range(4)] == ["full", [1, 2], "empty", "closed"]


def test_main_queue_reached_by_id_both_ways(sub):
    to_main, to_sub = ip.Queue.create(), ip.Queue.create()
    to_sub.put({"from": "main", "n": 1})
    sub.run(
        """
        import interpool._interpool as m
        to_main = m.queue_from_id({out_id})
        to_sub = m.queue_from_id({in_id})
        assert m.queue_from_id({out_id}) is to_main
        assert to_main.id == {out_id} and to_sub.id == {in_id}
        item = to_sub.get(timeout=10)
        to_main.put(("echo", item))
        to_main.put(("put inside", m.interpreter_id()))
        """,
        out_id=to_main.id,
        in_id=to_sub.id,
    )
    assert to_main.get(timeout=10) == ("echo", {"from": "main", "n": 1})
    assert to_main.get(timeout=10) == ("put inside", int(sub.id))
    assert to_sub.empty() and to_main.empty()


def test_queue_made_inside_reached_from_main(sub):
    q = ip.Queue.create()
    sub.run(
        """
        import interpool._interpool as m
        made = m.Queue.create(10)   # kept alive by this interpreter's __main__
        made.put("made inside")
        m.queue_from_id({qid}).put(made.id)
        m.queue_from_id({qid}).put(made)  # as a handle
        """,
        qid=q.id,
    )
    made_id = q.get(timeout=10)
    by_id = ip.queue_from_id(made_id)
    assert q.get(timeout=10) is by_id  # the handle and the id give one object here
    assert by_id.maxsize == 10
    assert by_id.get(timeout=10) == "made inside"
    by_id.put("from main")
    sub.run(
        """
        assert made.get(timeout=10) == "from main"
        """
    )


def test_module_state_is_per_interpreter(sub):
    q = ip.Queue.create()
    sub.run(
        """
        import interpool._interpool as m
        names = ["Queue", "Pool", "NotShareableError", "QueueEmpty", "QueueFull", "QueueClosed",
                 "RemoteError", "BrokenInterpreterPool", "InterpreterError", "UNBOUND"]
        m.queue_from_id({qid}).put({{"module": id(m), **{{n: id(getattr(m, n)) for n in names}}}})
        # The exceptions raised there are that interpreter's own classes.
        try:
            m.Queue.create().get(block=False)
        except m.QueueEmpty as e:
            m.queue_from_id({qid}).put(type(e) is m.QueueEmpty)
        """,
        qid=q.id,
    )
    theirs = q.get(timeout=10)
    assert theirs["module"] != id(ip)
    for name, their_id in theirs.items():
        if name != "module":
            assert their_id != id(getattr(ip, name)), name
    assert q.get(timeout=10) is True
    # The main interpreter's classes are untouched by the import over there.
    assert ip.QueueEmpty.__module__ == "interpool"
    with pytest.raises(ip.QueueEmpty):
        ip.Queue.create().get(block=False)


def test_two_isolated_interpreters_have_distinct_modules():
    q = ip.Queue.create()
    with SubInterpreter() as a, SubInterpreter() as b:
        for s in (a, b):
            s.run(
                """
                import interpool._interpool as m
                m.queue_from_id({qid}).put((m.interpreter_id(), id(m.QueueEmpty)))
                """,
                qid=q.id,
            )
        (ida, cls_a), (idb, cls_b) = q.get(timeout=10), q.get(timeout=10)
    assert ida == int(a.id) and idb == int(b.id) and ida != idb
    assert cls_a != id(ip.QueueEmpty) and cls_b != id(ip.QueueEmpty)


def test_sub_interpreters_in_parallel_threads():
    # Each thread runs code in its own isolated interpreter (its own GIL);
    # all of them feed one queue. Each thread also creates and destroys its
    # interpreter: on 3.12, destroying from another thread an interpreter in
    # which a thread imported threading hangs in CPython itself.
    q = ip.Queue.create(64)  # bounded: producers block, released with the GIL
    n_subs, per_sub = 3, 2000
    errors = []
    sub_ids = []

    def produce(k):
        try:
            with SubInterpreter() as s:
                sub_ids.append(int(s.id))
                s.run(
                    """
                    import interpool._interpool as m
                    q = m.queue_from_id({qid})
                    for i in range({n}):
                        q.put(({k}, i), timeout=60)
                    """,
                    qid=q.id,
                    n=per_sub,
                    k=k,
                )
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(n_subs)]
    for t in threads:
        t.start()
    got = []
    try:
        while len(got) < n_subs * per_sub and not errors:
            try:
                got.append(q.get(timeout=1))
            except ip.QueueEmpty:
                if not any(t.is_alive() for t in threads):
                    break
    finally:
        for t in threads:
            t.join(60)
    assert not errors, errors
    assert len(set(sub_ids)) == n_subs
    assert sorted(got) == sorted((k, i) for k in range(n_subs) for i in range(per_sub))
    for k in range(n_subs):
        assert [i for kk, i in got if kk == k] == list(range(per_sub))


def test_pool_inside_isolated_interpreter(sub):
    q = ip.Queue.create()
    sub.run(
        """
        import interpool._interpool as m
        p = m.Pool(1, sys_path=__import__("sys").path)
        out = m.queue_from_id({qid})
        out.put(p.submit("math", "factorial", (15,)).result(60))
        out.put(p.submit("ext_tasks", "interp_id").result(60))
        try:
            p.submit("ext_tasks", "raise_value_error", ("inner",)).result(60)
        except ValueError as e:
            out.put(("ValueError", str(e), "raise_value_error" in str(e.__cause__)))
        p.shutdown()
        """,
        qid=q.id,
    )
    import math

    assert q.get(timeout=10) == math.factorial(15)
    worker_id = q.get(timeout=10)
    assert worker_id not in (0, int(sub.id))
    assert q.get(timeout=10) == ("ValueError", "inner", True)


def test_destroying_interpreter_with_live_pool_and_queues():
    # The sub-interpreter's exit hook must end its pool (whose task is still
    # running) when the interpreter is destroyed; items it put stay gettable.
    q = ip.Queue.create()
    s = SubInterpreter()
    try:
        s.run(
            """
            import interpool._interpool as m
            out = m.queue_from_id({qid})
            p = m.Pool(1, sys_path=__import__("sys").path)
            slow = p.submit("ext_tasks", "sleep_then", (0.2, None))
            mine = m.Queue.create()
            mine.put("left behind")
            out.put(mine)
            """,
            qid=q.id,
        )
        mine = q.get(timeout=10)
    finally:
        s.close()
    assert mine.get(timeout=10) == "left behind"
    # The main interpreter still works normally.
    assert ip.roundtrip([1, 2]) == [1, 2]


def test_legacy_sub_interpreter_can_import_too():
    # A sub-interpreter sharing the main GIL (legacy config) works as well.
    q = ip.Queue.create()
    with SubInterpreter("legacy") as s:
        s.run(
            """
            import interpool._interpool as m
            m.queue_from_id({qid}).put((m.interpreter_id(), m.roundtrip((1, "x"))))
            """,
            qid=q.id,
        )
        assert q.get(timeout=10) == (int(s.id), (1, "x"))
