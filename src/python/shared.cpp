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

#include <array>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <interpool/shared_buffer.hpp>
#include <interpool/sync.hpp>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "core/interpreter.hpp"
#include "core/py_value.hpp"
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

// What one engine type has of its own. A null pointer leaves its slot out.
struct EngineTypeParts {
  const char* name;  // "interpool._interpool.Lock"
  const char* doc;   // with its text signature
  newfunc tp_new = nullptr;
  reprfunc repr = nullptr;
  PyMethodDef* methods = nullptr;
  PyGetSetDef* getset = nullptr;
  // Flags besides Py_TPFLAGS_DEFAULT, HAVE_GC and IMMUTABLETYPE, which all have.
  unsigned int flags = 0;
  // Other slots, e.g. the buffer protocol's.
  std::initializer_list<PyType_Slot> extra = {};
};

// What == and hash() of an engine type's objects go by: the engine object
// (engine_richcompare, engine_hash), or what the base type says.
enum class Equality { Engine, Base };

// The PyType_Spec of the EngineObject<T> type described by `parts`, and the
// slots it points to: doc, new, dealloc, traverse, repr, richcompare and hash,
// the extra slots, methods and getset. Made once, in place, as a static
// object; the spec points into it, so it is neither copied nor moved.
template <class T, Equality equality = Equality::Engine>
class EngineType {
 public:
  explicit EngineType(const EngineTypeParts& parts) {
    add(Py_tp_doc, const_cast<char*>(parts.doc));
    add(Py_tp_new, reinterpret_cast<void*>(parts.tp_new));
    add(Py_tp_dealloc, reinterpret_cast<void*>(engine_dealloc<T>));
    add(Py_tp_traverse, reinterpret_cast<void*>(engine_traverse));
    add(Py_tp_repr, reinterpret_cast<void*>(parts.repr));
    if constexpr (equality == Equality::Engine) {
      add(Py_tp_richcompare, reinterpret_cast<void*>(engine_richcompare<T>));
      add(Py_tp_hash, reinterpret_cast<void*>(engine_hash<T>));
    }
    for (const PyType_Slot& slot : parts.extra) add(slot.slot, slot.pfunc);
    add(Py_tp_methods, parts.methods);
    add(Py_tp_getset, parts.getset);
    spec_ = {parts.name, sizeof(EngineObject<T>), 0, kFlags | parts.flags, slots_.data()};
  }
  EngineType(const EngineType&) = delete;
  EngineType& operator=(const EngineType&) = delete;

  PyType_Spec* spec() { return &spec_; }

 private:
  static constexpr unsigned int kFlags =
      Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE;

  void add(int slot, void* pfunc) {
    if (!pfunc) return;
    if (count_ + 1 >= slots_.size()) throw std::length_error("EngineType: too many slots");
    slots_[count_++] = {slot, pfunc};
  }

  std::array<PyType_Slot, 16> slots_{};  // ends with {0, nullptr}, as Python wants
  std::size_t count_ = 0;
  PyType_Spec spec_{};
};

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

// A new object of `type` for the engine object create() makes (the body of
// every tp_new here, after the arguments); C++ errors become Python ones.
template <class Create>
PyObject* wrap_created(PyTypeObject* type, Create create) {
  try {
    return wrap(type, create());
  } catch (...) {
    return raise_error();
  }
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

// tp_new of the types made without arguments (Lock, RLock, Event): T::create().
// They cannot be subclassed, so `type` is the type itself, whose name the
// error gives: "Lock() takes no arguments".
template <class T>
PyObject* new_without_arguments(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  if (PyTuple_GET_SIZE(args) != 0 || (kwargs && PyDict_GET_SIZE(kwargs) != 0)) {
    const char* dot = std::strrchr(type->tp_name, '.');  // tp_name is the spec's dotted name
    return PyErr_Format(PyExc_TypeError, "%s() takes no arguments", dot ? dot + 1 : type->tp_name);
  }
  return wrap_created(type, [] { return T::create(); });
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
  return wrap_created(type, [&] { return SharedBuffer::create(static_cast<std::size_t>(nbytes)); });
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

EngineType<SharedBuffer> SharedBuffer_type({
    .name = "interpool._interpool.SharedBuffer",
    .doc = "SharedBuffer(nbytes)\n--\n\n"
           "nbytes zero-filled bytes that every interpreter of the process shares: passed to a "
           "worker (Executor arguments, shared=, queues, prepare_main, call), it crosses as a "
           "reference, and writes on either side are seen on the other. It has the buffer "
           "protocol: memoryview(buf), buf.cast('i') for typed views, buf[a:b] for a view of "
           "some bytes (no copy). The memory lives while any SharedBuffer or memoryview of it "
           "does, in any interpreter. Synchronise writers with interpool.Lock and friends.",
    .tp_new = SharedBuffer_new,
    .repr = SharedBuffer_repr,
    .methods = SharedBuffer_methods,
    .getset = SharedBuffer_getset,
    .extra = {{Py_tp_iter, reinterpret_cast<void*>(SharedBuffer_iter)},
              {Py_mp_length, reinterpret_cast<void*>(SharedBuffer_length)},
              {Py_mp_subscript, reinterpret_cast<void*>(SharedBuffer_subscript)},
              {Py_mp_ass_subscript, reinterpret_cast<void*>(SharedBuffer_ass_subscript)},
              {Py_bf_getbuffer, reinterpret_cast<void*>(SharedBuffer_getbuffer)}},
});

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

// Made only by shared_from_handle; == and hash() are object's (identity).
EngineType<SharedBufferView, Equality::Base> SharedBufferView_type({
    .name = "interpool._interpool.SharedBufferView",
    .doc = "What a memoryview that crossed interpreters is a view of: some items of a "
           "SharedBuffer, with their format and shape. `.buffer` is the whole SharedBuffer.",
    .repr = SharedBufferView_repr,
    .getset = SharedBufferView_getset,
    .flags = Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .extra = {{Py_bf_getbuffer, reinterpret_cast<void*>(SharedBufferView_getbuffer)}},
});

// ---------------------------------------------------------------------------
// The methods the lock-like types share (Lock, RLock, Semaphore)
// ---------------------------------------------------------------------------

// How acquire() reads its timeout: as threading.Lock and RLock do (-1, the
// default, for none; else seconds >= 0), or as threading.Semaphore does (None,
// the default, for none; else seconds, <= 0 for now).
enum class TimeoutKind { Lock, Semaphore };

// acquire(blocking=True, timeout=...)'s arguments as a deadline, or false with
// an error set.
bool acquire_deadline(PyObject* args, PyObject* kwargs, TimeoutKind kind, Deadline& out) {
  static const char* kwlist[] = {"blocking", "timeout", nullptr};
  int blocking = 1;
  PyObject* timeout = nullptr;  // not given
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|pO:acquire", const_cast<char**>(kwlist),
                                   &blocking, &timeout))
    return false;
  if (kind == TimeoutKind::Semaphore) {
    if (!blocking && timeout && timeout != Py_None) {
      PyErr_SetString(PyExc_ValueError, "can't specify timeout for non-blocking acquire");
      return false;
    }
    out = Deadline::now();
    return !blocking || optional_deadline(timeout, out);
  }
  double seconds = -1;
  if (timeout) {
    seconds = PyFloat_AsDouble(timeout);
    if (seconds == -1.0 && PyErr_Occurred()) return false;
  }
  if (std::isnan(seconds)) {
    PyErr_SetString(PyExc_ValueError, "Invalid value NaN (not a number)");
    return false;
  }
  if (!blocking) {
    if (seconds != -1) {
      PyErr_SetString(PyExc_ValueError, "can't specify a timeout for a non-blocking call");
      return false;
    }
    out = Deadline::now();
  } else if (seconds == -1) {
    out = Deadline::never();
  } else if (seconds < 0) {
    PyErr_SetString(PyExc_ValueError, "timeout value must be a non-negative number");
    return false;
  } else {
    out = Deadline::after(seconds);
  }
  return true;
}

// Takes a T once, waiting (GIL released) until the deadline: True, False if it
// passed, nullptr with the error of an interrupting signal's handler.
template <class T>
using Take = PyObject* (*)(T&, const Deadline&);
// Releases a T once: None, or nullptr with an error set.
template <class T>
using Give = PyObject* (*)(T&);

// The Take of the types with try_acquire() and acquire(deadline, interruptible).
template <class T>
PyObject* take_waiting(T& lock, const Deadline& deadline) {
  if (lock.try_acquire()) Py_RETURN_TRUE;
  if (deadline.passed()) Py_RETURN_FALSE;
  WaitResult r;
  if (!wait_releasing_gil([&] { return lock.acquire(deadline, true); }, r)) return nullptr;
  return PyBool_FromLong(r == WaitResult::Ready);
}

// acquire(blocking=True, timeout=...).
template <class T, TimeoutKind kind, Take<T> take>
PyObject* acquire_method(PyObject* self, PyObject* args, PyObject* kwargs) {
  Deadline deadline;
  if (!acquire_deadline(args, kwargs, kind, deadline)) return nullptr;
  return take(engine<T>(self), deadline);
}

// __enter__(): acquire() with no timeout.
template <class T, Take<T> take>
PyObject* enter_method(PyObject* self, PyObject*) {
  return take(engine<T>(self), Deadline::never());
}

// release() without arguments, and __exit__(*exc_info): one release.
template <class T, Give<T> give>
PyObject* release_method(PyObject* self, PyObject*) {
  return give(engine<T>(self));
}

// ---------------------------------------------------------------------------
// Lock
// ---------------------------------------------------------------------------

PyObject* lock_release(Lock& lock) {
  if (!lock.release()) return PyErr_Format(PyExc_RuntimeError, "release unlocked lock");
  Py_RETURN_NONE;
}

constexpr auto Lock_acquire = acquire_method<Lock, TimeoutKind::Lock, take_waiting<Lock>>;
constexpr auto Lock_enter = enter_method<Lock, take_waiting<Lock>>;
constexpr auto Lock_release = release_method<Lock, lock_release>;

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
    {"__exit__", Lock_release, METH_VARARGS, "release()"},
    {"__reduce__", INTERPOOL_METH(engine_reduce<Lock>), METH_NOARGS,
     "Pickle as a reference to the same lock."},
    {nullptr, nullptr, 0, nullptr}};

EngineType<Lock> Lock_type({
    .name = "interpool._interpool.Lock",
    .doc = "Lock()\n--\n\nthreading.Lock for every interpreter of the process: it crosses to "
           "workers as a reference to the same lock. acquire() waits with the GIL released; any "
           "thread may release it.",
    .tp_new = new_without_arguments<Lock>,
    .repr = Lock_repr,
    .methods = Lock_methods,
});

// ---------------------------------------------------------------------------
// RLock
// ---------------------------------------------------------------------------

// The calling thread in the current interpreter.
Owner current_owner() {
  return Owner{current_interpreter_id(), static_cast<std::uint64_t>(PyThread_get_thread_ident())};
}

PyObject* rlock_take(RLock& lock, const Deadline& deadline) {
  Owner me = current_owner();
  WaitResult r = lock.acquire(me, Deadline::now());
  if (r == WaitResult::Ready) Py_RETURN_TRUE;
  if (deadline.passed()) Py_RETURN_FALSE;
  if (!wait_releasing_gil([&] { return lock.acquire(me, deadline, true); }, r)) return nullptr;
  return PyBool_FromLong(r == WaitResult::Ready);
}

PyObject* rlock_release(RLock& lock) {
  if (!lock.release(current_owner()))
    return PyErr_Format(PyExc_RuntimeError, "cannot release un-acquired lock");
  Py_RETURN_NONE;
}

constexpr auto RLock_acquire = acquire_method<RLock, TimeoutKind::Lock, rlock_take>;
constexpr auto RLock_enter = enter_method<RLock, rlock_take>;
constexpr auto RLock_release = release_method<RLock, rlock_release>;

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
    {"__exit__", RLock_release, METH_VARARGS, "release()"},
    {"__reduce__", INTERPOOL_METH(engine_reduce<RLock>), METH_NOARGS,
     "Pickle as a reference to the same lock."},
    {nullptr, nullptr, 0, nullptr}};

EngineType<RLock> RLock_type({
    .name = "interpool._interpool.RLock",
    .doc = "RLock()\n--\n\nthreading.RLock for every interpreter of the process. The owner is a "
           "thread in an interpreter: the same OS thread entering another interpreter is another "
           "owner.",
    .tp_new = new_without_arguments<RLock>,
    .repr = RLock_repr,
    .methods = RLock_methods,
});

// ---------------------------------------------------------------------------
// Event
// ---------------------------------------------------------------------------

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

EngineType<Event> Event_type({
    .name = "interpool._interpool.Event",
    .doc = "Event()\n--\n\nthreading.Event for every interpreter of the process: a flag that "
           "threads wait for.",
    .tp_new = new_without_arguments<Event>,
    .repr = Event_repr,
    .methods = Event_methods,
});

// ---------------------------------------------------------------------------
// Semaphore and BoundedSemaphore
// ---------------------------------------------------------------------------

PyObject* make_semaphore(PyTypeObject* type, PyObject* args, PyObject* kwargs, bool bounded) {
  static const char* kwlist[] = {"value", nullptr};
  long long value = 1;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, bounded ? "|L:BoundedSemaphore" : "|L:Semaphore",
                                   const_cast<char**>(kwlist), &value))
    return nullptr;
  return wrap_created(type, [&] { return Semaphore::create(value, bounded); });
}

PyObject* Semaphore_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  return make_semaphore(type, args, kwargs, false);
}

PyObject* BoundedSemaphore_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  return make_semaphore(type, args, kwargs, true);
}

// Adds n (>= 1) to the counter: None, or nullptr with ValueError (bounded:
// above the initial value) or OverflowError set.
PyObject* semaphore_release(Semaphore& sem, long long n) {
  if (!sem.release(n))
    return PyErr_Format(sem.bounded() ? PyExc_ValueError : PyExc_OverflowError,
                        sem.bounded() ? "Semaphore released too many times"
                                      : "the semaphore's value would pass 2**63 - 1");
  Py_RETURN_NONE;
}

PyObject* semaphore_release_one(Semaphore& sem) { return semaphore_release(sem, 1); }

constexpr auto Semaphore_acquire =
    acquire_method<Semaphore, TimeoutKind::Semaphore, take_waiting<Semaphore>>;
constexpr auto Semaphore_enter = enter_method<Semaphore, take_waiting<Semaphore>>;
constexpr auto Semaphore_exit = release_method<Semaphore, semaphore_release_one>;

PyObject* Semaphore_release(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"n", nullptr};
  long long n = 1;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|L:release", const_cast<char**>(kwlist), &n))
    return nullptr;
  if (n < 1) return PyErr_Format(PyExc_ValueError, "n must be one or more");
  return semaphore_release(engine<Semaphore>(self), n);
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

EngineType<Semaphore> Semaphore_type({
    .name = "interpool._interpool.Semaphore",
    .doc = "Semaphore(value=1)\n--\n\nthreading.Semaphore for every interpreter of the process.",
    .tp_new = Semaphore_new,
    .repr = Semaphore_repr,
    .methods = Semaphore_methods,
    .flags = Py_TPFLAGS_BASETYPE,
});

// A subclass of Semaphore (add_shared_types gives the base): the rest is inherited.
EngineType<Semaphore, Equality::Base> BoundedSemaphore_type({
    .name = "interpool._interpool.BoundedSemaphore",
    .doc = "BoundedSemaphore(value=1)\n--\n\nthreading.BoundedSemaphore for every interpreter "
           "of the process: releasing above the initial value raises ValueError.",
    .tp_new = BoundedSemaphore_new,
});

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
  return wrap_created(type,
                      [&] { return Barrier::create(static_cast<std::size_t>(parties), seconds); });
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

EngineType<Barrier> Barrier_type({
    .name = "interpool._interpool.Barrier",
    .doc = "Barrier(parties, action=None, timeout=None)\n--\n\nthreading.Barrier for every "
           "interpreter of the process, without the action (it would run in one interpreter "
           "only): timeout is the default of wait().",
    .tp_new = Barrier_new,
    .repr = Barrier_repr,
    .methods = Barrier_methods,
    .getset = Barrier_getset,
});

// ---------------------------------------------------------------------------
// AtomicInt
// ---------------------------------------------------------------------------

PyObject* AtomicInt_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"value", nullptr};
  long long value = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|L:AtomicInt", const_cast<char**>(kwlist),
                                   &value))
    return nullptr;
  return wrap_created(type, [&] { return AtomicInt::create(value); });
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

EngineType<AtomicInt> AtomicInt_type({
    .name = "interpool._interpool.AtomicInt",
    .doc = "AtomicInt(value=0)\n--\n\nA 64-bit signed integer that every interpreter of the "
           "process shares, changed in atomic steps: counters and reductions without a lock.",
    .tp_new = AtomicInt_new,
    .repr = AtomicInt_repr,
    .methods = AtomicInt_methods,
});

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
  auto make = [&](PyType_Spec* spec, PyTypeObject** slot, PyTypeObject* base = nullptr) {
    *slot = reinterpret_cast<PyTypeObject*>(
        PyType_FromModuleAndSpec(module, spec, reinterpret_cast<PyObject*>(base)));
    return *slot && PyModule_AddType(module, *slot) == 0;
  };
  if (!make(SharedBuffer_type.spec(), &t.buffer) ||
      !make(SharedBufferView_type.spec(), &t.buffer_view) || !make(Lock_type.spec(), &t.lock) ||
      !make(RLock_type.spec(), &t.rlock) || !make(Event_type.spec(), &t.event) ||
      !make(Semaphore_type.spec(), &t.semaphore) ||
      !make(BoundedSemaphore_type.spec(), &t.bounded_semaphore, t.semaphore) ||
      !make(Barrier_type.spec(), &t.barrier) || !make(AtomicInt_type.spec(), &t.atomic_int))
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
