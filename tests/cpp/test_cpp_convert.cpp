// Conversions between C++ types and Values (interpool/convert.hpp), both ways,
// on their own and through a Python worker.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <interpool/pool.hpp>
#include <interpool/queue.hpp>
#include <interpool/value.hpp>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "python_env.hpp"

using namespace interpool;

// A type of the program's own, taught to interpool as docs/cpp.md shows.
struct Point {
  double x = 0, y = 0;
  friend bool operator==(const Point&, const Point&) = default;
};

template <>
struct interpool::Convert<Point> {
  static std::string name() { return "Point"; }
  static Value to(const Point& p) { return Value(std::make_tuple(p.x, p.y)); }
  static Point from(const Value& v) {
    auto [x, y] = v.as<std::tuple<double, double>>();
    return {x, y};
  }
};

namespace {

// The message of the ConversionError `f` throws ("" if none).
template <class F>
std::string conversion_error(F f) {
  try {
    f();
  } catch (const ConversionError& e) {
    return e.what();
  }
  return "";
}

template <class T>
void round_trip(const T& x) {
  Value v = x;
  EXPECT_EQ(v.as<T>(), x) << Convert<T>::name();
}

}  // namespace

// ---------------------------------------------------------------------------
// C++ -> Value -> C++, without Python
// ---------------------------------------------------------------------------

TEST(CppConvert, IntegersOfEveryWidth) {
  round_trip<signed char>(-128);
  round_trip<unsigned char>(255);
  round_trip<short>(-32768);
  round_trip<unsigned short>(65535);
  round_trip<int>(std::numeric_limits<int>::min());
  round_trip<unsigned>(std::numeric_limits<unsigned>::max());
  round_trip<long>(std::numeric_limits<long>::min());
  round_trip<unsigned long>(std::numeric_limits<unsigned long>::max());
  round_trip<long long>(std::numeric_limits<long long>::max());
  round_trip<unsigned long long>(std::numeric_limits<unsigned long long>::max());
  round_trip<std::int8_t>(7);
  round_trip<std::uint64_t>(0);

  EXPECT_EQ(Value(7u), Value(7));
  EXPECT_EQ(Value(7LL), Value(std::int64_t{7}));
  // Past int64, an unsigned value is a Python int of its own size.
  EXPECT_EQ(Value(std::numeric_limits<std::uint64_t>::max()), Value(BigInt{"0xffffffffffffffff"}));
  EXPECT_EQ(Value(std::uint64_t{1} << 63), Value(BigInt{"0x8000000000000000"}));
  EXPECT_EQ(Value(BigInt{"0x8000000000000000"}).as<std::uint64_t>(), std::uint64_t{1} << 63);
}

TEST(CppConvert, IntegersOutOfRangeAreRefused) {
  EXPECT_EQ(conversion_error([] { Value(300).as<unsigned char>(); }),
            "cannot convert a Python 'int' to unsigned char: 300 is out of range");
  EXPECT_EQ(conversion_error([] { Value(-1).as<unsigned>(); }),
            "cannot convert a Python 'int' to unsigned int: -1 is out of range");
  EXPECT_EQ(conversion_error([] { Value(std::int64_t{1} << 40).as<int>(); }),
            "cannot convert a Python 'int' to int: 1099511627776 is out of range");
  EXPECT_EQ(conversion_error([] { Value(-129).as<std::int8_t>(); }),
            "cannot convert a Python 'int' to signed char: -129 is out of range");
  EXPECT_EQ(conversion_error([] { Value(BigInt{"0x10000000000000000"}).as<std::uint64_t>(); }),
            "cannot convert a Python 'int' to unsigned long: 0x10000000000000000 is out of range");
  EXPECT_EQ(conversion_error([] { Value(BigInt{"0x8000000000000000"}).as<long long>(); }),
            "cannot convert a Python 'int' to long long: 0x8000000000000000 is out of range");
  EXPECT_EQ(conversion_error([] { Value(BigInt{"-0x8000000000000001"}).as<long>(); }),
            "cannot convert a Python 'int' to long: -0x8000000000000001 is out of range");
  EXPECT_NO_THROW(Value(255).as<std::uint8_t>());
  EXPECT_NO_THROW(Value(-128).as<std::int8_t>());
}

TEST(CppConvert, AnIntTooLargeForAnyFloatIsRefusedAndNamedShortly) {
  // 16**4200 (about 10**5057) is past long double's range: as<double>() gave
  // an infinity, and the messages held all 4,200 hex digits.
  BigInt huge{"0x1" + std::string(4200, '0')};
  std::string message = conversion_error([&] { Value(huge).as<double>(); });
  EXPECT_EQ(message,
            "cannot convert a Python 'int' to double: 0x10000000000000...0000000000000000 (4203 "
            "characters) is out of range");
  EXPECT_EQ(conversion_error([&] { Value(huge).as<std::uint64_t>(); }),
            "cannot convert a Python 'int' to unsigned long: 0x10000000000000...0000000000000000 "
            "(4203 characters) is out of range");
}

TEST(CppConvert, WrongPythonTypesNameBothTypes) {
  EXPECT_EQ(conversion_error([] { Value("20").as<long long>(); }),
            "cannot convert a Python 'str' to long long");
  EXPECT_EQ(conversion_error([] { Value(true).as<int>(); }),
            "cannot convert a Python 'bool' to int");
  EXPECT_EQ(conversion_error([] { Value(1).as<bool>(); }), "cannot convert a Python 'int' to bool");
  EXPECT_EQ(conversion_error([] { Value(1.5).as<int>(); }),
            "cannot convert a Python 'float' to int");
  EXPECT_EQ(conversion_error([] { Value(None{}).as<std::string>(); }),
            "cannot convert a Python 'NoneType' to std::string");
  EXPECT_EQ(conversion_error([] { Value(Bytes{"x"}).as<std::string>(); }),
            "cannot convert a Python 'bytes' to std::string");
  EXPECT_EQ(conversion_error([] { Value("x").as<std::vector<std::byte>>(); }),
            "cannot convert a Python 'str' to std::vector<std::byte>");
  EXPECT_EQ(conversion_error([] { Value(List{}).as<std::map<std::string, int>>(); }),
            "cannot convert a Python 'list' to std::map<std::string, int>");
  EXPECT_EQ(conversion_error([] { Value(Pickled{"..."}).as<double>(); }),
            "cannot convert a Python 'pickled object' to double");
  try {
    Value("x").as<long long>();
  } catch (const ConversionError& e) {
    EXPECT_EQ(e.python_type(), "str");
    EXPECT_EQ(e.cpp_type(), "long long");
    EXPECT_EQ(e.where(), "");
  }
}

TEST(CppConvert, FloatingPoint) {
  round_trip(0.1);
  round_trip(1.5f);
  round_trip(-2.25L);
  EXPECT_EQ(Value(1.5f), Value(1.5));
  EXPECT_EQ(Value(3).as<double>(), 3.0);  // an int is a number too
  EXPECT_EQ(Value(BigInt{"0x10000000000000000"}).as<double>(), 18446744073709551616.0);
  EXPECT_TRUE(std::isinf(Value(std::numeric_limits<double>::infinity()).as<float>()));
  EXPECT_TRUE(std::isnan(Value(std::nan("")).as<double>()));
  EXPECT_EQ(conversion_error([] {
              Value(1e300).as<float>();
            }).rfind("cannot convert a Python 'float' to float: 1", 0),
            0u);
  EXPECT_EQ(conversion_error([] { Value("1.0").as<double>(); }),
            "cannot convert a Python 'str' to double");
}

TEST(CppConvert, BoolStringsBytesComplex) {
  round_trip(true);
  round_trip(false);
  round_trip(std::string("héllo\n\0x", 9));
  EXPECT_EQ(Value(std::string_view("view")), Value("view"));
  EXPECT_EQ(Value(std::string_view("view")).as<std::string>(), "view");
  const char* text = "text";
  EXPECT_EQ(Value(text), Value(std::string("text")));
  round_trip(Bytes{std::string("\0\xff", 2)});
  std::vector<std::byte> raw{std::byte{0}, std::byte{0xff}, std::byte{7}};
  EXPECT_EQ(Value(raw), Value(Bytes{std::string("\0\xff\x07", 3)}));
  round_trip(raw);
  EXPECT_EQ(Value(ByteArray{"ab"}).as<std::vector<std::byte>>().size(), 2u);
  EXPECT_EQ(Value(ByteArray{"ab"}).as<Bytes>(), Bytes{"ab"});
  round_trip(std::complex<double>(1, -2));
  EXPECT_EQ(Value(2).as<std::complex<double>>(), std::complex<double>(2, 0));
}

TEST(CppConvert, Containers) {
  round_trip(std::vector<int>{1, 2, 3});
  round_trip(std::vector<std::string>{"a", "", "c"});
  round_trip(std::vector<bool>{true, false});
  round_trip(std::map<std::string, double>{{"x", 1.5}, {"y", -2}});
  round_trip(std::unordered_map<int, std::string>{{1, "one"}, {2, "two"}});
  round_trip(std::set<int>{3, 1, 2});
  round_trip(std::unordered_set<std::string>{"a", "b"});
  round_trip(std::tuple<int, std::string, double>{1, "two", 3.0});
  round_trip(std::tuple<>{});
  round_trip(std::pair<std::string, long long>{"n", 1LL << 40});
  round_trip(std::optional<int>{});
  round_trip(std::optional<int>{5});

  EXPECT_TRUE(Value(std::vector<int>{1}).is(Kind::List));
  EXPECT_TRUE(Value(std::make_tuple(1, 2)).is(Kind::Tuple));
  EXPECT_TRUE(Value(std::map<int, int>{}).is(Kind::Dict));
  EXPECT_TRUE(Value(std::set<int>{}).is(Kind::Set));
  EXPECT_TRUE(Value(std::optional<int>{}).is(Kind::None));
  EXPECT_TRUE(Value(std::nullopt).is(Kind::None));
  EXPECT_TRUE(Value(nullptr).is(Kind::None));
  // std::map keeps its order in the dict.
  Value d = std::map<std::string, int>{{"b", 2}, {"a", 1}};
  EXPECT_EQ(d.get<Dict>().items[0].first, Value("a"));

  // Going back is lenient where Python is: a tuple gives a vector, a list a tuple.
  Value tuple = Tuple{{Value(1), Value(2)}};
  EXPECT_EQ(tuple.as<std::vector<int>>(), (std::vector<int>{1, 2}));
  Value list = List{{Value(1), Value("x")}};
  EXPECT_EQ((list.as<std::pair<int, std::string>>()), (std::pair<int, std::string>{1, "x"}));
  EXPECT_EQ(list.as<std::vector<Value>>().size(), 2u);
  Value frozen = FrozenSet{{Value(4)}};
  EXPECT_EQ(frozen.as<std::set<int>>(), std::set<int>{4});
}

TEST(CppConvert, EngineObjectsByReference) {
  std::shared_ptr<Queue> queue = Queue::create();
  Value v = queue;
  ASSERT_TRUE(v.is(Kind::Handle));
  EXPECT_EQ(v.as<std::shared_ptr<Queue>>(), queue);  // the same object, not a copy
  EXPECT_EQ(conversion_error([] { Value(1).as<std::shared_ptr<Queue>>(); }),
            "cannot convert a Python 'int' to std::shared_ptr<engine object>");
}

TEST(CppConvert, TypesOfTheProgramsOwn) {
  Value v = Point{1, 2};
  EXPECT_EQ(v, Value(Tuple{{Value(1.0), Value(2.0)}}));
  EXPECT_EQ(v.as<Point>(), (Point{1, 2}));
  std::vector<Point> path{{0, 0}, {1, 0.5}};
  EXPECT_EQ(Value(path).as<std::vector<Point>>(), path);
  EXPECT_EQ((Convert<std::map<std::string, Point>>::name()), "std::map<std::string, Point>");
}

TEST(CppConvert, Nested) {
  using Deep = std::map<std::string, std::vector<std::optional<std::tuple<int, std::string>>>>;
  Deep deep{{"a", {std::nullopt, std::make_tuple(1, "x")}}, {"b", {}}};
  round_trip(deep);
  Value v = deep;
  EXPECT_EQ(Convert<Deep>::name(),
            "std::map<std::string, std::vector<std::optional<std::tuple<int, std::string>>>>");
  // Values mix with C++ types.
  std::vector<Value> mixed{Value(1), Value("two"), Value(std::vector<int>{3})};
  Value m = mixed;
  EXPECT_EQ(m.get<List>().items[2], Value(List{{Value(3)}}));
}

TEST(CppConvert, ErrorsInsideContainersSayWhere) {
  Value v = List{{Value(1), Value("two")}};
  EXPECT_EQ(conversion_error([&] { v.as<std::vector<long long>>(); }),
            "cannot convert a Python 'str' at [1] to long long");
  Value d = std::map<std::string, std::vector<int>>{{"grid", {1, 2, 300}}};
  EXPECT_EQ(conversion_error([&] { d.as<std::map<std::string, std::vector<std::uint8_t>>>(); }),
            "cannot convert a Python 'int' at ['grid'][2] to unsigned char: 300 is out of range");
  Value keys = std::map<int, int>{{7, 1}};
  EXPECT_EQ(conversion_error([&] { keys.as<std::map<std::string, int>>(); }),
            "cannot convert a Python 'int' at [7] (the key) to std::string");
  Value t = std::make_tuple(1, 2, 3);
  EXPECT_EQ(conversion_error([&] { t.as<std::pair<int, int>>(); }),
            "cannot convert a Python 'tuple' to std::pair<int, int>: it has 3 items, not 2");
  EXPECT_EQ(conversion_error([&] { t.as<std::tuple<int, int>>(); }),
            "cannot convert a Python 'tuple' to std::tuple<int, int>: it has 3 items, not 2");
  try {
    d.as<std::map<std::string, std::vector<std::string>>>();
    FAIL();
  } catch (const ConversionError& e) {
    EXPECT_EQ(e.where(), "['grid'][0]");
    EXPECT_EQ(e.cpp_type(), "std::string");
    EXPECT_EQ(e.python_type(), "int");
  }
}

// ---------------------------------------------------------------------------
// Through Python: what C++ values become in a worker, and what comes back
// ---------------------------------------------------------------------------

class CppConvertThroughPython : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pool_ = new Pool(PoolOptions{.workers = 1, .sys_path = testenv::main_sys_path()});
  }
  static void TearDownTestSuite() {
    delete pool_;
    pool_ = nullptr;
  }
  // What `x` is in Python: "type:repr".
  template <class T>
  static std::string in_python(const T& x) {
    return pool_->submit("pool_tasks", "describe", x).get().template as<std::string>();
  }
  // `x` sent to Python and back.
  template <class T>
  static T echo(const T& x) {
    return pool_->submit("pool_tasks", "echo", x).get().template as<T>();
  }
  static Pool* pool_;
};
Pool* CppConvertThroughPython::pool_ = nullptr;

TEST_F(CppConvertThroughPython, WhatCppValuesBecome) {
  EXPECT_EQ(in_python(std::numeric_limits<std::uint64_t>::max()), "int:18446744073709551615");
  EXPECT_EQ(in_python(std::numeric_limits<std::int64_t>::min()), "int:-9223372036854775808");
  EXPECT_EQ(in_python(static_cast<unsigned char>(200)), "int:200");
  EXPECT_EQ(in_python(2.5f), "float:2.5");
  EXPECT_EQ(in_python(true), "bool:True");
  EXPECT_EQ(in_python(std::string_view("hé")), "str:'hé'");
  EXPECT_EQ(in_python(std::vector<std::byte>{std::byte{1}}), "bytes:b'\\x01'");
  EXPECT_EQ(in_python(std::complex<double>(1, 2)), "complex:(1+2j)");
  EXPECT_EQ(in_python(std::vector<int>{1, 2}), "list:[1, 2]");
  EXPECT_EQ(in_python(std::map<std::string, int>{{"a", 1}}), "dict:{'a': 1}");
  EXPECT_EQ(in_python(std::set<int>{1}), "set:{1}");
  EXPECT_EQ(in_python(std::make_tuple(1, "x")), "tuple:(1, 'x')");
  EXPECT_EQ(in_python(std::make_pair(1, 2.5)), "tuple:(1, 2.5)");
  EXPECT_EQ(in_python(std::optional<int>{}), "NoneType:None");
  EXPECT_EQ(in_python(std::optional<int>{3}), "int:3");
}

TEST_F(CppConvertThroughPython, EveryTypeComesBack) {
  EXPECT_EQ(echo(std::numeric_limits<std::uint64_t>::max()),
            std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(echo(std::numeric_limits<long long>::min()), std::numeric_limits<long long>::min());
  EXPECT_EQ(echo<short>(-7), -7);
  EXPECT_EQ(echo(0.1), 0.1);
  EXPECT_EQ(echo(true), true);
  EXPECT_EQ(echo(std::string("surrogates? no: ünïcode")), "surrogates? no: ünïcode");
  EXPECT_EQ(echo(Bytes{std::string("\0\1", 2)}), Bytes{std::string("\0\1", 2)});
  EXPECT_EQ(echo(std::complex<double>(0, 1)), std::complex<double>(0, 1));
  using Deep = std::map<std::string, std::vector<std::optional<std::tuple<int, std::string>>>>;
  Deep deep{{"a", {std::nullopt, std::make_tuple(1, "x")}}, {"b", {}}};
  EXPECT_EQ(echo(deep), deep);
  std::unordered_map<long long, std::set<std::string>> groups{{1, {"a", "b"}}, {-2, {}}};
  EXPECT_EQ(echo(groups), groups);
}

TEST_F(CppConvertThroughPython, ResultsOfPythonFunctions) {
  Value v = pool_->submit("math", "factorial", 25).get();  // past int64
  EXPECT_EQ(conversion_error([&] {
              v.as<long long>();
            }).rfind("cannot convert a Python 'int' to long long: 0x", 0),
            0u);
  EXPECT_DOUBLE_EQ(v.as<double>(), 15511210043330985984000000.0);
  EXPECT_EQ((pool_->submit("builtins", "divmod", 17, 5).get().as<std::pair<int, int>>()),
            (std::pair<int, int>{3, 2}));
  EXPECT_EQ(
      pool_->submit("builtins", "sorted", std::set<int>{3, 1, 2}).get().as<std::vector<int>>(),
      (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(
      (pool_->submit("os.path", "split", "/a/b").get().as<std::tuple<std::string, std::string>>()),
      (std::tuple<std::string, std::string>{"/a", "b"}));
}

// What does not convert is refused at compile time, not deep in a template.
static_assert(ConvertsToValue<std::vector<std::map<std::string, std::optional<double>>>>);
static_assert(ConvertsFromValue<std::vector<std::map<std::string, std::optional<double>>>>);
static_assert(ConvertsToValue<std::vector<std::string_view>>);
static_assert(!ConvertsFromValue<std::vector<std::string_view>>);
static_assert(!std::is_constructible_v<Value, int*>);
static_assert(!std::is_constructible_v<Value, std::vector<int*>>);
static_assert(!std::is_constructible_v<Value, std::map<std::string, void*>>);
static_assert(!ConvertsFromValue<std::optional<const char*>>);
static_assert(std::is_convertible_v<std::vector<int>, Value>);  // implicit: Value v = vector
