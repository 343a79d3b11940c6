// Shared memory and synchronisation as Python types: SharedBuffer,
// SharedBufferView (what a memoryview that crossed is over), Lock, RLock,
// Event, Semaphore, BoundedSemaphore, Barrier and AtomicInt.
//
// Each object of these types holds a shared_ptr to an engine object and
// nothing else: another interpreter that receives it makes its own object for
// the same engine object (engine rule 1), and the engine object lives while
// any of them, or any memoryview of them, does. Waits release the GIL and run
// the signal handlers when a signal interrupts them (engine rule 3).
#include "python/shared.hpp"

#include <cmath>
#include <cstring>
#include <interpool/shared_buffer.hpp>
#include <interpool/sync.hpp>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "core/convert.hpp"
#include "core/interpreter.hpp"
#include "core/registry.hpp"
#include "python/wait.hpp"

namespace interpool::python {
namespace {

static_assert(std::is_same_v<Py_ssize_t, std::ptrdiff_t>,
              "BufferLayout's shape and strides are handed to Py_buffer as they are");

// ---------------------------------------------------------------------------
// What every type here shares
// ---------------------------------------------------------------------------

template <class T>
struct EngineObject {
  PyObject_HEAD std::shared_ptr<T>* ref;  // heap-held so the struct stays a C layout
};

template <class T>
const std::shared_ptr<T>& engine_ptr(PyObject* self) {
  return *reinterpret_cast<EngineObject<T>*>(self)->ref;
}

template <class T>
T& engine(PyObject* self) {
  return *engine_ptr<T>(self);
}

// A new object of `type` (one of the EngineObject<T> types) for `object`.
template <class T>
PyObject* wrap(PyTypeObject* type, std::shared_ptr<T> object) {
  auto* self = PyObject_GC_New(EngineObject<T>, type);
  if (!self) return nullptr;
  self->ref = nullptr;
  try {
    self->ref = new std::shared_ptr<T>(std::move(object));
  } catch (const std::bad_alloc&) {
    Py_DECREF(self);
    return PyErr_NoMemory();
  }
  PyObject_GC_Track(self);
  return reinterpret_cast<PyObject*>(self);
}

template <class T>
void engine_dealloc(PyObject* op) {
  PyTypeObject* type = Py_TYPE(op);
  PyObject_GC_UnTrack(op);
  delete reinterpret_cast<EngineObject<T>*>(op)->ref;
  type->tp_free(op);
  Py_DECREF(type);
}

int engine_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  return 0;
}

// Objects of one type are equal when they stand for the same engine object
// (e.g. a buffer sent to a worker and sent back).
template <class T>
PyObject* engine_richcompare(PyObject* a, PyObject* b, int op) {
  if ((op != Py_EQ && op != Py_NE) || !PyObject_TypeCheck(b, Py_TYPE(a))) Py_RETURN_NOTIMPLEMENTED;
  bool same = engine_ptr<T>(a) == engine_ptr<T>(b);
  return PyBool_FromLong((op == Py_EQ) == same);
}

template <class T>
Py_hash_t engine_hash(PyObject* self) {
  auto h = static_cast<Py_hash_t>(engine<T>(self).id());
  return h == -1 ? -2 : h;
}

// Turns the C++ exception being handled into a Python one; returns nullptr.
PyObject* raise_error() {
  try {
    throw;
  } catch (const PythonErrorSet&) {
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::overflow_error& e) {
    PyErr_SetString(PyExc_OverflowError, e.what());
  } catch (const std::logic_error& e) {  // invalid_argument, out_of_range
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_SystemError, e.what());
  }
  return nullptr;
}

// acquire(blocking=True, timeout=-1) of threading.Lock and RLock.
bool lock_deadline(int blocking, double timeout, Deadline& out) {
  if (std::isnan(timeout)) {
    PyErr_SetString(PyExc_ValueError, "Invalid value NaN (not a number)");
    return false;
  }
  if (!blocking) {
    if (timeout != -1) {
      PyErr_SetString(PyExc_ValueError, "can't specify a timeout for a non-blocking call");
      return false;
    }
    out = Deadline::now();
  } else if (timeout == -1) {
    out = Deadline::never();
  } else if (timeout < 0) {
    PyErr_SetString(PyExc_ValueError, "timeout value must be a non-negative number");
    return false;
  } else {
    out = Deadline::after(timeout);
  }
  return true;
}

// timeout=None (never) or seconds (<= 0: now), as threading's Event, Semaphore and Barrier take.
bool optional_deadline(PyObject* timeout, Deadline& out) {
  if (!timeout || timeout == Py_None) {
    out = Deadline::never();
    return true;
  }
  double seconds = PyFloat_AsDouble(timeout);
  if (seconds == -1.0 && PyErr_Occurred()) return false;
  if (std::isnan(seconds)) {
    PyErr_SetString(PyExc_ValueError, "Invalid value NaN (not a number)");
    return false;
  }
  out = Deadline::after(seconds);
  return true;
}

// __reduce__ of every type here: (_interpool._shared_handle, (how, number)).
// Inside interpool's own transfers the handle travels beside the pickle and
// keeps the object alive; a plain pickle.dumps names the object by id, which
// loads while the object is alive somewhere in the process.
PyObject* reduce_to_handle(const std::shared_ptr<Shareable>& object, std::int64_t id) {
  PyObject* module = PyImport_ImportModule("interpool._interpool");
  if (!module) return nullptr;
  PyObject* rebuild = PyObject_GetAttrString(module, "_shared_handle");
  Py_DECREF(module);
  if (!rebuild) return nullptr;
  std::int64_t index = -1;
  try {
    index = capture_handle(object);
  } catch (...) {
    Py_DECREF(rebuild);
    return raise_error();
  }
  if (index >= 0) return Py_BuildValue("(N(sL))", rebuild, "capture", (long long)index);
  return Py_BuildValue("(N(sL))", rebuild, "id", (long long)id);
}

template <class T>
PyObject* engine_reduce(PyObject* self, PyObject*) {
  const std::shared_ptr<T>& object = engine_ptr<T>(self);
  return reduce_to_handle(object, object->id());
}

bool no_arguments(PyObject* args, PyObject* kwargs, const char* name) {
  if (PyTuple_GET_SIZE(args) == 0 && (!kwargs || PyDict_GET_SIZE(kwargs) == 0)) return true;
  PyErr_Format(PyExc_TypeError, "%s() takes no arguments", name);
  return false;
}

std::int64_t current_interpreter_id() { return PyInterpreterState_GetID(PyInterpreterState_Get()); }

#define INTERPOOL_METH(f) reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f))

// ---------------------------------------------------------------------------
// SharedBuffer
// ---------------------------------------------------------------------------

PyObject* SharedBuffer_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"nbytes", nullptr};
  Py_ssize_t nbytes;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "n:SharedBuffer", const_cast<char**>(kwlist),
                                   &nbytes))
    return nullptr;
  if (nbytes < 0) return PyErr_Format(PyExc_ValueError, "nbytes must be >= 0, not %zd", nbytes);
  try {
    return wrap(type, SharedBuffer::create(static_cast<std::size_t>(nbytes)));
  } catch (...) {
    return raise_error();
  }
}

// SharedBuffer.from_bytes(data): a new buffer holding a copy of any bytes-like object.
PyObject* SharedBuffer_from_bytes(PyObject* cls, PyObject* data) {
  Py_buffer view;
  if (PyObject_GetBuffer(data, &view, PyBUF_FULL_RO) < 0) return nullptr;
  std::shared_ptr<SharedBuffer> buffer;
  try {
    buffer = SharedBuffer::create(static_cast<std::size_t>(view.len));
  } catch (...) {
    PyBuffer_Release(&view);
    return raise_error();
  }
  int rc = 0;
  if (PyBuffer_IsContiguous(&view, 'C')) {
    if (view.len >= (1 << 20)) {
      GilRelease unlocked;  // the exporter stays pinned by `view`
      std::memcpy(buffer->data(), view.buf, static_cast<std::size_t>(view.len));
    } else if (view.len > 0) {
      std::memcpy(buffer->data(), view.buf, static_cast<std::size_t>(view.len));
    }
  } else {
    rc = PyBuffer_ToContiguous(buffer->data(), &view, view.len, 'C');
  }
  PyBuffer_Release(&view);
  if (rc < 0) return nullptr;
  return wrap(reinterpret_cast<PyTypeObject*>(cls), std::move(buffer));
}

int SharedBuffer_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  SharedBuffer& b = engine<SharedBuffer>(self);
  return PyBuffer_FillInfo(view, self, b.data(), static_cast<Py_ssize_t>(b.size()), 0, flags);
}

Py_ssize_t SharedBuffer_length(PyObject* self) {
  return static_cast<Py_ssize_t>(engine<SharedBuffer>(self).size());
}

// Indexing and slicing are memoryview's: buf[i] is an int, buf[a:b] a
// memoryview of those bytes (no copy), and errors are memoryview's too.
PyObject* SharedBuffer_subscript(PyObject* self, PyObject* key) {
  PyObject* view = PyMemoryView_FromObject(self);
  if (!view) return nullptr;
  PyObject* r = PyObject_GetItem(view, key);
  Py_DECREF(view);
  return r;
}

int SharedBuffer_ass_subscript(PyObject* self, PyObject* key, PyObject* value) {
  PyObject* view = PyMemoryView_FromObject(self);
  if (!view) return -1;
  int rc = value ? PyObject_SetItem(view, key, value) : PyObject_DelItem(view, key);
  Py_DECREF(view);
  return rc;
}

PyObject* SharedBuffer_iter(PyObject* self) {
  PyObject* view = PyMemoryView_FromObject(self);
  if (!view) return nullptr;
  PyObject* it = PyObject_GetIter(view);
  Py_DECREF(view);
  return it;
}

PyObject* SharedBuffer_cast(PyObject* self, PyObject* args, PyObject* kwargs) {
  PyObject* view = PyMemoryView_FromObject(self);
  if (!view) return nullptr;
  PyObject* cast = PyObject_GetAttrString(view, "cast");
  Py_DECREF(view);
  if (!cast) return nullptr;
  PyObject* r = PyObject_Call(cast, args, kwargs);
  Py_DECREF(cast);
  return r;
}

PyObject* SharedBuffer_get_nbytes(PyObject* self, void*) {
  return PyLong_FromSize_t(engine<SharedBuffer>(self).size());
}

PyObject* SharedBuffer_repr(PyObject* self) {
  SharedBuffer& b = engine<SharedBuffer>(self);
  return PyUnicode_FromFormat("<interpool.SharedBuffer id=%lld nbytes=%zu>", (long long)b.id(),
                              b.size());
}

PyMethodDef SharedBuffer_methods[] = {
    {"from_bytes", SharedBuffer_from_bytes, METH_O | METH_CLASS,
     "from_bytes($cls, data, /)\n--\n\n"
     "A new SharedBuffer holding a copy of data (any bytes-like object: bytes, bytearray, "
     "memoryview, array, ...)."},
    {"cast", INTERPOOL_METH(SharedBuffer_cast), METH_VARARGS | METH_KEYWORDS,
     "cast($self, /, format, shape=...)\n--\n\n"
     "memoryview(self).cast(format, shape): a typed view of the bytes, e.g. cast('i') for C ints, "
     "cast('d', [rows, cols]) for a 2-D table of doubles."},
    {"__reduce__", INTERPOOL_METH(engine_reduce<SharedBuffer>), METH_NOARGS,
     "Pickle as a reference to the same bytes (no copy)."},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef SharedBuffer_getset[] = {
    {"nbytes", SharedBuffer_get_nbytes, nullptr, "The size in bytes (len() too).", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyType_Slot SharedBuffer_slots[] = {
    {Py_tp_doc,
     const_cast<char*>(
         "SharedBuffer(nbytes)\n--\n\n"
         "nbytes zero-filled bytes that every interpreter of the process shares: passed to a "
         "worker (Executor arguments, shared=, queues, prepare_main, call), it crosses as a "
         "reference, and writes on either side are seen on the other. It has the buffer "
         "protocol: memoryview(buf), buf.cast('i') for typed views, buf[a:b] for a view of "
         "some bytes (no copy). The memory lives while any SharedBuffer or memoryview of it "
         "does, in any interpreter. Synchronise writers with interpool.Lock and friends.")},
    {Py_tp_new, reinterpret_cast<void*>(SharedBuffer_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(engine_dealloc<SharedBuffer>)},
    {Py_tp_traverse, reinterpret_cast<void*>(engine_traverse)},
    {Py_tp_repr, reinterpret_cast<void*>(SharedBuffer_repr)},
    {Py_tp_richcompare, reinterpret_cast<void*>(engine_richcompare<SharedBuffer>)},
    {Py_tp_hash, reinterpret_cast<void*>(engine_hash<SharedBuffer>)},
    {Py_tp_iter, reinterpret_cast<void*>(SharedBuffer_iter)},
    {Py_mp_length, reinterpret_cast<void*>(SharedBuffer_length)},
    {Py_mp_subscript, reinterpret_cast<void*>(SharedBuffer_subscript)},
    {Py_mp_ass_subscript, reinterpret_cast<void*>(SharedBuffer_ass_subscript)},
    {Py_bf_getbuffer, reinterpret_cast<void*>(SharedBuffer_getbuffer)},
    {Py_tp_methods, SharedBuffer_methods},
    {Py_tp_getset, SharedBuffer_getset},
    {0, nullptr}};

PyType_Spec SharedBuffer_spec = {
    "interpool._interpool.SharedBuffer", sizeof(EngineObject<SharedBuffer>), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE, SharedBuffer_slots};

// ---------------------------------------------------------------------------
// SharedBufferView: the exporter under a memoryview that crossed
// ---------------------------------------------------------------------------

// The checks memoryview's own getbuffer makes, on the layout that crossed.
int SharedBufferView_getbuffer(PyObject* self, Py_buffer* view, int flags) {
  const SharedBufferView& v = engine<SharedBufferView>(self);
  const BufferLayout& l = v.layout();
  if ((flags & PyBUF_WRITABLE) == PyBUF_WRITABLE && l.readonly) {
    PyErr_SetString(PyExc_BufferError, "the view is read-only");
    return -1;
  }
  const bool c = l.c_contiguous(), f = l.f_contiguous();
  if (((flags & PyBUF_C_CONTIGUOUS) == PyBUF_C_CONTIGUOUS && !c) ||
      ((flags & PyBUF_F_CONTIGUOUS) == PyBUF_F_CONTIGUOUS && !f) ||
      ((flags & PyBUF_ANY_CONTIGUOUS) == PyBUF_ANY_CONTIGUOUS && !c && !f) ||
      ((flags & PyBUF_STRIDES) != PyBUF_STRIDES && !c)) {
    PyErr_SetString(PyExc_BufferError, "the view is not contiguous in the way asked for");
    return -1;
  }
  const bool format = (flags & PyBUF_FORMAT) == PyBUF_FORMAT;
  const bool shape = (flags & PyBUF_ND) == PyBUF_ND;
  if (!shape && format) {
    PyErr_SetString(PyExc_BufferError,
                    "cannot cast to unsigned bytes if the format flag is present");
    return -1;
  }
  view->obj = Py_NewRef(self);
  view->buf = v.first();
  view->len = static_cast<Py_ssize_t>(l.nbytes());
  view->readonly = l.readonly;
  view->itemsize = static_cast<Py_ssize_t>(l.itemsize);
  view->format = format ? const_cast<char*>(l.format.c_str()) : nullptr;
  const bool scalar = l.shape.empty();
  if (shape) {
    view->ndim = static_cast<int>(l.shape.size());
    view->shape = scalar ? nullptr : const_cast<Py_ssize_t*>(l.shape.data());
  } else {
    view->ndim = 1;
    view->shape = nullptr;
  }
  const bool strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES;
  view->strides = strides && shape && !scalar ? const_cast<Py_ssize_t*>(l.strides.data()) : nullptr;
  view->suboffsets = nullptr;
  view->internal = nullptr;
  return 0;
}

PyObject* SharedBufferView_get_buffer(PyObject* self, void*) {
  const SharedTypes* types = shared_types_of(Py_TYPE(self));
  if (!types) return PyErr_Format(PyExc_SystemError, "interpool: SharedBufferView without types");
  return wrap(types->buffer, engine<SharedBufferView>(self).buffer());
}

PyObject* SharedBufferView_repr(PyObject* self) {
  const SharedBufferView& v = engine<SharedBufferView>(self);
  return PyUnicode_FromFormat("<interpool.SharedBufferView of SharedBuffer id=%lld offset=%zu>",
                              (long long)v.buffer()->id(), v.layout().offset);
}

PyGetSetDef SharedBufferView_getset[] = {{"buffer", SharedBufferView_get_buffer, nullptr,
                                          "The SharedBuffer these bytes are in.", nullptr},
                                         {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyType_Slot SharedBufferView_slots[] = {
    {Py_tp_doc, const_cast<char*>("What a memoryview that crossed interpreters is a view of: "
                                  "some items of a SharedBuffer, with their format and shape. "
                                  "`.buffer` is the whole SharedBuffer.")},
    {Py_tp_dealloc, reinterpret_cast<void*>(engine_dealloc<SharedBufferView>)},
    {Py_tp_traverse, reinterpret_cast<void*>(engine_traverse)},
    {Py_tp_repr, reinterpret_cast<void*>(SharedBufferView_repr)},
    {Py_bf_getbuffer, reinterpret_cast<void*>(SharedBufferView_getbuffer)},
    {Py_tp_getset, SharedBufferView_getset},
    {0, nullptr}};

PyType_Spec SharedBufferView_spec = {
    "interpool._interpool.SharedBufferView", sizeof(EngineObject<SharedBufferView>), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
        Py_TPFLAGS_DISALLOW_INSTANTIATION,
    SharedBufferView_slots};

// ---------------------------------------------------------------------------
// Lock
// ---------------------------------------------------------------------------

PyObject* Lock_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  if (!no_arguments(args, kwargs, "Lock")) return nullptr;
  try {
    return wrap(type, Lock::create());
  } catch (...) {
    return raise_error();
  }
}

// Takes the lock, waiting (GIL released) until `deadline`: True, False on timeout.
PyObject* lock_acquire(Lock& lock, const Deadline& deadline) {
  if (lock.try_acquire()) Py_RETURN_TRUE;
  if (deadline.passed()) Py_RETURN_FALSE;
  WaitResult r;
  if (!wait_releasing_gil([&] { return lock.acquire(deadline, true); }, r)) return nullptr;
  return PyBool_FromLong(r == WaitResult::Ready);
}

PyObject* Lock_acquire(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"blocking", "timeout", nullptr};
  int blocking = 1;
  double timeout = -1;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|pd:acquire", const_cast<char**>(kwlist),
                                   &blocking, &timeout))
    return nullptr;
  Deadline deadline;
  if (!lock_deadline(blocking, timeout, deadline)) return nullptr;
  return lock_acquire(engine<Lock>(self), deadline);
}

PyObject* Lock_enter(PyObject* self, PyObject*) {
  return lock_acquire(engine<Lock>(self), Deadline::never());
}

PyObject* Lock_release(PyObject* self, PyObject*) {
  if (!engine<Lock>(self).release())
    return PyErr_Format(PyExc_RuntimeError, "release unlocked lock");
  Py_RETURN_NONE;
}

PyObject* Lock_exit(PyObject* self, PyObject*) { return Lock_release(self, nullptr); }

PyObject* Lock_locked(PyObject* self, PyObject*) {
  return PyBool_FromLong(engine<Lock>(self).locked());
}

PyObject* Lock_repr(PyObject* self) {
  Lock& lock = engine<Lock>(self);
  return PyUnicode_FromFormat("<interpool.Lock id=%lld %s>", (long long)lock.id(),
                              lock.locked() ? "locked" : "unlocked");
}

PyMethodDef Lock_methods[] = {
    {"acquire", INTERPOOL_METH(Lock_acquire), METH_VARARGS | METH_KEYWORDS,
     "acquire($self, /, blocking=True, timeout=-1)\n--\n\n"
     "Take the lock, waiting (GIL released) if another thread, in any interpreter, holds it; True "
     "if taken, False if the timeout passed."},
    {"release", Lock_release, METH_NOARGS,
     "Release the lock; any thread may. RuntimeError if it is not locked."},
    {"locked", Lock_locked, METH_NOARGS, "True if some thread holds the lock."},
    {"__enter__", Lock_enter, METH_NOARGS, "acquire()"},
    {"__exit__", Lock_exit, METH_VARARGS, "release()"},
    {"__reduce__", INTERPOOL_METH(engine_reduce<Lock>), METH_NOARGS,
     "Pickle as a reference to the same lock."},
    {nullptr, nullptr, 0, nullptr}};

PyType_Slot Lock_slots[] = {
    {Py_tp_doc,
     const_cast<char*>("Lock()\n--\n\nthreading.Lock for every interpreter of the process: it "
                       "crosses to workers as a reference to the same lock. acquire() waits with "
                       "the GIL released; any thread may release it.")},
    {Py_tp_new, reinterpret_cast<void*>(Lock_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(engine_dealloc<Lock>)},
    {Py_tp_traverse, reinterpret_cast<void*>(engine_traverse)},
    {Py_tp_repr, reinterpret_cast<void*>(Lock_repr)},
    {Py_tp_richcompare, reinterpret_cast<void*>(engine_richcompare<Lock>)},
    {Py_tp_hash, reinterpret_cast<void*>(engine_hash<Lock>)},
    {Py_tp_methods, Lock_methods},
    {0, nullptr}};

PyType_Spec Lock_spec = {"interpool._interpool.Lock", sizeof(EngineObject<Lock>), 0,
                         Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
                         Lock_slots};

// ---------------------------------------------------------------------------
// RLock
// ---------------------------------------------------------------------------

// The calling thread in the current interpreter.
Owner current_owner() {
  return Owner{current_interpreter_id(), static_cast<std::uint64_t>(PyThread_get_thread_ident())};
}

PyObject* RLock_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  if (!no_arguments(args, kwargs, "RLock")) return nullptr;
  try {
    return wrap(type, RLock::create());
  } catch (...) {
    return raise_error();
  }
}

PyObject* rlock_acquire(RLock& lock, const Deadline& deadline) {
  Owner me = current_owner();
  WaitResult r = lock.acquire(me, Deadline::now());
  if (r == WaitResult::Ready) Py_RETURN_TRUE;
  if (deadline.passed()) Py_RETURN_FALSE;
  if (!wait_releasing_gil([&] { return lock.acquire(me, deadline, true); }, r)) return nullptr;
  return PyBool_FromLong(r == WaitResult::Ready);
}

PyObject* RLock_acquire(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"blocking", "timeout", nullptr};
  int blocking = 1;
  double timeout = -1;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|pd:acquire", const_cast<char**>(kwlist),
                                   &blocking, &timeout))
    return nullptr;
  Deadline deadline;
  if (!lock_deadline(blocking, timeout, deadline)) return nullptr;
  return rlock_acquire(engine<RLock>(self), deadline);
}

PyObject* RLock_enter(PyObject* self, PyObject*) {
  return rlock_acquire(engine<RLock>(self), Deadline::never());
}

PyObject* RLock_release(PyObject* self, PyObject*) {
  if (!engine<RLock>(self).release(current_owner()))
    return PyErr_Format(PyExc_RuntimeError, "cannot release un-acquired lock");
  Py_RETURN_NONE;
}

PyObject* RLock_exit(PyObject* self, PyObject*) { return RLock_release(self, nullptr); }

PyObject* RLock_locked(PyObject* self, PyObject*) {
  return PyBool_FromLong(engine<RLock>(self).locked());
}

PyObject* RLock_is_owned(PyObject* self, PyObject*) {
  return PyBool_FromLong(engine<RLock>(self).owned_by(current_owner()));
}

PyObject* RLock_repr(PyObject* self) {
  RLock& lock = engine<RLock>(self);
  std::size_t depth = lock.depth();
  return PyUnicode_FromFormat("<interpool.RLock id=%lld %s depth=%zu>", (long long)lock.id(),
                              depth ? "locked" : "unlocked", depth);
}

PyMethodDef RLock_methods[] = {
    {"acquire", INTERPOOL_METH(RLock_acquire), METH_VARARGS | METH_KEYWORDS,
     "acquire($self, /, blocking=True, timeout=-1)\n--\n\n"
     "Take the lock, or take it once more if this thread of this interpreter holds it; True if "
     "taken, False if the timeout passed."},
    {"release", RLock_release, METH_NOARGS,
     "Release once. RuntimeError unless this thread of this interpreter holds it."},
    {"locked", RLock_locked, METH_NOARGS, "True if some thread holds the lock."},
    {"_is_owned", RLock_is_owned, METH_NOARGS,
     "True if this thread of this interpreter holds the lock."},
    {"__enter__", RLock_enter, METH_NOARGS, "acquire()"},
    {"__exit__", RLock_exit, METH_VARARGS, "release()"},
    {"__reduce__", INTERPOOL_METH(engine_reduce<RLock>), METH_NOARGS,
     "Pickle as a reference to the same lock."},
    {nullptr, nullptr, 0, nullptr}};

PyType_Slot RLock_slots[] = {
    {Py_tp_doc,
     const_cast<char*>("RLock()\n--\n\nthreading.RLock for every interpreter of the process. The "
                       "owner is a thread in an interpreter: the same OS thread entering another "
                       "interpreter is another owner.")},
    {Py_tp_new, reinterpret_cast<void*>(RLock_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(engine_dealloc<RLock>)},
    {Py_tp_traverse, reinterpret_cast<void*>(engine_traverse)},
    {Py_tp_repr, reinterpret_cast<void*>(RLock_repr)},
    {Py_tp_richcompare, reinterpret_cast<void*>(engine_richcompare<RLock>)},
    {Py_tp_hash, reinterpret_cast<void*>(engine_hash<RLock>)},
    {Py_tp_methods, RLock_methods},
    {0, nullptr}};

PyType_Spec RLock_spec = {"interpool._interpool.RLock", sizeof(EngineObject<RLock>), 0,
                          Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
                          RLock_slots};

// ---------------------------------------------------------------------------
// Event
// ---------------------------------------------------------------------------

PyObject* Event_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  if (!no_arguments(args, kwargs, "Event")) return nullptr;
  try {
    return wrap(type, Event::create());
  } catch (...) {
    return raise_error();
  }
}

PyObject* Event_set(PyObject* self, PyObject*) {
  engine<Event>(self).set();
  Py_RETURN_NONE;
}

PyObject* Event_clear(PyObject* self, PyObject*) {
  engine<Event>(self).clear();
  Py_RETURN_NONE;
}

PyObject* Event_is_set(PyObject* self, PyObject*) {
  return PyBool_FromLong(engine<Event>(self).is_set());
}

PyObject* Event_wait(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"timeout", nullptr};
  PyObject* timeout = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:wait", const_cast<char**>(kwlist), &timeout))
    return nullptr;
  Event& event = engine<Event>(self);
  if (event.is_set()) Py_RETURN_TRUE;
  Deadline deadline;
  if (!optional_deadline(timeout, deadline)) return nullptr;
  WaitResult r;
  if (!wait_releasing_gil([&] { return event.wait(deadline, true); }, r)) return nullptr;
  return PyBool_FromLong(r == WaitResult::Ready);
}

PyObject* Event_repr(PyObject* self) {
  Event& event = engine<Event>(self);
  return PyUnicode_FromFormat("<interpool.Event id=%lld %s>", (long long)event.id(),
                              event.is_set() ? "set" : "unset");
}

PyMethodDef Event_methods[] = {
    {"set", Event_set, METH_NOARGS, "Set the flag: wakes every waiter, in every interpreter."},
    {"clear", Event_clear, METH_NOARGS, "Clear the flag."},
    {"is_set", Event_is_set, METH_NOARGS, "True if the flag is set."},
    {"wait", INTERPOOL_METH(Event_wait), METH_VARARGS | METH_KEYWORDS,
     "wait($self, /, timeout=None)\n--\n\n"
     "Wait (GIL released) until the flag is set; returns the flag, False if the timeout passed "
     "first."},
    {"__reduce__", INTERPOOL_METH(engine_reduce<Event>), METH_NOARGS,
     "Pickle as a reference to the same event."},
    {nullptr, nullptr, 0, nullptr}};

PyType_Slot Event_slots[] = {
    {Py_tp_doc, const_cast<char*>("Event()\n--\n\nthreading.Event for every interpreter of "
                                  "the process: a flag that threads wait for.")},
    {Py_tp_new, reinterpret_cast<void*>(Event_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(engine_dealloc<Event>)},
    {Py_tp_traverse, reinterpret_cast<void*>(engine_traverse)},
    {Py_tp_repr, reinterpret_cast<void*>(Event_repr)},
    {Py_tp_richcompare, reinterpret_cast<void*>(engine_richcompare<Event>)},
    {Py_tp_hash, reinterpret_cast<void*>(engine_hash<Event>)},
    {Py_tp_methods, Event_methods},
    {0, nullptr}};

PyType_Spec Event_spec = {"interpool._interpool.Event", sizeof(EngineObject<Event>), 0,
                          Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
                          Event_slots};

// ---------------------------------------------------------------------------
// Semaphore and BoundedSemaphore
// ---------------------------------------------------------------------------

PyObject* make_semaphore(PyTypeObject* type, PyObject* args, PyObject* kwargs, bool bounded) {
  static const char* kwlist[] = {"value", nullptr};
  long long value = 1;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, bounded ? "|L:BoundedSemaphore" : "|L:Semaphore",
                                   const_cast<char**>(kwlist), &value))
    return nullptr;
  try {
    return wrap(type, Semaphore::create(value, bounded));
  } catch (...) {
    return raise_error();
  }
}

PyObject* Semaphore_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  return make_semaphore(type, args, kwargs, false);
}

PyObject* BoundedSemaphore_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  return make_semaphore(type, args, kwargs, true);
}

PyObject* semaphore_acquire(Semaphore& sem, const Deadline& deadline) {
  if (sem.try_acquire()) Py_RETURN_TRUE;
  if (deadline.passed()) Py_RETURN_FALSE;
  WaitResult r;
  if (!wait_releasing_gil([&] { return sem.acquire(deadline, true); }, r)) return nullptr;
  return PyBool_FromLong(r == WaitResult::Ready);
}

PyObject* Semaphore_acquire(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"blocking", "timeout", nullptr};
  int blocking = 1;
  PyObject* timeout = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|pO:acquire", const_cast<char**>(kwlist),
                                   &blocking, &timeout))
    return nullptr;
  if (!blocking && timeout != Py_None)
    return PyErr_Format(PyExc_ValueError, "can't specify timeout for non-blocking acquire");
  Deadline deadline = Deadline::now();
  if (blocking && !optional_deadline(timeout, deadline)) return nullptr;
  return semaphore_acquire(engine<Semaphore>(self), deadline);
}

PyObject* Semaphore_enter(PyObject* self, PyObject*) {
  return semaphore_acquire(engine<Semaphore>(self), Deadline::never());
}

PyObject* Semaphore_release(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"n", nullptr};
  long long n = 1;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|L:release", const_cast<char**>(kwlist), &n))
    return nullptr;
  if (n < 1) return PyErr_Format(PyExc_ValueError, "n must be one or more");
  Semaphore& sem = engine<Semaphore>(self);
  if (!sem.release(n))
    return PyErr_Format(sem.bounded() ? PyExc_ValueError : PyExc_OverflowError,
                        sem.bounded() ? "Semaphore released too many times"
                                      : "the semaphore's value would pass 2**63 - 1");
  Py_RETURN_NONE;
}

PyObject* Semaphore_exit(PyObject* self, PyObject*) {
  PyObject* none = PyTuple_New(0);
  if (!none) return nullptr;
  PyObject* r = Semaphore_release(self, none, nullptr);
  Py_DECREF(none);
  return r;
}

PyObject* Semaphore_repr(PyObject* self) {
  Semaphore& sem = engine<Semaphore>(self);
  if (sem.bounded())
    return PyUnicode_FromFormat("<interpool.BoundedSemaphore id=%lld value=%lld/%lld>",
                                (long long)sem.id(), (long long)sem.value(),
                                (long long)sem.initial());
  return PyUnicode_FromFormat("<interpool.Semaphore id=%lld value=%lld>", (long long)sem.id(),
                              (long long)sem.value());
}

PyMethodDef Semaphore_methods[] = {
    {"acquire", INTERPOOL_METH(Semaphore_acquire), METH_VARARGS | METH_KEYWORDS,
     "acquire($self, /, blocking=True, timeout=None)\n--\n\n"
     "Decrement the counter, waiting (GIL released) while it is 0; True, or False if the timeout "
     "passed."},
    {"release", INTERPOOL_METH(Semaphore_release), METH_VARARGS | METH_KEYWORDS,
     "release($self, /, n=1)\n--\n\nIncrement the counter by n and wake as many waiters."},
    {"__enter__", Semaphore_enter, METH_NOARGS, "acquire()"},
    {"__exit__", Semaphore_exit, METH_VARARGS, "release()"},
    {"__reduce__", INTERPOOL_METH(engine_reduce<Semaphore>), METH_NOARGS,
     "Pickle as a reference to the same semaphore."},
    {nullptr, nullptr, 0, nullptr}};

PyType_Slot Semaphore_slots[] = {
    {Py_tp_doc, const_cast<char*>("Semaphore(value=1)\n--\n\nthreading.Semaphore for every "
                                  "interpreter of the process.")},
    {Py_tp_new, reinterpret_cast<void*>(Semaphore_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(engine_dealloc<Semaphore>)},
    {Py_tp_traverse, reinterpret_cast<void*>(engine_traverse)},
    {Py_tp_repr, reinterpret_cast<void*>(Semaphore_repr)},
    {Py_tp_richcompare, reinterpret_cast<void*>(engine_richcompare<Semaphore>)},
    {Py_tp_hash, reinterpret_cast<void*>(engine_hash<Semaphore>)},
    {Py_tp_methods, Semaphore_methods},
    {0, nullptr}};

PyType_Spec Semaphore_spec = {
    "interpool._interpool.Semaphore", sizeof(EngineObject<Semaphore>), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_BASETYPE,
    Semaphore_slots};

PyType_Slot BoundedSemaphore_slots[] = {
    {Py_tp_doc, const_cast<char*>("BoundedSemaphore(value=1)\n--\n\nthreading.BoundedSemaphore "
                                  "for every interpreter of the process: releasing above the "
                                  "initial value raises ValueError.")},
    {Py_tp_new, reinterpret_cast<void*>(BoundedSemaphore_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(engine_dealloc<Semaphore>)},
    {Py_tp_traverse, reinterpret_cast<void*>(engine_traverse)},
    {0, nullptr}};

PyType_Spec BoundedSemaphore_spec = {
    "interpool._interpool.BoundedSemaphore", sizeof(EngineObject<Semaphore>), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE, BoundedSemaphore_slots};

// ---------------------------------------------------------------------------
// Barrier
// ---------------------------------------------------------------------------

PyObject* raise_broken_barrier() {
  PyObject* threading = PyImport_ImportModule("threading");
  if (!threading) return nullptr;
  PyObject* broken = PyObject_GetAttrString(threading, "BrokenBarrierError");
  Py_DECREF(threading);
  if (!broken) return nullptr;
  PyErr_SetNone(broken);
  Py_DECREF(broken);
  return nullptr;
}

PyObject* Barrier_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"parties", "action", "timeout", nullptr};
  Py_ssize_t parties;
  PyObject* action = Py_None;
  PyObject* timeout = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "n|OO:Barrier", const_cast<char**>(kwlist),
                                   &parties, &action, &timeout))
    return nullptr;
  if (parties <= 0) return PyErr_Format(PyExc_ValueError, "parties must be > 0");
  if (action != Py_None)
    return PyErr_Format(PyExc_TypeError,
                        "interpool.Barrier takes no action (it would run in one interpreter "
                        "only): call it in the thread whose wait() returns 0");
  double seconds = -1;
  if (timeout != Py_None) {
    seconds = PyFloat_AsDouble(timeout);
    if (seconds == -1.0 && PyErr_Occurred()) return nullptr;
    if (std::isnan(seconds))
      return PyErr_Format(PyExc_ValueError, "Invalid value NaN (not a number)");
    if (seconds < 0) seconds = 0;
  }
  try {
    return wrap(type, Barrier::create(static_cast<std::size_t>(parties), seconds));
  } catch (...) {
    return raise_error();
  }
}

PyObject* Barrier_wait(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"timeout", nullptr};
  PyObject* timeout = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:wait", const_cast<char**>(kwlist), &timeout))
    return nullptr;
  Barrier& barrier = engine<Barrier>(self);
  Deadline deadline;
  if (timeout == Py_None && barrier.timeout() >= 0)
    deadline = Deadline::after(barrier.timeout());
  else if (!optional_deadline(timeout, deadline))
    return nullptr;
  Barrier::Ticket ticket;
  Barrier::Result r;
  if (!wait_releasing_gil([&] { return barrier.wait(ticket, deadline, true); }, r)) {
    barrier.abandon(ticket);  // threading lets the barrier be when a waiter is interrupted
    return nullptr;
  }
  if (r == Barrier::Result::Broken) return raise_broken_barrier();
  return PyLong_FromSize_t(ticket.index);
}

PyObject* Barrier_reset(PyObject* self, PyObject*) {
  engine<Barrier>(self).reset();
  Py_RETURN_NONE;
}

PyObject* Barrier_abort(PyObject* self, PyObject*) {
  engine<Barrier>(self).abort();
  Py_RETURN_NONE;
}

PyObject* Barrier_get_parties(PyObject* self, void*) {
  return PyLong_FromSize_t(engine<Barrier>(self).parties());
}

PyObject* Barrier_get_n_waiting(PyObject* self, void*) {
  return PyLong_FromSize_t(engine<Barrier>(self).n_waiting());
}

PyObject* Barrier_get_broken(PyObject* self, void*) {
  return PyBool_FromLong(engine<Barrier>(self).broken());
}

PyObject* Barrier_repr(PyObject* self) {
  Barrier& b = engine<Barrier>(self);
  if (b.broken())
    return PyUnicode_FromFormat("<interpool.Barrier id=%lld broken>", (long long)b.id());
  return PyUnicode_FromFormat("<interpool.Barrier id=%lld waiters=%zu/%zu>", (long long)b.id(),
                              b.n_waiting(), b.parties());
}

PyMethodDef Barrier_methods[] = {
    {"wait", INTERPOOL_METH(Barrier_wait), METH_VARARGS | METH_KEYWORDS,
     "wait($self, /, timeout=None)\n--\n\n"
     "Wait (GIL released) until `parties` threads, in any interpreters, have called wait(); "
     "returns this thread's arrival index (0 .. parties - 1). threading.BrokenBarrierError if the "
     "barrier is or becomes broken: a timeout breaks it."},
    {"reset", Barrier_reset, METH_NOARGS,
     "Back to the empty state; threads waiting now get BrokenBarrierError."},
    {"abort", Barrier_abort, METH_NOARGS,
     "Break the barrier: waits now and later raise BrokenBarrierError until reset()."},
    {"__reduce__", INTERPOOL_METH(engine_reduce<Barrier>), METH_NOARGS,
     "Pickle as a reference to the same barrier."},
    {nullptr, nullptr, 0, nullptr}};

PyGetSetDef Barrier_getset[] = {
    {"parties", Barrier_get_parties, nullptr, "Threads needed to pass the barrier.", nullptr},
    {"n_waiting", Barrier_get_n_waiting, nullptr, "Threads waiting now.", nullptr},
    {"broken", Barrier_get_broken, nullptr, "True if the barrier is broken.", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr}};

PyType_Slot Barrier_slots[] = {
    {Py_tp_doc,
     const_cast<char*>("Barrier(parties, action=None, timeout=None)\n--\n\nthreading.Barrier for "
                       "every interpreter of the process, without the action (it would run in "
                       "one interpreter only): timeout is the default of wait().")},
    {Py_tp_new, reinterpret_cast<void*>(Barrier_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(engine_dealloc<Barrier>)},
    {Py_tp_traverse, reinterpret_cast<void*>(engine_traverse)},
    {Py_tp_repr, reinterpret_cast<void*>(Barrier_repr)},
    {Py_tp_richcompare, reinterpret_cast<void*>(engine_richcompare<Barrier>)},
    {Py_tp_hash, reinterpret_cast<void*>(engine_hash<Barrier>)},
    {Py_tp_methods, Barrier_methods},
    {Py_tp_getset, Barrier_getset},
    {0, nullptr}};

PyType_Spec Barrier_spec = {"interpool._interpool.Barrier", sizeof(EngineObject<Barrier>), 0,
                            Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
                            Barrier_slots};

// ---------------------------------------------------------------------------
// AtomicInt
// ---------------------------------------------------------------------------

PyObject* AtomicInt_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"value", nullptr};
  long long value = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|L:AtomicInt", const_cast<char**>(kwlist),
                                   &value))
    return nullptr;
  try {
    return wrap(type, AtomicInt::create(value));
  } catch (...) {
    return raise_error();
  }
}

bool int64_arg(PyObject* obj, std::int64_t& out) {
  long long v = PyLong_AsLongLong(obj);
  if (v == -1 && PyErr_Occurred()) return false;
  out = v;
  return true;
}

PyObject* AtomicInt_load(PyObject* self, PyObject*) {
  return PyLong_FromLongLong(engine<AtomicInt>(self).load());
}

PyObject* AtomicInt_store(PyObject* self, PyObject* value) {
  std::int64_t v;
  if (!int64_arg(value, v)) return nullptr;
  engine<AtomicInt>(self).store(v);
  Py_RETURN_NONE;
}

PyObject* AtomicInt_exchange(PyObject* self, PyObject* value) {
  std::int64_t v;
  if (!int64_arg(value, v)) return nullptr;
  return PyLong_FromLongLong(engine<AtomicInt>(self).exchange(v));
}

// add(n) -> the new value; fetch_add(n) -> the old one.
PyObject* atomic_add(PyObject* self, PyObject* const* args, Py_ssize_t nargs, bool old) {
  if (nargs > 1)
    return PyErr_Format(PyExc_TypeError, "%s() takes at most 1 argument (%zd given)",
                        old ? "fetch_add" : "add", nargs);
  std::int64_t n = 1;
  if (nargs == 1 && !int64_arg(args[0], n)) return nullptr;
  try {
    std::int64_t before = engine<AtomicInt>(self).fetch_add(n);
    return PyLong_FromLongLong(old ? before : before + n);
  } catch (...) {
    return raise_error();
  }
}

PyObject* AtomicInt_add(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  return atomic_add(self, args, nargs, false);
}

PyObject* AtomicInt_fetch_add(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  return atomic_add(self, args, nargs, true);
}

PyObject* AtomicInt_compare_exchange(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2)
    return PyErr_Format(PyExc_TypeError,
                        "compare_exchange() takes exactly 2 arguments (expected, desired), %zd "
                        "given",
                        nargs);
  std::int64_t expected, desired;
  if (!int64_arg(args[0], expected) || !int64_arg(args[1], desired)) return nullptr;
  return PyBool_FromLong(engine<AtomicInt>(self).compare_exchange(expected, desired));
}

PyObject* AtomicInt_repr(PyObject* self) {
  AtomicInt& a = engine<AtomicInt>(self);
  return PyUnicode_FromFormat("<interpool.AtomicInt id=%lld value=%lld>", (long long)a.id(),
                              (long long)a.load());
}

PyMethodDef AtomicInt_methods[] = {
    {"load", AtomicInt_load, METH_NOARGS, "The value."},
    {"store", AtomicInt_store, METH_O, "store($self, value, /)\n--\n\nSet the value."},
    {"exchange", AtomicInt_exchange, METH_O,
     "exchange($self, value, /)\n--\n\nSet the value; return the previous one."},
    {"add", INTERPOOL_METH(AtomicInt_add), METH_FASTCALL,
     "add($self, n=1, /)\n--\n\n"
     "Add n (may be negative) in one atomic step; return the NEW value, as `x += n` would give. "
     "OverflowError (value unchanged) outside the 64-bit range."},
    {"fetch_add", INTERPOOL_METH(AtomicInt_fetch_add), METH_FASTCALL,
     "fetch_add($self, n=1, /)\n--\n\n"
     "Add n in one atomic step; return the OLD value (C++'s fetch_add)."},
    {"compare_exchange", INTERPOOL_METH(AtomicInt_compare_exchange), METH_FASTCALL,
     "compare_exchange($self, expected, desired, /)\n--\n\n"
     "If the value is `expected`, set it to `desired` and return True; else change nothing and "
     "return False."},
    {"__reduce__", INTERPOOL_METH(engine_reduce<AtomicInt>), METH_NOARGS,
     "Pickle as a reference to the same integer."},
    {nullptr, nullptr, 0, nullptr}};

PyType_Slot AtomicInt_slots[] = {
    {Py_tp_doc, const_cast<char*>("AtomicInt(value=0)\n--\n\nA 64-bit signed integer that "
                                  "every interpreter of the process shares, changed in atomic "
                                  "steps: counters and reductions without a lock.")},
    {Py_tp_new, reinterpret_cast<void*>(AtomicInt_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(engine_dealloc<AtomicInt>)},
    {Py_tp_traverse, reinterpret_cast<void*>(engine_traverse)},
    {Py_tp_repr, reinterpret_cast<void*>(AtomicInt_repr)},
    {Py_tp_richcompare, reinterpret_cast<void*>(engine_richcompare<AtomicInt>)},
    {Py_tp_hash, reinterpret_cast<void*>(engine_hash<AtomicInt>)},
    {Py_tp_methods, AtomicInt_methods},
    {0, nullptr}};

PyType_Spec AtomicInt_spec = {"interpool._interpool.AtomicInt", sizeof(EngineObject<AtomicInt>), 0,
                              Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
                              AtomicInt_slots};

// A memoryview's layout relative to `base` (the start of the buffer it is in).
BufferLayout layout_of(const Py_buffer& view, const std::byte* base) {
  BufferLayout layout;
  layout.offset = static_cast<std::size_t>(static_cast<const std::byte*>(view.buf) - base);
  layout.itemsize = static_cast<std::size_t>(view.itemsize);
  layout.format = view.format ? view.format : "B";
  layout.shape.assign(view.shape, view.shape + view.ndim);
  if (view.strides) {
    layout.strides.assign(view.strides, view.strides + view.ndim);
  } else {
    layout = BufferLayout::contiguous(layout.offset, layout.itemsize, layout.format,
                                      std::move(layout.shape));
  }
  layout.readonly = view.readonly != 0;
  return layout;
}

}  // namespace

// ---------------------------------------------------------------------------
// The module's side: types, handles
// ---------------------------------------------------------------------------

int add_shared_types(PyObject* module, SharedTypes& t) {
  auto make = [&](PyType_Spec* spec, PyTypeObject** slot, bool public_name,
                  PyTypeObject* base = nullptr) {
    *slot = reinterpret_cast<PyTypeObject*>(
        PyType_FromModuleAndSpec(module, spec, reinterpret_cast<PyObject*>(base)));
    if (!*slot) return false;
    return !public_name || PyModule_AddType(module, *slot) == 0;
  };
  if (!make(&SharedBuffer_spec, &t.buffer, true) ||
      !make(&SharedBufferView_spec, &t.buffer_view, true) || !make(&Lock_spec, &t.lock, true) ||
      !make(&RLock_spec, &t.rlock, true) || !make(&Event_spec, &t.event, true) ||
      !make(&Semaphore_spec, &t.semaphore, true) ||
      !make(&BoundedSemaphore_spec, &t.bounded_semaphore, true, t.semaphore) ||
      !make(&Barrier_spec, &t.barrier, true) || !make(&AtomicInt_spec, &t.atomic_int, true))
    return -1;
  return 0;
}

int traverse_shared_types(SharedTypes& t, visitproc visit, void* arg) {
  Py_VISIT(t.buffer);
  Py_VISIT(t.buffer_view);
  Py_VISIT(t.lock);
  Py_VISIT(t.rlock);
  Py_VISIT(t.event);
  Py_VISIT(t.semaphore);
  Py_VISIT(t.bounded_semaphore);
  Py_VISIT(t.barrier);
  Py_VISIT(t.atomic_int);
  return 0;
}

void clear_shared_types(SharedTypes& t) {
  Py_CLEAR(t.buffer);
  Py_CLEAR(t.buffer_view);
  Py_CLEAR(t.lock);
  Py_CLEAR(t.rlock);
  Py_CLEAR(t.event);
  Py_CLEAR(t.semaphore);
  Py_CLEAR(t.bounded_semaphore);
  Py_CLEAR(t.barrier);
  Py_CLEAR(t.atomic_int);
}

int shared_to_handle(const SharedTypes& t, PyObject* obj, std::shared_ptr<Shareable>* out) {
  if (!t.buffer) return 0;
  if (PyObject_TypeCheck(obj, t.buffer))
    *out = engine_ptr<SharedBuffer>(obj);
  else if (PyObject_TypeCheck(obj, t.buffer_view))
    *out = engine_ptr<SharedBufferView>(obj);
  else if (PyObject_TypeCheck(obj, t.lock))
    *out = engine_ptr<Lock>(obj);
  else if (PyObject_TypeCheck(obj, t.rlock))
    *out = engine_ptr<RLock>(obj);
  else if (PyObject_TypeCheck(obj, t.event))
    *out = engine_ptr<Event>(obj);
  else if (PyObject_TypeCheck(obj, t.semaphore))  // and BoundedSemaphore
    *out = engine_ptr<Semaphore>(obj);
  else if (PyObject_TypeCheck(obj, t.barrier))
    *out = engine_ptr<Barrier>(obj);
  else if (PyObject_TypeCheck(obj, t.atomic_int))
    *out = engine_ptr<AtomicInt>(obj);
  else
    return 0;
  return 1;
}

int memoryview_to_handle(PyObject* obj, std::shared_ptr<Shareable>* out) {
  Py_buffer view;
  if (PyObject_GetBuffer(obj, &view, PyBUF_FULL_RO) < 0) return -1;  // e.g. released
  // Over a SharedBuffer (or a view that crossed): the same bytes, no copy.
  std::shared_ptr<SharedBuffer> shared;
  PyObject* base = PyMemoryView_GET_BUFFER(obj)->obj;
  if (base) {
    if (const SharedTypes* t = shared_types_of(Py_TYPE(base))) {
      if (PyObject_TypeCheck(base, t->buffer))
        shared = engine_ptr<SharedBuffer>(base);
      else if (PyObject_TypeCheck(base, t->buffer_view))
        shared = engine<SharedBufferView>(base).buffer();
    }
  }
  int rc = 1;
  try {
    if (shared) {
      *out = std::make_shared<SharedBufferView>(shared, layout_of(view, shared->data()));
    } else {
      // Anything else is copied: its owner lives in this interpreter only.
      auto copy = SharedBuffer::create(static_cast<std::size_t>(view.len));
      if (PyBuffer_ToContiguous(copy->data(), &view, view.len, 'C') < 0) throw PythonErrorSet();
      std::vector<std::ptrdiff_t> shape(view.shape, view.shape + view.ndim);
      *out = std::make_shared<SharedBufferView>(
          copy, BufferLayout::contiguous(0, static_cast<std::size_t>(view.itemsize),
                                         view.format ? view.format : "B", std::move(shape),
                                         view.readonly != 0));
    }
  } catch (...) {
    raise_error();
    rc = -1;
  }
  PyBuffer_Release(&view);
  return rc;
}

PyObject* shared_from_handle(const SharedTypes& t, const std::shared_ptr<Shareable>& object) {
  if (object->kind() == ObjectKind::SharedBuffer) {
    if (auto buffer = std::dynamic_pointer_cast<SharedBuffer>(object))
      return wrap(t.buffer, std::move(buffer));
    if (auto view = std::dynamic_pointer_cast<SharedBufferView>(object)) {
      PyObject* exporter = wrap(t.buffer_view, std::move(view));
      if (!exporter) return nullptr;
      PyObject* mv = PyMemoryView_FromObject(exporter);
      Py_DECREF(exporter);
      return mv;
    }
    return nullptr;
  }
  if (object->kind() != ObjectKind::Sync) return nullptr;
  if (auto lock = std::dynamic_pointer_cast<Lock>(object)) return wrap(t.lock, std::move(lock));
  if (auto rlock = std::dynamic_pointer_cast<RLock>(object)) return wrap(t.rlock, std::move(rlock));
  if (auto event = std::dynamic_pointer_cast<Event>(object)) return wrap(t.event, std::move(event));
  if (auto sem = std::dynamic_pointer_cast<Semaphore>(object)) {
    PyTypeObject* type = sem->bounded() ? t.bounded_semaphore : t.semaphore;
    return wrap(type, std::move(sem));
  }
  if (auto barrier = std::dynamic_pointer_cast<Barrier>(object))
    return wrap(t.barrier, std::move(barrier));
  if (auto atomic = std::dynamic_pointer_cast<AtomicInt>(object))
    return wrap(t.atomic_int, std::move(atomic));
  return nullptr;
}

PyObject* shared_handle(PyObject*, PyObject* args) {
  const char* how;
  long long number;
  if (!PyArg_ParseTuple(args, "sL:_shared_handle", &how, &number)) return nullptr;
  std::shared_ptr<Shareable> object;
  if (std::strcmp(how, "capture") == 0) {
    object = number >= 0 ? captured_handle(static_cast<std::size_t>(number)) : nullptr;
    if (!object)
      return PyErr_Format(PyExc_RuntimeError,
                          "this pickle refers to an interpool object that travelled beside it "
                          "between interpreters; only interpool can load it");
  } else if (std::strcmp(how, "id") == 0) {
    object = registry::find(number);
    if (!object)
      return PyErr_Format(PyExc_LookupError,
                          "no interpool object has id %lld in this process (it was freed, or the "
                          "pickle comes from another process): a pickled SharedBuffer, lock or "
                          "AtomicInt names a live object of the process that pickled it; these "
                          "objects are shared by the interpreters of one process only",
                          number);
  } else {
    return PyErr_Format(PyExc_ValueError, "_shared_handle: unknown kind %R",
                        PyTuple_GET_ITEM(args, 0));
  }
  return to_python(Value(Handle{std::move(object)}));
}

}  // namespace interpool::python
