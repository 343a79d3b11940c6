// The outcome of a task a face submitted, and who gets it: each outcome is
// delivered exactly once, to a thread waiting for that task (take) or to the
// one consumer of a stream of outcomes (Completions), whichever claims it.
#pragma once

#include <atomic>
#include <interpool/channel.hpp>
#include <interpool/pool.hpp>
#include <interpool/signal.hpp>
#include <memory>
#include <mutex>
#include <utility>

#include "core/task_control.hpp"

namespace interpool {

class TaskOutcome;

/// Outcomes of tasks submitted with a token, for one consumer thread to
/// collect in batches (the Python Executor's result thread). An outcome that
/// a thread waiting in TaskOutcome::take receives is never posted here.
/// Contract: every task counted with expect() is resolved exactly once (its
/// outcome posted, or taken, or its submission failed); after finish(), the
/// stream ends (next() returns Closed) once the posted outcomes are read and
/// every counted task is resolved.
class Completions {
 public:
  struct Entry {
    long long token = 0;
    std::shared_ptr<TaskOutcome> task;
  };

  /// A task is about to be submitted whose outcome comes here or to a taker.
  void expect() noexcept { outstanding_.fetch_add(1); }
  /// Its submission failed: nothing will come for it.
  void withdraw() { resolved(); }
  /// After the pool stops accepting tasks: ends the stream once all are resolved.
  void finish();
  /// The next posted outcome: Ready with `out` set; Timeout; Closed once the
  /// stream has ended; Interrupted (interruptible waits only). Posted entries
  /// whose outcome a taker claimed since are returned too: claim() each.
  WaitResult next(Entry& out, const Deadline& deadline, bool interruptible = false) {
    return channel_.get(out, deadline, interruptible);
  }

 private:
  friend class TaskOutcome;
  void post(long long token, std::shared_ptr<TaskOutcome> task);
  // One outcome resolved (posted, taken without being posted, or withdrawn).
  void resolved();

  Channel<Entry> channel_;
  std::atomic<long long> outstanding_{0};  // counted tasks whose outcome is not resolved
  std::atomic<bool> closing_{false};
};

/// One submitted task's control and outcome, shared by the face's task object
/// and the pool's Completion.
///
/// Without a token (completion(self)), the outcome stays readable once done
/// (outcome()) by any number of readers. With a token (completion(self, sink,
/// token)) it has two kinds of readers in the submitting interpreter: threads
/// waiting in take (begin_take ... end_take) and the consumer of `sink`. The
/// outcome goes to `sink` only if no taker waits when it comes (so the
/// consumer is not woken for nothing), or if the last taker gives up without
/// it; the first reader to claim it gets it, and it is claimed once.
class TaskOutcome : public std::enable_shared_from_this<TaskOutcome> {
 public:
  /// The Completion to submit the task with (outcome readable by all).
  static Completion completion(std::shared_ptr<TaskOutcome> self);
  /// The Completion of a task with a token: call sink->expect() first.
  static Completion completion(std::shared_ptr<TaskOutcome> self, std::shared_ptr<Completions> sink,
                               long long token);

  const std::shared_ptr<TaskControl>& control() const noexcept { return control_; }
  bool done() const;
  bool claimed() const;
  /// The outcome once done(), until it is claimed (it does not change meanwhile).
  const Outcome& outcome() const noexcept { return outcome_; }

  /// Cancels the task if no worker has started it, waking the takers (its
  /// Cancelled outcome comes only when a worker dequeues it). False if it started.
  bool cancel();

  /// Waits until the task is done or, with `or_cancelled`, cancelled before it
  /// started: Ready, Timeout, or Interrupted (an interruptible wait; nothing changed).
  WaitResult wait(const Deadline& deadline, bool or_cancelled, bool interruptible);

  /// A thread starts waiting to take the outcome (then wait(..., true, ...)).
  void begin_take();
  /// That thread stops waiting: `waited` false if its wait was given up (an
  /// interruption). True if the outcome is now this thread's (take_outcome()).
  /// A thread that gave up leaves the outcome to the others, or to the sink
  /// when none waits any more.
  bool end_take(bool waited);
  /// The consumer of the sink claims a posted outcome: false if a taker has it.
  bool claim();
  /// The outcome, moved out, by the reader that claimed it.
  Outcome take_outcome();

 private:
  void complete(Outcome out);
  // Ends a token task; true if the outcome must be posted (no taker waits).
  bool complete_token(Outcome out);

  std::shared_ptr<TaskControl> control_ = std::make_shared<TaskControl>();
  mutable std::mutex mutex_;  // guards what follows
  Signal signal_;
  bool done_ = false;
  Outcome outcome_;
  std::weak_ptr<Completions> sink_;
  long long token_ = 0;
  int takers_ = 0;        // threads between begin_take and end_take
  bool posted_ = false;   // sent to the sink
  bool claimed_ = false;  // taken by a taker or the sink's consumer
};

}  // namespace interpool
