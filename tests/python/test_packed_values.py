"""Values that cross as one flat buffer (docs/design.md, "Values in one buffer"):
what a user can see of it. Sharing of containers and the errors are in
test_extension_values.py; the buffer's format and its readers are in
tests/cpp/test_packed.cpp."""

import interpool
from interpool import interpreters as I

import executor_tasks as T


def word(text):
    # Made at run time: a literal would be one interned object anyway.
    return "".join(list(text))


def test_a_str_in_many_places_of_one_item_arrives_as_one_object():
    # As pickle gives it back (its memo): the receiver makes and hashes it once.
    key, tag = word("price of the item"), word("na\u00efve \u0100 \U0001F600")
    records = [{key: float(i), "tags": [tag, tag]} for i in range(3)]
    q = I.create_queue()
    q.put(records)
    out = q.get()
    assert out == records
    keys = [next(iter(r)) for r in out]
    assert keys[0] is keys[1] is keys[2]
    assert out[0]["tags"][0] is out[2]["tags"][1]


def test_values_of_every_size_cross_to_another_interpreter():
    # From nothing to megabytes in one buffer: every width of str, many items,
    # large bytes, each arriving whole in the other interpreter.
    strs = [word("a" * n) for n in (0, 1, 300)] + ["\xe9" * 70_000, "\u0100" * 70_000, "\U0001F600" * 70_000]
    value = {
        "strs": strs,
        "many": list(range(200_000)),
        "big": [b"\x01" * (8 << 20), bytearray(b"\x02" * (1 << 20))],
        "nested": [[[{"k": (i, str(i))}] for i in range(1000)]],
    }
    interp = I.create()
    try:
        q_in, q_out = I.create_queue(), I.create_queue()
        interp.prepare_main(q_in=q_in, q_out=q_out)
        q_in.put(value)
        interp.exec("v = q_in.get(); q_out.put(v)")
        out = q_out.get()
    finally:
        interp.close()
    assert out == value
    assert [type(x) for x in out["big"]] == [bytes, bytearray]


def test_rows_of_scalars_arrive_untracked_by_the_cyclic_gc():
    # As the GC would leave them after its first look: a million rows in a
    # result cost no collections over them meanwhile. Tuples holding a
    # container stay tracked.
    import gc

    q = I.create_queue()
    q.put([(1, 2.5, word("row")), (1, [2]), ()])
    rows = q.get()
    assert not gc.is_tracked(rows[0])
    assert gc.is_tracked(rows[1])
    assert rows == [(1, 2.5, "row"), (1, [2]), ()]


class _GcWhenRebuilt:
    """Rebuilt as what gc.isenabled() says while the receiver unpickles it."""

    def __reduce__(self):
        import gc

        return gc.isenabled, ()


def test_rebuilding_a_value_leaves_the_gc_as_the_program_set_it():
    # The GC pauses while builtins are rebuilt; it comes back as it was, and
    # code that runs while a value is rebuilt (unpickling) sees it as it was.
    import gc

    records = [{"k": [i, word("v")]} for i in range(1000)]
    q = I.create_queue()
    assert gc.isenabled()
    q.put(records)
    assert q.get() == records and gc.isenabled()
    q.put([_GcWhenRebuilt(), records])
    assert q.get() == [True, records]
    gc.disable()
    try:
        q.put(records)
        assert q.get() == records and not gc.isenabled()
    finally:
        gc.enable()


def test_pickled_objects_of_one_crossing_keep_what_they_share():
    # Objects with no native form are pickled one after another by one pickler
    # per crossing, as one pickle of the whole value would be: what they share
    # arrives as one object, in a result and in arguments.
    with interpool.Executor(2) as ex:
        out = ex.submit(T.records, 300).result(timeout=60)
        assert out == T.records(300)
        assert T.share_tags(out)
        assert ex.submit(T.share_tags, out).result(timeout=60) is True
        assert list(ex.map(T.share_tags, [out[:10], out[10:]], chunksize=2)) == [True, True]
    q = I.create_queue()
    q.put(out)
    assert T.share_tags(q.get())


def test_the_engine_pickler_asks_python_only_about_functions_and_classes():
    import datetime
    import gc
    import io
    import weakref

    from interpool import _byvalue, _interpool

    asked = []

    def slow(obj):
        asked.append(obj)
        return NotImplemented

    for obj in (datetime.date(2024, 12, 7), T.Record(1, []), 3):
        assert _interpool.reducer_override(slow, _byvalue.ByValue, obj) is NotImplemented
    assert asked == []
    for obj in (T.records, T.Record, datetime.date):
        _interpool.reducer_override(slow, _byvalue.ByValue, obj)
    assert asked == [T.records, T.Record, datetime.date]
    # Its state is not kept in the pickler: freed when dropped, with the objects its memo holds.
    gc.disable()
    try:
        pickler = _byvalue.pickler()(io.BytesIO(), 5)
        pickler.dump(T.records(3))
        dropped = weakref.ref(pickler)
        del pickler
        assert dropped() is None
    finally:
        gc.enable()
