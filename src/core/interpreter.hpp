// Sub-interpreters with their own GIL, and entering them from any thread.
//
// Ownership is separate from activation: an Interpreter owns a sub-interpreter;
// an Activation puts the calling thread inside one for a scope.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/fork.hpp"

extern "C" void interpool_keep_keyword_tuples(int forked);  // src/core/interpreter_list.c

namespace interpool {

/// As the program ends, with the main interpreter's GIL, once the engine's
/// interpreters are closed (and in a child forked while they ran): works
/// around CPython 3.12.0-3.12.3 freeing, with the main interpreter's
/// allocator, tuples a sub-interpreter made (an abort at exit; see
/// src/core/interpreter_list.c). Repeatable; nothing on other versions.
inline void keep_keyword_tuples_at_exit() noexcept {
  interpool_keep_keyword_tuples(forked_while_running() ? 1 : 0);
}

/// How run_quietly runs its text. Evaluated: compiled and evaluated, for the
/// engine's own steps, since CPython's PyRun_String clears the process-wide
/// record of a script ended by an uncaught KeyboardInterrupt (Py_RunMain then
/// exits with status 1, not by SIGINT), and interpreters close while the
/// program exits. AsScript: by PyRun_String, which sets that record when the
/// text raises KeyboardInterrupt.
enum class SourceRun { Evaluated, AsScript };

/// Runs interpool's own source text in the current interpreter (its GIL held),
/// in a scratch namespace with the builtins; its errors are dropped.
void run_quietly(const char* code, SourceRun how = SourceRun::Evaluated) noexcept;

/// The thread state attached to the calling thread, or nullptr (never fails).
inline PyThreadState* current_thread_state() noexcept {
#if PY_VERSION_HEX >= 0x030D0000
  return PyThreadState_GetUnchecked();
#else
  return _PyThreadState_UncheckedGet();
#endif
}

/// Owns an isolated sub-interpreter: own GIL, own object allocator, no fork or
/// exec, threads but no daemon threads, single-phase-init extensions refused.
/// Contract:
/// - create() runs on any thread, with or without a thread state attached; on
///   return the caller is in the state it was in (same thread state, same GIL);
/// - the new interpreter keeps no thread state: enter it with an Activation;
/// - close() (and the destructor) run on a thread that is not inside this
///   interpreter, when no Activation of it is alive on any thread;
/// - move-only; a moved-from Interpreter owns nothing;
/// - in a process forked while engine threads or interpreters were alive,
///   create() and entering throw UsedAfterFork, and close() forgets the
///   interpreter without ending it (it was the parent's).
class Interpreter {
 public:
  /// Throws InterpreterError with CPython's reason if creation fails.
  static Interpreter create();

  Interpreter() = default;
  Interpreter(Interpreter&& other) noexcept;
  Interpreter& operator=(Interpreter&& other) noexcept;
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;
  ~Interpreter();

  /// Destroys the interpreter (runs its atexit hooks, joins its threads).
  /// Throws InterpreterError if it is in use on some thread.
  void close();

  /// Destroys the interpreter without joining the threads of its own that
  /// still run, as Python's finalization leaves the main interpreter's daemon
  /// threads: their thread states are dropped, and a thread that wakes later
  /// ends when it reaches for the GIL (CPython ends any thread but the
  /// finalizing one that does so). Only while Python finalizes (Py_IsFinalizing),
  /// on the finalizing thread, when no Activation of it is alive.
  void close_abandoning_threads();

  explicit operator bool() const noexcept { return state_ != nullptr; }
  PyInterpreterState* state() const noexcept { return state_; }
  std::int64_t id() const noexcept { return id_; }
  /// Number of Activations of this interpreter alive now, on all threads.
  int active() const noexcept { return active_ ? active_->load() : 0; }

  /// Lists it as a pool's worker (is_pool_worker) until it is closed, also
  /// when ThreadsLeft closes it.
  void list_as_pool_worker() noexcept;

 private:
  friend class Activation;
  // The end both closes share: ends the interpreter (its keeper attached, the
  // GIL held), gives `previous` back its thread state, and forgets it all.
  void end(PyThreadState* previous);
  void unlist() noexcept;  // from the pool workers' ids, if listed

  PyInterpreterState* state_ = nullptr;
  std::int64_t id_ = -1;
  // The thread state made with the interpreter, kept detached until close()
  // and used to end it. CPython reuses an interpreter's built-in first thread
  // state whenever its thread list is empty; 3.12 does not reset it and 3.13
  // resets it outside the lock, so concurrent entries can hit "init_threadstate:
  // thread state already initialized". A list that never empties avoids both.
  PyThreadState* keeper_ = nullptr;
  // Heap-allocated so that Activations can count themselves across moves.
  std::atomic<int>* active_ = nullptr;
  bool pool_worker_ = false;
  ForkSensitive alive_;
};

/// True if interpreter `id` is a pool worker's (Interpreter::list_as_pool_worker),
/// from its creation until it is closed.
bool is_pool_worker(std::int64_t id);

/// Interpreters whose worker has ended while threads its tasks started still
/// ran (a task that returned leaving them): their workers are replaced at once,
/// without waiting for those threads. Each is closed once its threads have
/// ended; those still running at the program's end are closed during Python's
/// finalization without them (Interpreter::close_abandoning_threads), so that
/// the program exits. Process-wide; holds no Python object.
class ThreadsLeft {
 public:
  /// Keeps `interp` until its threads end. From a thread outside it.
  static void keep(Interpreter interp);
  /// Closes those whose threads have all ended (entering each to count them).
  /// From any thread outside them; returns how many are still kept.
  static std::size_t close_ended() noexcept;
  /// At the program's end, before Python finalizes (Pool::shutdown_all), from
  /// any thread: closes those whose threads have ended and has the rest closed
  /// during finalization, their threads abandoned (a module that the main
  /// interpreter's sys.modules holds, dropped then, does it).
  static void at_exit() noexcept;
};

/// Enters an interpreter on the calling thread with a thread state made for
/// this thread, holding that interpreter's GIL; on destruction deletes that
/// thread state and re-attaches whatever the thread had before.
/// Contract:
/// - constructed and destroyed on the same thread, in nested (LIFO) order;
/// - the interpreter outlives the Activation;
/// - while active, the previous thread state is detached (its GIL released).
class Activation {
 public:
  explicit Activation(const Interpreter& interp);
  /// Enters an interpreter owned elsewhere (e.g. the main interpreter).
  explicit Activation(PyInterpreterState* interp);
  Activation(const Activation&) = delete;
  Activation& operator=(const Activation&) = delete;
  ~Activation();

  PyThreadState* thread_state() const noexcept { return own_; }

 private:
  void enter(PyInterpreterState* interp);
  PyThreadState* previous_ = nullptr;
  PyThreadState* own_ = nullptr;
  std::atomic<int>* active_ = nullptr;
};

/// Releases the GIL the calling thread holds, if any, for a blocking wait, and
/// takes it back on destruction (Py_BEGIN/END_ALLOW_THREADS as an object).
class GilRelease {
 public:
  GilRelease() noexcept : saved_(current_thread_state() ? PyEval_SaveThread() : nullptr) {}
  GilRelease(const GilRelease&) = delete;
  GilRelease& operator=(const GilRelease&) = delete;
  // Not noexcept: once Python finalizes, PyEval_RestoreThread ends any thread
  // but the finalizing one (pthread_exit, a forced unwind), which must be able
  // to leave through here.
  ~GilRelease() noexcept(false) {
    if (saved_) PyEval_RestoreThread(saved_);
  }

 private:
  PyThreadState* saved_;
};

}  // namespace interpool
