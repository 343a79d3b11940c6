// A queue of Values shared between interpreters (and C++ threads).
#pragma once

#include <cstdint>
#include <interpool/channel.hpp>
#include <interpool/value.hpp>
#include <memory>

namespace interpool {

/// What happens to an item when the interpreter that put it is closed.
/// Items belong to the engine, so the default keeps them.
enum class Unbound : std::uint8_t {
  Keep,    ///< the item stays as it is (interpool's default)
  Marker,  ///< the item is replaced by the UNBOUND marker
  Error,   ///< getting the item raises ItemInterpreterDestroyed
  Remove,  ///< the item is removed
};

struct QueueItem {
  Value value;
  std::int64_t origin = -1;  ///< id of the interpreter that put it, -1 for none
  Unbound unbound = Unbound::Keep;
  bool origin_closed = false;  ///< set when `origin` closed and `unbound` is Marker or Error
};

/// A Channel of QueueItems with a process-wide id. Handles to it cross
/// interpreters; it lives while any handle does.
class Queue : public Shareable, public Channel<QueueItem> {
 public:
  /// Creates a queue and registers it under a new id. A maxsize <= 0 means
  /// unbounded; requested_maxsize() gives it back as given (Python's queues
  /// show a negative bound as it was asked for).
  static std::shared_ptr<Queue> create(std::int64_t maxsize = 0,
                                       Unbound default_unbound = Unbound::Keep);
  /// The live queue with this id, or nullptr.
  static std::shared_ptr<Queue> find(std::int64_t id);
  /// Applies the unbound policy of every item put by interpreter `interp_id`, in every queue.
  /// Interpreter::close calls it once the interpreter has ended.
  static void interpreter_closed(std::int64_t interp_id);
  /// Interpreter::close calls it before ending interpreter `interp_id`: until
  /// interpreter_closed(interp_id), interpreter_finalizing(interp_id) does nothing.
  static void interpreter_closing(std::int64_t interp_id);
  /// A face's notice that interpreter `interp_id` is being finalized, whoever
  /// ends it (the standard library, another extension, the runtime at exit) and
  /// past the point where it can put items: applies the unbound policies then,
  /// unless Interpreter::close is ending it (it applies them itself, once).
  static void interpreter_finalizing(std::int64_t interp_id);

  ~Queue() override;
  ObjectKind kind() const noexcept override { return ObjectKind::Queue; }
  std::int64_t id() const noexcept { return id_; }
  Unbound default_unbound() const noexcept { return default_unbound_; }
  /// The maxsize create() was given (maxsize() is the bound, 0 for none).
  std::int64_t requested_maxsize() const noexcept { return requested_maxsize_; }

  Queue(std::int64_t id, std::int64_t maxsize, Unbound default_unbound)
      : Channel<QueueItem>(maxsize > 0 ? static_cast<std::size_t>(maxsize) : 0),
        id_(id),
        default_unbound_(default_unbound),
        requested_maxsize_(maxsize) {}

 private:
  const std::int64_t id_;
  const Unbound default_unbound_;
  const std::int64_t requested_maxsize_;
};

}  // namespace interpool
