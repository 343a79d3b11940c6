// The flat form of a crossing's values (src/core/packed.*): what the writer
// puts in the buffer, what Python and C++ readers make of it, and buffers a
// reader must refuse.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/interpreter.hpp"
#include "core/packed.hpp"
#include "core/py_value.hpp"
#include "python_env.hpp"

using namespace interpool;
using interpool::testenv::eval;

namespace {

void exec(const std::string& code) {
  PyObject* main = PyImport_AddModule("__main__");
  PyObject* globals = PyModule_GetDict(main);
  PyObject* r = PyRun_String(code.c_str(), Py_file_input, globals, globals);
  if (!r) PyErr_Print();
  ASSERT_NE(r, nullptr) << code;
  Py_DECREF(r);
}

bool same_value(PyObject* a, PyObject* b) {
  return Py_TYPE(a) == Py_TYPE(b) && PyObject_RichCompareBool(a, b, Py_EQ) == 1;
}

// `v` rebuilt in Python equals `expected` (same types too).
void expect_rebuilds(const Value& v, PyObject* expected) {
  PyObject* back = to_python(v);
  ASSERT_NE(back, nullptr);
  EXPECT_TRUE(same_value(back, expected));
  Py_DECREF(back);
}

const PackedData& data_of(const Value& v) {
  const Packed* p = detail::PackedAccess::packed(v);
  if (!p) throw std::logic_error("not a packed value");
  return *p->data;
}

std::string bytes_of(const Value& v) {
  const PackedData& d = data_of(v);
  return std::string(reinterpret_cast<const char*>(d.bytes()), d.size());
}

Value packed_value(std::shared_ptr<PackedData> data, std::size_t offset = 0) {
  return detail::PackedAccess::make(Packed{std::move(data), offset});
}

// Every kind of the flat form, at every str width, in one container.
constexpr const char* kEveryKind =
    "[None, True, False, 0, -1, 2**63-1, -2**63, 2**70, -2**200, 1.5, float('inf'), 3+4j, "
    "'', 'ascii', 'h\\xe9llo', '\\u0100 wide', '\\U0001F600 wider', '\\ud800 lone', "
    "'\\U0001F600\\udfff', b'', b'\\x00\\xff', bytearray(b'abc'), (1, (2,)), [[], [3]], "
    "{'k': {'n': 1}, 2: [4]}, {5, 'six'}, frozenset({7}), set(), {}, ()]";

class PackedTest : public ::testing::Test {
 protected:
  Activation main_{testenv::main_interpreter()};
};

}  // namespace

TEST_F(PackedTest, EveryKindCrossesInOneBuffer) {
  PyObject* obj = eval(kEveryKind);
  ASSERT_NE(obj, nullptr);
  Value v = to_value(obj);
  ASSERT_NE(detail::PackedAccess::packed(v), nullptr) << "a container converts to a Packed value";
  EXPECT_TRUE(data_of(v).side.empty()) << "plain data needs no side table";
  PyObject* back = to_python(v);
  ASSERT_NE(back, nullptr);
  EXPECT_TRUE(same_value(obj, back));
  // Each item keeps its exact type (bool stays bool, bytearray stays bytearray, ...).
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(obj); ++i)
    EXPECT_EQ(Py_TYPE(PyList_GET_ITEM(back, i)), Py_TYPE(PyList_GET_ITEM(obj, i))) << i;
  Py_DECREF(back);
  Py_DECREF(obj);
}

TEST_F(PackedTest, TreeOfAPackedValueIsTheHandBuiltTree) {
  PyObject* obj = eval(
      "[None, True, 7, -2**70, 2.5, 1j, 'h\\xe9', '\\u0100', '\\U0001F600', '\\ud800', b'b', "
      "bytearray(b'a'), (1,), {'k': [2]}, {3}, frozenset()]");
  ASSERT_NE(obj, nullptr);
  const Value v = to_value(obj);
  Py_DECREF(obj);
  const Value expected = List{
      {None{}, true, 7, BigInt{"-0x400000000000000000"}, 2.5, std::complex<double>(0, 1),
       Str{"h\xc3\xa9"}, Str{"\xc4\x80"}, Str{"\xf0\x9f\x98\x80"}, Str{"\xed\xa0\x80"}, Bytes{"b"},
       ByteArray{"a"}, Tuple{{1}}, Dict{{{Value("k"), List{{2}}}}}, Set{{3}}, FrozenSet{}}};
  EXPECT_EQ(v, expected);
  EXPECT_EQ(v.kind(), Kind::List);
  EXPECT_TRUE(v.is_shared()) << "a value given at the top is shared, as a tree's is";
  const auto& items = v.get<List>().items;
  ASSERT_EQ(items.size(), 16u);
  EXPECT_EQ(items[9].get<Str>().utf8, "\xed\xa0\x80") << "a lone surrogate as surrogatepass";
  EXPECT_FALSE(items[12].is_shared()) << "an object in one place is a plain node";
}

TEST_F(PackedTest, ChangingAPackedValueChangesThatPlaceOnly) {
  PyObject* obj = eval("[1, [2]]");
  ASSERT_NE(obj, nullptr);
  const Value v = to_value(obj);
  Py_DECREF(obj);
  Value copy = v;
  copy.get<List>().items.push_back(3);
  EXPECT_EQ(copy.get<List>().items.size(), 3u);
  EXPECT_EQ(v.get<List>().items.size(), 2u);
  // A Shared around a Packed value is that value.
  Value wrapped = Shared{std::make_shared<const Value>(v)};
  EXPECT_EQ(wrapped.kind(), Kind::List);
  EXPECT_EQ(&wrapped.data(), &v.data());
}

TEST_F(PackedTest, ObjectMetAgainIsWrittenOnceAndReadAsOne) {
  exec("shared_inner = [1, 2]\nshared_outer = [shared_inner, shared_inner, {'k': shared_inner}]");
  PyObject* obj = eval("shared_outer");
  ASSERT_NE(obj, nullptr);
  const Value v = to_value(obj);
  // Once: the second and third places are references (a few bytes each).
  const std::string bytes = bytes_of(v);
  EXPECT_EQ(std::count(bytes.begin(), bytes.end(), static_cast<char>(packed::kRef)), 2);
  PyObject* back = to_python(v);
  ASSERT_NE(back, nullptr);
  PyObject* first = PyList_GET_ITEM(back, 0);
  EXPECT_EQ(first, PyList_GET_ITEM(back, 1));
  EXPECT_EQ(first, PyDict_GetItemString(PyList_GET_ITEM(back, 2), "k"));
  EXPECT_TRUE(same_value(first, PyList_GET_ITEM(obj, 0)));
  // The C++ reader: one Shared node in the three places.
  const auto& items = v.get<List>().items;
  EXPECT_TRUE(items[0].is_shared());
  EXPECT_EQ(&items[0].data(), &items[1].data());
  EXPECT_EQ(&items[0].data(), &items[2].get<Dict>().items[0].second.data());
  Py_DECREF(back);
  Py_DECREF(obj);
}

TEST_F(PackedTest, SharingSpansTheValuesOfOneCrossingInAnyReadingOrder) {
  exec("across = {'a': 1}\nfirst_obj = [across, 'after']\nholder = [across]");
  PyObject* first_obj = eval("first_obj");
  PyObject* across = eval("across");
  PyObject* holder = eval("holder");
  ToValue convert;
  const Value first = convert(first_obj, "argument 1");
  const Value second = convert(across, "argument 2");  // an entry inside the first value
  const Value third = convert(holder, "argument 3");   // a reference to that entry
  EXPECT_EQ(&data_of(first), &data_of(second)) << "one buffer for the crossing";
  // Read in the reverse order: the entry is made before the value that holds
  // it is read, which must step over it.
  ToPython rebuild;
  PyObject* h = rebuild(third);
  PyObject* a = rebuild(second);
  PyObject* f = rebuild(first);
  ASSERT_TRUE(h && a && f);
  EXPECT_EQ(PyList_GET_ITEM(h, 0), a);
  EXPECT_EQ(PyList_GET_ITEM(f, 0), a);
  EXPECT_TRUE(same_value(f, first_obj));
  // And the C++ reader, in that order too.
  EXPECT_EQ(&third.get<List>().items[0].data(), &second.data());
  EXPECT_EQ(&second.data(), &first.get<List>().items[0].data());
  EXPECT_EQ(first.get<List>().items[1].get<Str>().utf8, "after");
  Py_DECREF(h);
  Py_DECREF(a);
  Py_DECREF(f);
  Py_DECREF(first_obj);
  Py_DECREF(across);
  Py_DECREF(holder);
}

TEST_F(PackedTest, StrMetAgainIsOneObjectToPythonAndPlainInTheTree) {
  exec(
      "repeated = ''.join(['re', 'peated ', '\\u0100'])\nstrs = [repeated, repeated, "
      "{repeated: repeated}]");
  PyObject* obj = eval("strs");
  const Value v = to_value(obj);
  PyObject* back = to_python(v);
  ASSERT_NE(back, nullptr);
  PyObject* s = PyList_GET_ITEM(back, 0);
  EXPECT_EQ(s, PyList_GET_ITEM(back, 1));
  EXPECT_TRUE(same_value(s, PyList_GET_ITEM(obj, 0)));
  // The tree keeps a str a plain scalar in each place, as it always had.
  const auto& items = v.get<List>().items;
  EXPECT_FALSE(items[0].is_shared());
  EXPECT_FALSE(items[1].is_shared());
  EXPECT_EQ(items[1].get<Str>().utf8, "repeated \xc4\x80");
  EXPECT_EQ(items[2].get<Dict>().items[0].first.get<Str>().utf8, "repeated \xc4\x80");
  EXPECT_FALSE(items[2].get<Dict>().items[0].second.is_shared());
  Py_DECREF(back);
  Py_DECREF(obj);
}

TEST_F(PackedTest, BytesMetAgainIsWrittenOnceAndOneObjectToPython) {
  // One large bytes object in many places: one copy in the buffer (it was
  // written in each place: 2,000 places of 1 MiB took gigabytes), one object
  // back in Python, a plain value in each place of the C++ tree.
  exec("blob = bytes(range(256)) * 4096\nblobs = [blob] * 50 + [{'k': blob}]");
  PyObject* obj = eval("blobs");
  const Value v = to_value(obj);
  EXPECT_LT(data_of(v).size(), 2u << 20) << "written once, not 51 times";
  PyObject* back = to_python(v);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(PyList_GET_ITEM(back, 0), PyList_GET_ITEM(back, 49));
  EXPECT_TRUE(same_value(back, obj));
  const auto& items = v.get<List>().items;
  EXPECT_FALSE(items[1].is_shared());
  EXPECT_EQ(items[1].get<Bytes>().data.size(), 256u * 4096);
  EXPECT_EQ(items[50].get<Dict>().items[0].second.get<Bytes>().data.size(), 256u * 4096);
  Py_DECREF(back);
  Py_DECREF(obj);
}

TEST_F(PackedTest, ObjectsWithNoFlatFormGoToTheSideTableOnce) {
  exec(
      "import fractions\nclass Sub(list): pass\nfrac = fractions.Fraction(1, 3)\n"
      "side_obj = [frac, frac, {'f': frac}, Sub([1])]");
  PyObject* obj = eval("side_obj");
  const Value v = to_value(obj);
  EXPECT_EQ(data_of(v).side.size(), 2u) << "the Fraction once, the list subclass once";
  EXPECT_TRUE(v.contains_pickle());
  const auto& items = v.get<List>().items;
  EXPECT_EQ(items[0].kind(), Kind::Pickled);
  EXPECT_EQ(&items[0].data(), &items[1].data());
  EXPECT_EQ(items[3].kind(), Kind::Pickled) << "a subclass of list is pickled";
  PyObject* back = to_python(v);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(PyList_GET_ITEM(back, 0), PyList_GET_ITEM(back, 1));
  EXPECT_EQ(PyList_GET_ITEM(back, 0), PyDict_GetItemString(PyList_GET_ITEM(back, 2), "f"));
  EXPECT_TRUE(same_value(PyList_GET_ITEM(back, 3), PyList_GET_ITEM(obj, 3)));
  Py_DECREF(back);
  Py_DECREF(obj);
}

TEST_F(PackedTest, AFailedValueLeavesTheCrossingAsItWas) {
  PyObject* good = eval("[1, 'two']");
  PyObject* bad = eval("[3, [4, lambda: 5]]");
  ToValueOptions options;
  options.allow_pickle = false;
  ToValue convert(options);
  Value first = convert(good, "argument 1");
  const std::size_t size = data_of(first).size();
  EXPECT_THROW(convert(bad, "argument 2"), NotShareable);
  EXPECT_EQ(data_of(first).size(), size) << "the failed value's entries are dropped";
  expect_rebuilds(convert(good, "argument 3"), good);
  Py_DECREF(good);
  Py_DECREF(bad);
}

TEST_F(PackedTest, OnePicklerWritesTheCrossingsObjectsAndOneUnpicklerReadsThem) {
  exec(
      "import fractions\nclass Box:\n    def __init__(self, v): self.v = v\n"
      "    def __eq__(self, o): return type(o) is Box and o.v == self.v\n"
      "held = [0]\nboxes = [Box(held), Box(fractions.Fraction(1, 3)), Box(held)]\n"
      "later = Box(held)");
  PyObject* boxes = eval("boxes");
  PyObject* later = eval("later");
  ToValue convert;
  const Value first = convert(boxes, "argument 1");
  const Value second = convert(later, "argument 2");
  const PackedData& data = data_of(first);
  ASSERT_TRUE(data.pickles);
  EXPECT_EQ(data.pickles->objects, 4u) << "four objects, one stream";
  EXPECT_EQ(data.pickles->batches.size(), 2u) << "pickled together, a batch for each value";
  EXPECT_EQ(data.pickles->runs, std::vector<std::size_t>{0}) << "one pickler";
  ToPython rebuild;
  PyObject* later_back = rebuild(second);  // read out of order: the objects before it first
  PyObject* back = rebuild(first);
  ASSERT_TRUE(back && later_back);
  EXPECT_TRUE(same_value(back, boxes));
  PyObject* held0 = PyObject_GetAttrString(PyList_GET_ITEM(back, 0), "v");
  PyObject* held2 = PyObject_GetAttrString(PyList_GET_ITEM(back, 2), "v");
  PyObject* held_later = PyObject_GetAttrString(later_back, "v");
  EXPECT_EQ(held0, held2) << "what two pickled objects hold is one object";
  EXPECT_EQ(held0, held_later) << "in the values of one crossing too";
  Py_XDECREF(held0);
  Py_XDECREF(held2);
  Py_XDECREF(held_later);
  Py_DECREF(back);
  Py_DECREF(later_back);
  // A C++ reader sees each object as a Pickled of the stream, which rebuilds
  // alone too (a program that passes one on).
  const Value& node = first.get<List>().items[1];
  ASSERT_EQ(node.kind(), Kind::Pickled);
  EXPECT_EQ(node.get<Pickled>().index, 1u);
  PyObject* alone = to_python(Value(node.get<Pickled>()));
  ASSERT_NE(alone, nullptr);
  EXPECT_TRUE(same_value(alone, PyList_GET_ITEM(boxes, 1)));
  Py_DECREF(alone);
  Py_DECREF(boxes);
  Py_DECREF(later);
}

TEST_F(PackedTest, APickleThatFailsStartsANewRunAndLeavesTheOthersReadable) {
  exec(
      "import fractions, threading\nfirst_f = [fractions.Fraction(1, 2)]\n"
      "fails = [fractions.Fraction(1, 3), threading.Lock()]\n"
      "after = [fractions.Fraction(1, 2), fractions.Fraction(2, 3)]");
  PyObject* first_obj = eval("first_f");
  PyObject* fails = eval("fails");
  PyObject* after = eval("after");
  ToValue convert;
  const Value first = convert(first_obj, "argument 1");
  try {
    convert(fails, "argument 2");
    ADD_FAILURE() << "a lock pickled";
  } catch (const NotShareable& e) {
    // Found again, pickled alone: its place and its type.
    EXPECT_NE(std::string(e.what()).find("argument 2[1]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'lock'"), std::string::npos) << e.what();
  }
  const Value third = convert(after, "argument 3");
  const PickleStream& stream = *data_of(first).pickles;
  // The failed batch is dropped; looking for the culprit pickled the Fraction
  // before it alone (a batch no value names), then the lock failed.
  EXPECT_EQ(stream.objects, 4u);
  EXPECT_EQ(stream.batches.size(), 3u);
  EXPECT_EQ(stream.runs, (std::vector<std::size_t>{0, 1, 2})) << "a new pickler after each failure";
  EXPECT_EQ(stream.bytes.size(), stream.batches.back().end);
  // Each run rebuilds from its own first object, in any order.
  ToPython rebuild;
  PyObject* t = rebuild(third);
  PyObject* f = rebuild(first);
  ASSERT_TRUE(t && f);
  EXPECT_TRUE(same_value(t, after));
  EXPECT_TRUE(same_value(f, first_obj));
  Py_DECREF(t);
  Py_DECREF(f);
  expect_rebuilds(third, after);
  Py_DECREF(first_obj);
  Py_DECREF(fails);
  Py_DECREF(after);
}

TEST_F(PackedTest, RunsReadInAnyOrderKeepWhatTheirBatchesShare) {
  exec(
      "import fractions, threading\nclass Holder:\n    def __init__(self, v): self.v = v\n"
      "runs_shared = [1]\nruns_first = [fractions.Fraction(1, 2)]\n"
      "runs_fails = [threading.Lock()]\n"
      "runs_a = [Holder(runs_shared)]\nruns_b = [Holder(runs_shared)]");
  PyObject* first_obj = eval("runs_first");
  PyObject* fails = eval("runs_fails");
  PyObject* a = eval("runs_a");
  PyObject* b = eval("runs_b");
  ToValue convert;
  const Value first = convert(first_obj, "argument 1");
  EXPECT_THROW(convert(fails, "argument 2"), NotShareable);
  const Value va = convert(a, "argument 3");
  const Value vb = convert(b, "argument 4");
  const PickleStream& stream = *data_of(first).pickles;
  ASSERT_EQ(stream.runs.size(), 2u);
  // The second run, then the first, then the second again: its unpickler goes on
  // where it stopped, so what its two batches share is one object.
  ToPython rebuild;
  PyObject* got_a = rebuild(va);
  PyObject* got_first = rebuild(first);
  PyObject* got_b = rebuild(vb);
  ASSERT_TRUE(got_a && got_first && got_b);
  PyObject* va_v = PyObject_GetAttrString(PyList_GET_ITEM(got_a, 0), "v");
  PyObject* vb_v = PyObject_GetAttrString(PyList_GET_ITEM(got_b, 0), "v");
  EXPECT_EQ(va_v, vb_v);
  EXPECT_TRUE(same_value(got_first, first_obj));
  Py_XDECREF(va_v);
  Py_XDECREF(vb_v);
  Py_DECREF(got_a);
  Py_DECREF(got_first);
  Py_DECREF(got_b);
  for (PyObject* o : {first_obj, fails, a, b}) Py_DECREF(o);
}

TEST_F(PackedTest, AValueWhoseBatchFailsOnceCrossesWhenItsObjectsPickleAlone) {
  exec(
      "class Flaky:\n    calls = 0\n    def __reduce__(self):\n"
      "        Flaky.calls += 1\n        if Flaky.calls == 1: raise OSError('once')\n"
      "        return (Flaky, ())\n"
      "flaky_value = ['a', [Flaky()]]");
  PyObject* value = eval("flaky_value");
  ToValue convert;
  const Value v = convert(value, "argument 1");
  PyObject* back = to_python(v);
  ASSERT_NE(back, nullptr) << "the second pass pickled it: the value crosses";
  PyObject* flaky = PyList_GET_ITEM(PyList_GET_ITEM(back, 1), 0);
  EXPECT_STREQ(Py_TYPE(flaky)->tp_name, "Flaky");
  Py_DECREF(back);
  Py_DECREF(value);
}

TEST_F(PackedTest, ABufferKeepsNoMoreRoomThanItsValuesNeed) {
  // A buffer starts as large as this thread's last one (the chunks of one map
  // are alike); a small value after a large one gives the rest back.
  // (Built at run time: 3.12 keeps a folded constant str interned forever.)
  PyObject* large = eval("['x' * int('100') + str(i) for i in range(3000)]");
  PyObject* small = eval("[1, 'two']");
  for (PyObject* obj : {large, large, small}) {
    const Value v = to_value(obj);
    const PackedData& data = data_of(v);
    EXPECT_LE(data.capacity(), 2 * data.size() + 4096) << data.size();
    expect_rebuilds(v, obj);
  }
  Py_DECREF(large);
  Py_DECREF(small);
}

TEST_F(PackedTest, ThreadsReadingOneValueShareOneTree) {
  PyObject* obj = eval("[[i, str(i)] for i in range(2000)]");
  const Value v = to_value(obj);
  Py_DECREF(obj);
  const Value* seen[2] = {};
  std::thread a([&] { seen[0] = &v.get<List>().items[1999]; });
  std::thread b([&] { seen[1] = &v.get<List>().items[1999]; });
  a.join();
  b.join();
  EXPECT_EQ(seen[0], seen[1]);
  EXPECT_EQ(seen[0]->get<List>().items[1].get<Str>().utf8, "1999");
}

TEST_F(PackedTest, TruncatedBuffersAreRefused) {
  PyObject* obj = eval(kEveryKind);
  const std::string bytes = bytes_of(to_value(obj));
  Py_DECREF(obj);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto cut = PackedData::from_bytes(std::string_view(bytes).substr(0, n));
    EXPECT_THROW(cut->tree(0), packed::Damaged) << "cut at " << n;
    PyObject* back = to_python(packed_value(cut));
    EXPECT_EQ(back, nullptr) << "cut at " << n;
    EXPECT_TRUE(PyErr_ExceptionMatches(PyExc_SystemError)) << "cut at " << n;
    PyErr_Clear();
  }
  // Whole, it reads.
  EXPECT_NO_THROW(PackedData::from_bytes(bytes)->tree(0));
}

TEST_F(PackedTest, DamagedBuffersAreRefused) {
  auto count = [](std::uint32_t n) {
    return std::string(reinterpret_cast<const char*>(&n), sizeof n);
  };
  const std::string cases[] = {
      std::string(1, '\x1f'),                                     // unknown kind
      std::string(1, static_cast<char>(packed::kSide)) + '\x00',  // no side value
      std::string(1, static_cast<char>(packed::kList)) + count(1) + '\x10' +
          '\x00',  // ref to itself
      std::string(1, static_cast<char>(packed::kList)) + count(1) +
          static_cast<char>(packed::kRef) + '\x09',                          // ref forward
      std::string(1, static_cast<char>(packed::kList)) + count(0xffffffff),  // count past the end
      std::string(1, static_cast<char>(packed::kInt)) + std::string(11, '\xff'),  // endless number
      std::string(1, static_cast<char>(packed::kStr | packed::kUcs4 << packed::kStrShift)) +
          '\x01' + std::string("\xff\xff\xff\x7f", 4),  // no code point
  };
  for (const std::string& bytes : cases) {
    auto data = PackedData::from_bytes(bytes);
    EXPECT_THROW(data->tree(0), packed::Damaged) << testing::PrintToString(bytes);
  }
  // A reference to a shared entry that holds it: a cycle no writer makes.
  std::string cycle = std::string(1, static_cast<char>(packed::kList | packed::kMetAgain)) +
                      count(1) + static_cast<char>(packed::kRef) + '\x00';
  EXPECT_THROW(PackedData::from_bytes(cycle)->tree(0), packed::Damaged);
  PyObject* back = to_python(packed_value(PackedData::from_bytes(cycle)));
  EXPECT_EQ(back, nullptr);
  EXPECT_TRUE(PyErr_ExceptionMatches(PyExc_SystemError));
  PyErr_Clear();
  // Deeper than any writer nests.
  std::string deep;
  for (int i = 0; i <= packed::kMaxDepth + 1; ++i)
    deep += std::string(1, static_cast<char>(packed::kList)) + count(1);
  deep += static_cast<char>(packed::kNone);
  EXPECT_THROW(PackedData::from_bytes(deep)->tree(0), packed::Damaged);
  back = to_python(packed_value(PackedData::from_bytes(deep)));
  EXPECT_EQ(back, nullptr);
  PyErr_Clear();
}
