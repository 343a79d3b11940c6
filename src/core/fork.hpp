// What a fork() leaves behind. A child process gets a copy of the memory but
// only the thread that forked: the engine's workers, its watchdogs and the
// threads inside its interpreters stay in the parent. A child forked while any
// of them was alive refuses all use of pools and interpreters (UsedAfterFork),
// instead of waiting for threads it does not have.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <interpool/error.hpp>
#include <memory>
#include <string>
#include <string_view>

namespace interpool {

/// Counts one engine thread or interpreter as alive in this process, from
/// count() until release() or destruction; a default-made or moved-from token
/// counts nothing. The first count installs the fork handlers (watch_forks).
class ForkSensitive {
 public:
  ForkSensitive() noexcept = default;
  static ForkSensitive count() noexcept;
  ForkSensitive(ForkSensitive&& other) noexcept;
  ForkSensitive& operator=(ForkSensitive&& other) noexcept;
  ForkSensitive(const ForkSensitive&) = delete;
  ForkSensitive& operator=(const ForkSensitive&) = delete;
  ~ForkSensitive() { release(); }
  void release() noexcept;

 private:
  bool counted_ = false;
};

/// Installs the engine's pthread_atfork handlers, once per process. In a child
/// they record whether anything counted was alive at the fork, and keep
/// CPython's own after-fork clean-up from ending the child on the
/// sub-interpreters it cannot free there (see fork.cpp). Any thread, no GIL.
void watch_forks() noexcept;

/// True in a process forked (or forked from one forked) while an engine thread
/// or interpreter was alive.
bool forked_while_running() noexcept;

/// A lock that engine threads hold for short steps only (never while they wait
/// for anything else, a GIL included) and that a forked child may take: a table
/// of ids, a queue's. The thread that forks holds every such lock across
/// fork(), so that the child finds them free and what they guard whole (a lock
/// another thread held at the fork would stay held in the child for ever).
struct ForkHeldLock {
  void* lock = nullptr;
  void (*take)(void*) = nullptr;
  bool (*try_take)(void*) = nullptr;
  void (*give)(void*) = nullptr;

  template <class Lockable>
  static ForkHeldLock of(Lockable& l) noexcept {
    return {&l, [](void* p) { static_cast<Lockable*>(p)->lock(); },
            [](void* p) { return static_cast<Lockable*>(p)->try_lock(); },
            [](void* p) { static_cast<Lockable*>(p)->unlock(); }};
  }
};

/// The locks a fork holds, with the objects they belong to (kept alive until
/// the fork is done). Fixed room: nothing is allocated inside fork().
struct ForkLockList {
  static constexpr std::size_t kRoom = 512;
  std::array<ForkHeldLock, kRoom> locks{};
  std::array<std::shared_ptr<void>, kRoom> keep{};
  std::size_t count = 0;
  /// Adds one; past the room it is left out (not held across this fork).
  void add(ForkHeldLock lock, std::shared_ptr<void> object) noexcept;
};

/// Adds a process-wide lock (one never destroyed) to those held across forks.
/// Call it when the library loads (a static object's initializer): a fork
/// while another thread waits here would leave that thread's static
/// initialization unfinished in the child.
void hold_across_forks(ForkHeldLock lock) noexcept;

/// Adds a source of such locks, asked at each fork (inside fork(), the
/// process's other threads running) for those of the objects alive then (the
/// queues'): it adds them to the list, allocating nothing. As early as above.
using ForkLockSource = void (*)(ForkLockList& locks) noexcept;
void hold_across_forks(ForkLockSource source) noexcept;

/// A number that tells this process from any other: random, and made again
/// in a forked child. Pickles that name engine objects by id carry it, so that
/// one loaded in another process is refused instead of finding that process's
/// object of the same id. Any thread, no GIL.
std::uint64_t process_token() noexcept;

/// The UsedAfterFork message for `what` ("cannot submit a task").
std::string used_after_fork_message(std::string_view what);

/// Throws UsedAfterFork for `what` in such a process; does nothing elsewhere.
inline void refuse_if_forked(std::string_view what) {
  if (forked_while_running()) throw UsedAfterFork(used_after_fork_message(what));
}

}  // namespace interpool
