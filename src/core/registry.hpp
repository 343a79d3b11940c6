// Process-wide ids of the engine objects Python code can name by number
// (shared buffers and synchronisation objects): for repr and for pickling by
// reference. Holds no Python object and keeps no engine object alive.
#pragma once

#include <cstdint>
#include <interpool/value.hpp>
#include <memory>

namespace interpool::registry {

/// A new id, unique in the process (ids start at 1).
std::int64_t next_id() noexcept;
/// Makes `object` findable under `id` (an id from next_id()).
void add(std::int64_t id, const std::shared_ptr<Shareable>& object);
/// The live object with this id, or nullptr.
std::shared_ptr<Shareable> find(std::int64_t id);
/// Forgets `id`; objects call it from their destructor.
void remove(std::int64_t id) noexcept;

/// make_shared<T>(id, args...) with a new id, registered under it.
template <class T, class... Args>
std::shared_ptr<T> make(Args&&... args) {
  std::int64_t id = next_id();
  auto object = std::make_shared<T>(std::forward<Args>(args)..., id);
  add(id, object);
  return object;
}

}  // namespace interpool::registry
