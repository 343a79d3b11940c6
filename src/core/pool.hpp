// A pool of workers running Python functions named by (module, qualified name).
#pragma once

#include <cstddef>
#include <functional>
#include <future>
#include <interpool/channel.hpp>
#include <interpool/error.hpp>
#include <interpool/value.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/worker.hpp"

namespace interpool {

/// A function as workers find it: imported from `module`, then attributes
/// along `qualname` ("Class.method"). Resolved once per worker and cached.
struct FunctionRef {
  std::string module;
  std::string qualname;
  friend bool operator==(const FunctionRef&, const FunctionRef&) = default;
};

/// A call of `function(*args, **kwargs)`; args is a Tuple, kwargs a Dict.
struct Call {
  FunctionRef function;
  Value args = Tuple{};
  Value kwargs = Dict{};
};

/// How a task ended.
struct Outcome {
  enum class Status : std::uint8_t { Ok, Error, Cancelled, Broken };
  Status status = Status::Ok;
  Value value;      ///< the result, when Ok
  ErrorInfo error;  ///< the exception, when Error; the cause, when Broken

  static Outcome ok(Value v) { return {Status::Ok, std::move(v), {}}; }
  static Outcome failed(ErrorInfo e) { return {Status::Error, {}, std::move(e)}; }
  static Outcome cancelled() { return {Status::Cancelled, {}, {}}; }
  static Outcome broken(ErrorInfo e) { return {Status::Broken, {}, std::move(e)}; }
};

/// Shared by a submitter and the pool: lets a task that has not started be
/// cancelled, and tells whether it is running.
class TaskControl {
 public:
  enum class State : std::uint8_t { Pending, Running, Cancelled };
  /// Pending -> Cancelled; false if the task already started (or was cancelled).
  bool cancel() noexcept { return move(State::Pending, State::Cancelled); }
  /// Pending -> Running; false if it was cancelled first.
  bool start() noexcept { return move(State::Pending, State::Running); }
  State state() const noexcept { return state_.load(std::memory_order_acquire); }

 private:
  bool move(State from, State to) noexcept {
    return state_.compare_exchange_strong(from, to, std::memory_order_acq_rel);
  }
  std::atomic<State> state_{State::Pending};
};

/// Called exactly once per accepted task, on whatever thread ends it (a worker,
/// or the thread that cancels). It must not touch Python objects.
using Completion = std::function<void(Outcome)>;

struct PoolOptions {
  /// Number of workers; 0 means the number of CPUs this process may use.
  std::size_t workers = 0;
  /// Replaces each worker's sys.path when not empty.
  std::vector<std::string> sys_path;
  /// Run in each worker before its first task. If one fails the pool is broken:
  /// pending and later tasks end with Status::Broken and that error.
  std::vector<Call> initializers;
  /// After this many tasks a worker's interpreter is replaced by a fresh one
  /// (0: never).
  std::size_t max_tasks_per_worker = 0;
};

/// The pool was shut down: no new task is accepted.
class PoolClosed : public Error {
 public:
  PoolClosed() : Error("cannot submit: the pool has been shut down") {}
};

/// A worker's initializer failed: the pool accepts no task.
class PoolBroken : public Error {
 public:
  explicit PoolBroken(ErrorInfo cause)
      : Error("the pool is broken: a worker initializer raised " + cause.type_name() + ": " +
              cause.message),
        cause_(std::move(cause)) {}
  const ErrorInfo& cause() const noexcept { return cause_; }

 private:
  ErrorInfo cause_;
};

/// Number of CPUs this process may run on.
std::size_t usable_cpus() noexcept;

/// Contract:
/// - the constructor returns when every worker's interpreter exists (created
///   in parallel), releasing the caller's GIL meanwhile; creation failure throws;
/// - submit() may be called from any thread; every accepted task's Completion
///   runs exactly once: Ok, Error, Cancelled (shutdown with cancel_pending) or Broken;
/// - a task given a TaskControl that is cancelled before a worker takes it ends
///   as Cancelled without running;
/// - close() stops accepting tasks without waiting; join() waits for the
///   workers to finish, releasing the caller's GIL; shutdown() is both, and the
///   destructor calls it. Tasks already accepted still run unless cancelled.
class Pool {
 public:
  explicit Pool(PoolOptions options = {});
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  ~Pool();

  /// One task of a batch: what to call, and what to tell when it ends.
  struct Job {
    Call call;
    Completion done;
    std::shared_ptr<TaskControl> control;
  };

  /// Throws PoolClosed or PoolBroken if the task cannot be accepted.
  void submit(Call call, Completion done, std::shared_ptr<TaskControl> control = nullptr);
  /// Accepts every job at once (one lock, one wake-up): cheaper per task than
  /// submitting one by one. Throws PoolClosed or PoolBroken, accepting none.
  void submit_all(std::vector<Job> jobs);
  std::future<Outcome> submit(Call call);

  /// Stops accepting tasks; with cancel_pending, tasks not yet started end as
  /// Cancelled. Does not wait. Idempotent.
  void close(bool cancel_pending = false);
  /// Waits until every worker has ended (after close()).
  void join();
  void shutdown(bool cancel_pending = false) {
    close(cancel_pending);
    join();
  }

  std::size_t size() const;
  /// The initializer error that broke the pool, if any.
  std::optional<ErrorInfo> broken() const;

 private:
  using Task = Job;
  std::unique_ptr<Worker> start_worker(std::unique_ptr<Worker> predecessor);
  void work(Worker& worker);
  bool replace(Worker& worker);
  void mark_broken(ErrorInfo cause);

  PoolOptions options_;
  Channel<Task> tasks_;
  mutable std::mutex mutex_;  // guards broken_ and workers_
  std::optional<ErrorInfo> broken_;
  std::atomic<bool> is_broken_{false};
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace interpool
