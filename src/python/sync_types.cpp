// The synchronisation types for every interpreter of the process: Lock, RLock,
// Event, Semaphore, BoundedSemaphore, Barrier and AtomicInt. Waits release the
// GIL and run the signal handlers when a signal interrupts them (engine rule 3).
#include <algorithm>
#include <interpool/sync.hpp>
#include <optional>

#include "python/engine_object.hpp"
#include "python/module_state.hpp"
#include "python/wait.hpp"

namespace interpool::python {
namespace {

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
    return !blocking || parse_deadline(timeout, TimeoutRule::AnyNumber, out);
  }
  std::optional<double> seconds;
  if (!parse_timeout(timeout, TimeoutRule::MinusOne, seconds)) return false;
  if (!blocking) {
    if (seconds) {
      PyErr_SetString(PyExc_ValueError, "can't specify a timeout for a non-blocking call");
      return false;
    }
    out = Deadline::now();
  } else {
    out = seconds ? Deadline::after(*seconds) : Deadline::never();
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

}  // namespace

EngineType<Lock> Lock_type({
    .name = "interpool._interpool.Lock",
    .doc = "Lock()\n--\n\nthreading.Lock for every interpreter of the process: it crosses to "
           "workers as a reference to the same lock. acquire() waits with the GIL released; any "
           "thread may release it.",
    .tp_new = new_without_arguments<Lock>,
    .repr = Lock_repr,
    .methods = Lock_methods,
});

namespace {

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

}  // namespace

EngineType<RLock> RLock_type({
    .name = "interpool._interpool.RLock",
    .doc = "RLock()\n--\n\nthreading.RLock for every interpreter of the process. The owner is a "
           "thread in an interpreter: the same OS thread entering another interpreter is another "
           "owner.",
    .tp_new = new_without_arguments<RLock>,
    .repr = RLock_repr,
    .methods = RLock_methods,
});

namespace {

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
  if (!parse_deadline(timeout, TimeoutRule::AnyNumber, deadline)) return nullptr;
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

}  // namespace

EngineType<Event> Event_type({
    .name = "interpool._interpool.Event",
    .doc = "Event()\n--\n\nthreading.Event for every interpreter of the process: a flag that "
           "threads wait for.",
    .tp_new = new_without_arguments<Event>,
    .repr = Event_repr,
    .methods = Event_methods,
});

namespace {

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

}  // namespace

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

namespace {

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
  std::optional<double> seconds;  // the default of wait(): none, or (<= 0) now
  if (!parse_timeout(timeout, TimeoutRule::AnyNumber, seconds)) return nullptr;
  double default_timeout = seconds ? std::max(*seconds, 0.0) : -1;
  return wrap_created(
      type, [&] { return Barrier::create(static_cast<std::size_t>(parties), default_timeout); });
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
  else if (!parse_deadline(timeout, TimeoutRule::AnyNumber, deadline))
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

}  // namespace

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

namespace {

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
    return raise_engine_error();
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

}  // namespace

EngineType<AtomicInt> AtomicInt_type({
    .name = "interpool._interpool.AtomicInt",
    .doc = "AtomicInt(value=0)\n--\n\nA 64-bit signed integer that every interpreter of the "
           "process shares, changed in atomic steps: counters and reductions without a lock.",
    .tp_new = AtomicInt_new,
    .repr = AtomicInt_repr,
    .methods = AtomicInt_methods,
});

}  // namespace interpool::python
