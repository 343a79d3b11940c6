#include "core/table.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>

namespace interpool {

namespace {

struct Entry {
  Interpreter interp;
  std::atomic<int> users{0};  // enter() calls between the table lookup and their end
};

struct Table {
  std::mutex mutex;
  std::map<std::int64_t, std::shared_ptr<Entry>> entries;
};

Table& table() {
  static auto* t = new Table;  // never destroyed: used until the process ends
  return *t;
}

}  // namespace

std::int64_t InterpreterTable::create() {
  Interpreter interp = Interpreter::create();
  std::int64_t id = interp.id();
  auto entry = std::make_shared<Entry>();
  entry->interp = std::move(interp);
  std::lock_guard lock(table().mutex);
  table().entries.emplace(id, std::move(entry));
  return id;
}

InterpreterTable::Entered::~Entered() {
  activation_.reset();
  if (entry_) static_cast<Entry*>(entry_.get())->users.fetch_sub(1);
}

std::unique_ptr<InterpreterTable::Entered> InterpreterTable::enter(std::int64_t id) {
  std::unique_ptr<Entered> out(new Entered);
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard lock(table().mutex);
    auto it = table().entries.find(id);
    if (it != table().entries.end()) {
      entry = it->second;
      entry->users.fetch_add(1);  // under the lock, so close() sees it
    }
  }
  if (entry) {
    out->entry_ = entry;
    out->activation_ = std::make_unique<Activation>(entry->interp);
  } else if (id == 0) {
    out->activation_ = std::make_unique<Activation>(PyInterpreterState_Main());
  } else {
    throw InterpreterNotFound(id);
  }
  return out;
}

void InterpreterTable::close(std::int64_t id) {
  Table& t = table();
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard lock(t.mutex);
    auto it = t.entries.find(id);
    if (it == t.entries.end()) {
      if (find_state(id))
        throw InterpreterError("interpreter " + std::to_string(id) +
                               " was not created by interpool: it cannot be closed here");
      throw InterpreterNotFound(id);
    }
    if (it->second->users.load() > 0 || it->second->interp.active() > 0)
      throw InterpreterError("interpreter " + std::to_string(id) +
                             " is running: it cannot be closed now");
    PyThreadState* current = current_thread_state();
    if (current && PyThreadState_GetInterpreter(current) == it->second->interp.state())
      throw InterpreterError("interpreter " + std::to_string(id) + " cannot close itself");
    entry = std::move(it->second);
    t.entries.erase(it);
  }
  entry->interp.close();  // outside the lock: it runs the interpreter's atexit hooks
}

bool InterpreterTable::contains(std::int64_t id) {
  std::lock_guard lock(table().mutex);
  return table().entries.count(id) != 0;
}

bool InterpreterTable::is_running(std::int64_t id) {
  std::lock_guard lock(table().mutex);
  auto it = table().entries.find(id);
  return it != table().entries.end() &&
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
  std::vector<std::shared_ptr<Entry>> idle;
  {
    std::lock_guard lock(table().mutex);
    for (auto it = table().entries.begin(); it != table().entries.end();) {
      if (it->second->users.load() == 0 && it->second->interp.active() == 0) {
        idle.push_back(std::move(it->second));
        it = table().entries.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& e : idle) {
    try {
      e->interp.close();
    } catch (const Error&) {
    }
  }
}

}  // namespace interpool
