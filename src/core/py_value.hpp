// Python objects <-> Values, the Python side of the boundary (C++ types <->
// Values are include/interpool/convert.hpp): Python objects to Values in the
// source interpreter, Values to new Python objects in the target interpreter.
// Callers hold the GIL of the interpreter they convert in.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <interpool/error.hpp>
#include <interpool/value.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace interpool {

struct ToValueOptions {
  /// Objects with no native form are pickled; false makes them NotShareable.
  bool allow_pickle = true;
  /// Nesting deeper than this is refused (a clear error instead of a crash).
  int max_depth = 1000;
};

namespace packed {
struct Reader;
}

namespace detail {
/// What a ToValue remembers from one value to the next (src/core/py_value.cpp).
struct ToValueMemory {
  /// An object that may be met again (see kOnePlace in py_value.cpp).
  struct Seen {
    /// A reference held until the converter is gone: no object freed meanwhile
    /// (by code that pickling runs) can leave its address to a new one.
    PyObject* object;
    /// Where its entry starts in the buffer.
    std::size_t offset;
    /// False while it is being written: met then, it is a cycle.
    bool done;
  };
  std::vector<Seen> seen;
  /// Open addressing over `seen`: position + 1, or 0 for a free slot.
  std::vector<std::uint32_t> slots;
  /// The crossing's buffer (src/core/packed.hpp), once a value needed one.
  std::shared_ptr<PackedData> data;
  /// The crossing's pickler (see PickleStream), once one was needed: the
  /// bound `dump` of a Pickler writing into `file` (an io.BytesIO).
  PyObject* file = nullptr;
  PyObject* dump = nullptr;
  /// The objects of the value being converted that have no flat form, held
  /// until they are pickled together when it is written.
  std::vector<PyObject*> pending;
  bool face_pickler = false;  ///< the pickler is the face's (which sends functions by value)

  ToValueMemory() = default;
  ToValueMemory(const ToValueMemory&) = delete;
  ToValueMemory& operator=(const ToValueMemory&) = delete;
  ~ToValueMemory();
  void forget();  ///< drops `seen` (and the references)
  void drop_pickler();
  void drop_pending();
};
}  // namespace detail

/// Converts Python objects to Values for one crossing: the arguments of one
/// call, one result, one queue item. A scalar alone becomes a plain Value;
/// anything else is written into the crossing's one flat buffer (a Packed
/// value, see src/core/packed.hpp), which C++ readers see as the usual tree.
/// An object met again, in the same value or in another one of the same
/// crossing, is written once and named by reference after, and ToPython
/// rebuilds it as one object (a C++ reader sees one Shared node): sharing is
/// kept, at a cost linear in the distinct objects. Objects compared by identity: containers,
/// objects that are pickled, engine objects, and str and bytes objects (a C++ reader sees those
/// two as plain values in each place); other scalars (int, float...) need none. The pickled
/// objects of a crossing are written by one pickler, one after another (PickleStream): an object
/// inside them is shared with the other pickled objects, not with the native part.
///
/// An entry is marked when its object is met again, and the buffer grows, so
/// a Value returned earlier may still change that way (to the same value)
/// until the converter is gone: give them to other threads after. Callers hold the GIL for the
/// converter's whole life. After an error it starts afresh.
class ToValue {
 public:
  explicit ToValue(const ToValueOptions& options = {}) : options_(options) {}

  /// Builds a Value from `obj`. Throws NotShareable, whose message names
  /// `where` (e.g. "argument 2"), the place inside it (e.g. "['grid'][3]") and
  /// the type; throws PythonErrorSet if Python raised something else (e.g.
  /// MemoryError).
  Value operator()(PyObject* obj, std::string_view where);

 private:
  bool pickle_pending();

  ToValueOptions options_;
  detail::ToValueMemory memory_;
};

/// to_value for one object alone: ToValue(options)(obj, where).
Value to_value(PyObject* obj, std::string_view where = "value", const ToValueOptions& options = {});

/// Rebuilds Values as new objects of the current interpreter, for one crossing:
/// every place that holds one Shared value gets the same object. Callers hold
/// the GIL for its whole life.
class ToPython {
 public:
  ToPython() = default;
  ToPython(const ToPython&) = delete;
  ToPython& operator=(const ToPython&) = delete;
  ~ToPython();

  /// A new reference, or nullptr with a Python exception set.
  PyObject* operator()(const Value& value);

 private:
  // fresh: a new object even for a shared value.
  PyObject* convert(const Value& value, bool fresh = false);
  // A Packed value: one pass over its entries. The others throw
  // packed::Damaged for a buffer that cannot be read.
  PyObject* unpack(const Packed& packed);
  PyObject* read(const PackedData& data, packed::Reader& r, int depth);
  PyObject* plain(const PackedData& data, packed::Reader& r, int depth);
  PyObject* shared(const Value& value);
  PyObject* container(const Value& value);  // a tuple, list, dict or set of a tree
  int tree_depth_ = 0;
  PyObject* items_to_tuple(const std::vector<Value>& items);
  PyObject* items_to_list(const std::vector<Value>& items);
  PyObject* items_to_set(const std::vector<Value>& items, bool frozen);
  PyObject* items_to_dict(const Dict& dict);

  // The object made for each shared value (keyed by the value's data, or by
  // where its entry is in a buffer), held.
  std::unordered_map<const void*, PyObject*> made_;

  // A Pickled object: one of a stream is loaded by the stream's one
  // unpickler, with its batch, after the batches before it (held until this
  // is gone).
  PyObject* unpickle(const Pickled& pickled);
  struct Unpickling {
    std::shared_ptr<const PickleStream> stream;
    std::vector<PyObject*> batches;  // the lists loaded, by batch; nullptr: not yet
    struct Run {
      PyObject* load = nullptr;  // the bound load of the run's unpickler, once needed
      std::size_t next = 0;      // the batch that `load` gives next
    };
    std::vector<Run> runs;
  };
  std::unordered_map<const PickleStream*, Unpickling> unpickling_;
};

/// to_python for one value alone: ToPython()(value).
PyObject* to_python(const Value& value);

/// How the face that defines Python types for engine objects converts them.
/// Process-wide plain function pointers: no Python object is kept.
struct HandleCodec {
  /// 1 and *out set: `obj` stands for an engine object; 0: it does not; -1: error set.
  int (*to_handle)(PyObject* obj, std::shared_ptr<Shareable>* out) = nullptr;
  /// A new reference standing for `object` in the current interpreter, or nullptr with an error
  /// set.
  PyObject* (*to_object)(const std::shared_ptr<Shareable>& object) = nullptr;
  /// The pickler for objects with no native form, as a new reference to a
  /// pickle.Pickler class of the current interpreter (called as
  /// `cls(file, protocol)`); nullptr (with no error set), or no function:
  /// pickle.Pickler.
  PyObject* (*pickler)() = nullptr;
};
void set_handle_codec(const HandleCodec& codec) noexcept;

/// Engine objects inside an object that to_value pickles travel beside the
/// pickle as handles (Pickled::handles), so that they stay alive until it is
/// loaded. While to_value pickles on this thread, a face's __reduce__ calls
/// capture_handle and gets the handle's index (-1 when no such pickling is
/// under way: a plain pickle.dumps); while to_python loads that pickle,
/// captured_handle(index) gives the object back (nullptr for a bad index or
/// outside such a load).
std::int64_t capture_handle(std::shared_ptr<Shareable> object);
std::shared_ptr<Shareable> captured_handle(std::size_t index) noexcept;

/// Takes the Python exception that is set (clearing it) and captures it as data.
ErrorInfo capture_error();
/// Raises `exc` (a reference this takes) again, with `note` added to it
/// (BaseException.add_note: tracebacks show it under the message).
void raise_with_note(PyObject* exc, const std::string& note);

/// str(obj) as UTF-8; never fails (falls back to a placeholder).
std::string to_utf8(PyObject* obj);

}  // namespace interpool
