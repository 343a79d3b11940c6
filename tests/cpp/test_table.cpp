#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <interpool/queue.hpp>
#include <string>
#include <thread>

#include "core/table.hpp"
#include "python_env.hpp"

using namespace interpool;
using namespace std::chrono_literals;

namespace {

bool run(const std::string& code) {
  PyObject* main = PyImport_AddModule("__main__");
  PyObject* globals = PyModule_GetDict(main);
  PyObject* r = PyRun_String(code.c_str(), Py_file_input, globals, globals);
  if (!r) {
    PyErr_Print();
    return false;
  }
  Py_DECREF(r);
  return true;
}

// What fn throws: "NotFound: ..." for InterpreterNotFound, "Error: ..." for
// other InterpreterErrors, "" if it does not throw.
std::string thrown_by(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const InterpreterNotFound& e) {
    return std::string("NotFound: ") + e.what();
  } catch (const InterpreterError& e) {
    return std::string("Error: ") + e.what();
  }
  return "";
}

bool eventually(const std::function<bool()>& condition) {
  auto end = std::chrono::steady_clock::now() + 30s;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

}  // namespace

TEST(Table, CreateEnterClose) {
  std::int64_t id = InterpreterTable::create();
  EXPECT_TRUE(InterpreterTable::contains(id));
  EXPECT_FALSE(InterpreterTable::is_running(id));
  {
    auto inside = InterpreterTable::enter(id);
    EXPECT_TRUE(run("x = 6 * 7"));
    EXPECT_TRUE(InterpreterTable::is_running(id));
    EXPECT_NE(thrown_by([&] { InterpreterTable::close(id); }).find("is running"),
              std::string::npos);
  }
  InterpreterTable::close(id);
  EXPECT_FALSE(InterpreterTable::contains(id));
  EXPECT_EQ(thrown_by([&] { InterpreterTable::close(id); }).rfind("NotFound: ", 0), 0u);
  EXPECT_EQ(thrown_by([&] { InterpreterTable::enter(id); }).rfind("NotFound: ", 0), 0u);
}

TEST(Table, AnInterpreterBeingClosedStaysAndSaysSo) {
  std::int64_t id = InterpreterTable::create();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  // The closing thread starts a thread in the interpreter that blocks on the
  // pipe, so that its close waits for it (Py_EndInterpreter joins threads).
  std::thread closer([&] {
    {
      auto inside = InterpreterTable::enter(id);
      ASSERT_TRUE(
          run("import os, threading\n"
              "t = threading.Thread(target=os.read, args=(" +
              std::to_string(fds[0]) + ", 1))\nt.start()\n"));
    }
    InterpreterTable::close(id);
  });
  ASSERT_TRUE(eventually([&] { return InterpreterTable::is_closing(id); }));
  EXPECT_TRUE(InterpreterTable::contains(id)) << "in the table until the close has ended";
  EXPECT_FALSE(InterpreterTable::is_running(id));
  std::string again = thrown_by([&] { InterpreterTable::close(id); });
  EXPECT_EQ(again.rfind("Error: interpreter " + std::to_string(id) + " is being closed", 0), 0u)
      << again;
  std::string entry = thrown_by([&] { InterpreterTable::enter(id); });
  EXPECT_EQ(entry.rfind("Error: interpreter " + std::to_string(id) + " is being closed", 0), 0u)
      << entry;
  EXPECT_TRUE(InterpreterTable::is_closing(id));
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  closer.join();
  close(fds[0]);
  close(fds[1]);
  EXPECT_FALSE(InterpreterTable::contains(id));
  EXPECT_FALSE(InterpreterTable::is_closing(id));
  EXPECT_EQ(thrown_by([&] { InterpreterTable::close(id); }).rfind("NotFound: ", 0), 0u);
}

TEST(Table, InterpretersMadeElsewhereAreNotEntered) {
  Interpreter other = Interpreter::create();  // not through the table
  std::int64_t id = other.id();
  EXPECT_FALSE(InterpreterTable::contains(id));
  EXPECT_NE(InterpreterTable::find_state(id), nullptr);
  std::string entry = thrown_by([&] { InterpreterTable::enter(id); });
  EXPECT_EQ(
      entry.rfind("Error: interpreter " + std::to_string(id) + " was not created by interpool", 0),
      0u)
      << entry;
  std::string closing = thrown_by([&] { InterpreterTable::close(id); });
  EXPECT_EQ(closing.rfind("Error: ", 0), 0u) << closing;
  EXPECT_EQ(other.active(), 0) << "not entered";
  other.close();
  EXPECT_EQ(thrown_by([&] { InterpreterTable::enter(id); }).rfind("NotFound: ", 0), 0u);
}

TEST(Table, EnterTheMainInterpreter) {
  auto inside = InterpreterTable::enter(0);
  EXPECT_EQ(PyInterpreterState_GetID(PyInterpreterState_Get()), 0);
}

TEST(Table, CloseAppliesTheUnboundPolicies) {
  std::int64_t id = InterpreterTable::create();
  auto q = Queue::create();
  QueueItem removed{Value(1), id, Unbound::Remove, false};
  QueueItem kept{Value(2), id, Unbound::Keep, false};
  q->put(removed);
  q->put(kept);
  InterpreterTable::close(id);
  ASSERT_EQ(q->size(), 1u);
  QueueItem out;
  q->get(out);
  EXPECT_EQ(out.value, Value(2));
}

TEST(Table, TheLastOwnerToGoClosesTheInterpreter) {
  std::int64_t id = InterpreterTable::create();
  EXPECT_FALSE(InterpreterTable::release(id)) << "never owned: a release closes nothing";
  EXPECT_TRUE(InterpreterTable::contains(id));
  ASSERT_TRUE(InterpreterTable::acquire(id));
  ASSERT_TRUE(InterpreterTable::acquire(id));
  EXPECT_FALSE(InterpreterTable::release(id));
  EXPECT_TRUE(InterpreterTable::contains(id)) << "one owner left";
  EXPECT_TRUE(InterpreterTable::release(id));
  EXPECT_FALSE(InterpreterTable::contains(id));
  EXPECT_FALSE(InterpreterTable::acquire(id)) << "gone: nothing to own";
  EXPECT_FALSE(InterpreterTable::release(id));
  EXPECT_FALSE(InterpreterTable::acquire(0)) << "the main interpreter is not the table's";
}

TEST(Table, TheLastOwnerLeavesAnInterpreterThatRunsCodeOpen) {
  std::int64_t id = InterpreterTable::create();
  ASSERT_TRUE(InterpreterTable::acquire(id));
  {
    auto inside = InterpreterTable::enter(id);
    std::thread other([&] { EXPECT_FALSE(InterpreterTable::release(id)); });
    other.join();
  }
  EXPECT_TRUE(InterpreterTable::contains(id)) << "left open: close() ends it";
  InterpreterTable::close(id);
  EXPECT_FALSE(InterpreterTable::contains(id));
}

TEST(Table, EnteringAloneIsRefusedWhileCodeRuns) {
  std::int64_t id = InterpreterTable::create();
  {
    auto alone = InterpreterTable::enter(id, true);
    EXPECT_TRUE(run("x = 1"));
  }
  {
    auto inside = InterpreterTable::enter(id);
    std::string refused;
    std::thread other([&] { refused = thrown_by([&] { InterpreterTable::enter(id, true); }); });
    other.join();
    EXPECT_EQ(refused, "Error: interpreter " + std::to_string(id) + " is running code");
  }
  InterpreterTable::close(id);
}
