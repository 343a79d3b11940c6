// Pool and Task as Python types: workers running calls, and the pending
// outcome of each call submitted.
#include "core/pool.hpp"

#include <interpool/error.hpp>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/busy_thread.hpp"
#include "core/interpreter.hpp"
#include "core/py_value.hpp"
#include "core/task_outcome.hpp"
#include "core/watchdog.hpp"
#include "python/errors.hpp"
#include "python/module_state.hpp"
#include "python/wait.hpp"

namespace interpool::python {
namespace {

// ---------------------------------------------------------------------------
// Task: the pending result of one Pool.submit
// ---------------------------------------------------------------------------

// Waits with the GIL released until the task is done or, with
// `or_cancelled`, cancelled before it started (its outcome then comes only
// when a worker dequeues it). False with an exception set if interrupted.
bool wait_for(TaskOutcome& task, const Deadline& deadline, bool or_cancelled, WaitResult& r) {
  return wait_releasing_gil([&] { return task.wait(deadline, or_cancelled, true); }, r);
}

struct TaskObject {
  PyObject_HEAD std::shared_ptr<TaskOutcome>* state;
};

// In a child forked while it ran, a task not done by then never will be here:
// false with RuntimeError set rather than a wait for the parent's worker.
bool refuse_wait_after_fork(TaskOutcome& task) {
  if (!forked_while_running() || task.done()) return true;
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
  return PyBool_FromLong((*reinterpret_cast<TaskObject*>(self)->state)->done());
}

PyObject* Task_result(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"timeout", nullptr};
  PyObject* timeout = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:result", const_cast<char**>(kwlist), &timeout))
    return nullptr;
  Deadline deadline;
  if (!parse_deadline(timeout, TimeoutRule::NonNegative, deadline)) return nullptr;
  TaskOutcome& task = **reinterpret_cast<TaskObject*>(self)->state;
  if (!refuse_wait_after_fork(task)) return nullptr;
  WaitResult r;
  if (!wait_for(task, deadline, false, r)) return nullptr;
  if (r == WaitResult::Timeout)
    return PyErr_Format(PyExc_TimeoutError, "the task did not finish in time");
  ModuleState* st = state_of_type(Py_TYPE(self));
  if (task.claimed())
    return PyErr_Format(PyExc_RuntimeError,
                        "this task's outcome was delivered by completions() or take()");
  const Outcome& out = task.outcome();  // immutable once done, until claimed
  if (out.status == Outcome::Status::Ok) return rebuilt_result(out.value);
  return raise_outcome(st, out);
}

PyObject* outcome_payload(ModuleState* st, const Outcome& out, bool& ok);

PyObject* Task_take(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"timeout", nullptr};
  PyObject* timeout = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:take", const_cast<char**>(kwlist), &timeout))
    return nullptr;
  Deadline deadline;
  if (!parse_deadline(timeout, TimeoutRule::NonNegative, deadline)) return nullptr;
  TaskOutcome& task = **reinterpret_cast<TaskObject*>(self)->state;
  if (!refuse_wait_after_fork(task)) return nullptr;
  // A taker, the sink does not get the outcome; while a signal handler runs in
  // this thread (which may wait for the sink's reader: an executor's shutdown)
  // it is not one, and an outcome that comes meanwhile goes to the sink.
  task.begin_take();
  WaitResult r;
  bool waited = wait_releasing_gil([&] { return task.wait(deadline, true, true); }, r,
                                   [&] { task.end_take(false); }, [&] { task.begin_take(); });
  if (!waited) return nullptr;  // interrupted, exception set; the outcome went to completions()
  bool mine = task.end_take(true);
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
  TaskOutcome& task = **reinterpret_cast<TaskObject*>(self)->state;
  return PyBool_FromLong(task.control()->interrupt());
}

PyObject* Task_cancel(PyObject* self, PyObject*) {
  return PyBool_FromLong((*reinterpret_cast<TaskObject*>(self)->state)->cancel());
}

PyObject* Task_running(PyObject* self, PyObject*) {
  TaskOutcome& task = **reinterpret_cast<TaskObject*>(self)->state;
  TaskControl::State state = task.control()->state();
  return PyBool_FromLong(
      (state == TaskControl::State::Running || state == TaskControl::State::Interrupting) &&
      !task.done());
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

// ---------------------------------------------------------------------------
// Pool
// ---------------------------------------------------------------------------

struct PoolObject {
  PyObject_HEAD Pool* pool;
  std::shared_ptr<Completions>* completions;
};
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
        bool ok = false;
        try {
          ok = empty && parse_function_ref(m, q, call.function) &&
               convert_call_args(a ? a : empty, k, call);
        } catch (const NotShareable& e) {
          Py_XDECREF(empty);
          Py_DECREF(seq);
          // Named by initializer: the face tells shared= (the first) from initargs.
          throw e.with_place("initializer " + std::to_string(i + 1) + ", " + e.where(), e.path());
        } catch (...) {
          Py_XDECREF(empty);
          Py_DECREF(seq);
          throw;
        }
        Py_XDECREF(empty);
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
  std::optional<double> time_limit;
  if (!parse_timeout(timeout_obj, TimeoutRule::Positive, time_limit)) return nullptr;
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
    task->state = new std::shared_ptr<TaskOutcome>(std::make_shared<TaskOutcome>());
    PyObject_GC_Track(task);
    std::shared_ptr<TaskOutcome> state = *task->state;
    if (time_limit) state->control()->set_timeout(*time_limit);
    try {
      if (token_obj == Py_None) {
        pool->submit(std::move(call), TaskOutcome::completion(state), state->control());
      } else {
        // The outcome goes to completions() or Task.take(), whichever claims it.
        std::shared_ptr<Completions> sink = *reinterpret_cast<PoolObject*>(self)->completions;
        sink->expect();
        try {
          pool->submit(std::move(call), TaskOutcome::completion(state, sink, token),
                       state->control());
        } catch (...) {
          sink->withdraw();
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

PyObject* Pool_runs_here(PyObject* self, PyObject*) {
  return PyBool_FromLong(reinterpret_cast<PoolObject*>(self)->pool->runs_on_this_thread());
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
    payload = rebuilt_result(out.value);
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
  if (!parse_deadline(timeout, TimeoutRule::NonNegative, deadline)) return nullptr;
  ModuleState* st = state_of_type(Py_TYPE(self));
  std::shared_ptr<Completions> sink = *reinterpret_cast<PoolObject*>(self)->completions;
  std::vector<Completions::Entry> batch;
  Completions::Entry item;
  WaitResult r;
  auto next_unclaimed = [&] {
    NoSpin quiet;
    for (;;) {
      WaitResult got = sink->next(item, deadline, true);
      // Outcomes a Task.take() claimed while this thread slept are passed over
      // without taking the GIL from the thread that took them.
      if (got != WaitResult::Ready || !item.task->claimed()) return got;
    }
  };
  if (!wait_releasing_gil(next_unclaimed, r)) return nullptr;
  if (r == WaitResult::Closed) Py_RETURN_NONE;  // closed and every outcome delivered
  if (r == WaitResult::Ready) {
    // Outcomes a Task.take() already claimed are left out.
    if (item.task->claim()) batch.push_back(std::move(item));
    while (static_cast<Py_ssize_t>(batch.size()) < limit &&
           sink->next(item, Deadline::now()) == WaitResult::Ready)
      if (item.task->claim()) batch.push_back(std::move(item));
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
    {"runs_here", Pool_runs_here, METH_NOARGS,
     "True on one of this pool's workers' threads (a task, or code it runs in another "
     "interpreter)."},
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

}  // namespace

PyType_Spec Task_spec = {"interpool._interpool.Task", sizeof(TaskObject), 0,
                         Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE |
                             Py_TPFLAGS_DISALLOW_INSTANTIATION,
                         Task_slots};

PyType_Spec Pool_spec = {
    "interpool._interpool.Pool", sizeof(PoolObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_MANAGED_WEAKREF,
    Pool_slots};

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

void close_pool_keeping_tasks(PyObject* pool) {
  close_pool(reinterpret_cast<PoolObject*>(pool), false);
}

void join_pool(PyObject* pool) { reinterpret_cast<PoolObject*>(pool)->pool->join(); }

}  // namespace interpool::python
