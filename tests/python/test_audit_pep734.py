"""AUDIT (issue 14 review): a 3.14 `concurrent.interpreters` behaviour that
interpool does differently without docs/reference.md listing the difference
(its "Deliberate differences" section says "Everything else follows them").

In 3.14, `Interpreter.call()` runs a function that names no globals except
builtins (a "stateless" function: CPython's test_api.py,
test_globals_from_stateless_func) in the target interpreter's `__main__`: it
sees names bound there by `exec`/`prepare_main` through `globals()`, and its
`globals()[name] = value` binds in `__main__`. interpool runs such a function
by value with a namespace of its own: it sees None and its binding is lost.
Either the behaviour or the reference's list of differences is missing."""

from __future__ import annotations

from interpool import interpreters


def test_audit_stateless_function_sees_and_sets_the_interpreters_main():
    def set_global(name, value):
        globals()[name] = value

    def get_global(name):
        return globals().get(name)

    interp = interpreters.create()
    try:
        assert interp.call(get_global, "__name__") == "__main__"
        interp.exec("spam = True")
        assert interp.call(get_global, "spam") is True
        interp.call(set_global, "spam", 42)
        assert interp.call(eval, "spam") == 42
    finally:
        interp.close()
