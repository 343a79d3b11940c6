#include "core/packed.hpp"

#include <algorithm>
#include <unordered_set>

namespace interpool {

namespace packed {

void Reader::skip(int depth) {
  if (depth > kMaxDepth) damaged("it is nested too deeply");
  const std::uint8_t tag = byte();
  switch (tag & kKindMask) {
    case kNone:
    case kFalse:
    case kTrue:
      return;
    case kInt:
    case kSide:
    case kRef:
      varint();
      return;
    case kFloat:
      take(sizeof(double));
      return;
    case kComplex:
      take(2 * sizeof(double));
      return;
    case kStr: {
      std::uint64_t n;
      std::uint8_t width;
      str_units(tag, n, width);
      return;
    }
    case kBigInt:
    case kBytes:
    case kByteArray:
      take(varint());
      return;
    case kTuple:
    case kList:
    case kSet:
    case kFrozenSet:
    case kDict: {
      std::uint64_t n = count();
      if ((tag & kKindMask) == kDict) n *= 2;
      for (std::uint64_t i = 0; i < n; ++i) skip(depth + 1);
      return;
    }
    default:
      damaged("it holds an unknown kind of entry");
  }
}

}  // namespace packed

namespace {

// Code units to UTF-8, lone surrogates kept as the "surrogatepass" scheme
// does: what a tree's Str holds.
void append_utf8(std::string& out, std::uint32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

std::string units_to_utf8(const std::uint8_t* data, std::uint64_t n, std::uint8_t width) {
  std::string out;
  if (width == packed::kAscii) {
    out.assign(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    return out;
  }
  out.reserve(static_cast<std::size_t>(n) * 2);
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint32_t c;
    if (width == packed::kLatin1) {
      c = data[i];
    } else if (width == packed::kUcs2) {
      std::uint16_t u;
      std::memcpy(&u, data + 2 * i, 2);
      c = u;
    } else {
      std::memcpy(&c, data + 4 * i, 4);
      if (c > 0x10FFFF) packed::Reader::damaged("a str in it holds no code point");
    }
    append_utf8(out, c);
  }
  return out;
}

}  // namespace

// Reads a buffer into a tree: entries that more than one place names become
// one Shared node each, kept in the data's trees_.
class TreeReader {
 public:
  explicit TreeReader(const PackedData& data) : data_(data) {}

  // The node of the entry at `offset`: a top value, or one a Ref names.
  std::shared_ptr<const Value> node(std::size_t offset, int depth) {
    if (auto it = data_.trees_.find(offset); it != data_.trees_.end()) return it->second;
    if (offset >= data_.size()) packed::Reader::damaged("an entry is outside it");
    // A Ref to an entry that holds it would be a cycle, which no writer makes.
    if (!open_.insert(offset).second) packed::Reader::damaged("an entry holds itself");
    packed::Reader r{data_.bytes() + offset, data_.bytes() + data_.size()};
    auto made = std::make_shared<const Value>(plain(r, depth));
    open_.erase(offset);
    data_.trees_.emplace(offset, made);
    return made;
  }

 private:
  // Kinds a C++ reader gets as plain values in each place, even when the
  // buffer holds them once (Python readers get one object).
  static bool is_plain(std::uint8_t tag) {
    const std::uint8_t kind = tag & packed::kKindMask;
    return kind == packed::kStr || kind == packed::kBytes;
  }

  Value read(packed::Reader& r, int depth) {
    if (depth > packed::kMaxDepth) packed::Reader::damaged("it is nested too deeply");
    r.need(1);
    // A str met again is one object to Python readers; a tree has no use for
    // sharing an immutable scalar, and never had it.
    if (!(*r.p & packed::kMetAgain) || is_plain(*r.p)) return plain(r, depth);
    const std::size_t offset = static_cast<std::size_t>(r.p - data_.bytes());
    if (auto it = data_.trees_.find(offset); it != data_.trees_.end()) {
      r.skip(depth);  // made already, for a Ref that was read first
      return Shared{it->second};
    }
    open_.insert(offset);
    auto made = std::make_shared<const Value>(plain(r, depth));
    open_.erase(offset);
    data_.trees_.emplace(offset, made);
    return Shared{std::move(made)};
  }

  std::vector<Value> items(packed::Reader& r, int depth) {
    const std::uint32_t n = r.count();
    std::vector<Value> out;
    // An entry is a byte at least: a damaged count cannot reserve much.
    out.reserve(std::min<std::size_t>(n, static_cast<std::size_t>(r.end - r.p)));
    for (std::uint32_t i = 0; i < n; ++i) out.push_back(read(r, depth + 1));
    return out;
  }

  Value plain(packed::Reader& r, int depth) {
    const std::uint8_t* at = r.p;
    const std::uint8_t tag = r.byte();
    switch (tag & packed::kKindMask) {
      case packed::kNone:
        return None{};
      case packed::kFalse:
        return false;
      case packed::kTrue:
        return true;
      case packed::kInt:
        return packed::unzigzag(r.varint());
      case packed::kBigInt: {
        const std::uint64_t n = r.varint();
        const std::uint8_t* s = r.take(n);
        return BigInt{std::string(reinterpret_cast<const char*>(s), static_cast<std::size_t>(n))};
      }
      case packed::kFloat: {
        double d;
        std::memcpy(&d, r.take(sizeof d), sizeof d);
        return d;
      }
      case packed::kComplex: {
        double d[2];
        std::memcpy(d, r.take(sizeof d), sizeof d);
        return std::complex<double>(d[0], d[1]);
      }
      case packed::kStr: {
        std::uint64_t n;
        std::uint8_t width;
        const std::uint8_t* units = r.str_units(tag, n, width);
        return Str{units_to_utf8(units, n, width)};
      }
      case packed::kBytes:
      case packed::kByteArray: {
        const std::uint64_t n = r.varint();
        std::string s(reinterpret_cast<const char*>(r.take(n)), static_cast<std::size_t>(n));
        if ((tag & packed::kKindMask) == packed::kBytes) return Bytes{std::move(s)};
        return ByteArray{std::move(s)};
      }
      case packed::kTuple:
        return Tuple{items(r, depth)};
      case packed::kList:
        return List{items(r, depth)};
      case packed::kSet:
        return Set{items(r, depth)};
      case packed::kFrozenSet:
        return FrozenSet{items(r, depth)};
      case packed::kDict: {
        const std::uint32_t n = r.count();
        Dict d;
        d.items.reserve(std::min<std::size_t>(n, static_cast<std::size_t>(r.end - r.p) / 2));
        for (std::uint32_t i = 0; i < n; ++i) {
          Value k = read(r, depth + 1);
          d.items.emplace_back(std::move(k), read(r, depth + 1));
        }
        return d;
      }
      case packed::kSide: {
        const std::uint64_t i = r.varint();
        if (i >= data_.side.size())
          packed::Reader::damaged("it names a side value it does not have");
        return data_.side[static_cast<std::size_t>(i)];
      }
      case packed::kRef: {
        const std::uint64_t offset = r.varint();
        // Refs name an earlier entry, marked as met again.
        if (offset >= static_cast<std::uint64_t>(at - data_.bytes()) ||
            !(data_.bytes()[offset] & packed::kMetAgain))
          packed::Reader::damaged("a reference in it names no shared entry");
        if (is_plain(data_.bytes()[offset])) {
          packed::Reader target{data_.bytes() + offset, data_.bytes() + data_.size()};
          return plain(target, depth + 1);
        }
        return Shared{node(static_cast<std::size_t>(offset), depth + 1)};
      }
      default:
        packed::Reader::damaged("it holds an unknown kind of entry");
    }
  }

  const PackedData& data_;
  std::unordered_set<std::size_t> open_;  // entries being read
};

const Value& PackedData::tree(std::size_t offset) const {
  std::lock_guard lock(tree_mutex_);
  return *TreeReader(*this).node(offset, 0);
}

std::shared_ptr<PackedData> PackedData::from_bytes(std::string_view bytes,
                                                   std::vector<Value> side) {
  auto data = std::make_shared<PackedData>();
  data->put(bytes.data(), bytes.size());
  data->side = std::move(side);
  return data;
}

namespace detail {

const Value& packed_tree(const Packed& packed) noexcept {
  // Only the engine makes a Packed, of a buffer it wrote: reading cannot fail
  // but for memory (see value_type.hpp).
  return packed.data->tree(packed.offset);
}

}  // namespace detail

}  // namespace interpool
