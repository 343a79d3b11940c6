// interpool::Runtime: starting an embedded Python, attaching to a running one,
// finalizing. Each test starts Python its own way, so each needs a process of
// its own: ctest gives every test one (gtest_discover_tests); run by hand, the
// tests after the first are skipped.
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <interpool/interpool.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace interpool;

namespace {

class CppRuntime : public ::testing::Test {
 protected:
  void SetUp() override {
    static bool used = false;
    if (used) GTEST_SKIP() << "needs a process of its own (ctest runs each test alone)";
    used = true;
  }
};

// A symlink to the default home in a fresh temporary folder: a home that is
// valid but recognisable in sys.prefix.
std::string home_link(const char* name) {
  std::string dir = (std::filesystem::temp_directory_path() / "interpool-home-XXXXXX").string();
  if (!mkdtemp(dir.data())) throw std::runtime_error("mkdtemp failed");
  std::filesystem::path link = std::filesystem::path(dir) / name;
  std::filesystem::create_directory_symlink(Runtime::default_home(), link);
  return link.string();
}

RuntimeOptions with_tests() { return RuntimeOptions{.module_paths = {INTERPOOL_TEST_DATA}}; }

std::string worker_prefix() {
  Pool pool{{.workers = 1}};
  return pool.submit("pool_tasks", "prefix").get().as<std::string>();
}

}  // namespace

TEST_F(CppRuntime, StartsAndFinalizesPython) {
  ASSERT_FALSE(Runtime::python_running());
  {
    Runtime runtime;
    EXPECT_TRUE(runtime.owns_python());
    EXPECT_TRUE(Runtime::python_running());
    EXPECT_EQ(Runtime::python_version().rfind(PY_VERSION, 0), 0u) << Runtime::python_version();
    // The GIL is free: another thread can take it.
    std::thread([] {
      PyGILState_STATE s = PyGILState_Ensure();
      EXPECT_EQ(PyRun_SimpleString("import math"), 0);
      PyGILState_Release(s);
    }).join();
    Pool pool{{.workers = 2}};
    EXPECT_EQ(pool.submit("math", "factorial", 20).get().as<long long>(), 2432902008176640000LL);
  }
  EXPECT_FALSE(Runtime::python_running());
}

TEST_F(CppRuntime, ModulePathsReachEveryWorker) {
  setenv("PYTHONPATH", "/interpool/from/env", 1);
  Runtime runtime({.module_paths = {INTERPOOL_TEST_DATA, "/interpool/second"}});
  Pool pool{{.workers = 2}};  // no sys_path: workers start from the configured path
  for (int i = 0; i < 4; ++i) {
    auto path = pool.submit("pool_tasks", "path").get().as<std::vector<std::string>>();
    ASSERT_GE(path.size(), 3u);
    EXPECT_EQ(path[0], INTERPOOL_TEST_DATA);
    EXPECT_EQ(path[1], "/interpool/second");
    EXPECT_EQ(path[2], "/interpool/from/env");  // $PYTHONPATH comes after
  }
}

TEST_F(CppRuntime, HomeOptionComesFirst) {
  std::string link = home_link("from-option");
  setenv("PYTHONHOME", "/interpool/not/this/one", 1);
  RuntimeOptions options = with_tests();
  options.home = link;
  Runtime runtime(options);
  EXPECT_EQ(worker_prefix(), link);
}

TEST_F(CppRuntime, HomeFromPythonHome) {
  std::string link = home_link("from-env");
  setenv("PYTHONHOME", link.c_str(), 1);
  Runtime runtime(with_tests());
  EXPECT_EQ(worker_prefix(), link);
}

TEST_F(CppRuntime, HomeDefaultsToTheBuildPython) {
  unsetenv("PYTHONHOME");
  Runtime runtime(with_tests());
  EXPECT_EQ(std::filesystem::canonical(worker_prefix()),
            std::filesystem::canonical(Runtime::default_home()));
}

TEST_F(CppRuntime, ABadHomeThrows) {
  try {
    Runtime runtime({.home = "/interpool/no/such/home"});
    FAIL() << "expected InterpreterError";
  } catch (const InterpreterError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("cannot start Python (initialization): ", 0), 0u)
        << e.what();
  }
  EXPECT_FALSE(Runtime::python_running());
}

TEST_F(CppRuntime, AttachesToAPythonTheHostStarted) {
  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  config.install_signal_handlers = 0;
  PyConfig_SetBytesString(&config, &config.home, Runtime::default_home().c_str());
  ASSERT_FALSE(PyStatus_Exception(Py_InitializeFromConfig(&config)));
  PyConfig_Clear(&config);
  PyThreadState* host = PyEval_SaveThread();
  {
    Runtime runtime;
    EXPECT_FALSE(runtime.owns_python());
    Pool pool{{.workers = 2}};
    EXPECT_EQ(pool.submit("math", "factorial", 5).get().as<int>(), 120);
  }
  EXPECT_TRUE(Runtime::python_running());  // not finalized: the host owns it
  PyEval_RestoreThread(host);
  EXPECT_EQ(Py_FinalizeEx(), 0);
}

TEST_F(CppRuntime, AttachesWhileAnotherRuntimeOwnsPython) {
  Runtime owner;
  {
    Runtime second;
    EXPECT_FALSE(second.owns_python());
  }
  EXPECT_TRUE(Runtime::python_running());
  Pool pool{{.workers = 1}};
  EXPECT_EQ(pool.submit("math", "factorial", 5).get().as<int>(), 120);
}

TEST_F(CppRuntime, DestroyedBeforeItsPoolsShutsThemDown) {
  auto runtime = std::make_unique<Runtime>(with_tests());
  auto pool = std::make_unique<Pool>(PoolOptions{.workers = 2});
  std::vector<std::future<Value>> running;
  for (int i = 0; i < 6; ++i) running.push_back(pool->submit("pool_tasks", "burn", 200000));
  runtime.reset();  // joins the pool's workers, then finalizes
  EXPECT_FALSE(Runtime::python_running());
  for (auto& f : running) EXPECT_TRUE(f.get().is(Kind::Int));  // accepted tasks ran to the end
  EXPECT_THROW(pool->submit("math", "factorial", 3), PoolClosed);
  pool.reset();  // safe after Python is gone
}

TEST_F(CppRuntime, ACompletionThatThrowsIsReportedOnStderr) {
  Runtime runtime;
  Pool pool{{.workers = 1}};
  testing::internal::CaptureStderr();
  pool.submit(Call{{"builtins", "abs"}, Tuple{{Value(-1)}}, Dict{}},
              [](Outcome) { throw std::runtime_error("from the completion"); });
  pool.submit(Call{{"builtins", "abs"}, Tuple{{Value(-1)}}, Dict{}}, [](Outcome) { throw 7; });
  EXPECT_EQ(pool.submit("builtins", "abs", -2).get(), Value(2));  // the worker serves on
  pool.shutdown();
  std::string said = testing::internal::GetCapturedStderr();
  EXPECT_NE(said.find("a task's completion threw an exception, ignored: from the completion"),
            std::string::npos)
      << said;
  EXPECT_NE(said.find("a task's completion threw a non-standard exception, ignored"),
            std::string::npos)
      << said;
}

TEST_F(CppRuntime, AThreadATaskLeftWaitingForeverHoldsNeitherThePoolNorTheEnd) {
  // The task fails; its worker is replaced without waiting for the thread (it
  // never ends), the pool's shutdown does not wait for it, and neither does
  // finalization, which abandons it as it would a daemon thread.
  auto runtime = std::make_unique<Runtime>(with_tests());
  {
    Pool pool{{.workers = 1}};
    try {
      pool.submit("pool_tasks", "leave_blocked_thread").get();
      FAIL() << "a task that leaves a thread running fails";
    } catch (const RemoteError& e) {
      EXPECT_EQ(e.type_name(), "RuntimeError");
      EXPECT_NE(e.message().find("waits-forever"), std::string::npos) << e.message();
    }
    EXPECT_EQ(pool.submit("pool_tasks", "add", 2, 3).get().as<int>(), 5);
  }  // joins the pool
  runtime.reset();
  EXPECT_FALSE(Runtime::python_running());
}

TEST_F(CppRuntime, PoolWithoutPythonIsRefused) {
  try {
    Pool pool{{.workers = 1}};
    FAIL() << "expected InterpreterError";
  } catch (const InterpreterError& e) {
    EXPECT_STREQ(e.what(),
                 "cannot start a Pool: Python is not running (create an interpool::Runtime first)");
  }
}

TEST_F(CppRuntime, DestroyedOnAnotherThreadLeavesPythonRunning) {
  std::unique_ptr<Runtime> runtime;
  std::thread([&] { runtime = std::make_unique<Runtime>(); }).join();
  EXPECT_TRUE(runtime->owns_python());
  testing::internal::CaptureStderr();
  runtime.reset();
  EXPECT_NE(testing::internal::GetCapturedStderr().find("Python is left running"),
            std::string::npos);
  EXPECT_TRUE(Runtime::python_running());
}

TEST_F(CppRuntime, ThePythonPackageUsesTheSameEngine) {
  Runtime runtime({.module_paths = {INTERPOOL_STAGED_PYTHON, INTERPOOL_TEST_DATA}});
  Pool pool{{.workers = 2}};
  auto [files, extension] = pool.submit("pool_tasks", "engine_copies")
                                .get()
                                .as<std::tuple<std::vector<std::string>, std::string>>();
  EXPECT_EQ(extension.rfind(INTERPOOL_STAGED_PYTHON, 0), 0u) << extension;
  Dl_info mine{};
  ASSERT_NE(dladdr(reinterpret_cast<void*>(&usable_cpus), &mine), 0);
  ASSERT_EQ(files.size(), 1u) << "the engine is loaded twice";
  EXPECT_EQ(std::filesystem::canonical(files[0]), std::filesystem::canonical(mine.dli_fname));
}

TEST_F(CppRuntime, QueuesCrossBetweenCppAndPython) {
  // The package is importable: the Runtime loads its extension, and each worker
  // imports it when the first queue arrives there (no initializer needed).
  Runtime runtime({.module_paths = {INTERPOOL_STAGED_PYTHON, INTERPOOL_TEST_DATA}});
  Pool pool{{.workers = 2}};
  std::shared_ptr<Queue> queue = Queue::create();
  pool.submit("pool_tasks", "put_squares", queue, 10).get();
  for (int i = 0; i < 10; ++i) {
    QueueItem item;
    ASSERT_EQ(queue->get(item, Deadline::after(10)), WaitResult::Ready);
    EXPECT_EQ(item.value.as<int>(), i * i);
  }
  std::future<Value> taken = pool.submit("pool_tasks", "take", queue);  // waits in Python
  QueueItem item{Value(std::vector<std::string>{"from", "C++"})};
  ASSERT_EQ(queue->put(item), WaitResult::Ready);
  EXPECT_EQ(taken.get().as<std::vector<std::string>>(), (std::vector<std::string>{"from", "C++"}));
  // A queue comes back as the same C++ object.
  EXPECT_EQ(pool.submit("pool_tasks", "echo", queue).get().as<std::shared_ptr<Queue>>(), queue);
}

TEST_F(CppRuntime, SharedBufferWrittenByWorkersIsReadThroughASpan) {
  Runtime runtime({.module_paths = {INTERPOOL_STAGED_PYTHON, INTERPOOL_TEST_DATA}});
  Pool pool{{.workers = 2}};
  std::shared_ptr<SharedBuffer> buffer = SharedBuffer::create(100 * sizeof(std::int64_t));
  // Two workers write their halves of the same bytes; nothing is copied.
  auto a = pool.submit("pool_tasks", "fill_squares", buffer, 0, 50);
  auto b = pool.submit("pool_tasks", "fill_squares", buffer, 50, 50);
  EXPECT_EQ(a.get().as<int>() + b.get().as<int>(), 100);
  std::span<std::int64_t> items = buffer->as<std::int64_t>();
  ASSERT_EQ(items.size(), 100u);
  for (std::int64_t i = 0; i < 100; ++i) EXPECT_EQ(items[i], i * i);
  // It comes back as the same C++ object.
  EXPECT_EQ(pool.submit("pool_tasks", "echo", buffer).get().as<std::shared_ptr<SharedBuffer>>(),
            buffer);
}
