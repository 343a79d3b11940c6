"""Run as a script by test_executor_main.py: functions defined in __main__, used
from an `if __name__ == "__main__":` block. Workers load this file as __mp_main__.

Prints one JSON line with what the workers returned; every load of this file
(in the parent and in each worker) writes a line "loaded as <name>" to stderr.
"""

import json
import sys

print(f"loaded as {__name__}", file=sys.stderr, flush=True)


def cube(x):
    return x**3


def whoami(_=None):
    """__name__ of this module as the interpreter that runs it sees it."""
    return __name__


class Scaler:
    """Defined in __main__: its instances cross by pickle, and workers find the
    class through __main__ -> __mp_main__."""

    def __init__(self, k):
        self.k = k

    def scale(self, x):
        return self.k * x

    @staticmethod
    def halve(x):
        return x / 2


if __name__ == "__main__":
    import interpool

    print("main block ran", file=sys.stderr, flush=True)
    with interpool.Executor(2) as ex:
        out = {
            "map": list(ex.map(cube, range(6))),
            "submit": ex.submit(cube, 7).result(),
            "names": sorted(set(ex.map(whoami, range(20), chunksize=1))),
            "bound": list(ex.map(Scaler(10).scale, [1, 2, 3])),
            "static": ex.submit(Scaler.halve, 9).result(),
        }
        made = ex.submit(Scaler, 3).result()  # made in a worker, of class __mp_main__.Scaler
        out["returned"] = [type(made) is Scaler, made.scale(5)]
    print(json.dumps(out), flush=True)
