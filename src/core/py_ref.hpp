// An owning reference to a Python object, for the engine's own conversions.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <utility>

namespace interpool {

/// Owns one strong reference (or none) and drops it on every way out of its
/// scope, a C++ exception included. Contract: created and destroyed with the
/// GIL of the object's interpreter held.
struct Ref {
  PyObject* p = nullptr;
  Ref() = default;
  explicit Ref(PyObject* o) noexcept : p(o) {}
  Ref(const Ref&) = delete;
  Ref& operator=(const Ref&) = delete;
  Ref(Ref&& other) noexcept : p(other.release()) {}
  Ref& operator=(Ref&& other) noexcept {
    Ref old(std::exchange(p, other.release()));
    return *this;
  }
  ~Ref() { Py_XDECREF(p); }
  PyObject* get() const noexcept { return p; }
  PyObject* release() noexcept { return std::exchange(p, nullptr); }
  explicit operator bool() const noexcept { return p != nullptr; }
};

}  // namespace interpool
