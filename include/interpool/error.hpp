// Errors raised by the engine, and exceptions captured inside an interpreter.
#pragma once

#include <stdexcept>
#include <string>

namespace interpool {

/// Base of every error the engine throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A value cannot cross interpreters; the message names what and where.
class NotShareable : public Error {
 public:
  using Error::Error;
};

/// An interpreter could not be created, entered or destroyed.
class InterpreterError : public Error {
 public:
  using Error::Error;
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

  /// "module.qualname" (just the qualname for builtins).
  std::string type_name() const {
    return type_module.empty() || type_module == "builtins" ? type_qualname
                                                            : type_module + "." + type_qualname;
  }
  friend bool operator==(const ErrorInfo&, const ErrorInfo&) = default;
};

/// A task's exception seen from C++.
class RemoteError : public Error {
 public:
  explicit RemoteError(ErrorInfo info)
      : Error(info.type_name() + ": " + info.message), info_(std::move(info)) {}
  const ErrorInfo& info() const noexcept { return info_; }

 private:
  ErrorInfo info_;
};

}  // namespace interpool
