// Waiting without polling: deadlines and an event count.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace interpool {

/// Number of CPUs this process may run on.
std::size_t usable_cpus() noexcept;

/// When a wait gives up. Default: never.
class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  Deadline() = default;
  static Deadline never() { return {}; }
  /// Already passed: a wait checks once and returns.
  static Deadline now() { return Deadline(Clock::now()); }
  static Deadline at(Clock::time_point t) { return Deadline(t); }
  /// After `seconds` (<= 0 means now; more than about 30 years, or NaN, never).
  static Deadline after(double seconds) {
    if (seconds <= 0) return now();
    if (!(seconds < 1e9)) return never();  // beyond the clock's range, and NaN
    return Deadline(Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(seconds)));
  }

  bool is_never() const noexcept { return !when_; }
  bool passed() const { return when_ && Clock::now() >= *when_; }
  std::optional<Clock::time_point> when() const noexcept { return when_; }

 private:
  explicit Deadline(Clock::time_point t) : when_(t) {}
  std::optional<Clock::time_point> when_;
};

/// How a wait ended.
enum class WaitResult : std::uint8_t {
  Ready,        ///< the awaited condition holds (or the waiter was notified)
  Timeout,      ///< the deadline passed
  Interrupted,  ///< a signal arrived, or may have (only for interruptible waits; on the
                ///< process's main thread once after spinning): check for it, then wait again
  Closed,       ///< the object was closed
};

/// An event count: a waiter reads epoch(), checks its condition, and if the
/// condition does not hold sleeps in wait(epoch). Any notify after epoch() was
/// read makes wait return at once, so no wake-up is lost and nobody polls.
/// Waiting uses a futex, after a short spin (docs/design.md, rule 3); with
/// interruptible=true a signal delivered to the waiting thread ends the wait
/// with Interrupted (for Ctrl-C in Python), and so may, once, a wait that spun
/// on the process's main thread (a signal taken while spinning ends no sleep).
class Signal {
 public:
  std::uint32_t epoch() const noexcept { return seq_.load(std::memory_order_seq_cst); }
  /// Sleeps until notified after `epoch`, the deadline, or (if interruptible) a signal.
  WaitResult wait(std::uint32_t epoch, const Deadline& deadline, bool interruptible) noexcept;
  void notify_one() noexcept;
  void notify_all() noexcept;
  /// notify_one, but when a waiter is spinning (it sees the notify without a
  /// futex wake) no sleeper is woken. So a second notify before that waiter
  /// acted may wake nobody new: a caller must pass the wake on itself (as
  /// Channel::get does when it leaves items behind for waiting getters).
  void notify_one_lazy() noexcept;

 private:
  void wake(int count) noexcept;
  enum class Spin : std::uint8_t { Notified, TimedOut, NoCpu };
  /// Spins until notified after `epoch` or `until`; NoCpu at once when no CPU
  /// is free to spin on.
  Spin spin(std::uint32_t epoch, Deadline::Clock::time_point until) noexcept;
  std::atomic<std::uint32_t> seq_{0};
  std::atomic<std::uint32_t> waiters_{0};
  std::atomic<std::uint32_t> spinning_{0};
};

/// A mutex for short critical sections (a channel's push and pop): a thread
/// that finds it taken spins briefly before it sleeps on a futex, because the
/// holder is about to let go and a sleep plus a wake-up cost far more than the
/// section. Lockable (std::lock_guard, std::unique_lock); not recursive.
class SpinMutex {
 public:
  void lock() noexcept {
    std::uint32_t free = 0;
    if (!state_.compare_exchange_strong(free, 1, std::memory_order_acquire,
                                        std::memory_order_relaxed))
      lock_contended();
  }
  bool try_lock() noexcept {
    std::uint32_t free = 0;
    return state_.compare_exchange_strong(free, 1, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }
  void unlock() noexcept {
    if (state_.exchange(0, std::memory_order_release) == 2) wake_one();
  }

 private:
  void lock_contended() noexcept;
  void wake_one() noexcept;
  std::atomic<std::uint32_t> state_{0};  // 0 free, 1 taken, 2 taken and maybe sleepers
};

}  // namespace interpool
