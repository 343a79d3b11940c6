#include <cstdlib>
#include <cstring>
#include <interpool/shared_buffer.hpp>
#include <new>
#include <stdexcept>

#include "core/registry.hpp"

namespace interpool {

// ---------------------------------------------------------------------------
// SharedBuffer
// ---------------------------------------------------------------------------

SharedBuffer::SharedBuffer(Key, std::size_t nbytes, std::int64_t id)
    : id_(id), size_(nbytes), allocation_(nullptr), data_(nullptr) {
  // calloc: large blocks come zeroed from the kernel, touched only when used
  // (a 256 MiB buffer costs no time or memory until written).
  if (nbytes > SIZE_MAX - alignment) throw std::bad_alloc();
  allocation_ = std::calloc(nbytes + alignment - 1, 1);
  if (!allocation_) throw std::bad_alloc();
  auto address = reinterpret_cast<std::uintptr_t>(allocation_);
  data_ = reinterpret_cast<std::byte*>((address + alignment - 1) & ~(alignment - 1));
}

SharedBuffer::~SharedBuffer() {
  std::free(allocation_);
  registry::remove(id_);
}

std::shared_ptr<SharedBuffer> SharedBuffer::create(std::size_t nbytes) {
  return registry::make<SharedBuffer>(Key{}, nbytes);
}

std::shared_ptr<SharedBuffer> SharedBuffer::copy_of(std::span<const std::byte> bytes) {
  auto buffer = create(bytes.size());
  if (!bytes.empty()) std::memcpy(buffer->data(), bytes.data(), bytes.size());
  return buffer;
}

std::shared_ptr<SharedBuffer> SharedBuffer::find(std::int64_t id) {
  return std::dynamic_pointer_cast<SharedBuffer>(registry::find(id));
}

// ---------------------------------------------------------------------------
// BufferLayout
// ---------------------------------------------------------------------------

std::size_t BufferLayout::nbytes() const noexcept {
  std::size_t n = itemsize;
  for (std::ptrdiff_t extent : shape) n *= static_cast<std::size_t>(extent);
  return n;
}

bool BufferLayout::c_contiguous() const noexcept {
  std::ptrdiff_t expected = static_cast<std::ptrdiff_t>(itemsize);
  for (std::size_t i = shape.size(); i-- > 0;) {
    if (shape[i] == 0) return true;
    if (shape[i] != 1 && strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

bool BufferLayout::f_contiguous() const noexcept {
  std::ptrdiff_t expected = static_cast<std::ptrdiff_t>(itemsize);
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0) return true;
    if (shape[i] != 1 && strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

BufferLayout BufferLayout::contiguous(std::size_t offset, std::size_t itemsize, std::string format,
                                      std::vector<std::ptrdiff_t> shape, bool readonly) {
  BufferLayout layout;
  layout.offset = offset;
  layout.itemsize = itemsize;
  layout.format = std::move(format);
  layout.strides.assign(shape.size(), 0);
  std::ptrdiff_t stride = static_cast<std::ptrdiff_t>(itemsize);
  for (std::size_t i = shape.size(); i-- > 0;) {
    layout.strides[i] = stride;
    stride *= shape[i];
  }
  layout.shape = std::move(shape);
  layout.readonly = readonly;
  return layout;
}

BufferLayout BufferLayout::bytes(std::size_t offset, std::size_t nbytes, bool readonly) {
  return contiguous(offset, 1, "B", {static_cast<std::ptrdiff_t>(nbytes)}, readonly);
}

// ---------------------------------------------------------------------------
// SharedBufferView
// ---------------------------------------------------------------------------

SharedBufferView::SharedBufferView(std::shared_ptr<SharedBuffer> buffer, BufferLayout layout)
    : buffer_(std::move(buffer)), layout_(std::move(layout)) {
  if (!buffer_) throw std::invalid_argument("a SharedBufferView needs a buffer");
  const BufferLayout& l = layout_;
  if (l.itemsize == 0) throw std::invalid_argument("a SharedBufferView needs an itemsize > 0");
  if (l.shape.size() != l.strides.size())
    throw std::invalid_argument("a SharedBufferView needs one stride per dimension");
  // The lowest and highest byte any item touches, relative to the first item.
  std::ptrdiff_t low = 0, high = static_cast<std::ptrdiff_t>(l.itemsize);
  for (std::size_t i = 0; i < l.shape.size(); ++i) {
    if (l.shape[i] < 0) throw std::invalid_argument("a SharedBufferView has a negative extent");
    if (l.shape[i] == 0) {
      low = high = 0;  // no item at all
      break;
    }
    std::ptrdiff_t span = (l.shape[i] - 1) * l.strides[i];
    (span < 0 ? low : high) += span;
  }
  auto begin = static_cast<std::ptrdiff_t>(l.offset) + low;
  auto end = static_cast<std::ptrdiff_t>(l.offset) + high;
  if (l.offset > buffer_->size() || begin < 0 ||
      (high > low && end > static_cast<std::ptrdiff_t>(buffer_->size())))
    throw std::out_of_range("the layout of a SharedBufferView reaches outside its buffer");
}

}  // namespace interpool
