"""A function of this script sent to a sub-interpreter by code WITHOUT an
`if __name__ == "__main__":` guard. The sub-interpreter loads this file (as
__mp_main__) to find `work`, reaches interpreters.create() again: interpool must
refuse that with a RuntimeError that says how to fix it (not recurse, not fail
on a missing module).
"""

import sys

from interpool import interpreters

print(f"loaded as {__name__}", file=sys.stderr, flush=True)


ANSWER = 1


def work():
    return ANSWER  # a global of the script: it runs in the script, loaded there


interp = interpreters.create()
try:
    print("result", interp.call(work), flush=True)
finally:
    interp.close()
print("end of script", flush=True)
