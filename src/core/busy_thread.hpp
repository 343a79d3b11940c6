// For Signal's spinning (sync.cpp): the threads that keep a CPU busy (pool workers).
#pragma once

namespace interpool {

/// Marks the calling thread, for its life, as one that keeps a CPU busy except
/// while it waits on a Signal (a pool worker): waiters spin for a notify only
/// while such threads and the spinners leave a CPU free. Nests (the outermost
/// mark counts).
class BusyThread {
 public:
  BusyThread() noexcept;
  ~BusyThread();
  BusyThread(const BusyThread&) = delete;
  BusyThread& operator=(const BusyThread&) = delete;

 private:
  bool owner_ = false;
};

/// While alive, the calling thread's Signal waits sleep at once, without
/// spinning first: for a thread whose wake-up is not on anyone's critical
/// path (the Python executor's result thread), so that its spins never take
/// the CPU, or the spinning budget, of the threads that wait for a result.
class NoSpin {
 public:
  NoSpin() noexcept;
  ~NoSpin();
  NoSpin(const NoSpin&) = delete;
  NoSpin& operator=(const NoSpin&) = delete;
};

}  // namespace interpool
