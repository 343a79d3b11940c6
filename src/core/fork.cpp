#include "core/fork.hpp"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <utility>

#define PY_SSIZE_T_CLEAN
#include <Python.h>

// interpreter_list.c: the slot of CPython's runtime that heads its list of
// interpreters, or nullptr where its place is not known.
extern "C" PyInterpreterState** interpool_interpreter_list_head(void);

namespace interpool {

namespace {

std::atomic<long> alive{0};
std::atomic<bool> forked_away{false};
// In such a child: the process it was forked from (the first such fork).
std::atomic<long> forked_from{0};

// CPython's child-side clean-up, PyOS_AfterFork_Child, frees every
// sub-interpreter after making no thread state current
// (_PyInterpreterState_DeleteExceptMain), yet freeing their objects needs one:
// 3.13 aborts the child ("PyThreadState_Get: ... the GIL is released"), 3.12
// deadlocks on the runtime's lock it already holds or crashes. Any interpreter
// alive at the fork does it, idle or not, ours or the standard library's
// (python/cpython#101437, #139759). Nothing in the child can run in them (their
// threads stayed in the parent), so before that clean-up runs (pthread_atfork
// child handlers run inside fork()), the list is made to hold the main
// interpreter alone, as the clean-up would leave it: the others stay in the
// child's copy of memory, unused and unfreed. The slot is checked against the
// public API first; anything unexpected leaves the list as it is.
void leave_sub_interpreters_behind() noexcept {
  if (!Py_IsInitialized()) return;
  PyInterpreterState** head = interpool_interpreter_list_head();
  PyInterpreterState* main = PyInterpreterState_Main();
  if (!head || !main || *head != PyInterpreterState_Head() || *head == main) return;
  if (PyInterpreterState_Next(main) != nullptr) return;  // main is always the last one made
  *head = main;
}

void in_child() noexcept {
  if (alive.load() > 0 && !forked_away.load()) {
    forked_from.store(static_cast<long>(getppid()));
    forked_away.store(true);
  }
  leave_sub_interpreters_behind();
}

}  // namespace

void watch_forks() noexcept {
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(nullptr, nullptr, in_child); });
}

ForkSensitive ForkSensitive::count() noexcept {
  watch_forks();
  alive.fetch_add(1);
  ForkSensitive token;
  token.counted_ = true;
  return token;
}

ForkSensitive::ForkSensitive(ForkSensitive&& other) noexcept
    : counted_(std::exchange(other.counted_, false)) {}

ForkSensitive& ForkSensitive::operator=(ForkSensitive&& other) noexcept {
  if (this != &other) {
    release();
    counted_ = std::exchange(other.counted_, false);
  }
  return *this;
}

void ForkSensitive::release() noexcept {
  if (std::exchange(counted_, false)) alive.fetch_sub(1);
}

bool forked_while_running() noexcept { return forked_away.load(std::memory_order_relaxed); }

std::string used_after_fork_message(std::string_view what) {
  return "interpool cannot be used in a process forked while it ran workers or interpreters (" +
         std::string(what) + "): this process is a fork of pid " +
         std::to_string(forked_from.load()) +
         ", whose workers and interpreters did not come with it (a fork copies only the thread "
         "that called it). Start processes that use interpool with the 'forkserver' or 'spawn' "
         "start method (multiprocessing.get_context('forkserver'), "
         "ProcessPoolExecutor(mp_context=...)), or fork before interpool starts any";
}

}  // namespace interpool
