#include <interpool/value.hpp>
#include <stdexcept>
#include <unordered_set>

namespace interpool {

bool operator==(const Tuple& a, const Tuple& b) { return a.items == b.items; }
bool operator==(const List& a, const List& b) { return a.items == b.items; }
bool operator==(const Dict& a, const Dict& b) { return a.items == b.items; }
bool operator==(const Set& a, const Set& b) { return a.items == b.items; }
bool operator==(const FrozenSet& a, const FrozenSet& b) { return a.items == b.items; }
bool operator==(const Shared& a, const Shared& b) {
  return a.value == b.value || (a.value && b.value && *a.value == *b.value);
}

Value::Value(Shared s) {
  if (!s.value) throw std::invalid_argument("interpool::Shared holds no value");
  // A Shared of a Shared holds the inner value: resolved() looks one level down.
  if (const Shared* inner = std::get_if<Shared>(&s.value->data_)) s.value = inner->value;
  // A Packed is shared already: every place that copies it shows one tree.
  if (const Packed* packed = std::get_if<Packed>(&s.value->data_)) {
    data_ = *packed;
    return;
  }
  data_ = std::move(s);
}

void Value::unshare() {
  if (is_shared()) {
    Data copy = resolved().data_;  // copied first: the assignment may free the shared value
    data_ = std::move(copy);
  }
}

std::string_view kind_name(Kind kind) noexcept {
  switch (kind) {
    case Kind::None:
      return "NoneType";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
      return "int";
    case Kind::BigInt:
      return "int";
    case Kind::Float:
      return "float";
    case Kind::Complex:
      return "complex";
    case Kind::Str:
      return "str";
    case Kind::Bytes:
      return "bytes";
    case Kind::ByteArray:
      return "bytearray";
    case Kind::Tuple:
      return "tuple";
    case Kind::List:
      return "list";
    case Kind::Dict:
      return "dict";
    case Kind::Set:
      return "set";
    case Kind::FrozenSet:
      return "frozenset";
    case Kind::Handle:
      return "handle";
    case Kind::Pickled:
      return "pickled object";
  }
  return "?";
}

namespace {
// Shared values already looked in: a value in many places is looked in once.
using Visited = std::unordered_set<const void*>;

bool any_pickle(const Value& v, Visited& visited);

bool any_pickle(const std::vector<Value>& items, Visited& visited) {
  for (const Value& v : items)
    if (any_pickle(v, visited)) return true;
  return false;
}

bool any_pickle(const Value& v, Visited& visited) {
  if (v.is_shared() && !visited.insert(&v.data()).second) return false;
  switch (v.kind()) {
    case Kind::Pickled:
      return true;
    case Kind::Tuple:
      return any_pickle(v.get<Tuple>().items, visited);
    case Kind::List:
      return any_pickle(v.get<List>().items, visited);
    case Kind::Set:
      return any_pickle(v.get<Set>().items, visited);
    case Kind::FrozenSet:
      return any_pickle(v.get<FrozenSet>().items, visited);
    case Kind::Dict:
      for (const auto& [k, val] : v.get<Dict>().items)
        if (any_pickle(k, visited) || any_pickle(val, visited)) return true;
      return false;
    default:
      return false;
  }
}
}  // namespace

bool Value::contains_pickle() const noexcept {
  Visited visited;
  return any_pickle(*this, visited);
}

}  // namespace interpool
