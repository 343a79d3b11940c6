// TaskOutcome and Completions: each outcome of a submitted task reaches
// exactly one reader (a thread waiting in take, or the consumer of the
// stream), whatever the order of completion, takes, give-ups and cancels.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <latch>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "core/task_outcome.hpp"

using namespace interpool;

namespace {

struct Submitted {
  std::shared_ptr<TaskOutcome> task = std::make_shared<TaskOutcome>();
  Completion done;
};

// A task with a token, as a face submits it: counted by the sink first.
Submitted submit(const std::shared_ptr<Completions>& sink, long long token) {
  Submitted s;
  sink->expect();
  s.done = TaskOutcome::completion(s.task, sink, token);
  return s;
}

// What a worker does with a task it dequeues.
void run(Submitted& s, int value) {
  if (!s.task->control()->start())
    s.done(Outcome::cancelled());
  else
    s.done(Outcome::ok(Value(value)));
}

}  // namespace

TEST(TaskOutcome, WithoutATokenEveryReaderSeesTheOutcome) {
  auto task = std::make_shared<TaskOutcome>();
  Completion done = TaskOutcome::completion(task);
  EXPECT_FALSE(task->done());
  EXPECT_EQ(task->wait(Deadline::now(), false, false), WaitResult::Timeout);
  std::thread worker([&] { done(Outcome::ok(Value(42))); });
  EXPECT_EQ(task->wait(Deadline::never(), false, false), WaitResult::Ready);
  worker.join();
  EXPECT_TRUE(task->done());
  EXPECT_EQ(task->outcome().status, Outcome::Status::Ok);
  EXPECT_EQ(task->outcome().value, Value(42)) << "read again: still there";
  EXPECT_FALSE(task->claimed());
}

TEST(TaskOutcome, AnOutcomeNoTakerWaitsForIsPosted) {
  auto sink = std::make_shared<Completions>();
  Submitted s = submit(sink, 7);
  run(s, 1);
  Completions::Entry entry;
  ASSERT_EQ(sink->next(entry, Deadline::now()), WaitResult::Ready);
  EXPECT_EQ(entry.token, 7);
  EXPECT_EQ(entry.task, s.task);
  EXPECT_TRUE(entry.task->claim());
  EXPECT_FALSE(entry.task->claim()) << "claimed twice";
  EXPECT_EQ(entry.task->take_outcome().status, Outcome::Status::Ok);
  sink->finish();
  EXPECT_EQ(sink->next(entry, Deadline::now()), WaitResult::Closed);
}

TEST(TaskOutcome, ATakerWaitingWhenTheOutcomeComesGetsItAndNothingIsPosted) {
  auto sink = std::make_shared<Completions>();
  Submitted s = submit(sink, 1);
  s.task->begin_take();
  std::thread worker([&] { run(s, 5); });
  EXPECT_EQ(s.task->wait(Deadline::never(), true, false), WaitResult::Ready);
  worker.join();
  EXPECT_TRUE(s.task->end_take(true));
  EXPECT_EQ(s.task->take_outcome().status, Outcome::Status::Ok);
  EXPECT_FALSE(s.task->claim()) << "the sink's consumer must not get it too";
  sink->finish();  // the taken outcome counts as resolved: the stream ends empty
  Completions::Entry entry;
  EXPECT_EQ(sink->next(entry, Deadline::now()), WaitResult::Closed);
}

TEST(TaskOutcome, ATakerThatGivesUpPassesTheOutcomeToTheSink) {
  auto sink = std::make_shared<Completions>();
  Submitted s = submit(sink, 3);
  s.task->begin_take();
  run(s, 5);  // a taker waits: not posted
  Completions::Entry entry;
  EXPECT_EQ(sink->next(entry, Deadline::now()), WaitResult::Timeout);
  EXPECT_FALSE(s.task->end_take(false));  // interrupted: gives up
  ASSERT_EQ(sink->next(entry, Deadline::now()), WaitResult::Ready);
  EXPECT_EQ(entry.token, 3);
  EXPECT_TRUE(entry.task->claim());
}

TEST(TaskOutcome, ATakerThatGivesUpLeavesTheOutcomeToTheOtherTakers) {
  auto sink = std::make_shared<Completions>();
  Submitted s = submit(sink, 3);
  s.task->begin_take();
  s.task->begin_take();
  run(s, 5);
  EXPECT_FALSE(s.task->end_take(false));
  Completions::Entry entry;
  EXPECT_EQ(sink->next(entry, Deadline::now()), WaitResult::Timeout) << "posted too early";
  EXPECT_TRUE(s.task->end_take(true));
  sink->finish();
  EXPECT_EQ(sink->next(entry, Deadline::now()), WaitResult::Closed);
}

TEST(TaskOutcome, CancelWakesATakerAndTheOutcomeComesWhenAWorkerDequeuesIt) {
  auto sink = std::make_shared<Completions>();
  Submitted s = submit(sink, 9);
  std::atomic<bool> taken{true};
  s.task->begin_take();
  std::thread taker([&] {
    EXPECT_EQ(s.task->wait(Deadline::never(), true, false), WaitResult::Ready);
    taken = s.task->end_take(true);
  });
  EXPECT_TRUE(s.task->cancel());
  taker.join();
  EXPECT_FALSE(taken) << "a cancelled task has no outcome yet";
  EXPECT_FALSE(s.task->cancel()) << "cancelled twice";
  run(s, 0);  // the worker dequeues it: Cancelled, posted (no taker waits now)
  Completions::Entry entry;
  ASSERT_EQ(sink->next(entry, Deadline::now()), WaitResult::Ready);
  ASSERT_TRUE(entry.task->claim());
  EXPECT_EQ(entry.task->take_outcome().status, Outcome::Status::Cancelled);
}

TEST(Completions, TheStreamEndsOnlyOnceEveryExpectedOutcomeIsResolved) {
  auto sink = std::make_shared<Completions>();
  Submitted a = submit(sink, 1);
  sink->expect();  // a submission that will fail
  sink->finish();
  Completions::Entry entry;
  EXPECT_EQ(sink->next(entry, Deadline::now()), WaitResult::Timeout);
  sink->withdraw();
  EXPECT_EQ(sink->next(entry, Deadline::now()), WaitResult::Timeout);
  run(a, 1);
  EXPECT_EQ(sink->next(entry, Deadline::now()), WaitResult::Ready);
  EXPECT_EQ(sink->next(entry, Deadline::now()), WaitResult::Closed);
}

// Workers complete tasks while takers wait for them (some time out, some give
// up as an interrupted wait does), a thread cancels some, and the consumer
// drains the stream: each outcome is delivered exactly once, and the stream
// ends once all are.
TEST(TaskOutcome, EveryOutcomeIsDeliveredExactlyOnceUnderRaces) {
  constexpr int kTasks = 3000;
  constexpr int kWorkers = 2;
  constexpr int kTakers = 3;
  auto sink = std::make_shared<Completions>();
  std::vector<Submitted> tasks;
  tasks.reserve(kTasks);
  for (int i = 0; i < kTasks; ++i) tasks.push_back(submit(sink, i));
  // Some cancelled before any worker runs (besides those the canceller below races for).
  for (int i = 0; i < kTasks; i += 5) ASSERT_TRUE(tasks[i].task->cancel());
  std::vector<std::atomic<int>> delivered(kTasks);
  std::atomic<int> next_to_run{0};
  std::latch start(kWorkers + kTakers + 1);
  auto ran_all = [&] { return next_to_run.load() >= kTasks; };

  WaitResult end = WaitResult::Ready;
  std::thread consumer([&] {
    Completions::Entry entry;
    // A lost outcome would keep the stream open: give up after a minute with
    // no outcome at all (not a minute in all: under valgrind, which runs one
    // thread at a time, the whole test takes minutes).
    while ((end = sink->next(entry, Deadline::after(60))) == WaitResult::Ready)
      if (entry.task->claim()) ++delivered[entry.token];
  });
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w)
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int i; (i = next_to_run.fetch_add(1)) < kTasks;) {
        run(tasks[i], i);
        std::this_thread::yield();  // leaves the other threads a chance to race it
      }
    });
  threads.emplace_back([&] {  // cancels tasks the workers have not reached yet
    std::mt19937 rng(7);
    start.arrive_and_wait();
    while (!ran_all()) {
      int i = next_to_run.load() + static_cast<int>(rng() % 64);
      if (i < kTasks) tasks[i].task->cancel();
      std::this_thread::yield();  // (a thread that never yields stalls the others under valgrind)
    }
  });
  for (int t = 0; t < kTakers; ++t)
    threads.emplace_back([&, t] {
      std::mt19937 rng(1000 + t);
      start.arrive_and_wait();
      while (!ran_all()) {
        // Near what the workers run now: the races are there.
        int i = std::min(kTasks - 1, next_to_run.load() + static_cast<int>(rng() % 8) - 4);
        if (i < 0) continue;
        TaskOutcome& task = *tasks[i].task;
        bool give_up = rng() % 4 == 0;
        task.begin_take();
        WaitResult r = task.wait(Deadline::after(rng() % 2 ? 0.0 : 0.0005), true, false);
        EXPECT_NE(r, WaitResult::Interrupted);
        if (task.end_take(!give_up)) {
          Outcome out = task.take_outcome();
          if (out.status == Outcome::Status::Ok) {
            EXPECT_EQ(out.value, Value(i));
          }
          ++delivered[i];
        }
      }
    });
  for (auto& t : threads) t.join();
  sink->finish();  // the pool closes: the stream ends once every outcome is resolved
  consumer.join();
  EXPECT_EQ(end, WaitResult::Closed) << "the stream did not end: an outcome was never resolved";
  int twice = 0, never = 0;
  for (auto& d : delivered) {
    twice += d.load() > 1;
    never += d.load() == 0;
  }
  EXPECT_EQ(twice, 0) << "outcomes delivered more than once";
  EXPECT_EQ(never, 0) << "outcomes never delivered";
}
