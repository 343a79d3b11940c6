"""Tasks that need numpy, which refuses to load in an interpreter with its own GIL."""

import os
import time

import numpy as np


def total(n):
    return int(np.arange(n).sum())


def slow_total(n, seconds):
    time.sleep(seconds)
    return total(n)


def where_total(n):
    """(process id, total): tells where the task ran."""
    return os.getpid(), total(n)


def shared_and_state(key):
    """numpy on interpool.shared[key], and what the executor's initializer set."""
    import executor_tasks
    import interpool

    return total(interpool.shared[key]), executor_tasks.STATE
