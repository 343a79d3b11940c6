#include "core/runner.hpp"

#include <string_view>

#include "core/py_ref.hpp"
#include "core/py_value.hpp"

namespace interpool {

Runner::~Runner() {
  for (auto& [key, fn] : functions_) Py_DECREF(fn);
  Py_XDECREF(thread_count_);
}

Py_ssize_t Runner::threads_running() {
  if (!thread_count_) {
    PyObject* thread = PyImport_ImportModule("_thread");
    if (!thread) return -1;
    thread_count_ = PyObject_GetAttrString(thread, "_count");
    Py_DECREF(thread);
    if (!thread_count_) return -1;
  }
  PyObject* n = PyObject_CallNoArgs(thread_count_);
  if (!n) return -1;
  Py_ssize_t count = PyLong_AsSsize_t(n);
  Py_DECREF(n);
  return count;
}

/// Replaces sys.path; false with a Python error set on failure.
bool Runner::set_sys_path(const std::vector<std::string>& entries) {
  PyObject* path = PySys_GetObject("path");  // borrowed
  PyObject* list = PyList_New(0);
  if (!list) return false;
  for (const std::string& e : entries) {
    PyObject* s = PyUnicode_DecodeFSDefaultAndSize(e.data(), static_cast<Py_ssize_t>(e.size()));
    if (!s || PyList_Append(list, s) < 0) {
      Py_XDECREF(s);
      Py_DECREF(list);
      return false;
    }
    Py_DECREF(s);
  }
  int rc = path && PyList_Check(path) ? PyList_SetSlice(path, 0, PyList_GET_SIZE(path), list)
                                      : PySys_SetObject("path", list);
  Py_DECREF(list);
  return rc == 0;
}

namespace {

// True if the exception set now came up through a module's top-level code: a
// "<module>" frame in its traceback. (The import system's own frames are cut
// from tracebacks; the module's are not.)
bool raised_in_module_code() {
  PyObject* exc = PyErr_GetRaisedException();
  bool found = false;
  if (exc) {
    PyObject* tb = PyException_GetTraceback(exc);
    for (PyObject* t = tb; t && PyTraceBack_Check(t) && !found;
         t = reinterpret_cast<PyObject*>(reinterpret_cast<PyTracebackObject*>(t)->tb_next)) {
      PyCodeObject* code = PyFrame_GetCode(reinterpret_cast<PyTracebackObject*>(t)->tb_frame);
      found = PyUnicode_CompareWithASCIIString(code->co_name, "<module>") == 0;
      Py_DECREF(code);
    }
    Py_XDECREF(tb);
  }
  PyErr_SetRaisedException(exc);
  return found;
}

}  // namespace

Outcome Runner::failure() {
  failed_in_module_code_ = raised_in_module_code();
  return Outcome::failed(capture_error());
}

Outcome Runner::run(const Call& call, Result keep) {
  failed_in_module_code_ = false;
  PyObject* fn = resolve(call.function);
  if (!fn) return failure();
  // Owned by Refs: a C++ error thrown on the way (run_task makes it the
  // task's outcome) drops them too.
  Ref args;
  Ref kwargs;
  {
    // One crossing: an object in two arguments arrives as one object. (Scoped:
    // the objects it holds are the call's to drop.)
    ToPython rebuild;
    auto not_rebuilt = [this] {
      raise_with_note(PyErr_GetRaisedException(),
                      "interpool: raised while rebuilding the task's arguments in the worker; the "
                      "task did not run");
      return failure();
    };
    args = Ref(rebuild(call.args));
    if (!args) return not_rebuilt();
    if (!PyTuple_Check(args.get())) {
      PyErr_SetString(PyExc_TypeError, "interpool: call arguments must be a tuple");
      return failure();
    }
    if (const Dict* d = call.kwargs.get_if<Dict>(); d && !d->items.empty()) {
      kwargs = Ref(rebuild(call.kwargs));
      if (!kwargs) return not_rebuilt();
    }
  }
  Ref result(PyObject_Call(fn, args.get(), kwargs.get()));
  args = Ref();
  kwargs = Ref();
  if (!result) return failure();
  if (keep == Result::Discard) return Outcome::ok(Value());
  try {
    return Outcome::ok(to_value(result.get(), "the result"));
  } catch (const NotShareable& e) {
    return Outcome::failed(
        ErrorInfo{"interpool", "NotShareableError", e.what(), {}, {}, {}, {}, e});
  } catch (const PythonErrorSet&) {
    return failure();
  } catch (const std::bad_alloc&) {
    // What was converted of it so far is dropped with the converter.
    PyErr_SetString(PyExc_MemoryError,
                    "interpool: out of memory while converting the task's result to send it "
                    "back");
    return failure();
  }
}

// A borrowed reference to the function, cached for the worker's life; nullptr with an error set.
PyObject* Runner::resolve(const FunctionRef& ref) {
  if (last_key_ && last_key_->size() == ref.module.size() + 1 + ref.qualname.size() &&
      (*last_key_)[ref.module.size()] == '\0' &&
      last_key_->compare(0, ref.module.size(), ref.module) == 0 &&
      last_key_->compare(ref.module.size() + 1, std::string::npos, ref.qualname) == 0)
    return last_fn_;
  std::string key = ref.module;
  key += '\0';
  key += ref.qualname;
  if (auto it = functions_.find(key); it != functions_.end()) {
    last_key_ = &it->first;
    last_fn_ = it->second;
    return it->second;
  }
  PyObject* obj = PyImport_ImportModule(ref.module.c_str());
  std::string_view rest = ref.qualname;
  while (obj && !rest.empty()) {
    std::size_t dot = rest.find('.');
    std::string part(rest.substr(0, dot));
    rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
    PyObject* next = PyObject_GetAttrString(obj, part.c_str());
    Py_DECREF(obj);
    obj = next;
  }
  if (obj) {
    auto it = functions_.emplace(std::move(key), obj).first;
    last_key_ = &it->first;
    last_fn_ = obj;
  }
  return obj;
}

}  // namespace interpool
