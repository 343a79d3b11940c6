#include "core/registry.hpp"

#include "core/id_table.hpp"

namespace interpool::registry {

namespace {

IdTable<Shareable>& objects() {
  static auto* table = [] {
    auto* t = new IdTable<Shareable>;  // never destroyed: see IdTable
    t->hold_across_forks();            // a forked child makes and frees objects too
    return t;
  }();
  return *table;
}

// Made, and its lock registered, when the library loads (see hold_across_forks).
[[maybe_unused]] const bool objects_at_load = (objects(), true);

}  // namespace

std::int64_t next_id() noexcept { return objects().new_id(); }

void add(std::int64_t id, const std::shared_ptr<Shareable>& object) {
  objects().insert(id, object);
}

std::shared_ptr<Shareable> find(std::int64_t id) { return objects().find(id); }

void remove(std::int64_t id) noexcept { objects().forget_expired(id); }

}  // namespace interpool::registry
