// The typed layer of interpool::Pool, as a C++ program uses it: submit(module,
// function, args...) -> std::future<Value>, map, errors from get().
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>
#include <interpool/pool.hpp>
#include <interpool/queue.hpp>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/pool.hpp"
#include "python_env.hpp"

using namespace interpool;

namespace {

// Workers find tests/cpp/data (pool_tasks.py) through the main interpreter's sys.path.
PoolOptions with_tests(std::size_t workers) {
  return PoolOptions{.workers = workers, .sys_path = testenv::main_sys_path()};
}

// The name the OS shows for the thread of the worker that runs a task.
std::string worker_thread_os_name(Pool& pool) {
  std::int64_t tid = pool.submit("threading", "get_native_id").get().get<std::int64_t>();
  std::ifstream comm("/proc/self/task/" + std::to_string(tid) + "/comm");
  std::string name;
  std::getline(comm, name);
  return name;
}

}  // namespace

TEST(CppPool, SubmitGivesAFutureOfTheResult) {
  Pool pool{{.workers = 2}};
  EXPECT_EQ(pool.size(), 2u);
  std::future<Value> f = pool.submit("math", "factorial", 20);
  EXPECT_EQ(f.get(), Value(std::int64_t{2432902008176640000}));
  EXPECT_EQ(pool.submit("operator", "add", std::string("ab"), "cd").get(), Value("abcd"));
  EXPECT_EQ(pool.submit("builtins", "len", "four").get(), Value(4));
}

TEST(CppPool, KeywordArgumentsAndQualifiedNames) {
  Pool pool(with_tests(1));
  EXPECT_EQ(pool.submit("pool_tasks", "add", 1, Kwargs{{"b", 10}}).get(), Value(11));
  EXPECT_EQ(pool.submit("pool_tasks", "add", Kwargs{{"a", 2}, {"b", 3}}).get(), Value(5));
  EXPECT_EQ(pool.submit("pool_tasks", "Thing.twice", 21).get(), Value(42));
  // A Value argument crosses as it is.
  EXPECT_EQ(pool.submit("builtins", "len", Value(Tuple{{Value(1), Value(2)}})).get(), Value(2));
}

TEST(CppPool, AnObjectInTwoPlacesStaysOneThroughCpp) {
  Pool pool(with_tests(1));
  // Small first: without sharing, 60 levels would be 2**60 copies.
  Value small = pool.submit("pool_tasks", "doubling", 1).get();
  EXPECT_EQ((small.as<std::vector<std::vector<int>>>()), (std::vector<std::vector<int>>{{0}, {0}}));
  ASSERT_EQ(pool.submit("pool_tasks", "shared_levels", small).get(), Value(1));

  Value big = pool.submit("pool_tasks", "doubling", 60).get();
  EXPECT_TRUE(big.is(Kind::List));
  EXPECT_EQ(pool.submit("pool_tasks", "shared_levels", big).get(), Value(60));
}

TEST(CppPool, MapKeepsTheOrderOfTheItems) {
  Pool pool{{.workers = 2}};
  std::vector<int> items;
  for (int i = -100; i < 100; ++i) items.push_back(i);
  std::vector<Value> out = pool.map("builtins", "abs", items);
  ASSERT_EQ(out.size(), items.size());
  for (std::size_t i = 0; i < items.size(); ++i) EXPECT_EQ(out[i], Value(std::abs(items[i])));

  std::vector<std::future<Value>> futures = pool.map_async("builtins", "str", items);
  ASSERT_EQ(futures.size(), items.size());
  EXPECT_EQ(futures[0].get(), Value("-100"));
  EXPECT_EQ(futures[199].get(), Value("99"));

  EXPECT_TRUE(pool.map("builtins", "abs", std::vector<int>{}).empty());
}

TEST(CppPool, ManyThreadsSubmitAtOnce) {
  Pool pool(with_tests(2));
  constexpr int kThreads = 8, kPerThread = 300;
  std::atomic<int> right{0}, wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::future<Value>> futures;
      for (int i = 0; i < kPerThread; ++i)
        futures.push_back(pool.submit("pool_tasks", "add", t * 100000 + i, 1));
      for (int i = 0; i < kPerThread; ++i) {
        Value v = futures[static_cast<std::size_t>(i)].get();
        (v == Value(t * 100000 + i + 1) ? right : wrong)++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(right.load(), kThreads * kPerThread);
  EXPECT_EQ(wrong.load(), 0);
}

TEST(CppPool, ManyThreadsMapAtOnce) {
  Pool pool{{.workers = 2}};
  constexpr int kThreads = 6, kItems = 200;
  std::atomic<long long> total{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      std::vector<int> items(kItems);
      for (int i = 0; i < kItems; ++i) items[static_cast<std::size_t>(i)] = i;
      for (const Value& v : pool.map("builtins", "abs", items)) total += v.get<std::int64_t>();
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(total.load(), kThreads * (kItems * (kItems - 1) / 2));
}

TEST(CppPool, PythonExceptionsThrowRemoteErrorFromGet) {
  Pool pool(with_tests(1));
  std::future<Value> f = pool.submit("pool_tasks", "fail", "bad thing");
  try {
    f.get();
    FAIL() << "expected RemoteError";
  } catch (const RemoteError& e) {
    EXPECT_STREQ(e.what(), "ValueError: bad thing");
    EXPECT_EQ(e.info().type_qualname, "ValueError");
    EXPECT_EQ(e.info().message, "bad thing");
    EXPECT_NE(e.info().traceback.find("pool_tasks.py"), std::string::npos) << e.info().traceback;
  }
  EXPECT_THROW(pool.submit("no_such_module_xyz", "f").get(), RemoteError);
  EXPECT_THROW(pool.map("builtins", "int", std::vector<std::string>{"1", "x", "3"}), RemoteError);
}

TEST(CppPool, ValuesTooDeepOrEmptyHandlesFailTheirTaskNotTheProcess) {
  // A List nested a million levels overflowed the worker's stack (the process
  // died), and an empty Handle crashed it: each is now the task's error. Past
  // the limit is enough here (a million levels also cost the test's own
  // thread a deep recursion to destroy).
  Pool pool{{.workers = 1}};
  Value deep = List{};
  for (int i = 0; i < 5000; ++i) {
    List outer;
    outer.items.push_back(std::move(deep));
    deep = Value(std::move(outer));
  }
  try {
    pool.submit("builtins", "len", std::move(deep)).get();
    FAIL() << "expected RemoteError";
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.info().type_qualname, "ValueError");
    EXPECT_NE(e.info().message.find("nested more than 2100 levels deep"), std::string::npos)
        << e.info().message;
  }
  try {
    pool.submit("builtins", "id", std::shared_ptr<Queue>()).get();
    FAIL() << "expected RemoteError";
  } catch (const RemoteError& e) {
    EXPECT_NE(e.info().message.find("an empty engine object handle"), std::string::npos)
        << e.info().message;
  }
  EXPECT_EQ(pool.submit("builtins", "len", "four").get(), Value(4));  // the worker serves on
}

TEST(CppPool, ACompletionThatThrowsLosesNoOtherTask) {
  // The exception left the worker's thread: the worker was gone, and the
  // tasks queued for it never ran (their futures waited for ever). Now it
  // goes to the face's reporter (the C++ face's prints it: CppRuntime tests).
  static std::string reported;
  set_completion_error_reporter([](std::exception_ptr e) noexcept {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      reported += x.what();
    }
  });
  Pool pool{{.workers = 1}};
  pool.submit(Call{{"builtins", "abs"}, Tuple{{Value(-1)}}, Dict{}},
              [](Outcome) { throw std::runtime_error("from the completion"); });
  std::vector<std::future<Value>> after;
  for (int i = 0; i < 5; ++i) after.push_back(pool.submit("builtins", "abs", -i));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(after[i].get(), Value(i));
  pool.shutdown();
  set_completion_error_reporter(nullptr);
  EXPECT_EQ(reported, "from the completion");
}

TEST(CppPool, APoolReleasedByItsOwnCompletionEndsWithoutAbort) {
  // The last owner of a pool let go in one of its tasks' completions: the
  // destructor, on that worker's thread, joined that very thread
  // (std::terminate: "Resource deadlock avoided").
  std::promise<void> let_go, ended;
  std::shared_future<void> go = let_go.get_future().share();
  std::weak_ptr<Pool> watch;
  {
    auto pool = std::make_shared<Pool>(PoolOptions{.workers = 2});
    watch = pool;
    pool->submit(Call{{"builtins", "abs"}, Tuple{{Value(-1)}}, Dict{}},
                 [keep = pool, go, &ended](Outcome) mutable {
                   go.wait();     // until the test holds no reference
                   keep.reset();  // the last owner: ~Pool runs here, on the pool's worker
                   ended.set_value();
                 });
  }
  let_go.set_value();
  ended.get_future().get();
  EXPECT_TRUE(watch.expired());
  // A thread of the pool's own joins its workers; shutdown_all waits for it.
  EXPECT_EQ(Pool::shutdown_all(), 0u);
  Pool again{{.workers = 1}};
  EXPECT_EQ(again.submit("builtins", "len", "ok").get(), Value(2));
}

TEST(CppPool, APoolReleasedByItsOwnCompletionWhileShutdownAllJoinsIt) {
  // shutdown_all had taken the workers out of the pool to join them: the
  // destructor, on one of them, did not know it was there and waited for
  // shutdown_all, which waited for it.
  std::promise<void> started, ended;
  std::shared_future<void> go = started.get_future().share();
  {
    auto pool = std::make_shared<Pool>(PoolOptions{.workers = 1});
    pool->submit(Call{{"builtins", "abs"}, Tuple{{Value(-1)}}, Dict{}},
                 [keep = pool, go, &ended](Outcome) mutable {
                   go.wait();
                   while (keep->size() != 0) std::this_thread::yield();  // being joined
                   keep.reset();  // the last owner, on the worker shutdown_all joins
                   ended.set_value();
                 });
  }
  std::thread closer([] { Pool::shutdown_all(); });
  started.set_value();
  ended.get_future().get();
  closer.join();
}

TEST(CppPool, MapOverAStdMapGivesEachItemAsATuple) {
  // Its items are std::pair<const K, V>: map() did not compile.
  Pool pool{{.workers = 1}};
  std::map<std::string, int> counts{{"a", 1}, {"b", 2}};
  EXPECT_EQ(pool.map("builtins", "repr", counts),
            (std::vector<Value>{Value("('a', 1)"), Value("('b', 2)")}));
}

TEST(CppPool, AbsurdWorkerCountIsRefusedClearly) {
  try {
    Pool pool{{.workers = std::numeric_limits<std::size_t>::max()}};
    FAIL() << "expected InterpreterError";
  } catch (const InterpreterError& e) {
    EXPECT_NE(std::string(e.what()).find("a pool starts at most 16384 workers"), std::string::npos)
        << e.what();
  }
}

TEST(CppPool, RefusedImportThrowsIncompatibleModule) {
  // readline is single-phase init: CPython refuses it in an own-GIL interpreter.
  Pool pool(with_tests(1));
  for (const char* fn : {"import_reraised", "no_reraise"}) {
    try {
      if (std::string(fn) == "no_reraise")
        pool.submit("importlib", "import_module", "readline").get();
      else
        pool.submit("pool_tasks", fn, "readline").get();
      FAIL() << "expected IncompatibleModule";
    } catch (const IncompatibleModule& e) {
      EXPECT_EQ(e.extension(), "readline");
      EXPECT_EQ(e.package(), "readline");
      EXPECT_EQ(e.type_name(), "ImportError");  // still the exception's own type
      std::string what = e.what();
      EXPECT_NE(what.find("cannot import 'readline' in a worker interpreter"), std::string::npos)
          << what;
      EXPECT_EQ(what.find("check your install"), std::string::npos) << what;
    }
  }
  // Other ImportErrors stay plain RemoteErrors.
  try {
    pool.submit("importlib", "import_module", "no_such_module_xyz").get();
    FAIL() << "expected RemoteError";
  } catch (const IncompatibleModule&) {
    FAIL() << "a missing module is no refusal";
  } catch (const RemoteError& e) {
    EXPECT_TRUE(e.info().refused_module.empty());
  }
}

TEST(CppPool, RemoteErrorHasTypeMessageAndTraceback) {
  Pool pool(with_tests(1));
  try {
    pool.submit("pool_tasks", "fail", "bad thing").get();
    FAIL() << "expected RemoteError";
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.type_name(), "ValueError");
    EXPECT_EQ(e.message(), "bad thing");
    EXPECT_EQ(e.traceback().rfind("Traceback (most recent call last):", 0), 0u) << e.traceback();
    EXPECT_NE(e.traceback().find("raise ValueError(message)"), std::string::npos);
    EXPECT_TRUE(e.traceback().ends_with("ValueError: bad thing\n")) << e.traceback();
  }
  // A type from a module keeps its module; RemoteError is a std::exception.
  try {
    pool.submit("json", "loads", "{").get();
    FAIL() << "expected RemoteError";
  } catch (const std::exception& e) {
    auto* remote = dynamic_cast<const RemoteError*>(&e);
    ASSERT_NE(remote, nullptr);
    EXPECT_EQ(remote->type_name(), "json.decoder.JSONDecodeError");
    EXPECT_EQ(remote->info().type_module, "json.decoder");
    EXPECT_EQ(std::string(e.what()).rfind("json.decoder.JSONDecodeError: Expecting", 0), 0u)
        << e.what();
  }
  // Errors in the arguments' way in come back the same way.
  try {
    pool.submit("math", "factorial", -1).get();
    FAIL() << "expected RemoteError";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "ValueError: factorial() not defined for negative values");
  }
}

TEST(CppPool, ClosedPoolRefusesAndCancelledTasksThrow) {
  Pool pool(with_tests(1));
  std::vector<std::future<Value>> futures;
  for (int i = 0; i < 20; ++i) futures.push_back(pool.submit("pool_tasks", "burn", 200000));
  pool.shutdown(/*cancel_pending=*/true);
  int done = 0, cancelled = 0;
  for (auto& f : futures) {
    try {
      f.get();
      ++done;
    } catch (const TaskCancelled&) {
      ++cancelled;
    }
  }
  EXPECT_EQ(done + cancelled, 20);
  EXPECT_GT(cancelled, 0);
  EXPECT_THROW(pool.submit("math", "factorial", 3), PoolClosed);
  EXPECT_THROW(pool.map("math", "factorial", std::vector<int>{1, 2}), PoolClosed);
}

TEST(CppPool, BrokenPoolThrowsPoolBroken) {
  PoolOptions o = with_tests(1);
  o.initializers.push_back(Call{FunctionRef{"pool_tasks", "init_fails"}});
  Pool pool(std::move(o));
  try {
    pool.submit("math", "factorial", 3).get();  // accepted before the break, or refused
    FAIL() << "expected PoolBroken";
  } catch (const PoolBroken& e) {
    EXPECT_EQ(e.cause().type_qualname, "RuntimeError");
  }
}

TEST(CppPool, DestructorRunsAcceptedTasksAndJoins) {
  std::vector<std::future<Value>> futures;
  {
    Pool pool{{.workers = 2}};
    for (int i = 0; i < 50; ++i) futures.push_back(pool.submit("math", "factorial", i % 20));
  }
  for (int i = 0; i < 50; ++i)
    EXPECT_TRUE(futures[static_cast<std::size_t>(i)].get().is(Kind::Int));
}

TEST(CppPool, ShutdownAllShutsDownLivePools) {
  Pool a{{.workers = 1}};
  Pool b{{.workers = 1}};
  std::future<Value> f = a.submit("math", "factorial", 10);
  EXPECT_GE(Pool::shutdown_all(), 2u);
  EXPECT_EQ(f.get(), Value(3628800));  // accepted before: still runs
  EXPECT_THROW(a.submit("math", "factorial", 3), PoolClosed);
  EXPECT_THROW(b.submit("math", "factorial", 3), PoolClosed);
}

TEST(CppPool, ShutdownAllRacesDestructors) {
  // Pools destroyed on other threads while shutdown_all() runs: no crash, no hang.
  for (int round = 0; round < 5; ++round) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([] {
        Pool pool{{.workers = 1}};
        try {
          pool.submit("math", "factorial", 5).get();
        } catch (const PoolClosed&) {
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    Pool::shutdown_all();
    for (auto& th : threads) th.join();
  }
}

TEST(CppPool, WorkerThreadsAreNamedWithThePrefix) {
  Pool plugins{{.workers = 1, .thread_name_prefix = "plugins"}};
  EXPECT_EQ(worker_thread_os_name(plugins), "plugins_0");
  Pool unnamed{{.workers = 1}};
  EXPECT_EQ(worker_thread_os_name(unnamed), "interpool_0");
  // Linux shows 15 bytes: the prefix is cut, the worker's number kept.
  Pool wordy{{.workers = 2, .thread_name_prefix = "image-resizer-pool"}};
  for (int i = 0; i < 4; ++i) {
    std::string name = worker_thread_os_name(wordy);
    EXPECT_TRUE(name == "image-resizer_0" || name == "image-resizer_1") << name;
  }
}
