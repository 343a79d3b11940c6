#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <ctime>
#include <interpool/signal.hpp>
#include <thread>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "core/busy_thread.hpp"
#include "core/wait_hook.hpp"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#error "interpool's Signal needs a futex; only Linux is supported so far"
#endif

namespace interpool {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t),
              "a futex word must be a plain 32-bit integer");

namespace {

long futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t val, const timespec* ts) {
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op | FUTEX_PRIVATE_FLAG, val,
                 ts, nullptr, FUTEX_BITSET_MATCH_ANY);
}

timespec to_timespec(Deadline::Clock::time_point t) {
  // steady_clock is CLOCK_MONOTONIC on Linux, the clock FUTEX_WAIT_BITSET uses by default.
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  if (ns < 0) ns = 0;
  return timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}

void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Spinning before sleeping (docs/design.md, rule 3). A waiter spins up to
// kMaxSpin for a notify before it sleeps on the futex, but only on a CPU that
// would otherwise idle: while the engine's busy threads (workers that are not
// waiting) and the spinners together leave a CPU free. So a caller waiting for
// tasks that keep every CPU busy sleeps at once, and a wait on an idle machine
// skips a sleep and a wake-up (tens of µs on a virtual machine) when the notify
// comes soon.
constexpr std::chrono::nanoseconds kMaxSpin{50'000};
// That count cannot see other processes. A spinner the kernel takes the CPU
// from (a gap in its clock longer than a whole spin) pays twice on a loaded
// machine: the notify skips the futex wake for it (notify_one_lazy), so it
// learns of it only when the scheduler runs it again, milliseconds later, and
// its spin took CPU from the threads doing the work. So a preempted spin stops,
// and its thread sleeps at once in its waits for a while: kFirstBackoff, doubled
// at each preempted spin, up to kMaxBackoff, and halved at each spin that ran
// undisturbed.
constexpr std::chrono::milliseconds kFirstBackoff{20};
constexpr std::chrono::milliseconds kMaxBackoff{2'000};
// An interruptible wait that spun on the process's main thread (where Python
// runs signal handlers) sleeps at most this long before it reports Interrupted
// once, so that its caller runs the handlers (see wait()).
constexpr std::chrono::milliseconds kSignalCheck{20};

int cpus() noexcept {
  static const int n = static_cast<int>(usable_cpus());
  return n;
}

// Threads that keep a CPU (busy threads and spinners), on a line of their own.
alignas(64) std::atomic<int> cpus_taken{0};

struct ThreadMark {
  bool busy = false;       // counted in cpus_taken while not waiting
  bool skip_spin = false;  // the last wait ended for a signal check: sleep at once
  int no_spin = 0;         // NoSpin marks alive on this thread
  // After a preempted spin: no spinning before spin_again, then a backoff twice as long.
  Deadline::Clock::time_point spin_again{};
  std::chrono::milliseconds backoff{0};
  const bool main_thread = getpid() == static_cast<pid_t>(syscall(SYS_gettid));
};
ThreadMark& thread_mark() noexcept {
  thread_local ThreadMark mark;
  return mark;
}

// While a busy thread waits, its CPU is not taken.
struct WaitingMark {
  ThreadMark& mark;
  explicit WaitingMark(ThreadMark& m) noexcept : mark(m) {
    if (mark.busy) cpus_taken.fetch_sub(1, std::memory_order_relaxed);
  }
  ~WaitingMark() {
    if (mark.busy) cpus_taken.fetch_add(1, std::memory_order_relaxed);
  }
};

}  // namespace

std::size_t usable_cpus() noexcept {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<std::size_t>(n);
  }
  unsigned n = std::thread::hardware_concurrency();
  return n ? n : 1;
}

BusyThread::BusyThread() noexcept {
  ThreadMark& mark = thread_mark();
  if (mark.busy) return;
  mark.busy = owner_ = true;
  cpus_taken.fetch_add(1, std::memory_order_relaxed);
}

BusyThread::~BusyThread() {
  if (!owner_) return;
  thread_mark().busy = false;
  cpus_taken.fetch_sub(1, std::memory_order_relaxed);
}

NoSpin::NoSpin() noexcept { ++thread_mark().no_spin; }
NoSpin::~NoSpin() { --thread_mark().no_spin; }

Signal::Spin Signal::spin(std::uint32_t epoch, Deadline::Clock::time_point until) noexcept {
  if (cpus_taken.fetch_add(1, std::memory_order_relaxed) >= cpus()) {
    cpus_taken.fetch_sub(1, std::memory_order_relaxed);
    return Spin::NoCpu;
  }
  // Counted before the first look at seq_ and uncounted after the last:
  // notify_one_lazy relies on it.
  spinning_.fetch_add(1, std::memory_order_seq_cst);
  bool notified = false;
  bool preempted = false;
  auto last = Deadline::Clock::now();
  for (unsigned round = 1; !notified; ++round) {
    for (int i = 0; i < 64 && !notified; ++i) {
      notified = seq_.load(std::memory_order_acquire) != epoch;
      cpu_relax();
    }
    if (notified) break;
    auto now = Deadline::Clock::now();
    preempted = now - last > kMaxSpin;  // a round is a few µs when the CPU stays ours
    if (preempted || now >= until) break;
    last = now;
    // Our count of busy threads misses threads the engine does not know (a
    // caller submitting tasks): now and then, let one that waits for this CPU run.
    if (round % 4 == 0) sched_yield();
  }
  spinning_.fetch_sub(1, std::memory_order_seq_cst);
  cpus_taken.fetch_sub(1, std::memory_order_relaxed);
  ThreadMark& mark = thread_mark();
  if (preempted) {
    mark.backoff = std::min(std::max(2 * mark.backoff, kFirstBackoff), kMaxBackoff);
    mark.spin_again = Deadline::Clock::now() + mark.backoff;
  } else {
    mark.backoff /= 2;  // (one lucky spin on a loaded machine must not end it)
  }
  if (!notified) notified = seq_.load(std::memory_order_acquire) != epoch;
  return notified ? Spin::Notified : Spin::TimedOut;
}

WaitResult Signal::wait(std::uint32_t epoch, const Deadline& deadline,
                        bool interruptible) noexcept {
  WaitHook* hook = interruptible ? WaitHook::current() : nullptr;
  if (hook && !hook->enter(*this, epoch, deadline.is_never())) return WaitResult::Interrupted;
  ThreadMark& mark = thread_mark();
  WaitingMark waiting(mark);
  // When the sleep ends (max(): no limit). A plain time point, not an optional:
  // valgrind reads an empty optional's payload in the optimised comparisons.
  bool timed = !deadline.is_never();
  Deadline::Clock::time_point sleep_until =
      timed ? *deadline.when() : Deadline::Clock::time_point::max();
  bool signal_check = false;
  auto now = Deadline::Clock::now();
  if (!std::exchange(mark.skip_spin, false) && !mark.no_spin && now >= mark.spin_again) {
    auto until = std::min(now + kMaxSpin, sleep_until);
    Spin spun = spin(epoch, until);
    if (spun == Spin::Notified) {
      if (hook && hook->leave()) return WaitResult::Interrupted;
      return WaitResult::Ready;
    }
    // A signal that arrived while this thread spun interrupted no system call:
    // nothing would tell the futex sleep below about it. So an interruptible
    // wait that spun on the main thread (the one whose signals Python handles)
    // sleeps at most kSignalCheck, then reports Interrupted; its caller runs the
    // signal handlers (Ctrl-C) and waits again, this time without spinning and
    // for as long as it must: one look, not a polling loop.
    if (interruptible && mark.main_thread && spun == Spin::TimedOut) {
      auto check = Deadline::Clock::now() + kSignalCheck;
      if (check < sleep_until) {
        sleep_until = check;
        timed = signal_check = true;
      }
    }
  }
  waiters_.fetch_add(1, std::memory_order_seq_cst);
  WaitResult result = WaitResult::Ready;
  const timespec abs = timed ? to_timespec(sleep_until) : timespec{};
  while (seq_.load(std::memory_order_seq_cst) == epoch) {
    long rc = futex(&seq_, FUTEX_WAIT_BITSET, epoch, timed ? &abs : nullptr);
    if (rc == 0) break;          // woken (maybe spuriously: the caller re-checks its condition)
    if (errno == EAGAIN) break;  // notified before we slept
    if (errno == ETIMEDOUT) {
      result = signal_check ? WaitResult::Interrupted : WaitResult::Timeout;
      mark.skip_spin = signal_check;
      break;
    }
    if (errno == EINTR && interruptible) {
      result = WaitResult::Interrupted;
      break;
    }
  }
  waiters_.fetch_sub(1, std::memory_order_seq_cst);
  if (hook && hook->leave()) result = WaitResult::Interrupted;
  return result;
}

void Signal::wake(int count) noexcept {
  seq_.fetch_add(1, std::memory_order_seq_cst);
  if (waiters_.load(std::memory_order_seq_cst) != 0) {
    futex(&seq_, FUTEX_WAKE, static_cast<std::uint32_t>(count), nullptr);
  }
}

void Signal::notify_one() noexcept { wake(1); }

void Signal::notify_one_lazy() noexcept {
  seq_.fetch_add(1, std::memory_order_seq_cst);
  // A spinner reads seq_ until it stops spinning, and reads it once more before
  // it sleeps: seeing it counted here, after the increment, means it will see
  // the increment.
  if (spinning_.load(std::memory_order_seq_cst) != 0) return;
  if (waiters_.load(std::memory_order_seq_cst) != 0) futex(&seq_, FUTEX_WAKE, 1, nullptr);
}

void SpinMutex::lock_contended() noexcept {
  // Spin while the holder finishes (a few hundred nanoseconds at most)...
  for (int i = 0; i < 128; ++i) {
    cpu_relax();
    if (state_.load(std::memory_order_relaxed) == 0 && try_lock()) return;
  }
  // ... then sleep: state 2 tells unlock() that somebody may be asleep.
  while (state_.exchange(2, std::memory_order_acquire) != 0)
    futex(&state_, FUTEX_WAIT_BITSET, 2, nullptr);
}

void SpinMutex::wake_one() noexcept { futex(&state_, FUTEX_WAKE, 1, nullptr); }

WaitHook*& WaitHook::current() noexcept {
  thread_local WaitHook* hook = nullptr;
  return hook;
}
void Signal::notify_all() noexcept { wake(INT_MAX); }

}  // namespace interpool
