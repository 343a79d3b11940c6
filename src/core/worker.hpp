// A worker: one native thread that owns one sub-interpreter for its whole life.
#pragma once

#include <exception>
#include <functional>
#include <interpool/signal.hpp>
#include <memory>
#include <mutex>
#include <thread>

#include "core/interpreter.hpp"

namespace interpool {

/// Contract:
/// - the interpreter is created, used and destroyed on the worker's own thread,
///   which stays inside it (one thread state) until `body` returns;
/// - `body` runs with the worker interpreter's GIL held; it must release the GIL
///   around blocking waits (GilRelease) and return when asked to stop;
/// - wait_ready() blocks (releasing the caller's GIL) until the interpreter
///   exists, and rethrows a creation failure;
/// - join() (and the destructor) wait for `body` to return and the interpreter
///   to be destroyed, releasing the caller's GIL meanwhile;
/// - a worker given a `predecessor` (one it replaces) joins and destroys it on
///   its own thread before running `body`: a thread cannot join itself.
class Worker {
 public:
  using Body = std::function<void(Worker&)>;
  /// Told when the interpreter could not be created (nobody may be waiting).
  using OnFailure = std::function<void(std::exception_ptr)>;

  explicit Worker(Body body, OnFailure on_failure = {}, std::unique_ptr<Worker> predecessor = {});
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker();

  void wait_ready();
  void join();
  /// Id of the worker's interpreter (-1 until ready).
  std::int64_t interpreter_id() const noexcept { return interpreter_id_.load(); }
  /// The worker's interpreter state (nullptr until ready, and after it ended).
  PyInterpreterState* interpreter_state() const noexcept { return state_.load(); }

 private:
  void run(Body body, OnFailure on_failure, std::unique_ptr<Worker> predecessor);

  std::atomic<std::int64_t> interpreter_id_{-1};
  std::atomic<PyInterpreterState*> state_{nullptr};
  std::atomic<bool> ready_{false};
  Signal ready_signal_;
  std::exception_ptr failure_;
  std::thread thread_;
};

}  // namespace interpool
