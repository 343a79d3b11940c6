// The _interpool extension's one boundary for errors: engine errors and task
// outcomes become Python exceptions here, and timeouts are read here.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <initializer_list>
#include <interpool/error.hpp>
#include <interpool/pool.hpp>
#include <interpool/signal.hpp>
#include <optional>
#include <string>

#include "python/module_state.hpp"

namespace interpool::python {

// A new exception class "interpool.<name>" with these bases (one or more);
// nullptr with an error set.
PyObject* new_exception_class(const char* name, std::initializer_list<PyObject*> bases,
                              const char* doc);
// BrokenInterpreterPool and CancelledError need concurrent.futures, which
// workers seldom use: made on first need (and by the module's __getattr__).
bool ensure_futures_types(ModuleState* st);
// QueueFull subclasses queue.Full: made on first need (and by the module's __getattr__).
bool ensure_queue_full(ModuleState* st);
// Turns the C++ error being handled (engine errors, std::bad_alloc, ...) into
// its Python exception, the one mapping of the extension; returns nullptr.
// `st` may be nullptr: the current interpreter's state is then looked up if
// the exception is one of the module's.
PyObject* raise_engine_error(ModuleState* st = nullptr);
// NotShareableError for `e` (new reference), its parts as attributes: where
// (str), path (a tuple of positions and, as text, dict keys and the like),
// what (the object, described) and reason.
PyObject* new_not_shareable(ModuleState* st, const NotShareable& e);
// Sets the exception an Outcome that is not Ok stands for; returns nullptr.
PyObject* raise_outcome(ModuleState* st, const Outcome& out);

// A task's result, rebuilt here; nullptr with the error set, noted as the
// rebuild's (not the task's).
PyObject* rebuilt_result(const Value& value);

// How a call reads its timeout argument: as the standard library API it
// mirrors does.
enum class TimeoutRule {
  NonNegative,  // queues, tasks: None (none) or seconds >= 0
  AnyNumber,    // threading's Event, Semaphore, Barrier: None or seconds, <= 0 meaning now
  Positive,     // a task's time limit: None (none) or seconds > 0
  MinusOne,     // threading.Lock's: -1 (none) or seconds >= 0; None refused
};
// Reads a timeout argument, the one way every call of the extension reads
// them: `seconds` set (nullopt: no timeout), or false with TypeError or
// ValueError set, the message naming the rule and the value.
bool parse_timeout(PyObject* timeout, TimeoutRule rule, std::optional<double>& seconds);
// The deadline a timeout argument gives, from now (no timeout: never).
bool parse_deadline(PyObject* timeout, TimeoutRule rule, Deadline& out);

}  // namespace interpool::python
