"""Run as a script by test_executor_main.py: a function defined in __main__ sent
to workers, but the Executor is created WITHOUT an `if __name__ == "__main__":`
guard. A worker loading this file (as __mp_main__) reaches the Executor() line
again: interpool must refuse that with a RuntimeError that tells how to fix it,
and the parent must neither hang nor crash.
"""

import sys

import interpool


def cube(x):
    return x**3


print(f"loaded as {__name__}", file=sys.stderr, flush=True)
with interpool.Executor(2) as ex:
    print("results", list(ex.map(cube, range(4))), flush=True)
print("end of script", flush=True)
