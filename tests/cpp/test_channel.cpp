#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <interpool/channel.hpp>
#include <interpool/queue.hpp>
#include <thread>
#include <vector>

using namespace interpool;
using namespace std::chrono_literals;

TEST(Channel, FifoOrder) {
  Channel<int> ch;
  for (int i = 0; i < 100; ++i) {
    int v = i;
    ASSERT_EQ(ch.put(v), WaitResult::Ready);
  }
  EXPECT_EQ(ch.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    int v = -1;
    ASSERT_EQ(ch.get(v, Deadline::now()), WaitResult::Ready);
    EXPECT_EQ(v, i);
  }
  int v;
  EXPECT_EQ(ch.get(v, Deadline::now()), WaitResult::Timeout);
}

TEST(Channel, FifoAcrossWrapAroundGrowthAndShrinking) {
  // The items live in a circular buffer: take some, add more than it holds
  // (it grows while the items wrap around its end), filter, empty it after a
  // burst (it shrinks), use it again. The order must hold throughout.
  Channel<int> ch;
  int next_in = 0, next_out = 0;
  auto put = [&](int n) {
    for (int i = 0; i < n; ++i) {
      int v = next_in++;
      ASSERT_EQ(ch.put(v), WaitResult::Ready);
    }
  };
  auto get = [&](int n) {
    for (int i = 0; i < n; ++i) {
      int v = -1;
      ASSERT_EQ(ch.get(v, Deadline::now()), WaitResult::Ready);
      ASSERT_EQ(v, next_out++);
    }
  };
  for (int round = 0; round < 3; ++round) {
    put(10);
    get(7);
    put(100);  // grows with the items wrapped
    get(50);
    put(5000);  // a burst
    get(static_cast<int>(ch.size()));
    EXPECT_EQ(ch.size(), 0u);
    put(20);  // a small load after the burst: emptied, the buffer is given back
    get(20);
    put(30);  // and used again
    get(30);
  }
  put(40);
  get(30);
  put(40);
  ch.retain([](int& v) { return v % 3 != 0; });  // drop multiples of 3, keep the order
  int v, last = -1;
  std::size_t left = ch.size();
  for (std::size_t i = 0; i < left; ++i) {
    ASSERT_EQ(ch.get(v, Deadline::now()), WaitResult::Ready);
    EXPECT_NE(v % 3, 0);
    EXPECT_GT(v, last);
    last = v;
  }
  EXPECT_EQ(left, 50u - 17u);  // of next_out..next_in (50 items), 17 are multiples of 3
  EXPECT_EQ(ch.get(v, Deadline::now()), WaitResult::Timeout);
}

TEST(Channel, BoundRefusesWhenFullAndKeepsTheItem) {
  Channel<std::string> ch(2);
  std::string a = "a", b = "b", c = "c";
  ASSERT_EQ(ch.put(a, Deadline::now()), WaitResult::Ready);
  ASSERT_EQ(ch.put(b, Deadline::now()), WaitResult::Ready);
  EXPECT_EQ(ch.put(c, Deadline::now()), WaitResult::Timeout);
  EXPECT_EQ(c, "c") << "a refused item must not be consumed";
  std::string out;
  ASSERT_EQ(ch.get(out), WaitResult::Ready);
  EXPECT_EQ(out, "a");
  EXPECT_EQ(ch.put(c, Deadline::now()), WaitResult::Ready);
}

TEST(Channel, PutBackReturnsAnItemToTheFrontWhateverTheBoundOrClose) {
  // A getter that cannot use the item it took (Python: one its interpreter
  // cannot rebuild) gives it back: it stays first, nothing is lost.
  Channel<int> fresh;
  int first = 7;
  fresh.put_back(first);  // into a channel that never held an item
  int v = -1;
  ASSERT_EQ(fresh.get(v, Deadline::now()), WaitResult::Ready);
  EXPECT_EQ(v, 7);

  Channel<int> ch(3);
  for (int i = 0; i < 3; ++i) {
    int item = i;
    ASSERT_EQ(ch.put(item, Deadline::now()), WaitResult::Ready);
  }
  ASSERT_EQ(ch.get(v, Deadline::now()), WaitResult::Ready);
  ASSERT_EQ(v, 0);
  int refill = 3;
  ASSERT_EQ(ch.put(refill, Deadline::now()), WaitResult::Ready);  // full again
  ch.put_back(v);                                                 // one over the bound
  EXPECT_EQ(ch.size(), 4u);
  ch.close();
  ASSERT_EQ(ch.get(v, Deadline::now()), WaitResult::Ready);
  EXPECT_EQ(v, 0);
  ch.put_back(v);  // closed: puts are refused, a give-back is not
  for (int want = 0; want < 4; ++want) {
    ASSERT_EQ(ch.get(v, Deadline::now()), WaitResult::Ready);
    EXPECT_EQ(v, want);
  }
  EXPECT_EQ(ch.get(v, Deadline::now()), WaitResult::Closed);
}

TEST(Channel, AWaitingGetterGetsAnItemGivenBack) {
  Channel<int> ch;
  int got = -1;
  std::thread getter([&] { (void)ch.get(got, Deadline::after(30.0)); });
  int item = 5;
  ch.put_back(item);
  getter.join();
  EXPECT_EQ(got, 5);
}

TEST(Channel, GetTimeoutIsHonoured) {
  Channel<int> ch;
  int v;
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(ch.get(v, Deadline::after(0.05)), WaitResult::Timeout);
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 50ms);
}

TEST(Channel, BlockedPutProceedsWhenSpaceFrees) {
  Channel<int> ch(1);
  int first = 1;
  ASSERT_EQ(ch.put(first), WaitResult::Ready);
  std::thread t([&] {
    std::this_thread::sleep_for(20ms);
    int v;
    ch.get(v);
  });
  int second = 2;
  EXPECT_EQ(ch.put(second, Deadline::after(10.0)), WaitResult::Ready);
  t.join();
  int v;
  ASSERT_EQ(ch.get(v), WaitResult::Ready);
  EXPECT_EQ(v, 2);
}

TEST(Channel, CloseWakesWaitersAndDrainsFirst) {
  Channel<int> ch;
  std::atomic<int> closed{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 4; ++i)
    waiters.emplace_back([&] {
      int v;
      if (ch.get(v) == WaitResult::Closed) ++closed;
    });
  std::this_thread::sleep_for(20ms);
  ch.close();
  for (auto& t : waiters) t.join();
  EXPECT_EQ(closed.load(), 4);

  Channel<int> ch2;
  int x = 7;
  ch2.put(x);
  ch2.close();
  int y = 8;
  EXPECT_EQ(ch2.put(y), WaitResult::Closed);
  int v = 0;
  EXPECT_EQ(ch2.get(v), WaitResult::Ready);
  EXPECT_EQ(v, 7);
  EXPECT_EQ(ch2.get(v), WaitResult::Closed);
}

TEST(Channel, ManyProducersManyConsumersEveryItemExactlyOnce) {
  constexpr int kProducers = 6, kConsumers = 6, kPerProducer = 20000;
  Channel<int> ch(64);  // a small bound exercises blocking on both sides
  std::vector<std::atomic<int>> seen(kProducers * kPerProducer);
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p)
    threads.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        int v = p * kPerProducer + i;
        ASSERT_EQ(ch.put(v), WaitResult::Ready);
      }
    });
  std::atomic<int> got{0};
  std::vector<std::thread> consumers;
  for (int c = 0; c < kConsumers; ++c)
    consumers.emplace_back([&] {
      int v;
      while (ch.get(v) == WaitResult::Ready) {
        seen[v].fetch_add(1);
        ++got;
      }
    });
  for (auto& t : threads) t.join();
  ch.close();
  for (auto& t : consumers) t.join();
  EXPECT_EQ(got.load(), kProducers * kPerProducer);
  for (auto& s : seen) ASSERT_EQ(s.load(), 1);
}

namespace {
void on_signal(int) {}
}  // namespace

TEST(Channel, InterruptibleWaitEndsOnSignal) {
  struct sigaction sa = {};
  sa.sa_handler = on_signal;  // no SA_RESTART: the futex wait sees EINTR
  struct sigaction old;
  sigaction(SIGUSR1, &sa, &old);
  Channel<int> ch;
  pthread_t self = pthread_self();
  std::atomic<bool> sent{false};
  std::thread t([&] {
    std::this_thread::sleep_for(200ms);
    sent = true;
    pthread_kill(self, SIGUSR1);
  });
  // A wait that spun first ends once, Interrupted, after a short sleep (a
  // signal may have come while it spun); the next one sleeps until the signal.
  int v;
  int before_signal = 0;
  WaitResult r;
  while ((r = ch.get(v, Deadline::after(10.0), /*interruptible=*/true)) ==
             WaitResult::Interrupted &&
         !sent)
    ++before_signal;
  EXPECT_EQ(r, WaitResult::Interrupted);
  EXPECT_LE(before_signal, 1) << "the wait kept waking up before the signal came";
  t.join();
  sigaction(SIGUSR1, &old, nullptr);
}

TEST(Channel, EveryWaitingGetterIsWokenWhenItemsComeTogether) {
  // Two getters fall asleep; two more start spinning; items arrive back to
  // back while they spin (likely in most rounds, not certain in each: the
  // threads' timing decides; 200 rounds make a missing pass-on show). A put leaves the wake-up to a
  // spinning getter, which must pass it on to the sleepers: every getter gets an item at once.
  constexpr int kRounds = 200;
  Channel<int> ch;
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<int> results{0}, ready{0};
    std::vector<std::thread> getters;
    auto start_getter = [&] {
      getters.emplace_back([&] {
        int v;
        ++ready;
        // A getter that slept through its item gets it only when its own
        // deadline makes it look again: that counts as a failure.
        Deadline deadline = Deadline::after(5.0);
        if (ch.get(v, deadline) == WaitResult::Ready && !deadline.passed()) ++results;
      });
    };
    start_getter();
    start_getter();
    while (ready.load() < 2) std::this_thread::yield();
    std::this_thread::sleep_for(2ms);  // past their spin: asleep
    start_getter();
    start_getter();
    while (ready.load() < 4) std::this_thread::yield();
    for (int i = 0; i < 4; ++i) {
      int v = i;
      ASSERT_EQ(ch.put(v), WaitResult::Ready);
    }
    for (auto& t : getters) t.join();
    ASSERT_EQ(results.load(), 4) << "round " << round;
  }
}

TEST(SpinMutex, ExcludesAndCountsExactly) {
  SpinMutex mutex;
  long counter = 0;  // plain: only the mutex keeps the increments apart
  constexpr int kThreads = 4, kEach = 200000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        std::lock_guard lock(mutex);
        ++counter;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, static_cast<long>(kThreads) * kEach);
  EXPECT_TRUE(mutex.try_lock());
  EXPECT_FALSE(mutex.try_lock());
  mutex.unlock();
}

TEST(Signal, AWaitThatSpunSleepsUntilNotifiedWhenNotInterruptible) {
  Signal signal;
  std::atomic<bool> notified{false};
  std::thread t([&] {
    std::this_thread::sleep_for(100ms);
    notified = true;
    signal.notify_all();
  });
  std::uint32_t epoch = signal.epoch();
  EXPECT_EQ(signal.wait(epoch, Deadline::never(), /*interruptible=*/false), WaitResult::Ready);
  EXPECT_TRUE(notified.load()) << "woke before the notify";
  t.join();
}

TEST(Queue, RegistryFindsLiveQueuesOnly) {
  auto q = Queue::create(3);
  std::int64_t id = q->id();
  EXPECT_EQ(Queue::find(id), q);
  EXPECT_EQ(q->maxsize(), 3u);
  auto q2 = Queue::create();
  EXPECT_NE(q2->id(), id);
  q.reset();
  EXPECT_EQ(Queue::find(id), nullptr);
}

TEST(Queue, ANegativeMaxsizeIsUnboundedAndKeptAsGiven) {
  auto q = Queue::create(-10);
  EXPECT_EQ(q->maxsize(), 0u);
  EXPECT_EQ(q->requested_maxsize(), -10);
  for (int i = 0; i < 20; ++i) {
    QueueItem item{Value(i), -1, Unbound::Keep, false};
    ASSERT_EQ(q->put(item, Deadline::now()), WaitResult::Ready) << "a bounded queue would be full";
  }
  EXPECT_EQ(q->size(), 20u);
  EXPECT_EQ(Queue::create(3)->requested_maxsize(), 3);
}

TEST(Queue, UnboundPoliciesApplyWhenTheOriginCloses) {
  auto q = Queue::create();
  QueueItem keep{Value(1), 42, Unbound::Keep, false};
  QueueItem remove{Value(2), 42, Unbound::Remove, false};
  QueueItem marker{Value(3), 42, Unbound::Marker, false};
  QueueItem other{Value(4), 7, Unbound::Remove, false};
  q->put(keep);
  q->put(remove);
  q->put(marker);
  q->put(other);
  Queue::interpreter_closed(42);
  ASSERT_EQ(q->size(), 3u);
  QueueItem out;
  q->get(out);
  EXPECT_EQ(out.value, Value(1));
  EXPECT_FALSE(out.origin_closed);
  q->get(out);
  EXPECT_TRUE(out.origin_closed);
  q->get(out);
  EXPECT_EQ(out.value, Value(4));
}

TEST(Queue, UnboundPoliciesApplyOnceWhileTheEngineClosesTheOrigin) {
  auto q = Queue::create();
  QueueItem first{Value(1), 43, Unbound::Remove, false};
  q->put(first);
  Queue::interpreter_closing(43);
  Queue::interpreter_finalizing(43);  // the extension's notice, while Interpreter::close runs
  EXPECT_EQ(q->size(), 1u) << "left to the engine's close";
  Queue::interpreter_closed(43);
  EXPECT_EQ(q->size(), 0u);
  // An interpreter someone else ends: the notice applies the policies.
  QueueItem second{Value(2), 44, Unbound::Remove, false};
  QueueItem third{Value(3), 44, Unbound::Marker, false};
  q->put(second);
  q->put(third);
  Queue::interpreter_finalizing(44);
  ASSERT_EQ(q->size(), 1u);
  QueueItem out;
  q->get(out);
  EXPECT_TRUE(out.origin_closed);
  EXPECT_EQ(out.value, Value());
}

TEST(Channel, PutAllKeepsOrderAndWhatIsRefused) {
  Channel<int> open;
  std::vector<int> items{1, 2, 3};
  ASSERT_EQ(open.put_all(items), WaitResult::Ready);
  EXPECT_TRUE(items.empty());
  int v;
  for (int want : {1, 2, 3}) {
    ASSERT_EQ(open.get(v, Deadline::now()), WaitResult::Ready);
    EXPECT_EQ(v, want);
  }
  Channel<int> bounded(2);
  std::vector<int> more{4, 5, 6};
  EXPECT_EQ(bounded.put_all(more, Deadline::now()), WaitResult::Timeout);
  EXPECT_EQ(more, std::vector<int>{6}) << "the item that did not fit stays with the caller";
  bounded.close();
  std::vector<int> late{7};
  EXPECT_EQ(open.put_all(late), WaitResult::Ready);
  open.close();
  std::vector<int> refused{8};
  EXPECT_EQ(open.put_all(refused), WaitResult::Closed);
  EXPECT_EQ(refused, std::vector<int>{8});
}
