// Conversions between C++ types and Values: `Value v = x;` builds one,
// `v.as<T>()` converts back.
//
// The C++ side of the boundary (src/core/py_value.hpp is the Python side). Every
// conversion is plain C++, so it runs on any thread without a GIL. Going back
// is strict, as Python's own types are: an int does not become a std::string,
// a bool is not an int, an int out of the C++ type's range is refused; the
// error names the Python type held, the C++ type asked for, and where inside
// a container the mismatch is.
//
//   C++                                      Python (Value kind)
//   every integer type but bool and chars    int (BigInt past int64)
//   float, double, long double               float (as<T> also takes an int)
//   bool                                     bool
//   std::string, std::string_view, char*     str (UTF-8); as<std::string> only
//   interpool::Bytes, std::vector<std::byte> bytes (as<> also takes a bytearray)
//   std::complex<double>                     complex
//   std::vector<T>                           list (as<> also takes a tuple)
//   std::set<T>, std::unordered_set<T>       set (as<> also takes frozenset, list, tuple)
//   std::map<K, V>, std::unordered_map<K, V> dict
//   std::pair<A, B>, std::tuple<A...>        tuple (as<> also takes a list of that length)
//   std::optional<T>                         None or T
//   std::nullopt_t, std::nullptr_t           None
//   std::shared_ptr<Queue> (any Shareable)   the engine object, by reference
//   interpool::Value and its kinds           as they are
//
// Teach interpool a type of your own by specializing interpool::Convert<T>
// (see value.hpp) before the first conversion of that type.
#pragma once

#include <cmath>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <interpool/error.hpp>
#include <interpool/value_type.hpp>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace interpool {

template <class T>
T Value::as() const {
  static_assert(
      !std::is_same_v<T, std::string_view> && !std::is_same_v<T, const char*>,
      "as<>() of a view would point into a Value that may be gone: use as<std::string>()");
  static_assert(ConvertsFromValue<T>,
                "interpool cannot convert a Value to this type: specialize interpool::Convert<T>");
  return Convert<T>::from(*this);
}

namespace detail {

template <class T>
inline constexpr bool is_character =
    std::is_same_v<T, char> || std::is_same_v<T, wchar_t> || std::is_same_v<T, char8_t> ||
    std::is_same_v<T, char16_t> || std::is_same_v<T, char32_t>;

/// Integer types that convert as numbers (characters and bool do not).
template <class T>
concept Integer = std::integral<T> && !std::is_same_v<T, bool> && !is_character<T>;

/// The Value's Python type, for messages (a pickled object's own type, when known).
inline std::string python_type(const Value& v) {
  if (const auto* p = v.get_if<Pickled>(); p && !p->type.empty()) return p->type;
  return std::string(kind_name(v.kind()));
}

[[noreturn]] inline void mismatch(const Value& v, std::string cpp_type, std::string why = {}) {
  throw ConversionError(python_type(v), std::move(cpp_type), std::move(why));
}

template <class T>
std::string name_of() {
  return Convert<T>::name();
}

/// "A, B, C" from the names of the types.
template <class... T>
std::string names_of() {
  std::string out;
  ((out += (out.empty() ? "" : ", ") + name_of<T>()), ...);
  return out;
}

/// The hex text Python's hex() gives ("0x1f").
inline std::string hex_of(std::uint64_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  do {
    out.insert(out.begin(), digits[n % 16]);
    n /= 16;
  } while (n);
  return "0x" + out;
}

/// A BigInt's sign and magnitude; `fits` is false past 64 bits.
struct BigIntParts {
  bool negative = false;
  bool fits = true;
  std::uint64_t magnitude = 0;
  long double approximate = 0;  ///< the value, rounded: for floating point
};

inline BigIntParts parts_of(const BigInt& b) {
  BigIntParts p;
  std::string_view text = b.hex;
  if (!text.empty() && text.front() == '-') {
    p.negative = true;
    text.remove_prefix(1);
  }
  if (text.starts_with("0x") || text.starts_with("0X")) text.remove_prefix(2);
  for (char c : text) {
    unsigned d = c >= '0' && c <= '9'   ? unsigned(c - '0')
                 : c >= 'a' && c <= 'f' ? unsigned(c - 'a' + 10)
                 : c >= 'A' && c <= 'F' ? unsigned(c - 'A' + 10)
                                        : 16;
    if (d == 16) continue;  // '_' separators
    if (p.magnitude >> 60) p.fits = false;
    p.magnitude = p.magnitude << 4 | d;
    p.approximate = p.approximate * 16 + d;
  }
  if (p.negative) p.approximate = -p.approximate;
  return p;
}

/// A BigInt for a message: its hex digits, the middle of a long one left out.
inline std::string shown(const BigInt& b) {
  constexpr std::size_t kEnds = 16;
  if (b.hex.size() <= 3 * kEnds) return b.hex;
  std::string out = b.hex.substr(0, kEnds);
  out += "...";
  out += b.hex.substr(b.hex.size() - kEnds);
  out += " (";
  out += std::to_string(b.hex.size());
  out += " characters)";
  return out;
}

/// "[" + inside + "]". Built by appending: GCC 12 at -O3 (a Release build of
/// the user's program) warns, wrongly, with -Wrestrict about
/// `"literal" + std::string` when the string is a temporary.
inline std::string bracketed(std::string_view inside) {
  std::string out;
  out.reserve(inside.size() + 2);
  out += '[';
  out += inside;
  out += ']';
  return out;
}

/// How a position shows in a place: [3].
inline std::string index_step(std::size_t index) { return bracketed(std::to_string(index)); }

/// How a dict key shows in a place: ['name'], [3], [<tuple>].
inline std::string key_step(const Value& key) {
  if (auto s = key.get_if<Str>()) return "['" + s->utf8 + "']";
  if (auto i = key.get_if<std::int64_t>()) return bracketed(std::to_string(*i));
  std::string type = python_type(key);
  return "[<" + type + ">]";
}

/// "it has N items, not M" (appended, as bracketed() says why).
inline std::string size_mismatch(std::size_t has, std::size_t wanted) {
  std::string out = "it has ";
  out += std::to_string(has);
  out += " items, not ";
  out += std::to_string(wanted);
  return out;
}

/// Converts `item`, naming `step` (e.g. "[3]") as the place of an error inside it.
template <class T>
T item_as(const Value& item, const std::string& step) {
  try {
    return Convert<T>::from(item);
  } catch (const ConversionError& e) {
    throw e.inside(step);
  }
}

/// The items of a list or tuple (nullptr for other kinds).
inline const std::vector<Value>* sequence_items(const Value& v) {
  if (auto l = v.get_if<List>()) return &l->items;
  if (auto t = v.get_if<Tuple>()) return &t->items;
  return nullptr;
}

template <class T>
concept Alternative =
    std::is_same_v<T, None> || std::is_same_v<T, BigInt> || std::is_same_v<T, Str> ||
    std::is_same_v<T, Bytes> || std::is_same_v<T, ByteArray> || std::is_same_v<T, Tuple> ||
    std::is_same_v<T, List> || std::is_same_v<T, Dict> || std::is_same_v<T, Set> ||
    std::is_same_v<T, FrozenSet> || std::is_same_v<T, Handle> || std::is_same_v<T, Pickled>;

template <class T>
constexpr const char* alternative_name() {
  if constexpr (std::is_same_v<T, None>) return "interpool::None";
  if constexpr (std::is_same_v<T, BigInt>) return "interpool::BigInt";
  if constexpr (std::is_same_v<T, Str>) return "interpool::Str";
  if constexpr (std::is_same_v<T, Bytes>) return "interpool::Bytes";
  if constexpr (std::is_same_v<T, ByteArray>) return "interpool::ByteArray";
  if constexpr (std::is_same_v<T, Tuple>) return "interpool::Tuple";
  if constexpr (std::is_same_v<T, List>) return "interpool::List";
  if constexpr (std::is_same_v<T, Dict>) return "interpool::Dict";
  if constexpr (std::is_same_v<T, Set>) return "interpool::Set";
  if constexpr (std::is_same_v<T, FrozenSet>) return "interpool::FrozenSet";
  if constexpr (std::is_same_v<T, Handle>) return "interpool::Handle";
  if constexpr (std::is_same_v<T, Pickled>) return "interpool::Pickled";
  return "?";
}

template <class T>
constexpr const char* integer_name() {
  if constexpr (std::is_same_v<T, signed char>) return "signed char";
  if constexpr (std::is_same_v<T, unsigned char>) return "unsigned char";
  if constexpr (std::is_same_v<T, short>) return "short";
  if constexpr (std::is_same_v<T, unsigned short>) return "unsigned short";
  if constexpr (std::is_same_v<T, int>) return "int";
  if constexpr (std::is_same_v<T, unsigned>) return "unsigned int";
  if constexpr (std::is_same_v<T, long>) return "long";
  if constexpr (std::is_same_v<T, unsigned long>) return "unsigned long";
  if constexpr (std::is_same_v<T, long long>) return "long long";
  if constexpr (std::is_same_v<T, unsigned long long>) return "unsigned long long";
  return "an integer type";
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Scalars
// ---------------------------------------------------------------------------

template <>
struct Convert<Value> {
  static std::string name() { return "interpool::Value"; }
  static Value to(const Value& v) { return v; }
  static Value from(const Value& v) { return v; }
};

/// The kinds of Value as they are; bytes and bytearray convert into each other.
template <detail::Alternative T>
struct Convert<T> {
  static std::string name() { return detail::alternative_name<T>(); }
  static Value to(const T& v) { return Value(v); }
  static T from(const Value& v) {
    if (auto p = v.get_if<T>()) return *p;
    if constexpr (std::is_same_v<T, Bytes>) {
      if (auto b = v.get_if<ByteArray>()) return Bytes{b->data};
    } else if constexpr (std::is_same_v<T, ByteArray>) {
      if (auto b = v.get_if<Bytes>()) return ByteArray{b->data};
    }
    detail::mismatch(v, name());
  }
};

template <detail::Integer T>
struct Convert<T> {
  static std::string name() { return detail::integer_name<T>(); }
  static Value to(T v) {
    if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
      if (v > static_cast<T>(std::numeric_limits<std::int64_t>::max()))
        return Value(BigInt{detail::hex_of(v)});
    }
    return Value(static_cast<std::int64_t>(v));
  }
  static T from(const Value& v) {
    if (auto i = v.get_if<std::int64_t>()) {
      if (std::in_range<T>(*i)) return static_cast<T>(*i);
      detail::mismatch(v, name(), std::to_string(*i) + " is out of range");
    }
    if (auto b = v.get_if<BigInt>()) {
      // A BigInt lies outside int64: only unsigned 64-bit types hold some.
      detail::BigIntParts p = detail::parts_of(*b);
      if (!p.negative && p.fits && std::in_range<T>(p.magnitude))
        return static_cast<T>(p.magnitude);
      detail::mismatch(v, name(), detail::shown(*b) + " is out of range");
    }
    detail::mismatch(v, name());
  }
};

template <std::floating_point T>
struct Convert<T> {
  static std::string name() {
    return std::is_same_v<T, float>    ? "float"
           : std::is_same_v<T, double> ? "double"
                                       : "long double";
  }
  static Value to(T v) { return Value(static_cast<double>(v)); }
  static T from(const Value& v) {
    long double x;
    if (auto d = v.get_if<double>()) {
      // Infinities and NaN as they are, without the long double (valgrind's is
      // a double, whose checks of them disagree).
      if (!std::isfinite(*d)) return static_cast<T>(*d);
      x = *d;
    } else if (auto i = v.get_if<std::int64_t>()) {
      x = static_cast<long double>(*i);
    } else if (auto b = v.get_if<BigInt>()) {
      x = detail::parts_of(*b).approximate;
    } else {
      detail::mismatch(v, name());
    }
    // (A BigInt past long double's range comes out as an infinity.)
    if (!std::isfinite(x) || std::fabs(x) > std::numeric_limits<T>::max()) {
      std::string text =
          v.is(Kind::BigInt) ? detail::shown(v.get<BigInt>()) : std::to_string(double(x));
      detail::mismatch(v, name(), text + " is out of range");
    }
    return static_cast<T>(x);
  }
};

template <>
struct Convert<bool> {
  static std::string name() { return "bool"; }
  static Value to(bool v) { return Value(v); }
  static bool from(const Value& v) {
    if (auto b = v.get_if<bool>()) return *b;
    detail::mismatch(v, name());
  }
};

template <>
struct Convert<std::complex<double>> {
  static std::string name() { return "std::complex<double>"; }
  static Value to(const std::complex<double>& v) { return Value(v); }
  static std::complex<double> from(const Value& v) {
    if (auto c = v.get_if<std::complex<double>>()) return *c;
    if (v.is(Kind::Float) || v.is(Kind::Int) || v.is(Kind::BigInt))
      return {Convert<double>::from(v), 0.0};
    detail::mismatch(v, name());
  }
};

template <>
struct Convert<std::string> {
  static std::string name() { return "std::string"; }
  static Value to(const std::string& v) { return Value(v); }
  static std::string from(const Value& v) {
    if (auto s = v.get_if<Str>()) return s->utf8;
    detail::mismatch(v, name());
  }
};

template <>
struct Convert<std::string_view> {
  static std::string name() { return "std::string_view"; }
  static Value to(std::string_view v) { return Value(std::string(v)); }
};

template <>
struct Convert<const char*> {
  static std::string name() { return "const char*"; }
  static Value to(const char* v) { return Value(v); }
};

template <>
struct Convert<std::nullopt_t> {
  static std::string name() { return "std::nullopt_t"; }
  static Value to(std::nullopt_t) { return Value(None{}); }
};

template <>
struct Convert<std::nullptr_t> {
  static std::string name() { return "std::nullptr_t"; }
  static Value to(std::nullptr_t) { return Value(None{}); }
};

/// Engine objects (a Queue, ...) cross by reference: the worker gets the
/// Python object for the same C++ object (the interpool package must be
/// importable there: it defines the Python types).
template <class T>
requires std::is_base_of_v<Shareable, T>
struct Convert<std::shared_ptr<T>> {
  static std::string name() { return "std::shared_ptr<engine object>"; }
  static Value to(const std::shared_ptr<T>& object) { return Value(Handle{object}); }
  static std::shared_ptr<T> from(const Value& v) {
    if (auto h = v.get_if<Handle>())
      if (auto object = h->get<T>()) return object;
    detail::mismatch(v, name());
  }
};

// ---------------------------------------------------------------------------
// Containers
// ---------------------------------------------------------------------------

template <>
struct Convert<std::vector<std::byte>> {
  static std::string name() { return "std::vector<std::byte>"; }
  static Value to(const std::vector<std::byte>& v) {
    return Value(Bytes{std::string(reinterpret_cast<const char*>(v.data()), v.size())});
  }
  static std::vector<std::byte> from(const Value& v) {
    const std::string* data = nullptr;
    if (auto b = v.get_if<Bytes>()) data = &b->data;
    if (auto b = v.get_if<ByteArray>()) data = &b->data;
    if (!data) detail::mismatch(v, name());
    const auto* begin = reinterpret_cast<const std::byte*>(data->data());
    return std::vector<std::byte>(begin, begin + data->size());
  }
};

template <class T, class A>
requires(!std::is_same_v<T, std::byte>) struct Convert<std::vector<T, A>> {
  static std::string name() { return "std::vector<" + detail::name_of<T>() + ">"; }
  static Value to(const std::vector<T, A>& v) requires ConvertsToValue<T> {
    List out;
    out.items.reserve(v.size());
    for (const auto& item : v) out.items.push_back(Convert<T>::to(item));
    return Value(std::move(out));
  }
  static std::vector<T, A> from(const Value& v) requires ConvertsFromValue<T> {
    const std::vector<Value>* items = detail::sequence_items(v);
    if (!items) detail::mismatch(v, name());
    std::vector<T, A> out;
    out.reserve(items->size());
    for (std::size_t i = 0; i < items->size(); ++i)
      out.push_back(detail::item_as<T>((*items)[i], detail::index_step(i)));
    return out;
  }
};

namespace detail {
/// std::set and std::unordered_set: to a set; from a set, frozenset, list or tuple.
template <class S, class T>
struct SetConvert {
  static Value to(const S& s) {
    Set out;
    out.items.reserve(s.size());
    for (const auto& item : s) out.items.push_back(Convert<T>::to(item));
    return Value(std::move(out));
  }
  static S from(const Value& v, const std::string& name) {
    const std::vector<Value>* items = sequence_items(v);
    if (auto s = v.get_if<Set>()) items = &s->items;
    if (auto s = v.get_if<FrozenSet>()) items = &s->items;
    if (!items) mismatch(v, name);
    S out;
    for (const Value& item : *items) out.insert(item_as<T>(item, "[<item>]"));
    return out;
  }
};

/// std::map and std::unordered_map: to a dict (in iteration order) and back.
template <class M, class K, class V>
struct MapConvert {
  static Value to(const M& m) {
    Dict out;
    out.items.reserve(m.size());
    for (const auto& [key, value] : m)
      out.items.emplace_back(Convert<K>::to(key), Convert<V>::to(value));
    return Value(std::move(out));
  }
  static M from(const Value& v, const std::string& name) {
    auto d = v.get_if<Dict>();
    if (!d) mismatch(v, name);
    M out;
    for (const auto& [key, value] : d->items) {
      std::string step = key_step(key);
      out.insert_or_assign(item_as<K>(key, step + " (the key)"), item_as<V>(value, step));
    }
    return out;
  }
};
}  // namespace detail

template <class T, class C, class A>
struct Convert<std::set<T, C, A>> {
  using S = std::set<T, C, A>;
  static std::string name() { return "std::set<" + detail::name_of<T>() + ">"; }
  static Value to(const S& s) requires ConvertsToValue<T> {
    return detail::SetConvert<S, T>::to(s);
  }
  static S from(const Value& v) requires ConvertsFromValue<T> {
    return detail::SetConvert<S, T>::from(v, name());
  }
};

template <class T, class H, class E, class A>
struct Convert<std::unordered_set<T, H, E, A>> {
  using S = std::unordered_set<T, H, E, A>;
  static std::string name() { return "std::unordered_set<" + detail::name_of<T>() + ">"; }
  static Value to(const S& s) requires ConvertsToValue<T> {
    return detail::SetConvert<S, T>::to(s);
  }
  static S from(const Value& v) requires ConvertsFromValue<T> {
    return detail::SetConvert<S, T>::from(v, name());
  }
};

template <class K, class V, class C, class A>
struct Convert<std::map<K, V, C, A>> {
  using M = std::map<K, V, C, A>;
  static std::string name() { return "std::map<" + detail::names_of<K, V>() + ">"; }
  static Value to(const M& m) requires(ConvertsToValue<K>&& ConvertsToValue<V>) {
    return detail::MapConvert<M, K, V>::to(m);
  }
  static M from(const Value& v) requires(ConvertsFromValue<K>&& ConvertsFromValue<V>) {
    return detail::MapConvert<M, K, V>::from(v, name());
  }
};

template <class K, class V, class H, class E, class A>
struct Convert<std::unordered_map<K, V, H, E, A>> {
  using M = std::unordered_map<K, V, H, E, A>;
  static std::string name() { return "std::unordered_map<" + detail::names_of<K, V>() + ">"; }
  static Value to(const M& m) requires(ConvertsToValue<K>&& ConvertsToValue<V>) {
    return detail::MapConvert<M, K, V>::to(m);
  }
  static M from(const Value& v) requires(ConvertsFromValue<K>&& ConvertsFromValue<V>) {
    return detail::MapConvert<M, K, V>::from(v, name());
  }
};

template <class... T>
struct Convert<std::tuple<T...>> {
  static std::string name() { return "std::tuple<" + detail::names_of<T...>() + ">"; }
  static Value to(const std::tuple<T...>& t) requires(ConvertsToValue<T>&&...) {
    Tuple out;
    out.items.reserve(sizeof...(T));
    std::apply([&](const auto&... item) { (out.items.push_back(Convert<T>::to(item)), ...); }, t);
    return Value(std::move(out));
  }
  static std::tuple<T...> from(const Value& v) requires(ConvertsFromValue<T>&&...) {
    const std::vector<Value>* items = detail::sequence_items(v);
    if (!items) detail::mismatch(v, name());
    if (items->size() != sizeof...(T))
      detail::mismatch(v, name(), detail::size_mismatch(items->size(), sizeof...(T)));
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return std::tuple<T...>(detail::item_as<T>((*items)[I], detail::index_step(I))...);
    }
    (std::index_sequence_for<T...>{});
  }
};

template <class A, class B>
struct Convert<std::pair<A, B>> {
  static std::string name() { return "std::pair<" + detail::names_of<A, B>() + ">"; }
  static Value to(const std::pair<A, B>& p) requires(ConvertsToValue<A>&& ConvertsToValue<B>) {
    return Value(Tuple{{Convert<A>::to(p.first), Convert<B>::to(p.second)}});
  }
  static std::pair<A, B> from(const Value& v) requires(
      ConvertsFromValue<A>&& ConvertsFromValue<B>) {
    const std::vector<Value>* items = detail::sequence_items(v);
    if (!items) detail::mismatch(v, name());
    if (items->size() != 2) detail::mismatch(v, name(), detail::size_mismatch(items->size(), 2));
    return {detail::item_as<A>((*items)[0], "[0]"), detail::item_as<B>((*items)[1], "[1]")};
  }
};

/// A std::map's items (map, map_async over a std::map): to a tuple, as pair<A, B>.
template <class A, class B>
struct Convert<std::pair<const A, B>> {
  static std::string name() { return Convert<std::pair<A, B>>::name(); }
  static Value to(const std::pair<const A, B>& p) requires(
      ConvertsToValue<A>&& ConvertsToValue<B>) {
    return Value(Tuple{{Convert<A>::to(p.first), Convert<B>::to(p.second)}});
  }
};

template <class T>
struct Convert<std::optional<T>> {
  static std::string name() { return "std::optional<" + detail::name_of<T>() + ">"; }
  static Value to(const std::optional<T>& o) requires ConvertsToValue<T> {
    return o ? Convert<T>::to(*o) : Value(None{});
  }
  static std::optional<T> from(const Value& v) requires ConvertsFromValue<T> {
    if (v.is(Kind::None)) return std::nullopt;
    return Convert<T>::from(v);
  }
};

}  // namespace interpool
