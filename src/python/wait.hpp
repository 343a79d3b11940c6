// Blocking engine waits called from Python: the GIL released, signals and task
// interruptions honoured.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "core/interpreter.hpp"
#include "core/watchdog.hpp"

namespace interpool::python {

/// Runs `attempt` (an interruptible wait on an engine object, returning a
/// result with an Interrupted value) with the GIL released. When the wait is
/// interrupted: in a task that interpool interrupts, raises its
/// interpool.TaskInterrupted; otherwise runs the signal handlers (Ctrl-C raises
/// KeyboardInterrupt) and waits again. False with the exception set.
template <class Result, class Attempt>
bool wait_releasing_gil(Attempt&& attempt, Result& result) {
  for (;;) {
    {
      GilRelease unlocked;
      result = attempt();
    }
    if (result != Result::Interrupted) return true;
    if (raise_task_interruption()) return false;
    if (PyErr_CheckSignals() < 0) return false;
  }
}

}  // namespace interpool::python
