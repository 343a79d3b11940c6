/* The one piece of CPython's internal state the engine touches: the slot of
   the runtime that heads its list of interpreters (src/core/fork.cpp says why).
   C, because 3.12's internal headers do not compile as C++. */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <internal/pycore_runtime.h>
#include <string.h>

PyInterpreterState** interpool_interpreter_list_head(void);

PyInterpreterState** interpool_interpreter_list_head(void) {
#if PY_VERSION_HEX >= 0x030D0000
  /* 3.13 publishes the offsets of its runtime's fields for debuggers at the
     start of _PyRuntime: the running Python's layout, whatever the headers. */
  const _Py_DebugOffsets* offsets = &_PyRuntime.debug_offsets;
  if (memcmp(offsets->cookie, _Py_Debug_Cookie, sizeof(offsets->cookie)) != 0) return NULL;
  return (PyInterpreterState**)((char*)&_PyRuntime + offsets->runtime_state.interpreters_head);
#else
  return &_PyRuntime.interpreters.head;
#endif
}
