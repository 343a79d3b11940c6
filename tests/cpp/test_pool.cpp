#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/pool.hpp"
#include "python_env.hpp"

using namespace interpool;

namespace {

Call call(const char* fn, Tuple args = {}, Dict kwargs = {}) {
  return Call{FunctionRef{"pool_tasks", fn}, Value(std::move(args)), Value(std::move(kwargs))};
}

PoolOptions options(std::size_t workers) {
  PoolOptions o;
  o.workers = workers;
  o.sys_path = testenv::main_sys_path();
  return o;
}

}  // namespace

TEST(Pool, ReturnsResults) {
  Pool pool(options(2));
  EXPECT_EQ(pool.size(), 2u);
  Outcome out = pool.submit(call("add", Tuple{{Value(2), Value(3)}})).get();
  ASSERT_EQ(out.status, Outcome::Status::Ok) << out.error.message;
  EXPECT_EQ(out.value, Value(5));

  Dict kw;
  kw.items.emplace_back(Value("b"), Value(10));
  out = pool.submit(call("add", Tuple{{Value(1)}}, kw)).get();
  EXPECT_EQ(out.value, Value(11));

  out =
      pool.submit(Call{FunctionRef{"pool_tasks", "Thing.twice"}, Tuple{{Value(21)}}, Dict{}}).get();
  EXPECT_EQ(out.value, Value(42));

  out = pool.submit(Call{FunctionRef{"math", "factorial"}, Tuple{{Value(20)}}, Dict{}}).get();
  EXPECT_EQ(out.value, Value(std::int64_t{2432902008176640000}));
}

TEST(Pool, ExceptionsComeBackAsData) {
  Pool pool(options(1));
  Outcome out = pool.submit(call("fail", Tuple{{Value("bad thing")}})).get();
  ASSERT_EQ(out.status, Outcome::Status::Error);
  EXPECT_EQ(out.error.type_module, "builtins");
  EXPECT_EQ(out.error.type_qualname, "ValueError");
  EXPECT_EQ(out.error.message, "bad thing");
  EXPECT_NE(out.error.traceback.find("pool_tasks.py"), std::string::npos) << out.error.traceback;
  EXPECT_FALSE(out.error.pickled.empty());

  out = pool.submit(call("fail_unpicklable")).get();
  ASSERT_EQ(out.status, Outcome::Status::Error);
  EXPECT_EQ(out.error.type_module, "pool_tasks");
  EXPECT_EQ(out.error.type_qualname, "Unpicklable");
  EXPECT_TRUE(out.error.pickled.empty()) << "a lock inside must make pickling fail";

  out = pool.submit(call("unshareable_result")).get();
  ASSERT_EQ(out.status, Outcome::Status::Error);
  EXPECT_EQ(out.error.type_qualname, "NotShareableError");
  EXPECT_NE(out.error.message.find("the result"), std::string::npos) << out.error.message;
  ASSERT_TRUE(out.error.not_shareable) << "where the value was, as data";
  EXPECT_EQ(out.error.not_shareable->where(), "the result");

  out = pool.submit(Call{FunctionRef{"no_such_module_xyz", "f"}, Tuple{}, Dict{}}).get();
  ASSERT_EQ(out.status, Outcome::Status::Error);
  EXPECT_EQ(out.error.type_qualname, "ModuleNotFoundError");

  out = pool.submit(call("no_such_function")).get();
  EXPECT_EQ(out.error.type_qualname, "AttributeError");
}

TEST(Pool, TasksRunInDifferentInterpreters) {
  Pool pool(options(2));
  std::set<std::int64_t> ids;
  std::vector<std::future<Outcome>> futures;
  for (int i = 0; i < 20; ++i) {
    futures.push_back(pool.submit(call("burn", Tuple{{Value(200000)}})));
    futures.push_back(pool.submit(call("interpreter_id")));
  }
  for (auto& f : futures) {
    Outcome o = f.get();
    ASSERT_EQ(o.status, Outcome::Status::Ok) << o.error.message;
  }
  // Every worker's interpreter is a sub-interpreter (id > 0).
  for (int i = 0; i < 10; ++i) {
    Outcome o = pool.submit(call("interpreter_id")).get();
    ids.insert(o.value.get<std::int64_t>());
  }
  for (auto id : ids) EXPECT_GT(id, 0);
}

TEST(Pool, ManyThreadsSubmitAndEveryTaskEndsOnce) {
  Pool pool(options(2));
  constexpr int kThreads = 8, kPerThread = 2000;
  std::atomic<int> completions{0};
  std::atomic<long long> sum{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i)
        pool.submit(call("add", Tuple{{Value(t), Value(i)}}), [&](Outcome o) {
          ++completions;
          if (o.status == Outcome::Status::Ok) sum += o.value.get<std::int64_t>();
        });
    });
  for (auto& t : threads) t.join();
  pool.shutdown();
  EXPECT_EQ(completions.load(), kThreads * kPerThread);
  long long expected = 0;
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kPerThread; ++i) expected += t + i;
  EXPECT_EQ(sum.load(), expected);
}

TEST(Pool, ShutdownCancelsPendingAndRefusesNewTasks) {
  Pool pool(options(1));
  std::atomic<int> ok{0}, cancelled{0}, other{0};
  for (int i = 0; i < 50; ++i)
    pool.submit(call("burn", Tuple{{Value(100000)}}), [&](Outcome o) {
      if (o.status == Outcome::Status::Ok)
        ++ok;
      else if (o.status == Outcome::Status::Cancelled)
        ++cancelled;
      else
        ++other;
    });
  pool.shutdown(/*cancel_pending=*/true);
  EXPECT_EQ(ok + cancelled, 50);
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(cancelled.load(), 0);
  EXPECT_THROW(pool.submit(call("add", Tuple{{Value(1)}})), PoolClosed);
}

TEST(Pool, InitializersRunOncePerWorker) {
  PoolOptions o = options(2);
  o.initializers.push_back(call("init", Tuple{{Value("ready")}}));
  Pool pool(o);
  for (int i = 0; i < 10; ++i) {
    Outcome out = pool.submit(call("get_state")).get();
    EXPECT_EQ(out.value, Value("ready"));
  }
}

TEST(Pool, WhatAnInitializerReturnsIsDropped) {
  // A module cannot cross interpreters: had it been converted, the pool would break.
  PoolOptions o = options(1);
  o.initializers.push_back(Call{{"importlib", "import_module"}, Tuple{{Value("json")}}});
  Pool pool(o);
  Outcome out = pool.submit(call("add", Tuple{{Value(1), Value(2)}})).get();
  ASSERT_EQ(out.status, Outcome::Status::Ok) << out.error.message;
  EXPECT_EQ(out.value, Value(3));
}

TEST(Pool, FailingInitializerBreaksThePool) {
  PoolOptions o = options(2);
  o.initializers.push_back(call("init_fails"));
  Pool pool(o);
  // Tasks submitted before or after the failure end as Broken, or are refused.
  int broken = 0;
  for (int i = 0; i < 5; ++i) {
    try {
      Outcome out = pool.submit(call("add", Tuple{{Value(1)}})).get();
      EXPECT_EQ(out.status, Outcome::Status::Broken);
      EXPECT_EQ(out.error.type_qualname, "RuntimeError");
      ++broken;
    } catch (const PoolBroken& e) {
      EXPECT_EQ(e.cause().type_qualname, "RuntimeError");
      ++broken;
    }
  }
  EXPECT_EQ(broken, 5);
  ASSERT_TRUE(pool.broken());
  EXPECT_EQ(pool.broken()->message, "initializer failed on purpose");
}

TEST(Pool, WorkersSeeTheGivenSysPath) {
  Pool pool(options(1));
  Outcome out = pool.submit(call("path")).get();
  ASSERT_EQ(out.status, Outcome::Status::Ok);
  const auto& items = out.value.get<List>().items;
  ASSERT_FALSE(items.empty());
  EXPECT_EQ(items[0], Value(INTERPOOL_TEST_DATA));
}

TEST(Pool, CreatedAndDestroyedRepeatedly) {
  for (int i = 0; i < 20; ++i) {
    Pool pool(options(2));
    EXPECT_EQ(pool.submit(call("add", Tuple{{Value(i), Value(1)}})).get().value, Value(i + 1));
  }
}

TEST(Pool, CancelledControlSkipsTheTask) {
  Pool pool(options(1));
  // Occupy the only worker so that the next task waits in the queue.
  auto busy = pool.submit(call("burn", Tuple{{Value(2000000)}}));
  auto control = std::make_shared<TaskControl>();
  std::promise<Outcome> p;
  pool.submit(
      call("add", Tuple{{Value(1)}}), [&](Outcome o) { p.set_value(std::move(o)); }, control);
  EXPECT_TRUE(control->cancel());
  EXPECT_FALSE(control->start());
  EXPECT_EQ(p.get_future().get().status, Outcome::Status::Cancelled);
  EXPECT_EQ(busy.get().status, Outcome::Status::Ok);

  auto running = std::make_shared<TaskControl>();
  std::promise<Outcome> q;
  pool.submit(
      call("add", Tuple{{Value(2)}}), [&](Outcome o) { q.set_value(std::move(o)); }, running);
  Outcome out = q.get_future().get();
  EXPECT_EQ(out.value, Value(2));
  EXPECT_EQ(running->state(), TaskControl::State::Ended);
  EXPECT_FALSE(running->cancel()) << "a started task cannot be cancelled";
  EXPECT_FALSE(running->interrupt()) << "an ended task cannot be interrupted";
}

TEST(Pool, MaxTasksPerWorkerReplacesTheInterpreter) {
  PoolOptions o = options(1);
  o.max_tasks_per_worker = 3;
  o.initializers.push_back(call("init", Tuple{{Value("fresh")}}));
  Pool pool(o);
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 9; ++i) {
    Outcome out = pool.submit(call("interpreter_id")).get();
    ASSERT_EQ(out.status, Outcome::Status::Ok) << out.error.message;
    ids.push_back(out.value.get<std::int64_t>());
    // The initializer ran again in every replacement.
    EXPECT_EQ(pool.submit(call("get_state")).get().value, Value("fresh"));
  }
  // Two tasks per loop: a new interpreter every 3 tasks.
  std::set<std::int64_t> distinct(ids.begin(), ids.end());
  EXPECT_GE(distinct.size(), 5u);
  EXPECT_EQ(pool.size(), 1u);
}

TEST(Pool, CloseDoesNotWaitJoinDoes) {
  Pool pool(options(2));
  std::atomic<int> done{0};
  for (int i = 0; i < 6; ++i)
    pool.submit(call("burn", Tuple{{Value(300000)}}), [&](Outcome o) {
      if (o.status == Outcome::Status::Ok) ++done;
    });
  pool.close();
  EXPECT_THROW(pool.submit(call("add", Tuple{{Value(1)}})), PoolClosed);
  pool.join();
  EXPECT_EQ(done.load(), 6) << "accepted tasks still run after close()";
}

TEST(Pool, JoinWaitsForTheWorkersAnotherJoinTook) {
  // An Executor's result thread may be joining a pool when the exit hook joins
  // it too: neither join returns while a worker runs.
  Pool pool(options(1));
  std::atomic<bool> ended{false};
  pool.submit(call("busy", Tuple{{Value(0.5)}}), [&](Outcome) { ended = true; });
  pool.close();
  std::thread first([&] { pool.join(); });
  while (pool.size() != 0) std::this_thread::yield();  // until it has taken the worker
  pool.join();
  EXPECT_TRUE(ended.load()) << "join() returned while another join() was joining the worker";
  first.join();
}

TEST(Pool, SubmitAllAcceptsABatchAtOnce) {
  Pool pool(options(2));
  std::atomic<int> done{0};
  std::atomic<long long> sum{0};
  std::vector<Pool::Job> jobs;
  for (int i = 0; i < 1000; ++i)
    jobs.push_back({call("add", Tuple{{Value(i), Value(1)}}),
                    [&](Outcome o) {
                      sum += o.value.get<std::int64_t>();
                      ++done;
                    },
                    nullptr});
  pool.submit_all(std::move(jobs));
  pool.shutdown();
  EXPECT_EQ(done.load(), 1000);
  EXPECT_EQ(sum.load(), 1000LL * 1001 / 2);
  std::vector<Pool::Job> late;
  late.push_back({call("add", Tuple{{Value(1)}}), [](Outcome) {}, nullptr});
  EXPECT_THROW(pool.submit_all(std::move(late)), PoolClosed);
}

// ---------------------------------------------------------------------------
// Interrupting running tasks
// ---------------------------------------------------------------------------

namespace {

// A task that spins until it is interrupted: ten minutes, not one, since
// valgrind runs one thread at a time and may starve the test's own thread
// for long enough that a shorter spin ends by itself.
constexpr double kUntilInterrupted = 600.0;

std::future<Outcome> submit_controlled(Pool& pool, Call c, std::shared_ptr<TaskControl> control) {
  auto promise = std::make_shared<std::promise<Outcome>>();
  auto future = promise->get_future();
  pool.submit(
      std::move(c), [promise](Outcome out) { promise->set_value(std::move(out)); },
      std::move(control));
  return future;
}

void wait_running(const TaskControl& control) {
  for (int i = 0; i < 6000 && control.state() != TaskControl::State::Running; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(control.state(), TaskControl::State::Running);
}

}  // namespace

TEST(PoolInterrupt, TimeoutStopsARunningTaskAndTheInterpreterServesOn) {
  Pool pool(options(1));
  std::int64_t first = pool.submit(call("interpreter_id")).get().value.get<std::int64_t>();
  auto control = std::make_shared<TaskControl>();
  control->set_timeout(0.2);
  auto start = std::chrono::steady_clock::now();
  Outcome out =
      submit_controlled(pool, call("spin", Tuple{{Value(kUntilInterrupted)}}), control).get();
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(out.status, Outcome::Status::Interrupted) << out.error.message;
  EXPECT_EQ(out.interruption, Interruption::Timeout);
  EXPECT_EQ(control->interruption(), Interruption::Timeout);
  EXPECT_NE(out.error.message.find("time limit of 0.2 s"), std::string::npos) << out.error.message;
  EXPECT_NE(out.error.traceback.find("spin"), std::string::npos) << out.error.traceback;
  EXPECT_LT(took, 30.0);  // interrupted, not run for its 60 s
  EXPECT_EQ(control->state(), TaskControl::State::Ended);
  // The exception unwound the task: the same interpreter keeps serving.
  Outcome next = pool.submit(call("interpreter_id")).get();
  ASSERT_EQ(next.status, Outcome::Status::Ok);
  EXPECT_EQ(next.value.get<std::int64_t>(), first);
  EXPECT_THROW(std::move(out).result(), TaskInterrupted);
}

TEST(PoolInterrupt, InterruptAndInterruptAll) {
  Pool pool(options(2));
  auto a = std::make_shared<TaskControl>();
  auto b = std::make_shared<TaskControl>();
  auto queued = std::make_shared<TaskControl>();
  auto fa = submit_controlled(pool, call("spin", Tuple{{Value(kUntilInterrupted)}}), a);
  auto fb = submit_controlled(pool, call("spin", Tuple{{Value(kUntilInterrupted)}}), b);
  wait_running(*a);
  wait_running(*b);
  auto fq = submit_controlled(pool, call("add", Tuple{{Value(1), Value(2)}}), queued);
  EXPECT_FALSE(queued->interrupt());  // pending: not running
  EXPECT_TRUE(a->interrupt());
  Outcome oa = fa.get();
  ASSERT_EQ(oa.status, Outcome::Status::Interrupted);
  EXPECT_EQ(oa.interruption, Interruption::Stopped);
  // The freed worker runs the queued task; b still spins.
  EXPECT_EQ(fq.get().value, Value(3));
  EXPECT_EQ(pool.interrupt_all(), 1u);
  Outcome ob = fb.get();
  EXPECT_EQ(ob.status, Outcome::Status::Interrupted);
  EXPECT_EQ(pool.interrupt_all(), 0u);
  EXPECT_EQ(pool.submit(call("add", Tuple{{Value(2), Value(2)}})).get().value, Value(4));
}

TEST(PoolInterrupt, SwallowedInterruptionIsStillTheOutcomeAndTheWorkerIsReplaced) {
  Pool pool(options(1));
  std::int64_t first = pool.submit(call("interpreter_id")).get().value.get<std::int64_t>();
  // Code that catches BaseException and returns: the interruption, decided
  // first, is the outcome; the interpreter, where code went on after it, is replaced.
  auto swallow = std::make_shared<TaskControl>();
  swallow->set_timeout(0.2);
  Dict kw;
  kw.items.emplace_back(Value("swallow"), Value(true));
  Outcome out =
      submit_controlled(pool, call("spin", Tuple{{Value(kUntilInterrupted)}}, kw), swallow).get();
  ASSERT_EQ(out.status, Outcome::Status::Interrupted) << out.error.message;
  EXPECT_EQ(out.interruption, Interruption::Timeout);
  Outcome next = pool.submit(call("interpreter_id")).get();
  ASSERT_EQ(next.status, Outcome::Status::Ok);
  EXPECT_NE(next.value.get<std::int64_t>(), first);
}

TEST(Pool, ATaskThatLeavesAThreadRunningFailsWithItsNameAsData) {
  Pool pool(options(1));
  std::int64_t first = pool.submit(call("interpreter_id")).get().value.get<std::int64_t>();
  Outcome out = pool.submit(call("leave_spinning_thread")).get();
  ASSERT_EQ(out.status, Outcome::Status::Error);
  EXPECT_EQ(out.error.type_name(), "RuntimeError");
  EXPECT_EQ(out.error.threads_left, std::vector<std::string>{"spins"});
  EXPECT_EQ(out.error.message, "") << "the faces word it, not the engine";
  // The C++ face's wording.
  EXPECT_THROW(
      {
        try {
          std::move(out).result();
        } catch (const RemoteError& e) {
          EXPECT_NE(e.message().find("1 thread(s) it started still ran (spins)"), std::string::npos)
              << e.message();
          throw;
        }
      },
      RemoteError);
  // The thread was interrupted and the worker replaced.
  Outcome next = pool.submit(call("interpreter_id")).get();
  ASSERT_EQ(next.status, Outcome::Status::Ok);
  EXPECT_NE(next.value.get<std::int64_t>(), first);
}

TEST(PoolInterrupt, TrueMeansTheOutcomeIsTheInterruption) {
  // interrupt() racing the end of short tasks: whichever comes first decides.
  // True and then a result was the bug: the task ended before the exception
  // reached its code, and its result went out.
  Pool pool(options(2));
  ASSERT_EQ(pool.submit(call("add", Tuple{{Value(0), Value(0)}})).get().status,
            Outcome::Status::Ok);
  int decided = 0;
  std::vector<std::string> true_then_not_interrupted;
  std::uint32_t seed = 15;
  for (int i = 0; i < 200; ++i) {
    auto control = std::make_shared<TaskControl>();
    auto future = submit_controlled(pool, call("spin", Tuple{{Value(0.005)}}), control);
    while (control->state() == TaskControl::State::Pending) std::this_thread::yield();
    seed = seed * 1664525u + 1013904223u;  // 0 to 6 ms after it started
    auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(seed % 6000);
    while (std::chrono::steady_clock::now() < until) {
    }
    bool interrupted = control->interrupt();
    Outcome out = future.get();
    if (interrupted) {
      ++decided;
      EXPECT_EQ(control->interruption(), Interruption::Stopped);
      if (out.status != Outcome::Status::Interrupted)
        true_then_not_interrupted.push_back(std::to_string(i) + ": status " +
                                            std::to_string(static_cast<int>(out.status)));
    } else {
      EXPECT_EQ(out.status, Outcome::Status::Ok) << out.error.message;
    }
  }
  EXPECT_TRUE(true_then_not_interrupted.empty())
      << true_then_not_interrupted.size() << " of " << decided << ", first "
      << true_then_not_interrupted.front();
  EXPECT_GT(decided, 0) << "no interrupt() came while a task ran: the race was not run";
}

TEST(PoolInterrupt, FinishedTaskIsNotInterruptedLater) {
  Pool pool(options(1));
  // Warm up (the module import), so that the timed task is quick even under valgrind.
  ASSERT_EQ(pool.submit(call("add", Tuple{{Value(0), Value(0)}})).get().status,
            Outcome::Status::Ok);
  auto control = std::make_shared<TaskControl>();
  control->set_timeout(1.0);
  Outcome out = submit_controlled(pool, call("add", Tuple{{Value(1), Value(2)}}), control).get();
  ASSERT_EQ(out.status, Outcome::Status::Ok) << out.error.message;
  // Past the time limit: a stale deadline must not hit what the worker runs next.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  // The next tasks (same worker) are not hit by a stale interruption.
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(pool.submit(call("add", Tuple{{Value(i), Value(1)}})).get().value, Value(i + 1));
}

TEST(WorkerThreadName, PrefixThenIndexAsConcurrentFuturesNamesThreads) {
  EXPECT_EQ(worker_thread_name("io", 0), "io_0");
  EXPECT_EQ(worker_thread_name("", 3), "interpool_3");
  EXPECT_EQ(worker_thread_name("image-resizer-pool", 12), "image-resizer-pool_12");
}

TEST(WorkerThreadName, CutToTheOsLimitKeepingTheIndex) {
  EXPECT_EQ(os_thread_name("interpool-9_1"), "interpool-9_1");
  EXPECT_EQ(os_thread_name("exactly-15-b_10"), "exactly-15-b_10");
  EXPECT_EQ(os_thread_name("image-resizer-pool_1"), "image-resizer_1");
  EXPECT_EQ(os_thread_name("image-resizer-pool_12"), "image-resize_12");
  // Cut between UTF-8 characters: 6 two-byte characters and "_0" fit, 7 do not.
  EXPECT_EQ(os_thread_name("\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9_0"),
            "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9_0");
  // No index to keep, or one that alone does not fit: the first 15 bytes.
  EXPECT_EQ(os_thread_name("a-name-without-an-index"), "a-name-without-");
  EXPECT_EQ(os_thread_name("p_12345678901234567"), "p_1234567890123");
  EXPECT_EQ(os_thread_name("image-resizer-pool_1", 63), "image-resizer-pool_1");
}

TEST(Pool, ReplacementWorkerKeepsItsSlotsThreadName) {
  PoolOptions o = options(1);
  o.thread_name_prefix = "renewed";
  o.max_tasks_per_worker = 1;
  Pool pool(o);
  std::set<std::int64_t> interpreters;
  for (int i = 0; i < 3; ++i) {
    Outcome out = pool.submit(call("thread_os_name")).get();
    ASSERT_EQ(out.status, Outcome::Status::Ok) << out.error.message;
    EXPECT_EQ(out.value.as<std::string>(), "renewed_0");
    interpreters.insert(pool.submit(call("interpreter_id")).get().value.get<std::int64_t>());
  }
  EXPECT_EQ(interpreters.size(), 3u);
}
