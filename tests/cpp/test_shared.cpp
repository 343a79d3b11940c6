// The engine's shared memory and synchronisation objects, from C++ threads:
// SharedBuffer and its views, Lock, RLock, Event, Semaphore, Barrier, AtomicInt.
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <interpool/shared_buffer.hpp>
#include <interpool/sync.hpp>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/py_value.hpp"
#include "core/registry.hpp"

using namespace interpool;
using namespace std::chrono_literals;

namespace {

constexpr int kThreads = 4;
constexpr int kIncrements = 20000;

// Runs fn(i) on kThreads threads that start together.
template <class Fn>
void on_threads(Fn fn, int threads = kThreads) {
  std::atomic<int> ready{0};
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i)
    pool.emplace_back([&, i] {
      ready.fetch_add(1);
      while (ready.load() < threads) std::this_thread::yield();
      fn(i);
    });
  for (auto& t : pool) t.join();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void on_signal(int) {}

}  // namespace

// ---------------------------------------------------------------------------
// SharedBuffer
// ---------------------------------------------------------------------------

TEST(SharedBuffer, ZeroFilledAlignedAndSized) {
  for (std::size_t n : {0u, 1u, 63u, 4096u, 1000003u}) {
    auto b = SharedBuffer::create(n);
    EXPECT_EQ(b->size(), n);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b->data()) % SharedBuffer::alignment, 0u);
    for (std::byte x : b->bytes()) ASSERT_EQ(x, std::byte{0});
    EXPECT_EQ(b->kind(), ObjectKind::SharedBuffer);
  }
}

TEST(SharedBuffer, CopyOfAndTypedSpans) {
  const char text[] = "shared bytes";
  auto b = SharedBuffer::copy_of(std::as_bytes(std::span(text, sizeof text - 1)));
  EXPECT_EQ(std::memcmp(b->data(), text, sizeof text - 1), 0);
  auto ints = SharedBuffer::create(10 * sizeof(std::int32_t))->as<std::int32_t>();
  EXPECT_EQ(ints.size(), 10u);
  EXPECT_EQ(SharedBuffer::create(7)->as<std::int32_t>().size(), 1u);  // the rest left out
}

TEST(SharedBuffer, FindsLiveBuffersOnlyAndIdsAreDistinct) {
  auto a = SharedBuffer::create(4);
  auto b = SharedBuffer::create(4);
  EXPECT_NE(a->id(), b->id());
  std::int64_t id = a->id();
  EXPECT_EQ(SharedBuffer::find(id), a);
  EXPECT_EQ(SyncObject::find(id), nullptr);  // ids name one kind of object
  std::weak_ptr<SharedBuffer> watch = a;
  a.reset();
  EXPECT_TRUE(watch.expired());
  EXPECT_EQ(SharedBuffer::find(id), nullptr);
}

TEST(SharedBuffer, HandleKeepsItAlive) {
  Handle h;
  std::weak_ptr<SharedBuffer> watch;
  {
    auto b = SharedBuffer::create(8);
    b->bytes()[3] = std::byte{7};
    watch = b;
    h = Handle{b};
  }
  ASSERT_FALSE(watch.expired());
  EXPECT_EQ(h.get<SharedBuffer>()->bytes()[3], std::byte{7});
  h = Handle{};
  EXPECT_TRUE(watch.expired());
}

TEST(SharedBuffer, WritesFromThreadsAreAllThere) {
  auto b = SharedBuffer::create(kThreads * 1000 * sizeof(std::int64_t));
  auto items = b->as<std::int64_t>();
  on_threads([&](int t) {
    for (int i = 0; i < 1000; ++i) items[t * 1000 + i] = t * 1000 + i;
  });
  std::vector<std::int64_t> expected(items.size());
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_TRUE(std::equal(items.begin(), items.end(), expected.begin()));
}

TEST(SharedBufferView, LayoutsInsideTheBufferOnly) {
  auto b = SharedBuffer::create(32);
  SharedBufferView whole(b, BufferLayout::bytes(0, 32));
  EXPECT_EQ(whole.first(), b->data());
  EXPECT_TRUE(whole.layout().c_contiguous());
  SharedBufferView ints(b, BufferLayout::contiguous(8, 4, "i", {2, 3}));
  EXPECT_EQ(ints.layout().nbytes(), 24u);
  EXPECT_EQ(ints.layout().strides, (std::vector<std::ptrdiff_t>{12, 4}));
  EXPECT_THROW(SharedBufferView(b, BufferLayout::contiguous(12, 4, "i", {2, 3})),
               std::out_of_range);
  BufferLayout reverse = BufferLayout::bytes(31, 32);
  reverse.strides = {-1};
  EXPECT_NO_THROW(SharedBufferView(b, reverse));
  EXPECT_FALSE(reverse.c_contiguous());
  reverse.offset = 30;
  EXPECT_THROW(SharedBufferView(b, reverse), std::out_of_range);
  EXPECT_NO_THROW(SharedBufferView(b, BufferLayout::bytes(32, 0)));  // empty, at the end
  BufferLayout bad = BufferLayout::bytes(0, 4);
  bad.strides.clear();
  EXPECT_THROW(SharedBufferView(b, bad), std::invalid_argument);
}

TEST(SharedBufferView, CaptureIsOffOutsideConversions) {
  EXPECT_EQ(capture_handle(SharedBuffer::create(1)), -1);
  EXPECT_EQ(captured_handle(0), nullptr);
}

// ---------------------------------------------------------------------------
// Lock and RLock
// ---------------------------------------------------------------------------

TEST(SharedLock, ExactCountUnderContention) {
  auto lock = Lock::create();
  std::int64_t counter = 0;  // plain memory: only the lock orders the increments
  on_threads([&](int) {
    for (int i = 0; i < kIncrements; ++i) {
      ASSERT_EQ(lock->acquire(), WaitResult::Ready);
      counter = counter + 1;
      ASSERT_TRUE(lock->release());
    }
  });
  EXPECT_EQ(counter, kThreads * kIncrements);
  EXPECT_FALSE(lock->locked());
}

TEST(SharedLock, ReleaseOfAnUnlockedLockIsRefusedAndAnyThreadMayRelease) {
  auto lock = Lock::create();
  EXPECT_FALSE(lock->release());
  EXPECT_TRUE(lock->try_acquire());
  EXPECT_FALSE(lock->try_acquire());
  std::thread([&] { EXPECT_TRUE(lock->release()); }).join();
  EXPECT_FALSE(lock->locked());
}

TEST(SharedLock, TimeoutIsHonoured) {
  auto lock = Lock::create();
  lock->try_acquire();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(lock->acquire(Deadline::after(0.05)), WaitResult::Timeout);
  EXPECT_GE(seconds_since(t0), 0.05);
  EXPECT_EQ(lock->acquire(Deadline::now()), WaitResult::Timeout);
}

TEST(SharedLock, InterruptibleWaitEndsOnSignal) {
  struct sigaction sa = {};
  sa.sa_handler = on_signal;  // no SA_RESTART: the futex wait sees EINTR
  struct sigaction old;
  sigaction(SIGUSR1, &sa, &old);
  auto lock = Lock::create();
  lock->try_acquire();
  pthread_t self = pthread_self();
  std::atomic<bool> sent{false};
  std::thread t([&] {
    std::this_thread::sleep_for(200ms);
    sent = true;
    pthread_kill(self, SIGUSR1);
  });
  // On the main thread a wait that spun ends once, Interrupted, before any
  // signal (Signal::wait); the one after it must end on the signal.
  WaitResult r;
  int before_signal = 0;
  while ((r = lock->acquire(Deadline::after(10.0), true)) == WaitResult::Interrupted && !sent)
    ++before_signal;
  EXPECT_EQ(r, WaitResult::Interrupted);
  EXPECT_LE(before_signal, 1);
  EXPECT_TRUE(lock->locked());  // nothing changed
  t.join();
  sigaction(SIGUSR1, &old, nullptr);
}

TEST(SharedRLock, ReentrantForItsOwnerOnly) {
  auto rlock = RLock::create();
  Owner a{1, 100}, b{1, 200}, a_elsewhere{2, 100};
  EXPECT_EQ(rlock->acquire(a), WaitResult::Ready);
  EXPECT_EQ(rlock->acquire(a), WaitResult::Ready);
  EXPECT_EQ(rlock->depth(), 2u);
  EXPECT_TRUE(rlock->owned_by(a));
  EXPECT_FALSE(rlock->owned_by(a_elsewhere));
  EXPECT_EQ(rlock->acquire(b, Deadline::now()), WaitResult::Timeout);
  EXPECT_EQ(rlock->acquire(a_elsewhere, Deadline::now()), WaitResult::Timeout);
  EXPECT_FALSE(rlock->release(b));
  EXPECT_TRUE(rlock->release(a));
  EXPECT_TRUE(rlock->locked());
  EXPECT_TRUE(rlock->release(a));
  EXPECT_FALSE(rlock->locked());
  EXPECT_FALSE(rlock->release(a));
  EXPECT_EQ(rlock->acquire(b, Deadline::now()), WaitResult::Ready);
}

TEST(SharedRLock, ExactCountUnderContention) {
  auto rlock = RLock::create();
  std::int64_t counter = 0;
  on_threads([&](int t) {
    Owner me{0, static_cast<std::uint64_t>(t)};
    for (int i = 0; i < kIncrements; ++i) {
      ASSERT_EQ(rlock->acquire(me), WaitResult::Ready);
      ASSERT_EQ(rlock->acquire(me), WaitResult::Ready);
      counter = counter + 1;
      ASSERT_TRUE(rlock->release(me));
      ASSERT_TRUE(rlock->release(me));
    }
  });
  EXPECT_EQ(counter, kThreads * kIncrements);
}

TEST(SharedRLock, TheEnvironmentLockIsOneLiveLockOfTheProcess) {
  const auto& lock = environment_lock();
  ASSERT_TRUE(lock);
  EXPECT_EQ(lock.get(), environment_lock().get());
  EXPECT_EQ(registry::find(lock->id()).get(), lock.get());  // reachable by id
  Owner me{-1, 1}, other{-1, 2};
  ASSERT_EQ(lock->acquire(me), WaitResult::Ready);
  EXPECT_EQ(lock->acquire(other, Deadline::now()), WaitResult::Timeout);
  EXPECT_TRUE(lock->release(me));
}

// ---------------------------------------------------------------------------
// Event and Semaphore
// ---------------------------------------------------------------------------

TEST(SharedEvent, SetWakesEveryWaiter) {
  auto event = Event::create();
  EXPECT_EQ(event->wait(Deadline::after(0.02)), WaitResult::Timeout);
  std::atomic<int> woken{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < kThreads; ++i)
    waiters.emplace_back([&] {
      if (event->wait(Deadline::after(30.0)) == WaitResult::Ready) woken.fetch_add(1);
    });
  std::this_thread::sleep_for(20ms);
  event->set();
  for (auto& t : waiters) t.join();
  EXPECT_EQ(woken.load(), kThreads);
  EXPECT_TRUE(event->is_set());
  event->clear();
  EXPECT_FALSE(event->is_set());
}

TEST(SharedSemaphore, CountsAndBounds) {
  EXPECT_THROW(Semaphore::create(-1), std::invalid_argument);
  auto sem = Semaphore::create(2);
  EXPECT_TRUE(sem->try_acquire());
  EXPECT_TRUE(sem->try_acquire());
  EXPECT_FALSE(sem->try_acquire());
  EXPECT_EQ(sem->acquire(Deadline::after(0.02)), WaitResult::Timeout);
  EXPECT_TRUE(sem->release(5));
  EXPECT_EQ(sem->value(), 5);
  auto bounded = Semaphore::create(1, true);
  EXPECT_FALSE(bounded->release());
  EXPECT_TRUE(bounded->try_acquire());
  EXPECT_TRUE(bounded->release());
  EXPECT_EQ(bounded->value(), 1);
}

TEST(SharedSemaphore, NeverMoreInsideThanItsValue) {
  auto sem = Semaphore::create(2);
  std::atomic<int> inside{0}, peak{0};
  on_threads([&](int) {
    for (int i = 0; i < 500; ++i) {
      ASSERT_EQ(sem->acquire(), WaitResult::Ready);
      int now = inside.fetch_add(1) + 1;
      int seen = peak.load();
      while (now > seen && !peak.compare_exchange_weak(seen, now)) {
      }
      inside.fetch_sub(1);
      sem->release();
    }
  });
  EXPECT_LE(peak.load(), 2);
  EXPECT_EQ(sem->value(), 2);
}

// ---------------------------------------------------------------------------
// Barrier
// ---------------------------------------------------------------------------

TEST(SharedBarrier, RoundsGiveEveryIndexOnce) {
  EXPECT_THROW(Barrier::create(0), std::invalid_argument);
  auto barrier = Barrier::create(kThreads);
  constexpr int kRounds = 200;
  std::vector<std::atomic<int>> hits(kThreads);
  std::atomic<int> written{0};
  std::atomic<bool> ok{true};
  on_threads([&](int) {
    for (int r = 1; r <= kRounds; ++r) {
      written.fetch_add(1);
      Barrier::Ticket ticket;
      if (barrier->wait(ticket, Deadline::after(30.0)) != Barrier::Result::Passed) ok = false;
      hits[ticket.index].fetch_add(1);
      if (written.load() < r * kThreads) ok = false;  // everyone wrote before any left
      Barrier::Ticket second;
      if (barrier->wait(second, Deadline::after(30.0)) != Barrier::Result::Passed) ok = false;
    }
  });
  EXPECT_TRUE(ok.load());
  for (auto& h : hits) EXPECT_EQ(h.load(), kRounds);
  EXPECT_FALSE(barrier->broken());
  EXPECT_EQ(barrier->n_waiting(), 0u);
}

TEST(SharedBarrier, TimeoutBreaksItForEveryWaiter) {
  auto barrier = Barrier::create(3);
  Barrier::Result other = Barrier::Result::Passed;
  std::thread t([&] {
    Barrier::Ticket ticket;
    other = barrier->wait(ticket, Deadline::after(30.0));
  });
  while (barrier->n_waiting() < 1) std::this_thread::sleep_for(1ms);
  Barrier::Ticket ticket;
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(barrier->wait(ticket, Deadline::after(0.05)), Barrier::Result::Broken);
  EXPECT_GE(seconds_since(t0), 0.05);
  t.join();
  EXPECT_EQ(other, Barrier::Result::Broken);
  EXPECT_TRUE(barrier->broken());
  Barrier::Ticket late;
  EXPECT_EQ(barrier->wait(late, Deadline::after(30.0)), Barrier::Result::Broken);
  barrier->reset();
  EXPECT_FALSE(barrier->broken());
}

TEST(SharedBarrier, ResetAndAbortWakeWaiters) {
  auto barrier = Barrier::create(2);
  for (bool abort : {false, true}) {
    Barrier::Result r = Barrier::Result::Passed;
    std::thread t([&] {
      Barrier::Ticket ticket;
      r = barrier->wait(ticket, Deadline::after(30.0));
    });
    while (barrier->n_waiting() < 1) std::this_thread::sleep_for(1ms);
    if (abort)
      barrier->abort();
    else
      barrier->reset();
    t.join();
    EXPECT_EQ(r, Barrier::Result::Broken);
    EXPECT_EQ(barrier->broken(), abort);
  }
}

TEST(SharedBarrier, AbandonedTicketLeavesTheBarrierUsable) {
  struct sigaction sa = {};
  sa.sa_handler = on_signal;
  struct sigaction old;
  sigaction(SIGUSR1, &sa, &old);
  auto barrier = Barrier::create(2);
  pthread_t self = pthread_self();
  std::atomic<bool> sent{false};
  std::thread t([&] {
    std::this_thread::sleep_for(200ms);
    sent = true;
    pthread_kill(self, SIGUSR1);
  });
  Barrier::Ticket ticket;
  Barrier::Result r;
  int before_signal = 0;  // at most one early Interrupted (see Signal::wait)
  while ((r = barrier->wait(ticket, Deadline::after(10.0), true)) == Barrier::Result::Interrupted &&
         !sent)
    ++before_signal;
  EXPECT_EQ(r, Barrier::Result::Interrupted);
  EXPECT_LE(before_signal, 1);
  EXPECT_EQ(barrier->n_waiting(), 1u);
  barrier->abandon(ticket);
  EXPECT_EQ(barrier->n_waiting(), 0u);
  t.join();
  sigaction(SIGUSR1, &old, nullptr);
  Barrier::Result other = Barrier::Result::Broken;
  std::thread partner([&] {
    Barrier::Ticket mine;
    other = barrier->wait(mine, Deadline::after(30.0));
  });
  Barrier::Ticket again;
  EXPECT_EQ(barrier->wait(again, Deadline::after(30.0)), Barrier::Result::Passed);
  partner.join();
  EXPECT_EQ(other, Barrier::Result::Passed);
}

// ---------------------------------------------------------------------------
// AtomicInt
// ---------------------------------------------------------------------------

TEST(SharedAtomicInt, Operations) {
  auto a = AtomicInt::create(5);
  EXPECT_EQ(a->fetch_add(2), 5);
  EXPECT_EQ(a->load(), 7);
  EXPECT_EQ(a->exchange(1), 7);
  std::int64_t expected = 2;
  EXPECT_FALSE(a->compare_exchange(expected, 9));
  EXPECT_EQ(expected, 1);
  EXPECT_TRUE(a->compare_exchange(expected, 9));
  EXPECT_EQ(a->load(), 9);
  a->store(INT64_MAX);
  EXPECT_THROW(a->fetch_add(1), std::overflow_error);
  EXPECT_EQ(a->load(), INT64_MAX);
  a->store(INT64_MIN);
  EXPECT_THROW(a->fetch_add(-1), std::overflow_error);
  EXPECT_EQ(a->kind(), ObjectKind::Sync);
}

TEST(SharedAtomicInt, ExactCountUnderContention) {
  auto a = AtomicInt::create();
  on_threads([&](int) {
    for (int i = 0; i < kIncrements; ++i) a->fetch_add(1);
  });
  EXPECT_EQ(a->load(), kThreads * kIncrements);
}
