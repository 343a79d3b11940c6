// Shared memory and synchronisation as Python types (SharedBuffer,
// SharedBufferView, Lock, RLock, Event, Semaphore, BoundedSemaphore, Barrier and
// AtomicInt): their registration in the module, their handles, their pickles.
//
// Each object of these types holds a shared_ptr to an engine object and
// nothing else: another interpreter that receives it makes its own object for
// the same engine object (engine rule 1), and the engine object lives while
// any of them, or any memoryview of them, does. Waits release the GIL and run
// the signal handlers when a signal interrupts them (engine rule 3).
#include "python/shared.hpp"

#include <cstring>
#include <interpool/shared_buffer.hpp>
#include <interpool/sync.hpp>
#include <string>

#include "core/fork.hpp"
#include "core/py_value.hpp"
#include "core/registry.hpp"
#include "python/engine_object.hpp"

namespace interpool::python {

// __reduce__ of every type here: (_interpool._shared_handle, (how, number[, token])).
// Inside interpool's own transfers the handle travels beside the pickle and
// keeps the object alive; a plain pickle.dumps names the object by id and the
// process (process_token), and loads while the object is alive somewhere in
// that process.
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
    return raise_engine_error();
  }
  if (index >= 0) return Py_BuildValue("(N(sL))", rebuild, "capture", (long long)index);
  return Py_BuildValue("(N(sLK))", rebuild, "id", (long long)id,
                       (unsigned long long)process_token());
}

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
  unsigned long long token = 0;
  if (!PyArg_ParseTuple(args, "sL|K:_shared_handle", &how, &number, &token)) return nullptr;
  std::shared_ptr<Shareable> object;
  if (std::strcmp(how, "capture") == 0) {
    object = number >= 0 ? captured_handle(static_cast<std::size_t>(number)) : nullptr;
    if (!object)
      return PyErr_Format(PyExc_RuntimeError,
                          "this pickle refers to an interpool object that travelled beside it "
                          "between interpreters; only interpool can load it");
  } else if (std::strcmp(how, "id") == 0) {
    if (token != process_token())
      return PyErr_Format(PyExc_LookupError,
                          "this pickle names interpool object %lld of another process: a "
                          "SharedBuffer, lock or AtomicInt is shared by the interpreters of one "
                          "process only (between processes use multiprocessing.shared_memory "
                          "and multiprocessing's locks)",
                          number);
    object = registry::find(number);
    if (!object)
      return PyErr_Format(PyExc_LookupError,
                          "no interpool object has id %lld in this process (it was freed): a "
                          "pickled SharedBuffer, lock or AtomicInt names a live object of the "
                          "process that pickled it",
                          number);
  } else {
    return PyErr_Format(PyExc_ValueError, "_shared_handle: unknown kind %R",
                        PyTuple_GET_ITEM(args, 0));
  }
  return to_python(Value(Handle{std::move(object)}));
}

}  // namespace interpool::python
