"""The public API used as the README shows it, checked with ``mypy --strict``
against the installed package's stubs (``make typecheck``).

assert_type pins what the stubs make of each call. misuses() holds calls that
the stubs must reject, each marked ``# type: ignore[code]``: under --strict an
ignore that silences nothing is itself an error. The file also runs (but not
misuses()): tests/python/test_typing_usage.py runs it as a script, so what it
claims holds at run time too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Iterator
from concurrent.futures import Future
from typing import Any, assert_type

import interpool
from interpool import Executor, interpreters


def count_loops(cell: int) -> int:
    grid = interpool.shared["grid"]  # sent once to each worker
    assert_type(grid, Any)
    return cell * len(grid)


def square(x: int) -> int:
    return x * x


def greet(name: str, *, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


def note_start(tag: str) -> None:
    interpool.shared.get(tag)


def fill_part(buf: interpool.SharedBuffer, part: int) -> None:
    view = buf.cast("q")
    view[part] = part + 1


def executor() -> None:
    with Executor(2, shared={"grid": "abc"}) as ex:
        assert_type(ex.max_workers, int)
        total = sum(ex.map(count_loops, [1, 2, 3]))
        assert_type(total, int)
        assert total == 18

        fut = ex.submit(square, 7)
        assert_type(fut.result(), int)
        assert isinstance(fut, Future)
        assert fut.interrupt() is False  # finished: nothing to interrupt
        assert fut.result(timeout=60) == 49
        assert ex.submit(greet, "you", punctuation="?").result() == "hello you?"

        it = ex.map_unordered(square, range(4), chunksize=2, buffersize=4)
        assert_type(it, Iterator[int])
        assert sorted(it) == [0, 1, 4, 9]
        assert list(ex.starmap(pow, [(2, 3)], timeout=30)) == [8]

    # ThreadPoolExecutor's positional order; ProcessPoolExecutor's max_tasks_per_child.
    with Executor(1, "typed", note_start, ("tag",), max_tasks_per_child=10) as ex:
        assert ex.submit(square, 4).result() == 16

    with Executor(task_timeout=5, fallback="process") as ex:
        try:
            ex.submit(square, 3).result()
        except TimeoutError:
            pass
        except interpool.TaskInterrupted as e:
            assert_type(e.__cause__, BaseException | None)


async def with_asyncio(ex: Executor) -> None:
    result = await ex.run(square, 12)
    assert_type(result, int)
    assert result == 144
    assert await asyncio.wait_for(ex.run(greet, "loop"), timeout=30) == "hello loop!"

    squares = ex.amap(square, range(5), chunksize=1)
    assert_type(squares, AsyncGenerator[int, None])
    assert [r async for r in squares] == [0, 1, 4, 9, 16]
    async with contextlib.aclosing(ex.amap_unordered(square, range(3))) as unordered:
        assert sorted([r async for r in unordered]) == [0, 1, 4]

    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(ex, square, 3) == 9


async def as_default_executor() -> None:
    loop = asyncio.get_running_loop()
    loop.set_default_executor(Executor(1, "default"))
    assert await loop.run_in_executor(None, square, 5) == 25
    assert await asyncio.to_thread(greet, "thread") == "hello thread!"


def one_interpreter() -> None:
    interp = interpreters.create()
    results = interpreters.create_queue()
    interp.prepare_main(grid="a\nb", results=results)
    interp.exec("results.put(len(grid.splitlines()))")
    assert results.get(timeout=1) == 2
    length = interp.call(len, "abc")
    assert_type(length, int)
    assert length == 3
    assert_type(interp.id, int)
    assert interp in interpreters.list_all()
    interp.close()

    q = interpreters.create_queue(maxsize=1, unbounditems=interpreters.UNBOUND)
    q.put_nowait(1)
    try:
        q.put(2, timeout=0.01)
    except interpreters.QueueFull:
        pass


def sharing() -> None:
    n = 4
    buf = interpool.SharedBuffer(8 * n)
    with Executor(2) as ex:
        list(ex.map(fill_part, [buf] * n, range(n)))
    assert sum(buf.cast("q")) == 10
    assert_type(buf[0], int)
    assert_type(buf[0:2], memoryview)
    assert bytes(memoryview(buf)[:1]) == b"\x01"
    assert_type(len(buf), int)

    lock = interpool.Lock()
    with lock:
        assert lock.locked()
    counter = interpool.AtomicInt()
    assert_type(counter.add(2), int)
    done = interpool.Event()
    done.set()
    assert done.wait(timeout=1)
    barrier = interpool.Barrier(1)
    assert barrier.wait() == 0


async def misuses(ex: Executor, interp: interpreters.Interpreter) -> None:
    """Never called: calls that the stubs reject."""
    ex.submit(square, "7")  # type: ignore[arg-type]
    ex.submit(greet, "you", exclamation="!")  # type: ignore[call-arg]
    await ex.run(square, 1.5)  # type: ignore[arg-type]
    total: str = sum(ex.map(square, [1]))  # type: ignore[assignment]
    Executor(fallback="threads")  # type: ignore[arg-type]
    Executor(shared=["grid"])  # type: ignore[arg-type]
    Executor(2, square)  # type: ignore[arg-type]
    interp.call(len, 3)  # type: ignore[arg-type]
    interp.exec(42)  # type: ignore[arg-type]
    interpreters.create_queue(unbounditems="keep")  # type: ignore[arg-type]
    interpool.Barrier(2, action=print)  # type: ignore[arg-type]
    interpool.AtomicInt().add(1.5)  # type: ignore[arg-type]
    interpool.SharedBuffer("8")  # type: ignore[arg-type]


def main() -> None:
    executor()
    with Executor(2) as ex:
        asyncio.run(with_asyncio(ex))
    asyncio.run(as_default_executor())
    one_interpreter()
    sharing()
    assert interpool.usable_cpus() >= 1
    print("usage: ok")


if __name__ == "__main__":
    main()
