#include <cerrno>
#include <climits>
#include <ctime>
#include <interpool/signal.hpp>

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

}  // namespace

WaitResult Signal::wait(std::uint32_t epoch, const Deadline& deadline,
                        bool interruptible) noexcept {
  WaitHook* hook = interruptible ? WaitHook::current() : nullptr;
  if (hook && !hook->enter(*this, epoch, deadline.is_never())) return WaitResult::Interrupted;
  waiters_.fetch_add(1, std::memory_order_seq_cst);
  WaitResult result = WaitResult::Ready;
  std::optional<timespec> abs;
  if (auto when = deadline.when()) abs = to_timespec(*when);
  while (seq_.load(std::memory_order_seq_cst) == epoch) {
    long rc = futex(&seq_, FUTEX_WAIT_BITSET, epoch, abs ? &*abs : nullptr);
    if (rc == 0) break;          // woken (maybe spuriously: the caller re-checks its condition)
    if (errno == EAGAIN) break;  // notified before we slept
    if (errno == ETIMEDOUT) {
      result = WaitResult::Timeout;
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

WaitHook*& WaitHook::current() noexcept {
  thread_local WaitHook* hook = nullptr;
  return hook;
}
void Signal::notify_all() noexcept { wake(INT_MAX); }

}  // namespace interpool
