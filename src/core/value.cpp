#include <interpool/value.hpp>

namespace interpool {

bool operator==(const Tuple& a, const Tuple& b) { return a.items == b.items; }
bool operator==(const List& a, const List& b) { return a.items == b.items; }
bool operator==(const Dict& a, const Dict& b) { return a.items == b.items; }
bool operator==(const Set& a, const Set& b) { return a.items == b.items; }
bool operator==(const FrozenSet& a, const FrozenSet& b) { return a.items == b.items; }

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
bool any_pickle(const std::vector<Value>& items) {
  for (const Value& v : items)
    if (v.contains_pickle()) return true;
  return false;
}
}  // namespace

bool Value::contains_pickle() const noexcept {
  switch (kind()) {
    case Kind::Pickled:
      return true;
    case Kind::Tuple:
      return any_pickle(get<Tuple>().items);
    case Kind::List:
      return any_pickle(get<List>().items);
    case Kind::Set:
      return any_pickle(get<Set>().items);
    case Kind::FrozenSet:
      return any_pickle(get<FrozenSet>().items);
    case Kind::Dict:
      for (const auto& [k, v] : get<Dict>().items)
        if (k.contains_pickle() || v.contains_pickle()) return true;
      return false;
    default:
      return false;
  }
}

}  // namespace interpool
