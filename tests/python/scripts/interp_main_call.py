"""interpreters.Interpreter.call() with functions defined in the __main__ script.

Usage: python interp_main_call.py MODE, MODE one of
  functions   module-level functions of this script (call, call_in_thread, kwargs,
              a function returning a module global, a queue argument)
  instance    an instance of a class of this script as an argument
  method      a bound method of an instance of a class of this script
  return      a function of this script returning an instance of a class of this script
  nested      a function of this script that calls another one in an interpreter of its own
  namespace   the sub-interpreter's __main__ after an instance crossed: its own names
              first, then those of this script

The sub-interpreter loads this file as __mp_main__: the guarded block below does
not run there, and module-level prints show how often the file was loaded.
"""

import sys

from interpool import interpreters

print(f"loaded as {__name__}", flush=True)
SCALE = 10


def work(x, y=1):
    return x * y * SCALE, __name__


def interpreter_id():
    return interpreters.get_current().id


def answer_on(q, value):
    q.put(("answer", value * SCALE))


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def norm1(self):
        return abs(self.x) + abs(self.y)


def norm1_of(p):
    return p.norm1()


def make_point(x, y):
    return Point(x, y)


def nested_call(x):
    inner = interpreters.create()
    try:
        return inner.call(work, x)
    finally:
        inner.close()


def main_view():
    """Runs in the sub-interpreter: what its __main__ shows."""
    import __main__

    return (__main__.SCALE, hasattr(__main__, "nothing_here"), "Point" in vars(__main__),
            __main__.Point is Point)


if __name__ == "__main__":
    mode = sys.argv[1]
    interp = interpreters.create()
    try:
        if mode == "functions":
            print("call:", interp.call(work, 6, y=7))
            print("runs there:", interp.call(interpreter_id) == interp.id)
            q = interpreters.create_queue()
            interp.call_in_thread(answer_on, q, 4).join()
            print("call_in_thread:", q.get(timeout=10))
            print("again:", interp.call(work, 1))
        elif mode == "instance":
            print("instance:", interp.call(norm1_of, Point(3, -4)))
        elif mode == "method":
            print("method:", interp.call(Point(3, -4).norm1))
        elif mode == "return":
            print("return:", interp.call(make_point, 3, -4).norm1())
        elif mode == "nested":
            print("nested:", interp.call(nested_call, 5))
        elif mode == "namespace":
            interp.prepare_main(SCALE=3)
            assert interp.call(norm1_of, Point(1, 2)) == 3
            print("namespace:", interp.call(main_view))
        else:
            raise SystemExit(f"unknown mode {mode}")
    finally:
        interp.close()
