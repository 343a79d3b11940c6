#include "core/worker.hpp"

#include <cxxabi.h>
#include <pthread.h>

#include <algorithm>
#include <interpool/error.hpp>
#include <mutex>
#include <vector>

namespace interpool {

namespace {

thread_local std::string this_worker_name;

// Where the OS shows thread names (top -H, ps -L, gdb, py-spy): the worker's.
// A name the OS refuses leaves the thread as it was: names only help to read.
void name_this_thread(const std::string& name) {
  if (name.empty()) return;
#if defined(__linux__)
  pthread_setname_np(pthread_self(), os_thread_name(name).c_str());
#elif defined(__APPLE__)
  pthread_setname_np(os_thread_name(name, 63).c_str());
#endif
}

bool is_utf8_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// The longest start of `text` that fits `size` bytes without splitting a character.
std::string_view utf8_head(std::string_view text, std::size_t size) {
  if (text.size() <= size) return text;
  while (size > 0 && is_utf8_continuation(text[size])) --size;
  return text.substr(0, size);
}

}  // namespace

std::string worker_thread_name(std::string_view prefix, std::size_t index) {
  return std::string(prefix.empty() ? "interpool" : prefix) + "_" + std::to_string(index);
}

std::string os_thread_name(std::string_view name, std::size_t limit) {
  if (name.size() <= limit) return std::string(name);
  // The index tells the workers apart: it stays whole, the prefix is cut.
  std::size_t mark = name.find_last_of('_');
  bool indexed = mark != std::string_view::npos && mark + 1 < name.size() &&
                 name.find_first_not_of("0123456789", mark + 1) == std::string_view::npos;
  if (!indexed || name.size() - mark >= limit) return std::string(utf8_head(name, limit));
  std::string_view suffix = name.substr(mark);
  return std::string(utf8_head(name.substr(0, mark), limit - suffix.size())) + std::string(suffix);
}

const std::string& Worker::current_thread_name() noexcept { return this_worker_name; }

Worker::Worker(Body body, OnFailure on_failure, std::unique_ptr<Worker> predecessor,
               std::string thread_name)
    : thread_([this, body = std::move(body), on_failure = std::move(on_failure),
               predecessor = std::move(predecessor), name = std::move(thread_name)]() mutable {
        run(std::move(body), std::move(on_failure), std::move(predecessor), std::move(name));
      }) {}

Worker::~Worker() { join(); }

void Worker::run(Body body, OnFailure on_failure, std::unique_ptr<Worker> predecessor,
                 std::string thread_name) {
  name_this_thread(thread_name);
  this_worker_name = std::move(thread_name);
  Interpreter interp;
  try {
    interp = Interpreter::create();
    interp.list_as_pool_worker();
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
  if (leave_to_threads_) {
    ThreadsLeft::keep(std::move(interp));
    return;
  }
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
