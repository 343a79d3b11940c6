"""Worker-side functions of benchmarks/bench_shared.py.

interpool's workers import this module by name, the process pool's by pickle
reference; it stays light (nothing imported at module level). The leading
underscore keeps `make bench` from running it as a benchmark.
"""


def size(data):
    """The hand-off task: returns len(data) without touching the bytes."""
    return len(data)


def sum_slice(buf, start, stop):
    """Sum of the 64-bit ints [start, stop) of a buffer (SharedBuffer, shared memory, ...)."""
    return sum(memoryview(buf).cast("q")[start:stop])


def sum_shm(name, start, stop):
    """sum_slice over a multiprocessing.shared_memory block, attached by name."""
    from multiprocessing import shared_memory

    try:
        shm = shared_memory.SharedMemory(name, track=False)  # 3.13+: the parent owns it
    except TypeError:
        shm = shared_memory.SharedMemory(name)
    try:
        view = shm.buf.cast("q")
        try:
            return sum(view[start:stop])
        finally:
            view.release()
    finally:
        shm.close()
