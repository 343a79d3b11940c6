// The flat form of the values of one crossing (see docs/design.md, "Values
// in one buffer"): Python objects are written into one buffer in one pass and
// read back in one pass (src/core/py_value.cpp), instead of becoming a tree of
// separately allocated nodes. What has no flat form (pickles, handles) sits in
// a side table of ordinary Values that the buffer names by index. Plain C++:
// a C++ reader gets the same tree a hand-built value has (packed_tree).
//
// An entry is a tag byte and what its kind needs, in native byte order:
//   None, False, True          the tag alone
//   Int                        zigzag varint of the int64
//   BigInt                     varint length, then Python's hex text
//   Float / Complex            8 / 16 bytes of doubles
//   Str                        tag bits 5-6: ASCII, 1, 2 or 4 bytes a code
//                              unit (PEP 393); varint length in code units;
//                              the code units
//   Bytes / ByteArray          varint length, the bytes
//   Tuple List Set FrozenSet   uint32 count, then the items
//   Dict                       uint32 count of pairs, then key, value, ...
//   Side                       varint index into the side table
//   Ref                        varint offset of an earlier entry
// Tag bit 7 marks an entry that a Ref (or a second value of the crossing)
// names: a reader keeps what it made of it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <interpool/value.hpp>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace interpool {

namespace packed {

enum Tag : std::uint8_t {
  kNone = 0,
  kFalse,
  kTrue,
  kInt,
  kBigInt,
  kFloat,
  kComplex,
  kStr,
  kBytes,
  kByteArray,
  kTuple,
  kList,
  kDict,
  kSet,
  kFrozenSet,
  kSide,
  kRef,
  kTagCount
};
constexpr std::uint8_t kKindMask = 0x1f;
constexpr std::uint8_t kMetAgain = 0x80;
constexpr int kStrShift = 5;
/// Str code unit widths (tag bits 5-6).
enum StrWidth : std::uint8_t { kAscii = 0, kLatin1 = 1, kUcs2 = 2, kUcs4 = 3 };
constexpr std::size_t kCountSize = sizeof(std::uint32_t);

/// A buffer or a part of it that cannot be read: truncated, or not one this
/// engine wrote.
class Damaged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace packed

/// The objects of one crossing that have no flat form, pickled by one pickler
/// that keeps its memo, as a process pool's one pickle of the whole value
/// would be (src/core/py_value.cpp): the objects a value holds are pickled
/// together, as one list (a batch), once that value is written; the values
/// after it add batches. One unpickler reads the batches back in the same
/// order. A Pickled side value names its object by its index among all of
/// them. A pickler whose dump failed is not used again: the next batch starts
/// a new run, with a pickler of its own.
struct PickleStream {
  struct Batch {
    std::size_t end;    ///< where its pickle ends in `bytes`
    std::size_t first;  ///< the index of its first object
  };
  std::string bytes;
  std::vector<Batch> batches;
  /// The first batch of each pickler's run (the first run's is 0).
  std::vector<std::size_t> runs;
  /// The objects of all batches.
  std::size_t objects = 0;
  /// Engine objects inside the pickles (capture_handle), kept alive with them.
  std::vector<Handle> handles;

  std::size_t batch_of(std::size_t object) const noexcept {
    std::size_t lo = 0, hi = batches.size();
    while (hi - lo > 1) {
      const std::size_t mid = (lo + hi) / 2;
      (batches[mid].first <= object ? lo : hi) = mid;
    }
    return lo;
  }
  std::size_t size_of(std::size_t batch) const noexcept {
    return (batch + 1 < batches.size() ? batches[batch + 1].first : objects) - batches[batch].first;
  }
  std::size_t begin_of(std::size_t batch) const noexcept {
    return batch ? batches[batch - 1].end : 0;
  }
  std::size_t run_of(std::size_t batch) const noexcept {
    std::size_t run = runs.size() - 1;
    while (run > 0 && runs[run] > batch) --run;
    return run;
  }
  /// The last batch of a run.
  std::size_t run_last(std::size_t run) const noexcept {
    return (run + 1 < runs.size() ? runs[run + 1] : batches.size()) - 1;
  }
};

/// The buffer and side table of one crossing, shared by every Value of it.
class PackedData {
 public:
  PackedData() = default;
  PackedData(const PackedData&) = delete;
  PackedData& operator=(const PackedData&) = delete;
  ~PackedData() { std::free(bytes_); }

  const std::uint8_t* bytes() const noexcept { return bytes_; }
  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return cap_; }
  /// Values with no flat form, named by Side entries.
  std::vector<Value> side;
  /// The pickles of the Pickled side values, once one was needed.
  std::shared_ptr<PickleStream> pickles;

  // Writing (the converter of one crossing, which owns the data meanwhile).
  std::uint8_t* grow(std::size_t n) {
    if (cap_ - size_ < n) reserve(n);
    std::uint8_t* at = bytes_ + size_;
    size_ += n;
    return at;
  }
  void put(std::uint8_t byte) { *grow(1) = byte; }
  void put(const void* data, std::size_t n) {
    if (n) std::memcpy(grow(n), data, n);
  }
  void put_varint(std::uint64_t v) {
    std::uint8_t* at = grow(10);
    std::size_t n = 0;
    while (v >= 0x80) {
      at[n++] = static_cast<std::uint8_t>(v | 0x80);
      v >>= 7;
    }
    at[n++] = static_cast<std::uint8_t>(v);
    size_ -= 10 - n;
  }
  std::uint8_t* at(std::size_t offset) noexcept { return bytes_ + offset; }
  void truncate(std::size_t size) noexcept { size_ = size; }
  /// Room for `n` bytes at once, before the first write: a buffer that grows
  /// by doubling copies what it holds at each step.
  void expect(std::size_t n) {
    if (cap_ < n) reserve(n - size_);
  }
  /// Gives back the room left unused (when it is more than the buffer holds);
  /// the writer calls it when it is done.
  void fit() noexcept {
    if (cap_ - size_ <= size_ + 4096) return;
    if (auto* fitted = static_cast<std::uint8_t*>(std::realloc(bytes_, size_ ? size_ : 1))) {
      bytes_ = fitted;
      cap_ = size_ ? size_ : 1;
    }
  }

  /// A copy of raw buffer contents and side table (tests: what a reader does
  /// with a buffer it did not write).
  static std::shared_ptr<PackedData> from_bytes(std::string_view bytes,
                                                std::vector<Value> side = {});

  /// The tree of the entry at `offset` (packed_tree), decoded once. Throws
  /// packed::Damaged for a buffer that cannot be read.
  const Value& tree(std::size_t offset) const;

 private:
  void reserve(std::size_t n) {
    std::size_t cap = cap_ ? cap_ * 2 : 256;
    while (cap - size_ < n) cap *= 2;
    auto* grown = static_cast<std::uint8_t*>(std::realloc(bytes_, cap));
    if (!grown) throw std::bad_alloc();
    bytes_ = grown;
    cap_ = cap;
  }

  std::uint8_t* bytes_ = nullptr;
  std::size_t size_ = 0;
  std::size_t cap_ = 0;

  // The trees made for C++ readers: the node of each entry that more than one
  // place holds (and of each value given at the top), by offset.
  mutable std::mutex tree_mutex_;
  mutable std::unordered_map<std::size_t, std::shared_ptr<const Value>> trees_;
  friend class TreeReader;
};

namespace packed {

/// Reads entries of a buffer, refusing (Damaged) any read past its end.
inline std::size_t str_unit(std::uint8_t width) {
  return width == kUcs4 ? 4 : width == kUcs2 ? 2 : 1;
}

struct Reader {
  const std::uint8_t* p;
  const std::uint8_t* end;

  [[noreturn]] static void damaged(const char* what) {
    throw Damaged(std::string("interpool: a packed value cannot be read: ") + what);
  }
  void need(std::size_t n) const {
    if (static_cast<std::size_t>(end - p) < n) damaged("it is truncated");
  }
  std::uint8_t byte() {
    need(1);
    return *p++;
  }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      std::uint8_t b = byte();
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    damaged("a number in it is too long");
  }
  std::uint32_t count() {
    need(kCountSize);
    std::uint32_t n;
    std::memcpy(&n, p, kCountSize);
    p += kCountSize;
    return n;
  }
  const std::uint8_t* take(std::uint64_t n) {
    need(static_cast<std::size_t>(n));
    const std::uint8_t* at = p;
    p += n;
    return at;
  }
  /// A str entry's code units (after its tag): `n` of them, each
  /// str_unit(width) bytes.
  const std::uint8_t* str_units(std::uint8_t tag, std::uint64_t& n, std::uint8_t& width) {
    width = static_cast<std::uint8_t>((tag >> kStrShift) & 3);
    n = varint();
    if (n > static_cast<std::uint64_t>(end - p) / str_unit(width)) damaged("it is truncated");
    return take(n * str_unit(width));
  }
  /// Steps over one entry (and what it holds).
  void skip(int depth = 0);
};

inline std::int64_t unzigzag(std::uint64_t u) {
  return static_cast<std::int64_t>((u >> 1) ^ (~(u & 1) + 1));
}
inline std::uint64_t zigzag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}

/// The deepest nesting a reader follows. A writer nests at most the converters'
/// max_depth (1000) levels; a reader that meets a reference to an entry it has
/// not made yet reads that entry from where the reference is, so a sound buffer
/// can take up to twice that. A damaged one must not exhaust the stack (a
/// level costs three frames, a few hundred bytes each, more under ASan).
constexpr int kMaxDepth = 2100;

}  // namespace packed

namespace detail {
/// What the engine sees of a Value that the faces do not: whether it is Packed.
struct PackedAccess {
  static const Packed* packed(const Value& v) noexcept { return std::get_if<Packed>(&v.data_); }
  static Value make(Packed p) {
    Value v;
    v.data_ = std::move(p);
    return v;
  }
};
}  // namespace detail

}  // namespace interpool
