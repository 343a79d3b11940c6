#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/interpreter.hpp"
#include "core/py_value.hpp"
#include "python_env.hpp"

using namespace interpool;
using interpool::testenv::eval;

namespace {

std::string repr(PyObject* o) {
  PyObject* r = PyObject_Repr(o);
  std::string s = PyUnicode_AsUTF8(r);
  Py_DECREF(r);
  return s;
}

// Converts `expr` in the current interpreter and checks the rebuilt object is equal and of the same
// type.
void expect_round_trip(const std::string& expr) {
  PyObject* obj = eval(expr);
  ASSERT_NE(obj, nullptr) << expr;
  Value v = to_value(obj);
  PyObject* back = to_python(v);
  ASSERT_NE(back, nullptr) << expr;
  EXPECT_EQ(Py_TYPE(back), Py_TYPE(obj)) << expr;
  EXPECT_EQ(PyObject_RichCompareBool(obj, back, Py_EQ), 1) << expr << " -> " << repr(back);
  Py_DECREF(obj);
  Py_DECREF(back);
}

class ValueTest : public ::testing::Test {
 protected:
  Activation main_{testenv::main_interpreter()};
};

}  // namespace

TEST_F(ValueTest, ScalarsRoundTrip) {
  for (const char* e :
       {"None", "True", "False", "0", "-1", "2**63-1", "-2**63", "1.5", "float('inf')", "-0.0",
        "3+4j", "''", "'héllo ✓'", "'\\ud800'", "b''", "b'\\x00\\xff'", "bytearray(b'abc')"})
    expect_round_trip(e);
}

TEST_F(ValueTest, BigIntsRoundTrip) {
  for (const char* e : {"2**63", "-2**63-1", "2**1000", "-(3**500)", "10**4000"})
    expect_round_trip(e);
  PyObject* big = eval("2**64");
  Value v = to_value(big);
  EXPECT_EQ(v.kind(), Kind::BigInt);
  Py_DECREF(big);
}

TEST_F(ValueTest, ContainersRoundTripNested) {
  for (const char* e :
       {"()", "(1,)", "[1, [2, [3, [4]]]]", "{'a': 1, 2: [3], (4, 5): {'x': None}}", "set()",
        "{1, 2, 3}", "frozenset({'a', (1, 2)})", "{'grid': ['#..', '.^.'], 'n': 10**30}",
        "[b'x', bytearray(b'y'), 1j, {frozenset({1})}]"})
    expect_round_trip(e);
}

TEST_F(ValueTest, DictOrderIsKept) {
  PyObject* d = eval("{'z': 1, 'a': 2, 'm': 3}");
  PyObject* back = to_python(to_value(d));
  EXPECT_EQ(repr(back), "{'z': 1, 'a': 2, 'm': 3}");
  Py_DECREF(d);
  Py_DECREF(back);
}

TEST_F(ValueTest, OtherObjectsArePickledAndMarkedSo) {
  PyObject* obj = eval("__import__('fractions').Fraction(1, 3)");
  Value v = to_value(obj);
  EXPECT_EQ(v.kind(), Kind::Pickled);
  // A C++ reader that asks for a number is told which object it got.
  try {
    v.as<double>();
    ADD_FAILURE() << "a Fraction read as a double";
  } catch (const ConversionError& e) {
    EXPECT_STREQ(e.what(), "cannot convert a Python 'Fraction' to double");
  }
  EXPECT_TRUE(v.contains_pickle());
  PyObject* back = to_python(v);
  EXPECT_EQ(PyObject_RichCompareBool(obj, back, Py_EQ), 1);
  Py_DECREF(obj);
  Py_DECREF(back);

  PyObject* nested = eval("[1, {'k': __import__('decimal').Decimal('1.5')}]");
  EXPECT_TRUE(to_value(nested).contains_pickle());
  Py_DECREF(nested);
  PyObject* plain = eval("[1, {'k': 2}]");
  EXPECT_FALSE(to_value(plain).contains_pickle());
  Py_DECREF(plain);
}

TEST_F(ValueTest, IntSubclassesKeepTheirType) {
  expect_round_trip("__import__('http').HTTPStatus.NOT_FOUND");
}

TEST_F(ValueTest, PickleCanBeRefused) {
  PyObject* obj = eval("__import__('fractions').Fraction(1, 3)");
  ToValueOptions no_pickle;
  no_pickle.allow_pickle = false;
  EXPECT_THROW(to_value(obj, "argument 1", no_pickle), NotShareable);
  Py_DECREF(obj);
}

TEST_F(ValueTest, ErrorsNameThePlace) {
  PyObject* obj = eval("{'grid': [1, 2, lambda: 0]}");
  try {
    to_value(obj, "argument 2");
    FAIL() << "a lambda must not be shareable";
  } catch (const NotShareable& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("argument 2['grid'][2]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'function'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("module level"), std::string::npos) << msg;
    // The parts, as data: a face names the place in its own terms from them.
    EXPECT_EQ(e.where(), "argument 2");
    std::vector<NotShareable::Step> path{{-1, "['grid']"}, {2, {}}};
    EXPECT_EQ(e.path(), path);
    EXPECT_EQ(e.what_object(), "a 'function' object");
    EXPECT_EQ(
        std::string(e.with_place("the grid", {{2, {}}}).what()),
        "cannot share the grid[2] (a 'function' object) with another interpreter: " + e.reason());
  }
  Py_DECREF(obj);
}

TEST_F(ValueTest, CyclesAreRefused) {
  PyObject* obj = eval("(lambda l: (l.append(l), l)[1])([1])");
  try {
    to_value(obj, "argument 1");
    FAIL() << "a cycle must be refused";
  } catch (const NotShareable& e) {
    EXPECT_NE(std::string(e.what()).find("cycle"), std::string::npos) << e.what();
  }
  Py_DECREF(obj);
}

TEST_F(ValueTest, AbsurdDepthIsRefused) {
  PyRun_SimpleString("_deep = _x = []\nfor _ in range(5000):\n    _x.append([])\n    _x = _x[0]\n");
  PyObject* obj = eval("_deep");
  ASSERT_NE(obj, nullptr);
  try {
    to_value(obj, "argument 1");
    FAIL() << "5000 levels must be refused";
  } catch (const NotShareable& e) {
    // The first and last steps of the place and its depth, not 5000 "[0]".
    EXPECT_EQ(std::string(e.what()),
              "cannot share argument 1[0][0][0][0]...[0][0] (a 'list' object nested 1001 levels "
              "deep) with another interpreter: the limit is 1000 levels of nesting");
  }
  Py_DECREF(obj);
}

TEST_F(ValueTest, DepthIsNamedUnderALowLimit) {
  PyObject* obj = eval("[[[[1]]]]");
  ToValueOptions options;
  options.max_depth = 3;
  try {
    to_value(obj, "argument 1", options);
    FAIL() << "4 levels must be refused under a limit of 3";
  } catch (const NotShareable& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot share argument 1[0][0][0] (a 'list' object nested 4 levels deep) with "
              "another interpreter: the limit is 3 levels of nesting");
  }
  Py_DECREF(obj);
}

TEST_F(ValueTest, SharedSubobjectsAreNotCycles) {
  expect_round_trip("(lambda x: [x, x, {'a': x}])([1, 2])");
}

namespace {

// [x, x] built `levels` times over x = [0]: 2**levels leaves, levels + 1 lists.
PyObject* doubling(int levels) {
  return eval("__import__('functools').reduce(lambda x, _: [x, x], range(" +
              std::to_string(levels) + "), [0])");
}

// How many levels of a rebuilt doubling hold one list twice.
int shared_levels(PyObject* x) {
  int levels = 0;
  while (PyList_Check(x) && PyList_GET_SIZE(x) == 2 &&
         PyList_GET_ITEM(x, 0) == PyList_GET_ITEM(x, 1)) {
    ++levels;
    x = PyList_GET_ITEM(x, 0);
  }
  return levels;
}

// The distinct lists of a Value, as a C++ reader finds them.
std::size_t distinct_lists(const Value& v, std::unordered_set<const List*>& seen) {
  if (const List* l = v.get_if<List>(); l && seen.insert(l).second)
    for (const Value& item : l->items) distinct_lists(item, seen);
  return seen.size();
}

}  // namespace

TEST_F(ValueTest, AnObjectInTwoPlacesIsRebuiltAsOneObject) {
  PyObject* obj = eval("([1],) * 2");
  PyObject* back = to_python(to_value(obj));
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(PyTuple_GET_ITEM(back, 0), PyTuple_GET_ITEM(back, 1));
  Py_DECREF(back);
  Py_DECREF(obj);

  obj = eval("(lambda l: {'a': l, 'b': [l]})([1])");
  back = to_python(to_value(obj));
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(PyDict_GetItemString(back, "a"), PyList_GET_ITEM(PyDict_GetItemString(back, "b"), 0));
  Py_DECREF(back);
  Py_DECREF(obj);

  // Only what is in two places is shared: the rest of the tree costs no lookup.
  obj = eval("(lambda l: [l, l, [3], {'k': [4]}])([1, 2])");
  const Value v = to_value(obj);  // const: get() of a non-const one copies a shared value
  const std::vector<Value>& items = v.get<List>().items;
  EXPECT_TRUE(items[0].is_shared() && items[1].is_shared());
  EXPECT_EQ(&items[0].get<List>(), &items[1].get<List>());
  EXPECT_FALSE(items[2].is_shared());
  EXPECT_FALSE(items[3].is_shared());
  EXPECT_FALSE(items[3].get<Dict>().items[0].second.is_shared());
  Py_DECREF(obj);
}

TEST_F(ValueTest, SixtyLevelsOfDoublingAreSixtyOneNodes) {
  // Small first: without sharing, 60 levels would be 2**60 nodes.
  PyObject* small = doubling(3);
  PyObject* small_back = to_python(to_value(small));
  ASSERT_EQ(shared_levels(small_back), 3);
  Py_DECREF(small_back);
  Py_DECREF(small);

  PyObject* obj = doubling(60);
  Value v = to_value(obj);
  std::unordered_set<const List*> seen;
  EXPECT_EQ(distinct_lists(v, seen), 61u);
  PyObject* back = to_python(v);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(shared_levels(back), 60);
  EXPECT_NE(back, obj);
  Py_DECREF(back);
  Py_DECREF(obj);
}

TEST_F(ValueTest, ObjectsOfOneCrossingAreSharedAcrossItsValues) {
  PyObject* obj = eval("[1]");
  ToValue convert;
  Value first = convert(obj, "argument 1");
  Value second = convert(obj, "argument 2");
  Value alone = to_value(obj);
  {
    ToPython rebuild;
    PyObject* a = rebuild(first);
    PyObject* b = rebuild(second);
    PyObject* c = rebuild(alone);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
    Py_XDECREF(a);
    Py_XDECREF(b);
    Py_XDECREF(c);
  }
  // Apart, each rebuild makes its own object.
  PyObject* a = to_python(first);
  PyObject* b = to_python(second);
  EXPECT_NE(a, b);
  Py_XDECREF(a);
  Py_XDECREF(b);
  Py_DECREF(obj);
}

TEST_F(ValueTest, PickledObjectsAreSharedToo) {
  PyObject* obj = eval("(lambda f: [f, {'again': f}])(__import__('fractions').Fraction(1, 3))");
  const Value v = to_value(obj);  // const: get() of a non-const one copies a shared value
  const Value& first = v.get<List>().items[0];
  EXPECT_EQ(first.kind(), Kind::Pickled);
  EXPECT_EQ(&first.get<Pickled>(),
            &v.get<List>().items[1].get<Dict>().items[0].second.get<Pickled>());  // one pickle
  PyObject* back = to_python(v);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(PyList_GET_ITEM(back, 0), PyDict_GetItemString(PyList_GET_ITEM(back, 1), "again"));
  Py_DECREF(back);
  Py_DECREF(obj);
}

TEST_F(ValueTest, ASharedObjectIsNoCycleButACycleThroughItIsRefused) {
  PyRun_SimpleString("_a = []\n_b = [_a, _a]\n");
  PyObject* obj = eval("_b");
  PyObject* back = to_python(to_value(obj));
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(PyList_GET_ITEM(back, 0), PyList_GET_ITEM(back, 1));
  Py_DECREF(back);
  Py_DECREF(obj);

  obj = eval("(lambda a: (a.append([a, a]), a)[1])([])");
  try {
    to_value(obj, "argument 1");
    FAIL() << "a cycle must be refused";
  } catch (const NotShareable& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot share argument 1[0][0] (a 'list' object) with another interpreter: it "
              "contains itself (a reference cycle); cycles cannot be shared");
  }
  Py_DECREF(obj);
}

TEST_F(ValueTest, ASharedValueReadsAsItsValueInCpp) {
  PyObject* obj = eval("[[1, 2]] * 2");
  const Value v = to_value(obj);
  Py_DECREF(obj);
  const Value& item = v.get<List>().items[1];
  EXPECT_TRUE(item.is_shared());
  EXPECT_EQ(item.kind(), Kind::List);
  EXPECT_TRUE(item.is(Kind::List));
  EXPECT_NE(item.get_if<List>(), nullptr);
  EXPECT_EQ(item.data().index(), static_cast<std::size_t>(Kind::List));
  EXPECT_EQ((v.as<std::vector<std::vector<int>>>()),
            (std::vector<std::vector<int>>{{1, 2}, {1, 2}}));
  EXPECT_EQ(v, Value(List{{List{{1, 2}}, List{{1, 2}}}}));
  EXPECT_NE(v, Value(List{{List{{1, 2}}, List{{1, 3}}}}));

  // Changing it in one place changes that place only.
  Value w = v;
  w.get<List>().items[0].get<List>().items.push_back(3);
  EXPECT_EQ((w.as<std::vector<std::vector<int>>>()),
            (std::vector<std::vector<int>>{{1, 2, 3}, {1, 2}}));
  EXPECT_EQ((v.as<std::vector<std::vector<int>>>()),
            (std::vector<std::vector<int>>{{1, 2}, {1, 2}}));
  EXPECT_FALSE(w.get<List>().items[0].is_shared());
  EXPECT_TRUE(w.get<List>().items[1].is_shared());
}

TEST_F(ValueTest, ASharedValueMadeInCppCrossesAsOneObject) {
  const Value shared = Shared{std::make_shared<const Value>(List{{1, 2}})};
  // A Shared of a Shared is the inner one.
  const Value again = Shared{std::make_shared<const Value>(shared)};
  EXPECT_EQ(&again.get<List>(), &shared.get<List>());
  Value v = Tuple{{shared, again, List{{1, 2}}}};
  PyObject* back = to_python(v);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(PyTuple_GET_ITEM(back, 0), PyTuple_GET_ITEM(back, 1));
  EXPECT_NE(PyTuple_GET_ITEM(back, 0), PyTuple_GET_ITEM(back, 2));
  Py_DECREF(back);
  EXPECT_THROW(Value(Shared{}), std::invalid_argument);
}

TEST(SharedValue, ContainsPickleLooksAtASharedValueOnce) {
  // 2**60 places, 61 values: looked at once each.
  Value plain = List{{0}};
  Value pickled = List{{Pickled{"data"}}};
  for (int i = 0; i < 60; ++i) {
    Value p = Shared{std::make_shared<const Value>(plain)};
    plain = List{{p, p}};
    Value q = Shared{std::make_shared<const Value>(pickled)};
    pickled = List{{1, q, q}};
  }
  EXPECT_FALSE(plain.contains_pickle());
  EXPECT_TRUE(pickled.contains_pickle());
  Value copy = plain;
  EXPECT_EQ(copy, plain);  // the same shared values: equal without a look inside
}

TEST(ValueAcrossInterpreters, RebuiltInASubInterpreter) {
  Value v;
  {
    Activation main(testenv::main_interpreter());
    PyObject* obj = eval("{'grid': ['#..', '.^.'], 'big': 7**99, 'set': {1, 2}, 'f': 0.25}");
    v = to_value(obj);
    Py_DECREF(obj);
  }
  Interpreter sub = Interpreter::create();
  {
    Activation inside(sub);
    PyObject* back = to_python(v);
    ASSERT_NE(back, nullptr);
    PyObject* expected = eval("{'grid': ['#..', '.^.'], 'big': 7**99, 'set': {1, 2}, 'f': 0.25}");
    EXPECT_EQ(PyObject_RichCompareBool(back, expected, Py_EQ), 1);
    Py_DECREF(back);
    Py_DECREF(expected);
  }
  sub.close();
}

TEST_F(ValueTest, CapturedErrorsCarryTypeMessageAndTraceback) {
  PyObject* r = eval("int('x')");
  EXPECT_EQ(r, nullptr);
  PyErr_Clear();
  PyRun_SimpleString("def _boom():\n    raise KeyError('missing')\n");
  PyObject* fn = eval("_boom");
  PyObject* res = PyObject_CallNoArgs(fn);
  ASSERT_EQ(res, nullptr);
  ErrorInfo info = capture_error();
  EXPECT_FALSE(PyErr_Occurred());
  EXPECT_EQ(info.type_module, "builtins");
  EXPECT_EQ(info.type_qualname, "KeyError");
  EXPECT_EQ(info.message, "'missing'");
  EXPECT_NE(info.traceback.find("_boom"), std::string::npos) << info.traceback;
  EXPECT_FALSE(info.pickled.empty());
  Py_DECREF(fn);
}
