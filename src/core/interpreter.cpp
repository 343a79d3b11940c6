#include "core/interpreter.hpp"

#include <algorithm>
#include <csignal>
#include <interpool/error.hpp>
#include <interpool/queue.hpp>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace interpool {

namespace {

// CPython 3.12 and 3.13 set up parts of a new interpreter in process-wide data
// without a lock of their own: two creations at once now and then fail ("Failed
// to import encodings module", seen here about once in 6,000 creations), so
// interpool creates one interpreter at a time (docs/design.md). Leaked: a
// creation may run while static objects are destroyed at exit.
std::mutex& creation_mutex() {
  static auto* mutex = new std::mutex;
  return *mutex;
}

// The creation lock, waited for with the caller's GIL released (rule 3).
std::unique_lock<std::mutex> lock_creation() {
  std::unique_lock<std::mutex> lock(creation_mutex(), std::try_to_lock);
  if (!lock.owns_lock()) {
    GilRelease unlocked;
    lock.lock();
  }
  return lock;
}

// C modules whose import in a worker first leaves state that every interpreter
// shares in that worker's memory, so that ending it first crashes the process
// (when another interpreter that imported them ends, or at exit). The main
// interpreter, which outlives every worker, imports them before the first
// worker starts; then no worker's import does.
// - 3.13: _datetime keeps its static types' shared parts (bases, MRO) in the
//   memory of the first interpreter to import it (gh-136423; imports at the same
//   time race, gh-136421). datetime, zoneinfo, sqlite3 and PyYAML import it.
//   3.14 sets those types up as each interpreter starts (python/cpython#136583,
//   read, not tried here: no 3.14 on this machine).
// - 3.12: _datetime and _decimal are single-phase modules, refused by own-GIL
//   interpreters (their workers use the pure-Python datetime and decimal) but
//   only after their init function has run in the worker and kept objects of it
//   in static types; 3.13 runs such init functions in the main interpreter.
constexpr const char* kImportedInMainFirst[] = {
#if PY_VERSION_HEX >= 0x030D0000 && PY_VERSION_HEX < 0x030E0000
    "_datetime",
#elif PY_VERSION_HEX < 0x030D0000
    "_datetime",
    "_decimal",
#endif
    nullptr,
};

// Enters the main interpreter on this thread, unless the thread is in it already.
void enter_main(std::optional<Activation>& in_main) {
  PyThreadState* here = current_thread_state();
  if (!here || PyThreadState_GetInterpreter(here) != PyInterpreterState_Main())
    in_main.emplace(PyInterpreterState_Main());
}

void import_in_main_first() {
  static std::atomic<bool> done{false};
  if (kImportedInMainFirst[0] == nullptr || done.load(std::memory_order_acquire)) return;
  std::optional<Activation> in_main;
  enter_main(in_main);
  PyObject* pending = PyErr_GetRaisedException();
  bool all = true;
  for (const char* const* name = kImportedInMainFirst; *name; ++name) {
    PyObject* module = PyImport_ImportModule(*name);
    if (module) {
      Py_DECREF(module);
    } else if (PyErr_ExceptionMatches(PyExc_ImportError)) {
      PyErr_Clear();  // a build without it has no such state to share
    } else {
      // Something else stopped it (an import hook, an interruption): said,
      // and tried again at the next creation. A Ctrl-C it took is given back.
      all = false;
      const bool interrupted = PyErr_ExceptionMatches(PyExc_KeyboardInterrupt);
      PyObject* error = PyErr_GetRaisedException();
      PyObject* what = PyUnicode_FromFormat(
          "interpool: importing %s in the main interpreter before its first worker", *name);
      if (!what) PyErr_Clear();
      PyErr_SetRaisedException(error);
      PyErr_WriteUnraisable(what);
      Py_XDECREF(what);
      if (interrupted) PyErr_SetInterruptEx(SIGINT);
    }
  }
  PyErr_SetRaisedException(pending);
  if (all) done.store(true, std::memory_order_release);
}

}  // namespace

// ---------------------------------------------------------------------------
// Interpreter
// ---------------------------------------------------------------------------

Interpreter Interpreter::create() {
  refuse_if_forked("cannot create an interpreter");
  PyInterpreterConfig config = {};
  config.use_main_obmalloc = 0;
  config.allow_fork = 0;
  config.allow_exec = 0;
  config.allow_threads = 1;
  config.allow_daemon_threads = 0;
  config.check_multi_interp_extensions = 1;
  config.gil = PyInterpreterConfig_OWN_GIL;

  // Py_NewInterpreterFromConfig copies settings from the current interpreter,
  // so a thread with no thread state borrows one of the main interpreter for
  // the call. It detaches the caller's state and attaches the new one.
  // Counted from before it exists: a fork during the creation leaves it behind too.
  ForkSensitive alive = ForkSensitive::count();
  import_in_main_first();
  std::unique_lock<std::mutex> one_at_a_time = lock_creation();
  PyThreadState* previous = current_thread_state();
  PyThreadState* borrowed = nullptr;
  if (!previous) {
    borrowed = PyThreadState_New(PyInterpreterState_Main());
    PyEval_RestoreThread(borrowed);
    previous = borrowed;
  }

  PyThreadState* ts = nullptr;
  PyStatus status = Py_NewInterpreterFromConfig(&ts, &config);
  one_at_a_time.unlock();
  Interpreter interp;
  if (!PyStatus_Exception(status)) {
    interp.state_ = PyThreadState_GetInterpreter(ts);
    interp.id_ = PyInterpreterState_GetID(interp.state_);
    interp.active_ = new std::atomic<int>(0);
    interp.alive_ = std::move(alive);
    // Users enter with thread states of their own threads; this one is kept
    // idle so that the interpreter's thread list never empties (see keeper_).
    interp.keeper_ = PyEval_SaveThread();
    PyEval_RestoreThread(previous);
  }
  // On failure CPython has already re-attached `previous`.
  if (borrowed) {
    PyThreadState_Clear(borrowed);
    PyThreadState_DeleteCurrent();
  }
  if (PyStatus_Exception(status)) {
    std::string why = status.err_msg ? status.err_msg : "unknown reason";
    if (status.func) why = std::string(status.func) + ": " + why;
    throw InterpreterError("cannot create a sub-interpreter: " + why);
  }
  return interp;
}

namespace {
// Ids of the interpreters listed as pool workers. Never destroyed: workers may
// end while static objects are destroyed.
struct PoolWorkerIds {
  std::mutex mutex;
  std::vector<std::int64_t> ids;
};
PoolWorkerIds& pool_worker_ids() {
  static auto* ids = new PoolWorkerIds;
  return *ids;
}
}  // namespace

bool is_pool_worker(std::int64_t id) {
  PoolWorkerIds& w = pool_worker_ids();
  std::lock_guard lock(w.mutex);
  return std::find(w.ids.begin(), w.ids.end(), id) != w.ids.end();
}

void Interpreter::list_as_pool_worker() noexcept {
  if (!state_ || pool_worker_) return;
  PoolWorkerIds& w = pool_worker_ids();
  std::lock_guard lock(w.mutex);
  try {
    w.ids.push_back(id_);
    pool_worker_ = true;
  } catch (...) {
    // Out of memory: it serves unlisted (whence says 'unknown').
  }
}

void Interpreter::unlist() noexcept {
  if (!pool_worker_) return;
  pool_worker_ = false;
  PoolWorkerIds& w = pool_worker_ids();
  std::lock_guard lock(w.mutex);
  std::erase(w.ids, id_);
}

Interpreter::Interpreter(Interpreter&& other) noexcept
    : state_(std::exchange(other.state_, nullptr)),
      id_(std::exchange(other.id_, -1)),
      keeper_(std::exchange(other.keeper_, nullptr)),
      active_(std::exchange(other.active_, nullptr)),
      pool_worker_(std::exchange(other.pool_worker_, false)),
      alive_(std::move(other.alive_)) {}

Interpreter& Interpreter::operator=(Interpreter&& other) noexcept {
  if (this != &other) {
    try {
      close();
    } catch (const Error&) {
      // In use: it cannot be destroyed safely; leak it rather than crash.
    }
    state_ = std::exchange(other.state_, nullptr);
    id_ = std::exchange(other.id_, -1);
    keeper_ = std::exchange(other.keeper_, nullptr);
    active_ = std::exchange(other.active_, nullptr);
    pool_worker_ = std::exchange(other.pool_worker_, false);
    alive_ = std::move(other.alive_);
  }
  return *this;
}

Interpreter::~Interpreter() {
  try {
    close();
  } catch (const Error&) {
    // In use: it cannot be destroyed safely; leak it rather than crash.
  }
}

void run_quietly(const char* code, SourceRun how) noexcept {
  PyObject* ns = PyDict_New();
  PyObject* builtins = ns ? PyEval_GetBuiltins() : nullptr;
  if (builtins && PyDict_SetItemString(ns, "__builtins__", builtins) == 0) {
    if (how == SourceRun::AsScript) {
      Py_XDECREF(PyRun_String(code, Py_file_input, ns, ns));
    } else {
      PyObject* compiled = Py_CompileString(code, "<string>", Py_file_input);
      Py_XDECREF(compiled ? PyEval_EvalCode(compiled, ns, ns) : nullptr);
      Py_XDECREF(compiled);
    }
  }
  PyErr_Clear();
  Py_XDECREF(ns);
}

#if PY_VERSION_HEX < 0x030D0000
// 3.12's threading._shutdown, run by Py_EndInterpreter, asserts that the lock
// tied to the thread state that first imported `threading` is still held when
// it runs on that OS thread. Here that thread state (an Activation's) is gone
// and the interpreter ends with the keeper, so take the lock again: the
// shutdown then releases it as it would have. Only on that OS thread: from any
// other thread the shutdown joins that lock instead, and a held lock would hang
// it.
static void settle_threading_312() {
  static const char code[] =
      "import sys\n"
      "t = sys.modules.get('threading')\n"
      "m = getattr(t, '_main_thread', None)\n"
      "lock = getattr(m, '_tstate_lock', None)\n"
      "if lock is not None and not lock.locked() and not m._is_stopped \\\n"
      "        and m.ident == t.get_ident():\n"
      "    lock.acquire(False)\n";
  run_quietly(code);
}
#endif

void Interpreter::close() {
  if (!state_) return;
  if (forked_while_running()) {
    // The parent's: its thread states belong to threads this process does not
    // have, and CPython here no longer lists it (see fork.cpp). Left as it is.
    unlist();
    state_ = nullptr;
    keeper_ = nullptr;
    id_ = -1;
    return;
  }
  if (active_->load() > 0)
    throw InterpreterError("interpreter " + std::to_string(id_) +
                           " is running: it cannot be closed");
  PyThreadState* previous = current_thread_state();
  if (previous && PyThreadState_GetInterpreter(previous) == state_)
    throw InterpreterError("interpreter " + std::to_string(id_) + " cannot close itself");
  if (previous) PyEval_SaveThread();
  // The extension's module state, freed while the interpreter ends, also tells
  // the queues; this close applies the unbound policies itself, once, after.
  Queue::interpreter_closing(id_);
  PyEval_RestoreThread(keeper_);
#if PY_VERSION_HEX < 0x030D0000
  settle_threading_312();
#endif
  end(previous);
}

namespace {

bool python_finalizing() noexcept {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#else
  return _Py_IsFinalizing();
#endif
}

}  // namespace

void Interpreter::close_abandoning_threads() {
  if (!state_) return;
  if (forked_while_running()) {
    close();  // forgets it: the parent's
    return;
  }
  if (active_->load() > 0)
    throw InterpreterError("interpreter " + std::to_string(id_) +
                           " is running: it cannot be closed");
  PyThreadState* previous = current_thread_state();
  if (previous) PyEval_SaveThread();
  Queue::interpreter_closing(id_);
  PyEval_RestoreThread(keeper_);
  // Py_EndInterpreter would run threading._shutdown, which joins them.
  run_quietly(
      "import sys\n"
      "t = sys.modules.get('threading')\n"
      "if t is not None:\n"
      "    t._shutdown = lambda: None\n");
  // Py_EndInterpreter ends only an interpreter whose one thread state is the
  // caller's. The others are cleared here, with this interpreter's GIL, and
  // deleted (no GIL needed) on a thread of no importance: deleting a thread
  // state that Python bound to its own thread clears the deleting thread's
  // PyGILState binding, and this thread's must stay.
  std::vector<PyThreadState*> others;
  for (PyThreadState* t = PyInterpreterState_ThreadHead(state_); t; t = PyThreadState_Next(t))
    if (t != keeper_) others.push_back(t);
  for (PyThreadState* t : others) PyThreadState_Clear(t);
  if (!others.empty()) {
    PyThreadState* keeper = PyEval_SaveThread();
    std::thread([&others] {
      for (PyThreadState* t : others) PyThreadState_Delete(t);
    }).join();
    PyEval_RestoreThread(keeper);
  }
  end(previous);
}

void Interpreter::end(PyThreadState* previous) {
  Py_EndInterpreter(keeper_);  // leaves no thread state attached
  keeper_ = nullptr;
  if (previous) PyEval_RestoreThread(previous);
  Queue::interpreter_closed(id_);
  unlist();
  delete active_;
  active_ = nullptr;
  state_ = nullptr;
  id_ = -1;
  alive_.release();
}

// ---------------------------------------------------------------------------
// ThreadsLeft
// ---------------------------------------------------------------------------

namespace {

struct ThreadsLeftState {
  std::mutex mutex;
  std::vector<Interpreter> kept;
  bool finalization_hook = false;
};

// Never destroyed: kept interpreters may be closed while static objects are.
ThreadsLeftState& threads_left() {
  static auto* state = new ThreadsLeftState;
  return *state;
}

// Threads of `interp` (its _thread module counts them) that have not ended;
// -1 if that cannot be told. From a thread outside it.
Py_ssize_t threads_running_in(const Interpreter& interp) {
  Activation inside(interp);
  Py_ssize_t count = -1;
  if (PyObject* thread = PyImport_ImportModule("_thread")) {
    if (PyObject* n = PyObject_CallMethod(thread, "_count", nullptr)) {
      count = PyLong_AsSsize_t(n);
      Py_DECREF(n);
    }
    Py_DECREF(thread);
  }
  PyErr_Clear();
  return count;
}

// The capsule's destructor, when sys.modules is cleared during finalization.
void close_kept_at_finalization(PyObject*) {
  // Dropped by hand, the program runs on; forked, they are the parent's.
  if (!python_finalizing() || forked_while_running()) return;
  std::vector<Interpreter> kept;
  {
    ThreadsLeftState& left = threads_left();
    std::lock_guard lock(left.mutex);
    kept.swap(left.kept);
  }
  PyObject* pending = PyErr_GetRaisedException();
  for (Interpreter& interp : kept) {
    try {
      interp.close_abandoning_threads();
    } catch (const std::exception&) {
      // In use after all: left as it is (its destructor would join the threads).
      (void)new Interpreter(std::move(interp));  // never destroyed
    }
  }
  keep_keyword_tuples_at_exit();  // those interpreters' threads ran until now
  PyErr_SetRaisedException(pending);
}

}  // namespace

void ThreadsLeft::keep(Interpreter interp) {
  if (!interp) return;
  ThreadsLeftState& left = threads_left();
  {
    std::lock_guard lock(left.mutex);
    left.kept.push_back(std::move(interp));
  }
  // Older ones may be done by now (this one has just been interrupted).
  (void)close_ended();
}

std::size_t ThreadsLeft::close_ended() noexcept {
  if (forked_while_running()) return 0;  // the parent's: their threads are there
  ThreadsLeftState& left = threads_left();
  std::vector<Interpreter> kept;
  {
    std::lock_guard lock(left.mutex);
    kept.swap(left.kept);
  }
  std::vector<Interpreter> running;
  for (Interpreter& interp : kept) {
    try {
      if (threads_running_in(interp) == 0) {
        interp.close();
        continue;
      }
    } catch (const std::exception&) {
      // Not closed now: kept for a later look.
    }
    running.push_back(std::move(interp));
  }
  std::lock_guard lock(left.mutex);
  for (Interpreter& interp : running) left.kept.push_back(std::move(interp));
  return left.kept.size();
}

void ThreadsLeft::at_exit() noexcept {
  if (forked_while_running() || close_ended() == 0) return;
  ThreadsLeftState& left = threads_left();
  {
    std::lock_guard lock(left.mutex);
    if (left.finalization_hook) return;
    left.finalization_hook = true;
  }
  // Dropped when finalization clears sys.modules: after the runtime is marked
  // finalizing (so an abandoned thread that wakes ends before it touches its
  // dropped thread state), before CPython itself ends or refuses (3.12) the
  // interpreters left. Put there with the main interpreter's GIL.
  std::optional<Activation> in_main;
  enter_main(in_main);
  PyObject* pending = PyErr_GetRaisedException();
  PyObject* module = PyModule_New("interpool._threads_left");
  PyObject* capsule =
      module ? PyCapsule_New(&left, "interpool._threads_left", close_kept_at_finalization)
             : nullptr;
  if (capsule && PyModule_AddObjectRef(module, "_close_at_finalization", capsule) == 0)
    (void)PyDict_SetItemString(PyImport_GetModuleDict(), "interpool._threads_left", module);
  Py_XDECREF(capsule);
  Py_XDECREF(module);
  PyErr_Clear();
  PyErr_SetRaisedException(pending);
}

// ---------------------------------------------------------------------------
// Activation
// ---------------------------------------------------------------------------

Activation::Activation(const Interpreter& interp) : active_(interp.active_) {
  if (!interp) throw InterpreterError("cannot enter a closed interpreter");
  refuse_if_forked("cannot enter interpreter " + std::to_string(interp.id()));
  active_->fetch_add(1);
  enter(interp.state());
}

Activation::Activation(PyInterpreterState* interp) { enter(interp); }

void Activation::enter(PyInterpreterState* interp) {
  previous_ = current_thread_state();
  if (previous_) PyEval_SaveThread();
  own_ = PyThreadState_New(interp);
  PyEval_RestoreThread(own_);
}

Activation::~Activation() {
  PyThreadState_Clear(own_);
  PyThreadState_DeleteCurrent();
  if (previous_) PyEval_RestoreThread(previous_);
  if (active_) active_->fetch_sub(1);
}

}  // namespace interpool
