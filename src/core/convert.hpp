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
};
void set_handle_codec(const HandleCodec& codec) noexcept;

/// Takes the Python exception that is set (clearing it) and captures it as data.
ErrorInfo capture_error();

/// str(obj) as UTF-8; never fails (falls back to a placeholder).
std::string to_utf8(PyObject* obj);

}  // namespace interpool
