// Interrupting running tasks: time limits, TaskControl::interrupt, Pool::interrupt_all.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <atomic>
#include <cstdint>
#include <interpool/pool.hpp>
#include <interpool/signal.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/fork.hpp"
#include "core/task_control.hpp"
#include "core/wait_hook.hpp"

namespace interpool {

/// The exception class raised in a task that interpool interrupts, as a face
/// gives it (engine rule 5: the engine makes no Python type). Called in each
/// worker as it opens, on its thread, holding its GIL: a new reference to an
/// exception class of that interpreter (a BaseException, so that `except
/// Exception:` in the task does not stop it), or nullptr with an error set.
using InterruptionClass = PyObject* (*)();
/// Sets it for the process. `replaced` gets the one it replaces (nullptr at
/// first), which the new one may fall back to, before the new one is seen.
void set_interruption_class(InterruptionClass make, InterruptionClass& replaced) noexcept;
/// set_interruption_class for a face that falls back to nothing.
void set_interruption_class(InterruptionClass make) noexcept;

/// Where a worker runs tasks: its interpreter and thread, the exception class
/// raised there to interrupt a task (an object of that interpreter, given by
/// the face) and its names, and the task it runs now.
/// Contract: made and ended by the worker, on its thread, inside its
/// interpreter; `current` changes only while the worker holds that
/// interpreter's GIL; the interpreter stays alive while `pins` > 0.
/// While a task runs, the site is its thread's WaitHook: an interruption
/// delivered to the task also ends an engine wait it sleeps in, and an untimed
/// wait is counted for Pool::end_stuck_tasks.
struct WorkerSite final : WaitHook {
  PyInterpreterState* interp = nullptr;
  unsigned long thread_id = 0;
  PyObject* interrupt_type = nullptr;
  std::string interrupt_module;    // interrupt_type.__module__
  std::string interrupt_qualname;  // interrupt_type.__qualname__
  std::mutex mutex;                // guards current
  std::shared_ptr<TaskControl> current;
  std::atomic<int> pins{0};
  std::atomic<bool> closing{false};
  Signal unpinned;

  // The engine wait the task sleeps in (guarded by wait_mutex).
  std::mutex wait_mutex;
  Signal* sleeping_on = nullptr;
  std::uint32_t sleeping_epoch = 0;
  bool wait_cancelled = false;  // the task's interruption was delivered
  bool counted_stuck = false;   // in the untimed waits end_stuck_tasks looks at
  // Why the running task ended its worker (Watchdog::end_worker_from_task), for
  // end_task. Written and read on the worker's thread only.
  std::string exit_message;

  bool enter(Signal& signal, std::uint32_t epoch, bool untimed) noexcept override;
  bool leave() noexcept override;
  /// On the interrupting thread, after the exception was set: wakes the task
  /// if it sleeps in an engine wait, and makes its later waits end at once.
  void cancel_wait() noexcept;

  /// In the worker, with its GIL: makes the site, with the face's exception
  /// class. Throws PythonErrorSet if there is none.
  static std::shared_ptr<WorkerSite> open();
  /// In the worker, with its GIL, before its interpreter ends: waits (GIL
  /// released) until no interrupter is inside, and drops the class.
  void close();
};

/// One per Pool: a thread, started on first need, that raises the interrupt
/// exception in the worker running a task whose interruption was asked for or
/// whose time limit passed. It enters the worker's interpreter with a thread
/// state of its own (engine rule 2), so that callers never wait for a worker.
class Watchdog {
 public:
  Watchdog() = default;
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  ~Watchdog() { stop(); }

  void add(std::shared_ptr<WorkerSite> site);
  void remove(const WorkerSite* site);
  /// Something changed (an interruption asked for, a timed task started):
  /// look again. Starts the thread on first call.
  void wake() noexcept;
  /// Asks every running task with a TaskControl to stop; how many.
  std::size_t interrupt_all() noexcept;
  /// Ends the thread (idempotent).
  void stop() noexcept;
  /// Asks `task` to stop for `why` (the first reason wins); false if asked before.
  static bool request(TaskControl& task, Interruption why) noexcept { return task.request(why); }

  /// In a worker, with its GIL: the running task ends its worker (the Python
  /// face's os._exit there). Raises the task's interruption exception here, with
  /// `message`, and returns true: the task ends as Interrupted (Exited), unless
  /// its code swallows the exception, and the worker's interpreter is replaced
  /// either way. False, and nothing raised, on a thread that runs no task.
  static bool end_worker_from_task(const char* message) noexcept;

  /// In the worker, with its GIL, around running `task`: begin_task makes it the
  /// site's current task and starts its time limit; end_task clears it, ends the
  /// task (TaskControl::end) and, if an interruption came first, makes the
  /// outcome Interrupted whatever the code did. True if the worker's interpreter
  /// must be replaced: the code caught the interruption and went on.
  void begin_task(WorkerSite& site, const std::shared_ptr<TaskControl>& task);
  static bool end_task(WorkerSite& site, const std::shared_ptr<TaskControl>& task, Outcome& out);

 private:
  void run();
  static void deliver(WorkerSite& site, const std::shared_ptr<TaskControl>& task);

  std::mutex mutex_;  // guards sites_, started_
  std::vector<std::shared_ptr<WorkerSite>> sites_;
  bool started_ = false;
  std::atomic<bool> stopping_{false};
  Signal signal_;
  std::thread thread_;
  ForkSensitive thread_alive_;  // while thread_ runs
};

/// A Pool's worker slot begins (`added`) or ends, for Pool::end_stuck_tasks:
/// counted while a worker can take tasks in it (a successor takes its
/// predecessor's slot over).
void count_worker_slot(bool added) noexcept;

/// In a worker, with the GIL, after an engine wait returned Interrupted: if the
/// task running on this thread was interrupted, sets its interruption
/// exception (instead of the pending asynchronous one) and returns true.
bool raise_task_interruption() noexcept;

/// Steady-clock nanoseconds (the clock of TaskControl deadlines).
std::int64_t steady_ns() noexcept;

}  // namespace interpool
