#include <interpool/queue.hpp>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "core/fork.hpp"

namespace interpool {

namespace {

// Process-wide: ids to live queues. Holds no Python object.
struct Registry {
  std::mutex mutex;
  std::int64_t next_id = 1;
  std::unordered_map<std::int64_t, std::weak_ptr<Queue>> queues;
  std::unordered_set<std::int64_t> closing;  // interpreters Interpreter::close is ending now
};

Registry& registry() {
  static auto* r = new Registry;  // never destroyed: queues may outlive static destruction order
  return *r;
}

}  // namespace

std::shared_ptr<Queue> Queue::create(std::int64_t maxsize, Unbound default_unbound) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  auto q = std::make_shared<Queue>(r.next_id++, maxsize, default_unbound);
  r.queues.emplace(q->id(), q);
  return q;
}

std::shared_ptr<Queue> Queue::find(std::int64_t id) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  auto it = r.queues.find(id);
  return it == r.queues.end() ? nullptr : it->second.lock();
}

Queue::~Queue() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  auto it = r.queues.find(id_);
  if (it != r.queues.end() && it->second.expired()) r.queues.erase(it);
}

namespace {

void apply_unbound_policies(std::int64_t interp_id) {
  std::vector<std::shared_ptr<Queue>> live;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    for (auto& [id, weak] : r.queues)
      if (auto q = weak.lock()) live.push_back(std::move(q));
  }
  for (auto& q : live) {
    q->retain([&](QueueItem& item) {
      if (item.origin != interp_id) return true;
      switch (item.unbound) {
        case Unbound::Keep:
          return true;
        case Unbound::Remove:
          return false;
        case Unbound::Marker:
        case Unbound::Error:
          item.origin_closed = true;
          item.value = Value();
          return true;
      }
      return true;
    });
  }
}

}  // namespace

void Queue::interpreter_closing(std::int64_t interp_id) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.closing.insert(interp_id);
}

void Queue::interpreter_closed(std::int64_t interp_id) {
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    r.closing.erase(interp_id);
  }
  apply_unbound_policies(interp_id);
}

void Queue::interpreter_finalizing(std::int64_t interp_id) {
  // A child forked while workers ran ends: nothing but this ending interpreter
  // can read its queues any more, and a lock a worker held at the fork stays held.
  if (forked_while_running()) return;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    if (r.closing.count(interp_id)) return;
  }
  apply_unbound_policies(interp_id);
}

}  // namespace interpool
