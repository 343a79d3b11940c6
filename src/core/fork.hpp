// What a fork() leaves behind. A child process gets a copy of the memory but
// only the thread that forked: the engine's workers, its watchdogs and the
// threads inside its interpreters stay in the parent. A child forked while any
// of them was alive refuses all use of pools and interpreters (UsedAfterFork),
// instead of waiting for threads it does not have.
#pragma once

#include <interpool/error.hpp>
#include <string>
#include <string_view>

namespace interpool {

/// Counts one engine thread or interpreter as alive in this process, from
/// count() until release() or destruction; a default-made or moved-from token
/// counts nothing. The first count installs the fork handlers (watch_forks).
class ForkSensitive {
 public:
  ForkSensitive() noexcept = default;
  static ForkSensitive count() noexcept;
  ForkSensitive(ForkSensitive&& other) noexcept;
  ForkSensitive& operator=(ForkSensitive&& other) noexcept;
  ForkSensitive(const ForkSensitive&) = delete;
  ForkSensitive& operator=(const ForkSensitive&) = delete;
  ~ForkSensitive() { release(); }
  void release() noexcept;

 private:
  bool counted_ = false;
};

/// Installs the engine's pthread_atfork handlers, once per process. In a child
/// they record whether anything counted was alive at the fork, and keep
/// CPython's own after-fork clean-up from ending the child on the
/// sub-interpreters it cannot free there (see fork.cpp). Any thread, no GIL.
void watch_forks() noexcept;

/// True in a process forked (or forked from one forked) while an engine thread
/// or interpreter was alive.
bool forked_while_running() noexcept;

/// The UsedAfterFork message for `what` ("cannot submit a task").
std::string used_after_fork_message(std::string_view what);

/// Throws UsedAfterFork for `what` in such a process; does nothing elsewhere.
inline void refuse_if_forked(std::string_view what) {
  if (forked_while_running()) throw UsedAfterFork(used_after_fork_message(what));
}

}  // namespace interpool
