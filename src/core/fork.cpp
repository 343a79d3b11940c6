#include "core/fork.hpp"

#include <pthread.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <random>
#include <utility>

#define PY_SSIZE_T_CLEAN
#include <Python.h>

// interpreter_list.c: the slot of CPython's runtime that heads its list of
// interpreters, or nullptr where its place is not known.
extern "C" PyInterpreterState** interpool_interpreter_list_head(void);

namespace interpool {

namespace {

std::atomic<long> alive{0};
std::atomic<bool> forked_away{false};
// In such a child: the process it was forked from (the first such fork).
std::atomic<long> forked_from{0};

// CPython's child-side clean-up, PyOS_AfterFork_Child, frees every
// sub-interpreter after making no thread state current
// (_PyInterpreterState_DeleteExceptMain), yet freeing their objects needs one:
// 3.13 aborts the child ("PyThreadState_Get: ... the GIL is released"), 3.12
// deadlocks on the runtime's lock it already holds or crashes. Any interpreter
// alive at the fork does it, idle or not, ours or the standard library's
// (python/cpython#101437, #139759). Nothing in the child can run in them (their
// threads stayed in the parent), so before that clean-up runs (pthread_atfork
// child handlers run inside fork()), the list is made to hold the main
// interpreter alone, as the clean-up would leave it: the others stay in the
// child's copy of memory, unused and unfreed. The slot is checked against the
// public API first; anything unexpected leaves the list as it is.
void leave_sub_interpreters_behind() noexcept {
  if (!Py_IsInitialized()) return;
  PyInterpreterState** head = interpool_interpreter_list_head();
  PyInterpreterState* main = PyInterpreterState_Main();
  if (!head || !main || *head != PyInterpreterState_Head() || *head == main) return;
  if (PyInterpreterState_Next(main) != nullptr) return;  // main is always the last one made
  *head = main;
}

// process_token(); 0 until first asked for.
std::atomic<std::uint64_t> token{0};
// Forks made by this process (a child's token mixes it in: two children of
// one parent differ even if the second gets the first's pid).
std::atomic<std::uint64_t> forks{0};

std::uint64_t mix(std::uint64_t x) noexcept {  // splitmix64's finalizer
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

void in_child() noexcept {
  // Another process: the parent's pickles must not find this one's objects.
  // (No system call but getpid here, inside fork().)
  if (std::uint64_t t = token.load())
    token.store(mix(t ^ static_cast<std::uint64_t>(getpid()) ^ mix(forks.load())) | 1);
  if (alive.load() > 0 && !forked_away.load()) {
    forked_from.store(static_cast<long>(getppid()));
    forked_away.store(true);
  }
  leave_sub_interpreters_behind();
}

// The locks held across a fork (hold_across_forks). Fixed room, so that
// nothing is allocated inside fork(): a malloc whose own fork handler ran
// first would hold its locks.
struct ForkLocks {
  std::mutex mutex;  // guards what follows; held from prepare until parent/child
  std::array<ForkHeldLock, 8> fixed;
  std::size_t fixed_count = 0;
  std::array<ForkLockSource, 8> sources;
  std::size_t source_count = 0;
  ForkLockList during;  // the locks of the fork under way, and their objects
};

ForkLocks& fork_locks() {
  static auto* locks = new ForkLocks;  // never destroyed: forks may come late
  return *locks;
}

// Takes every lock of `locks`, or none: blocks on one lock at a time, holding
// no other (so no order between them is needed, as std::lock does it).
void take_all(ForkHeldLock* locks, std::size_t n) noexcept {
  if (n == 0) return;
  std::size_t first = 0;
  for (;;) {
    locks[first].take(locks[first].lock);
    std::size_t failed = n;
    for (std::size_t i = 0; i < n; ++i) {
      if (i == first) continue;
      if (!locks[i].try_take(locks[i].lock)) {
        failed = i;
        break;
      }
    }
    if (failed == n) return;
    for (std::size_t i = 0; i < failed; ++i)
      if (i != first) locks[i].give(locks[i].lock);
    locks[first].give(locks[first].lock);
    first = failed;  // waited for next, holding nothing
  }
}

void before_fork() noexcept {
  forks.fetch_add(1);
  ForkLocks& f = fork_locks();
  f.mutex.lock();
  ForkLockList& during = f.during;
  during.count = 0;
  for (std::size_t i = 0; i < f.fixed_count; ++i) during.add(f.fixed[i], nullptr);
  for (std::size_t i = 0; i < f.source_count; ++i) f.sources[i](during);
  take_all(during.locks.data(), during.count);
}

void after_fork() noexcept {
  ForkLocks& f = fork_locks();
  ForkLockList& during = f.during;
  for (std::size_t i = during.count; i-- > 0;) during.locks[i].give(during.locks[i].lock);
  // Dropped once no lock is held: an object may end here and leave its table.
  std::array<std::shared_ptr<void>, ForkLockList::kRoom> keep;
  for (std::size_t i = 0; i < during.count; ++i) keep[i] = std::move(during.keep[i]);
  during.count = 0;
  f.mutex.unlock();
}

void child_after_fork() noexcept {
  in_child();
  after_fork();
}

}  // namespace

void ForkLockList::add(ForkHeldLock lock, std::shared_ptr<void> object) noexcept {
  if (count == kRoom) return;  // past the room: not held (as before these were)
  locks[count] = lock;
  keep[count] = std::move(object);
  ++count;
}

void watch_forks() noexcept {
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(before_fork, after_fork, child_after_fork); });
}

namespace {
// Installed when the library loads: a child then always makes its own token,
// and no thread installs them lazily while another forks.
[[maybe_unused]] const bool watched_at_load = (watch_forks(), true);
}  // namespace

void hold_across_forks(ForkHeldLock lock) noexcept {
  watch_forks();
  ForkLocks& f = fork_locks();
  std::lock_guard guard(f.mutex);
  if (f.fixed_count < f.fixed.size()) f.fixed[f.fixed_count++] = lock;
}

void hold_across_forks(ForkLockSource source) noexcept {
  watch_forks();
  ForkLocks& f = fork_locks();
  std::lock_guard guard(f.mutex);
  if (f.source_count < f.sources.size()) f.sources[f.source_count++] = source;
}

ForkSensitive ForkSensitive::count() noexcept {
  watch_forks();
  alive.fetch_add(1);
  ForkSensitive token;
  token.counted_ = true;
  return token;
}

ForkSensitive::ForkSensitive(ForkSensitive&& other) noexcept
    : counted_(std::exchange(other.counted_, false)) {}

ForkSensitive& ForkSensitive::operator=(ForkSensitive&& other) noexcept {
  if (this != &other) {
    release();
    counted_ = std::exchange(other.counted_, false);
  }
  return *this;
}

void ForkSensitive::release() noexcept {
  if (std::exchange(counted_, false)) alive.fetch_sub(1);
}

std::uint64_t process_token() noexcept {
  // No static guard or lock: a fork while another thread is here must not
  // leave the child waiting for it. Two threads may each make one; the first
  // stored is the process's.
  if (std::uint64_t made = token.load()) return made;
  std::uint64_t seed =
      static_cast<std::uint64_t>(getpid()) ^
      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  try {
    std::random_device device;
    seed ^= (static_cast<std::uint64_t>(device()) << 32) | device();
  } catch (...) {
    // No entropy source: the pid and the clock tell processes apart well enough.
  }
  std::uint64_t expected = 0;
  token.compare_exchange_strong(expected, mix(seed) | 1);
  return token.load();
}

bool forked_while_running() noexcept { return forked_away.load(std::memory_order_relaxed); }

std::string used_after_fork_message(std::string_view what) {
  return "interpool cannot be used in a process forked while it ran workers or interpreters (" +
         std::string(what) + "): this process is a fork of pid " +
         std::to_string(forked_from.load()) +
         ", whose workers and interpreters did not come with it (a fork copies only the thread "
         "that called it). Start processes that use interpool with the 'forkserver' or 'spawn' "
         "start method (multiprocessing.get_context('forkserver'), "
         "ProcessPoolExecutor(mp_context=...)), or fork before interpool starts any";
}

}  // namespace interpool
