#include "core/worker.hpp"

#include <cxxabi.h>

#include <interpool/error.hpp>

namespace interpool {

Worker::Worker(Body body, OnFailure on_failure, std::unique_ptr<Worker> predecessor)
    : thread_([this, body = std::move(body), on_failure = std::move(on_failure),
               predecessor = std::move(predecessor)]() mutable {
        run(std::move(body), std::move(on_failure), std::move(predecessor));
      }) {}

Worker::~Worker() { join(); }

void Worker::run(Body body, OnFailure on_failure, std::unique_ptr<Worker> predecessor) {
  Interpreter interp;
  try {
    interp = Interpreter::create();
  } catch (const abi::__forced_unwind&) {
    throw;  // CPython ending this thread at finalization (while it took the main GIL)
  } catch (...) {
    failure_ = std::current_exception();
  }
  predecessor.reset();  // joins it (no thread state is attached here)
  if (failure_ && on_failure) on_failure(failure_);
  if (interp) {
    interpreter_id_ = interp.id();
    state_ = interp.state();
  }
  ready_.store(true);
  ready_signal_.notify_all();
  if (!interp) return;
  {
    Activation inside(interp);
    try {
      body(*this);
    } catch (const abi::__forced_unwind&) {
      throw;  // thread cancellation (e.g. CPython ending a thread at finalization) must go on
    } catch (...) {
      // The body reports its own failures; nothing else may escape a thread.
    }
  }
  state_ = nullptr;
  try {
    interp.close();
  } catch (...) {
    // Still in use by another thread: Interpreter leaves it rather than crash.
  }
}

void Worker::wait_ready() {
  for (;;) {
    std::uint32_t epoch = ready_signal_.epoch();
    if (ready_.load()) break;
    GilRelease unlocked;
    ready_signal_.wait(epoch, Deadline::never(), false);
  }
  if (failure_) std::rethrow_exception(failure_);
}

void Worker::join() {
  if (!thread_.joinable()) return;
  GilRelease unlocked;
  thread_.join();
}

}  // namespace interpool
