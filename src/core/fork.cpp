#include "core/fork.hpp"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <random>
#include <utility>
#include <vector>

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
    token.store(mix(t ^ static_cast<std::uint64_t>(getpid())) | 1);
  if (alive.load() > 0 && !forked_away.load()) {
    forked_from.store(static_cast<long>(getppid()));
    forked_away.store(true);
  }
  leave_sub_interpreters_behind();
}

// The locks held across a fork (hold_across_forks).
struct ForkLocks {
  std::mutex mutex;  // guards the lists; held from prepare until parent/child
  std::vector<ForkHeldLock> fixed;
  std::vector<ForkLockSource> sources;
  std::vector<ForkHeldLock> held;           // during a fork
  std::vector<std::shared_ptr<void>> keep;  // during a fork
};

ForkLocks& fork_locks() {
  static auto* locks = new ForkLocks;  // never destroyed: forks may come late
  return *locks;
}

// Takes every lock of `locks`, or none: blocks on one lock at a time, holding
// no other (so no order between them is needed, as std::lock does it).
void take_all(std::vector<ForkHeldLock>& locks) noexcept {
  if (locks.empty()) return;
  std::size_t first = 0;
  for (;;) {
    locks[first].take(locks[first].lock);
    std::size_t failed = locks.size();
    for (std::size_t i = 0; i < locks.size(); ++i) {
      if (i == first) continue;
      if (!locks[i].try_take(locks[i].lock)) {
        failed = i;
        break;
      }
    }
    if (failed == locks.size()) return;
    for (std::size_t i = 0; i < failed; ++i)
      if (i != first) locks[i].give(locks[i].lock);
    locks[first].give(locks[first].lock);
    first = failed;  // waited for next, holding nothing
  }
}

void before_fork() noexcept {
  ForkLocks& f = fork_locks();
  f.mutex.lock();
  try {
    f.held = f.fixed;
    for (ForkLockSource source : f.sources) source(f.held, f.keep);
  } catch (...) {
    // Out of memory: this fork holds none (as before these were held).
    f.held.clear();
  }
  take_all(f.held);
}

void after_fork() noexcept {
  ForkLocks& f = fork_locks();
  for (auto it = f.held.rbegin(); it != f.held.rend(); ++it) it->give(it->lock);
  f.held.clear();
  std::vector<std::shared_ptr<void>> keep;
  keep.swap(f.keep);
  f.mutex.unlock();
  // Dropped last, with no lock held: an object may end here and leave its table.
}

void child_after_fork() noexcept {
  in_child();
  after_fork();
}

}  // namespace

void watch_forks() noexcept {
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(before_fork, after_fork, child_after_fork); });
}

namespace {
template <class T>
void add_held(std::vector<T> ForkLocks::*list, T item) noexcept {
  watch_forks();
  ForkLocks& f = fork_locks();
  std::lock_guard guard(f.mutex);
  try {
    (f.*list).push_back(item);
  } catch (...) {
    // Out of memory: not held across forks.
  }
}
}  // namespace

void hold_across_forks(ForkHeldLock lock) noexcept { add_held(&ForkLocks::fixed, lock); }

void hold_across_forks(ForkLockSource source) noexcept { add_held(&ForkLocks::sources, source); }

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
  static const bool made = [] {
    watch_forks();
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
    token.compare_exchange_strong(expected, mix(seed) | 1);  // a child may have made one already
    return true;
  }();
  (void)made;
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
