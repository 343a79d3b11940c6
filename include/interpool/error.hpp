// Errors raised by the engine, and exceptions captured inside an interpreter.
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace interpool {

/// Base of every error the engine throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A value cannot cross interpreters. what() names what and where: "cannot
/// share argument 2[0]['k'] (a 'socket' object) with another interpreter: it
/// does not pickle (...)". Its parts are kept as data, so that a face can name
/// the place in its own terms (with_place()) without reading the text.
class NotShareable : public Error {
 public:
  /// One step into a container: a position in a list or tuple (`index`), or,
  /// with `index` < 0, the step as text: a dict key ("['grid']"), " (a key)",
  /// " (an element)" of a set, or "..." where a deep path is cut.
  struct Step {
    long long index = -1;
    std::string text;
    friend bool operator==(const Step&, const Step&) = default;
  };

  /// `where`: the value given ("argument 2", "the result"); `path`: the steps
  /// from it to the bad object; `what`: that object ("a 'socket' object",
  /// "... nested 40 levels deep"); `reason`: why it cannot cross.
  NotShareable(std::string where, std::vector<Step> path, std::string what, std::string reason)
      : Error(describe(where, path, what, reason)),
        where_(std::move(where)),
        path_(std::move(path)),
        what_(std::move(what)),
        reason_(std::move(reason)) {}

  const std::string& where() const noexcept { return where_; }
  const std::vector<Step>& path() const noexcept { return path_; }
  const std::string& what_object() const noexcept { return what_; }
  const std::string& reason() const noexcept { return reason_; }

  /// The same error at another place: a face that sent a value inside one of
  /// its own containers names it as its user gave it.
  NotShareable with_place(std::string where, std::vector<Step> path) const {
    return NotShareable(std::move(where), std::move(path), what_, reason_);
  }

  friend bool operator==(const NotShareable& a, const NotShareable& b) {
    return a.where_ == b.where_ && a.path_ == b.path_ && a.what_ == b.what_ &&
           a.reason_ == b.reason_;
  }

  /// where + the steps: "argument 2[0]['k']".
  static std::string place(const std::string& where, const std::vector<Step>& path) {
    std::string out = where;
    for (const Step& step : path) {
      if (step.index < 0) {
        out += step.text;
        continue;
      }
      out += '[';
      out += std::to_string(step.index);
      out += ']';
    }
    return out;
  }

 private:
  static std::string describe(const std::string& where, const std::vector<Step>& path,
                              const std::string& what, const std::string& reason) {
    return "cannot share " + place(where, path) + " (" + what +
           ") with another interpreter: " + reason;
  }

  std::string where_;
  std::vector<Step> path_;
  std::string what_;
  std::string reason_;
};

/// An interpreter could not be created, entered or destroyed.
class InterpreterError : public Error {
 public:
  using Error::Error;
};

/// This process was forked while interpool had workers or interpreters alive.
/// A fork copies only the thread that called it: those workers and the threads
/// that ran the interpreters stayed in the parent, so nothing here can run them.
/// Pools and interpreters refuse all use in such a child, with this error.
class UsedAfterFork : public Error {
 public:
  using Error::Error;
};

/// A Value does not hold what a C++ type needs (`value.as<T>()`). The message
/// names both types and, inside containers, where: "cannot convert a Python
/// 'str' at [2]['x'] to long long", "cannot convert a Python 'int' to unsigned
/// char: 300 is out of range".
class ConversionError : public Error {
 public:
  ConversionError(std::string python_type, std::string cpp_type, std::string why = {},
                  std::string where = {})
      : Error(describe(python_type, cpp_type, why, where)),
        python_type_(std::move(python_type)),
        cpp_type_(std::move(cpp_type)),
        why_(std::move(why)),
        where_(std::move(where)) {}

  /// The Python type the Value holds ("str", "int", ...).
  const std::string& python_type() const noexcept { return python_type_; }
  /// The C++ type asked for ("long long", "std::vector<double>", ...).
  const std::string& cpp_type() const noexcept { return cpp_type_; }
  /// Where inside the converted value ("[2]['x']"); empty at the top.
  const std::string& where() const noexcept { return where_; }

  /// The same error seen one container further out: `step` ("[2]") goes first.
  ConversionError inside(const std::string& step) const {
    return ConversionError(python_type_, cpp_type_, why_, step + where_);
  }

 private:
  static std::string describe(const std::string& python_type, const std::string& cpp_type,
                              const std::string& why, const std::string& where) {
    std::string s = "cannot convert a Python '" + python_type + "'";
    if (!where.empty()) s += " at " + where;
    s += " to " + cpp_type;
    if (!why.empty()) s += ": " + why;
    return s;
  }

  std::string python_type_;
  std::string cpp_type_;
  std::string why_;
  std::string where_;
};

/// A Python exception is set in the current interpreter; callers propagate it.
class PythonErrorSet : public Error {
 public:
  PythonErrorSet() : Error("a Python exception is set") {}
};

/// An exception raised by Python code, captured as data in the interpreter that
/// raised it so that it can be rebuilt (or described) in another one.
struct ErrorInfo {
  std::string type_module;    ///< e.g. "builtins"
  std::string type_qualname;  ///< e.g. "ValueError"
  std::string message;        ///< str(exc)
  std::string traceback;      ///< traceback.format_exception(exc), joined
  std::string pickled;        ///< pickle.dumps(exc), empty if it does not pickle
  /// The extension module whose refusal of the interpreter caused the exception
  /// (an import of a module without sub-interpreter support, found anywhere in
  /// the exception's chain), e.g. "numpy._core._multiarray_umath"; else empty.
  std::string refused_module;
  /// The names of the threads a task started and left running when it
  /// returned, which is why it failed (a RuntimeError; the engine interrupted
  /// them and replaces the worker). The engine gives no message: each face
  /// words it.
  std::vector<std::string> threads_left;
  /// A value that could not cross (the task's result): where it was, as data,
  /// for a face to name it in its user's terms. Empty for other errors.
  std::optional<NotShareable> not_shareable;

  /// "module.qualname" (just the qualname for builtins).
  std::string type_name() const {
    return type_module.empty() || type_module == "builtins" ? type_qualname
                                                            : type_module + "." + type_qualname;
  }
  friend bool operator==(const ErrorInfo&, const ErrorInfo&) = default;
};

/// A task's exception seen from C++: what `future.get()` throws when the
/// Python function raised. what() is "ValueError: bad thing" (the type as
/// type_name() gives it); the worker's formatted traceback is kept.
class RemoteError : public Error {
 public:
  explicit RemoteError(ErrorInfo info) : RemoteError(worded(std::move(info)), nullptr) {}

  /// "ValueError", "json.decoder.JSONDecodeError": the module is left out for builtins.
  std::string type_name() const { return info_.type_name(); }
  /// str() of the exception.
  const std::string& message() const noexcept { return info_.message; }
  /// The traceback as Python prints it ("Traceback (most recent call last): ...").
  const std::string& traceback() const noexcept { return info_.traceback; }
  /// Everything captured, including the exception's pickle when it pickles.
  const ErrorInfo& info() const noexcept { return info_; }

 protected:
  RemoteError(std::string what, ErrorInfo info) : Error(std::move(what)), info_(std::move(info)) {}

 private:
  RemoteError(ErrorInfo info, std::nullptr_t)
      : Error(info.type_name() + ": " + info.message), info_(std::move(info)) {}
  // The message of an error the engine gives as data only.
  static ErrorInfo worded(ErrorInfo info) {
    if (info.message.empty() && !info.threads_left.empty()) {
      std::string names;
      for (const std::string& name : info.threads_left) names += (names.empty() ? "" : ", ") + name;
      info.message = "the task returned while " + std::to_string(info.threads_left.size()) +
                     " thread(s) it started still ran (" + names +
                     "); join them before the task returns (interpool interrupted them and "
                     "replaced the worker's interpreter)";
    }
    return info;
  }

  ErrorInfo info_;
};

/// A task imported an extension module that does not support sub-interpreters
/// with their own GIL (info().refused_module is set). what() names the package
/// and the way out, instead of the package's own text (numpy's speaks of a
/// bad install); type_name(), message() and traceback() are the exception's.
class IncompatibleModule : public RemoteError {
 public:
  explicit IncompatibleModule(ErrorInfo info)
      : RemoteError(describe(info.refused_module), info) {}  // (a copy: argument order)

  /// The extension module that refused ("numpy._core._multiarray_umath").
  const std::string& extension() const noexcept { return info().refused_module; }
  /// Its top-level package ("numpy").
  std::string package() const { return extension().substr(0, extension().find('.')); }

 private:
  static std::string describe(const std::string& extension) {
    return "cannot import '" + extension.substr(0, extension.find('.')) +
           "' in a worker interpreter: its extension module '" + extension +
           "' does not support sub-interpreters with their own GIL; run the code that needs "
           "it in the main interpreter or in another process";
  }
};

}  // namespace interpool
