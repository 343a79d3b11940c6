// Blocking engine waits called from Python: the GIL released, signals and task
// interruptions honoured.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <utility>

#include "core/interpreter.hpp"
#include "core/watchdog.hpp"

namespace interpool::python {

/// Runs `attempt` (an interruptible wait on an engine object, returning a
/// result with an Interrupted value) with the GIL released. When the wait is
/// interrupted: in a task that interpool interrupts, raises its
/// interpool.TaskInterrupted; otherwise runs the signal handlers (Ctrl-C raises
/// KeyboardInterrupt) and waits again. False with the exception set.
/// Python code may run between two waits (a signal handler): `leave()` is
/// called before, and, if the wait goes on, `rejoin()` after; a waiter that
/// stands in for others (a taker of an outcome) steps aside meanwhile.
template <class Result, class Attempt, class Leave, class Rejoin>
bool wait_releasing_gil(Attempt&& attempt, Result& result, Leave&& leave, Rejoin&& rejoin) {
  for (;;) {
    {
      GilRelease unlocked;
      result = attempt();
    }
    if (result != Result::Interrupted) return true;
    leave();
    if (raise_task_interruption()) return false;
    if (PyErr_CheckSignals() < 0) return false;
    rejoin();
  }
}

template <class Result, class Attempt>
bool wait_releasing_gil(Attempt&& attempt, Result& result) {
  return wait_releasing_gil(
      std::forward<Attempt>(attempt), result, [] {}, [] {});
}

}  // namespace interpool::python
