"""Blocks in a wait of an interpool synchronisation object in the main thread until
Ctrl-C (SIGINT).

Usage: python shared_sigint.py MODE, MODE one of
  lock        Lock.acquire() of a held lock
  rlock       RLock.acquire() of a lock another thread holds
  event       Event.wait() of an unset event
  semaphore   Semaphore(0).acquire()
  barrier     Barrier(2).wait()

Prints "ready" when about to block. On KeyboardInterrupt raised by the blocking
call it prints "interrupted after S s", checks that the object still works, prints
"ok", and exits with status 3. Exits with 1 if the call returned instead.
"""

import sys
import threading

from sigint_support import block_until_ctrl_c, default_ctrl_c

import interpool

default_ctrl_c()

mode = sys.argv[1]
release_holder = threading.Event()
holder = None
if mode == "lock":
    obj = interpool.Lock()
    obj.acquire()
    block = obj.acquire
elif mode == "rlock":
    obj = interpool.RLock()
    held = threading.Event()

    def hold():
        with obj:
            held.set()
            release_holder.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    block = obj.acquire
elif mode == "event":
    obj = interpool.Event()
    block = obj.wait
elif mode == "semaphore":
    obj = interpool.Semaphore(0)
    block = obj.acquire
else:
    obj = interpool.Barrier(2)
    block = obj.wait

block_until_ctrl_c(block)

# The object still works after the interrupted wait.
if mode == "lock":
    obj.release()
    assert obj.acquire(timeout=5)
elif mode == "rlock":
    release_holder.set()
    holder.join()
    assert obj.acquire(timeout=5) and obj._is_owned()
elif mode == "event":
    obj.set()
    assert obj.wait(5)
elif mode == "semaphore":
    obj.release()
    assert obj.acquire(timeout=5)
else:
    # The interrupted waiter left: the barrier is whole and empty, as threading's.
    assert not obj.broken and obj.n_waiting == 0
    partner = threading.Thread(target=obj.wait, args=(5,))
    partner.start()
    assert obj.wait(5) in (0, 1)
    partner.join()
print("ok", flush=True)
sys.exit(3)
