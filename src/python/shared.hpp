// The _interpool extension's shared memory and synchronisation types
// (shared_buffer.cpp, sync_types.cpp, registered by shared.cpp): SharedBuffer,
// Lock, RLock, Event, Semaphore, BoundedSemaphore, Barrier, AtomicInt, and what
// memoryviews cross as. The module state keeps them; handles are routed here.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <interpool/value.hpp>
#include <memory>

namespace interpool::python {

/// One interpreter's types (a part of the module state: plain pointers, zeroed
/// with it).
struct SharedTypes {
  PyTypeObject* buffer;       ///< SharedBuffer
  PyTypeObject* buffer_view;  ///< SharedBufferView: what a memoryview that crossed is over
  PyTypeObject* lock;
  PyTypeObject* rlock;
  PyTypeObject* event;
  PyTypeObject* semaphore;
  PyTypeObject* bounded_semaphore;
  PyTypeObject* barrier;
  PyTypeObject* atomic_int;
};

/// Makes the types of `module` and adds the public ones to it; -1 with an error set.
int add_shared_types(PyObject* module, SharedTypes& types);
int traverse_shared_types(SharedTypes& types, visitproc visit, void* arg);
void clear_shared_types(SharedTypes& types);

/// The engine object behind an object of these types: 1 and *out set; 0 if
/// `obj` is not one of them.
int shared_to_handle(const SharedTypes& types, PyObject* obj, std::shared_ptr<Shareable>* out);
/// A memoryview as the engine object it crosses as: over a SharedBuffer, a
/// view of the same bytes; over anything else, a view of a copy. 1 and *out
/// set, or -1 with an error set.
int memoryview_to_handle(PyObject* view, std::shared_ptr<Shareable>* out);
/// A new object of this interpreter for `object`; nullptr without an error set
/// if `object` is not one of these kinds, nullptr with an error on failure.
PyObject* shared_from_handle(const SharedTypes& types, const std::shared_ptr<Shareable>& object);

/// _interpool._shared_handle(how, number): what these objects pickle to (see
/// their __reduce__). how="capture": the handle travelling beside the pickle;
/// how="id": the live object with that id.
PyObject* shared_handle(PyObject* module, PyObject* args);

/// The SharedTypes of the module `type` belongs to, or nullptr (no error set)
/// if `type` is not a type of this extension. Defined in module.cpp.
const SharedTypes* shared_types_of(PyTypeObject* type);

}  // namespace interpool::python
