// The boundary: Python objects to Values in the source interpreter, Values to
// new Python objects in the target interpreter. Callers hold the GIL of the
// interpreter they convert in.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <interpool/error.hpp>
#include <interpool/value.hpp>
#include <memory>
#include <string>
#include <string_view>

namespace interpool {

struct ToValueOptions {
  /// Objects with no native form are pickled; false makes them NotShareable.
  bool allow_pickle = true;
  /// Nesting deeper than this is refused (a clear error instead of a crash).
  int max_depth = 1000;
};

/// Builds a Value from `obj`. Throws NotShareable, whose message names `where`
/// (e.g. "argument 2"), the place inside it (e.g. "['grid'][3]") and the type;
/// throws PythonErrorSet if Python raised something else (e.g. MemoryError).
Value to_value(PyObject* obj, std::string_view where = "value", const ToValueOptions& options = {});

/// Rebuilds `value` as a new object of the current interpreter. Returns a new
/// reference, or nullptr with a Python exception set.
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
  /// callable `dumps(obj, protocol)` of the current interpreter; nullptr (with
  /// no error set), or no function: pickle.dumps.
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

/// str(obj) as UTF-8; never fails (falls back to a placeholder).
std::string to_utf8(PyObject* obj);

}  // namespace interpool
