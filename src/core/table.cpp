#include "core/table.hpp"

#include <algorithm>
#include <atomic>
#include <map>

#include "core/id_table.hpp"

namespace interpool {

namespace {

struct Entry {
  Interpreter interp;
  std::atomic<int> users{0};  // enter() calls between the table lookup and their end
  bool closing = false;       // a close() has begun; guarded by the table's lock
  int owners = 0;             // acquire() minus release(); guarded by the table's lock
};

// The table owns its interpreters; in id order, so that close_all() closes
// them in the order they were created.
using Table =
    IdTable<Entry, std::shared_ptr<Entry>, std::map<std::int64_t, std::shared_ptr<Entry>>>;

Table& table() {
  static auto* t = new Table;  // never destroyed: used until the process ends
  return *t;
}

// A pool worker's interpreter, refused to the calls of this table.
std::string pool_worker(std::int64_t id, const char* what) {
  return "interpreter " + std::to_string(id) + " is a worker of an interpool pool: " + what +
         "; create() makes an interpreter of your own";
}

std::string being_closed(std::int64_t id, const char* what) {
  return "interpreter " + std::to_string(id) + " is being closed (by another call): " + what;
}

// Ends the interpreter of an entry marked closing, outside the table's lock
// (Py_EndInterpreter runs its atexit hooks and waits for its threads, which
// may use the table), then drops the entry. If the close fails the entry
// stays, no longer closing.
void close_entry(std::int64_t id, const std::shared_ptr<Entry>& entry) {
  try {
    entry->interp.close();
  } catch (...) {
    auto locked = table().lock();
    entry->closing = false;
    throw;
  }
  table().erase(id, entry);
}

}  // namespace

std::int64_t InterpreterTable::create() {
  Interpreter interp = Interpreter::create();
  std::int64_t id = interp.id();
  auto entry = std::make_shared<Entry>();
  entry->interp = std::move(interp);
  table().insert(id, std::move(entry));
  return id;
}

InterpreterTable::Entered::~Entered() {
  activation_.reset();
  if (entry_) static_cast<Entry*>(entry_.get())->users.fetch_sub(1);
}

std::unique_ptr<InterpreterTable::Entered> InterpreterTable::enter(std::int64_t id, bool alone) {
  if (id != 0) refuse_if_forked("cannot enter interpreter " + std::to_string(id));
  std::unique_ptr<Entered> out(new Entered);
  std::shared_ptr<Entry> entry;
  {
    auto entries = table().lock();
    auto it = entries->find(id);
    if (it != entries->end()) {
      if (it->second->closing) throw InterpreterError(being_closed(id, "it cannot run code"));
      if (alone && (it->second->users.load() > 0 || it->second->interp.active() > 0))
        throw InterpreterRunning(id);
      entry = it->second;
      entry->users.fetch_add(1);  // under the lock, so close() sees it
    }
  }
  if (entry) {
    out->entry_ = entry;
    out->activation_ = std::make_unique<Activation>(entry->interp);
  } else if (id == 0) {
    out->activation_ = std::make_unique<Activation>(PyInterpreterState_Main());
  } else if (is_pool_worker(id)) {
    throw InterpreterError(pool_worker(id, "it runs that pool's tasks only"));
  } else if (find_state(id)) {
    // Its owner may destroy it at any time, and CPython ends an interpreter
    // with a fatal error if another thread state is still in it.
    throw InterpreterError("interpreter " + std::to_string(id) +
                           " was not created by interpool: interpool runs code only in the "
                           "interpreters it creates (and the main one); use the module that "
                           "created this one");
  } else {
    throw InterpreterNotFound(id);
  }
  return out;
}

void InterpreterTable::close(std::int64_t id) {
  refuse_if_forked("cannot close interpreter " + std::to_string(id));
  std::shared_ptr<Entry> entry;
  {
    auto entries = table().lock();
    auto it = entries->find(id);
    if (it == entries->end()) {
      if (is_pool_worker(id)) throw InterpreterError(pool_worker(id, "the pool closes it"));
      if (find_state(id))
        throw InterpreterError("interpreter " + std::to_string(id) +
                               " was not created by interpool: it cannot be closed here");
      throw InterpreterNotFound(id);
    }
    if (it->second->closing)
      throw InterpreterError(being_closed(id, "it is gone when that call returns"));
    if (it->second->users.load() > 0 || it->second->interp.active() > 0)
      throw InterpreterError("interpreter " + std::to_string(id) +
                             " is running: it cannot be closed now");
    PyThreadState* current = current_thread_state();
    if (current && PyThreadState_GetInterpreter(current) == it->second->interp.state())
      throw InterpreterError("interpreter " + std::to_string(id) + " cannot close itself");
    entry = it->second;
    entry->closing = true;
  }
  close_entry(id, entry);
}

bool InterpreterTable::acquire(std::int64_t id) {
  auto entries = table().lock();
  auto it = entries->find(id);
  if (it == entries->end() || it->second->closing) return false;
  ++it->second->owners;
  return true;
}

bool InterpreterTable::release(std::int64_t id) {
  if (forked_while_running()) return false;  // the parent's interpreters stay as they are
  std::shared_ptr<Entry> entry;
  {
    auto entries = table().lock();
    auto it = entries->find(id);
    if (it == entries->end()) return false;
    Entry& e = *it->second;
    if (e.owners == 0) return false;  // never counted: not to be closed so
    if (--e.owners > 0 || e.closing || e.users.load() > 0 || e.interp.active() > 0) return false;
    PyThreadState* current = current_thread_state();
    if (current && PyThreadState_GetInterpreter(current) == e.interp.state()) return false;
    entry = it->second;
    entry->closing = true;
  }
  close_entry(id, entry);
  return true;
}

bool InterpreterTable::contains(std::int64_t id) { return table().lock()->count(id) != 0; }

bool InterpreterTable::is_closing(std::int64_t id) {
  auto entries = table().lock();
  auto it = entries->find(id);
  return it != entries->end() && it->second->closing;
}

bool InterpreterTable::is_running(std::int64_t id) {
  auto entries = table().lock();
  auto it = entries->find(id);
  return it != entries->end() && !it->second->closing &&
         (it->second->users.load() > 0 || it->second->interp.active() > 0);
}

std::vector<std::int64_t> InterpreterTable::all_ids() {
  std::vector<std::int64_t> ids;
  for (PyInterpreterState* s = PyInterpreterState_Head(); s; s = PyInterpreterState_Next(s))
    ids.push_back(PyInterpreterState_GetID(s));
  std::sort(ids.begin(), ids.end());
  return ids;
}

PyInterpreterState* InterpreterTable::find_state(std::int64_t id) {
  for (PyInterpreterState* s = PyInterpreterState_Head(); s; s = PyInterpreterState_Next(s))
    if (PyInterpreterState_GetID(s) == id) return s;
  return nullptr;
}

void InterpreterTable::close_all() {
  if (forked_while_running()) return;  // the parent's interpreters stay as they are
  std::vector<std::pair<std::int64_t, std::shared_ptr<Entry>>> idle;
  {
    auto entries = table().lock();
    for (auto& [id, entry] : *entries) {
      // Ones being closed elsewhere are left to that close.
      if (!entry->closing && entry->users.load() == 0 && entry->interp.active() == 0) {
        entry->closing = true;
        idle.emplace_back(id, entry);
      }
    }
  }
  for (auto& [id, entry] : idle) {
    try {
      close_entry(id, entry);
    } catch (const Error&) {
    }
  }
}

}  // namespace interpool
