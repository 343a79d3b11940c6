// Queue and the UNBOUND markers as Python types, and how engine objects cross
// (the handles registered once per process).
#include <interpool/error.hpp>
#include <interpool/queue.hpp>
#include <memory>
#include <string>

#include "core/fork.hpp"
#include "core/py_value.hpp"
#include "python/errors.hpp"
#include "python/module_state.hpp"
#include "python/wait.hpp"

namespace interpool::python {
namespace {

// ---------------------------------------------------------------------------
// Queue
// ---------------------------------------------------------------------------

// unbounditems: None (-> fallback), or UNBOUND / UNBOUND_ERROR / UNBOUND_REMOVE
// (not their codes: a stray int or bool would pick a policy silently).
bool parse_unbound(ModuleState* st, PyObject* obj, Unbound fallback, Unbound& out) {
  if (!obj || obj == Py_None) {
    out = fallback;
    return true;
  }
  if (Py_IS_TYPE(obj, st->unbound_type)) {
    out = static_cast<Unbound>(reinterpret_cast<UnboundObject*>(obj)->code);
    return true;
  }
  PyErr_Format(
      PyExc_ValueError,
      "unbounditems must be UNBOUND, UNBOUND_ERROR, UNBOUND_REMOVE or None, not %R (type '%s')",
      obj, Py_TYPE(obj)->tp_name);
  return false;
}

struct QueueObject {
  PyObject_HEAD std::shared_ptr<Queue>* queue;  // heap-held so the struct stays a C layout
  PyObject* weakrefs;
};

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
  Deadline deadline = Deadline::now();  // block=False: the timeout is not read
  if (block && !parse_deadline(timeout, TimeoutRule::NonNegative, deadline)) return nullptr;
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

PyObject* Queue_get(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"block", "timeout", nullptr};
  int block = 1;
  PyObject* timeout = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|pO:get", const_cast<char**>(kwlist), &block,
                                   &timeout))
    return nullptr;
  ModuleState* st = state_of_type(Py_TYPE(self));
  Deadline deadline = Deadline::now();  // block=False: the timeout is not read
  if (block && !parse_deadline(timeout, TimeoutRule::NonNegative, deadline)) return nullptr;
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
// By id and process (process_token): _interpool._queue_from_pickle.
PyObject* Queue_reduce(PyObject* self, PyObject*) {
  PyObject* module = PyImport_ImportModule("interpool._interpool");
  if (!module) return nullptr;
  PyObject* rebuild = PyObject_GetAttrString(module, "_queue_from_pickle");
  Py_DECREF(module);
  if (!rebuild) return nullptr;
  return Py_BuildValue("(N(LK))", rebuild, (long long)queue_of(self).id(),
                       (unsigned long long)process_token());
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

// Pickled by name: each interpreter has its own markers, found again under
// the module's UNBOUND, UNBOUND_ERROR and UNBOUND_REMOVE.
PyObject* Unbound_reduce(PyObject* self, PyObject*) { return Unbound_repr(self); }

PyMethodDef Unbound_methods[] = {
    {"__reduce__", Unbound_reduce, METH_NOARGS, "The marker's name in interpool._interpool."},
    {nullptr, nullptr, 0, nullptr}};

PyType_Slot Unbound_slots[] = {{Py_tp_repr, reinterpret_cast<void*>(Unbound_repr)},
                               {Py_tp_methods, Unbound_methods},
                               {Py_tp_traverse, reinterpret_cast<void*>(Unbound_traverse)},
                               {Py_tp_dealloc, reinterpret_cast<void*>(Unbound_dealloc)},
                               {0, nullptr}};

}  // namespace

PyType_Spec Unbound_spec = {"interpool._interpool.UnboundItem", sizeof(UnboundObject), 0,
                            Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
                            Unbound_slots};

PyType_Spec Queue_spec = {"interpool._interpool.Queue", sizeof(QueueObject), 0,
                          Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
                          Queue_slots};

// A pickled queue: the queue of that id if the pickle is this process's.
PyObject* queue_from_pickle(ModuleState* st, PyObject* id_obj, unsigned long long token) {
  if (token != process_token())
    return PyErr_Format(st->QueueNotFoundError,
                        "queue %R is another process's (this pickle was made there): a queue is "
                        "shared by the interpreters of one process only; between processes use "
                        "multiprocessing's queues",
                        id_obj);
  return queue_by_id(st, id_obj);
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

}  // namespace interpool::python
