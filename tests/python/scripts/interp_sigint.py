"""Blocks in a queue operation in the main thread until Ctrl-C (SIGINT).

Usage: python interp_sigint.py MODE, MODE one of
  get           q.get() on an empty queue
  get-timeout   q.get(timeout=60) on an empty queue
  put           q.put(x) on a full queue
  get-busy      q.get() while a sub-interpreter runs a loop in another thread

Prints "ready" when about to block. On KeyboardInterrupt raised by the blocking
call it prints "interrupted after S s", checks that the queue still works, prints
"queue ok", and exits with status 3. Exits with 1 if the call returned instead.
"""

import signal
import sys
import threading
import time

from interpool import interpreters

# A parent that ignores SIGINT (e.g. a shell's background job) passes that on: ask for
# the default Ctrl-C behaviour whatever the parent did.
signal.signal(signal.SIGINT, signal.default_int_handler)

mode = sys.argv[1]
q = interpreters.create_queue(1)
busy = None
if mode == "put":
    q.put("fills the queue")
elif mode == "get-busy":
    busy = interpreters.create()
    stop = interpreters.create_queue()
    busy.prepare_main(stop=stop)
    runner = threading.Thread(target=busy.exec, args=(
        "import time\nwhile stop.empty():\n    sum(range(1000))",))
    runner.start()

print("ready", flush=True)
start = time.monotonic()
try:
    if mode == "put":
        q.put("blocks")
    elif mode == "get-timeout":
        q.get(timeout=60)
    else:
        q.get()
except KeyboardInterrupt:
    print(f"interrupted after {time.monotonic() - start:.3f} s", flush=True)
else:
    print("returned without an interrupt", flush=True)
    sys.exit(1)

# The queue still works after the interrupted wait.
if mode == "put":
    assert q.get_nowait() == "fills the queue"
q.put("after")
assert q.get(timeout=5) == "after"
print("queue ok", flush=True)
if busy is not None:
    stop.put(True)
    runner.join()
    busy.close()
sys.exit(3)
