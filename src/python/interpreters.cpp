// The functions the PEP 734 face (interpool.interpreters) builds on: create,
// close, list, exec, prepare_main and call in isolated interpreters.
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <marshal.h>

#include <interpool/error.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/interpreter.hpp"
#include "core/py_value.hpp"
#include "core/runner.hpp"
#include "core/table.hpp"
#include "core/watchdog.hpp"
#include "python/errors.hpp"
#include "python/module_state.hpp"

namespace interpool::python {
namespace {

// ---------------------------------------------------------------------------
// Interpreters (the PEP 734 face builds on these)
// ---------------------------------------------------------------------------

bool parse_id(PyObject* obj, std::int64_t& id) {
  long long v = PyLong_AsLongLong(obj);
  if (v == -1 && PyErr_Occurred()) return false;
  if (v < 0) {
    PyErr_Format(PyExc_ValueError, "interpreter ids are >= 0, got %lld", v);
    return false;
  }
  id = v;
  return true;
}

// (type module, type qualname, message, formatted traceback)
PyObject* excinfo_tuple(const ErrorInfo& info) {
  return Py_BuildValue("(s#s#s#s#)", info.type_module.data(), (Py_ssize_t)info.type_module.size(),
                       info.type_qualname.data(), (Py_ssize_t)info.type_qualname.size(),
                       info.message.data(), (Py_ssize_t)info.message.size(), info.traceback.data(),
                       (Py_ssize_t)info.traceback.size());
}

PyObject* mod_interp_create(PyObject* module, PyObject*) {
  try {
    return PyLong_FromLongLong(InterpreterTable::create());
  } catch (...) {
    return raise_engine_error(state_of(module));
  }
}

PyObject* mod_interp_close(PyObject* module, PyObject* arg) {
  std::int64_t id;
  if (!parse_id(arg, id)) return nullptr;
  ModuleState* st = state_of(module);
  try {
    InterpreterTable::close(id);
  } catch (const InterpreterNotFound&) {
    // As the program ends the extension's atexit hook closes the interpreters
    // left open; closing one after that (a __del__ at finalization) finds it gone.
    if (!st->exiting) return raise_engine_error(st);
  } catch (...) {
    return raise_engine_error(st);
  }
  Py_RETURN_NONE;
}

// An interpreters.Interpreter object that stands for interpreter `id` now owns
// it: True if counted (an interpreter of interp_create, not being closed).
PyObject* mod_interp_acquire(PyObject*, PyObject* arg) {
  std::int64_t id;
  if (!parse_id(arg, id)) return nullptr;
  return PyBool_FromLong(InterpreterTable::acquire(id));
}

// Such an owner is gone: the last one closes the interpreter (True if it did).
PyObject* mod_interp_release(PyObject* module, PyObject* arg) {
  std::int64_t id;
  if (!parse_id(arg, id)) return nullptr;
  try {
    return PyBool_FromLong(InterpreterTable::release(id));  // as interp_close, if it closes
  } catch (...) {
    return raise_engine_error(state_of(module));
  }
}

PyObject* mod_interp_list(PyObject*, PyObject*) {
  std::vector<std::int64_t> ids = InterpreterTable::all_ids();
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(ids.size()));
  if (!list) return nullptr;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    PyObject* v = PyLong_FromLongLong(ids[i]);
    if (!v) {
      Py_DECREF(list);
      return nullptr;
    }
    PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), v);
  }
  return list;
}

// "interpool" (made by create()), "runtime init" (main), "unknown" (made by others); None if gone.
PyObject* mod_interp_whence(PyObject*, PyObject* arg) {
  std::int64_t id;
  if (!parse_id(arg, id)) return nullptr;
  if (InterpreterTable::contains(id)) return PyUnicode_FromString("interpool");
  if (id == 0) return PyUnicode_FromString("runtime init");
  if (is_pool_worker(id)) return PyUnicode_FromString("interpool worker");
  if (InterpreterTable::find_state(id)) return PyUnicode_FromString("unknown");
  Py_RETURN_NONE;
}

PyObject* mod_interp_is_running(PyObject*, PyObject* arg) {
  std::int64_t id;
  if (!parse_id(arg, id)) return nullptr;
  if (id == 0) Py_RETURN_TRUE;  // the main interpreter runs the program
  return PyBool_FromLong(InterpreterTable::is_running(id));
}

// Runs `code` (source text, or bytes of a marshalled code object) in the
// __main__ of interpreter `id`, on this thread. Returns None, or the excinfo
// tuple of the exception it raised.
PyObject* mod_interp_exec(PyObject* module, PyObject* args) {
  PyObject *id_obj, *code;
  if (!PyArg_ParseTuple(args, "OO:interp_exec", &id_obj, &code)) return nullptr;
  std::int64_t id;
  if (!parse_id(id_obj, id)) return nullptr;
  bool is_source = PyUnicode_Check(code);
  if (!is_source && !PyBytes_Check(code))
    return PyErr_Format(PyExc_TypeError, "code must be str or marshalled bytes, not %.100s",
                        Py_TYPE(code)->tp_name);
  std::string text;
  if (is_source) {
    Py_ssize_t n;
    const char* p = PyUnicode_AsUTF8AndSize(code, &n);
    if (!p) return nullptr;
    text.assign(p, static_cast<std::size_t>(n));
  } else {
    text.assign(PyBytes_AS_STRING(code), static_cast<std::size_t>(PyBytes_GET_SIZE(code)));
  }
  ModuleState* st = state_of(module);
  std::optional<ErrorInfo> failure;
  try {
    auto inside = InterpreterTable::enter(id);
    PyObject* main = PyImport_AddModule("__main__");  // borrowed
    PyObject* ns = main ? PyModule_GetDict(main) : nullptr;
    PyObject* result = nullptr;
    if (ns) {
      if (is_source) {
        result = PyRun_String(text.c_str(), Py_file_input, ns, ns);
      } else {
        PyObject* obj =
            PyMarshal_ReadObjectFromString(text.data(), static_cast<Py_ssize_t>(text.size()));
        // Code with free variables reads its enclosing function's cells, which
        // are not there: run alone, it crashes.
        if (obj && PyCode_Check(obj) && PyCode_GetNumFree(reinterpret_cast<PyCodeObject*>(obj)) > 0)
          PyErr_SetString(
              PyExc_ValueError,
              "the code uses names of an enclosing function (free variables): it cannot run alone");
        else if (obj && PyCode_Check(obj))
          result = PyEval_EvalCode(obj, ns, ns);
        else if (obj)
          PyErr_SetString(PyExc_TypeError, "the marshalled data is not a code object");
        Py_XDECREF(obj);
      }
    }
    if (result)
      Py_DECREF(result);
    else
      failure = capture_error();
  } catch (...) {
    return raise_engine_error(st);
  }
  if (failure) return excinfo_tuple(*failure);
  Py_RETURN_NONE;
}

// Binds names in __main__ of interpreter `id` to copies of the given values.
PyObject* mod_interp_prepare_main(PyObject* module, PyObject* args) {
  PyObject *id_obj, *ns;
  if (!PyArg_ParseTuple(args, "OO!:interp_prepare_main", &id_obj, &PyDict_Type, &ns))
    return nullptr;
  std::int64_t id;
  if (!parse_id(id_obj, id)) return nullptr;
  ModuleState* st = state_of(module);
  try {
    std::vector<std::pair<std::string, Value>> values;
    {
      ToValue convert;  // one crossing: a value bound to two names arrives as one object
      PyObject *key, *value;
      Py_ssize_t pos = 0;
      while (PyDict_Next(ns, &pos, &key, &value)) {
        if (!PyUnicode_Check(key))
          return PyErr_Format(PyExc_TypeError, "names must be str, not %.100s",
                              Py_TYPE(key)->tp_name);
        std::string name = to_utf8(key);
        values.emplace_back(name, convert(value, "'" + name + "'"));
      }
    }
    std::optional<ErrorInfo> failure;
    {
      // Alone: names must not change under code that runs in that __main__.
      auto inside = InterpreterTable::enter(id, true);
      PyObject* main = PyImport_AddModule("__main__");
      bool ok = main != nullptr;
      ToPython rebuild;
      for (auto& [name, v] : values) {
        if (!ok) break;
        PyObject* obj = rebuild(v);
        ok = obj && PyObject_SetAttrString(main, name.c_str(), obj) == 0;
        Py_XDECREF(obj);
      }
      if (!ok) failure = capture_error();
    }
    if (failure)
      return PyErr_Format(st->InterpreterError, "prepare_main failed in interpreter %lld: %s: %s",
                          (long long)id, failure->type_name().c_str(), failure->message.c_str());
  } catch (const InterpreterRunning& e) {
    return PyErr_Format(st->InterpreterError,
                        "%s: prepare_main cannot bind names while code runs there; call it "
                        "before exec() or call(), or once they have returned",
                        e.what());
  } catch (...) {
    return raise_engine_error(st);
  }
  Py_RETURN_NONE;
}

// Calls module.qualname(*args, **kwargs) in interpreter `id` on this thread.
// Returns (True, result) or (False, excinfo tuple).
PyObject* mod_interp_call(PyObject* module, PyObject* args) {
  PyObject *id_obj, *mod, *qualname, *call_args, *call_kwargs = Py_None;
  if (!PyArg_ParseTuple(args, "OOOO|O:interp_call", &id_obj, &mod, &qualname, &call_args,
                        &call_kwargs))
    return nullptr;
  std::int64_t id;
  if (!parse_id(id_obj, id)) return nullptr;
  ModuleState* st = state_of(module);
  try {
    Call call;
    if (!parse_function_ref(mod, qualname, call.function) ||
        !convert_call_args(call_args, call_kwargs, call))
      return nullptr;
    Outcome out;
    {
      auto inside = InterpreterTable::enter(id);
      Runner runner;  // resolves the function and runs the call in this interpreter
      out = runner.run(call);
    }
    if (out.status == Outcome::Status::Ok) {
      PyObject* result = rebuilt_result(out.value);
      if (!result) return nullptr;
      return Py_BuildValue("(ON)", Py_True, result);
    }
    // A result that cannot cross (the runner's own NotShareableError, with no
    // traceback: nothing raised it in Python) is the caller's error, as in 3.14.
    if (out.error.not_shareable) {
      if (PyObject* exc = new_not_shareable(st, *out.error.not_shareable))
        PyErr_SetRaisedException(exc);
      return nullptr;
    }
    return Py_BuildValue("(ON)", Py_False, excinfo_tuple(out.error));
  } catch (...) {
    return raise_engine_error(st);
  }
}
}  // namespace

PyMethodDef interpreter_functions[] = {
    {"interp_create", mod_interp_create, METH_NOARGS,
     "Create an isolated interpreter; return its id."},
    {"interp_close", mod_interp_close, METH_O,
     "interp_close($module, id, /)\n--\n\nClose an interpreter made by interp_create."},
    {"interp_acquire", mod_interp_acquire, METH_O,
     "interp_acquire($module, id, /)\n--\n\nCount an owner of an interpreter made by "
     "interp_create; False if not counted (not one of those, or being closed)."},
    {"interp_release", mod_interp_release, METH_O,
     "interp_release($module, id, /)\n--\n\nCount an owner less; the last one closes the "
     "interpreter unless it runs code (True if it closed it)."},
    {"interp_list", mod_interp_list, METH_NOARGS, "Ids of every interpreter of the process."},
    {"interp_whence", mod_interp_whence, METH_O,
     "interp_whence($module, id, /)\n--\n\nWho made the interpreter (None if it is gone)."},
    {"interp_is_running", mod_interp_is_running, METH_O,
     "interp_is_running($module, id, /)\n--\n\nTrue while code runs in the interpreter."},
    {"interp_exec", mod_interp_exec, METH_VARARGS,
     "interp_exec($module, id, code, /)\n--\n\nRun source or marshalled code in its __main__."},
    {"interp_prepare_main", mod_interp_prepare_main, METH_VARARGS,
     "interp_prepare_main($module, id, ns, /)\n--\n\nBind names in its __main__ (ns: a dict)."},
    {"interp_call", mod_interp_call, METH_VARARGS,
     "interp_call($module, id, module, qualname, args, kwargs=None, /)\n--\n\n"
     "Call module.qualname(*args, **kwargs) there."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace interpool::python
