#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/interpreter.hpp"
#include "core/pool.hpp"
#include "core/watchdog.hpp"

namespace interpool::testenv {

/// The engine suites are a face of their own: the class they give the engine
/// for interrupted tasks (any BaseException class will do).
inline PyObject* interruption_class() {
  return PyErr_NewException("testenv.Interrupted", PyExc_BaseException, nullptr);
}

/// Starts the embedded main interpreter, then detaches from it: each test
/// enters the interpreter it needs with an Activation.
class PythonEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    set_interruption_class(interruption_class);
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;
    PyConfig_SetBytesString(&config, &config.home, INTERPOOL_PYTHON_HOME);
    PyStatus status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) Py_ExitStatusException(status);
    // Test helper modules live next to the tests.
    PyRun_SimpleString("import sys; sys.path.insert(0, '" INTERPOOL_TEST_DATA "')");
    main_state_ = PyEval_SaveThread();
  }
  void TearDown() override {
    // As a Runtime does: the interpreters of workers that threads of a task
    // outlived are closed, or left to Python's finalization.
    Pool::shutdown_all();
    PyEval_RestoreThread(main_state_);
    Py_FinalizeEx();
  }

 private:
  PyThreadState* main_state_ = nullptr;
};

inline PyInterpreterState* main_interpreter() { return PyInterpreterState_Main(); }

/// Evaluates a Python expression in the current interpreter's __main__ (a new
/// reference; nullptr, with the error printed, on failure).
inline PyObject* eval(const std::string& expr) {
  PyObject* globals = PyModule_GetDict(PyImport_AddModule("__main__"));
  PyObject* r = PyRun_String(expr.c_str(), Py_eval_input, globals, globals);
  if (!r) PyErr_Print();
  return r;
}

/// The main interpreter's sys.path (which starts with the tests' data folder).
inline std::vector<std::string> main_sys_path() {
  Activation main(main_interpreter());
  std::vector<std::string> out;
  PyObject* path = PySys_GetObject("path");
  for (Py_ssize_t i = 0; i < PyList_Size(path); ++i)
    out.emplace_back(PyUnicode_AsUTF8(PyList_GetItem(path, i)));
  return out;
}

}  // namespace interpool::testenv
