// The _interpool extension's one boundary for errors: engine errors and task
// outcomes become Python exceptions here, and timeouts are read here.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <interpool/pool.hpp>
#include <interpool/signal.hpp>

#include "python/module_state.hpp"

namespace interpool::python {

// BrokenInterpreterPool and CancelledError need concurrent.futures, which
// workers seldom use: made on first need (and by the module's __getattr__).
bool ensure_futures_types(ModuleState* st);
// QueueFull subclasses queue.Full: made on first need (and by the module's __getattr__).
bool ensure_queue_full(ModuleState* st);
// Turns an engine error being handled into a Python exception; returns nullptr.
PyObject* raise_engine_error(ModuleState* st);
// Sets the exception an Outcome that is not Ok stands for; returns nullptr.
PyObject* raise_outcome(ModuleState* st, const Outcome& out);
// timeout=None -> never; block=False -> now.
bool parse_deadline(PyObject* timeout, int block, Deadline& out);

}  // namespace interpool::python
