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

import sys
import threading

from sigint_support import block_until_ctrl_c, default_ctrl_c

from interpool import interpreters

default_ctrl_c()

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

if mode == "put":
    block_until_ctrl_c(lambda: q.put("blocks"))
elif mode == "get-timeout":
    block_until_ctrl_c(lambda: q.get(timeout=60))
else:
    block_until_ctrl_c(q.get)

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
