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
#include <thread>
#include <vector>

namespace interpool {

/// Where a worker runs tasks: its interpreter and thread, the exception class
/// raised there to interrupt a task (an object of that interpreter), and the
/// task it runs now.
/// Contract: made and ended by the worker, on its thread, inside its
/// interpreter; `current` changes only while the worker holds that
/// interpreter's GIL; the interpreter stays alive while `pins` > 0.
struct WorkerSite {
  PyInterpreterState* interp = nullptr;
  unsigned long thread_id = 0;
  PyObject* interrupt_type = nullptr;
  std::mutex mutex;  // guards current
  std::shared_ptr<TaskControl> current;
  std::atomic<int> pins{0};
  std::atomic<bool> closing{false};
  Signal unpinned;

  /// In the worker, with its GIL: makes the site (and its exception class).
  /// Throws PythonErrorSet if the class cannot be made.
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

  /// In the worker, with its GIL, around running `task`: begin_task makes it the
  /// site's current task and starts its time limit; end_task clears it and, if
  /// an interruption was raised, turns the outcome Interrupted (when the task
  /// ended with it) and returns true: the worker's interpreter must be replaced.
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
};

/// Steady-clock nanoseconds (the clock of TaskControl deadlines).
std::int64_t steady_ns() noexcept;

}  // namespace interpool
