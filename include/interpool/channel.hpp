// A multi-producer multi-consumer FIFO with an optional bound, blocking put/get
// with deadlines, and close. Waiting is on event counts (futex), never polling.
#pragma once

#include <cstddef>
#include <deque>
#include <interpool/signal.hpp>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace interpool {

namespace detail {

/// The items of a Channel: a FIFO in one growing circular buffer, so that a
/// put and a get allocate and free nothing (a std::deque allocates a block
/// every few items in the putting thread and frees it in the getting one,
/// and those allocators' locks were the channel's main contention).
template <class T>
class Ring {
 public:
  bool empty() const noexcept { return count_ == 0; }
  std::size_t size() const noexcept { return count_; }
  T& front() noexcept { return *slots_[head_]; }

  /// Room for `n` more items without allocating again.
  void reserve_more(std::size_t n) {
    if (count_ + n > slots_.size()) grow(count_ + n);
  }
  void push_back(T&& item) {
    if (count_ == slots_.size()) grow();
    slots_[(head_ + count_) & (slots_.size() - 1)].emplace(std::move(item));
    if (++count_ > peak_) peak_ = count_;
  }
  void push_front(T&& item) {
    if (count_ == slots_.size()) grow();
    head_ = (head_ + slots_.size() - 1) & (slots_.size() - 1);
    slots_[head_].emplace(std::move(item));
    if (++count_ > peak_) peak_ = count_;
  }
  void pop_front() noexcept {
    slots_[head_].reset();
    head_ = (head_ + 1) & (slots_.size() - 1);
    if (--count_ == 0) emptied();
  }
  /// Every item, in order, moved out; the ring is empty after.
  std::deque<T> take_all() {
    std::deque<T> out;
    while (!empty()) {
      out.push_back(std::move(front()));
      pop_front();
    }
    return out;
  }
  /// Removes the items for which `drop` is true, keeping the order of the others.
  template <class Drop>
  void erase_if(Drop&& drop) {
    std::size_t n = count_;
    for (std::size_t i = 0; i < n; ++i) {
      T item = std::move(front());
      pop_front();
      if (!drop(item)) push_back(std::move(item));
    }
  }

 private:
  static constexpr std::size_t kFirst = 16;   // slots at the first put (a power of 2)
  static constexpr std::size_t kKeep = 1024;  // up to this many slots are kept when empty

  void grow(std::size_t at_least = 0) {
    std::size_t size = slots_.empty() ? kFirst : 2 * slots_.size();
    while (size < at_least) size *= 2;
    std::vector<std::optional<T>> bigger(size);
    for (std::size_t i = 0; i < count_; ++i)
      bigger[i] = std::move(slots_[(head_ + i) & (slots_.size() - 1)]);
    slots_.swap(bigger);
    head_ = 0;
  }
  // Empty again: keep the slots that the busiest moment since the last time
  // needed (a steady load reallocates nothing), give back what a burst left.
  void emptied() noexcept {
    if (slots_.size() > kKeep && slots_.size() > 4 * peak_) {
      std::vector<std::optional<T>>().swap(slots_);
      head_ = 0;
    }
    peak_ = 0;
  }

  std::vector<std::optional<T>> slots_;  // size 0 or a power of 2
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::size_t peak_ = 0;  // the most items at once since the ring was last empty
};

}  // namespace detail

/// Contract:
/// - put/get block until they can proceed, the deadline passes, the channel is
///   closed, or (interruptible waits only) a signal arrives;
/// - after close(), put fails with Closed; get drains what is left, then Closed;
/// - an item is moved out of the caller's variable only when put succeeds,
///   so nothing accepted is lost and nothing refused is consumed;
/// - size() is a snapshot: it may be stale as soon as it returns.
/// These methods never touch Python: callers holding a GIL release it around them.
template <class T>
class Channel {
 public:
  /// maxsize 0 means unbounded.
  explicit Channel(std::size_t maxsize = 0) : maxsize_(maxsize) {}
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  WaitResult put(T& item, const Deadline& deadline = {}, bool interruptible = false) {
    bool wake;
    for (;;) {
      std::uint32_t epoch;
      {
        std::lock_guard lock(mutex_);
        if (closed_) return WaitResult::Closed;
        if (maxsize_ == 0 || items_.size() < maxsize_) {
          items_.push_back(std::move(item));
          wake = getters_ != 0;
          break;
        }
        epoch = not_full_.epoch();
      }
      if (deadline.passed()) return WaitResult::Timeout;
      WaitResult r = not_full_.wait(epoch, deadline, interruptible);
      if (r == WaitResult::Interrupted) return pass_on(not_full_, r, /*for_put=*/true);
      // Ready or Timeout: look again, so that a last-moment slot is not missed.
    }
    // Only a getter that found the channel empty waits, and it counts itself in
    // getters_ before it does: with none, the notify (a write to the signal's
    // cache line, which spinning getters read) is saved.
    if (wake) not_empty_.notify_one_lazy();
    return WaitResult::Ready;
  }

  WaitResult get(T& out, const Deadline& deadline = {}, bool interruptible = false) {
    bool counted = false;  // this getter is in getters_
    bool pass = false;     // items are left and getters wait: wake one (see put)
    for (;;) {
      std::uint32_t epoch;
      {
        std::lock_guard lock(mutex_);
        if (counted) --getters_;
        counted = false;
        if (!items_.empty()) {
          pass = take_front(out);
          break;
        }
        if (closed_) return WaitResult::Closed;
        if (deadline.passed()) return WaitResult::Timeout;
        epoch = not_empty_.epoch();
        ++getters_;
        counted = true;
      }
      WaitResult r = not_empty_.wait(epoch, deadline, interruptible);
      if (r == WaitResult::Interrupted) {
        {
          std::lock_guard lock(mutex_);
          --getters_;
        }
        return pass_on(not_empty_, r, /*for_put=*/false);
      }
    }
    return took(pass);
  }

  /// get without waiting: Ready, Closed (closed and empty), or Timeout (empty).
  WaitResult try_get(T& out) {
    bool pass;
    {
      std::lock_guard lock(mutex_);
      if (items_.empty()) return closed_ ? WaitResult::Closed : WaitResult::Timeout;
      pass = take_front(out);
    }
    return took(pass);
  }

  /// Puts every item of `items` at once (one lock, one wake-up) into an unbounded
  /// channel; a bounded one takes them one by one. On Closed, or on Timeout for a
  /// bounded channel, the items not taken stay in `items` (from the front).
  WaitResult put_all(std::vector<T>& items, const Deadline& deadline = {}) {
    if (maxsize_ != 0) {
      std::size_t taken = 0;
      for (; taken < items.size(); ++taken) {
        WaitResult r = put(items[taken], deadline);
        if (r != WaitResult::Ready) {
          items.erase(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(taken));
          return r;
        }
      }
      items.clear();
      return WaitResult::Ready;
    }
    bool wake;
    {
      std::lock_guard lock(mutex_);
      if (closed_) return WaitResult::Closed;
      items_.reserve_more(items.size());  // all or none: nothing below allocates
      for (T& item : items) items_.push_back(std::move(item));
      wake = getters_ != 0 && !items.empty();
    }
    if (wake && items.size() == 1)
      not_empty_.notify_one();
    else if (wake)
      not_empty_.notify_all();
    items.clear();
    return WaitResult::Ready;
  }

  /// Gives back an item that get took, at the front, where it was: for a caller
  /// that could not use it (a Python item the getting interpreter cannot
  /// rebuild), so that nothing accepted is lost. It goes back whatever the bound
  /// (the channel may hold one item more than maxsize for a while) and also once
  /// the channel is closed. Waits for nothing.
  void put_back(T& item) {
    bool wake;
    {
      std::lock_guard lock(mutex_);
      items_.push_front(std::move(item));
      wake = getters_ != 0;
    }
    if (wake) not_empty_.notify_one();
  }

  /// Refuses further puts and wakes every waiter. Items already in stay gettable.
  void close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    not_empty_.notify_all();
    not_full_.notify_all();
  }

  /// Takes every item out at once (e.g. to cancel them).
  std::deque<T> drain() {
    detail::Ring<T> taken;
    {
      std::lock_guard lock(mutex_);
      std::swap(taken, items_);
    }
    not_full_.notify_all();
    return taken.take_all();
  }

  /// Visits each item under the lock; `fn` returns false to remove the item.
  template <class Fn>
  void retain(Fn&& fn) {
    {
      std::lock_guard lock(mutex_);
      items_.erase_if([&](T& item) { return !fn(item); });
    }
    not_full_.notify_all();
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return items_.size();
  }
  bool closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
  }
  std::size_t maxsize() const noexcept { return maxsize_; }

  /// The lock of the channel's own steps, for the engine's fork handling
  /// (held across a fork, so that a forked child finds it free).
  SpinMutex& fork_lock() const noexcept { return mutex_; }

 private:
  // A waiter that leaves because of a signal may have consumed a notify_one
  // meant for the condition it waited on; hand it on so no other waiter sleeps
  // through an item (or a free slot) that is there.
  // With mutex_ held and an item there: moves the first item to `out`; true if
  // items are left for getters that wait (one must be woken, see put()).
  bool take_front(T& out) {
    out = std::move(items_.front());
    items_.pop_front();
    return !items_.empty() && getters_ != 0;
  }
  // After take_front, the lock released: the wake-ups a get owes.
  WaitResult took(bool pass) {
    if (pass) not_empty_.notify_one_lazy();
    if (maxsize_ != 0) not_full_.notify_one();
    return WaitResult::Ready;
  }

  WaitResult pass_on(Signal& signal, WaitResult r, bool for_put) {
    bool ready;
    {
      std::lock_guard lock(mutex_);
      ready = for_put ? (maxsize_ == 0 || items_.size() < maxsize_) : !items_.empty();
    }
    if (ready) signal.notify_one();
    return r;
  }

  const std::size_t maxsize_;
  mutable SpinMutex mutex_;
  detail::Ring<T> items_;
  std::size_t getters_ = 0;  // getters waiting for an item (guarded by mutex_)
  bool closed_ = false;
  // Waiters spin reading a signal: each on a cache line of its own, away from
  // the lock and the items that putters and getters write.
  alignas(64) Signal not_empty_;
  alignas(64) Signal not_full_;
};

}  // namespace interpool
