// The _interpool extension: the engine's primitives as Python types.
//
// Multi-phase init, per-module state, heap types only, and per-interpreter GIL
// support: every interpreter that imports it gets its own module, types and
// exceptions. Logic lives in the engine; this file converts at the boundary.
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <marshal.h>

#include <cmath>
#include <interpool/error.hpp>
#include <interpool/queue.hpp>
#include <interpool/sync.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/interpreter.hpp"
#include "core/pool.hpp"
#include "core/py_value.hpp"
#include "core/runner.hpp"
#include "core/table.hpp"
#include "core/watchdog.hpp"
#include "python/shared.hpp"
#include "python/wait.hpp"

namespace interpool::python {
namespace {

// ---------------------------------------------------------------------------
// Module state
// ---------------------------------------------------------------------------

struct ModuleState {
  PyTypeObject* queue_type;
  PyTypeObject* pool_type;
  PyTypeObject* task_type;
  PyTypeObject* unbound_type;
  PyObject* unbound;  // UNBOUND: the marker, and the option that asks for it
  PyObject* unbound_error;
  PyObject* unbound_remove;
  PyObject* InterpreterNotFoundError;
  PyObject* queues;  // WeakValueDictionary: id -> this interpreter's Queue object
  PyObject* pools;   // WeakSet of this interpreter's live Pools, shut down at exit
  PyObject* NotShareableError;
  PyObject* InterpreterError;
  PyObject* QueueEmpty;
  PyObject* QueueFull;
  PyObject* QueueClosed;
  PyObject* QueueNotFoundError;
  PyObject* ItemInterpreterDestroyed;
  PyObject* RemoteError;
  PyObject* TaskInterrupted;
  PyObject* WorkerExited;
  PyObject* BrokenInterpreterPool;
  PyObject* CancelledError;
  std::int64_t interpreter_id;  // of the interpreter this module belongs to
  bool exiting;                 // the atexit hook ran: the interpreter is ending
  SharedTypes shared;           // SharedBuffer, Lock, ... (shared.cpp)
};

extern PyModuleDef module_def;

// UNBOUND, UNBOUND_ERROR, UNBOUND_REMOVE: one object each per interpreter.
struct UnboundObject {
  PyObject_HEAD int code;  // an Unbound value
};

ModuleState* state_of(PyObject* module) {
  return static_cast<ModuleState*>(PyModule_GetState(module));
}

ModuleState* state_of_type(PyTypeObject* type) {
  return static_cast<ModuleState*>(PyType_GetModuleState(type));
}

// The module state of this extension in the current interpreter, importing it if needed.
ModuleState* current_state() {
  PyObject* module = PyImport_ImportModule("interpool._interpool");
  if (!module) return nullptr;
  ModuleState* st = state_of(module);
  Py_DECREF(module);  // sys.modules keeps it
  return st;
}

// ---------------------------------------------------------------------------
// Errors at the boundary
// ---------------------------------------------------------------------------

// BrokenInterpreterPool and CancelledError need concurrent.futures, which
// workers seldom use: made on first need (and by the module's __getattr__).
bool ensure_futures_types(ModuleState* st) {
  if (st->BrokenInterpreterPool) return true;
  PyObject* futures = PyImport_ImportModule("concurrent.futures._base");
  if (!futures) return false;
  PyObject* broken_base = PyObject_GetAttrString(futures, "BrokenExecutor");
  PyObject* cancelled = PyObject_GetAttrString(futures, "CancelledError");
  Py_DECREF(futures);
  PyObject* broken = broken_base ? PyErr_NewExceptionWithDoc(
                                       "interpool.BrokenInterpreterPool",
                                       "A worker could not start or its initializer failed; the "
                                       "pool takes no more tasks.",
                                       broken_base, nullptr)
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

// QueueFull subclasses queue.Full: made on first need (and by the module's __getattr__).
bool ensure_queue_full(ModuleState* st) {
  if (st->QueueFull) return true;
  PyObject* queue_module = PyImport_ImportModule("queue");
  if (!queue_module) return false;
  PyObject* full = PyObject_GetAttrString(queue_module, "Full");
  Py_DECREF(queue_module);
  if (!full) return false;
  st->QueueFull =
      PyErr_NewExceptionWithDoc("interpool.QueueFull", "The queue was full.", full, nullptr);
  Py_DECREF(full);
  return st->QueueFull != nullptr;
}

// NotShareableError for `e` (new reference), its parts as attributes: where
// (str), path (a tuple of positions and, as text, dict keys and the like),
// what (the object, described) and reason.
PyObject* new_not_shareable(ModuleState* st, const NotShareable& e) {
  PyObject* exc = PyObject_CallFunction(st->NotShareableError, "s", e.what());
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

// Turns an engine error being handled into a Python exception; returns nullptr.
PyObject* raise_engine_error(ModuleState* st) {
  try {
    throw;
  } catch (const PythonErrorSet&) {
    // Already set.
  } catch (const NotShareable& e) {
    if (PyObject* exc = new_not_shareable(st, e)) {
      PyErr_SetObject(st->NotShareableError, exc);
      Py_DECREF(exc);
    }
  } catch (const PoolBroken& e) {
    if (ensure_futures_types(st)) PyErr_SetString(st->BrokenInterpreterPool, e.what());
  } catch (const PoolClosed& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (const UsedAfterFork& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (const InterpreterError& e) {
    PyErr_SetString(st->InterpreterError, e.what());
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_SystemError, e.what());
  }
  return nullptr;
}

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

// A task's exception rebuilt in this interpreter (new reference): the same
// type when it unpickles (its __cause__ holds the worker's traceback), else a
// RemoteError. nullptr with an error set if even that fails.
PyObject* task_exception(ModuleState* st, const ErrorInfo& info) {
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
  if (!exc && info.type_module == "interpool" && info.type_qualname == "NotShareableError")
    exc = PyObject_CallFunction(st->NotShareableError, "s", info.message.c_str());
  if (!exc) return new_remote_error(st, info, /*as_cause=*/false);
  PyObject* cause = new_remote_error(st, info, /*as_cause=*/true);
  if (!cause) {
    Py_DECREF(exc);
    return nullptr;
  }
  PyException_SetCause(exc, cause);  // steals cause
  return exc;
}

PyObject* broken_exception(ModuleState* st, const ErrorInfo& cause) {
  std::string text =
      "the pool is broken: a worker initializer raised " + cause.type_name() + ": " + cause.message;
  if (cause.type_qualname == "InterpreterError") text = "the pool is broken: " + cause.message;
  if (!ensure_futures_types(st)) return nullptr;
  return PyObject_CallFunction(st->BrokenInterpreterPool, "s", text.c_str());
}

// Sets the exception an Outcome that is not Ok stands for; returns nullptr.
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

// timeout=None -> never; block=False -> now.
bool parse_deadline(PyObject* timeout, int block, Deadline& out) {
  if (!block) {
    out = Deadline::now();
    return true;
  }
  if (!timeout || timeout == Py_None) {
    out = Deadline::never();
    return true;
  }
  double seconds = PyFloat_AsDouble(timeout);
  if (seconds == -1.0 && PyErr_Occurred()) return false;
  if (seconds < 0 || std::isnan(seconds)) {
    PyErr_Format(PyExc_ValueError, "timeout must be a non-negative number or None, not %R",
                 timeout);
    return false;
  }
  out = Deadline::after(seconds);
  return true;
}

std::int64_t current_interpreter_id() { return PyInterpreterState_GetID(PyInterpreterState_Get()); }

// ---------------------------------------------------------------------------
// Queue
// ---------------------------------------------------------------------------

// unbounditems: None (-> fallback), UNBOUND / UNBOUND_ERROR / UNBOUND_REMOVE, or 0..3.
bool parse_unbound(ModuleState* st, PyObject* obj, Unbound fallback, Unbound& out) {
  if (!obj || obj == Py_None) {
    out = fallback;
    return true;
  }
  if (Py_IS_TYPE(obj, st->unbound_type)) {
    out = static_cast<Unbound>(reinterpret_cast<UnboundObject*>(obj)->code);
    return true;
  }
  if (PyLong_Check(obj)) {
    long v = PyLong_AsLong(obj);
    if (v >= 0 && v <= static_cast<long>(Unbound::Remove)) {
      out = static_cast<Unbound>(v);
      return true;
    }
    if (v == -1 && PyErr_Occurred()) return false;
  }
  PyErr_Format(PyExc_ValueError,
               "unbounditems must be UNBOUND, UNBOUND_ERROR, UNBOUND_REMOVE or None, not %R", obj);
  return false;
}

struct QueueObject {
  PyObject_HEAD std::shared_ptr<Queue>* queue;  // heap-held so the struct stays a C layout
  PyObject* weakrefs;
};

// st->queues or st->pools, made on first use: a weakref.WeakValueDictionary or
// WeakSet (workers that never hold a Queue or Pool do not import weakref).
PyObject* weak_container(PyObject*& slot, const char* factory) {
  if (slot) return slot;
  PyObject* weakref = PyImport_ImportModule("weakref");
  if (!weakref) return nullptr;
  slot = PyObject_CallMethod(weakref, factory, nullptr);
  Py_DECREF(weakref);
  return slot;
}

// The one Queue object of this interpreter for `q` (new reference).
PyObject* queue_object_for(ModuleState* st, const std::shared_ptr<Queue>& q) {
  if (!weak_container(st->queues, "WeakValueDictionary")) return nullptr;
  PyObject* key = PyLong_FromLongLong(q->id());
  if (!key) return nullptr;
  PyObject* existing = PyObject_GetItem(st->queues, key);
  if (existing || !PyErr_ExceptionMatches(PyExc_KeyError)) {
    Py_DECREF(key);
    return existing;
  }
  PyErr_Clear();
  auto* self = PyObject_GC_New(QueueObject, st->queue_type);
  if (!self) {
    Py_DECREF(key);
    return nullptr;
  }
  self->queue = new std::shared_ptr<Queue>(q);
  self->weakrefs = nullptr;
  PyObject_GC_Track(self);
  int rc = PyObject_SetItem(st->queues, key, reinterpret_cast<PyObject*>(self));
  Py_DECREF(key);
  if (rc < 0) {
    Py_DECREF(self);
    return nullptr;
  }
  return reinterpret_cast<PyObject*>(self);
}

// Queue(id): this interpreter's object for the live queue with that id.
PyObject* queue_by_id(ModuleState* st, PyObject* id_obj) {
  if (!PyLong_Check(id_obj) || PyBool_Check(id_obj))
    return PyErr_Format(PyExc_TypeError,
                        "a queue id must be an int, not %.100s (make a new queue with "
                        "create_queue() or Queue.create())",
                        Py_TYPE(id_obj)->tp_name);
  int overflow = 0;
  long long id = PyLong_AsLongLongAndOverflow(id_obj, &overflow);
  if (id == -1 && PyErr_Occurred()) return nullptr;
  std::shared_ptr<Queue> q = overflow == 0 && id >= 0 ? Queue::find(id) : nullptr;
  if (!q)
    return PyErr_Format(st->QueueNotFoundError,
                        "queue %R not found (never created, or every reference to it is gone)",
                        id_obj);
  return queue_object_for(st, q);
}

PyObject* Queue_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"", nullptr};
  PyObject* id_obj;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:Queue", const_cast<char**>(kwlist), &id_obj))
    return nullptr;
  return queue_by_id(state_of_type(type), id_obj);
}

// Queue.create(maxsize=0, *, unbounditems=None): a new queue.
PyObject* Queue_create(PyObject* cls, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"maxsize", "unbounditems", nullptr};
  Py_ssize_t maxsize = 0;
  PyObject* unbound_obj = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|n$O:create", const_cast<char**>(kwlist),
                                   &maxsize, &unbound_obj))
    return nullptr;
  ModuleState* st = state_of_type(reinterpret_cast<PyTypeObject*>(cls));
  Unbound unbound;
  if (!parse_unbound(st, unbound_obj, Unbound::Keep, unbound)) return nullptr;
  try {
    return queue_object_for(st, Queue::create(static_cast<std::int64_t>(maxsize), unbound));
  } catch (...) {
    return raise_engine_error(st);
  }
}

int Queue_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  return 0;
}

void Queue_dealloc(PyObject* op) {
  auto* self = reinterpret_cast<QueueObject*>(op);
  PyTypeObject* type = Py_TYPE(op);
  PyObject_GC_UnTrack(op);
  if (self->weakrefs) PyObject_ClearWeakRefs(op);
  delete self->queue;
  type->tp_free(op);
  Py_DECREF(type);
}

Queue& queue_of(PyObject* self) { return **reinterpret_cast<QueueObject*>(self)->queue; }

PyObject* Queue_put(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"obj", "block", "timeout", "unbounditems", nullptr};
  PyObject* obj;
  int block = 1;
  PyObject* timeout = Py_None;
  PyObject* unbound_obj = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|pO$O:put", const_cast<char**>(kwlist), &obj,
                                   &block, &timeout, &unbound_obj))
    return nullptr;
  ModuleState* st = state_of_type(Py_TYPE(self));
  Unbound unbound;
  if (!parse_unbound(st, unbound_obj, queue_of(self).default_unbound(), unbound)) return nullptr;
  Deadline deadline;
  if (!parse_deadline(timeout, block, deadline)) return nullptr;
  QueueItem item;
  try {
    item.value = to_value(obj, "the item");
  } catch (...) {
    return raise_engine_error(st);
  }
  item.origin = current_interpreter_id();
  item.unbound = unbound;
  Queue& q = queue_of(self);
  WaitResult r;
  if (!wait_releasing_gil([&] { return q.put(item, deadline, true); }, r)) return nullptr;
  if (r == WaitResult::Timeout) {
    if (!ensure_queue_full(st)) return nullptr;
    return PyErr_Format(st->QueueFull, "queue %lld is full", (long long)q.id());
  }
  if (r == WaitResult::Closed)
    return PyErr_Format(st->QueueClosed, "queue %lld is closed", (long long)q.id());
  Py_RETURN_NONE;
}

// Raises `exc` (a reference this takes) again, with `note` added to it
// (BaseException.add_note: tracebacks show it under the message).
void raise_with_note(PyObject* exc, const std::string& note) {
  if (!exc) return;
  PyObject* r =
      PyObject_CallMethod(exc, "add_note", "s#", note.data(), static_cast<Py_ssize_t>(note.size()));
  if (r)
    Py_DECREF(r);
  else
    PyErr_Clear();  // the note only helps; the error itself goes on
  PyErr_SetRaisedException(exc);
}

PyObject* Queue_get(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"block", "timeout", nullptr};
  int block = 1;
  PyObject* timeout = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|pO:get", const_cast<char**>(kwlist), &block,
                                   &timeout))
    return nullptr;
  ModuleState* st = state_of_type(Py_TYPE(self));
  Deadline deadline;
  if (!parse_deadline(timeout, block, deadline)) return nullptr;
  Queue& q = queue_of(self);
  QueueItem item;
  WaitResult r;
  if (!wait_releasing_gil([&] { return q.get(item, deadline, true); }, r)) return nullptr;
  if (r == WaitResult::Timeout)
    return PyErr_Format(st->QueueEmpty, "queue %lld is empty", (long long)q.id());
  if (r == WaitResult::Closed)
    return PyErr_Format(st->QueueClosed, "queue %lld is closed", (long long)q.id());
  if (item.origin_closed) {
    if (item.unbound == Unbound::Error)
      return PyErr_Format(st->ItemInterpreterDestroyed,
                          "the interpreter that put this item (%lld) has been closed",
                          (long long)item.origin);
    return Py_NewRef(st->unbound);
  }
  PyObject* obj = to_python(item.value);
  if (!obj) {
    // Nothing accepted may vanish: an item this interpreter cannot rebuild (its
    // class is not importable here, its unpickling raises) goes back to the head
    // of the queue, for a later get here or in an interpreter that can.
    q.put_back(item);
    raise_with_note(PyErr_GetRaisedException(),
                    "interpool: the item could not be rebuilt in this interpreter; it stays at the "
                    "head of queue " +
                        std::to_string(q.id()) + ", for a get where it can be");
  }
  return obj;
}

PyObject* Queue_put_nowait(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"obj", "unbounditems", nullptr};
  PyObject* obj;
  PyObject* unbound = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$O:put_nowait", const_cast<char**>(kwlist),
                                   &obj, &unbound))
    return nullptr;
  PyObject* call_args = Py_BuildValue("(OO)", obj, Py_False);
  PyObject* call_kwargs = Py_BuildValue("{sO}", "unbounditems", unbound);
  PyObject* r = call_args && call_kwargs ? Queue_put(self, call_args, call_kwargs) : nullptr;
  Py_XDECREF(call_args);
  Py_XDECREF(call_kwargs);
  return r;
}

PyObject* Queue_get_nowait(PyObject* self, PyObject*) {
  PyObject* call_args = Py_BuildValue("(O)", Py_False);
  PyObject* r = call_args ? Queue_get(self, call_args, nullptr) : nullptr;
  Py_XDECREF(call_args);
  return r;
}

// Pickles as a handle: Queue(id), looked up again when unpickled (the queue must still live).
PyObject* Queue_reduce(PyObject* self, PyObject*) {
  return Py_BuildValue("(O(L))", reinterpret_cast<PyObject*>(Py_TYPE(self)),
                       (long long)queue_of(self).id());
}

PyObject* Queue_qsize(PyObject* self, PyObject*) {
  return PyLong_FromSize_t(queue_of(self).size());
}

PyObject* Queue_empty(PyObject* self, PyObject*) {
  return PyBool_FromLong(queue_of(self).size() == 0);
}

PyObject* Queue_full(PyObject* self, PyObject*) {
  Queue& q = queue_of(self);
  return PyBool_FromLong(q.maxsize() != 0 && q.size() >= q.maxsize());
}

PyObject* Queue_close(PyObject* self, PyObject*) {
  queue_of(self).close();
  Py_RETURN_NONE;
}

PyObject* Queue_get_id(PyObject* self, void*) { return PyLong_FromLongLong(queue_of(self).id()); }

PyObject* Queue_get_maxsize(PyObject* self, void*) {
  return PyLong_FromLongLong(queue_of(self).requested_maxsize());
}

// The default of put()'s unbounditems, as create() takes it (None: items are kept).
PyObject* Queue_get_unbounditems(PyObject* self, void*) {
  ModuleState* st = state_of_type(Py_TYPE(self));
  switch (queue_of(self).default_unbound()) {
    case Unbound::Marker:
      return Py_NewRef(st->unbound);
    case Unbound::Error:
      return Py_NewRef(st->unbound_error);
    case Unbound::Remove:
      return Py_NewRef(st->unbound_remove);
    case Unbound::Keep:
      break;
  }
  Py_RETURN_NONE;
}

// As the standard library's queues: one object per id, hashed as its id.
Py_hash_t Queue_hash(PyObject* self) {
  PyObject* id = PyLong_FromLongLong(queue_of(self).id());
  if (!id) return -1;
  Py_hash_t h = PyObject_Hash(id);
  Py_DECREF(id);
  return h;
}

PyObject* Queue_repr(PyObject* self) {
  return PyUnicode_FromFormat("Queue(%lld)", (long long)queue_of(self).id());
}

PyMethodDef Queue_methods[] = {
    {"create", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(Queue_create)),
     METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "create($cls, /, maxsize=0, *, unbounditems=None)\n--\n\n"
     "A new queue (maxsize 0 or less: unbounded). unbounditems is the default of put()'s: None "
     "keeps the "
     "items of an interpreter that closes; UNBOUND, UNBOUND_ERROR or UNBOUND_REMOVE ask for the "
     "standard library's behaviours."},
    {"put", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(Queue_put)),
     METH_VARARGS | METH_KEYWORDS,
     "put($self, /, obj, block=True, timeout=None, *, unbounditems=None)\n--\n\n"
     "Add an item, waiting for space. unbounditems (default: the queue's) says what becomes of "
     "the item if the interpreter that put it closes first: kept (interpool's default), UNBOUND, "
     "UNBOUND_ERROR or UNBOUND_REMOVE."},
    {"get", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(Queue_get)),
     METH_VARARGS | METH_KEYWORDS,
     "get($self, /, block=True, timeout=None)\n--\n\nRemove and return an item."},
    {"put_nowait", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(Queue_put_nowait)),
     METH_VARARGS | METH_KEYWORDS,
     "put_nowait($self, /, obj, *, unbounditems=None)\n--\n\nput(obj, block=False)."},
    {"get_nowait", Queue_get_nowait, METH_NOARGS, "get(block=False)."},
    {"__reduce__", Queue_reduce, METH_NOARGS, "Pickle as a handle (by id)."},
    {"qsize", Queue_qsize, METH_NOARGS, "Number of items now (a snapshot)."},
    {"empty", Queue_empty, METH_NOARGS, "True if no item is in the queue now."},
    {"full", Queue_full, METH_NOARGS, "True if the queue is at its bound now."},
    {"close", Queue_close, METH_NOARGS, "Refuse further puts; gets drain what is left."},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef Queue_getset[] = {
    {"id", Queue_get_id, nullptr, "The queue's process-wide id.", nullptr},
    {"maxsize", Queue_get_maxsize, nullptr,
     "The bound, as create() was given it (0 or less: none).", nullptr},
    {"unbounditems", Queue_get_unbounditems, nullptr,
     "The default of put()'s unbounditems: None (items are kept), UNBOUND, UNBOUND_ERROR or "
     "UNBOUND_REMOVE.",
     nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyMemberDef Queue_members[] = {
    {"__weaklistoffset__", Py_T_PYSSIZET, offsetof(QueueObject, weakrefs), Py_READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr}};

PyType_Slot Queue_slots[] = {
    {Py_tp_doc, const_cast<char*>("Queue(id, /)\n--\n\nA FIFO shared by every interpreter of the "
                                  "process. Queue(id) is this interpreter's object for the live "
                                  "queue with that id (one object per id); Queue.create() makes "
                                  "a new one.")},
    {Py_tp_new, reinterpret_cast<void*>(Queue_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(Queue_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(Queue_traverse)},
    {Py_tp_repr, reinterpret_cast<void*>(Queue_repr)},
    {Py_tp_hash, reinterpret_cast<void*>(Queue_hash)},
    {Py_tp_methods, Queue_methods},
    {Py_tp_getset, Queue_getset},
    {Py_tp_members, Queue_members},
    {0, nullptr}};

PyType_Spec Queue_spec = {"interpool._interpool.Queue", sizeof(QueueObject), 0,
                          Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
                          Queue_slots};

// ---------------------------------------------------------------------------
// Handles: how engine objects cross (registered once per process)
// ---------------------------------------------------------------------------

int handle_from_object(PyObject* obj, std::shared_ptr<Shareable>* out) {
  if (PyMemoryView_Check(obj)) return memoryview_to_handle(obj, out);
  PyObject* module = PyType_GetModuleByDef(Py_TYPE(obj), &module_def);
  if (!module) {
    PyErr_Clear();
    return 0;
  }
  ModuleState* st = state_of(module);
  if (PyObject_TypeCheck(obj, st->queue_type)) {
    *out = *reinterpret_cast<QueueObject*>(obj)->queue;
    return 1;
  }
  return shared_to_handle(st->shared, obj, out);
}

PyObject* object_from_handle(const std::shared_ptr<Shareable>& object) {
  ModuleState* st = current_state();
  if (!st) return nullptr;
  if (auto q = std::dynamic_pointer_cast<Queue>(object)) return queue_object_for(st, q);
  if (PyObject* o = shared_from_handle(st->shared, object)) return o;
  if (PyErr_Occurred()) return nullptr;
  PyErr_SetString(PyExc_TypeError, "interpool: this kind of engine object has no Python type yet");
  return nullptr;
}

// ---------------------------------------------------------------------------
// Task: the pending result of one Pool.submit
// ---------------------------------------------------------------------------

struct TaskState;

// Outcomes of tasks submitted with a token, for one consumer thread to collect
// in batches (the Executor's result thread). An outcome that a thread waiting
// in Task.take() receives directly is never posted here.
struct Completions {
  Channel<std::pair<long long, std::shared_ptr<TaskState>>> channel;
  std::atomic<long long> outstanding{0};  // accepted tasks whose outcome is not resolved
  std::atomic<bool> closing{false};

  void post(long long token, std::shared_ptr<TaskState> task) {
    std::pair<long long, std::shared_ptr<TaskState>> item{token, std::move(task)};
    channel.put(item);
    resolved();
  }
  // One outcome resolved (posted, or taken without being posted).
  void resolved() {
    if (outstanding.fetch_sub(1) == 1 && closing.load()) channel.close();
  }
  // After the pool stops accepting tasks: ends the stream once all are resolved.
  void finish() {
    closing.store(true);
    if (outstanding.load() == 0) channel.close();
  }
};

struct TaskState {
  std::shared_ptr<TaskControl> control = std::make_shared<TaskControl>();
  std::mutex mutex;
  Signal signal;
  bool done = false;
  Outcome outcome;

  void complete(Outcome out) {
    {
      std::lock_guard lock(mutex);
      outcome = std::move(out);
      done = true;
    }
    signal.notify_all();
  }
  bool is_done() {
    std::lock_guard lock(mutex);
    return done;
  }

  // A task submitted with a token has two readers in its interpreter: threads
  // waiting in Task.take() and the one collecting Pool.completions(). The
  // outcome goes to completions() only if no thread waits in take() when it
  // comes (so the collector is not woken for nothing); the first reader to
  // claim it rebuilds it. Guarded by `mutex`.
  std::weak_ptr<Completions> sink;
  long long token = 0;
  int takers = 0;        // threads in take()
  bool posted = false;   // sent to completions()
  bool claimed = false;  // rebuilt by take() or completions()

  // Ends a token task; true if the outcome must be posted (no taker waits).
  bool complete_token(Outcome out) {
    bool post;
    {
      std::lock_guard lock(mutex);
      outcome = std::move(out);
      done = true;
      post = posted = takers == 0;
    }
    signal.notify_all();
    return post;
  }
  bool claim() {
    std::lock_guard lock(mutex);
    if (claimed) return false;
    claimed = true;
    return true;
  }
  bool is_claimed() {
    std::lock_guard lock(mutex);
    return claimed;
  }
  // The outcome, moved out (once claimed; it is not read again).
  Outcome take_outcome() {
    std::lock_guard lock(mutex);
    return std::move(outcome);
  }

  // Waits with the GIL released until the task is done or, with
  // `or_cancelled`, cancelled before it started (its outcome then comes only
  // when a worker dequeues it). False with an exception set if interrupted.
  bool wait(const Deadline& deadline, bool or_cancelled, WaitResult& r) {
    return wait_releasing_gil(
        [&] {
          for (;;) {
            std::uint32_t epoch = signal.epoch();
            if (is_done() || (or_cancelled && control->state() == TaskControl::State::Cancelled))
              return WaitResult::Ready;
            if (deadline.passed()) return WaitResult::Timeout;
            WaitResult w = signal.wait(epoch, deadline, true);
            if (w == WaitResult::Interrupted) return w;
          }
        },
        r);
  }
};

struct TaskObject {
  PyObject_HEAD std::shared_ptr<TaskState>* state;
};

// In a child forked while it ran, a task not done by then never will be here:
// false with RuntimeError set rather than a wait for the parent's worker.
bool refuse_wait_after_fork(TaskState& task) {
  if (!forked_while_running() || task.is_done()) return true;
  PyErr_SetString(PyExc_RuntimeError,
                  used_after_fork_message("cannot wait for a task it ran").c_str());
  return false;
}

void Task_dealloc(PyObject* op) {
  PyTypeObject* type = Py_TYPE(op);
  PyObject_GC_UnTrack(op);
  delete reinterpret_cast<TaskObject*>(op)->state;
  type->tp_free(op);
  Py_DECREF(type);
}

int Task_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  return 0;
}

PyObject* Task_done(PyObject* self, PyObject*) {
  return PyBool_FromLong((*reinterpret_cast<TaskObject*>(self)->state)->is_done());
}

PyObject* Task_result(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"timeout", nullptr};
  PyObject* timeout = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:result", const_cast<char**>(kwlist), &timeout))
    return nullptr;
  Deadline deadline;
  if (!parse_deadline(timeout, 1, deadline)) return nullptr;
  TaskState& task = **reinterpret_cast<TaskObject*>(self)->state;
  if (!refuse_wait_after_fork(task)) return nullptr;
  WaitResult r;
  if (!task.wait(deadline, false, r)) return nullptr;
  if (r == WaitResult::Timeout)
    return PyErr_Format(PyExc_TimeoutError, "the task did not finish in time");
  ModuleState* st = state_of_type(Py_TYPE(self));
  if (task.is_claimed())
    return PyErr_Format(PyExc_RuntimeError,
                        "this task's outcome was delivered by completions() or take()");
  const Outcome& out = task.outcome;  // immutable once done, until claimed
  if (out.status == Outcome::Status::Ok) return to_python(out.value);
  return raise_outcome(st, out);
}

PyObject* outcome_payload(ModuleState* st, const Outcome& out, bool& ok);

PyObject* Task_take(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"timeout", nullptr};
  PyObject* timeout = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:take", const_cast<char**>(kwlist), &timeout))
    return nullptr;
  Deadline deadline;
  if (!parse_deadline(timeout, 1, deadline)) return nullptr;
  const std::shared_ptr<TaskState>& state = *reinterpret_cast<TaskObject*>(self)->state;
  TaskState& task = *state;
  if (!refuse_wait_after_fork(task)) return nullptr;
  {
    std::lock_guard lock(task.mutex);
    ++task.takers;
  }
  WaitResult r;
  bool waited = task.wait(deadline, true, r);  // false: interrupted, exception set
  bool mine = false, handed = false, post = false;
  {
    std::lock_guard lock(task.mutex);
    --task.takers;
    if (task.done && !task.claimed) {
      handed = !task.posted;
      if (waited) {
        mine = task.claimed = true;
      } else if (handed && task.takers == 0) {
        post = task.posted = true;  // interrupted: the outcome goes to completions() after all
      }
    }
  }
  std::shared_ptr<Completions> sink = task.sink.lock();
  if (sink && post) sink->post(task.token, state);
  if (sink && mine && handed) sink->resolved();
  if (!waited) return nullptr;
  if (!mine) {
    if (r == WaitResult::Timeout)
      return PyErr_Format(PyExc_TimeoutError, "the task did not finish in time");
    Py_RETURN_NONE;  // cancelled, or another reader has the outcome
  }
  bool ok = false;
  PyObject* payload = outcome_payload(state_of_type(Py_TYPE(self)), task.take_outcome(), ok);
  if (!payload) return nullptr;
  return Py_BuildValue("(NN)", PyBool_FromLong(ok), payload);
}

PyObject* Task_interrupt(PyObject* self, PyObject*) {
  TaskState& task = **reinterpret_cast<TaskObject*>(self)->state;
  return PyBool_FromLong(task.control->interrupt());
}

PyObject* Task_cancel(PyObject* self, PyObject*) {
  TaskState& task = **reinterpret_cast<TaskObject*>(self)->state;
  if (!task.control->cancel()) Py_RETURN_FALSE;
  task.signal.notify_all();  // wakes take(): the outcome comes only when a worker dequeues it
  Py_RETURN_TRUE;
}

PyObject* Task_running(PyObject* self, PyObject*) {
  TaskState& task = **reinterpret_cast<TaskObject*>(self)->state;
  TaskControl::State state = task.control->state();
  return PyBool_FromLong(
      (state == TaskControl::State::Running || state == TaskControl::State::Interrupting) &&
      !task.is_done());
}

PyMethodDef Task_methods[] = {
    {"done", Task_done, METH_NOARGS, "True once the task has ended (for tasks without a token)."},
    {"cancel", Task_cancel, METH_NOARGS,
     "Cancel the task if no worker has started it; True if so."},
    {"running", Task_running, METH_NOARGS, "True while a worker runs the task."},
    {"interrupt", Task_interrupt, METH_NOARGS,
     "Stop the task if a worker runs it; True if its outcome is now the interruption "
     "(TaskInterrupted, or TimeoutError if its time limit came first), False if nothing was "
     "decided (pending, ended or cancelled)."},
    {"result", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(Task_result)),
     METH_VARARGS | METH_KEYWORDS,
     "result($self, /, timeout=None)\n--\n\n"
     "Wait for the task; return its value or raise its exception."},
    {"take", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(Task_take)),
     METH_VARARGS | METH_KEYWORDS,
     "take($self, /, timeout=None)\n--\n\n"
     "For a task submitted with a token: wait until it ends or is cancelled; return (ok, "
     "value_or_exception) if this call claims its outcome, None if completions() did (or will, "
     "once a cancelled task is dequeued)."},
    {nullptr, nullptr, 0, nullptr}};

PyType_Slot Task_slots[] = {{Py_tp_doc, const_cast<char*>("The pending result of Pool.submit.")},
                            {Py_tp_dealloc, reinterpret_cast<void*>(Task_dealloc)},
                            {Py_tp_traverse, reinterpret_cast<void*>(Task_traverse)},
                            {Py_tp_methods, Task_methods},
                            {0, nullptr}};

PyType_Spec Task_spec = {"interpool._interpool.Task", sizeof(TaskObject), 0,
                         Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
                             Py_TPFLAGS_DISALLOW_INSTANTIATION,
                         Task_slots};

// ---------------------------------------------------------------------------
// Pool
// ---------------------------------------------------------------------------

struct PoolObject {
  PyObject_HEAD Pool* pool;
  std::shared_ptr<Completions>* completions;
};

bool parse_function_ref(PyObject* module, PyObject* qualname, FunctionRef& out) {
  if (!PyUnicode_Check(module) || !PyUnicode_Check(qualname)) {
    PyErr_Format(PyExc_TypeError, "module and qualname must be str, not %.100s and %.100s",
                 Py_TYPE(module)->tp_name, Py_TYPE(qualname)->tp_name);
    return false;
  }
  const char* m = PyUnicode_AsUTF8(module);
  const char* q = m ? PyUnicode_AsUTF8(qualname) : nullptr;
  if (!q) return false;
  out.module = m;
  out.qualname = q;
  return true;
}

// Converts (args tuple, kwargs dict or None) naming each bad argument.
bool convert_call_args(PyObject* args, PyObject* kwargs, Call& call) {
  if (!PyTuple_Check(args)) {
    PyErr_Format(PyExc_TypeError, "args must be a tuple, not %.100s", Py_TYPE(args)->tp_name);
    return false;
  }
  ToValue convert;  // one crossing: an object in two arguments arrives as one object
  Tuple t;
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); ++i)
    t.items.push_back(convert(PyTuple_GET_ITEM(args, i), "argument " + std::to_string(i + 1)));
  call.args = std::move(t);
  Dict d;
  if (kwargs && kwargs != Py_None) {
    if (!PyDict_Check(kwargs)) {
      PyErr_Format(PyExc_TypeError, "kwargs must be a dict, not %.100s", Py_TYPE(kwargs)->tp_name);
      return false;
    }
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(kwargs, &pos, &key, &value)) {
      if (!PyUnicode_Check(key)) {
        PyErr_SetString(PyExc_TypeError, "keyword argument names must be str");
        return false;
      }
      std::string where = "keyword argument '" + to_utf8(key) + "'";
      Value k = convert(key, where);
      d.items.emplace_back(std::move(k), convert(value, where));
    }
  }
  call.kwargs = std::move(d);
  return true;
}

PyObject* Pool_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {
      "workers", "sys_path", "initializers", "max_tasks_per_worker", "thread_name_prefix", nullptr};
  Py_ssize_t workers = 0;
  PyObject* sys_path = Py_None;
  PyObject* initializers = Py_None;
  Py_ssize_t max_tasks = 0;
  const char* thread_name_prefix = "";
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|nOOns:Pool", const_cast<char**>(kwlist),
                                   &workers, &sys_path, &initializers, &max_tasks,
                                   &thread_name_prefix))
    return nullptr;
  if (max_tasks < 0)
    return PyErr_Format(PyExc_ValueError, "max_tasks_per_worker must be >= 0, got %zd", max_tasks);
  ModuleState* st = state_of_type(type);
  if (workers < 0) return PyErr_Format(PyExc_ValueError, "workers must be >= 0, got %zd", workers);
  PoolOptions options;
  options.workers = static_cast<std::size_t>(workers);
  options.max_tasks_per_worker = static_cast<std::size_t>(max_tasks);
  options.thread_name_prefix = thread_name_prefix;
  try {
    if (sys_path != Py_None) {
      PyObject* seq = PySequence_Fast(sys_path, "sys_path must be a sequence of str");
      if (!seq) return nullptr;
      for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); ++i) {
        PyObject* item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyUnicode_Check(item)) {
          Py_DECREF(seq);
          return PyErr_Format(PyExc_TypeError, "sys_path[%zd] must be str, not %.100s", i,
                              Py_TYPE(item)->tp_name);
        }
        options.sys_path.emplace_back(PyUnicode_AsUTF8(item));
      }
      Py_DECREF(seq);
    }
    if (initializers != Py_None) {
      // Each initializer: (module, qualname, args, kwargs).
      PyObject* seq = PySequence_Fast(initializers, "initializers must be a sequence");
      if (!seq) return nullptr;
      for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); ++i) {
        PyObject *m, *q, *a = nullptr, *k = nullptr;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "OO|OO:initializer", &m, &q, &a,
                              &k)) {
          Py_DECREF(seq);
          return nullptr;
        }
        Call call;
        PyObject* empty = PyTuple_New(0);
        bool ok =
            parse_function_ref(m, q, call.function) && convert_call_args(a ? a : empty, k, call);
        Py_DECREF(empty);
        if (!ok) {
          Py_DECREF(seq);
          return nullptr;
        }
        options.initializers.push_back(std::move(call));
      }
      Py_DECREF(seq);
    }
    auto* self = reinterpret_cast<PoolObject*>(type->tp_alloc(type, 0));
    if (!self) return nullptr;
    self->completions = new std::shared_ptr<Completions>(std::make_shared<Completions>());
    try {
      self->pool = new Pool(std::move(options));
    } catch (...) {
      Py_DECREF(self);
      throw;
    }
    // Workers must end before the interpreter finalizes: the exit hook joins them.
    PyObject* pools = weak_container(st->pools, "WeakSet");
    PyObject* r = pools ? PyObject_CallMethod(pools, "add", "O", self) : nullptr;
    if (!r) {
      Py_DECREF(self);
      return nullptr;
    }
    Py_DECREF(r);
    return reinterpret_cast<PyObject*>(self);
  } catch (...) {
    return raise_engine_error(st);
  }
}

void Pool_dealloc(PyObject* op) {
  PyTypeObject* type = Py_TYPE(op);
  PyObject_GC_UnTrack(op);
  PyObject_ClearWeakRefs(op);
  // Shuts down, GIL released while joining. In a child forked while it ran,
  // kept: its workers are the parent's (and a lock one held may stay held).
  if (!forked_while_running()) delete reinterpret_cast<PoolObject*>(op)->pool;
  delete reinterpret_cast<PoolObject*>(op)->completions;
  type->tp_free(op);
  Py_DECREF(type);
}

int Pool_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  return 0;
}

PyObject* Pool_submit(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"module", "qualname", "args", "kwargs",
                                 "token",  "timeout",  nullptr};
  PyObject *module, *qualname, *call_args = nullptr, *call_kwargs = Py_None, *token_obj = Py_None;
  PyObject* timeout_obj = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|OO$OO:submit", const_cast<char**>(kwlist),
                                   &module, &qualname, &call_args, &call_kwargs, &token_obj,
                                   &timeout_obj))
    return nullptr;
  double time_limit = 0;
  if (timeout_obj != Py_None) {
    time_limit = PyFloat_AsDouble(timeout_obj);
    if (time_limit == -1.0 && PyErr_Occurred()) return nullptr;
    if (!(time_limit > 0))
      return PyErr_Format(PyExc_ValueError, "timeout must be a positive number or None, not %R",
                          timeout_obj);
  }
  long long token = 0;
  if (token_obj != Py_None) {
    token = PyLong_AsLongLong(token_obj);
    if (token == -1 && PyErr_Occurred()) return nullptr;
  }
  ModuleState* st = state_of_type(Py_TYPE(self));
  Pool* pool = reinterpret_cast<PoolObject*>(self)->pool;
  try {
    Call call;
    PyObject* empty = PyTuple_New(0);
    if (!empty) return nullptr;
    bool ok = parse_function_ref(module, qualname, call.function) &&
              convert_call_args(call_args ? call_args : empty, call_kwargs, call);
    Py_DECREF(empty);
    if (!ok) return nullptr;
    auto* task = PyObject_GC_New(TaskObject, st->task_type);
    if (!task) return nullptr;
    task->state = new std::shared_ptr<TaskState>(std::make_shared<TaskState>());
    PyObject_GC_Track(task);
    std::shared_ptr<TaskState> state = *task->state;
    if (time_limit > 0) state->control->set_timeout(time_limit);
    try {
      if (token_obj == Py_None) {
        pool->submit(
            std::move(call), [state](Outcome out) { state->complete(std::move(out)); },
            state->control);
      } else {
        // The outcome goes to completions() or Task.take(), whichever claims it.
        std::shared_ptr<Completions> sink = *reinterpret_cast<PoolObject*>(self)->completions;
        state->sink = sink;
        state->token = token;
        sink->outstanding.fetch_add(1);
        try {
          pool->submit(
              std::move(call),
              [sink, state, token](Outcome out) {
                if (state->complete_token(std::move(out))) sink->post(token, state);
              },
              state->control);
        } catch (...) {
          sink->outstanding.fetch_sub(1);
          throw;
        }
      }
    } catch (...) {
      Py_DECREF(task);
      throw;
    }
    return reinterpret_cast<PyObject*>(task);
  } catch (...) {
    return raise_engine_error(st);
  }
}

void close_pool(PoolObject* po, bool cancel_pending) {
  po->pool->close(cancel_pending);
  (*po->completions)->finish();
}

PyObject* Pool_close(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"cancel_pending", nullptr};
  int cancel = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|p:close", const_cast<char**>(kwlist), &cancel))
    return nullptr;
  close_pool(reinterpret_cast<PoolObject*>(self), cancel != 0);
  Py_RETURN_NONE;
}

PyObject* Pool_join(PyObject* self, PyObject*) {
  reinterpret_cast<PoolObject*>(self)->pool->join();  // GIL released while joining
  Py_RETURN_NONE;
}

PyObject* Pool_shutdown(PyObject* self, PyObject* args, PyObject* kwargs) {
  if (!Pool_close(self, args, kwargs)) return nullptr;
  Py_DECREF(Py_None);
  return Pool_join(self, nullptr);
}

// An outcome as its value (ok) or exception; nullptr on failure.
PyObject* outcome_payload(ModuleState* st, const Outcome& out, bool& ok) {
  PyObject* payload;
  ok = out.status == Outcome::Status::Ok;
  if (ok) {
    payload = to_python(out.value);
    if (!payload) {
      // The result arrived but cannot be rebuilt here (e.g. unpickling failed).
      ok = false;
      payload = PyErr_GetRaisedException();
    }
  } else {
    raise_outcome(st, out);
    payload = PyErr_GetRaisedException();
  }
  return payload;
}

PyObject* Pool_completions(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"timeout", "limit", nullptr};
  PyObject* timeout = Py_None;
  Py_ssize_t limit = 4096;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|On:completions", const_cast<char**>(kwlist),
                                   &timeout, &limit))
    return nullptr;
  Deadline deadline;
  if (!parse_deadline(timeout, 1, deadline)) return nullptr;
  ModuleState* st = state_of_type(Py_TYPE(self));
  std::shared_ptr<Completions> sink = *reinterpret_cast<PoolObject*>(self)->completions;
  std::vector<std::pair<long long, std::shared_ptr<TaskState>>> batch;
  std::pair<long long, std::shared_ptr<TaskState>> item;
  WaitResult r;
  if (!wait_releasing_gil([&] { return sink->channel.get(item, deadline, true); }, r))
    return nullptr;
  if (r == WaitResult::Closed) Py_RETURN_NONE;  // closed and every outcome delivered
  if (r == WaitResult::Ready) {
    // Outcomes a Task.take() already claimed are left out.
    if (item.second->claim()) batch.push_back(std::move(item));
    while (static_cast<Py_ssize_t>(batch.size()) < limit &&
           sink->channel.get(item, Deadline::now()) == WaitResult::Ready)
      if (item.second->claim()) batch.push_back(std::move(item));
  }
  PyObject* list = PyList_New(0);
  if (!list) return nullptr;
  for (auto& [token, task] : batch) {
    bool ok = false;
    PyObject* payload = outcome_payload(st, task->take_outcome(), ok);
    PyObject* t = payload ? Py_BuildValue("(LNN)", token, PyBool_FromLong(ok), payload) : nullptr;
    if (!t || PyList_Append(list, t) < 0) {
      Py_XDECREF(t);
      Py_DECREF(list);
      return nullptr;
    }
    Py_DECREF(t);
  }
  return list;
}

PyObject* Pool_interrupt_all(PyObject* self, PyObject*) {
  return PyLong_FromSize_t(reinterpret_cast<PoolObject*>(self)->pool->interrupt_all());
}

PyObject* Pool_get_size(PyObject* self, void*) {
  return PyLong_FromSize_t(reinterpret_cast<PoolObject*>(self)->pool->size());
}

PyMethodDef Pool_methods[] = {
    {"submit", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(Pool_submit)),
     METH_VARARGS | METH_KEYWORDS,
     "submit($self, /, module, qualname, args=(), kwargs=None, *, token=None, timeout=None)\n--\n\n"
     "Run module.qualname(*args, **kwargs) in a worker; returns a Task."},
    {"shutdown", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(Pool_shutdown)),
     METH_VARARGS | METH_KEYWORDS,
     "shutdown($self, /, cancel_pending=False)\n--\n\n"
     "Stop accepting tasks and wait for the workers."},
    {"close", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(Pool_close)),
     METH_VARARGS | METH_KEYWORDS,
     "close($self, /, cancel_pending=False)\n--\n\nStop accepting tasks; do not wait."},
    {"join", Pool_join, METH_NOARGS, "Wait for every worker to end (after close)."},
    {"interrupt_all", Pool_interrupt_all, METH_NOARGS,
     "Stop every running task (they end with TaskInterrupted); returns how many."},
    {"completions", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(Pool_completions)),
     METH_VARARGS | METH_KEYWORDS,
     "completions($self, /, timeout=None, limit=4096)\n--\n\n"
     "Wait for outcomes of tasks submitted with a token; returns a list of (token, ok, "
     "value_or_exception) (leaving out those Task.take() claimed, so possibly []), [] on timeout, "
     "None once the pool is closed and every outcome has been delivered."},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef Pool_getset[] = {{"size", Pool_get_size, nullptr, "Number of workers.", nullptr},
                             {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyType_Slot Pool_slots[] = {
    {Py_tp_doc,
     const_cast<char*>("Pool(workers=0, sys_path=None, initializers=None, max_tasks_per_worker=0, "
                       "thread_name_prefix='')\n--\n\n"
                       "Workers, each a thread owning an own-GIL sub-interpreter.")},
    {Py_tp_new, reinterpret_cast<void*>(Pool_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(Pool_dealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(Pool_traverse)},
    {Py_tp_methods, Pool_methods},
    {Py_tp_getset, Pool_getset},
    {0, nullptr}};

PyType_Spec Pool_spec = {
    "interpool._interpool.Pool", sizeof(PoolObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_MANAGED_WEAKREF,
    Pool_slots};

// ---------------------------------------------------------------------------
// UNBOUND marker
// ---------------------------------------------------------------------------

PyObject* Unbound_repr(PyObject* self) {
  switch (static_cast<Unbound>(reinterpret_cast<UnboundObject*>(self)->code)) {
    case Unbound::Error:
      return PyUnicode_FromString("UNBOUND_ERROR");
    case Unbound::Remove:
      return PyUnicode_FromString("UNBOUND_REMOVE");
    default:
      return PyUnicode_FromString("UNBOUND");
  }
}

// The markers hold their type, which holds the module: without GC support
// that reference is invisible to the collector, and the module (with its
// state) would never be freed.
int Unbound_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  return 0;
}

void Unbound_dealloc(PyObject* op) {
  PyTypeObject* type = Py_TYPE(op);
  PyObject_GC_UnTrack(op);
  type->tp_free(op);
  Py_DECREF(type);
}

PyType_Slot Unbound_slots[] = {{Py_tp_repr, reinterpret_cast<void*>(Unbound_repr)},
                               {Py_tp_traverse, reinterpret_cast<void*>(Unbound_traverse)},
                               {Py_tp_dealloc, reinterpret_cast<void*>(Unbound_dealloc)},
                               {0, nullptr}};

PyType_Spec Unbound_spec = {"interpool._interpool.UnboundItem", sizeof(UnboundObject), 0,
                            Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
                            Unbound_slots};

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
  } catch (const InterpreterNotFound& e) {
    return PyErr_Format(st->InterpreterNotFoundError, "%s", e.what());
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
        if (obj && PyCode_Check(obj))
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
  } catch (const InterpreterNotFound& e) {
    return PyErr_Format(st->InterpreterNotFoundError, "%s", e.what());
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
  } catch (const InterpreterNotFound& e) {
    return PyErr_Format(st->InterpreterNotFoundError, "%s", e.what());
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
      PyObject* result = to_python(out.value);
      if (!result) return nullptr;
      return Py_BuildValue("(ON)", Py_True, result);
    }
    // A result that cannot cross (the runner's own NotShareableError, with no
    // traceback: nothing raised it in Python) is the caller's error, as in 3.14.
    if (out.error.type_module == "interpool" && out.error.type_qualname == "NotShareableError" &&
        out.error.traceback.empty())
      return PyErr_Format(st->NotShareableError, "%s", out.error.message.c_str());
    return Py_BuildValue("(ON)", Py_False, excinfo_tuple(out.error));
  } catch (const InterpreterNotFound& e) {
    return PyErr_Format(st->InterpreterNotFoundError, "%s", e.what());
  } catch (...) {
    return raise_engine_error(st);
  }
}

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
PyObject* mod_is_shareable(PyObject*, PyObject* obj) {
  ToValueOptions options;
  options.allow_pickle = false;
  try {
    to_value(obj, "the object", options);
  } catch (const NotShareable&) {
    Py_RETURN_FALSE;
  } catch (const PythonErrorSet&) {
    return nullptr;
  }
  Py_RETURN_TRUE;
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

PyObject* mod_usable_cpus(PyObject*, PyObject*) { return PyLong_FromSize_t(usable_cpus()); }

PyObject* mod_worker_thread_name(PyObject*, PyObject*) {
  const std::string& name = Worker::current_thread_name();
  if (name.empty()) Py_RETURN_NONE;
  return PyUnicode_DecodeUTF8(name.data(), static_cast<Py_ssize_t>(name.size()), "replace");
}

PyObject* mod_queue_from_id(PyObject* module, PyObject* arg) {
  return queue_by_id(state_of(module), arg);
}

// atexit hook: joins every live Pool of this interpreter before it finalizes,
// and in the main interpreter closes the interpreters left open
// (3.13 ends sub-interpreters still in use at finalization; 3.12 would leak them).
// It also marks the interpreter as ending, for module_free.
PyObject* mod_shutdown_pools(PyObject* module, PyObject*) {
  ModuleState* st = state_of(module);
  st->exiting = true;
  if (forked_while_running()) Py_RETURN_NONE;  // the pools and interpreters are the parent's
  PyObject* pools = st->pools ? PySequence_List(st->pools) : PyList_New(0);
  if (!pools) return nullptr;
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pools); ++i) {
    auto* po = reinterpret_cast<PoolObject*>(PyList_GET_ITEM(pools, i));
    close_pool(po, false);
    po->pool->join();
  }
  Py_DECREF(pools);
  if (current_interpreter_id() == 0) {
    // The program ends: every pool of the process, including one that a daemon
    // thread is destroying, has joined its workers before Python finalizes.
    Pool::shutdown_all();
    // Interpreters made by interpreters.create() and left open: CPython 3.13
    // would end them at finalization and fail on the thread state we keep.
    InterpreterTable::close_all();
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
    {"usable_cpus", mod_usable_cpus, METH_NOARGS, "Number of CPUs this process may use."},
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
    {"_shared_handle", shared_handle, METH_VARARGS,
     "_shared_handle($module, how, number, /)\n--\n\n"
     "What a pickled SharedBuffer, lock, ... loads as."},
    {nullptr, nullptr, 0, nullptr}};

// ---------------------------------------------------------------------------
// Module lifecycle
// ---------------------------------------------------------------------------

PyObject* new_exception(PyObject* module, const char* name, PyObject* base, const char* doc) {
  std::string qualified = std::string("interpool.") + name;
  PyObject* exc = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, base, nullptr);
  if (!exc) return nullptr;
  if (PyModule_AddObjectRef(module, name, exc) < 0) {
    Py_DECREF(exc);
    return nullptr;
  }
  return exc;
}

// The engine's pickler in this interpreter: interpool._byvalue.dumps, which sends
// functions that the receiver cannot import by value; pickle.dumps (nullptr)
// where the package is not importable.
PyObject* face_pickler() {
  PyObject* module = PyImport_ImportModule("interpool._byvalue");
  if (!module) {
    PyErr_Clear();
    return nullptr;
  }
  PyObject* dumps = PyObject_GetAttrString(module, "dumps");
  Py_DECREF(module);
  if (!dumps) PyErr_Clear();
  return dumps;
}

int module_exec(PyObject* module) {
  static std::once_flag codec_once;
  std::call_once(codec_once, [] {
    set_handle_codec(HandleCodec{handle_from_object, object_from_handle, face_pickler});
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
      !(st->QueueEmpty =
            new_exception(module, "QueueEmpty", queue_empty, "The queue was empty.")) ||
      !(st->QueueClosed =
            new_exception(module, "QueueClosed", PyExc_Exception, "The queue is closed.")) ||
      !(st->QueueNotFoundError =
            new_exception(module, "QueueNotFoundError", PyExc_LookupError,
                          "No live queue has this id (never created, or every reference to it "
                          "is gone).")) ||
      !(st->ItemInterpreterDestroyed =
            new_exception(module, "ItemInterpreterDestroyed", PyExc_Exception,
                          "The interpreter that put a queue item has been closed.")) ||
      !(st->RemoteError = new_exception(module, "RemoteError", PyExc_Exception,
                                        "An exception raised in a worker, described by type_name, "
                                        "message and traceback.")) ||
      !(st->TaskInterrupted = new_exception(
            module, "TaskInterrupted", PyExc_Exception,
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
      add_shared_types(module, st->shared) < 0)
    return -1;
  auto make_unbound = [&](PyObject** slot, const char* name, Unbound code) {
    *slot = PyType_GenericAlloc(st->unbound_type, 0);
    if (!*slot) return false;
    reinterpret_cast<UnboundObject*>(*slot)->code = static_cast<int>(code);
    return PyModule_AddObjectRef(module, name, *slot) == 0;
  };
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
  Py_VISIT(st->unbound);
  Py_VISIT(st->unbound_error);
  Py_VISIT(st->unbound_remove);
  Py_VISIT(st->InterpreterNotFoundError);
  Py_VISIT(st->queues);
  Py_VISIT(st->pools);
  Py_VISIT(st->NotShareableError);
  Py_VISIT(st->InterpreterError);
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
  Py_CLEAR(st->unbound);
  Py_CLEAR(st->unbound_error);
  Py_CLEAR(st->unbound_remove);
  Py_CLEAR(st->InterpreterNotFoundError);
  Py_CLEAR(st->queues);
  Py_CLEAR(st->pools);
  Py_CLEAR(st->NotShareableError);
  Py_CLEAR(st->InterpreterError);
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

}  // namespace

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
