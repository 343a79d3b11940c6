#include "core/registry.hpp"

#include <atomic>
#include <mutex>
#include <unordered_map>

namespace interpool::registry {

namespace {

struct Table {
  std::mutex mutex;
  std::unordered_map<std::int64_t, std::weak_ptr<Shareable>> objects;
};

Table& table() {
  static auto* t = new Table;  // never destroyed: objects may outlive static destruction
  return *t;
}

std::atomic<std::int64_t> g_next{1};

}  // namespace

std::int64_t next_id() noexcept { return g_next.fetch_add(1, std::memory_order_relaxed); }

void add(std::int64_t id, const std::shared_ptr<Shareable>& object) {
  Table& t = table();
  std::lock_guard lock(t.mutex);
  t.objects[id] = object;
}

std::shared_ptr<Shareable> find(std::int64_t id) {
  Table& t = table();
  std::lock_guard lock(t.mutex);
  auto it = t.objects.find(id);
  return it == t.objects.end() ? nullptr : it->second.lock();
}

void remove(std::int64_t id) noexcept {
  Table& t = table();
  std::lock_guard lock(t.mutex);
  auto it = t.objects.find(id);
  // A destructor runs once the last shared_ptr is gone: its entry has expired.
  if (it != t.objects.end() && it->second.expired()) t.objects.erase(it);
}

}  // namespace interpool::registry
