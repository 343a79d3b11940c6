#include "core/task_outcome.hpp"

namespace interpool {

// ---------------------------------------------------------------------------
// Completions
// ---------------------------------------------------------------------------

void Completions::post(long long token, std::shared_ptr<TaskOutcome> task) {
  // Resolved on every way out: a post that fails (out of memory) must not keep
  // finish() from closing the channel, and its reader from ending.
  struct Resolve {
    Completions& sink;
    ~Resolve() { sink.resolved(); }
  } resolve{*this};
  Entry entry{token, std::move(task)};
  channel_.put(entry);
}

void Completions::resolved() {
  if (outstanding_.fetch_sub(1) == 1 && closing_.load()) channel_.close();
}

void Completions::finish() {
  closing_.store(true);
  if (outstanding_.load() == 0) channel_.close();
}

// ---------------------------------------------------------------------------
// TaskOutcome
// ---------------------------------------------------------------------------

Completion TaskOutcome::completion(std::shared_ptr<TaskOutcome> self) {
  return [self = std::move(self)](Outcome out) { self->complete(std::move(out)); };
}

Completion TaskOutcome::completion(std::shared_ptr<TaskOutcome> self,
                                   std::shared_ptr<Completions> sink, long long token) {
  self->sink_ = sink;
  self->token_ = token;
  // The sink is held until the outcome comes: the consumer may be gone by then.
  return [self = std::move(self), sink = std::move(sink), token](Outcome out) {
    if (self->complete_token(std::move(out))) sink->post(token, self);
  };
}

void TaskOutcome::complete(Outcome out) {
  {
    std::lock_guard lock(mutex_);
    outcome_ = std::move(out);
    done_ = true;
  }
  signal_.notify_all();
}

bool TaskOutcome::complete_token(Outcome out) {
  bool post;
  {
    std::lock_guard lock(mutex_);
    outcome_ = std::move(out);
    done_ = true;
    post = posted_ = takers_ == 0;
  }
  signal_.notify_all();
  return post;
}

bool TaskOutcome::done() const {
  std::lock_guard lock(mutex_);
  return done_;
}

bool TaskOutcome::claimed() const {
  std::lock_guard lock(mutex_);
  return claimed_;
}

bool TaskOutcome::cancel() {
  if (!control_->cancel()) return false;
  signal_.notify_all();  // wakes the takers: the outcome comes when a worker dequeues it
  return true;
}

WaitResult TaskOutcome::wait(const Deadline& deadline, bool or_cancelled, bool interruptible) {
  for (;;) {
    std::uint32_t epoch = signal_.epoch();
    if (done() || (or_cancelled && control_->state() == TaskControl::State::Cancelled))
      return WaitResult::Ready;
    if (deadline.passed()) return WaitResult::Timeout;
    WaitResult w = signal_.wait(epoch, deadline, interruptible);
    if (w == WaitResult::Interrupted) return w;
  }
}

void TaskOutcome::begin_take() {
  std::lock_guard lock(mutex_);
  ++takers_;
}

bool TaskOutcome::end_take(bool waited) {
  bool mine = false, handed = false, post = false;
  {
    std::lock_guard lock(mutex_);
    --takers_;
    if (done_ && !claimed_) {
      handed = !posted_;  // it came while takers waited: the sink never saw it
      if (waited) {
        mine = claimed_ = true;
      } else if (handed && takers_ == 0) {
        post = posted_ = true;  // given up: the outcome goes to the sink after all
      }
    }
  }
  std::shared_ptr<Completions> sink = sink_.lock();
  if (sink && post) sink->post(token_, shared_from_this());
  if (sink && mine && handed) sink->resolved();
  return mine;
}

bool TaskOutcome::claim() {
  std::lock_guard lock(mutex_);
  if (claimed_) return false;
  claimed_ = true;
  return true;
}

Outcome TaskOutcome::take_outcome() {
  std::lock_guard lock(mutex_);
  return std::move(outcome_);
}

}  // namespace interpool
