#include "core/pool.hpp"

#include <cxxabi.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <interpool/channel.hpp>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/busy_thread.hpp"
#include "core/py_value.hpp"
#include "core/runner.hpp"
#include "core/watchdog.hpp"

namespace interpool {

// ---------------------------------------------------------------------------
// Live pools
// ---------------------------------------------------------------------------

namespace {

// Every live Pool, so that a Runtime can shut them down before Python
// finalizes. A pool being shut down by shutdown_all() is pinned: its destructor
// waits for the pin to go. A pool whose destructor runs stays listed, `ending`,
// until it has joined its workers and its thread has the GIL back (see ~Pool).
// Never destroyed: pools may end during static destruction.
struct LivePools {
  struct Entry {
    std::uint64_t serial;
    int pins = 0;
    bool ending = false;
  };
  std::mutex mutex;
  std::condition_variable unpinned;
  std::unordered_map<Pool*, Entry> pools;
  std::uint64_t next_serial = 0;
};

LivePools& live_pools() {
  static LivePools* pools = new LivePools;
  return *pools;
}

}  // namespace

// ---------------------------------------------------------------------------
// Pool
// ---------------------------------------------------------------------------

// What a Pool is made of; the Pool is a handle on it. Workers and the
// watchdog know it, never the Pool object.
struct Pool::Impl {
  /// A job the pool accepted; `accepted` counts it until the Task ends (after
  /// its completion ran), for end_stuck_tasks.
  struct Task {
    Call call;
    Completion done;
    std::shared_ptr<TaskControl> control;
    AcceptedTask accepted;
  };

  explicit Impl(PoolOptions options)
      : options_(std::move(options)), watchdog_(std::make_shared<Watchdog>()) {}

  std::unique_ptr<Worker> start_worker(std::size_t index, std::unique_ptr<Worker> predecessor);
  void work(Worker& worker);
  bool replace(Worker& worker);
  void mark_broken(ErrorInfo cause);
  void watch(TaskControl& control);
  std::optional<ErrorInfo> broken() const;
  std::size_t size() const;
  void submit(Call call, Completion done, std::shared_ptr<TaskControl> control);
  void submit_all(std::vector<Job> jobs);
  void close(bool cancel_pending);
  void join();
  // True on one of its workers' threads (a task's completion runs there).
  bool runs_on_this_thread() const;

  PoolOptions options_;
  Channel<Task> tasks_;
  mutable std::mutex mutex_;  // guards broken_, workers_ and joining_
  std::optional<ErrorInfo> broken_;
  std::atomic<bool> is_broken_{false};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::size_t joining_ = 0;  // join() calls under way; joined_ tells when one ends
  std::condition_variable joined_;
  std::shared_ptr<Watchdog> watchdog_;
};

std::size_t Pool::shutdown_all() noexcept {
  if (forked_while_running()) return 0;  // every pool listed is the parent's
  LivePools& live = live_pools();
  std::unordered_set<std::uint64_t> done;  // serials, not addresses: an address may be reused
  for (;;) {
    Pool* pool = nullptr;
    Impl* impl = nullptr;  // read under the lock: the Pool may end meanwhile (see ~Pool)
    std::uint64_t serial = 0;
    {
      std::lock_guard lock(live.mutex);
      for (auto& [p, entry] : live.pools) {
        if (!entry.ending && done.insert(entry.serial).second) {
          pool = p;
          impl = p->impl_.get();
          serial = entry.serial;
          ++entry.pins;
          break;
        }
      }
    }
    if (!pool) {
      // Pools that other threads are destroying: wait until they are gone, so
      // that no worker thread is left when the caller finalizes Python.
      GilRelease unlocked;
      std::unique_lock lock(live.mutex);
      live.unpinned.wait(lock, [&] {
        return std::none_of(live.pools.begin(), live.pools.end(),
                            [](const auto& p) { return p.second.ending; });
      });
      lock.unlock();
      // The interpreters of workers that threads of a task outlived: closed
      // now if those have ended, else without them while Python finalizes.
      ThreadsLeft::at_exit();
      return done.size();
    }
    try {
      impl->close(false);
      impl->join();
    } catch (...) {
      // shutdown() only joins threads; nothing is left to do if that fails.
    }
    {
      std::lock_guard lock(live.mutex);
      // By serial: a pool orphaned meanwhile is listed under another key.
      for (auto& [p, entry] : live.pools)
        if (entry.serial == serial) --entry.pins;
    }
    live.unpinned.notify_all();
  }
}

Pool::Pool(PoolOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  refuse_if_forked("cannot start a Pool");
  if (!Py_IsInitialized())
    throw InterpreterError(
        "cannot start a Pool: Python is not running (create an interpool::Runtime first)");
  Impl& p = *impl_;
  std::size_t n = p.options_.workers ? p.options_.workers : usable_cpus();
  if (n > kMostWorkers)
    throw InterpreterError(
        "PoolOptions::workers is " + std::to_string(n) + ": a pool starts at most " +
        std::to_string(kMostWorkers) +
        " workers (each is a thread and an interpreter); 0 starts one per usable "
        "CPU");
  std::vector<Worker*> started;
  {
    std::lock_guard lock(p.mutex_);
    p.workers_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) p.workers_.push_back(p.start_worker(i, nullptr));
    for (auto& w : p.workers_) started.push_back(w.get());
  }
  try {
    for (Worker* w : started) w->wait_ready();
  } catch (...) {
    shutdown(false);
    throw;
  }
  LivePools& live = live_pools();
  std::lock_guard lock(live.mutex);
  live.pools.emplace(this, LivePools::Entry{live.next_serial++});
}

Pool::~Pool() noexcept(false) {
  if (forked_while_running()) {
    // A copy of the parent's pool: its workers and watchdog threads are not in
    // this process, so nothing may join them, and the locks they held may stay
    // held. Kept, never joined.
    for (auto& w : impl_->workers_) (void)w.release();
    new std::shared_ptr<Watchdog>(std::move(impl_->watchdog_));
    return;
  }
  LivePools& live = live_pools();
  if (impl_->runs_on_this_thread() && orphan()) return;
  // Leaves the registry last: only with this thread's GIL back may
  // shutdown_all()'s caller go on to finalize Python, since CPython ends a
  // thread that takes a GIL after that (a daemon thread of the main interpreter
  // may be the one dropping a pool's last reference). Also if CPython ends this
  // thread on the way: then nothing is left for shutdown_all() to wait for.
  struct Unlist {
    LivePools& live;
    Pool* pool;
    ~Unlist() {
      {
        std::lock_guard lock(live.mutex);
        live.pools.erase(pool);
      }
      live.unpinned.notify_all();
    }
  } unlist{live, this};
  // The GIL is released first: shutdown_all() may be joining this pool, and
  // nothing may wait for the GIL while holding the registry's lock.
  GilRelease unlocked;
  {
    std::unique_lock lock(live.mutex);
    live.unpinned.wait(lock, [&] {
      auto it = live.pools.find(this);
      return it == live.pools.end() || it->second.pins == 0;
    });
    if (auto it = live.pools.find(this); it != live.pools.end()) it->second.ending = true;
  }
  try {
    shutdown(false);
  } catch (...) {
    // Joining threads failed (e.g. resource exhaustion): never from a destructor.
  }
}

namespace {
// The pool whose work() runs on this thread (a worker's), for
// runs_on_this_thread: also while a join has taken the workers out of workers_.
thread_local const void* t_working_for = nullptr;
}  // namespace

bool Pool::Impl::runs_on_this_thread() const { return t_working_for == this; }

bool Pool::runs_on_this_thread() const noexcept { return impl_->runs_on_this_thread(); }

// ~Pool on one of its own workers (a task's completion released the pool's
// last owner): that worker cannot join itself. The pool stops taking tasks
// (those queued still run), and a thread of its own joins the workers, this
// one once the completion has returned, then frees the rest; until then
// shutdown_all() waits for it as for any pool being destroyed. False if that
// thread could not be started: the destructor then goes on as usual.
bool Pool::orphan() noexcept {
  LivePools& live = live_pools();
  std::shared_ptr<char> key;  // the pool's key from now on: an address no Pool has
  std::promise<Impl*> handed;
  std::thread reaper;
  try {
    key = std::make_shared<char>();
    reaper = std::thread([key, impl = handed.get_future()]() mutable {
      Impl* ending = impl.get();
      if (!ending) return;
      try {
        ending->join();
      } catch (...) {
        // Joining threads failed: nothing more to do.
      }
      LivePools& live = live_pools();
      {
        std::unique_lock lock(live.mutex);
        auto at = reinterpret_cast<Pool*>(key.get());
        live.unpinned.wait(lock, [&] {
          auto it = live.pools.find(at);
          return it == live.pools.end() || it->second.pins == 0;
        });
        live.pools.erase(at);
      }
      live.unpinned.notify_all();
      delete ending;
    });
    impl_->close(false);
  } catch (...) {
    if (reaper.joinable()) {
      handed.set_value(nullptr);
      reaper.detach();
    }
    return false;
  }
  {
    std::lock_guard lock(live.mutex);
    auto node = live.pools.extract(this);
    if (!node.empty()) {
      node.key() = reinterpret_cast<Pool*>(key.get());
      node.mapped().ending = true;
      live.pools.insert(std::move(node));
    }
  }
  handed.set_value(impl_.release());
  reaper.detach();
  return true;
}

std::unique_ptr<Worker> Pool::Impl::start_worker(std::size_t index,
                                                 std::unique_ptr<Worker> predecessor) {
  if (!predecessor) count_worker_slot(true);  // a successor takes its predecessor's
  return std::make_unique<Worker>(
      [this](Worker& w) { work(w); },
      [this](std::exception_ptr failure) {
        count_worker_slot(false);  // no interpreter: the slot ends
        std::string why = "a worker's interpreter could not be created";
        try {
          std::rethrow_exception(failure);
        } catch (const std::exception& e) {
          why = e.what();
        }
        mark_broken(ErrorInfo{"interpool", "InterpreterError", why, {}, {}, {}, {}, {}});
      },
      std::move(predecessor), worker_thread_name(options_.thread_name_prefix, index));
}

std::size_t Pool::size() const { return impl_->size(); }

std::size_t Pool::Impl::size() const {
  if (forked_while_running()) return 0;  // the workers are in the parent
  std::lock_guard lock(mutex_);
  return workers_.size();
}

// Puts a fresh worker in this one's slot; the new one joins this one. False if
// the pool is closing (this worker then carries on until the tasks run out).
bool Pool::Impl::replace(Worker& worker) {
  std::lock_guard lock(mutex_);
  if (tasks_.closed()) return false;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    if (workers_[i].get() == &worker) {
      workers_[i] = start_worker(i, std::move(workers_[i]));
      return true;
    }
  }
  return false;
}

namespace {

// A task that ended with one of these may have left its interpreter in a state
// nobody planned for (half-run finally blocks, a stack or heap at its limit):
// the worker is replaced by a fresh interpreter. The task still reports it.
bool leaves_doubtful_state(const Outcome& out) {
  if (out.status != Outcome::Status::Error || out.error.type_module != "builtins") return false;
  const std::string& t = out.error.type_qualname;
  return t == "SystemExit" || t == "KeyboardInterrupt" || t == "MemoryError" ||
         t == "RecursionError";
}

// Threads the task started and left running (threading knows them). An
// interpreter cannot end before its threads do, so the task fails (when it
// did not already), the threads are interrupted like a task, and the worker is
// replaced. False if there are none. With the worker's GIL.
bool stop_left_threads(Runner& runner, Outcome& out, PyObject* interrupt_type) {
  // The usual case, cheaply: no thread runs but the worker's own.
  if (Py_ssize_t running = runner.threads_running(); running == 0)
    return false;
  else if (running < 0)
    PyErr_Clear();
  PyObject* modules = PyImport_GetModuleDict();  // borrowed
  PyObject* threading = modules ? PyDict_GetItemString(modules, "threading") : nullptr;
  if (!threading) return false;  // no thread was started with threading
  PyObject* all = PyObject_CallMethod(threading, "enumerate", nullptr);
  PyObject* me = all ? PyObject_CallMethod(threading, "current_thread", nullptr) : nullptr;
  // Not the task's: the interpreter's "main thread" (in a sub-interpreter, an
  // object naming the process's main thread) and threads that entered from
  // outside, which threading calls dummies (the worker itself among them).
  PyObject* main = me ? PyObject_CallMethod(threading, "main_thread", nullptr) : nullptr;
  PyObject* dummy = main ? PyObject_GetAttrString(threading, "_DummyThread") : nullptr;
  std::vector<std::string> names;
  for (Py_ssize_t i = 0; dummy && i < PyList_GET_SIZE(all); ++i) {
    PyObject* t = PyList_GET_ITEM(all, i);
    if (t == me || t == main || PyObject_IsInstance(t, dummy) != 0) continue;
    PyObject* name = PyObject_GetAttrString(t, "name");
    PyObject* ident = name ? PyObject_GetAttrString(t, "ident") : nullptr;
    if (ident && PyLong_Check(ident)) {
      (void)PyThreadState_SetAsyncExc(PyLong_AsUnsignedLong(ident), interrupt_type);
      const char* text = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : nullptr;
      names.emplace_back(text ? text : "?");
    }
    Py_XDECREF(ident);
    Py_XDECREF(name);
    PyErr_Clear();
  }
  Py_XDECREF(dummy);
  Py_XDECREF(main);
  Py_XDECREF(me);
  Py_XDECREF(all);
  PyErr_Clear();
  if (names.empty()) return false;
  if (out.status == Outcome::Status::Ok) {
    // Data, which each face words: the engine speaks to no user.
    ErrorInfo left;
    left.type_module = "builtins";
    left.type_qualname = "RuntimeError";
    left.threads_left = std::move(names);
    out = Outcome::failed(std::move(left));
  }
  return true;
}

std::atomic<CompletionErrorReporter> g_completion_error_reporter{nullptr};

// Runs a task's Completion. One that throws goes to the face's reporter and
// is dropped: every other completion still runs, each once, and the worker
// serves on (an exception that left a worker's thread ended it, and the
// tasks queued for it never ran).
void complete(Completion& done, Outcome out) {
  try {
    done(std::move(out));
  } catch (const abi::__forced_unwind&) {
    throw;  // CPython ending this thread at finalization must go on
  } catch (...) {
    if (CompletionErrorReporter report = g_completion_error_reporter.load())
      report(std::current_exception());
  }
}

// runner.run, with a C++ error it throws (out of memory in the engine's own
// data) as the task's outcome: the task ends, its watch with it, and the
// worker serves on.
Outcome run_task(Runner& runner, const Call& call, Runner::Result keep = Runner::Result::Keep) {
  std::string why;
  try {
    return runner.run(call, keep);
  } catch (const std::bad_alloc&) {
    PyErr_Clear();
    return Outcome::failed(ErrorInfo{"builtins",
                                     "MemoryError",
                                     "interpool: out of memory while running the task",
                                     {},
                                     {},
                                     {},
                                     {},
                                     {}});
  } catch (const std::exception& e) {
    why = e.what();
  }
  PyErr_Clear();
  return Outcome::failed(
      ErrorInfo{"interpool", "InterpreterError", std::move(why), {}, {}, {}, {}, {}});
}

}  // namespace

void set_completion_error_reporter(CompletionErrorReporter report, bool replace) noexcept {
  if (replace) {
    g_completion_error_reporter.store(report);
  } else {
    CompletionErrorReporter none = nullptr;
    g_completion_error_reporter.compare_exchange_strong(none, report);
  }
}

void Pool::Impl::work(Worker& self) {
  struct Working {
    explicit Working(const void* pool) noexcept { t_working_for = pool; }
    ~Working() { t_working_for = nullptr; }
  } working{this};
  // The worker's slot ends with it, unless a successor takes it over.
  struct Slot {
    bool handed_over = false;
    ~Slot() {
      if (!handed_over) count_worker_slot(false);
    }
  } slot;
  Runner runner;
  if (!options_.sys_path.empty() && !runner.set_sys_path(options_.sys_path)) {
    mark_broken(capture_error());
    return;
  }
  // Where the watchdog finds this worker's running task; closed before the
  // interpreter ends, on every way out. Opened once sys.path is the pool's:
  // the face's exception class may need an import.
  std::shared_ptr<WorkerSite> site;
  try {
    site = WorkerSite::open();
  } catch (const PythonErrorSet&) {
    mark_broken(capture_error());
    return;
  }
  watchdog_->add(site);
  struct Closer {
    Watchdog& watchdog;
    WorkerSite& site;
    ~Closer() {
      watchdog.remove(&site);
      site.close();
    }
  } closer{*watchdog_, *site};
  for (const Call& init : options_.initializers) {
    Outcome out = run_task(runner, init, Runner::Result::Discard);
    if (out.status != Outcome::Status::Ok) {
      mark_broken(std::move(out.error));
      return;
    }
  }
  BusyThread busy;  // for Signal's spinning: this thread keeps a CPU when not waiting
  Task task;
  std::size_t ran = 0;
  bool fresh_needed = false;  // the last task left this interpreter in doubt: replace it
  for (;;) {
    // Take a task without releasing the GIL if one is there; block only when idle.
    WaitResult r = tasks_.try_get(task);
    if (r == WaitResult::Timeout) {
      GilRelease unlocked;
      r = tasks_.get(task, Deadline::never());
    }
    if (r != WaitResult::Ready) break;  // closed and empty
    Completion done = std::move(task.done);
    if (is_broken_.load(std::memory_order_acquire)) {
      complete(done, Outcome::broken(*broken()));
    } else if (task.control && !task.control->start()) {
      complete(done, Outcome::cancelled());
    } else {
      if (task.control) watchdog_->begin_task(*site, task.control);
      Outcome out = run_task(runner, task.call);
      fresh_needed = leaves_doubtful_state(out);  // judged before an interruption replaces `out`
      if (task.control) fresh_needed = Watchdog::end_task(*site, task.control, out) || fresh_needed;
      // An interruption that stopped a module's top-level code (the first
      // import of a library) leaves that module, and what it was setting up in
      // modules imported before it, half made, for every later task to meet.
      if (out.status == Outcome::Status::Interrupted && runner.failed_in_module_code())
        fresh_needed = true;
      if (stop_left_threads(runner, out, site->interrupt_type)) {
        // They may never end (a wait with no timeout): neither the replacement,
        // which joins this worker, nor the pool's shutdown waits for them.
        self.leave_interpreter_to_its_threads();
        fresh_needed = true;
      }
      complete(done, std::move(out));
      ++ran;
    }
    task = Task{};
    if (fresh_needed || (options_.max_tasks_per_worker && ran >= options_.max_tasks_per_worker)) {
      if (replace(self)) {
        slot.handed_over = true;
        return;
      }
      fresh_needed = false;  // the pool is closing: this worker serves to the end
    }
  }
}

void Pool::Impl::mark_broken(ErrorInfo cause) {
  {
    std::lock_guard lock(mutex_);
    if (!broken_) broken_ = std::move(cause);
  }
  is_broken_.store(true, std::memory_order_release);
  // Close first so that nothing slips in after the drain.
  tasks_.close();
  ErrorInfo info = *broken();
  for (Task& t : tasks_.drain()) complete(t.done, Outcome::broken(info));
}

std::optional<ErrorInfo> Pool::broken() const { return impl_->broken(); }

std::optional<ErrorInfo> Pool::Impl::broken() const {
  std::lock_guard lock(mutex_);
  return broken_;
}

void Pool::Impl::watch(TaskControl& control) {
  control.keep_watchdog_ = watchdog_;
  control.watchdog_.store(watchdog_.get(), std::memory_order_release);
}

void Pool::submit(Call call, Completion done, std::shared_ptr<TaskControl> control) {
  impl_->submit(std::move(call), std::move(done), std::move(control));
}

void Pool::Impl::submit(Call call, Completion done, std::shared_ptr<TaskControl> control) {
  refuse_if_forked("cannot submit a task");
  if (control) watch(*control);
  Task task{std::move(call), std::move(done), std::move(control), AcceptedTask::accept()};
  if (tasks_.put(task) != WaitResult::Ready) {
    if (auto cause = broken()) throw PoolBroken(std::move(*cause));
    throw PoolClosed();
  }
}

void Pool::submit_all(std::vector<Job> jobs) { impl_->submit_all(std::move(jobs)); }

void Pool::Impl::submit_all(std::vector<Job> jobs) {
  refuse_if_forked("cannot submit a task");
  std::vector<Task> tasks;
  tasks.reserve(jobs.size());
  for (Job& job : jobs) {
    if (job.control) watch(*job.control);
    tasks.push_back(Task{std::move(job.call), std::move(job.done), std::move(job.control),
                         AcceptedTask::accept()});
  }
  if (tasks_.put_all(tasks) != WaitResult::Ready) {
    if (auto cause = broken()) throw PoolBroken(std::move(*cause));
    throw PoolClosed();
  }
}

std::future<Outcome> Pool::submit(Call call) {
  auto promise = std::make_shared<std::promise<Outcome>>();
  std::future<Outcome> future = promise->get_future();
  submit(std::move(call), [promise](Outcome out) { promise->set_value(std::move(out)); });
  return future;
}

void Pool::close(bool cancel_pending) { impl_->close(cancel_pending); }

void Pool::Impl::close(bool cancel_pending) {
  if (forked_while_running()) return;  // nothing of it runs here
  {
    // Under the lock so that no worker is replaced after this point.
    std::lock_guard lock(mutex_);
    tasks_.close();
  }
  if (cancel_pending)
    for (Task& t : tasks_.drain()) complete(t.done, Outcome::cancelled());
}

void Pool::join() { impl_->join(); }

void Pool::Impl::join() {
  if (forked_while_running()) return;  // its workers are the parent's
  // Replacements started before close() sit in workers_ and join their predecessors.
  std::vector<std::unique_ptr<Worker>> ending;
  {
    std::lock_guard lock(mutex_);
    ending.swap(workers_);
    ++joining_;
  }
  ending.clear();  // joins each, releasing the caller's GIL
  if (tasks_.closed()) watchdog_->stop();
  // The interpreters of workers replaced with threads left: closed if those ended.
  (void)ThreadsLeft::close_ended();
  {
    std::lock_guard lock(mutex_);
    if (--joining_ == 0) {
      joined_.notify_all();
      return;
    }
  }
  // Another join() has the workers it took (an Executor's result thread, a
  // daemon, may be joining them as the exit hook joins every pool: were the
  // hook to go on, Python would finalize under them). Waited for, GIL
  // released, until that join has ended, with its thread's GIL back.
  GilRelease unlocked;
  std::unique_lock lock(mutex_);  // let go before the GIL is taken back
  joined_.wait(lock, [&] { return joining_ == 0; });
}

std::size_t Pool::interrupt_all() noexcept { return impl_->watchdog_->interrupt_all(); }

}  // namespace interpool
