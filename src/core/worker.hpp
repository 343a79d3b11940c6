// A worker: one native thread that owns one sub-interpreter for its whole life.
#pragma once

#include <exception>
#include <functional>
#include <interpool/signal.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "core/fork.hpp"
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
///   its own thread before running `body`: a thread cannot join itself;
/// - its thread is named `thread_name` (see worker_thread_name()) where the OS
///   shows thread names, cut as os_thread_name() does, before the interpreter
///   is made.
class Worker {
 public:
  using Body = std::function<void(Worker&)>;
  /// Told when the interpreter could not be created (nobody may be waiting).
  using OnFailure = std::function<void(std::exception_ptr)>;

  explicit Worker(Body body, OnFailure on_failure = {}, std::unique_ptr<Worker> predecessor = {},
                  std::string thread_name = {});
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker();

  void wait_ready();
  void join();
  /// Id of the worker's interpreter (-1 until ready).
  std::int64_t interpreter_id() const noexcept { return interpreter_id_.load(); }
  /// The worker's interpreter state (nullptr until ready, and after it ended).
  PyInterpreterState* interpreter_state() const noexcept { return state_.load(); }

  /// On a worker's thread, the name it was given (in full, even where the OS
  /// shows it cut); empty on any other thread.
  static const std::string& current_thread_name() noexcept;

  /// From `body`: threads of the interpreter outlive the worker, so it is not
  /// closed (which would wait for them) when `body` returns but handed to
  /// ThreadsLeft, and join() need not wait for those threads.
  void leave_interpreter_to_its_threads() noexcept { leave_to_threads_ = true; }

 private:
  void run(Body body, OnFailure on_failure, std::unique_ptr<Worker> predecessor,
           std::string thread_name);

  std::atomic<std::int64_t> interpreter_id_{-1};
  std::atomic<PyInterpreterState*> state_{nullptr};
  std::atomic<bool> ready_{false};
  bool leave_to_threads_ = false;  // written and read on the worker's thread
  Signal ready_signal_;
  std::exception_ptr failure_;
  // Counted before the thread starts and until it is joined (declared first,
  // destroyed after the join in ~Worker).
  ForkSensitive alive_ = ForkSensitive::count();
  std::thread thread_;
};

/// The name of a pool's index-th worker thread: "<prefix>_<index>" (the form of
/// concurrent.futures' thread names), the prefix being "interpool" when empty.
std::string worker_thread_name(std::string_view prefix, std::size_t index);

/// `name` as the OS shows it, where names are limited to `limit` bytes: a name
/// too long keeps its last "_<index>" whole and loses the end of what comes
/// before, cut between UTF-8 characters.
std::string os_thread_name(std::string_view name, std::size_t limit = 15);

}  // namespace interpool
