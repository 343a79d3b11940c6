#include <interpool/queue.hpp>
#include <mutex>
#include <unordered_set>

#include "core/fork.hpp"
#include "core/id_table.hpp"

namespace interpool {

namespace {

IdTable<Queue>& queues();

// At a fork: the locks of the queues alive then, for the child's puts and gets.
void queue_locks(ForkLockList& list) noexcept {
  queues().visit_live([&] { return list.count < ForkLockList::kRoom; },
                      [&](std::shared_ptr<Queue>&& q) {
                        ForkHeldLock lock = ForkHeldLock::of(q->fork_lock());
                        list.add(lock, std::move(q));
                      });
}

IdTable<Queue>& queues() {
  static auto* table = [] {
    auto* t = new IdTable<Queue>;  // never destroyed: see IdTable
    t->hold_across_forks();
    hold_across_forks(queue_locks);
    return t;
  }();
  return *table;
}

// Made, and its locks registered, when the library loads (see hold_across_forks).
[[maybe_unused]] const bool queues_at_load = (queues(), true);

// Interpreters Interpreter::close is ending now.
struct Closing {
  std::mutex mutex;
  std::unordered_set<std::int64_t> ids;
};

Closing& closing() {
  static auto* c = new Closing;  // never destroyed, as the queues' table
  return *c;
}

}  // namespace

std::shared_ptr<Queue> Queue::create(std::int64_t maxsize, Unbound default_unbound) {
  auto q = std::make_shared<Queue>(queues().new_id(), maxsize, default_unbound);
  queues().insert(q->id(), q);
  return q;
}

std::shared_ptr<Queue> Queue::find(std::int64_t id) { return queues().find(id); }

Queue::~Queue() { queues().forget_expired(id_); }

namespace {

// Over a copy of the live queues (live()), not under the table's lock
// (visit_live): dropping an item may drop the last reference to another queue
// it carried, whose destructor takes the table's lock.
void apply_unbound_policies(std::int64_t interp_id) {
  for (auto& q : queues().live()) {
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
  Closing& c = closing();
  std::lock_guard lock(c.mutex);
  c.ids.insert(interp_id);
}

void Queue::interpreter_closed(std::int64_t interp_id) {
  {
    Closing& c = closing();
    std::lock_guard lock(c.mutex);
    c.ids.erase(interp_id);
  }
  apply_unbound_policies(interp_id);
}

void Queue::interpreter_finalizing(std::int64_t interp_id) {
  // A child forked while workers ran ends: nothing but this ending interpreter
  // can read its queues any more, and a lock a worker held at the fork stays held.
  if (forked_while_running()) return;
  {
    Closing& c = closing();
    std::lock_guard lock(c.mutex);
    if (c.ids.count(interp_id)) return;
  }
  apply_unbound_policies(interp_id);
}

}  // namespace interpool
