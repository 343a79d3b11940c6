// A task's life as the engine sees it: TaskControl (cancel, interrupt, time
// limit), shared by a submitter and the Pool, and AcceptedTask, the count of
// accepted tasks that Pool::end_stuck_tasks reads. The Python face uses them;
// a C++ program sees TaskControl only as the opaque type Pool::submit takes.
#pragma once

#include <atomic>
#include <cstdint>
#include <interpool/pool.hpp>
#include <memory>
#include <utility>

namespace interpool {

class Watchdog;  // core/watchdog.hpp: interrupts running tasks

/// Counts one task accepted by a Pool and not yet ended, process-wide (for
/// Pool::end_stuck_tasks): counted from accept() until the token is destroyed;
/// a moved-from or default-made token counts nothing.
class AcceptedTask {
 public:
  AcceptedTask() noexcept = default;
  static AcceptedTask accept() noexcept;
  AcceptedTask(AcceptedTask&& other) noexcept : live_(std::exchange(other.live_, false)) {}
  AcceptedTask& operator=(AcceptedTask&& other) noexcept {
    if (this != &other) {
      release();
      live_ = std::exchange(other.live_, false);
    }
    return *this;
  }
  ~AcceptedTask() { release(); }

 private:
  void release() noexcept {
    if (live_) end();
    live_ = false;
  }
  void end() noexcept;
  bool live_ = false;
};

/// Shared by a submitter and the pool: lets a task that has not started be
/// cancelled, one that runs be interrupted, gives it a time limit, and tells
/// where it is in its life.
///
/// A task's state moves once along Pending -> Running -> Ended, or Pending ->
/// Cancelled; an interruption (interrupt(), the time limit, Pool::interrupt_all,
/// Pool::end_stuck_tasks) moves it Running -> Interrupting, and the worker then
/// ends it Interrupting -> Ended. Each step is one atomic exchange, so when the
/// task's code ends at the very moment it is interrupted, exactly one of the two
/// wins: an interruption that won is the task's outcome (Status::Interrupted)
/// even if its code finished before the exception reached it.
class TaskControl {
 public:
  enum class State : std::uint8_t { Pending, Running, Interrupting, Ended, Cancelled };
  /// Pending -> Cancelled; false if the task already started (or was cancelled).
  bool cancel() noexcept { return move(at(State::Pending), at(State::Cancelled)); }
  /// Pending -> Running; false if it was cancelled first.
  bool start() noexcept { return move(at(State::Pending), at(State::Running)); }
  State state() const noexcept { return phase_.load(std::memory_order_acquire).state; }

  /// Seconds a worker may run the task before it is interrupted (0, the
  /// default: no limit). Set it before submitting. A task made of many items
  /// (a map chunk) may start its limit again per item: restart_task_timeout().
  void set_timeout(double seconds) noexcept;
  double timeout() const noexcept { return static_cast<double>(timeout_ns_.load()) / 1e9; }

  /// Interrupts the task if a worker runs it: true if its outcome is now its
  /// interruption (Status::Interrupted, for the reason that came first: this
  /// call, or an earlier one, or its time limit), whatever its code does from
  /// here; false if nothing was decided: the task is pending (cancel() it), has
  /// ended, or was cancelled. An exception (a BaseException named
  /// interpool.TaskInterrupted) is raised in its Python code at the next
  /// bytecode; a call that released the GIL (time.sleep, I/O) is interrupted
  /// when it returns, an engine wait at once. The worker's interpreter serves
  /// on if that exception unwound the task; it is replaced by a fresh one if the
  /// task's code caught it and went on.
  bool interrupt() noexcept;
  /// Why the task was interrupted (None if it was not, or not yet).
  Interruption interruption() const noexcept { return phase_.load(std::memory_order_acquire).why; }

 private:
  friend class Pool;
  friend class Watchdog;
  friend void restart_task_timeout() noexcept;
  // The state and, from Interrupting on, why: one atomic, so that the reason
  // is known with the state that decided the outcome.
  struct Phase {
    State state;
    Interruption why;  // None until Interrupting
  };
  static constexpr Phase at(State state) noexcept { return Phase{state, Interruption::None}; }
  bool move(Phase from, Phase to) noexcept {
    return phase_.compare_exchange_strong(from, to, std::memory_order_acq_rel);
  }
  // Running -> Interrupting for `why` (the first reason wins); tells the
  // watchdog unless it is the caller. False if the task was not Running.
  bool request(Interruption why, bool tell_watchdog = true) noexcept;
  // In the worker, once the task's code returned: Running or Interrupting ->
  // Ended. Returns why it was interrupted (None: its own outcome stands).
  Interruption end() noexcept;

  std::atomic<Phase> phase_{at(State::Pending)};
  std::atomic<bool> delivered_{false};  // raised in the worker
  std::atomic<std::int64_t> timeout_ns_{0};
  std::atomic<std::int64_t> deadline_ns_{0};  // steady clock, while running with a timeout
  std::atomic<Watchdog*> watchdog_{nullptr};  // of the pool that accepted it
  std::shared_ptr<Watchdog> keep_watchdog_;   // keeps it alive (set before the task is queued)
};

/// In a worker, during a task with a timeout: starts its time limit again.
/// Does nothing elsewhere.
void restart_task_timeout() noexcept;

}  // namespace interpool
