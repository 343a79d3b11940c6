// What the shared memory and synchronisation types share: each object holds
// a shared_ptr to an engine object and nothing else (EngineObject), and each
// type is described once (EngineType). shared_buffer.cpp and sync_types.cpp
// define the types; shared.cpp registers them and routes handles.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <array>
#include <cstring>
#include <initializer_list>
#include <interpool/shared_buffer.hpp>
#include <interpool/signal.hpp>
#include <interpool/sync.hpp>
#include <memory>
#include <new>
#include <stdexcept>

#include "python/errors.hpp"
#include "python/shared.hpp"

namespace interpool::python {

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

inline int engine_traverse(PyObject* self, visitproc visit, void* arg) {
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

// A new object of `type` for the engine object create() makes (the body of
// every tp_new here, after the arguments); C++ errors become Python ones.
template <class Create>
PyObject* wrap_created(PyTypeObject* type, Create create) {
  try {
    return wrap(type, create());
  } catch (...) {
    return raise_engine_error();
  }
}

// __reduce__ of every type here: (_interpool._shared_handle, (how, number[, token])):
// see shared.cpp.
PyObject* reduce_to_handle(const std::shared_ptr<Shareable>& object, std::int64_t id);

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

#define INTERPOOL_METH(f) reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f))

// The types (shared_buffer.cpp, sync_types.cpp).
extern EngineType<SharedBuffer> SharedBuffer_type;
extern EngineType<SharedBufferView, Equality::Base> SharedBufferView_type;
extern EngineType<Lock> Lock_type;
extern EngineType<RLock> RLock_type;
extern EngineType<Event> Event_type;
extern EngineType<Semaphore> Semaphore_type;
extern EngineType<Semaphore, Equality::Base> BoundedSemaphore_type;
extern EngineType<Barrier> Barrier_type;
extern EngineType<AtomicInt> AtomicInt_type;

}  // namespace interpool::python
