// Interpreter-neutral values: what crosses between interpreters. The Value
// type and its kinds; include <interpool/value.hpp>, which adds the
// conversions of C++ types (convert.hpp) that Value's constructor and as<T>()
// use.
//
// A Value is plain C++ data. It is built from a Python object in the interpreter
// that owns the object and rebuilt as a new object in the interpreter that
// receives it; no Python object is ever shared (engine rule 1).
#pragma once

#include <complex>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace interpool {

/// Kinds of engine objects that cross interpreters by reference (as handles).
enum class ObjectKind : std::uint8_t { Queue, Interpreter, SharedBuffer, Sync };

/// Base of every engine object that can cross interpreters by reference.
/// Lifetime is shared: the object lives while any interpreter holds a handle.
class Shareable {
 public:
  virtual ~Shareable() = default;
  virtual ObjectKind kind() const noexcept = 0;
};

class Value;

struct None {
  friend bool operator==(None, None) { return true; }
};
/// An int outside the int64 range, as Python's hex text ("-0x1f...").
struct BigInt {
  std::string hex;
  friend bool operator==(const BigInt&, const BigInt&) = default;
};
/// Text as UTF-8; lone surrogates are kept with the "surrogatepass" scheme.
struct Str {
  std::string utf8;
  friend bool operator==(const Str&, const Str&) = default;
};
struct Bytes {
  std::string data;
  friend bool operator==(const Bytes&, const Bytes&) = default;
};
struct ByteArray {
  std::string data;
  friend bool operator==(const ByteArray&, const ByteArray&) = default;
};
struct Tuple {
  std::vector<Value> items;
  friend bool operator==(const Tuple&, const Tuple&);
};
struct List {
  std::vector<Value> items;
  friend bool operator==(const List&, const List&);
};
/// Insertion-ordered key/value pairs.
struct Dict {
  std::vector<std::pair<Value, Value>> items;
  friend bool operator==(const Dict&, const Dict&);
};
struct Set {
  std::vector<Value> items;
  friend bool operator==(const Set&, const Set&);
};
struct FrozenSet {
  std::vector<Value> items;
  friend bool operator==(const FrozenSet&, const FrozenSet&);
};
/// A reference to an engine object (queue, shared buffer, ...).
struct Handle {
  std::shared_ptr<Shareable> object;
  template <class T>
  std::shared_ptr<T> get() const {
    return std::dynamic_pointer_cast<T>(object);
  }
  friend bool operator==(const Handle&, const Handle&) = default;
};
/// A value that is in more than one place. Every place holds the same node, and
/// a receiver rebuilds it as one object: to_value makes one for a container or
/// object met more than once in what it converts (one call's arguments, one
/// result, one queue item), so that sharing is kept at a cost linear in the
/// distinct objects. Transparent: kind(), get(), get_if(), data(), as() and ==
/// see the value it holds; a C++ program may make one too, e.g.
/// `Value v = Shared{std::make_shared<const Value>(List{{1, 2}})};` placed twice.
struct Shared {
  std::shared_ptr<const Value> value;
  friend bool operator==(const Shared&, const Shared&);
};
/// The pickles of the objects of one crossing, written by one pickler (the
/// engine's; see src/core/packed.hpp).
struct PickleStream;
/// A Python object that has no native form, carried as a pickle (protocol 5).
/// Kept as its own kind so that receivers can refuse it. Engine objects inside
/// it (a SharedBuffer field, ...) travel beside it as handles, which keep them
/// alive until it is rebuilt.
///
/// One the engine made from a Python object has no `data` of its own: it is
/// object `index` of its crossing's pickle `stream`, in which one pickler wrote
/// the objects of the crossing together (a class is named once, an object that
/// two of them hold is one object again). Either way it passes on as it is.
struct Pickled {
  std::string data;
  std::vector<Handle> handles = {};
  std::shared_ptr<const PickleStream> stream = {};
  std::size_t index = 0;
  /// The object's type ("Fraction"), for messages; empty if unknown.
  std::string type = {};
  friend bool operator==(const Pickled&, const Pickled&) = default;
};

class PackedData;
/// Values converted from Python objects, in one flat buffer of the engine's
/// (src/core/packed.hpp): what one crossing's values hold instead of a tree of
/// nodes. Made by the engine only, and transparent: kind(), get(), get_if(),
/// data(), as() and == see the same tree a hand-built value has (decoded once,
/// on first use), so a C++ program never needs to know it is there.
struct Packed {
  std::shared_ptr<const PackedData> data;
  std::size_t offset = 0;  ///< where this value's entry starts in the buffer
  friend bool operator==(const Packed&, const Packed&) = default;
};

namespace detail {
struct PackedAccess;  // the engine's access to a Packed (src/core/packed.hpp)
/// The tree of a Packed value (decoded on first use, kept with the buffer).
/// Decoding only allocates: running out of memory there ends the program.
const Value& packed_tree(const Packed& packed) noexcept;
}  // namespace detail

/// The kind of a Value; the order matches the alternatives of Value::Data (a
/// Shared or a Packed has the kind of the value it holds).
enum class Kind : std::uint8_t {
  None,
  Bool,
  Int,
  BigInt,
  Float,
  Complex,
  Str,
  Bytes,
  ByteArray,
  Tuple,
  List,
  Dict,
  Set,
  FrozenSet,
  Handle,
  Pickled,
};

/// Python-style name of a kind ("int", "tuple", ...).
std::string_view kind_name(Kind kind) noexcept;

/// How a C++ type converts to and from a Value (interpool/convert.hpp has the
/// built-in ones). A specialization has `static Value to(const T&)`, `static T
/// from(const Value&)` (throws ConversionError) and `static std::string name()`;
/// a type that only goes one way leaves the other out.
template <class T, class Enable = void>
struct Convert;

/// T converts to a Value: `Value v = x;`
template <class T>
concept ConvertsToValue = requires(const T& t) {
  { Convert<T>::to(t) } -> std::same_as<Value>;
};
/// A Value converts to T: `v.as<T>()`.
template <class T>
concept ConvertsFromValue = requires(const Value& v) {
  { Convert<T>::from(v) } -> std::same_as<T>;
};

namespace detail {
/// Types Value has a constructor of its own for.
template <class T>
inline constexpr bool has_value_constructor =
    std::is_same_v<T, None> || std::is_same_v<T, bool> || std::is_same_v<T, std::int64_t> ||
    std::is_same_v<T, int> || std::is_same_v<T, double> ||
    std::is_same_v<T, std::complex<double>> || std::is_same_v<T, const char*> ||
    std::is_same_v<T, char*> || std::is_same_v<T, std::string> || std::is_same_v<T, BigInt> ||
    std::is_same_v<T, Str> || std::is_same_v<T, Bytes> || std::is_same_v<T, ByteArray> ||
    std::is_same_v<T, Tuple> || std::is_same_v<T, List> || std::is_same_v<T, Dict> ||
    std::is_same_v<T, Set> || std::is_same_v<T, FrozenSet> || std::is_same_v<T, Handle> ||
    std::is_same_v<T, Pickled> || std::is_same_v<T, Shared>;
}  // namespace detail

class Value {
 public:
  /// data() never holds a Shared or a Packed: it is the data of the value they
  /// hold.
  using Data =
      std::variant<None, bool, std::int64_t, BigInt, double, std::complex<double>, Str, Bytes,
                   ByteArray, Tuple, List, Dict, Set, FrozenSet, Handle, Pickled, Shared, Packed>;

  Value() = default;
  Value(None) {}
  Value(bool b) : data_(b) {}
  Value(std::int64_t i) : data_(i) {}
  Value(int i) : data_(std::int64_t{i}) {}
  Value(double d) : data_(d) {}
  Value(std::complex<double> c) : data_(c) {}
  Value(const char* s) : data_(Str{s}) {}
  Value(char* s) : data_(Str{s}) {}
  /// Other pointers would silently become a bool.
  template <class T>
  Value(T*) = delete;
  Value(std::string s) : data_(Str{std::move(s)}) {}
  template <class T>
  requires(std::is_same_v<T, BigInt> || std::is_same_v<T, Str> || std::is_same_v<T, Bytes> ||
           std::is_same_v<T, ByteArray> || std::is_same_v<T, Tuple> || std::is_same_v<T, List> ||
           std::is_same_v<T, Dict> || std::is_same_v<T, Set> || std::is_same_v<T, FrozenSet> ||
           std::is_same_v<T, Handle> || std::is_same_v<T, Pickled>) Value(T v)
      : data_(std::move(v)) {}
  /// The value `s` holds, in every place this node is put (throws
  /// std::invalid_argument for an empty one).
  Value(Shared s);
  /// Any other C++ type with a Convert: every integer type (range kept: big
  /// unsigned values become a BigInt), float, std::string_view, std::vector,
  /// std::map, std::tuple, std::optional, ... nested (see convert.hpp).
  template <class T>
  requires(!std::is_same_v<std::remove_cvref_t<T>, Value> &&
           !detail::has_value_constructor<std::remove_cvref_t<T>> &&
           ConvertsToValue<std::remove_cvref_t<T>>) Value(T&& v)
      : Value(Convert<std::remove_cvref_t<T>>::to(v)) {}

  Kind kind() const noexcept { return static_cast<Kind>(resolved().data_.index()); }
  bool is(Kind k) const noexcept { return kind() == k; }

  template <class T>
  const T& get() const {
    static_assert(!std::is_same_v<T, Shared>, "a Shared is transparent: use is_shared()");
    return std::get<T>(resolved().data_);
  }
  /// Changing a shared value changes it here only: this place gets a copy of
  /// its own first (its parts stay shared).
  template <class T>
  T& get() {
    static_assert(!std::is_same_v<T, Shared>, "a Shared is transparent: use is_shared()");
    unshare();
    return std::get<T>(data_);
  }
  template <class T>
  const T* get_if() const noexcept {
    return std::get_if<T>(&resolved().data_);
  }
  const Data& data() const noexcept { return resolved().data_; }

  /// True if this node holds a value that other places may hold too (a Shared,
  /// or a value the engine converted from a Python container).
  bool is_shared() const noexcept {
    return std::holds_alternative<Shared>(data_) || std::holds_alternative<Packed>(data_);
  }

  /// This value as a C++ type: `v.as<long long>()`, `v.as<std::vector<std::string>>()`.
  /// Throws ConversionError naming the Python type held and the C++ type asked for.
  template <class T>
  T as() const;

  /// True if this value or anything inside it is a pickle.
  bool contains_pickle() const noexcept;

  friend bool operator==(const Value& a, const Value& b) {
    const Value& x = a.resolved();
    const Value& y = b.resolved();
    return &x == &y || x.data_ == y.data_;
  }

 private:
  friend struct detail::PackedAccess;

  // The node whose data this one shows: itself, the value its Shared holds
  // (never a Shared itself: Value(Shared) takes the inner one), or the tree of
  // its Packed.
  const Value& resolved() const noexcept {
    if (const Shared* s = std::get_if<Shared>(&data_)) return *s->value;
    if (const Packed* p = std::get_if<Packed>(&data_)) return detail::packed_tree(*p);
    return *this;
  }
  void unshare();

  Data data_;
};

}  // namespace interpool
