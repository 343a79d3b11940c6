// Bytes shared by every interpreter (and C++ thread) of the process.
//
// A SharedBuffer is memory the engine owns: Python objects in any number of
// interpreters, and memoryviews over them, refer to it through shared_ptrs, so
// it lives while any of them does, whichever interpreter made it. Nothing is
// copied when a handle crosses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <interpool/value.hpp>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace interpool {

/// Engine-allocated bytes: fixed size, zero-filled, aligned to `alignment`.
/// Contract:
/// - the bytes never move and the size never changes, so pointers and spans
///   stay valid while the caller holds the shared_ptr;
/// - the engine does not order accesses to the bytes: writers and readers in
///   different threads synchronise themselves (Lock, Event, Barrier, ...).
class SharedBuffer : public Shareable {
  struct Key {};

 public:
  /// Alignment of data(): a cache line, enough for every typed view.
  static constexpr std::size_t alignment = 64;

  /// A new zero-filled buffer of `nbytes` bytes. Throws std::bad_alloc.
  static std::shared_ptr<SharedBuffer> create(std::size_t nbytes);
  /// A new buffer holding a copy of `bytes`.
  static std::shared_ptr<SharedBuffer> copy_of(std::span<const std::byte> bytes);
  /// The live buffer with this id, or nullptr.
  static std::shared_ptr<SharedBuffer> find(std::int64_t id);

  SharedBuffer(Key, std::size_t nbytes, std::int64_t id);
  SharedBuffer(const SharedBuffer&) = delete;
  SharedBuffer& operator=(const SharedBuffer&) = delete;
  ~SharedBuffer() override;

  ObjectKind kind() const noexcept override { return ObjectKind::SharedBuffer; }
  /// Process-wide id (for repr and pickling by reference).
  std::int64_t id() const noexcept { return id_; }
  std::size_t size() const noexcept { return size_; }
  std::byte* data() noexcept { return data_; }
  const std::byte* data() const noexcept { return data_; }
  std::span<std::byte> bytes() noexcept { return {data_, size_}; }
  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }

  /// The bytes as `size() / sizeof(T)` objects of type T (the rest is left out).
  template <class T>
  std::span<T> as() noexcept {
    static_assert(std::is_trivially_copyable_v<T> && alignof(T) <= alignment,
                  "a SharedBuffer holds plain data: trivially copyable types of alignment <= 64");
    return {reinterpret_cast<T*>(data_), size_ / sizeof(T)};
  }

 private:
  const std::int64_t id_;
  const std::size_t size_;
  void* allocation_;  // what calloc returned; data_ is aligned inside it
  std::byte* data_;
};

/// Where the items of a typed, maybe strided view lie in a SharedBuffer: the
/// fields of a Py_buffer, with the first item as an offset from the start.
struct BufferLayout {
  std::size_t offset = 0;  ///< of the item whose indices are all 0
  std::size_t itemsize = 1;
  std::string format = "B";             ///< in the struct module's syntax
  std::vector<std::ptrdiff_t> shape;    ///< empty: a single item (a 0-d view)
  std::vector<std::ptrdiff_t> strides;  ///< in bytes, one per dimension (may be negative)
  bool readonly = false;

  /// The bytes of every item: product(shape) * itemsize.
  std::size_t nbytes() const noexcept;
  bool c_contiguous() const noexcept;
  bool f_contiguous() const noexcept;
  /// A row-major (C-contiguous) layout of `shape` from `offset`.
  static BufferLayout contiguous(std::size_t offset, std::size_t itemsize, std::string format,
                                 std::vector<std::ptrdiff_t> shape, bool readonly = false);
  /// One dimension of `nbytes` unsigned bytes.
  static BufferLayout bytes(std::size_t offset, std::size_t nbytes, bool readonly = false);
};

/// A typed window on a SharedBuffer. It is what crosses when a memoryview
/// does: the receiver rebuilds a memoryview of the same items of the same
/// buffer, nothing copied.
class SharedBufferView : public Shareable {
 public:
  /// Throws std::out_of_range if some item of `layout` lies outside `buffer`,
  /// std::invalid_argument if the layout is malformed (shape and strides of
  /// different lengths, a negative extent, an itemsize of 0).
  SharedBufferView(std::shared_ptr<SharedBuffer> buffer, BufferLayout layout);

  ObjectKind kind() const noexcept override { return ObjectKind::SharedBuffer; }
  const std::shared_ptr<SharedBuffer>& buffer() const noexcept { return buffer_; }
  const BufferLayout& layout() const noexcept { return layout_; }
  /// The item whose indices are all 0.
  std::byte* first() const noexcept { return buffer_->data() + layout_.offset; }

 private:
  std::shared_ptr<SharedBuffer> buffer_;
  BufferLayout layout_;
};

}  // namespace interpool
