"""Values at the interpreter boundary: interpool._interpool.roundtrip and value_kind.

roundtrip(obj) converts obj to the engine's interpreter-neutral Value and back,
which is exactly what every argument, result and queue item goes through.
"""

import cmath
import collections
import datetime
import decimal
import enum
import fractions
import math
import re
import sys
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import interpool
import interpool._interpool as ip
from value_shapes import distinct_lists, doubling, shared_levels


# ---------------------------------------------------------------------------
# An exact, recursive comparison: equal values, the same exact types, dict
# order kept, NaN equal to NaN and -0.0 distinct from 0.0.
# ---------------------------------------------------------------------------


def _same_float(a, b):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def same(a, b):
    """True if b is an exact copy of a (types, values, order), recursively."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return _same_float(a, b)
    if isinstance(a, complex):
        return _same_float(a.real, b.real) and _same_float(a.imag, b.imag)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb) for (ka, va), (kb, vb) in zip(a.items(), b.items())
        )
    if isinstance(a, (set, frozenset)):
        if len(a) != len(b):
            return False
        rest = list(b)
        for x in a:
            for i, y in enumerate(rest):
                if same(x, y):
                    del rest[i]
                    break
            else:
                return False
        return True
    return a == b


def test_same_helper_is_strict():
    # The comparison used below must itself be able to fail.
    assert not same(1, True)
    assert not same(1, 1.0)
    assert not same(0.0, -0.0)
    assert not same((1,), [1])
    assert not same({"a": 1, "b": 2}, {"b": 2, "a": 1})
    assert not same({1, 2}, frozenset({1, 2}))
    assert not same(b"x", bytearray(b"x"))
    assert same(float("nan"), float("nan"))
    assert same({"a": [1, (2.5, "x")]}, {"a": [1, (2.5, "x")]})


def check_roundtrip(obj):
    out = ip.roundtrip(obj)
    assert same(obj, out), (obj, out)
    return out


# ---------------------------------------------------------------------------
# Native kinds
# ---------------------------------------------------------------------------


def test_module_is_reachable_from_package():
    assert interpool._interpool is ip
    assert issubclass(ip.NotShareableError, TypeError)


@pytest.mark.parametrize(
    "obj, kind",
    [
        (None, "NoneType"),
        (True, "bool"),
        (False, "bool"),
        (0, "int"),
        (-1, "int"),
        (2**63 - 1, "int"),
        (-(2**63), "int"),
        (2**63, "int"),
        (-(2**63) - 1, "int"),
        (1.5, "float"),
        (1 + 2j, "complex"),
        ("text", "str"),
        (b"bytes", "bytes"),
        (bytearray(b"ba"), "bytearray"),
        ((1, 2), "tuple"),
        ([1, 2], "list"),
        ({"a": 1}, "dict"),
        ({1, 2}, "set"),
        (frozenset({1}), "frozenset"),
    ],
)
def test_native_kinds(obj, kind):
    assert ip.value_kind(obj) == kind
    check_roundtrip(obj)
    ip.roundtrip(obj, allow_pickle=False)  # native: pickling is never needed


@pytest.mark.parametrize(
    "n",
    [
        2**62,
        2**63 - 1,
        2**63,
        2**64,
        -(2**63),
        -(2**63) - 1,
        -(2**64) - 12345,
        10**400,
        -(10**400) + 7,
        2**100_000 + 1,
        -(3**50_000),
        0x0123456789ABCDEF0123456789ABCDEF,
    ],
    ids=lambda n: f"bits{n.bit_length()}{'neg' if n < 0 else ''}",
)
def test_big_ints(n):
    out = check_roundtrip(n)
    assert out == n and type(out) is int
    assert ip.value_kind(n) == "int"


@pytest.mark.parametrize(
    "x",
    [0.0, -0.0, 1e-310, 5e-324, sys.float_info.max, -sys.float_info.max, math.inf, -math.inf, math.nan, math.pi],
)
def test_floats_bit_exact(x):
    out = check_roundtrip(x)
    assert math.copysign(1.0, out) == math.copysign(1.0, x)
    if not math.isnan(x):
        assert out.hex() == x.hex()


@pytest.mark.parametrize(
    "z", [0j, complex(-0.0, -0.0), complex(math.inf, -math.inf), complex(math.nan, 1.0), 3.25 - 1e300j, cmath.pi * 1j]
)
def test_complex(z):
    check_roundtrip(z)


@pytest.mark.parametrize(
    "s",
    [
        "",
        "ascii",
        "h\u00e9llo w\u00f6rld",
        "\u65e5\u672c\u8a9e",
        "\U0001f600 emoji",
        "nul\x00inside",
        "\ud800",  # lone high surrogate
        "\udfff",  # lone low surrogate
        "a\udc80b",  # what surrogateescape makes of byte 0x80
        "\ud83d\ude00",  # two surrogates: must stay two code points
        "\U0010ffff",
        "x" * 100_000,
    ],
)
def test_strings(s):
    out = check_roundtrip(s)
    assert len(out) == len(s)
    assert [ord(c) for c in out] == [ord(c) for c in s]


@pytest.mark.parametrize("b", [b"", b"\x00\xff\x00", bytes(range(256)), b"z" * (1 << 20)])
def test_bytes_and_bytearray(b):
    check_roundtrip(b)
    ba = bytearray(b)
    out = check_roundtrip(ba)
    assert out is not ba
    out += b"more"
    assert ba == bytearray(b)  # a copy, not a view


def test_containers_are_new_objects():
    inner = [1, 2]
    obj = {"list": inner, "set": {1}, "dict": {"k": "v"}}
    out = check_roundtrip(obj)
    assert out is not obj
    assert out["list"] is not inner
    out["list"].append(3)
    out["set"].add(2)
    out["dict"]["k2"] = 1
    assert obj == {"list": [1, 2], "set": {1}, "dict": {"k": "v"}}


def test_nested_containers():
    obj = {
        "grid": [[0, 1, 2], [3, 4, 5]],
        "meta": ("name", 2**70, 1.5, None, True, b"raw", bytearray(b"mut")),
        (1, "key", frozenset({2, 3})): {"deep": [{"deeper": ({1, 2}, frozenset())}]},
        frozenset({("a", 1)}): [set(), (), [], {}],
        None: {1: {2: {3: [4, (5, [6])]}}},
    }
    check_roundtrip(obj)
    assert ip.value_kind(obj) == "dict"


def test_dict_order_kept():
    keys = ["zeta", "alpha", 3, "mid", (2, 1), None, -7, b"b", 2.5, frozenset({9})]
    d = {k: i for i, k in enumerate(keys)}
    out = check_roundtrip(d)
    assert list(out) == keys
    # Deleting and re-inserting moves a key to the end; that order must cross too.
    del d["alpha"]
    d["alpha"] = "again"
    assert list(ip.roundtrip(d)) == list(d)
    assert list(ip.roundtrip(d))[-1] == "alpha"


def test_mixed_key_types_stay_distinct():
    d = {1: "int", "1": "str", b"1": "bytes", (1,): "tuple", 1.5: "float", None: "none", frozenset({1}): "fs"}
    out = check_roundtrip(d)
    assert out[1] == "int" and out["1"] == "str" and out[b"1"] == "bytes"


def test_bool_and_int_keys_keep_their_types():
    # True == 1, so a dict/set keeps whichever came first; the type must survive.
    assert same(ip.roundtrip({True: "a"}), {True: "a"})
    assert same(ip.roundtrip({1: "a"}), {1: "a"})
    assert type(next(iter(ip.roundtrip({True})))) is bool
    assert type(next(iter(ip.roundtrip({1.0})))) is float


def test_shared_references_are_not_cycles():
    shared = [1, 2]
    obj = [shared, shared, {"a": shared}, (shared,)]
    out = check_roundtrip(obj)
    assert out == obj


# ---------------------------------------------------------------------------
# Sharing: an object met again in one crossing arrives as the same object
# ---------------------------------------------------------------------------


def test_an_object_in_two_places_arrives_as_one_object():
    out = ip.roundtrip(([1],) * 2)
    assert out == ([1], [1]) and out[0] is out[1]
    out[0].append(2)
    assert out[1] == [1, 2]  # as pickle (and so a process pool) gives it back


def test_a_dict_whose_two_values_are_one_list():
    shared = [1, 2]
    out = ip.roundtrip({"a": shared, "b": shared, "c": [1, 2]})
    assert out["a"] is out["b"]
    assert out["c"] is not out["a"]  # equal is not the same


def test_sixty_levels_of_doubling_cross_as_sixty_one_lists():
    # Small first: without sharing the 60 levels would be 2**60 copies.
    assert shared_levels(ip.roundtrip(doubling(3))) == 3
    x = doubling(60)
    out = ip.roundtrip(x)
    assert shared_levels(out) == 60
    assert distinct_lists(out) == 61
    assert out is not x and out[0] is not x[0]  # new objects all the same


class Holder:
    """An object of a module's class: it crosses by pickle."""

    def __init__(self, items):
        self.items = items


@pytest.mark.parametrize(
    "make",
    [
        lambda: [1],
        lambda: (1, [2]),
        lambda: {"k": [1]},
        lambda: {1, 2},
        lambda: frozenset({1}),
        lambda: bytearray(b"ab"),
        lambda: fractions.Fraction(1, 3),
        lambda: Holder([1]),
    ],
    ids=["list", "tuple", "dict", "set", "frozenset", "bytearray", "Fraction", "Holder"],
)
def test_every_object_with_an_identity_keeps_it(make):
    obj = make()
    out = ip.roundtrip([obj, {"again": obj}, (obj,)])
    assert out[0] is out[1]["again"] is out[2][0]
    assert type(out[0]) is type(obj)


def test_sharing_in_set_elements_and_dict_keys():
    key = (1, "k")
    out = ip.roundtrip([key, {key}, frozenset([key]), {key: 0}])
    assert next(iter(out[1])) is out[0]
    assert next(iter(out[2])) is out[0]
    assert next(iter(out[3])) is out[0]


def test_sharing_and_pickles():
    inner = [1]
    holder = Holder(inner)
    out = ip.roundtrip([holder, holder, inner, Holder(inner)])
    # One object pickled once, and sharing inside one pickle (pickle's own memo).
    assert out[0] is out[1]
    # The pickles of one crossing share one memo: what two pickled objects hold
    # is one object again.
    assert out[3].items is out[0].items
    # Beside the pickles, in the part that crosses without pickling, a copy.
    assert out[2] == inner and out[2] is not out[0].items


class Grower:
    """Pickling it appends to a list: the list grows while it is converted."""

    def __init__(self, target, more):
        self.target = target
        self.more = more

    def __reduce__(self):
        self.target.extend(self.more)
        return (int, (7,))


def test_a_list_that_pickling_code_grows_crosses_as_it_was_written():
    # Objects with no native form are pickled once their value is written (all
    # of them together): a __reduce__ that grows a list written already changes
    # nothing that crosses.
    shared = [1]
    obj = [shared]
    obj.append(Grower(obj, [0] * 20 + [shared]))
    out = ip.roundtrip(obj)
    assert out == [[1], 7]
    assert len(obj) == 23


def test_a_shared_object_is_not_a_cycle_but_a_cycle_is_refused():
    a = []
    b = [a, a]
    out = ip.roundtrip(b)
    assert out[0] is out[1]
    a.append(b)  # now a cycle through the shared list
    with pytest.raises(ip.NotShareableError, match="cycle") as info:
        ip.roundtrip(b)
    assert "the object[0][0]" in str(info.value)


def test_queue_is_a_handle_not_a_copy():
    q = ip.Queue.create()
    assert ip.value_kind(q) == "handle"
    assert ip.roundtrip(q) is q
    out = ip.roundtrip({"q": [q]})
    assert out["q"][0] is q
    # A handle needs no pickling.
    assert ip.roundtrip(q, allow_pickle=False) is q


# ---------------------------------------------------------------------------
# Objects that go through pickle
# ---------------------------------------------------------------------------


class Color(enum.IntEnum):
    RED = 1
    GREEN = 2


class Flavor(enum.Enum):
    SWEET = "sweet"


class MyInt(int):
    pass


class MyDict(dict):
    pass


Point = collections.namedtuple("Point", "x y")


@pytest.mark.parametrize(
    "obj",
    [
        Color.GREEN,
        Flavor.SWEET,
        fractions.Fraction(1, 3),
        decimal.Decimal("1.10"),
        datetime.datetime(2024, 2, 29, 12, 30, tzinfo=datetime.timezone.utc),
        collections.OrderedDict([("b", 1), ("a", 2)]),
        collections.Counter("hello"),
        Point(1, 2),
        MyInt(7),
        MyDict(a=1),
        range(3, 10, 2),
    ],
    ids=lambda o: type(o).__name__,
)
def test_pickled_kinds(obj):
    assert ip.value_kind(obj) == "pickled object"
    out = ip.roundtrip(obj)
    assert type(out) is type(obj)
    assert out == obj


def test_enum_members_come_back_as_the_same_member():
    assert ip.roundtrip(Color.RED) is Color.RED
    out = ip.roundtrip({"c": [Color.GREEN, 2]})
    assert out["c"][0] is Color.GREEN
    assert type(out["c"][1]) is int
    # An IntEnum is an int subclass: exact types only are native.
    assert ip.value_kind(Color.RED) != "int"


def test_fraction_inside_native_containers():
    obj = {"ratio": [fractions.Fraction(2, 7), 3], "k": (fractions.Fraction(-1, 2),)}
    assert ip.value_kind(obj) == "dict"  # the container stays native
    out = ip.roundtrip(obj)
    assert out == obj
    assert type(out["ratio"][0]) is fractions.Fraction


def test_allow_pickle_false_refuses_pickled_kinds():
    for obj in (fractions.Fraction(1, 3), Color.RED, MyInt(1), Point(1, 2)):
        with pytest.raises(ip.NotShareableError) as info:
            ip.roundtrip(obj, allow_pickle=False)
        assert type(obj).__name__ in str(info.value)
        assert "pickl" in str(info.value)
    # ... while the same objects cross with pickling allowed (the default).
    assert ip.roundtrip(fractions.Fraction(1, 3)) == fractions.Fraction(1, 3)


def test_allow_pickle_false_names_the_place():
    with pytest.raises(ip.NotShareableError) as info:
        ip.roundtrip([1, {"a": fractions.Fraction(1, 2)}], allow_pickle=False)
    msg = str(info.value)
    assert "the object[1]['a']" in msg
    assert "Fraction" in msg


def test_unpickling_failure_propagates():
    with pytest.raises(RuntimeError, match="cannot rebuild"):
        ip.roundtrip(Unrebuildable())


def _refuse_rebuild():
    raise RuntimeError("cannot rebuild")


class Unrebuildable:
    def __reduce__(self):
        return (_refuse_rebuild, ())


class ReduceRaises:
    def __reduce__(self):
        raise ValueError("this object refuses pickling")


# ---------------------------------------------------------------------------
# Errors: unshareable objects, the place is named
# ---------------------------------------------------------------------------


def test_not_shareable_error_is_a_type_error():
    with pytest.raises(TypeError):
        ip.roundtrip(threading.Lock())


def test_functions_cross_by_value():
    def inner(x):
        return x + 1

    assert ip.roundtrip({"grid": [0, lambda: 0]})["grid"][1]() == 0
    assert ip.roundtrip(inner)(1) == 2


def test_closure_without_cloudpickle_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "cloudpickle", None)  # as if not installed
    k = 1
    with pytest.raises(ip.NotShareableError) as info:
        ip.roundtrip({"grid": [0, 1, lambda: k]})
    msg = str(info.value)
    assert "the object['grid'][2]" in msg
    assert "'function'" in msg
    assert "closure" in msg and "interpool[cloudpickle]" in msg


@pytest.mark.parametrize(
    "obj, place, type_name",
    [
        ([0, (1, threading.Lock())], "the object[1][1]", "lock"),
        ({"a": {"b": [None, (x for x in ())]}}, "the object['a']['b'][1]", "generator"),
        ((1, 2, (3, [4, {5: ReduceRaises()}])), "the object[2][1][1][5]", "ReduceRaises"),
        ({"a": {"k": 1, (x for x in ()): 2}}, "the object['a'] (a key)", "generator"),
        ([{1, 2, threading.Lock()}], "the object[0] (an element)", "lock"),
        (threading.Lock(), "the object ", "lock"),
    ],
)
def test_place_and_type_are_named(obj, place, type_name):
    with pytest.raises(ip.NotShareableError) as info:
        ip.roundtrip(obj)
    msg = str(info.value)
    assert place in msg, msg
    assert f"'{type_name}'" in msg, msg
    # value_kind refuses it the same way.
    with pytest.raises(ip.NotShareableError):
        ip.value_kind(obj)


def test_reduce_error_reason_is_kept():
    with pytest.raises(ip.NotShareableError, match="refuses pickling"):
        ip.roundtrip([ReduceRaises()])


def test_long_keys_are_shortened_in_the_place():
    key = "k" * 200
    with pytest.raises(ip.NotShareableError) as info:
        ip.roundtrip({key: threading.Lock()})
    msg = str(info.value)
    assert "the object['kkkk" in msg
    assert key not in msg
    assert len(msg) < 1000


# ---------------------------------------------------------------------------
# Cycles and depth
# ---------------------------------------------------------------------------


def test_self_containing_list():
    a = [1]
    a.append(a)
    with pytest.raises(ip.NotShareableError, match="cycle") as info:
        ip.roundtrip(a)
    assert "the object[1]" in str(info.value)


def test_self_containing_dict():
    d = {"x": 1}
    d["self"] = d
    with pytest.raises(ip.NotShareableError, match="cycle"):
        ip.roundtrip(d)


def test_cycle_through_several_containers():
    a = []
    b = {"a": a}
    t = (b,)
    a.append(t)
    with pytest.raises(ip.NotShareableError, match="cycle"):
        ip.roundtrip([0, a])
    with pytest.raises(ip.NotShareableError, match="cycle"):
        ip.value_kind(b)


def nested_lists(levels):
    x = []
    for _ in range(levels - 1):
        x = [x]
    return x


def test_depth_limit_boundary():
    # 1000 levels of containers are fine ...
    out = ip.roundtrip(nested_lists(1000))
    depth = 0
    while out:
        out = out[0]
        depth += 1
    assert depth == 999  # the innermost list is empty
    # ... one more is refused with a clear error, not a crash.
    with pytest.raises(ip.NotShareableError, match="nested 1001 levels deep") as info:
        ip.roundtrip(nested_lists(1001))
    assert "the limit is 1000 levels" in str(info.value)


def test_depth_limit_mixed_containers():
    x = "leaf"
    for i in range(1500):
        x = {"k": x} if i % 3 == 0 else ((x,) if i % 3 == 1 else [x])
    with pytest.raises(ip.NotShareableError, match="the limit is 1000 levels"):
        ip.roundtrip(x)


def test_very_deep_nesting_does_not_crash():
    with pytest.raises(ip.NotShareableError, match="the limit is 1000 levels"):
        ip.roundtrip(nested_lists(200_000))


def test_too_deep_error_is_short():
    # The place shows its first and last steps and the depth, not 5000 "[0]".
    with pytest.raises(ip.NotShareableError) as info:
        ip.roundtrip(nested_lists(5000))
    message = str(info.value)
    assert re.fullmatch(r"cannot share the object(\[0\]){4}\.\.\.(\[0\]){2} \(a 'list' object "
                        r"nested 1001 levels deep\) with another interpreter: the limit is 1000 "
                        r"levels of nesting", message), message


def test_deep_path_with_long_keys_is_short():
    x = "leaf"
    for i in range(1500):
        x = {"key-" * 30 + str(i): x}
    with pytest.raises(ip.NotShareableError) as info:
        ip.roundtrip(x)
    place = str(info.value).split(" (a ")[0]
    assert "..." in place and len(place) < 200, place


def nested_lock(levels):
    x = threading.Lock()
    for _ in range(levels):
        x = [x]
    return x


def test_deep_unpicklable_value_names_its_depth():
    with pytest.raises(ip.NotShareableError) as info:
        ip.roundtrip(nested_lock(600))
    assert re.search(r"the object(\[0\]){4}\.\.\.(\[0\]){2} \(a 'lock' object nested 601 "
                     r"levels deep\) with another interpreter: it does not pickle", str(info.value)), \
        str(info.value)
    # A place of 7 steps is still shown whole, and without its depth.
    with pytest.raises(ip.NotShareableError) as info:
        ip.roundtrip(nested_lock(7))
    assert "the object[0][0][0][0][0][0][0] (a 'lock' object) with" in str(info.value)


def test_errors_leave_the_module_usable():
    a = []
    a.append(a)
    for _ in range(3):
        with pytest.raises(ip.NotShareableError):
            ip.roundtrip(a)
    assert ip.roundtrip([1, [2]]) == [1, [2]]


# ---------------------------------------------------------------------------
# Property test over every native kind
# ---------------------------------------------------------------------------

any_char = st.characters(codec=None, exclude_categories=())  # surrogates included
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.complex_numbers(allow_nan=True, allow_infinity=True),
    st.text(alphabet=any_char, max_size=20),
    st.binary(max_size=20),
)
hashables = st.recursive(
    scalars,
    lambda inner: st.one_of(st.tuples(inner, inner), st.lists(inner, max_size=3).map(tuple), st.frozensets(inner, max_size=3)),
    max_leaves=8,
)
values = st.recursive(
    st.one_of(scalars, hashables, st.binary(max_size=10).map(bytearray)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(hashables, inner, max_size=4),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_roundtrip_property(obj):
    out = ip.roundtrip(obj)
    assert same(obj, out)
    out2 = ip.roundtrip(obj, allow_pickle=False)
    assert same(obj, out2)
    assert ip.value_kind(obj) == type(obj).__name__


@settings(max_examples=200, deadline=None)
@given(scalars)
def test_scalar_kind_property(x):
    assert ip.value_kind(x) == type(x).__name__
    assert same(x, ip.roundtrip(x))
