"""Advent of Code 2024, day 6: the guard walk.

A guard on a grid walks up, turning right at each ``#``, until it leaves the
grid. Part 1 counts the cells it visits. Part 2 counts the cells where one new
obstruction makes it walk in a loop forever (never the start cell); each
candidate (a cell of the part-1 path) is an independent task, which is what
the study runs in parallel, with the grid sent once to each worker through
``Executor(shared={"grid": text})``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import interpool

OPEN, WALL, OUTSIDE = 0, 1, 2


class GridError(ValueError):
    """A grid text that is not a day 6 puzzle input; says where.

    `line` and `column` (1-based, None when the problem has no place, e.g. a
    guard that never leaves) also start the message: "line 3, column 7: ...".
    """

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        self.line = line
        self.column = column
        if line is not None:
            message = f"line {line}, column {column}: {message}"
        super().__init__(message)


@dataclass(frozen=True)
class Grid:
    """A parsed grid, padded with an OUTSIDE ring so walks need no bounds checks."""

    rows: int
    cols: int
    cells: bytes  # (rows + 2) x (cols + 2), row-major: OPEN, WALL or OUTSIDE
    start: int    # padded index of the guard

    @property
    def width(self) -> int:
        return self.cols + 2

    def position(self, index: int) -> tuple[int, int]:
        """(row, col) on the unpadded grid, 0-based."""
        return index // self.width - 1, index % self.width - 1


def parse(text: str) -> Grid:
    """Parses a puzzle input; GridError names the line and column of a problem."""
    # Lines end at "\n" (or "\r\n"), as editors count them: str.splitlines() also
    # splits at form feeds and other separators, which would shift line numbers.
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise GridError("the grid is empty: expected lines of '.', '#' and one '^'", 1, 1)
    cols = len(lines[0])
    if cols == 0:
        raise GridError("the first line is empty: expected '.', '#' and one '^'", 1, 1)
    width = cols + 2
    cells = bytearray([OUTSIDE]) * ((len(lines) + 2) * width)
    start = -1
    for r, line in enumerate(lines, 1):
        if len(line) != cols:
            # The column where this line and line 1 part: the first missing or extra cell.
            raise GridError(
                f"the line has {len(line)} columns, line 1 has {cols}: the grid must be rectangular",
                r, min(len(line), cols) + 1,
            )
        for c, ch in enumerate(line, 1):
            i = r * width + c
            if ch == ".":
                cells[i] = OPEN
            elif ch == "#":
                cells[i] = WALL
            elif ch == "^":
                if start >= 0:
                    row, col = divmod(start, width)
                    raise GridError(f"a second guard '^' (the first is at line {row}, column {col})", r, c)
                cells[i] = OPEN
                start = i
            else:
                raise GridError(f"unexpected character {ch!r} (expected '.', '#' or '^')", r, c)
    if start < 0:
        # No cell to point at: the place where the grid ended without one.
        raise GridError("no guard: the grid ends here without a '^'", len(lines), cols + 1)
    return Grid(len(lines), cols, bytes(cells), start)


def path(grid: Grid) -> list[int]:
    """Padded indices of the cells the guard visits, in first-visit order."""
    cells, width = grid.cells, grid.width
    steps = (-width, 1, width, -1)  # up, right, down, left
    pos, d = grid.start, 0
    seen = {pos: None}
    turns: set[tuple[int, int]] = set()
    while True:
        nxt = pos + steps[d]
        v = cells[nxt]
        if v == OPEN:
            pos = nxt
            seen[pos] = None
        elif v == WALL:
            if (pos, d) in turns:
                raise GridError("the guard never leaves this grid: part 1 has no answer")
            turns.add((pos, d))
            d = (d + 1) & 3
        else:
            return list(seen)


def part1(grid: Grid) -> int:
    return len(path(grid))


def loops(cells: bytearray, width: int, start: int, obstacle: int) -> bool:
    """True if the guard walks forever with one more wall at `obstacle`.
    `cells` is changed during the call and restored before it returns."""
    steps = (-width, 1, width, -1)
    cells[obstacle] = WALL
    try:
        pos, d = start, 0
        turns = set()
        while True:
            step = steps[d]
            nxt = pos + step
            v = cells[nxt]
            while v == OPEN:
                pos = nxt
                nxt += step
                v = cells[nxt]
            if v == OUTSIDE:
                return False
            state = pos * 4 + d
            if state in turns:
                return True
            turns.add(state)
            d = (d + 1) & 3
    finally:
        cells[obstacle] = OPEN


def candidates(grid: Grid) -> list[int]:
    """Cells where a new obstruction may change the walk: the path minus the start."""
    return [i for i in path(grid) if i != grid.start]


def part2(grid: Grid) -> int:
    """The sequential solver: every candidate in turn, in this interpreter."""
    cells = bytearray(grid.cells)
    return sum(loops(cells, grid.width, grid.start, i) for i in candidates(grid))


# -- in workers: the grid arrives once, through interpool.shared ---------------

_cache: tuple[str, Grid, bytearray] | None = None


def _parsed(text: str) -> tuple[Grid, bytearray]:
    """The grid of `text` and a private copy of its cells, parsed once per text."""
    global _cache  # noqa: PLW0603
    if _cache is None or (_cache[0] is not text and _cache[0] != text):
        grid = parse(text)
        _cache = (text, grid, bytearray(grid.cells))
    return _cache[1], _cache[2]


def _shared_grid() -> tuple[Grid, bytearray]:
    return _parsed(interpool.shared["grid"])


def check(obstacle: int) -> bool:
    """Task: does an obstruction at `obstacle` (padded index) make the guard loop?"""
    grid, cells = _shared_grid()
    return loops(cells, grid.width, grid.start, obstacle)


def count_loops(obstacles: list[int]) -> int:
    """Task: how many of `obstacles` make the guard loop (one task per batch)."""
    grid, cells = _shared_grid()
    return sum(loops(cells, grid.width, grid.start, i) for i in obstacles)


def count_loops_in(text: str, obstacles: list[int]) -> int:
    """Task: count_loops with the grid passed as an argument, for schedulers
    that send data with each task, such as Dask (docs/dask.md). An interpreter
    parses a grid once, however many tasks bring it."""
    grid = _parsed(text)[0]
    # A copy per task: loops() writes into the cells it walks, and tasks that
    # share an interpreter (threads of a Dask worker) must not share them.
    cells = bytearray(grid.cells)
    return sum(loops(cells, grid.width, grid.start, i) for i in obstacles)


# -- the same, with the grid in a SharedBuffer (docs/sharing.md) ---------------

_private: tuple[interpool.SharedBuffer, bytearray] | None = None


def mark_loops(cells: interpool.SharedBuffer, width: int, start: int, obstacles: list[int],
               verdicts: interpool.SharedBuffer, total: interpool.AtomicInt) -> int:
    """Task: for each obstacle that makes the guard loop, sets verdicts[obstacle] = 1
    and adds 1 to `total`; returns how many it found. `cells` (the padded grid),
    `verdicts` and `total` are shared by every worker; loops() writes into the grid
    it walks, so each worker walks a private copy, made once."""
    global _private  # noqa: PLW0603
    if _private is None or _private[0] != cells:
        _private = (cells, bytearray(cells))
    found = 0
    for i in obstacles:
        if loops(_private[1], width, start, i):
            verdicts[i] = 1
            found += 1
    total.add(found)
    return found


# -- generated inputs ----------------------------------------------------------


def generate(size: int = 130, seed: int = 2024, density: float = 0.06) -> str:
    """A grid shaped like real puzzle inputs: `size` x `size`, the guard walking
    thousands of cells before leaving (about 5000 at 130x130).

    Uniform random obstacles let the guard out after a few hundred cells, so the
    walk is built on purpose: an outward spiral of legs about 3 cells apart
    (jittered), then filler obstacles off the path, which leave the walk as it
    is and give part 2 its variety.
    """
    if size < 8:
        raise ValueError("size must be at least 8")
    rng = random.Random(seed)
    for _ in range(100):
        text = _spiral(size, rng, density)
        grid = parse(text)
        try:
            path(grid)
        except GridError:
            continue  # the jitter closed a loop: draw again
        return text
    raise RuntimeError("could not generate a grid the guard leaves")  # pragma: no cover


def _spiral(size: int, rng: random.Random, density: float) -> str:
    centre = size // 2
    jitter = max(1, size // 30)
    r, c = centre + rng.randint(-jitter, jitter), centre + rng.randint(-jitter, jitter)
    start = (r, c)
    walls: set[tuple[int, int]] = set()
    visited = {start}
    dr, dc = -1, 0
    k = 0
    while True:
        leg = 3 * (k // 2 + 1) + rng.randint(0, 1)
        stop = (r + dr * (leg + 1), c + dc * (leg + 1))
        if not (0 <= stop[0] < size and 0 <= stop[1] < size):
            break  # this leg leaves the grid
        for _ in range(leg):
            r, c = r + dr, c + dc
            visited.add((r, c))
        walls.add(stop)
        dr, dc = dc, -dr
        k += 1
    while 0 <= r < size and 0 <= c < size:  # the last leg, out of the grid
        visited.add((r, c))
        r, c = r + dr, c + dc
    rows = []
    for rr in range(size):
        row = []
        for cc in range(size):
            if (rr, cc) == start:
                row.append("^")
            elif (rr, cc) in walls or ((rr, cc) not in visited and rng.random() < density):
                row.append("#")
            else:
                row.append(".")
        rows.append("".join(row))
    return "\n".join(rows) + "\n"


EXAMPLE = """\
....#.....
.........#
..........
..#.......
.......#..
..........
.#..^.....
........#.
#.........
......#...
"""
