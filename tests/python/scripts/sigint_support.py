"""What the Ctrl-C scripts share: the default SIGINT handler, and one blocking
call run until Ctrl-C with the protocol the tests read (support.ctrl_c)."""

import signal
import sys
import time


def default_ctrl_c():
    # A parent that ignores SIGINT (e.g. a shell's background job) passes that on:
    # ask for the default Ctrl-C behaviour whatever the parent did.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def block_until_ctrl_c(block):
    """Prints "ready", calls block(); on KeyboardInterrupt prints "interrupted
    after S s" and returns; if block() returns instead, exits with status 1."""
    print("ready", flush=True)
    start = time.monotonic()
    try:
        block()
    except KeyboardInterrupt:
        print(f"interrupted after {time.monotonic() - start:.3f} s", flush=True)
    else:
        print("returned without an interrupt", flush=True)
        sys.exit(1)
