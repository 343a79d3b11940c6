// What the files of the _interpool extension share: the module state (one per
// interpreter that imports it), the type specs each file defines, and the
// functions one file gives the others.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdint>
#include <interpool/pool.hpp>
#include <interpool/queue.hpp>
#include <memory>

#include "python/shared.hpp"

namespace interpool::python {

struct ModuleState {
  PyTypeObject* queue_type;
  PyTypeObject* pool_type;
  PyTypeObject* task_type;
  PyTypeObject* unbound_type;
  PyTypeObject* chunk_items_type;
  PyObject* unbound;  // UNBOUND: the marker, and the option that asks for it
  PyObject* unbound_error;
  PyObject* unbound_remove;
  PyObject* InterpreterNotFoundError;
  PyObject* queues;  // WeakValueDictionary: id -> this interpreter's Queue object
  PyObject* pools;   // WeakSet of this interpreter's live Pools, shut down at exit
  PyObject* NotShareableError;
  PyObject* InterpreterError;
  PyObject* QueueError;  // the base of the queue exceptions (a RuntimeError)
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

inline ModuleState* state_of(PyObject* module) {
  return static_cast<ModuleState*>(PyModule_GetState(module));
}

inline ModuleState* state_of_type(PyTypeObject* type) {
  return static_cast<ModuleState*>(PyType_GetModuleState(type));
}

// The module state of this extension in the current interpreter, importing it if needed.
ModuleState* current_state();

inline std::int64_t current_interpreter_id() {
  return PyInterpreterState_GetID(PyInterpreterState_Get());
}

// st->queues or st->pools, made on first use: a weakref.WeakValueDictionary or
// WeakSet (workers that never hold a Queue or Pool do not import weakref).
PyObject* weak_container(PyObject*& slot, const char* factory);

// queue.cpp: Queue, the UNBOUND markers, and how engine objects cross.
extern PyType_Spec Queue_spec;
extern PyType_Spec Unbound_spec;
// Queue(id): this interpreter's object for the live queue with that id.
PyObject* queue_by_id(ModuleState* st, PyObject* id_obj);
// A pickled Queue (its __reduce__): queue_by_id if `token` is this process's.
PyObject* queue_from_pickle(ModuleState* st, PyObject* id_obj, unsigned long long token);
int handle_from_object(PyObject* obj, std::shared_ptr<Shareable>* out);
PyObject* object_from_handle(const std::shared_ptr<Shareable>& object);

// pool.cpp: Pool and Task.
extern PyType_Spec Pool_spec;
extern PyType_Spec Task_spec;
bool parse_function_ref(PyObject* module, PyObject* qualname, FunctionRef& out);
// Converts (args tuple, kwargs dict or None) naming each bad argument.
bool convert_call_args(PyObject* args, PyObject* kwargs, Call& call);
// Closes a Pool object, not cancelling its pending tasks; joins its workers.
void close_pool_keeping_tasks(PyObject* pool);
void join_pool(PyObject* pool);

// chunk_items.cpp: ChunkItems, map()'s results handed over item by item.
extern PyType_Spec ChunkItems_spec;

// interpreters.cpp: the functions the PEP 734 face builds on (interp_create, ...).
extern PyMethodDef interpreter_functions[];

}  // namespace interpool::python
