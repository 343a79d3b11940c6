// The _interpool extension: the engine's primitives as Python types. This
// file: the module, its functions, init and traverse/clear; the types are in
// queue.cpp, pool.cpp, shared_buffer.cpp, sync_types.cpp, the PEP 734
// functions in interpreters.cpp, the error boundary in errors.cpp.
//
// Multi-phase init, per-module state, heap types only, and per-interpreter GIL
// support: every interpreter that imports it gets its own module, types and
// exceptions. Logic lives in the engine; the extension converts at the boundary.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdio>
#include <exception>
#include <interpool/error.hpp>
#include <interpool/queue.hpp>
#include <interpool/sync.hpp>
#include <mutex>
#include <string>

#include "core/interpreter.hpp"
#include "core/pool.hpp"
#include "core/py_value.hpp"
#include "core/table.hpp"
#include "core/watchdog.hpp"
#include "python/errors.hpp"
#include "python/module_state.hpp"
#include "python/shared.hpp"

namespace interpool::python {
namespace {

// ---------------------------------------------------------------------------
// Module functions
// ---------------------------------------------------------------------------

PyObject* mod_roundtrip(PyObject* module, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"obj", "allow_pickle", nullptr};
  PyObject* obj;
  int allow_pickle = 1;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|p:roundtrip", const_cast<char**>(kwlist), &obj,
                                   &allow_pickle))
    return nullptr;
  ToValueOptions options;
  options.allow_pickle = allow_pickle != 0;
  try {
    return to_python(to_value(obj, "the object", options));
  } catch (...) {
    return raise_engine_error(state_of(module));
  }
}

PyObject* mod_value_kind(PyObject* module, PyObject* obj) {
  try {
    Value v = to_value(obj, "the object");
    std::string_view name = kind_name(v.kind());
    return PyUnicode_FromStringAndSize(name.data(), static_cast<Py_ssize_t>(name.size()));
  } catch (...) {
    return raise_engine_error(state_of(module));
  }
}

// True if obj converts without pickling anything (native data and engine objects).
PyObject* mod_is_shareable(PyObject* module, PyObject* obj) {
  ToValueOptions options;
  options.allow_pickle = false;
  try {
    to_value(obj, "the object", options);
  } catch (const NotShareable&) {
    Py_RETURN_FALSE;
  } catch (...) {
    return raise_engine_error(state_of(module));
  }
  Py_RETURN_TRUE;
}

// A task's exception as plain data that crosses as a result does: a map chunk
// that fails part way returns it after the results before it, and the caller
// raises it with raise_task_error, as the chunk's own failure would have been.
// (The ErrorInfo fields a raised exception has: no threads left, nothing not
// shareable; those are the engine's findings.)
// The reducer_override of the engine's Pickler (interpool._byvalue): called for
// every object pickled, so the objects that need nothing (all but functions,
// classes and ByValue) are told so here, without running Python code.
PyObject* mod_reducer_override(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 3) {
    PyErr_SetString(PyExc_TypeError, "reducer_override takes (slow, by_value, obj)");
    return nullptr;
  }
  PyObject* obj = args[2];
  if (!PyFunction_Check(obj) && !PyType_Check(obj) &&
      reinterpret_cast<PyObject*>(Py_TYPE(obj)) != args[1])
    return Py_NewRef(Py_NotImplemented);
  return PyObject_CallOneArg(args[0], obj);
}

PyObject* mod_task_error(PyObject* module, PyObject* exc) {
  if (!PyExceptionInstance_Check(exc))
    return PyErr_Format(PyExc_TypeError, "task_error() takes an exception, not %.100s",
                        Py_TYPE(exc)->tp_name);
  try {
    PyErr_SetRaisedException(Py_NewRef(exc));
    const ErrorInfo e = capture_error();
    auto size = [](const std::string& s) { return static_cast<Py_ssize_t>(s.size()); };
    return Py_BuildValue("(s#s#s#s#y#s#)", e.type_module.data(), size(e.type_module),
                         e.type_qualname.data(), size(e.type_qualname), e.message.data(),
                         size(e.message), e.traceback.data(), size(e.traceback), e.pickled.data(),
                         size(e.pickled), e.refused_module.data(), size(e.refused_module));
  } catch (...) {
    return raise_engine_error(state_of(module));
  }
}

PyObject* mod_raise_task_error(PyObject* module, PyObject* data) {
  const char* parts[6];
  Py_ssize_t sizes[6];
  if (!PyArg_ParseTuple(data, "s#s#s#s#y#s#:raise_task_error", &parts[0], &sizes[0], &parts[1],
                        &sizes[1], &parts[2], &sizes[2], &parts[3], &sizes[3], &parts[4], &sizes[4],
                        &parts[5], &sizes[5]))
    return nullptr;
  try {
    auto part = [&](int i) { return std::string(parts[i], static_cast<std::size_t>(sizes[i])); };
    ErrorInfo e{part(0), part(1), part(2), part(3), part(4), part(5), {}, {}};
    return raise_outcome(state_of(module), Outcome::failed(std::move(e)));
  } catch (...) {
    return raise_engine_error(state_of(module));
  }
}

PyObject* mod_interpreter_id(PyObject*, PyObject*) {
  return PyLong_FromLongLong(current_interpreter_id());
}

// not_shareable_at(exc, where, path): exc, a NotShareableError made from an
// engine error, at another place (a face names its own containers' insides).
PyObject* mod_not_shareable_at(PyObject* module, PyObject* args) {
  ModuleState* st = state_of(module);
  PyObject *exc, *where, *path;
  if (!PyArg_ParseTuple(args, "OUO!:not_shareable_at", &exc, &where, &PyTuple_Type, &path))
    return nullptr;
  std::vector<NotShareable::Step> steps;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(path); ++i) {
    PyObject* item = PyTuple_GET_ITEM(path, i);
    if (PyLong_Check(item)) {
      long long index = PyLong_AsLongLong(item);
      if (index == -1 && PyErr_Occurred()) return nullptr;
      steps.push_back({index, {}});
    } else if (PyUnicode_Check(item)) {
      steps.push_back({-1, to_utf8(item)});
    } else {
      return PyErr_Format(PyExc_TypeError, "path[%zd] must be int or str, not %.100s", i,
                          Py_TYPE(item)->tp_name);
    }
  }
  auto text = [&](const char* name, std::string& out) {
    PyObject* v = PyObject_GetAttrString(exc, name);
    if (v && !PyUnicode_Check(v))
      PyErr_Format(PyExc_TypeError, "%s of the exception must be str", name);
    bool ok = v && PyUnicode_Check(v);
    if (ok) out = to_utf8(v);
    Py_XDECREF(v);
    return ok;
  };
  std::string what, reason;
  if (!text("what", what) || !text("reason", reason)) return nullptr;
  return new_not_shareable(st, NotShareable(to_utf8(where), std::move(steps), what, reason));
}

// True if the script ended with an uncaught KeyboardInterrupt: the exception
// Python printed then (sys.last_exc), raised through the script's top level
// (a `<module>` frame of __main__), outside an interactive session (whose
// sys.last_exc may be a KeyboardInterrupt shown long before). A
// code.InteractiveInterpreter's runs in namespaces of its own.
bool script_ended_by_keyboard_interrupt() {
  PyObject* last = PySys_GetObject("last_exc");  // borrowed
  if (!last || Py_TYPE(last) != reinterpret_cast<PyTypeObject*>(PyExc_KeyboardInterrupt) ||
      PySys_GetObject("ps1"))
    return false;
  PyObject* main = PyImport_AddModule("__main__");  // borrowed
  PyObject* main_dict = main ? PyModule_GetDict(main) : nullptr;
  bool from_main = false;
  PyObject* tb = PyException_GetTraceback(last);
  for (PyObject* t = tb; t && t != Py_None && !from_main;
       t = reinterpret_cast<PyObject*>(reinterpret_cast<PyTracebackObject*>(t)->tb_next)) {
    PyFrameObject* frame = reinterpret_cast<PyTracebackObject*>(t)->tb_frame;
    if (!frame) continue;
    PyObject* globals = PyFrame_GetGlobals(frame);
    PyCodeObject* code = PyFrame_GetCode(frame);
    from_main =
        globals == main_dict && PyUnicode_CompareWithASCIIString(code->co_name, "<module>") == 0;
    Py_XDECREF(globals);
    Py_XDECREF(code);
  }
  Py_XDECREF(tb);
  PyErr_Clear();
  return from_main;
}

// Py_RunMain ends the process by SIGINT (status 130) when the script ended
// with an uncaught KeyboardInterrupt, as a process-wide flag records; any
// source text that runs in any interpreter (PyRun_String, exec() or eval() of
// a str: collections.namedtuple does) clears it. Workers run such code after
// the script has ended (they load it, import traceback to report a task
// interrupted at exit). Once they are all done, the flag is set again as
// CPython sets it: by source text whose run raises KeyboardInterrupt.
void keep_keyboard_interrupt_exit() {
  if (script_ended_by_keyboard_interrupt())
    run_quietly("raise KeyboardInterrupt", SourceRun::AsScript);
}

PyObject* mod_usable_cpus(PyObject*, PyObject*) { return PyLong_FromSize_t(usable_cpus()); }

// sys._current_frames() and sys._current_exceptions(), for the threads of the
// calling interpreter only. CPython's walk the threads of every interpreter
// and make objects of their frames in the caller's interpreter while the
// others run under their own GILs: with workers running, the process crashed
// (free(): invalid pointer) whoever asked (a stack dump on timeout, a
// debugger). The module puts these in sys in each interpreter that imports it.
// The calling interpreter's GIL is held: its other threads do not run, and a
// thread state of it is deleted only with that GIL (PyThreadState_DeleteCurrent).
// One may be added meanwhile by a thread without it (CPython links it at the
// head of the list, then binds it to its thread): seen or not, it has no frame
// yet, and until it is bound (thread id 0) it is left out.
template <class Entry>
PyObject* per_thread(Entry entry) {
  PyObject* out = PyDict_New();
  if (!out) return nullptr;
  for (PyThreadState* t = PyInterpreterState_ThreadHead(PyInterpreterState_Get()); t;
       t = PyThreadState_Next(t)) {
    if (t->thread_id == 0) continue;
    PyObject* value = entry(t);  // new reference, or nullptr (none, or an error set)
    if (!value) {
      if (PyErr_Occurred()) break;
      continue;
    }
    PyObject* key = PyLong_FromUnsignedLong(t->thread_id);
    int r = key ? PyDict_SetItem(out, key, value) : -1;
    Py_XDECREF(key);
    Py_DECREF(value);
    if (r < 0) break;
  }
  if (PyErr_Occurred()) Py_CLEAR(out);
  return out;
}

PyObject* mod_current_frames(PyObject*, PyObject*) {
  return per_thread(
      [](PyThreadState* t) { return reinterpret_cast<PyObject*>(PyThreadState_GetFrame(t)); });
}

PyObject* mod_current_exceptions(PyObject*, PyObject*) {
  // As CPython's: each thread's exception being handled, or None.
  return per_thread([](PyThreadState* t) -> PyObject* {
    _PyErr_StackItem* item = t->exc_info;
    while (item && (!item->exc_value || item->exc_value == Py_None) && item->previous_item)
      item = item->previous_item;
    return Py_NewRef(item && item->exc_value ? item->exc_value : Py_None);
  });
}

// Puts them in sys in place of CPython's (see per_thread).
bool keep_thread_listings_in_this_interpreter(PyObject* module) {
  for (const char* name : {"_current_frames", "_current_exceptions"}) {
    PyObject* fn = PyObject_GetAttrString(module, name);
    int r = fn ? PySys_SetObject(name, fn) : -1;
    Py_XDECREF(fn);
    if (r < 0) return false;
  }
  return true;
}

PyObject* mod_worker_thread_name(PyObject*, PyObject*) {
  const std::string& name = Worker::current_thread_name();
  if (name.empty()) Py_RETURN_NONE;
  return PyUnicode_DecodeUTF8(name.data(), static_cast<Py_ssize_t>(name.size()), "replace");
}

PyObject* mod_queue_from_id(PyObject* module, PyObject* arg) {
  return queue_by_id(state_of(module), arg);
}

PyObject* mod_queue_from_pickle(PyObject* module, PyObject* args) {
  PyObject* id;
  unsigned long long token;
  if (!PyArg_ParseTuple(args, "OK:_queue_from_pickle", &id, &token)) return nullptr;
  return queue_from_pickle(state_of(module), id, token);
}

// atexit hook: joins every live Pool of this interpreter before it finalizes,
// and in the main interpreter closes the interpreters left open
// (3.13 ends sub-interpreters still in use at finalization; 3.12 would leak them).
// It also marks the interpreter as ending, for module_free.
PyObject* mod_shutdown_pools(PyObject* module, PyObject*) {
  ModuleState* st = state_of(module);
  st->exiting = true;
  if (forked_while_running()) {
    // The pools and interpreters are the parent's; the tuples they made are here too.
    if (current_interpreter_id() == 0) keep_keyword_tuples_at_exit();
    Py_RETURN_NONE;
  }
  PyObject* pools = st->pools ? PySequence_List(st->pools) : PyList_New(0);
  if (!pools) return nullptr;
  // All closed first: the workers of one with nothing queued then end, and do
  // not keep another's queued tasks from counting as stuck (end_stuck_tasks).
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pools); ++i)
    close_pool_keeping_tasks(PyList_GET_ITEM(pools, i));
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pools); ++i) join_pool(PyList_GET_ITEM(pools, i));
  Py_DECREF(pools);
  if (current_interpreter_id() == 0) {
    // The program ends: every pool of the process, including one that a daemon
    // thread is destroying, has joined its workers before Python finalizes.
    Pool::shutdown_all();
    // Interpreters made by interpreters.create() and left open: CPython 3.13
    // would end them at finalization and fail on the thread state we keep.
    InterpreterTable::close_all();
    keep_keyword_tuples_at_exit();
    keep_keyboard_interrupt_exit();
  }
  Py_RETURN_NONE;
}

PyObject* mod_getattr(PyObject* module, PyObject* name) {
  ModuleState* st = state_of(module);
  if (PyUnicode_Check(name)) {
    if (PyUnicode_CompareWithASCIIString(name, "QueueFull") == 0)
      return ensure_queue_full(st) ? Py_NewRef(st->QueueFull) : nullptr;
    bool broken = PyUnicode_CompareWithASCIIString(name, "BrokenInterpreterPool") == 0;
    bool cancelled = !broken && PyUnicode_CompareWithASCIIString(name, "CancelledError") == 0;
    if (broken || cancelled) {
      if (!ensure_futures_types(st)) return nullptr;
      return Py_NewRef(broken ? st->BrokenInterpreterPool : st->CancelledError);
    }
  }
  return PyErr_Format(PyExc_AttributeError, "module 'interpool._interpool' has no attribute %R",
                      name);
}

PyObject* mod_restart_task_timeout(PyObject*, PyObject*) {
  restart_task_timeout();
  Py_RETURN_NONE;
}

// os._exit(status) in an Executor's worker (installed by interpool._worker).
PyObject* mod_exit_worker(PyObject*, PyObject* status) {
  PyObject* shown = PyObject_Repr(status);
  if (!shown) return nullptr;
  const char* text = PyUnicode_AsUTF8(shown);
  std::string message =
      std::string("the task called os._exit(") + (text ? text : "?") +
      ") in a worker interpreter: that ends the worker, not the process, and interpool "
      "replaced the worker by a fresh interpreter";
  Py_DECREF(shown);
  PyErr_Clear();
  if (Watchdog::end_worker_from_task(message.c_str())) return nullptr;
  // A thread the task started: SystemExit ends that thread (threading ignores it).
  PyErr_SetObject(PyExc_SystemExit, status);
  return nullptr;
}

PyObject* mod_end_stuck_tasks(PyObject*, PyObject*) {
  if (PyInterpreterState_Get() != PyInterpreterState_Main()) {
    // Process-wide and for good: only the program's end may switch it on.
    PyErr_SetString(PyExc_RuntimeError, "end_stuck_tasks() is for the main interpreter");
    return nullptr;
  }
  Pool::end_stuck_tasks();
  Py_RETURN_NONE;
}

// The RuntimeError message for `what` in a process forked while interpool ran
// workers or interpreters; None elsewhere.
PyObject* mod_fork_refusal(PyObject*, PyObject* what) {
  if (!PyUnicode_Check(what))
    return PyErr_Format(PyExc_TypeError, "what must be str, not %.100s", Py_TYPE(what)->tp_name);
  if (!forked_while_running()) Py_RETURN_NONE;
  std::string text = used_after_fork_message(to_utf8(what));
  return PyUnicode_FromStringAndSize(text.data(), static_cast<Py_ssize_t>(text.size()));
}

PyObject* mod_environment_lock(PyObject*, PyObject*) {
  return object_from_handle(environment_lock());
}

PyMethodDef module_methods[] = {
    {"restart_task_timeout", mod_restart_task_timeout, METH_NOARGS,
     "In a worker, during a task with a time limit: start the limit again (per map item)."},
    {"exit_worker", mod_exit_worker, METH_O,
     "exit_worker($module, status, /)\n--\n\nos._exit in an Executor's worker: ends the task and\n"
     "its worker (WorkerExited), not the process; SystemExit on a thread the task started."},
    {"end_stuck_tasks", mod_end_stuck_tasks, METH_NOARGS,
     "At the end of a program: from now on, when every task of every pool waits with no timeout\n"
     "on an interpool object that nothing has woken, interrupt them (TaskInterrupted)."},
    {"__getattr__", mod_getattr, METH_O,
     "Made on first use: QueueFull, BrokenInterpreterPool, CancelledError."},
    {"_shutdown_pools", mod_shutdown_pools, METH_NOARGS, "Shut down every live Pool (atexit)."},
    {"roundtrip", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(mod_roundtrip)),
     METH_VARARGS | METH_KEYWORDS,
     "roundtrip($module, /, obj, allow_pickle=True)\n--\n\n"
     "Convert obj to an engine value and back."},
    {"value_kind", mod_value_kind, METH_O,
     "value_kind($module, obj, /)\n--\n\nThe engine value kind obj converts to."},
    {"is_shareable", mod_is_shareable, METH_O,
     "is_shareable($module, obj, /)\n--\n\nTrue if obj crosses interpreters without pickling."},
    {"interpreter_id", mod_interpreter_id, METH_NOARGS, "Id of the current interpreter."},
    {"reducer_override",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(mod_reducer_override)),
     METH_FASTCALL,
     "reducer_override($module, slow, by_value, obj, /)\n--\n\nNotImplemented unless obj is a "
     "function, a class or a by_value instance: then slow(obj)."},
    {"task_error", mod_task_error, METH_O,
     "task_error(exc, /)\n--\n\nA task's exception as plain data (for raise_task_error)."},
    {"raise_task_error", mod_raise_task_error, METH_O,
     "raise_task_error(data, /)\n--\n\nRaises what task_error() gave, as the task's failure "
     "would be."},
    {"usable_cpus", mod_usable_cpus, METH_NOARGS, "Number of CPUs this process may use."},
    {"_current_frames", mod_current_frames, METH_NOARGS,
     "sys._current_frames() for this interpreter's threads (the module puts it in sys)."},
    {"_current_exceptions", mod_current_exceptions, METH_NOARGS,
     "sys._current_exceptions() for this interpreter's threads (the module puts it in sys)."},
    {"not_shareable_at", mod_not_shareable_at, METH_VARARGS,
     "not_shareable_at($module, exc, where, path, /)\n--\n\nThe NotShareableError exc (made "
     "from an engine error)\nat another place: where (str) and path (a tuple of int and str)."},
    {"worker_thread_name", mod_worker_thread_name, METH_NOARGS,
     "On a pool's worker thread, its name (Pool's thread_name_prefix, then _<i>); else None."},
    {"queue_from_id", mod_queue_from_id, METH_O,
     "queue_from_id($module, id, /)\n--\n\nThis interpreter's Queue object for a live id."},
    {"fork_refusal", mod_fork_refusal, METH_O,
     "In a process forked while interpool ran workers or interpreters, the message "
     "refusing `what`; None elsewhere."},
    {"environment_lock", mod_environment_lock, METH_NOARGS,
     "The process's RLock for its C environment: held around os.environ changes in\n"
     "interpool's interpreters and around the process spawns interpool makes."},
    {"_queue_from_pickle", mod_queue_from_pickle, METH_VARARGS,
     "_queue_from_pickle($module, id, token, /)\n--\n\nWhat a pickled Queue loads as."},
    {"_shared_handle", shared_handle, METH_VARARGS,
     "_shared_handle($module, how, number, token=0, /)\n--\n\n"
     "What a pickled SharedBuffer, lock, ... loads as."},
    {nullptr, nullptr, 0, nullptr}};

// ---------------------------------------------------------------------------
// Module lifecycle
// ---------------------------------------------------------------------------

PyObject* new_exception(PyObject* module, const char* name, std::initializer_list<PyObject*> bases,
                        const char* doc) {
  PyObject* exc = new_exception_class(name, bases, doc);
  if (!exc) return nullptr;
  if (PyModule_AddObjectRef(module, name, exc) < 0) {
    Py_DECREF(exc);
    return nullptr;
  }
  return exc;
}

PyObject* new_exception(PyObject* module, const char* name, PyObject* base, const char* doc) {
  return new_exception(module, name, {base}, doc);
}

// The engine's Pickler class in this interpreter: interpool._byvalue.pickler(),
// which sends functions that the receiver cannot import by value;
// pickle.Pickler (nullptr) where the package is not importable.
PyObject* face_pickler() {
  PyObject* module = PyImport_ImportModule("interpool._byvalue");
  if (!module) {
    PyErr_Clear();
    return nullptr;
  }
  PyObject* cls = PyObject_CallMethod(module, "pickler", nullptr);
  Py_DECREF(module);
  if (!cls) PyErr_Clear();
  return cls;
}

// The face the extension replaced as the giver of the interruption class (the
// C++ face's, in a C++ program that imports interpool), for the workers that
// cannot import the extension.
InterruptionClass previous_interruption_class = nullptr;

// The class raised in a worker's interrupted task: this interpreter's
// interpool.TaskInterrupted, the one class that the task's code can catch and
// that its caller sees.
PyObject* interruption_class() {
  if (ModuleState* st = current_state()) return Py_NewRef(st->TaskInterrupted);
  if (!previous_interruption_class || !PyErr_ExceptionMatches(PyExc_ImportError)) return nullptr;
  PyErr_Clear();
  return previous_interruption_class();
}

// The engine's report of a task's completion that threw: here, an outcome the
// extension could not hand on (out of memory). No GIL is held: stderr it is.
void report_completion_error(std::exception_ptr error) noexcept {
  const char* what = "a non-standard exception";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  std::fprintf(stderr,
               "interpool: a task's outcome could not be handed on (%s); its future may never "
               "complete\n",
               what);
}

int module_exec(PyObject* module) {
  static std::once_flag codec_once;
  std::call_once(codec_once, [] {
    set_handle_codec(HandleCodec{handle_from_object, object_from_handle, face_pickler});
    set_interruption_class(interruption_class, previous_interruption_class);
    set_completion_error_reporter(report_completion_error, /*replace=*/false);
  });

  ModuleState* st = state_of(module);
  st->interpreter_id = current_interpreter_id();
  // Imported, interpool keeps a fork's child from being ended by CPython's
  // after-fork clean-up of sub-interpreters, the standard library's included.
  if (st->interpreter_id == 0) watch_forks();

  // queue.Empty is _queue.Empty; queue.Full (for QueueFull) needs the queue
  // module and its threading import, which workers seldom use: made on first need.
  PyObject* queue_module = PyImport_ImportModule("_queue");
  if (!queue_module) return -1;
  PyObject* queue_empty = PyObject_GetAttrString(queue_module, "Empty");
  Py_DECREF(queue_module);
  Py_XDECREF(queue_empty);  // stays referenced as QueueEmpty's base
  if (!queue_empty) return -1;
  if (!(st->InterpreterError =
            new_exception(module, "InterpreterError", PyExc_Exception,
                          "An interpreter could not be created, entered or closed.")) ||
      !(st->NotShareableError = new_exception(module, "NotShareableError", PyExc_TypeError,
                                              "An object cannot cross to another interpreter.")) ||
      !(st->InterpreterNotFoundError =
            new_exception(module, "InterpreterNotFoundError", st->InterpreterError,
                          "No interpreter has this id (any more).")) ||
      !(st->QueueError = new_exception(module, "QueueError", PyExc_RuntimeError,
                                       "The base class of the queues' exceptions.")) ||
      !(st->QueueEmpty = new_exception(module, "QueueEmpty", {st->QueueError, queue_empty},
                                       "The queue was empty.")) ||
      !(st->QueueClosed =
            new_exception(module, "QueueClosed", st->QueueError, "The queue is closed.")) ||
      !(st->QueueNotFoundError =
            new_exception(module, "QueueNotFoundError", {st->QueueError, PyExc_LookupError},
                          "No live queue has this id (never created, or every reference to it "
                          "is gone).")) ||
      !(st->ItemInterpreterDestroyed =
            new_exception(module, "ItemInterpreterDestroyed", st->QueueError,
                          "The interpreter that put a queue item has been closed.")) ||
      !(st->RemoteError = new_exception(module, "RemoteError", PyExc_Exception,
                                        "An exception raised in a worker, described by type_name, "
                                        "message and traceback.")) ||
      // A BaseException: raised in the task, `except Exception:` there does not stop it.
      !(st->TaskInterrupted = new_exception(
            module, "TaskInterrupted", PyExc_BaseException,
            "A running task was stopped (Future.interrupt, Executor.terminate_workers, Ctrl-C); "
            "its __cause__ holds the worker's traceback at that moment.")) ||
      !(st->WorkerExited = new_exception(
            module, "WorkerExited", PyExc_Exception,
            "A task called os._exit() in a worker interpreter: that ended its worker (replaced "
            "by a fresh one), not the process; its __cause__ holds the worker's traceback.")))
    return -1;

  auto add_type = [&](PyType_Spec* spec, PyTypeObject** slot, bool public_name) {
    *slot = reinterpret_cast<PyTypeObject*>(PyType_FromModuleAndSpec(module, spec, nullptr));
    if (!*slot) return false;
    return !public_name || PyModule_AddType(module, *slot) == 0;
  };
  if (!add_type(&Queue_spec, &st->queue_type, true) ||
      !add_type(&Pool_spec, &st->pool_type, true) || !add_type(&Task_spec, &st->task_type, true) ||
      !add_type(&Unbound_spec, &st->unbound_type, false) ||
      !add_type(&ChunkItems_spec, &st->chunk_items_type, true) ||
      add_shared_types(module, st->shared) < 0)
    return -1;
  auto make_unbound = [&](PyObject** slot, const char* name, Unbound code) {
    *slot = PyType_GenericAlloc(st->unbound_type, 0);
    if (!*slot) return false;
    reinterpret_cast<UnboundObject*>(*slot)->code = static_cast<int>(code);
    return PyModule_AddObjectRef(module, name, *slot) == 0;
  };
  if (!keep_thread_listings_in_this_interpreter(module)) return -1;
  if (PyModule_AddFunctions(module, interpreter_functions) < 0 ||
      PyModule_AddIntConstant(module, "MOST_WORKERS", static_cast<long>(Pool::kMostWorkers)) < 0)
    return -1;
  if (!make_unbound(&st->unbound, "UNBOUND", Unbound::Marker) ||
      !make_unbound(&st->unbound_error, "UNBOUND_ERROR", Unbound::Error) ||
      !make_unbound(&st->unbound_remove, "UNBOUND_REMOVE", Unbound::Remove))
    return -1;
  PyObject* atexit = PyImport_ImportModule("atexit");
  if (!atexit) return -1;
  PyObject* hook = PyObject_GetAttrString(module, "_shutdown_pools");
  PyObject* r = hook ? PyObject_CallMethod(atexit, "register", "O", hook) : nullptr;
  Py_XDECREF(hook);
  Py_DECREF(atexit);
  if (!r) return -1;
  Py_DECREF(r);
  return 0;
}

int module_traverse(PyObject* module, visitproc visit, void* arg) {
  ModuleState* st = state_of(module);
  Py_VISIT(st->queue_type);
  Py_VISIT(st->pool_type);
  Py_VISIT(st->task_type);
  Py_VISIT(st->unbound_type);
  Py_VISIT(st->chunk_items_type);
  Py_VISIT(st->unbound);
  Py_VISIT(st->unbound_error);
  Py_VISIT(st->unbound_remove);
  Py_VISIT(st->InterpreterNotFoundError);
  Py_VISIT(st->queues);
  Py_VISIT(st->pools);
  Py_VISIT(st->NotShareableError);
  Py_VISIT(st->InterpreterError);
  Py_VISIT(st->QueueError);
  Py_VISIT(st->QueueEmpty);
  Py_VISIT(st->QueueFull);
  Py_VISIT(st->QueueClosed);
  Py_VISIT(st->QueueNotFoundError);
  Py_VISIT(st->ItemInterpreterDestroyed);
  Py_VISIT(st->RemoteError);
  Py_VISIT(st->TaskInterrupted);
  Py_VISIT(st->WorkerExited);
  Py_VISIT(st->BrokenInterpreterPool);
  Py_VISIT(st->CancelledError);
  return traverse_shared_types(st->shared, visit, arg);
}

int module_clear(PyObject* module) {
  ModuleState* st = state_of(module);
  Py_CLEAR(st->queue_type);
  Py_CLEAR(st->pool_type);
  Py_CLEAR(st->task_type);
  Py_CLEAR(st->unbound_type);
  Py_CLEAR(st->chunk_items_type);
  Py_CLEAR(st->unbound);
  Py_CLEAR(st->unbound_error);
  Py_CLEAR(st->unbound_remove);
  Py_CLEAR(st->InterpreterNotFoundError);
  Py_CLEAR(st->queues);
  Py_CLEAR(st->pools);
  Py_CLEAR(st->NotShareableError);
  Py_CLEAR(st->InterpreterError);
  Py_CLEAR(st->QueueError);
  Py_CLEAR(st->QueueEmpty);
  Py_CLEAR(st->QueueFull);
  Py_CLEAR(st->QueueClosed);
  Py_CLEAR(st->QueueNotFoundError);
  Py_CLEAR(st->ItemInterpreterDestroyed);
  Py_CLEAR(st->RemoteError);
  Py_CLEAR(st->TaskInterrupted);
  Py_CLEAR(st->WorkerExited);
  Py_CLEAR(st->BrokenInterpreterPool);
  Py_CLEAR(st->CancelledError);
  clear_shared_types(st->shared);
  return 0;
}

// Runs when the module is freed. After the atexit hook, that is the interpreter
// ending: every Queue object of this interpreter is gone (each holds the module
// through its type), so it can put no more items, and the queues apply the
// unbound policies of its items. This covers interpreters interpool did not
// end itself (made by the standard library or another extension, or the main
// one at exit); for those Interpreter::close ends, the engine ignores this
// notice and applies them once the interpreter is gone.
void module_free(void* module) {
  ModuleState* st = state_of(static_cast<PyObject*>(module));
  if (st && st->exiting) Queue::interpreter_finalizing(st->interpreter_id);
  module_clear(static_cast<PyObject*>(module));
}

PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, reinterpret_cast<void*>(module_exec)},
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
    {0, nullptr}};

}  // namespace

PyModuleDef module_def = {PyModuleDef_HEAD_INIT,
                          "interpool._interpool",
                          "interpool's engine: queues, worker pools, value conversion, shared "
                          "memory and synchronisation.",
                          sizeof(ModuleState),
                          module_methods,
                          module_slots,
                          module_traverse,
                          module_clear,
                          module_free};

ModuleState* current_state() {
  PyObject* module = PyImport_ImportModule("interpool._interpool");
  if (!module) return nullptr;
  ModuleState* st = state_of(module);
  Py_DECREF(module);  // sys.modules keeps it
  return st;
}

PyObject* weak_container(PyObject*& slot, const char* factory) {
  if (slot) return slot;
  PyObject* weakref = PyImport_ImportModule("weakref");
  if (!weakref) return nullptr;
  slot = PyObject_CallMethod(weakref, factory, nullptr);
  Py_DECREF(weakref);
  return slot;
}

const SharedTypes* shared_types_of(PyTypeObject* type) {
  PyObject* module = PyType_GetModuleByDef(type, &module_def);
  if (!module) {
    PyErr_Clear();
    return nullptr;
  }
  return &state_of(module)->shared;
}

}  // namespace interpool::python

PyMODINIT_FUNC PyInit__interpool() { return PyModuleDef_Init(&interpool::python::module_def); }
