"""Run as a script by test_executor_main.py: classes and a function made at run
time under the `if __name__ == "__main__":` block (type(), exec), which the
workers' copy of this file (__mp_main__) never defines, and the classes that
pickle saves by what they are (type(None), ...). With the argument
"no-cloudpickle", as where cloudpickle is not installed.

Prints one JSON line: for each case, what the task returned, or "refused: ..."
(NotShareableError at submit), or "FAILED: ..." (any other error).
"""

import json
import sys

if sys.argv[1:] == ["no-cloudpickle"]:
    sys.modules["cloudpickle"] = None  # type: ignore[assignment]


def get_v(obj):
    return obj.v


def call_first(fns):
    return fns[0]()


def same(x):
    return repr(x)


# Made at run time outside the guard, which the workers' copy runs too: found
# there by name, as the same class.
def _make():
    global Thing

    class Thing:
        pass


_make()
globals()["Made"] = type("Made", (), {})


def is_own(obj):
    return type(obj) is globals()[type(obj).__name__]


if __name__ == "__main__":
    import typing

    import interpool

    Dyn = type("Dyn", (), {"v": 2})
    exec("class Exec:\n    v = 3\n\ndef exec_fn():\n    return 4\n")  # into __main__
    cases = {
        "Dyn": (get_v, Dyn()),
        # (3.12 cannot tell a class that exec made under the guard from one made
        # at run time outside it: found by name there, as before; guide, Limits.)
        **({"Exec": (get_v, globals()["Exec"]())} if sys.version_info >= (3, 13) else {}),
        "exec_fn": (call_first, [globals()["exec_fn"]]),
        "Thing": (is_own, globals()["Thing"]()),
        "Made": (is_own, globals()["Made"]()),
        "NoneType": (same, type(None)),
        "ellipsis": (same, type(...)),
        "NotImplementedType": (same, type(NotImplemented)),
        "Optional": (same, typing.Optional[int]),
    }
    out = {}
    with interpool.Executor(1) as ex:
        for name, (fn, arg) in cases.items():
            try:
                out[name] = ex.submit(fn, arg).result(timeout=60)
            except interpool.NotShareableError as e:
                out[name] = f"refused: {e}"
            except Exception as e:  # noqa: BLE001
                out[name] = f"FAILED: {type(e).__name__}: {e}"
    print(json.dumps(out))
