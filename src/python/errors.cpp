// The _interpool extension's errors at the boundary: engine errors, task
// outcomes and timeouts as Python sees them.
#include "python/errors.hpp"

#include <cmath>
#include <interpool/error.hpp>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/py_value.hpp"
#include "core/table.hpp"

namespace interpool::python {
namespace {

// RemoteError(message) with type_name, message and traceback attributes.
PyObject* new_remote_error(ModuleState* st, const ErrorInfo& info, bool as_cause) {
  std::string text =
      as_cause ? "\n\"\"\"\n" + info.traceback + "\"\"\""
               : info.type_name() + ": " + info.message +
                     (info.traceback.empty() ? "" : "\n\nRemote traceback:\n" + info.traceback);
  PyObject* exc = PyObject_CallFunction(st->RemoteError, "s#", text.data(),
                                        static_cast<Py_ssize_t>(text.size()));
  if (!exc) return nullptr;
  auto set = [&](const char* name, const std::string& v) {
    PyObject* s = PyUnicode_DecodeUTF8(v.data(), static_cast<Py_ssize_t>(v.size()), "replace");
    int rc = s ? PyObject_SetAttrString(exc, name, s) : -1;
    Py_XDECREF(s);
    return rc;
  };
  if (set("type_name", info.type_name()) < 0 || set("message", info.message) < 0 ||
      set("traceback", info.traceback) < 0) {
    Py_DECREF(exc);
    return nullptr;
  }
  return exc;
}

// The RuntimeError of a task that returned leaving threads running (the
// engine gives their names only).
PyObject* threads_left_exception(const std::vector<std::string>& names) {
  std::string list;
  for (const std::string& name : names) list += (list.empty() ? "" : ", ") + name;
  std::string text = "the task returned leaving " + std::to_string(names.size()) +
                     " thread(s) running in its worker (" + list +
                     "): join the threads a task starts before it returns. interpool "
                     "interrupted them and replaces the worker's interpreter";
  return PyObject_CallFunction(PyExc_RuntimeError, "s#", text.data(),
                               static_cast<Py_ssize_t>(text.size()));
}

// `exc` (a reference this takes) with a RemoteError holding the worker's
// traceback as its cause; nullptr with an error set if that cannot be made.
PyObject* with_remote_cause(ModuleState* st, PyObject* exc, const ErrorInfo& info) {
  PyObject* cause = new_remote_error(st, info, /*as_cause=*/true);
  if (!cause) {
    Py_DECREF(exc);
    return nullptr;
  }
  PyException_SetCause(exc, cause);  // steals cause
  return exc;
}

// A task's exception rebuilt in this interpreter (new reference): the same
// type when it unpickles (its __cause__ holds the worker's traceback), else a
// RemoteError. nullptr with an error set if even that fails.
PyObject* task_exception(ModuleState* st, const ErrorInfo& info) {
  if (!info.threads_left.empty()) return threads_left_exception(info.threads_left);
  PyObject* exc = nullptr;
  if (!info.pickled.empty()) {
    Value pickled = Pickled{info.pickled};
    exc = to_python(pickled);
    if (!exc || !PyExceptionInstance_Check(exc)) {
      Py_XDECREF(exc);
      exc = nullptr;
      PyErr_Clear();
    }
  }
  if (!exc && info.not_shareable) return new_not_shareable(st, *info.not_shareable);
  if (!exc && info.type_module == "interpool" && info.type_qualname == "NotShareableError")
    exc = PyObject_CallFunction(st->NotShareableError, "s", info.message.c_str());
  if (!exc) return new_remote_error(st, info, /*as_cause=*/false);
  return with_remote_cause(st, exc, info);
}

PyObject* broken_exception(ModuleState* st, const ErrorInfo& cause) {
  std::string text =
      "the pool is broken: a worker initializer raised " + cause.type_name() + ": " + cause.message;
  if (cause.type_qualname == "InterpreterError") text = "the pool is broken: " + cause.message;
  if (!ensure_futures_types(st)) return nullptr;
  PyObject* exc = PyObject_CallFunction(st->BrokenInterpreterPool, "s", text.c_str());
  if (!exc || cause.traceback.empty()) return exc;
  return with_remote_cause(st, exc, cause);  // the initializer's traceback, as a task's
}

}  // namespace

PyObject* new_exception_class(const char* name, std::initializer_list<PyObject*> bases,
                              const char* doc) {
  std::string qualified = std::string("interpool.") + name;
  if (bases.size() == 1)
    return PyErr_NewExceptionWithDoc(qualified.c_str(), doc, *bases.begin(), nullptr);
  PyObject* tuple = PyTuple_New(static_cast<Py_ssize_t>(bases.size()));
  if (!tuple) return nullptr;
  Py_ssize_t i = 0;
  for (PyObject* base : bases) PyTuple_SET_ITEM(tuple, i++, Py_NewRef(base));
  PyObject* cls = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, tuple, nullptr);
  Py_DECREF(tuple);
  return cls;
}

bool ensure_futures_types(ModuleState* st) {
  if (st->BrokenInterpreterPool) return true;
  PyObject* futures = PyImport_ImportModule("concurrent.futures._base");
  if (!futures) return false;
  PyObject* broken_base = PyObject_GetAttrString(futures, "BrokenExecutor");
  PyObject* cancelled = PyObject_GetAttrString(futures, "CancelledError");
  Py_DECREF(futures);
  PyObject* broken = broken_base ? new_exception_class("BrokenInterpreterPool", {broken_base},
                                                       "A worker could not start or its "
                                                       "initializer failed; the pool takes no "
                                                       "more tasks.")
                                 : nullptr;
  Py_XDECREF(broken_base);
  if (!broken || !cancelled) {
    Py_XDECREF(broken);
    Py_XDECREF(cancelled);
    return false;
  }
  st->BrokenInterpreterPool = broken;
  st->CancelledError = cancelled;
  return true;
}

bool ensure_queue_full(ModuleState* st) {
  if (st->QueueFull) return true;
  PyObject* queue_module = PyImport_ImportModule("queue");
  if (!queue_module) return false;
  PyObject* full = PyObject_GetAttrString(queue_module, "Full");
  Py_DECREF(queue_module);
  if (!full) return false;
  st->QueueFull = new_exception_class("QueueFull", {st->QueueError, full}, "The queue was full.");
  Py_DECREF(full);
  return st->QueueFull != nullptr;
}

PyObject* new_not_shareable(ModuleState* st, const NotShareable& e) {
  const std::string_view text = e.what();
  PyObject* message =
      PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "replace");
  PyObject* exc = message ? PyObject_CallOneArg(st->NotShareableError, message) : nullptr;
  Py_XDECREF(message);
  if (!exc) return nullptr;
  PyObject* path = PyTuple_New(static_cast<Py_ssize_t>(e.path().size()));
  for (std::size_t i = 0; path && i < e.path().size(); ++i) {
    const NotShareable::Step& step = e.path()[i];
    PyObject* item = step.index >= 0 ? PyLong_FromLongLong(step.index)
                                     : PyUnicode_DecodeUTF8(
                                           step.text.data(),
                                           static_cast<Py_ssize_t>(step.text.size()), "replace");
    if (!item)
      Py_CLEAR(path);
    else
      PyTuple_SET_ITEM(path, static_cast<Py_ssize_t>(i), item);
  }
  auto set = [&](const char* name, const std::string& v) {
    PyObject* s = PyUnicode_DecodeUTF8(v.data(), static_cast<Py_ssize_t>(v.size()), "replace");
    int rc = s ? PyObject_SetAttrString(exc, name, s) : -1;
    Py_XDECREF(s);
    return rc;
  };
  if (!path || PyObject_SetAttrString(exc, "path", path) < 0 || set("where", e.where()) < 0 ||
      set("what", e.what_object()) < 0 || set("reason", e.reason()) < 0) {
    Py_XDECREF(path);
    Py_DECREF(exc);
    return nullptr;
  }
  Py_DECREF(path);
  return exc;
}

PyObject* raise_engine_error(ModuleState* st) {
  // The module's own exception types, from `st` or the current interpreter's.
  auto module_state = [&]() -> ModuleState* { return st ? st : (st = current_state()); };
  try {
    throw;
  } catch (const PythonErrorSet&) {
    // Already set.
  } catch (const NotShareable& e) {
    if (module_state()) {
      if (PyObject* exc = new_not_shareable(st, e)) {
        PyErr_SetObject(st->NotShareableError, exc);
        Py_DECREF(exc);
      }
    }
  } catch (const PoolBroken& e) {
    if (module_state() && ensure_futures_types(st))
      PyErr_SetString(st->BrokenInterpreterPool, e.what());
  } catch (const PoolClosed& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (const UsedAfterFork& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (const InterpreterNotFound& e) {
    if (module_state()) PyErr_SetString(st->InterpreterNotFoundError, e.what());
  } catch (const InterpreterError& e) {
    if (module_state()) PyErr_SetString(st->InterpreterError, e.what());
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::overflow_error& e) {
    PyErr_SetString(PyExc_OverflowError, e.what());
  } catch (const std::logic_error& e) {  // invalid_argument, out_of_range: a bad argument
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_SystemError, e.what());
  }
  return nullptr;
}

PyObject* raise_outcome(ModuleState* st, const Outcome& out) {
  PyObject* exc = nullptr;
  switch (out.status) {
    case Outcome::Status::Ok:
      PyErr_SetString(PyExc_SystemError, "interpool: raise_outcome of a result");
      return nullptr;
    case Outcome::Status::Error:
      exc = task_exception(st, out.error);
      break;
    case Outcome::Status::Cancelled:
      exc = ensure_futures_types(st) ? PyObject_CallNoArgs(st->CancelledError) : nullptr;
      break;
    case Outcome::Status::Broken:
      exc = broken_exception(st, out.error);
      break;
    case Outcome::Status::Interrupted: {
      // A time limit: the TimeoutError of concurrent.futures; os._exit: WorkerExited;
      // otherwise TaskInterrupted.
      PyObject* type = out.interruption == Interruption::Timeout  ? PyExc_TimeoutError
                       : out.interruption == Interruption::Exited ? st->WorkerExited
                                                                  : st->TaskInterrupted;
      exc = PyObject_CallFunction(type, "s", out.error.message.c_str());
      PyObject* where = exc ? new_remote_error(st, out.error, /*as_cause=*/true) : nullptr;
      if (!where) Py_CLEAR(exc);
      if (exc) PyException_SetCause(exc, where);  // steals `where`
      break;
    }
  }
  if (exc) PyErr_SetRaisedException(exc);
  return nullptr;
}

PyObject* rebuilt_result(const Value& value) {
  PyObject* result = to_python(value);
  if (!result)
    raise_with_note(PyErr_GetRaisedException(),
                    "interpool: the task returned, but its result could not be rebuilt in this "
                    "interpreter");
  return result;
}

bool parse_timeout(PyObject* timeout, TimeoutRule rule, std::optional<double>& seconds) {
  seconds.reset();
  if (!timeout || (timeout == Py_None && rule != TimeoutRule::MinusOne)) return true;
  double value = PyFloat_AsDouble(timeout);
  if (value == -1.0 && PyErr_Occurred()) return false;
  if (rule == TimeoutRule::MinusOne && value == -1.0) return true;
  bool ok = !std::isnan(value) && (rule == TimeoutRule::AnyNumber  ? true
                                   : rule == TimeoutRule::Positive ? value > 0
                                                                   : value >= 0);
  if (!ok) {
    const char* what = rule == TimeoutRule::AnyNumber  ? "number or None"
                       : rule == TimeoutRule::Positive ? "positive number or None"
                       : rule == TimeoutRule::MinusOne ? "non-negative number or -1"
                                                       : "non-negative number or None";
    PyErr_Format(PyExc_ValueError, "timeout value must be a %s, not %R", what, timeout);
    return false;
  }
  seconds = value;
  return true;
}

bool parse_deadline(PyObject* timeout, TimeoutRule rule, Deadline& out) {
  std::optional<double> seconds;
  if (!parse_timeout(timeout, rule, seconds)) return false;
  out = seconds ? Deadline::after(*seconds) : Deadline::never();
  return true;
}

}  // namespace interpool::python
