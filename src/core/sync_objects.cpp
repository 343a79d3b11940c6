// The synchronisation objects of interpool/sync.hpp.
//
// Each waits on an event count (Signal): read the epoch, check the condition,
// sleep only if no notify came since. State that one atomic cannot hold
// (RLock, Barrier) is guarded by a std::mutex that no thread holds while it
// sleeps.
#include <interpool/sync.hpp>
#include <limits>
#include <stdexcept>

#include "core/registry.hpp"

namespace interpool {

SyncObject::~SyncObject() { registry::remove(id_); }

std::shared_ptr<SyncObject> SyncObject::find(std::int64_t id) {
  return std::dynamic_pointer_cast<SyncObject>(registry::find(id));
}

namespace {

// Waits until `ready()` holds (it also takes what it waits for, e.g. the lock).
template <class Ready>
WaitResult wait_until(Signal& signal, const Deadline& deadline, bool interruptible,
                      Ready&& ready) noexcept {
  for (;;) {
    if (ready()) return WaitResult::Ready;
    std::uint32_t epoch = signal.epoch();
    if (ready()) return WaitResult::Ready;
    if (deadline.passed()) return WaitResult::Timeout;
    WaitResult w = signal.wait(epoch, deadline, interruptible);
    if (w == WaitResult::Interrupted) return w;
    if (w == WaitResult::Timeout) return ready() ? WaitResult::Ready : WaitResult::Timeout;
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Lock
// ---------------------------------------------------------------------------

std::shared_ptr<Lock> Lock::create() { return registry::make<Lock>(); }

bool Lock::try_acquire() noexcept {
  bool expected = false;
  return locked_.compare_exchange_strong(expected, true, std::memory_order_acquire,
                                         std::memory_order_relaxed);
}

WaitResult Lock::acquire(const Deadline& deadline, bool interruptible) noexcept {
  return wait_until(signal_, deadline, interruptible, [this] { return try_acquire(); });
}

bool Lock::release() noexcept {
  if (!locked_.exchange(false, std::memory_order_release)) return false;
  signal_.notify_one();
  return true;
}

// ---------------------------------------------------------------------------
// RLock
// ---------------------------------------------------------------------------

std::shared_ptr<RLock> RLock::create() { return registry::make<RLock>(); }

const std::shared_ptr<RLock>& environment_lock() {
  // Leaked on purpose: threads may still take it while static objects are destroyed.
  static const auto* lock = new std::shared_ptr<RLock>(RLock::create());
  return *lock;
}

bool RLock::try_acquire(const Owner& owner) noexcept {
  std::lock_guard lock(mutex_);
  if (depth_ == 0) {
    owner_ = owner;
    depth_ = 1;
    return true;
  }
  if (owner_ == owner) {
    ++depth_;
    return true;
  }
  return false;
}

WaitResult RLock::acquire(const Owner& owner, const Deadline& deadline,
                          bool interruptible) noexcept {
  return wait_until(signal_, deadline, interruptible, [&] { return try_acquire(owner); });
}

bool RLock::release(const Owner& owner) noexcept {
  {
    std::lock_guard lock(mutex_);
    if (depth_ == 0 || !(owner_ == owner)) return false;
    if (--depth_ > 0) return true;
    owner_ = Owner{};
  }
  signal_.notify_one();
  return true;
}

bool RLock::owned_by(const Owner& owner) const noexcept {
  std::lock_guard lock(mutex_);
  return depth_ > 0 && owner_ == owner;
}

bool RLock::locked() const noexcept {
  std::lock_guard lock(mutex_);
  return depth_ > 0;
}

std::size_t RLock::depth() const noexcept {
  std::lock_guard lock(mutex_);
  return depth_;
}

// ---------------------------------------------------------------------------
// Event
// ---------------------------------------------------------------------------

std::shared_ptr<Event> Event::create() { return registry::make<Event>(); }

void Event::set() noexcept {
  flag_.store(true, std::memory_order_release);
  signal_.notify_all();
}

void Event::clear() noexcept { flag_.store(false, std::memory_order_release); }

WaitResult Event::wait(const Deadline& deadline, bool interruptible) noexcept {
  return wait_until(signal_, deadline, interruptible, [this] { return is_set(); });
}

// ---------------------------------------------------------------------------
// Semaphore
// ---------------------------------------------------------------------------

std::shared_ptr<Semaphore> Semaphore::create(std::int64_t value, bool bounded) {
  if (value < 0) throw std::invalid_argument("semaphore initial value must be >= 0");
  return registry::make<Semaphore>(value, bounded);
}

bool Semaphore::try_acquire() noexcept {
  std::int64_t v = value_.load(std::memory_order_relaxed);
  while (v > 0)
    if (value_.compare_exchange_weak(v, v - 1, std::memory_order_acquire,
                                     std::memory_order_relaxed))
      return true;
  return false;
}

WaitResult Semaphore::acquire(const Deadline& deadline, bool interruptible) noexcept {
  return wait_until(signal_, deadline, interruptible, [this] { return try_acquire(); });
}

bool Semaphore::release(std::int64_t n) noexcept {
  if (n < 1) return false;
  std::int64_t v = value_.load(std::memory_order_relaxed);
  for (;;) {
    std::int64_t limit = bounded_ ? initial_ : std::numeric_limits<std::int64_t>::max();
    if (v > limit - n) return false;
    if (value_.compare_exchange_weak(v, v + n, std::memory_order_release,
                                     std::memory_order_relaxed))
      break;
  }
  if (n == 1)
    signal_.notify_one();
  else
    signal_.notify_all();
  return true;
}

// ---------------------------------------------------------------------------
// Barrier: threading.Barrier's states. Filling: threads arrive. Draining: the
// last arrived, those inside leave with Passed. Resetting: reset() while some
// waited, they leave with Broken. Broken: until reset(). Threads arriving while
// it drains or resets wait for those inside to leave first.
// ---------------------------------------------------------------------------

std::shared_ptr<Barrier> Barrier::create(std::size_t parties, double timeout) {
  if (parties < 1) throw std::invalid_argument("parties must be >= 1");
  return registry::make<Barrier>(parties, timeout);
}

void Barrier::leave(std::unique_lock<std::mutex>&) noexcept {
  --count_;
  if (count_ == 0 && (state_ == State::Draining || state_ == State::Resetting)) {
    state_ = State::Filling;
    signal_.notify_all();  // threads that arrived while it drained
  }
}

Barrier::Result Barrier::wait(Ticket& ticket, const Deadline& deadline,
                              bool interruptible) noexcept {
  std::unique_lock lock(mutex_);
  if (ticket.stage == Ticket::Stage::Entering) {
    // threading waits here without a timeout: those inside are about to leave.
    while (state_ == State::Draining || state_ == State::Resetting) {
      std::uint32_t epoch = signal_.epoch();
      lock.unlock();
      WaitResult w = signal_.wait(epoch, Deadline::never(), interruptible);
      lock.lock();
      if (w == WaitResult::Interrupted) return Result::Interrupted;
    }
    if (state_ == State::Broken) {
      ticket.stage = Ticket::Stage::Done;
      return Result::Broken;
    }
    ticket.index = count_++;
    if (count_ == parties_) {
      state_ = State::Draining;
      signal_.notify_all();
      ticket.stage = Ticket::Stage::Done;
      leave(lock);
      return Result::Passed;
    }
    ticket.stage = Ticket::Stage::Waiting;
  }
  if (ticket.stage != Ticket::Stage::Waiting) return Result::Broken;
  for (;;) {
    if (state_ != State::Filling) {
      Result r = state_ == State::Draining ? Result::Passed : Result::Broken;
      ticket.stage = Ticket::Stage::Done;
      leave(lock);
      return r;
    }
    if (deadline.passed()) {
      state_ = State::Broken;
      signal_.notify_all();
      ticket.stage = Ticket::Stage::Done;
      leave(lock);
      return Result::Broken;
    }
    std::uint32_t epoch = signal_.epoch();
    lock.unlock();
    WaitResult w = signal_.wait(epoch, deadline, interruptible);
    lock.lock();
    if (w == WaitResult::Interrupted && state_ == State::Filling) return Result::Interrupted;
  }
}

void Barrier::abandon(Ticket& ticket) noexcept {
  std::unique_lock lock(mutex_);
  if (ticket.stage == Ticket::Stage::Waiting) leave(lock);
  ticket.stage = Ticket::Stage::Done;
}

void Barrier::reset() noexcept {
  std::unique_lock lock(mutex_);
  if (count_ > 0) {
    if (state_ == State::Filling || state_ == State::Broken) state_ = State::Resetting;
  } else {
    state_ = State::Filling;
  }
  signal_.notify_all();
}

void Barrier::abort() noexcept {
  std::unique_lock lock(mutex_);
  state_ = State::Broken;
  signal_.notify_all();
}

bool Barrier::broken() const noexcept {
  std::unique_lock lock(mutex_);
  return state_ == State::Broken;
}

std::size_t Barrier::n_waiting() const noexcept {
  std::unique_lock lock(mutex_);
  return state_ == State::Filling ? count_ : 0;
}

// ---------------------------------------------------------------------------
// AtomicInt
// ---------------------------------------------------------------------------

std::shared_ptr<AtomicInt> AtomicInt::create(std::int64_t value) {
  return registry::make<AtomicInt>(value);
}

std::int64_t AtomicInt::fetch_add(std::int64_t n) {
  std::int64_t v = value_.load(std::memory_order_relaxed);
  std::int64_t sum;
  do {
    if (__builtin_add_overflow(v, n, &sum))
      throw std::overflow_error("the result does not fit in a 64-bit signed integer");
  } while (!value_.compare_exchange_weak(v, sum));
  return v;
}

}  // namespace interpool
