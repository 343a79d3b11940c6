// A pool of workers running Python functions named by (module, qualified name).
//
// The engine's pool, shared by both faces: the Python extension submits Calls
// with Completions; C++ programs use the typed layer (submit(module, function,
// args...) -> std::future<Value>, map). Each worker is a native thread that owns
// one sub-interpreter; its internals stay in src/core.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <initializer_list>
#include <interpool/error.hpp>
#include <interpool/value.hpp>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace interpool {

/// Cancels, interrupts or gives a time limit to one task: the engine's
/// (src/core/task_control.hpp), which the Python face passes to submit().
class TaskControl;

/// A function as workers find it: imported from `module`, then attributes
/// along `qualname` ("Class.method"). Resolved once per worker and cached.
struct FunctionRef {
  std::string module{};
  std::string qualname{};
  friend bool operator==(const FunctionRef&, const FunctionRef&) = default;
};

/// A call of `function(*args, **kwargs)`; args is a Tuple, kwargs a Dict.
struct Call {
  FunctionRef function{};
  Value args = Tuple{};
  Value kwargs = Dict{};
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

/// A task was cancelled before it started (shutdown with cancel_pending).
class TaskCancelled : public Error {
 public:
  TaskCancelled() : Error("the task was cancelled before it started") {}
};

/// Why a running task was interrupted.
enum class Interruption : std::uint8_t {
  None,
  Timeout,  ///< its time limit passed
  Stopped,  ///< TaskControl::interrupt or Pool::interrupt_all
  Stuck,    ///< asleep in an engine wait nothing could end (Pool::end_stuck_tasks)
  Exited,   ///< it ended its worker itself (os._exit in an interpool.Executor's worker)
};

/// A running task was interrupted (TaskControl::interrupt, Pool::interrupt_all,
/// or its timeout). where() holds the worker's traceback at that moment.
class TaskInterrupted : public Error {
 public:
  explicit TaskInterrupted(ErrorInfo where) : Error(where.message), where_(std::move(where)) {}
  const ErrorInfo& where() const noexcept { return where_; }

 private:
  ErrorInfo where_;
};

/// How a task ended.
struct Outcome {
  enum class Status : std::uint8_t { Ok, Error, Cancelled, Broken, Interrupted };
  Status status = Status::Ok;
  Value value;      ///< the result, when Ok
  ErrorInfo error;  ///< the exception, when Error; the cause, when Broken; when
                    ///< Interrupted, the reason (message) and the traceback
  Interruption interruption = Interruption::None;  ///< why, when Interrupted

  static Outcome ok(Value v) { return {Status::Ok, std::move(v), {}}; }
  static Outcome failed(ErrorInfo e) { return {Status::Error, {}, std::move(e)}; }
  static Outcome cancelled() { return {Status::Cancelled, {}, {}}; }
  static Outcome broken(ErrorInfo e) { return {Status::Broken, {}, std::move(e)}; }
  static Outcome interrupted(Interruption why, ErrorInfo where) {
    return {Status::Interrupted, {}, std::move(where), why};
  }

  /// The value when Ok; otherwise throws RemoteError (the function raised;
  /// IncompatibleModule, a RemoteError, for an import the interpreter refused),
  /// TaskCancelled, TaskInterrupted or PoolBroken.
  Value result() && {
    switch (status) {
      case Status::Ok:
        return std::move(value);
      case Status::Error:
        if (!error.refused_module.empty()) throw IncompatibleModule(std::move(error));
        throw RemoteError(std::move(error));
      case Status::Cancelled:
        throw TaskCancelled();
      case Status::Interrupted:
        throw TaskInterrupted(std::move(error));
      case Status::Broken:
        break;
    }
    throw PoolBroken(std::move(error));
  }
};

/// Called exactly once per accepted task, on whatever thread ends it (a worker,
/// or the thread that cancels). It must not touch Python objects.
using Completion = std::function<void(Outcome)>;

/// Keyword arguments of a typed submit: pass them as any argument,
/// `pool.submit("m", "f", 1, Kwargs{{"sep", ","}})`.
struct Kwargs {
  std::vector<std::pair<std::string, Value>> items;
  Kwargs() = default;
  Kwargs(std::initializer_list<std::pair<std::string, Value>> list) : items(list) {}
};

/// `Pool pool{{.workers = 2}};` — an aggregate, `workers` first. Every member
/// has a default initializer, so designated initializers may leave any out
/// (without -Wmissing-field-initializers warnings).
struct PoolOptions {
  /// Number of workers; 0 means the number of CPUs this process may use.
  std::size_t workers = 0;
  /// Replaces each worker's sys.path when not empty (otherwise workers start
  /// with the path Python was configured with, e.g. RuntimeOptions::module_paths).
  std::vector<std::string> sys_path{};
  /// Run in each worker before its first task; what they return is dropped. If
  /// one fails the pool is broken:
  /// pending and later tasks end with Status::Broken and that error.
  std::vector<Call> initializers{};
  /// After this many tasks a worker's interpreter is replaced by a fresh one
  /// (0: never).
  std::size_t max_tasks_per_worker = 0;
  /// Worker threads are named "<prefix>_<i>" (i from 0; "interpool" when empty)
  /// where the OS shows thread names: the OS's limit (15 bytes on Linux) keeps
  /// "_<i>" and cuts the prefix. A replacement worker takes its slot's name.
  std::string thread_name_prefix{};
};

/// Contract:
/// - Python must be running (an interpool::Runtime, or the host's own
///   Py_Initialize): otherwise the constructor throws InterpreterError;
/// - the constructor returns when every worker's interpreter exists (created
///   in parallel), releasing the caller's GIL meanwhile; creation failure throws;
/// - submit() and map() may be called from any number of threads at once; every
///   accepted task's Completion runs exactly once: Ok, Error, Cancelled
///   (shutdown with cancel_pending) or Broken;
/// - a task given a TaskControl that is cancelled before a worker takes it ends
///   as Cancelled without running;
/// - close() stops accepting tasks without waiting; join() waits for the
///   workers to finish, releasing the caller's GIL; shutdown() is both, and the
///   destructor calls it (and never throws). Tasks already accepted still run
///   unless cancelled;
/// - a Runtime that finalizes Python first shuts down every pool still alive
///   (shutdown_all); such a pool then refuses tasks with PoolClosed;
/// - in a child forked while pools or interpreters were alive (their threads
///   stayed in the parent), the constructor and submit throw UsedAfterFork, and
///   close, join, shutdown, shutdown_all and the destructor return at once.
class Pool {
 public:
  /// The most workers a pool starts (each is a thread and an interpreter);
  /// more is refused with InterpreterError.
  static constexpr std::size_t kMostWorkers = std::size_t{1} << 14;

  explicit Pool(PoolOptions options = {});
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  /// Not noexcept: destroyed on a thread of Python's that takes the GIL back
  /// after Python began to finalize, the thread ends there (CPython's doing).
  ~Pool() noexcept(false);

  // -- typed layer, for C++ programs -------------------------------------------

  /// Calls module.function(args...) on a worker; each argument becomes a Value
  /// (see convert.hpp), a Kwargs argument gives keyword arguments. The future
  /// holds the result, or throws RemoteError (the function raised), PoolBroken
  /// or TaskCancelled. `function` may be a qualified name ("Class.method").
  /// Throws PoolClosed or PoolBroken if the task cannot be accepted.
  template <class... A>
  std::future<Value> submit(std::string module, std::string function, A&&... args);

  /// One task per item of `items`, calling module.function(item), accepted all
  /// at once; the futures are in the order of the items.
  template <std::ranges::input_range R>
  std::vector<std::future<Value>> map_async(std::string module, std::string function, R&& items);

  /// map_async, then waits: the results in the order of the items. Throws the
  /// first failure in that order (the other tasks still run to the end).
  template <std::ranges::input_range R>
  std::vector<Value> map(std::string module, std::string function, R&& items);

  // -- engine layer --------------------------------------------------------------

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
  /// True on the thread of one of this pool's workers: in a task, a
  /// completion, or code a task runs in another interpreter. Waiting there for
  /// the pool to end (join) would wait for that very task.
  bool runs_on_this_thread() const noexcept;
  /// Interrupts every running task that was submitted with a TaskControl (see
  /// TaskControl::interrupt); returns how many.
  std::size_t interrupt_all() noexcept;
  /// The initializer error that broke the pool, if any.
  std::optional<ErrorInfo> broken() const;

  /// Shuts down every Pool alive in the process (accepted tasks run to the end)
  /// and returns how many. A Runtime calls it before it finalizes Python. The
  /// interpreters of workers that threads of a task outlived (the task failed,
  /// its worker was replaced) are closed too once those threads have ended;
  /// the others are closed while Python finalizes, those threads abandoned
  /// (they never run Python again), so that the program does not wait for them.
  static std::size_t shutdown_all() noexcept;

  /// For the end of a program, when no thread but the tasks themselves can wake
  /// them any more: from now on, whenever every task that a worker of any Pool
  /// runs (with a TaskControl, as all Python executor tasks have) is asleep in
  /// an untimed engine wait (Queue get/put, Lock, Event, Semaphore, Barrier) that
  /// nothing has notified since, and the tasks still queued (if any) cannot
  /// start because every worker runs one of those, none of them can ever
  /// progress: the running ones are interrupted (Interruption::Stuck), and each
  /// queued task then gets its turn. Irreversible, process-wide.
  static void end_stuck_tasks() noexcept;

 private:
  struct Impl;  // src/core/pool.cpp: the tasks, the workers, the watchdog

  // Settles `promise` with a task's outcome (its value, or the exception).
  static Completion settle(std::shared_ptr<std::promise<Value>> promise) {
    return [promise = std::move(promise)](Outcome out) {
      try {
        promise->set_value(std::move(out).result());
      } catch (...) {
        promise->set_exception(std::current_exception());
      }
    };
  }
  template <class... A>
  static Call make_call(std::string module, std::string function, A&&... args);
  // ~Pool on one of its own workers: hands the ending to a thread of its own.
  bool orphan() noexcept;

  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------
// Typed layer
// ---------------------------------------------------------------------------

template <class... A>
Call Pool::make_call(std::string module, std::string function, A&&... args) {
  Tuple positional;
  Dict keywords;
  positional.items.reserve(sizeof...(A));
  static_assert(((std::is_same_v<std::remove_cvref_t<A>, Kwargs> ||
                  std::is_constructible_v<Value, A&&>)&&...),
                "an argument of submit() does not convert to interpool::Value: see "
                "interpool/convert.hpp, or specialize interpool::Convert<T>");
  [[maybe_unused]] auto add = [&](auto&& arg) {
    if constexpr (std::is_same_v<std::remove_cvref_t<decltype(arg)>, Kwargs>) {
      for (auto& [name, value] : arg.items) keywords.items.emplace_back(Value(name), value);
    } else {
      positional.items.emplace_back(std::forward<decltype(arg)>(arg));
    }
  };
  (add(std::forward<A>(args)), ...);
  return Call{FunctionRef{std::move(module), std::move(function)}, Value(std::move(positional)),
              Value(std::move(keywords))};
}

template <class... A>
std::future<Value> Pool::submit(std::string module, std::string function, A&&... args) {
  auto promise = std::make_shared<std::promise<Value>>();
  std::future<Value> future = promise->get_future();
  submit(make_call(std::move(module), std::move(function), std::forward<A>(args)...),
         settle(std::move(promise)));
  return future;
}

template <std::ranges::input_range R>
std::vector<std::future<Value>> Pool::map_async(std::string module, std::string function,
                                                R&& items) {
  std::vector<Job> jobs;
  std::vector<std::future<Value>> futures;
  if constexpr (std::ranges::sized_range<R>) {
    jobs.reserve(std::ranges::size(items));
    futures.reserve(std::ranges::size(items));
  }
  for (auto&& item : items) {
    auto promise = std::make_shared<std::promise<Value>>();
    futures.push_back(promise->get_future());
    jobs.push_back(
        Job{make_call(module, function, std::forward<decltype(item)>(item)), settle(promise), {}});
  }
  submit_all(std::move(jobs));
  return futures;
}

template <std::ranges::input_range R>
std::vector<Value> Pool::map(std::string module, std::string function, R&& items) {
  std::vector<std::future<Value>> futures =
      map_async(std::move(module), std::move(function), std::forward<R>(items));
  std::vector<Value> out;
  out.reserve(futures.size());
  for (auto& f : futures) out.push_back(f.get());
  return out;
}

}  // namespace interpool
