#include "core/watchdog.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <optional>

#include "core/interpreter.hpp"
#include "core/py_value.hpp"

namespace interpool {

std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------------------
// TaskControl
// ---------------------------------------------------------------------------

void TaskControl::set_timeout(double seconds) noexcept {
  std::int64_t ns = 0;
  if (seconds > 0) ns = seconds < 1e9 ? static_cast<std::int64_t>(seconds * 1e9) : 0;
  timeout_ns_.store(ns);
}

bool TaskControl::request(Interruption why, bool tell_watchdog) noexcept {
  if (!move(at(State::Running), Phase{State::Interrupting, why})) return false;
  if (Watchdog* w = watchdog_.load(std::memory_order_acquire); w && tell_watchdog) w->wake();
  return true;
}

bool TaskControl::interrupt() noexcept {
  // In a child forked while it ran, the task runs (if at all) in the parent.
  if (forked_while_running()) return false;
  // Lost to an earlier interruption that has not ended the task yet: that one
  // decided the outcome, which is an interruption all the same.
  return request(Interruption::Stopped) || state() == State::Interrupting;
}

Interruption TaskControl::end() noexcept {
  // A request may move Running -> Interrupting meanwhile, once: the loop then
  // ends the task with its reason. Lock-free, as requests come from noexcept
  // paths (the watchdog, end_stuck_tasks) that must not block on a worker.
  static_assert(std::atomic<Phase>::is_always_lock_free);
  Phase now = phase_.load(std::memory_order_acquire);
  while (
      !phase_.compare_exchange_weak(now, Phase{State::Ended, now.why}, std::memory_order_acq_rel)) {
  }
  return now.why;
}

namespace {
// The task a worker thread runs now (for restart_task_timeout), and its site.
thread_local TaskControl* running_here = nullptr;
thread_local WorkerSite* site_here = nullptr;

// Pool::end_stuck_tasks: how many tasks every Pool has accepted and not ended,
// and the sites whose task sleeps in an untimed engine wait.
struct StuckWatch {
  // Counted apart, on lines of their own: submitting threads write `accepted`,
  // workers `ended`, and neither steals the other's cache line for every task.
  alignas(64) std::atomic<std::size_t> accepted{0};
  alignas(64) std::atomic<std::size_t> ended{0};
  alignas(64) std::atomic<bool> on{false};
  // Tasks between Watchdog::begin_task and end_task (on a worker), and the
  // workers that can take a task: a queued task can start only if one of
  // those is not running a task.
  alignas(64) std::atomic<std::size_t> running{0};
  std::atomic<std::size_t> slots{0};

  // Tasks accepted and not ended; never less than the truth (`ended` is read
  // first), so a task that ends meanwhile cannot make others look stuck.
  std::size_t live() const noexcept {
    std::size_t gone = ended.load();
    return accepted.load() - gone;
  }
  std::mutex mutex;  // guards asleep
  std::vector<WorkerSite*> asleep;

  // With `mutex` held. The sites in `asleep` cannot leave their wait meanwhile
  // (leave() takes `mutex`), so their signals are alive.
  void check() noexcept {
    if (!on.load() || asleep.empty()) return;
    // Every task a worker runs sleeps with no deadline, and the tasks still
    // queued (if any) cannot start: every worker runs one of those.
    std::size_t run = running.load();
    if (asleep.size() != run) return;
    if (live() != run && run < slots.load()) return;
    // One notified since it fell asleep may find what it waits for: not stuck.
    for (WorkerSite* site : asleep) {
      std::lock_guard lock(site->wait_mutex);
      if (!site->sleeping_on || site->sleeping_on->epoch() != site->sleeping_epoch) return;
    }
    for (WorkerSite* site : asleep) {
      std::shared_ptr<TaskControl> task;
      {
        std::lock_guard lock(site->mutex);
        task = site->current;
      }
      if (task) Watchdog::request(*task, Interruption::Stuck);
    }
  }
};

// Never destroyed: tasks may still end while static objects are destroyed.
StuckWatch& stuck_watch() {
  static StuckWatch* watch = new StuckWatch;
  return *watch;
}
}  // namespace

AcceptedTask AcceptedTask::accept() noexcept {
  stuck_watch().accepted.fetch_add(1);
  AcceptedTask token;
  token.live_ = true;
  return token;
}
void AcceptedTask::end() noexcept {
  StuckWatch& watch = stuck_watch();
  watch.ended.fetch_add(1);
  if (watch.on.load()) {
    std::lock_guard lock(watch.mutex);
    watch.check();
  }
}

void count_worker_slot(bool added) noexcept {
  StuckWatch& watch = stuck_watch();
  if (added) {
    watch.slots.fetch_add(1);
    return;
  }
  watch.slots.fetch_sub(1);
  if (watch.on.load()) {  // one fewer worker may leave the queued tasks none to start on
    std::lock_guard lock(watch.mutex);
    watch.check();
  }
}

void Pool::end_stuck_tasks() noexcept {
  if (forked_while_running()) return;  // the tasks run in the parent
  StuckWatch& watch = stuck_watch();
  watch.on.store(true);
  std::lock_guard lock(watch.mutex);
  watch.check();
}

void restart_task_timeout() noexcept {
  TaskControl* task = running_here;
  if (!task) return;
  if (std::int64_t limit = task->timeout_ns_.load()) task->deadline_ns_.store(steady_ns() + limit);
}

// ---------------------------------------------------------------------------
// WorkerSite
// ---------------------------------------------------------------------------

namespace {
std::atomic<InterruptionClass> g_interruption_class{nullptr};

// The class's __module__ or __qualname__, or nullopt with an error set.
std::optional<std::string> name_of(PyObject* cls, const char* attribute) {
  PyObject* name = PyObject_GetAttrString(cls, attribute);
  if (!name) return std::nullopt;
  std::optional<std::string> out;
  if (PyUnicode_Check(name))
    out = to_utf8(name);
  else
    PyErr_Format(PyExc_TypeError, "the exception class's %s is not a str", attribute);
  Py_DECREF(name);
  return out;
}
}  // namespace

void set_interruption_class(InterruptionClass make, InterruptionClass& replaced) noexcept {
  InterruptionClass old = g_interruption_class.load();
  do replaced = old;  // (before a worker can see `make`, which may read it)
  while (!g_interruption_class.compare_exchange_weak(old, make));
}

void set_interruption_class(InterruptionClass make) noexcept {
  InterruptionClass replaced;
  set_interruption_class(make, replaced);
}

std::shared_ptr<WorkerSite> WorkerSite::open() {
  auto site = std::make_shared<WorkerSite>();
  site->interp = PyInterpreterState_Get();
  site->thread_id = PyThread_get_thread_ident();
  InterruptionClass make = g_interruption_class.load();
  if (!make) {
    PyErr_SetString(PyExc_RuntimeError,
                    "interpool: no exception class for interrupted tasks was given to the "
                    "engine (create an interpool::Runtime, or import interpool, first)");
    throw PythonErrorSet();
  }
  site->interrupt_type = make();
  if (!site->interrupt_type) throw PythonErrorSet();
  std::optional<std::string> module, qualname;
  if (!PyExceptionClass_Check(site->interrupt_type))
    PyErr_SetString(PyExc_TypeError, "interpool: the class for interrupted tasks is no exception");
  else if ((module = name_of(site->interrupt_type, "__module__")))
    qualname = name_of(site->interrupt_type, "__qualname__");
  if (!qualname) {
    Py_CLEAR(site->interrupt_type);
    throw PythonErrorSet();
  }
  site->interrupt_module = std::move(*module);
  site->interrupt_qualname = std::move(*qualname);
  return site;
}

void WorkerSite::close() {
  closing.store(true);
  for (;;) {
    std::uint32_t epoch = unpinned.epoch();
    if (pins.load() == 0) break;
    GilRelease unlocked;  // an interrupter inside waits for this interpreter's GIL
    (void)unpinned.wait(epoch, Deadline::never(), false);
  }
  Py_CLEAR(interrupt_type);
}

bool WorkerSite::enter(Signal& signal, std::uint32_t epoch, bool untimed) noexcept {
  {
    std::lock_guard lock(wait_mutex);
    if (wait_cancelled) return false;
    sleeping_on = &signal;
    sleeping_epoch = epoch;
    counted_stuck = untimed;
  }
  if (untimed) {
    StuckWatch& watch = stuck_watch();
    std::lock_guard lock(watch.mutex);
    watch.asleep.push_back(this);
    watch.check();
  }
  return true;
}

bool WorkerSite::leave() noexcept {
  if (counted_stuck) {  // written only by this thread
    StuckWatch& watch = stuck_watch();
    std::lock_guard lock(watch.mutex);
    std::erase(watch.asleep, this);
  }
  std::lock_guard lock(wait_mutex);
  sleeping_on = nullptr;
  counted_stuck = false;
  return wait_cancelled;
}

void WorkerSite::cancel_wait() noexcept {
  std::lock_guard lock(wait_mutex);
  wait_cancelled = true;
  if (sleeping_on) sleeping_on->notify_all();
}

bool raise_task_interruption() noexcept {
  WorkerSite* site = site_here;
  if (!site) return false;
  {
    std::lock_guard lock(site->wait_mutex);
    if (!site->wait_cancelled) return false;
  }
  // The same exception, raised here rather than at the next bytecode.
  (void)PyThreadState_SetAsyncExc(site->thread_id, nullptr);
  PyErr_SetNone(site->interrupt_type);
  return true;
}

bool Watchdog::end_worker_from_task(const char* message) noexcept {
  WorkerSite* site = site_here;
  TaskControl* task = running_here;
  if (!site || !task) return false;
  // The first reason wins: a time limit reached before stays a timeout.
  (void)task->request(Interruption::Exited, /*tell_watchdog=*/false);
  site->exit_message = message;
  // Raised now, here: the watchdog delivers nothing more (it needs this GIL to
  // deliver, so it is not halfway), and end_task replaces the worker.
  task->delivered_.store(true);
  (void)PyThreadState_SetAsyncExc(site->thread_id, nullptr);
  PyErr_SetString(site->interrupt_type, message);
  return true;
}

// ---------------------------------------------------------------------------
// Watchdog
// ---------------------------------------------------------------------------

void Watchdog::add(std::shared_ptr<WorkerSite> site) {
  std::lock_guard lock(mutex_);
  sites_.push_back(std::move(site));
}

void Watchdog::remove(const WorkerSite* site) {
  std::lock_guard lock(mutex_);
  std::erase_if(sites_, [&](const auto& s) { return s.get() == site; });
}

void Watchdog::wake() noexcept {
  if (forked_while_running()) return;  // the tasks it would stop run in the parent
  {
    std::lock_guard lock(mutex_);
    if (!started_ && !stopping_.load()) {
      started_ = true;
      try {
        thread_alive_ = ForkSensitive::count();
        thread_ = std::thread([this] { run(); });
      } catch (...) {
        started_ = false;  // no thread: interruptions cannot be delivered
        thread_alive_.release();
      }
    }
  }
  signal_.notify_all();
}

std::size_t Watchdog::interrupt_all() noexcept {
  if (forked_while_running()) return 0;
  std::vector<std::shared_ptr<TaskControl>> running;
  {
    std::lock_guard lock(mutex_);
    for (auto& site : sites_) {
      std::lock_guard site_lock(site->mutex);
      if (site->current) running.push_back(site->current);
    }
  }
  std::size_t n = 0;
  for (auto& task : running) n += task->request(Interruption::Stopped) ? 1 : 0;
  wake();
  return n;
}

void Watchdog::stop() noexcept {
  stopping_.store(true);
  signal_.notify_all();
  if (forked_while_running()) {
    // Its thread stayed in the parent: nothing to join here, and a std::thread
    // destroyed joinable would end the process. Kept, never joined.
    if (thread_.joinable()) new std::thread(std::move(thread_));
    return;
  }
  std::thread t;
  ForkSensitive alive;
  {
    std::lock_guard lock(mutex_);
    t.swap(thread_);
    alive = std::move(thread_alive_);
  }
  if (t.joinable()) t.join();
}

void Watchdog::run() {
  while (!stopping_.load()) {
    std::uint32_t epoch = signal_.epoch();
    std::int64_t now = steady_ns();
    std::int64_t next = std::numeric_limits<std::int64_t>::max();
    std::vector<std::pair<std::shared_ptr<WorkerSite>, std::shared_ptr<TaskControl>>> due;
    {
      std::lock_guard lock(mutex_);
      for (auto& site : sites_) {
        std::shared_ptr<TaskControl> task;
        {
          std::lock_guard site_lock(site->mutex);
          task = site->current;
        }
        if (!task || task->delivered_.load()) continue;
        if (task->state() == TaskControl::State::Running && task->timeout_ns_.load()) {
          std::int64_t deadline = task->deadline_ns_.load();
          if (deadline && now >= deadline)
            task->request(Interruption::Timeout, /*tell_watchdog=*/false);
          else if (deadline)
            next = std::min(next, deadline);
        }
        if (task->state() == TaskControl::State::Interrupting)
          due.emplace_back(site, std::move(task));
      }
    }
    for (auto& [site, task] : due) deliver(*site, task);
    if (!due.empty()) continue;  // look again: deliveries take time
    Deadline until = next == std::numeric_limits<std::int64_t>::max()
                         ? Deadline::never()
                         : Deadline::after(static_cast<double>(next - now) / 1e9);
    (void)signal_.wait(epoch, until, false);
  }
}

void Watchdog::deliver(WorkerSite& site, const std::shared_ptr<TaskControl>& task) {
  site.pins.fetch_add(1);
  if (!site.closing.load()) {
    // Waits for the worker's GIL: the worker gives it up within the switch
    // interval when it runs Python code, or at once when it waits.
    Activation inside(site.interp);
    bool still_running;
    {
      std::lock_guard lock(site.mutex);
      still_running = site.current == task;
    }
    if (still_running && !task->delivered_.exchange(true)) {
      (void)PyThreadState_SetAsyncExc(site.thread_id, site.interrupt_type);
      site.cancel_wait();  // an engine wait would keep the task from seeing it
    }
  }
  if (site.pins.fetch_sub(1) == 1) site.unpinned.notify_all();
}

// ---------------------------------------------------------------------------
// In the worker: running one task under watch
// ---------------------------------------------------------------------------

void Watchdog::begin_task(WorkerSite& site, const std::shared_ptr<TaskControl>& task) {
  {
    std::lock_guard lock(site.mutex);
    site.current = task;
  }
  stuck_watch().running.fetch_add(1);
  {
    std::lock_guard lock(site.wait_mutex);
    site.wait_cancelled = false;
  }
  running_here = task.get();
  site_here = &site;
  WaitHook::current() = &site;
  if (std::int64_t limit = task->timeout_ns_.load()) {
    task->deadline_ns_.store(steady_ns() + limit);
    wake();
  }
}

namespace {

// True if an asynchronous exception was set for the calling thread and its
// code has not raised it yet. The thread state keeps it until the eval loop
// raises it; no API reads it, so the field of CPython's struct is read, with
// the GIL held (the watchdog sets it holding that GIL too).
bool async_exception_pending() noexcept {
  PyThreadState* ts = current_thread_state();
  return ts && ts->async_exc != nullptr;
}

std::string interruption_message(Interruption why, double timeout) {
  if (why == Interruption::Timeout) {
    char limit[32];
    std::snprintf(limit, sizeof limit, "%g", timeout);
    return std::string("the task ran longer than its time limit of ") + limit +
           " s and was interrupted";
  }
  if (why == Interruption::Stuck)
    return "the task was interrupted at the end of the program: it waited with no timeout on an "
           "interpool object, and so did every other task, so nothing could wake it";
  return "the task was interrupted while it ran";
}

}  // namespace

bool Watchdog::end_task(WorkerSite& site, const std::shared_ptr<TaskControl>& task, Outcome& out) {
  {
    std::lock_guard lock(site.mutex);
    site.current.reset();
  }
  stuck_watch().running.fetch_sub(1);
  running_here = nullptr;
  site_here = nullptr;
  WaitHook::current() = nullptr;
  {
    std::lock_guard lock(site.wait_mutex);
    site.wait_cancelled = false;
  }
  // From here on interrupt() decides nothing: an interruption that came first
  // is the outcome, whatever the code did after it.
  Interruption why = task->end();
  if (why == Interruption::None) return false;
  // Holding this interpreter's GIL: no delivery can be under way, and none
  // starts now that the site runs nothing.
  bool delivered = task->delivered_.load();
  bool never_raised = !delivered || async_exception_pending();
  // Dropped if still pending, or it would surface in whatever this thread runs next.
  if (delivered) (void)PyThreadState_SetAsyncExc(site.thread_id, nullptr);
  bool unwound = out.status == Outcome::Status::Error &&
                 out.error.type_module == site.interrupt_module &&
                 out.error.type_qualname == site.interrupt_qualname;
  ErrorInfo where;
  if (unwound) {
    where = std::move(out.error);  // with the traceback of where it stopped
    where.pickled.clear();
  } else {
    where.type_module = site.interrupt_module;
    where.type_qualname = site.interrupt_qualname;
  }
  if (why == Interruption::Exited) {
    // The task ended its worker (end_worker_from_task): replaced, however the
    // exception went.
    where.message = std::move(site.exit_message);
    site.exit_message.clear();
    out = Outcome::interrupted(why, std::move(where));
    return true;
  }
  where.message = interruption_message(why, task->timeout());
  if (!unwound && never_raised)
    where.message += " (as it was ending: what it returned or raised is dropped)";
  out = Outcome::interrupted(why, std::move(where));
  // The interpreter serves on when the exception ended the task as any
  // exception does, or never reached its code. Code that caught it and went
  // on may have left any state: a fresh interpreter then.
  return !unwound && !never_raised;
}

}  // namespace interpool
