/* The pieces of CPython's internal state the engine touches: the slot of the
   runtime that heads its list of interpreters (src/core/fork.cpp says why),
   and on 3.12.0-3.12.3 the list of argument parsers (below).
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

void interpool_keep_keyword_tuples(int forked);

/* CPython 3.12.0-3.12.3 (python/cpython#119213): an extension function called
   through Argument Clinic's keyword parser (keywords given, a count of
   arguments its fast path does not take, keyword-only parameters) keeps the
   names of its parameters in a static parser, as a tuple made by the
   interpreter that first needed it. Made by a sub-interpreter (its own
   allocator), that tuple is freed at finalization by the main interpreter's,
   which aborts the process ("free(): invalid size").
   Called with the main interpreter's GIL as the program ends (once the
   engine's interpreters are closed, and again as Python finalizes, after the
   interpreters left to their threads), and in a child forked while workers
   ran: each tuple a parser owns gets one more reference, so finalization
   leaves it alone (a few tuples kept to the end). 3.12.4 makes them in the
   main interpreter; 3.13 too. `forked`: the lock may have been held by a
   thread that the fork left behind, and this is the child's only thread.
   Assumes the layout of the 3.12 headers built against (CPython keeps it
   within 3.12.x); a list that does not look like parsers is left alone. */
void interpool_keep_keyword_tuples(int forked) {
#if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
  static PyObject* kept[4096]; /* reachable, for memory checkers, as far as it goes */
  static size_t n_kept = 0;
  static struct _PyArg_Parser* seen = NULL; /* parsers are added at the head */
  if (Py_Version >= 0x030C0400 || _PyRuntime.getargs.mutex == NULL) return;
  int locked = PyThread_acquire_lock(_PyRuntime.getargs.mutex, forked ? NOWAIT_LOCK : WAIT_LOCK);
  struct _PyArg_Parser* head = _PyRuntime.getargs.static_parsers;
  if (head == NULL || head->initialized == 1 || head->initialized == -1) {
    for (struct _PyArg_Parser* p = head; p != NULL && p != seen; p = p->next) {
      /* initialized == 1: the parser made its tuple (-1: a static one). */
      if (p->initialized == 1 && p->kwtuple != NULL && !_Py_IsImmortal(p->kwtuple)) {
        Py_INCREF(p->kwtuple);
        if (n_kept < sizeof(kept) / sizeof(kept[0])) kept[n_kept++] = p->kwtuple;
      }
    }
    seen = head;
  }
  if (locked) PyThread_release_lock(_PyRuntime.getargs.mutex);
#else
  (void)forked;
#endif
}
