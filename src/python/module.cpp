#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyModuleDef_Slot slots[] = {
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
    {0, nullptr}};

static PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_interpool", nullptr, 0, nullptr, slots,
                                 nullptr, nullptr, nullptr};

PyMODINIT_FUNC PyInit__interpool() { return PyModuleDef_Init(&module_def); }
