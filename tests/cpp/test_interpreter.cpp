#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

#include "core/interpreter.hpp"
#include "core/py_value.hpp"
#include "core/worker.hpp"
#include "python_env.hpp"

using namespace interpool;

namespace {

std::int64_t current_interpreter_id() {
  return PyInterpreterState_GetID(PyThreadState_GetInterpreter(PyThreadState_Get()));
}

long run_int(const char* code, const char* name) {
  PyObject* main = PyImport_AddModule("__main__");
  PyObject* globals = PyModule_GetDict(main);
  PyObject* r = PyRun_String(code, Py_file_input, globals, globals);
  if (!r) {
    PyErr_Print();
    return -1;
  }
  Py_DECREF(r);
  PyObject* v = PyDict_GetItemString(globals, name);
  return v ? PyLong_AsLong(v) : -1;
}

}  // namespace

TEST(Interpreter, CreateFromAThreadWithoutPythonAndCloseIt) {
  Interpreter interp = Interpreter::create();
  ASSERT_TRUE(interp);
  EXPECT_GT(interp.id(), 0);
  EXPECT_EQ(current_thread_state(), nullptr) << "the caller's state must be as before";
  {
    Activation inside(interp);
    EXPECT_EQ(current_interpreter_id(), interp.id());
    EXPECT_EQ(run_int("x = 6 * 7", "x"), 42);
  }
  EXPECT_EQ(current_thread_state(), nullptr);
  interp.close();
  EXPECT_FALSE(interp);
}

TEST(Interpreter, CreateFromInsideTheMainInterpreterRestoresIt) {
  Activation main(testenv::main_interpreter());
  PyThreadState* before = PyThreadState_Get();
  Interpreter interp = Interpreter::create();
  EXPECT_EQ(PyThreadState_Get(), before);
  {
    Activation inside(interp);
    EXPECT_EQ(current_interpreter_id(), interp.id());
    EXPECT_EQ(interp.active(), 1);
    EXPECT_THROW(interp.close(), InterpreterError) << "must not close while active";
  }
  EXPECT_EQ(PyThreadState_Get(), before);
  EXPECT_EQ(current_interpreter_id(), 0);
  interp.close();
  EXPECT_EQ(PyThreadState_Get(), before);
}

TEST(Interpreter, OwnGilAndIsolatedConfig) {
  Interpreter interp = Interpreter::create();
  {
    Activation inside(interp);
    // Single-phase-init extension modules are refused; fork is not allowed.
    EXPECT_EQ(
        run_int("import os\ntry:\n    os.fork()\n    ok = 1\nexcept RuntimeError:\n    ok = 0\n",
                "ok"),
        0);
  }
  interp.close();
}

TEST(Interpreter, EnteredFromManyThreadsEachWithItsOwnThreadState) {
  Interpreter interp = Interpreter::create();
  {
    Activation inside(interp);
    run_int("counter = 0", "counter");
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        Activation inside(interp);
        run_int("counter += 1", "counter");
      }
    });
  for (auto& t : threads) t.join();
  {
    Activation inside(interp);
    EXPECT_EQ(run_int("pass", "counter"), 400);
  }
  interp.close();
}

TEST(Interpreter, HundredCreateDestroyCycles) {
  for (int i = 0; i < 100; ++i) {
    Interpreter interp = Interpreter::create();
    {
      Activation inside(interp);
      ASSERT_EQ(run_int("import json\nv = len(json.dumps([1, 2, 3]))", "v"), 9);
    }
    interp.close();
  }
}

// The first interpreter to import datetime's C module ends while another that
// imported it lives on: on 3.13 that freed the types' shared parts under the
// other one, which crashed as it ended (the main interpreter here has not
// imported datetime).
TEST(Interpreter, FirstToImportDatetimeEndsBeforeAnother) {
  Interpreter first = Interpreter::create();
  Interpreter second = Interpreter::create();
  const char* code =
      "import datetime\n"
      "d = (datetime.datetime(2024, 12, 6) - datetime.datetime(2024, 11, 30)).days\n";
  for (Interpreter* interp : {&first, &second}) {
    Activation inside(*interp);
    ASSERT_EQ(run_int(code, "d"), 6);
  }
  first.close();
  {
    Activation inside(second);
    EXPECT_EQ(run_int(code, "d"), 6);
  }
  second.close();
  EXPECT_FALSE(second);
}

TEST(Worker, OwnsItsInterpreterOnItsThread) {
  std::int64_t seen = -1;
  std::thread::id body_thread;
  {
    Worker w([&](Worker&) {
      seen = current_interpreter_id();
      body_thread = std::this_thread::get_id();
    });
    w.wait_ready();
    EXPECT_GT(w.interpreter_id(), 0);
    w.join();
    EXPECT_EQ(seen, w.interpreter_id());
  }
  EXPECT_NE(body_thread, std::this_thread::get_id());
}

TEST(Worker, HundredWorkerLifecycles) {
  std::set<std::int64_t> ids;
  for (int i = 0; i < 100; ++i) {
    Worker w([](Worker&) { run_int("import math\nv = math.factorial(5)", "v"); });
    w.wait_ready();
    ids.insert(w.interpreter_id());
  }
  EXPECT_EQ(ids.size(), 100u);
}

TEST(Worker, WaitReadyReleasesTheCallersGil) {
  // Creating a worker's interpreter needs the main GIL briefly; a caller that
  // holds it while waiting must not deadlock.
  Activation main(testenv::main_interpreter());
  Worker w([](Worker&) {});
  w.wait_ready();
  w.join();
  SUCCEED();
}
