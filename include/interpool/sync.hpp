// Locks, events, semaphores, barriers and atomic integers that every
// interpreter (and C++ thread) of the process can share by handle.
//
// Waits sleep on a Signal (a futex: no polling) until the deadline. With
// interruptible=true a signal delivered to the waiting thread ends the wait
// with WaitResult::Interrupted having changed nothing, so that the caller can
// run its signal handlers (Ctrl-C in Python) and call again with the same
// deadline (on the process's main thread Interrupted may also come once with
// no signal: see Signal). Python-facing callers release their GIL around these waits.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <interpool/signal.hpp>
#include <interpool/value.hpp>
#include <memory>
#include <mutex>

namespace interpool {

/// Base of the synchronisation objects: a process-wide id and ObjectKind::Sync.
class SyncObject : public Shareable {
 public:
  explicit SyncObject(std::int64_t id) noexcept : id_(id) {}
  SyncObject(const SyncObject&) = delete;
  SyncObject& operator=(const SyncObject&) = delete;
  ~SyncObject() override;
  ObjectKind kind() const noexcept override { return ObjectKind::Sync; }
  /// Process-wide id (for repr and pickling by reference).
  std::int64_t id() const noexcept { return id_; }
  /// The live synchronisation object with this id, or nullptr.
  static std::shared_ptr<SyncObject> find(std::int64_t id);

 private:
  const std::int64_t id_;
};

/// A mutual-exclusion lock that any thread may release, as threading.Lock.
class Lock final : public SyncObject {
 public:
  static std::shared_ptr<Lock> create();
  explicit Lock(std::int64_t id) noexcept : SyncObject(id) {}

  /// Ready once this thread holds it; Timeout; Interrupted.
  WaitResult acquire(const Deadline& deadline = {}, bool interruptible = false) noexcept;
  bool try_acquire() noexcept;
  /// Lets one waiter in. False (and nothing done) if the lock was not held.
  bool release() noexcept;
  bool locked() const noexcept { return locked_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> locked_{false};
  Signal signal_;
};

/// Who holds a reentrant lock: an interpreter and a thread in it.
struct Owner {
  std::int64_t interpreter = -1;  ///< -1 for a thread outside Python
  std::uint64_t thread = 0;
  friend bool operator==(const Owner&, const Owner&) = default;
};

/// A reentrant lock, as threading.RLock: the owner may acquire it again, and
/// only the owner may release it. The same OS thread in two interpreters is two
/// owners.
class RLock final : public SyncObject {
 public:
  static std::shared_ptr<RLock> create();
  explicit RLock(std::int64_t id) noexcept : SyncObject(id) {}

  WaitResult acquire(const Owner& owner, const Deadline& deadline = {},
                     bool interruptible = false) noexcept;
  /// False (and nothing done) if `owner` does not hold the lock.
  bool release(const Owner& owner) noexcept;
  bool owned_by(const Owner& owner) const noexcept;
  bool locked() const noexcept;
  /// How many times the owner holds it (0: free).
  std::size_t depth() const noexcept;

 private:
  bool try_acquire(const Owner& owner) noexcept;
  mutable std::mutex mutex_;
  Owner owner_;
  std::size_t depth_ = 0;
  Signal signal_;
};

/// The process's lock for its C environment (environ). Interpreters share one
/// environment: an os.environ change in one interpreter rewrites the array that a
/// process spawn in another thread reads while it execs (CPython's vfork path reads
/// it after releasing the GIL), and a spawn that reads a freed array fails. The
/// faces hold this lock around the environment changes of their interpreters and
/// around the process spawns they make. Made on first use, never freed.
const std::shared_ptr<RLock>& environment_lock();

/// A flag that threads wait for, as threading.Event.
class Event final : public SyncObject {
 public:
  static std::shared_ptr<Event> create();
  explicit Event(std::int64_t id) noexcept : SyncObject(id) {}

  void set() noexcept;
  void clear() noexcept;
  bool is_set() const noexcept { return flag_.load(std::memory_order_acquire); }
  /// Ready once set; Timeout; Interrupted.
  WaitResult wait(const Deadline& deadline = {}, bool interruptible = false) noexcept;

 private:
  std::atomic<bool> flag_{false};
  Signal signal_;
};

/// A counter that acquire() decrements, waiting while it is 0, as
/// threading.Semaphore; bounded, release() refuses to go above the initial value
/// (threading.BoundedSemaphore).
class Semaphore final : public SyncObject {
 public:
  /// Throws std::invalid_argument if value < 0.
  static std::shared_ptr<Semaphore> create(std::int64_t value = 1, bool bounded = false);
  Semaphore(std::int64_t value, bool bounded, std::int64_t id) noexcept
      : SyncObject(id), value_(value), initial_(value), bounded_(bounded) {}

  WaitResult acquire(const Deadline& deadline = {}, bool interruptible = false) noexcept;
  bool try_acquire() noexcept;
  /// Adds n (>= 1) and wakes as many waiters. False (and nothing done) if the
  /// semaphore is bounded and the value would pass the initial one.
  bool release(std::int64_t n = 1) noexcept;
  std::int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }
  std::int64_t initial() const noexcept { return initial_; }
  bool bounded() const noexcept { return bounded_; }

 private:
  std::atomic<std::int64_t> value_;
  const std::int64_t initial_;
  const bool bounded_;
  Signal signal_;
};

/// A rendezvous of `parties` threads, as threading.Barrier (without the action):
/// wait() returns when that many have called it; a timeout, abort() or reset()
/// breaks it for those waiting.
class Barrier final : public SyncObject {
 public:
  /// Throws std::invalid_argument if parties < 1. `timeout` (seconds, < 0: none)
  /// is the default of the faces' wait(timeout=None).
  static std::shared_ptr<Barrier> create(std::size_t parties, double timeout = -1);
  Barrier(std::size_t parties, double timeout, std::int64_t id) noexcept
      : SyncObject(id), parties_(parties), timeout_(timeout) {}

  enum class Result : std::uint8_t {
    Passed,       ///< every party arrived; the ticket holds this thread's index
    Broken,       ///< broken (by a timeout, here or elsewhere, abort() or reset())
    Interrupted,  ///< a signal: call wait() again with the same ticket, or abandon() it
  };
  /// One thread's passage through the barrier, kept across interrupted waits.
  struct Ticket {
    enum class Stage : std::uint8_t { Entering, Waiting, Done } stage = Stage::Entering;
    std::size_t index = 0;  ///< arrival order, 0 .. parties - 1
  };
  /// Waits for the other parties. A deadline that passes breaks the barrier.
  Result wait(Ticket& ticket, const Deadline& deadline = {}, bool interruptible = false) noexcept;
  /// Leaves after an Interrupted wait (the barrier stays as it is).
  void abandon(Ticket& ticket) noexcept;
  /// Back to the initial state; threads waiting now get Broken.
  void reset() noexcept;
  /// Broken until reset(); threads waiting now and later get Broken.
  void abort() noexcept;
  bool broken() const noexcept;
  /// Threads waiting for the barrier to fill.
  std::size_t n_waiting() const noexcept;
  std::size_t parties() const noexcept { return parties_; }
  double timeout() const noexcept { return timeout_; }

 private:
  enum class State : std::uint8_t { Filling, Draining, Resetting, Broken };
  void leave(std::unique_lock<std::mutex>& lock) noexcept;
  const std::size_t parties_;
  const double timeout_;
  mutable std::mutex mutex_;
  State state_ = State::Filling;
  std::size_t count_ = 0;  // threads inside (waiting, or leaving while it drains)
  Signal signal_;
};

/// A 64-bit integer with atomic operations. Arithmetic that would leave the
/// int64 range throws std::overflow_error and changes nothing.
class AtomicInt final : public SyncObject {
 public:
  static std::shared_ptr<AtomicInt> create(std::int64_t value = 0);
  AtomicInt(std::int64_t value, std::int64_t id) noexcept : SyncObject(id), value_(value) {}

  std::int64_t load() const noexcept { return value_.load(std::memory_order_seq_cst); }
  void store(std::int64_t v) noexcept { value_.store(v, std::memory_order_seq_cst); }
  /// Sets the value; returns the previous one.
  std::int64_t exchange(std::int64_t v) noexcept { return value_.exchange(v); }
  /// Adds n; returns the previous value.
  std::int64_t fetch_add(std::int64_t n);
  /// Sets `desired` if the value is `expected`: true; else false and `expected`
  /// becomes the current value.
  bool compare_exchange(std::int64_t& expected, std::int64_t desired) noexcept {
    return value_.compare_exchange_strong(expected, desired);
  }

 private:
  std::atomic<std::int64_t> value_;
};

}  // namespace interpool
