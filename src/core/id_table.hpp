// The process-wide tables that find engine objects by id: queues (queue.cpp),
// shared buffers and sync objects (registry.cpp), interpreters (table.cpp).
// Holds no Python object.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/fork.hpp"

namespace interpool {

/// Ids to engine objects under one mutex. `Ref` says who keeps an object alive:
/// std::weak_ptr<T> (the default), its users, and its destructor calls
/// forget_expired(id); std::shared_ptr<T>, the table, until erase(id, object).
/// `Map` is std::unordered_map unless the table needs its ids in order.
///
/// Make one with `static auto* t = new IdTable<...>;`, never destroyed: objects
/// may end during static destruction and still look themselves up.
template <class T, class Ref = std::weak_ptr<T>, class Map = std::unordered_map<std::int64_t, Ref>>
class IdTable {
  static constexpr bool kWeak = std::is_same_v<Ref, std::weak_ptr<T>>;
  static_assert(kWeak || std::is_same_v<Ref, std::shared_ptr<T>>,
                "an IdTable holds std::weak_ptr<T> or std::shared_ptr<T>");

 public:
  /// The map, for as long as this lives (the table's lock is held): for a
  /// lookup and a change of the entry that must be one step.
  class Locked {
   public:
    explicit Locked(IdTable& table) : lock_(table.mutex_), map_(table.map_) {}
    Map* operator->() const noexcept { return &map_; }
    Map& operator*() const noexcept { return map_; }

   private:
    std::unique_lock<std::mutex> lock_;
    Map& map_;
  };
  Locked lock() { return Locked(*this); }

  /// Calls fn(std::shared_ptr<T>&&) for each live object under the table's
  /// lock while `more()` says so, allocating nothing (for a fork's handler).
  /// `fn` must keep what it is given: an object's last reference dropped here
  /// would take this lock again.
  template <class More, class Fn>
  void visit_live(More&& more, Fn&& fn) noexcept {
    std::lock_guard lock(mutex_);
    for (auto& [id, ref] : map_) {
      if (!more()) return;
      if constexpr (kWeak) {
        if (auto object = ref.lock()) fn(std::move(object));
      } else {
        fn(std::shared_ptr<T>(ref));
      }
    }
  }

  /// Holds the table's lock across forks (core/fork.hpp), for a table whose
  /// lock is held for its own steps only.
  void hold_across_forks() noexcept { interpool::hold_across_forks(ForkHeldLock::of(mutex_)); }

  /// A new id, unique in this table (from 1), for a table whose objects take
  /// their ids from it.
  std::int64_t new_id() noexcept { return next_id_.fetch_add(1, std::memory_order_relaxed); }

  /// Makes `object` findable under `id` (replacing what was there).
  void insert(std::int64_t id, std::shared_ptr<T> object) {
    std::lock_guard lock(mutex_);
    map_.insert_or_assign(id, Ref(std::move(object)));
  }

  /// The live object with this id, or nullptr.
  std::shared_ptr<T> find(std::int64_t id) {
    std::lock_guard lock(mutex_);
    auto it = map_.find(id);
    if (it == map_.end()) return nullptr;
    if constexpr (kWeak) {
      return it->second.lock();
    } else {
      return it->second;
    }
  }

  /// Drops the entry of `id` if its object is gone. An object calls it from its
  /// destructor (its entry has expired then, unless the id was taken again).
  void forget_expired(std::int64_t id) noexcept requires kWeak {
    std::lock_guard lock(mutex_);
    auto it = map_.find(id);
    if (it != map_.end() && it->second.expired()) map_.erase(it);
  }

  /// Drops the entry of `id` if it still holds `object`.
  void erase(std::int64_t id, const std::shared_ptr<T>& object) requires(!kWeak) {
    std::lock_guard lock(mutex_);
    auto it = map_.find(id);
    if (it != map_.end() && it->second == object) map_.erase(it);
  }

  /// The objects alive now, in the map's order.
  std::vector<std::shared_ptr<T>> live() {
    std::vector<std::shared_ptr<T>> out;
    std::lock_guard lock(mutex_);
    out.reserve(map_.size());
    for (auto& [id, ref] : map_) {
      if constexpr (kWeak) {
        if (auto object = ref.lock()) out.push_back(std::move(object));
      } else {
        out.push_back(ref);
      }
    }
    return out;
  }

 private:
  std::mutex mutex_;
  Map map_;
  std::atomic<std::int64_t> next_id_{1};
};

}  // namespace interpool
