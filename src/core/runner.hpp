// Running calls inside the current interpreter.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "core/pool.hpp"

namespace interpool {

/// Runs Calls in the interpreter the calling thread is in: resolves functions
/// by (module, qualname) once and caches them, rebuilds arguments, converts
/// the result or captures the exception.
/// Contract: created, used and destroyed inside one interpreter, with its GIL
/// held; it holds references of that interpreter only.
class Runner {
 public:
  Runner() = default;
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;
  ~Runner();

  /// Replaces sys.path; false with a Python error set on failure.
  bool set_sys_path(const std::vector<std::string>& entries);
  /// What becomes of the function's return value.
  enum class Result { Keep, Discard };
  /// Never throws: every failure becomes an Error outcome. With Discard (an
  /// initializer: its value is no one's), the outcome is Ok with None.
  Outcome run(const Call& call, Result result = Result::Keep);
  /// How many threads started with _thread or threading run in this interpreter
  /// now (not counting the one it was created on); -1 with a Python error set.
  Py_ssize_t threads_running();
  /// The last run failed with an exception that came up through a module's
  /// top-level code (an import, or exec): stopped there by an interruption,
  /// that module, and what it was setting up elsewhere, may be left half made.
  bool failed_in_module_code() const noexcept { return failed_in_module_code_; }

 private:
  /// The Error outcome of the exception set now (and failed_in_module_code_).
  Outcome failure();

  /// A borrowed reference to the function, cached for the Runner's life;
  /// nullptr with an error set.
  PyObject* resolve(const FunctionRef& ref);

  std::unordered_map<std::string, PyObject*> functions_;
  // The function of the previous call: a stream of tasks mostly calls one.
  const std::string* last_key_ = nullptr;
  PyObject* last_fn_ = nullptr;
  PyObject* thread_count_ = nullptr;  // _thread._count
  bool failed_in_module_code_ = false;
};

}  // namespace interpool
