"""interpool.SharedBuffer and memoryviews across interpreters: the buffer protocol
and its errors, typed views, crossing by reference (Executor arguments, results and
shared=, queues, prepare_main, call, pickled objects), writes seen everywhere, the
lifetime of the bytes after the interpreter that made them has closed, and how
other memoryviews cross (as copies).

Locks and the other synchronisation objects are in test_shared_sync.py.
"""

import array
import ctypes
import gc
import os
import pickle
import subprocess
import sys

import pytest

import interpool
from interpool import interpreters as I

import shared_tasks

pytestmark = pytest.mark.usefixtures("no_interpreter_left_open")


def address(buf):
    return ctypes.addressof(ctypes.c_char.from_buffer(buf))


# ---------------------------------------------------------------------------
# The object and its buffer protocol
# ---------------------------------------------------------------------------


def test_new_buffer_is_zero_filled_and_sized():
    buf = interpool.SharedBuffer(1000)
    assert len(buf) == buf.nbytes == 1000
    assert bytes(buf) == bytes(1000)
    assert isinstance(buf, interpool.SharedBuffer)
    assert "nbytes=1000" in repr(buf)


def test_empty_buffer():
    buf = interpool.SharedBuffer(0)
    assert len(buf) == 0
    assert bytes(buf) == b""
    assert memoryview(buf).nbytes == 0


@pytest.mark.parametrize("nbytes", [1, 7, 64, 4096, 100_003])
def test_bytes_are_aligned_to_64(nbytes):
    assert address(interpool.SharedBuffer(nbytes)) % 64 == 0


def test_bad_sizes():
    with pytest.raises(ValueError, match="nbytes must be >= 0"):
        interpool.SharedBuffer(-1)
    with pytest.raises(TypeError):
        interpool.SharedBuffer(1.5)
    with pytest.raises(TypeError):
        interpool.SharedBuffer()
    with pytest.raises((OverflowError, MemoryError)):
        interpool.SharedBuffer(2**70)


def test_memoryview_is_writable_bytes():
    buf = interpool.SharedBuffer(8)
    view = memoryview(buf)
    assert view.format == "B" and view.itemsize == 1 and view.shape == (8,)
    assert not view.readonly and view.c_contiguous
    assert view.obj is buf
    view[2:4] = b"hi"
    assert bytes(buf) == b"\0\0hi\0\0\0\0"


def test_typed_views():
    buf = interpool.SharedBuffer(24)
    ints = memoryview(buf).cast("i")
    assert len(ints) == 6
    ints[1] = -7
    assert buf.cast("i")[1] == -7
    table = buf.cast("d", [3, 1])
    assert table.shape == (3, 1) and table.format == "d"
    doubles = buf.cast("d")
    doubles[2] = 2.5
    assert table.tolist()[2] == [2.5]
    assert array.array("i", bytes(buf)[:8]).tolist() == [0, -7]


def test_indexing_and_slicing_share_the_bytes():
    buf = interpool.SharedBuffer(10)
    buf[0] = 255
    assert buf[0] == 255
    part = buf[2:6]
    assert isinstance(part, memoryview) and len(part) == 4
    part[:] = b"abcd"  # no copy: the buffer changes
    assert bytes(buf[2:6]) == b"abcd"
    assert bytes(buf)[2:6] == b"abcd"
    assert list(buf)[2:6] == list(b"abcd")
    buf[6:8] = b"xy"
    assert bytes(buf[6:8]) == b"xy"


def test_bad_indexing_raises_what_memoryview_raises():
    buf = interpool.SharedBuffer(8)
    view = memoryview(bytearray(8))
    for op in (lambda b: b[8], lambda b: b[-9]):
        with pytest.raises(IndexError) as ours:
            op(buf)
        with pytest.raises(IndexError) as theirs:
            op(view)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError) as ours:
        buf[0:2] = b"abc"
    with pytest.raises(ValueError) as theirs:
        view[0:2] = b"abc"
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError):
        buf[0] = 256
    with pytest.raises(TypeError):
        del buf[0]
    with pytest.raises(IndexError):
        buf.cast("q")[1]
    with pytest.raises(TypeError):
        buf.cast("i", [3])  # 8 bytes are not 3 ints
    assert bytes(buf[6:100]) == bytes(2)  # slices clip, as memoryview's do


def test_from_bytes_copies_any_bytes_like():
    data = bytearray(b"hello world")
    buf = interpool.SharedBuffer.from_bytes(data)
    data[0] = ord("j")
    assert bytes(buf) == b"hello world"
    assert bytes(interpool.SharedBuffer.from_bytes(b"")) == b""
    assert bytes(interpool.SharedBuffer.from_bytes(memoryview(b"abcdef")[::2])) == b"ace"
    ints = array.array("i", [1, 2, 3])
    assert interpool.SharedBuffer.from_bytes(ints).cast("i").tolist() == [1, 2, 3]
    with pytest.raises(TypeError):
        interpool.SharedBuffer.from_bytes("text")


def test_from_bytes_large():
    data = bytes(range(256)) * 8192  # 2 MiB: copied with the GIL released
    assert bytes(interpool.SharedBuffer.from_bytes(data)) == data


def test_equality_is_identity_of_the_bytes():
    a = interpool.SharedBuffer(4)
    b = interpool.SharedBuffer(4)
    assert a == a and a != b
    assert hash(a) != hash(b)
    assert pickle.loads(pickle.dumps(a)) == a


# ---------------------------------------------------------------------------
# Crossing: every interpreter sees the same bytes
# ---------------------------------------------------------------------------


def test_executor_argument_writes_are_seen_by_the_parent(make_executor):
    ex = make_executor(2)
    buf = interpool.SharedBuffer(16)
    assert ex.submit(shared_tasks.write, buf, 4, b"from worker").result(timeout=60) == 11
    assert bytes(buf[4:15]) == b"from worker"
    buf[0:3] = b"abc"
    assert ex.submit(shared_tasks.read, buf, 0, 3).result(timeout=60) == b"abc"


def test_result_made_in_a_worker_crosses_back(make_executor):
    ex = make_executor(1)
    buf = ex.submit(shared_tasks.make_buffer, b"made in a worker").result(timeout=60)
    assert isinstance(buf, interpool.SharedBuffer)
    assert bytes(buf) == b"made in a worker"
    buf[0:4] = b"MADE"
    assert ex.submit(shared_tasks.read, buf).result(timeout=60) == b"MADE in a worker"
    assert ex.submit(shared_tasks.echo, buf).result(timeout=60) == buf


def test_writes_in_one_worker_are_seen_by_all(make_executor):
    workers = 3
    ex = make_executor(workers, shared={"buf": interpool.SharedBuffer(8)})
    buf = interpool.shared["buf"]
    assert ex.submit(shared_tasks.write, buf, 0, b"12345678").result(timeout=60) == 8
    barrier = interpool.Barrier(workers)
    futures = [ex.submit(shared_tasks.read_shared_after, barrier, "buf") for _ in range(workers)]
    results = [f.result(timeout=60) for f in futures]
    assert [r[1] for r in results] == [b"12345678"] * workers
    assert len({r[0] for r in results}) == workers  # one task on each worker
    assert bytes(buf) == b"12345678"


def test_shared_mapping_buffer_sum(make_executor):
    n = 10_000
    data = interpool.SharedBuffer(8 * n)
    ints = data.cast("q")
    for i in range(n):
        ints[i] = i
    ex = make_executor(2, shared={"data": data})
    parts = [ex.submit(shared_tasks.shared_sum, i, i + 2500) for i in range(0, n, 2500)]
    assert sum(f.result(timeout=60) for f in parts) == n * (n - 1) // 2


def test_workers_fill_disjoint_parts(make_executor):
    ex = make_executor(2)
    n = 4000
    buf = interpool.SharedBuffer(8 * n)
    done = list(ex.map(shared_tasks.fill_ints, [buf] * 4, range(0, n, 1000),
                       range(1000, n + 1, 1000), [3] * 4))
    assert done == [1000] * 4
    assert buf.cast("q").tolist() == [3 * i for i in range(n)]


def test_queue_prepare_main_and_call(interp):
    buf = interpool.SharedBuffer(4)
    q = I.create_queue()
    interp.prepare_main(buf=buf, q=q)
    interp.exec("buf[0] = 1\nq.put(buf)")
    back = q.get(timeout=10)
    assert back == buf and bytes(buf) == b"\x01\0\0\0"
    q.put(buf)
    interp.exec("b2 = q.get(timeout=10)\nb2[1] = 2\nassert b2 == buf")
    assert bytes(buf) == b"\x01\x02\0\0"
    assert interp.call(shared_tasks.write, buf, 2, b"\x03\x04") == 2
    assert bytes(buf) == b"\x01\x02\x03\x04"


def test_object_holding_a_buffer_crosses_by_pickle_with_it(make_executor):
    ex = make_executor(1)
    buf = interpool.SharedBuffer(2)
    holder = shared_tasks.Holder(buf)
    buf[0] = 42
    assert ex.submit(shared_tasks.Holder.first, holder).result(timeout=60) == 42
    back = ex.submit(shared_tasks.holder, buf).result(timeout=60)
    assert isinstance(back, shared_tasks.Holder) and back.buf == buf


def test_pickled_handle_keeps_the_buffer_alive(interp):
    """The buffer inside a pickled object travels beside the pickle: it lives until
    the receiver has it, even if the sender dropped every reference first."""
    q = I.create_queue()
    interp.prepare_main(q=q)
    buf = interpool.SharedBuffer.from_bytes(b"kept")
    q.put(shared_tasks.Holder(buf))
    del buf
    gc.collect()
    interp.exec("h = q.get(timeout=10)\nq.put(bytes(h.buf))")
    assert q.get(timeout=10) == b"kept"


def test_plain_pickle_refers_by_id():
    buf = interpool.SharedBuffer.from_bytes(b"id")
    data = pickle.dumps(buf)
    assert pickle.loads(data) == buf
    del buf
    gc.collect()
    with pytest.raises(LookupError, match="no interpool object has id"):
        pickle.loads(data)


PICKLES_ELSEWHERE = """
import os, pickle, sys
import interpool
from interpool import interpreters

def loads_each(blobs):
    for name, blob in blobs:
        try:
            print(name, "found", pickle.loads(blob))
        except LookupError as e:  # QueueNotFoundError is one
            print(name, type(e).__name__, "another process" in str(e))

if sys.argv[1] == "make":
    objects = [("buffer", interpool.SharedBuffer(8)), ("lock", interpool.Lock()),
               ("queue", interpreters.create_queue())]
    blobs = [(name, pickle.dumps(obj)) for name, obj in objects]
    sys.stdout.buffer.write(pickle.dumps(blobs))
    sys.stdout.flush()
    # A forked child is another process too: the parent's pickles are refused.
    # (Not under AddressSanitizer, whose allocator may hang a forked child.)
    pid = -1 if "libasan" in os.environ.get("LD_PRELOAD", "") else os.fork()
    if pid == 0:
        sys.stdout = sys.stderr
        loads_each(blobs)
        os._exit(0)
    if pid > 0:
        os.waitpid(pid, 0)
else:
    # This process's own objects, with the ids the other process's had.
    mine = [interpool.SharedBuffer(8), interpool.Lock(), interpreters.create_queue()]
    loads_each(pickle.loads(sys.stdin.buffer.read()))
"""


def test_a_pickle_of_another_process_is_refused(tmp_path):
    # The pickle named the object by id alone: in another process it found
    # whatever object had that id there, even of another type, and the writes
    # meant for the parent's buffer went into the child's.
    script = tmp_path / "elsewhere.py"
    script.write_text(PICKLES_ELSEWHERE)
    made = subprocess.run([sys.executable, str(script), "make"], capture_output=True, timeout=90)
    assert made.returncode == 0, made.stderr
    forked = made.stderr.decode().splitlines()
    loaded = subprocess.run([sys.executable, str(script), "load"], input=made.stdout,
                            capture_output=True, timeout=90)
    assert loaded.returncode == 0, loaded.stderr
    expected = ["buffer LookupError True", "lock LookupError True",
                "queue QueueNotFoundError True"]
    assert loaded.stdout.decode().splitlines() == expected, loaded.stderr
    if "libasan" not in os.environ.get("LD_PRELOAD", ""):
        assert forked == expected


@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="AddressSanitizer ends the process on an allocation this large")
def test_a_buffer_too_large_to_allocate_says_its_size():
    # The MemoryError had no message.
    with pytest.raises(MemoryError, match=f"cannot allocate a SharedBuffer of {2**62} bytes"):
        interpool.SharedBuffer(2**62)


def test_captured_handle_outside_a_transfer_is_refused():
    with pytest.raises(RuntimeError, match="only interpool can load it"):
        interpool._interpool._shared_handle("capture", 0)


# ---------------------------------------------------------------------------
# Lifetime: the bytes live while any view does, in any interpreter
# ---------------------------------------------------------------------------


def test_buffer_outlives_the_interpreter_that_made_it(make_interp):
    maker = make_interp()
    q = I.create_queue()
    maker.prepare_main(q=q)
    maker.exec(
        "import interpool\n"
        "buf = interpool.SharedBuffer.from_bytes(b'made here')\n"
        "q.put(buf)\n"
        "q.put(memoryview(buf).cast('B')[5:9])\n"
    )
    maker.close()
    gc.collect()
    buf = q.get(timeout=10)
    view = q.get(timeout=10)
    assert bytes(buf) == b"made here"
    assert bytes(view) == b"here"
    view[0:2] = b"HE"
    assert bytes(buf) == b"made HEre"


def test_buffer_passed_on_after_its_maker_closed(make_interp):
    maker, user = make_interp(), make_interp()
    q = I.create_queue()
    maker.prepare_main(q=q)
    maker.exec("import interpool\nq.put(interpool.SharedBuffer.from_bytes(b'relay'))")
    user.prepare_main(q=q)
    user.exec("b = q.get(timeout=10)")
    maker.close()
    assert user.call(shared_tasks.echo, 1) == 1
    user.exec("q.put(bytes(b))")
    assert q.get(timeout=10) == b"relay"


def test_worker_keeps_the_buffer_after_the_parent_drops_it(make_executor):
    ex = make_executor(1)
    buf = interpool.SharedBuffer.from_bytes(b"worker holds it")
    assert ex.submit(shared_tasks.keep, buf).result(timeout=60) == 1
    buf_id = int(repr(buf).split("id=")[1].split()[0])
    del buf
    gc.collect()
    assert ex.submit(shared_tasks.kept_bytes).result(timeout=60) == b"worker holds it"
    assert ex.submit(shared_tasks.forget).result(timeout=60) is None
    # Every reference gone: the engine freed it, and its id names nothing.
    with pytest.raises(LookupError):
        interpool._interpool._shared_handle("id", buf_id)


def test_view_keeps_the_buffer_alive():
    buf = interpool.SharedBuffer.from_bytes(b"view")
    view = memoryview(buf)[1:3]
    del buf
    gc.collect()
    assert bytes(view) == b"ie"


# ---------------------------------------------------------------------------
# memoryviews: over a SharedBuffer shared, others copied
# ---------------------------------------------------------------------------


def test_memoryview_of_shared_buffer_is_shared_with_its_layout(make_executor):
    ex = make_executor(1)
    buf = interpool.SharedBuffer(32)
    ints = buf.cast("i")
    for i in range(8):
        ints[i] = i
    view = ints[1:7:2]  # offset 4, stride 8
    info = ex.submit(shared_tasks.view_info, view).result(timeout=60)
    assert info == {"type": "memoryview", "format": "i", "itemsize": 4, "shape": [3],
                    "strides": [8], "readonly": False, "items": [1, 3, 5],
                    "obj": "SharedBufferView"}
    assert ex.submit(shared_tasks.set_item, view, 2, -5).result(timeout=60)
    assert ints[5] == -5  # written in the worker, through the view that crossed


def test_memoryview_shapes_and_readonly_cross():
    buf = interpool.SharedBuffer(48)
    table = buf.cast("q", [2, 3])
    back = interpool._interpool.roundtrip(table)
    assert back.shape == (2, 3) and back.strides == (24, 8) and back.format == "q"
    back[1, 2] = 9
    assert table[1, 2] == 9
    assert back.obj.buffer == buf
    reverse = interpool._interpool.roundtrip(memoryview(buf)[::-1])
    assert reverse.strides == (-1,)
    buf[47] = 7
    assert reverse[0] == 7
    readonly = interpool._interpool.roundtrip(memoryview(buf).toreadonly())
    assert readonly.readonly
    with pytest.raises(TypeError):
        readonly[0] = 1
    assert bytes(interpool._interpool.roundtrip(memoryview(buf)[5:5])) == b""


def test_memoryview_of_other_objects_is_copied(make_executor):
    ex = make_executor(1)
    data = bytearray(b"abcdef")
    info = ex.submit(shared_tasks.view_info, memoryview(data)[1:5]).result(timeout=60)
    assert info["items"] == list(b"bcde") and info["format"] == "B" and not info["readonly"]
    assert ex.submit(shared_tasks.set_item, memoryview(data), 0, ord("z")).result(timeout=60)
    assert data == bytearray(b"abcdef")  # the worker wrote to its copy
    info = ex.submit(shared_tasks.view_info, memoryview(b"xyz")).result(timeout=60)
    assert info["readonly"] and info["items"] == list(b"xyz")
    doubles = memoryview(array.array("d", [0.5, 1.5, 2.5]))[::-2]
    info = ex.submit(shared_tasks.view_info, doubles).result(timeout=60)
    assert info["items"] == [2.5, 0.5] and info["format"] == "d" and info["strides"] == [8]


def test_released_memoryview_cannot_cross():
    view = memoryview(b"gone")
    view.release()
    with pytest.raises(ValueError, match="released"):
        interpool._interpool.roundtrip(view)


def test_is_shareable():
    assert I.is_shareable(interpool.SharedBuffer(1))
    assert I.is_shareable(memoryview(interpool.SharedBuffer(1)))
    assert I.is_shareable(memoryview(b"copied"))
    assert I.is_shareable([interpool.SharedBuffer(1), memoryview(bytearray(2))])


# ---------------------------------------------------------------------------
# The AoC day 6 grid as a SharedBuffer (docs/sharing.md)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["example", "generated"])
def test_day6_grid_in_a_shared_buffer(text, make_executor):
    from interpool.demo import day6

    grid = day6.parse(day6.EXAMPLE if text == "example" else day6.generate(40, seed=7))
    cells = interpool.SharedBuffer.from_bytes(grid.cells)  # parsed once, shared by all
    verdicts = interpool.SharedBuffer(len(grid.cells))     # workers mark the loop cells
    total = interpool.AtomicInt()
    todo = day6.candidates(grid)
    ex = make_executor(2)
    futures = [ex.submit(day6.mark_loops, cells, grid.width, grid.start, todo[i:i + 25],
                         verdicts, total) for i in range(0, len(todo), 25)]
    assert sum(f.result(timeout=120) for f in futures) == total.load() == day6.part2(grid)
    work = bytearray(grid.cells)
    expected = [i for i in todo if day6.loops(work, grid.width, grid.start, i)]
    assert [i for i, v in enumerate(verdicts) if v] == sorted(expected)
    assert bytes(cells) == grid.cells  # the shared grid was never written
    if text == "example":
        assert total.load() == 6
