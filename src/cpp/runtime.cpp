// The C++ face's Runtime: starting, attaching to and finalizing an embedded Python.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <interpool/error.hpp>
#include <interpool/pool.hpp>
#include <interpool/runtime.hpp>
#include <string>
#include <string_view>

#include "core/interpreter.hpp"
#include "core/pool.hpp"
#include "core/watchdog.hpp"

#ifndef INTERPOOL_PYTHON_HOME
#error "INTERPOOL_PYTHON_HOME (the build Python's sys.base_prefix) must be defined"
#endif

namespace interpool {

namespace {

// Turns a failed PyStatus into InterpreterError (clearing `config` first).
void check(PyStatus status, PyConfig& config, const char* step) {
  if (!PyStatus_Exception(status)) return;
  std::string why = std::string("cannot start Python (") + step + "): ";
  if (PyStatus_IsExit(status)) {
    why += "it asked to exit with code " + std::to_string(status.exitcode);
  } else {
    if (status.func) why += std::string(status.func) + ": ";
    why += status.err_msg ? status.err_msg : "unknown error";
  }
  PyConfig_Clear(&config);
  throw InterpreterError(why);
}

const char* env(const char* name) {
  const char* value = std::getenv(name);
  return value && *value ? value : nullptr;
}

// The exception class raised in an interrupted task of a C++ program, made in
// each worker: a BaseException, so that `except Exception:` in the task does
// not stop it. Its outcome reaches C++ as interpool::TaskInterrupted. Where
// the interpool package is importable, the Python face's class replaces it.
PyObject* interruption_class() {
  return PyErr_NewExceptionWithDoc("interpool.TaskInterrupted",
                                   "Raised in a task that interpool interrupts.",
                                   PyExc_BaseException, nullptr);
}

// Given to the engine as the library loads: a program may start Python itself
// and use a Pool without a Runtime.
[[maybe_unused]] const bool interruption_class_given =
    (set_interruption_class(interruption_class), true);

// A Completion of the program's that threw: the engine drops the exception
// (the worker and the other tasks go on); the program is told on stderr.
void report_completion_error(std::exception_ptr error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "interpool: a task's completion threw an exception, ignored: %s\n",
                 e.what());
  } catch (...) {
    std::fprintf(stderr,
                 "interpool: a task's completion threw a non-standard exception, ignored\n");
  }
}

[[maybe_unused]] const bool completion_error_reporter_given =
    (set_completion_error_reporter(report_completion_error), true);

}  // namespace

Runtime::Runtime(RuntimeOptions options) {
  if (Py_IsInitialized()) return;  // attach: someone else owns Python

  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  config.install_signal_handlers = 0;
  config.parse_argv = 0;
  config.site_import = options.import_site ? 1 : 0;

  std::string home = options.home;
  if (home.empty() && !env("PYTHONHOME")) home = INTERPOOL_PYTHON_HOME;
  if (!home.empty())
    check(PyConfig_SetBytesString(&config, &config.home, home.c_str()), config, "home");

  // pythonpath_env is what $PYTHONPATH sets: it lands in the configured module
  // search path, which every new interpreter copies (sys.path changes made in
  // the main interpreter later would not reach the workers).
  // (Appended in place: GCC 12's -Wrestrict warns, wrongly, at -O3 about
  // `"literal" + std::string` temporaries here.)
  std::string path;
  auto append_dir = [&path](std::string_view dir) {
    if (!path.empty()) path += ':';
    path += dir;
  };
  for (const std::string& p : options.module_paths) append_dir(p);
  if (const char* more = env("PYTHONPATH")) append_dir(more);
  if (!path.empty())
    check(PyConfig_SetBytesString(&config, &config.pythonpath_env, path.c_str()), config,
          "module search path");

  PyStatus status = Py_InitializeFromConfig(&config);
  check(status, config, "initialization");
  PyConfig_Clear(&config);

  // The extension, if the package is importable, teaches the engine (once per
  // process) how its objects (queues, shared buffers, locks) become Python
  // objects; each worker interpreter then imports it when one arrives there.
  if (PyObject* extension = PyImport_ImportModule("interpool._interpool"))
    Py_DECREF(extension);
  else
    PyErr_Clear();  // not importable: engine objects cannot cross (ints, strings, ... still do)

  owns_ = true;
  owner_ = std::this_thread::get_id();
  main_state_ = PyEval_SaveThread();  // workers and other threads may run now
}

Runtime::~Runtime() {
  if (!owns_) return;
  if (std::this_thread::get_id() != owner_) {
    std::fputs(
        "interpool: the Runtime was destroyed on another thread than the one that made it; "
        "Python is left running\n",
        stderr);
    return;
  }
  Pool::shutdown_all();  // workers end their interpreters before Python finalizes
  PyEval_RestoreThread(static_cast<PyThreadState*>(main_state_));
  keep_keyword_tuples_at_exit();
  Py_FinalizeEx();
}

bool Runtime::python_running() noexcept { return Py_IsInitialized(); }

std::string Runtime::python_version() { return Py_GetVersion(); }

std::string Runtime::default_home() { return INTERPOOL_PYTHON_HOME; }

}  // namespace interpool
