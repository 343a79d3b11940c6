// Engine waits that the task running on this thread can be pulled out of.
#pragma once

#include <cstdint>

namespace interpool {

class Signal;

/// Installed on a worker thread while it runs a task (thread-local). An
/// interruptible Signal::wait on that thread announces itself through it, so
/// that interrupting the task ends the wait with WaitResult::Interrupted
/// instead of leaving the task asleep where no exception can reach it.
/// Contract: enter() and leave() pair up on the waiting thread, the GIL
/// released; between them `signal` stays alive.
class WaitHook {
 public:
  /// Before sleeping on `signal` from `epoch`; `untimed`: with no deadline.
  /// False: the task is interrupted already, do not sleep.
  virtual bool enter(Signal& signal, std::uint32_t epoch, bool untimed) noexcept = 0;
  /// After waking. True: the task was interrupted meanwhile.
  virtual bool leave() noexcept = 0;

  /// The hook of this thread (nullptr outside a task).
  static WaitHook*& current() noexcept;

 protected:
  ~WaitHook() = default;
};

}  // namespace interpool
