// The interpreters interpool created for users (the PEP 734 face), by id.
#pragma once

#include <cstdint>
#include <interpool/error.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/interpreter.hpp"

namespace interpool {

/// Thrown when an id names no interpreter (or one already closed).
class InterpreterNotFound : public InterpreterError {
 public:
  explicit InterpreterNotFound(std::int64_t id)
      : InterpreterError("interpreter " + std::to_string(id) +
                         " not found (closed or never created)") {}
};

/// Thrown by enter(id, alone=true) while code runs in the interpreter.
class InterpreterRunning : public InterpreterError {
 public:
  explicit InterpreterRunning(std::int64_t id)
      : InterpreterError("interpreter " + std::to_string(id) + " is running code") {}
};

/// Process-wide table of interpreters created with create(); holds no Python
/// object. Entering and closing go through it so that a close cannot race an
/// entry: close() refuses while any thread is inside, and enter() refuses
/// once a close has begun.
/// Contract:
/// - enter(id) works for interpreters in the table and for the main one; it
///   throws InterpreterNotFound for unknown ids and InterpreterError for an
///   interpreter being closed or not created here (made by the standard
///   library or another extension: entering those safely needs their owner);
/// - close(id) throws InterpreterError while the interpreter runs code (an
///   Activation is alive) or is being closed by another call,
///   InterpreterNotFound for unknown ids;
/// - an interpreter stays in the table, marked closing, until its close has
///   ended (Py_EndInterpreter may wait for its threads): contains() is true
///   meanwhile;
/// - a face may count the objects that stand for an interpreter (acquire /
///   release): when the count returns to 0 the interpreter is closed, unless it
///   runs code, is being closed, or is the caller's own (then it stays open
///   until close() or close_all()). One never counted is never closed so;
/// - in a process forked while engine threads or interpreters were alive, the
///   interpreters listed are the parent's: create(), enter() (but of the main
///   interpreter) and close() throw UsedAfterFork; release() and close_all()
///   leave them.
class InterpreterTable {
 public:
  /// Creates an isolated interpreter; returns its id.
  static std::int64_t create();
  /// Inside an interpreter of the table (or the main one) for a scope.
  class Entered {
   public:
    Entered(const Entered&) = delete;
    Entered& operator=(const Entered&) = delete;
    ~Entered();

   private:
    friend class InterpreterTable;
    Entered() = default;
    std::shared_ptr<void> entry_;  // keeps the table entry (and its interpreter) alive
    std::unique_ptr<Activation> activation_;
  };

  /// Enters interpreter `id` on the calling thread until the returned object dies.
  /// Waiting for the interpreter's GIL happens outside the table's lock.
  /// `alone`: throws InterpreterRunning if another thread is inside it (an
  /// interpreter of the table; the main one always runs code and is entered).
  static std::unique_ptr<Entered> enter(std::int64_t id, bool alone = false);
  static void close(std::int64_t id);
  /// Counts one more owner of interpreter `id`. False (nothing counted) for
  /// ids not in the table or being closed.
  static bool acquire(std::int64_t id);
  /// Counts one owner less; closes the interpreter if that was the last one
  /// (see above) and returns true if it did. Throws only what close() would
  /// throw once it has begun; false for ids not in the table.
  static bool release(std::int64_t id);
  /// True for interpreters of the table, including one being closed.
  static bool contains(std::int64_t id);
  /// True while a close() of this interpreter runs.
  static bool is_closing(std::int64_t id);
  static bool is_running(std::int64_t id);
  /// Ids of every interpreter of the process (ours and others), in creation order.
  static std::vector<std::int64_t> all_ids();
  /// The interpreter state with this id, ours or not, or nullptr.
  static PyInterpreterState* find_state(std::int64_t id);
  /// Closes every interpreter of the table not in use (at exit).
  static void close_all();
};

}  // namespace interpool
