"""The day 6 reference workload (interpool.demo.day6): the puzzle's example, the
generator, parse errors, and part 2 on interpool.Executor against the
sequential solver and against a naive solver written here from scratch."""

import io
import sys

import pytest

import interpool
from interpool.demo import day6, study, tasks

# ---------------------------------------------------------------------------
# An independent naive solver: sets of (row, col) walls and (row, col, dir)
# states, no code shared with day6.py.
# ---------------------------------------------------------------------------

MOVES = [(-1, 0), (0, 1), (1, 0), (0, -1)]  # up, right, down, left: a right turn is +1


def naive_solve(text):
    """(part 1, part 2) by plain simulation."""
    rows = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    height, width = len(rows), len(rows[0])
    walls = {(r, c) for r in range(height) for c in range(width) if rows[r][c] == "#"}
    (start,) = [(r, c) for r in range(height) for c in range(width) if rows[r][c] == "^"]

    def inside(cell):
        return 0 <= cell[0] < height and 0 <= cell[1] < width

    def walk(pos, d, extra=None):
        """The states (pos, dir) the guard goes through from (pos, d), and
        whether it loops (a state seen again where it turns)."""
        turned = set()
        states = []
        while True:
            states.append((pos, d))
            ahead = (pos[0] + MOVES[d][0], pos[1] + MOVES[d][1])
            if not inside(ahead):
                return states, False
            if ahead in walls or ahead == extra:
                if (pos[0], pos[1], d) in turned:
                    return states, True
                turned.add((pos[0], pos[1], d))
                d = (d + 1) % 4
            else:
                pos = ahead

    states, looped = walk(start, 0)
    assert not looped
    visited = {pos for pos, _ in states}
    # An obstruction at a cell changes nothing before the guard first steps
    # towards it: each try starts there (any loop repeats a later state).
    first_approach = {}
    for pos, d in states:
        ahead = (pos[0] + MOVES[d][0], pos[1] + MOVES[d][1])
        if inside(ahead) and ahead not in walls and ahead != start:
            first_approach.setdefault(ahead, (pos, d))
    assert set(first_approach) == visited - {start}
    part2 = sum(walk(pos, d, extra=cell)[1] for cell, (pos, d) in first_approach.items())
    return len(visited), part2


def executor_part2(text, workers=2):
    grid = day6.parse(text)
    with interpool.Executor(workers, shared={"grid": text}) as ex:
        return sum(ex.map(day6.check, day6.candidates(grid)))


# ---------------------------------------------------------------------------
# The puzzle's example
# ---------------------------------------------------------------------------


def test_example_part1_and_part2():
    grid = day6.parse(day6.EXAMPLE)
    assert (grid.rows, grid.cols) == (10, 10)
    assert day6.part1(grid) == 41
    assert day6.part2(grid) == 6


def test_example_naive_solver_agrees():
    assert naive_solve(day6.EXAMPLE) == (41, 6)


def test_example_part2_on_executor():
    assert executor_part2(day6.EXAMPLE) == 6


def test_example_obstructions_are_the_puzzles_six():
    # The six positions the puzzle statement shows (row, col), 0-based.
    grid = day6.parse(day6.EXAMPLE)
    cells = bytearray(grid.cells)
    looping = {grid.position(i) for i in day6.candidates(grid)
               if day6.loops(cells, grid.width, grid.start, i)}
    assert looping == {(6, 3), (7, 6), (7, 7), (8, 1), (8, 3), (9, 7)}
    assert cells == grid.cells  # loops() put the cell back


# ---------------------------------------------------------------------------
# Generated grids: Executor == sequential == naive
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("size,seed", [(20, 1), (24, 2), (30, 3), (33, 4), (40, 5)])
def test_small_generated_grids_all_solvers_agree(size, seed):
    text = day6.generate(size, seed)
    grid = day6.parse(text)
    sequential = day6.part2(grid)
    assert sequential > 0
    assert naive_solve(text) == (day6.part1(grid), sequential)
    assert executor_part2(text) == sequential


def test_130_grid_all_solvers_agree():
    text = day6.generate(130, 7)
    grid = day6.parse(text)
    sequential = day6.part2(grid)
    part1, naive_part2 = naive_solve(text)
    assert part1 == day6.part1(grid)
    assert naive_part2 == sequential
    assert executor_part2(text) == sequential


def test_count_loops_batches_match_check():
    text = day6.generate(30, 11)
    grid = day6.parse(text)
    candidates = day6.candidates(grid)
    expected = day6.part2(grid)
    with interpool.Executor(2, shared={"grid": text}) as ex:
        assert sum(ex.map(day6.count_loops, study.batches(candidates, 2))) == expected


def test_thread_and_process_tasks_match():
    text = day6.generate(30, 12)
    grid = day6.parse(text)
    tasks.init_worker(text)
    parts = study.batches(day6.candidates(grid), 3)
    assert sorted(i for p in parts for i in p) == sorted(day6.candidates(grid))
    assert len(parts) == 24
    assert sum(tasks.count_batch(p) for p in parts) == day6.part2(grid)


# ---------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [2024, 1, 99])
def test_generated_130_grid_has_a_long_exiting_walk(seed):
    text = day6.generate(130, seed)
    lines = text.splitlines()
    assert len(lines) == 130 and all(len(line) == 130 for line in lines)
    assert text.count("^") == 1
    assert set(text) <= set(".#^\n")
    grid = day6.parse(text)
    assert 3500 <= day6.part1(grid) <= 7000  # path() raises if the guard never leaves


def test_generator_same_seed_same_grid_other_seed_other_grid():
    assert day6.generate(130, 5) == day6.generate(130, 5)
    grids = {day6.generate(130, seed) for seed in range(4)}
    assert len(grids) == 4
    assert day6.generate(40, 5) != day6.generate(40, 6)


def test_generator_rejects_tiny_sizes():
    with pytest.raises(ValueError):
        day6.generate(7)
    day6.parse(day6.generate(8, 1))


# ---------------------------------------------------------------------------
# Parse errors: line and column
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("text,line,column,words", [
    ("", 1, 1, "empty"),
    ("\n  \n\n", 1, 1, "empty"),
    ("\n..^.\n", 1, 1, "first line is empty"),
    ("....\n.^..\n..\n....\n", 3, 3, "rectangular"),         # short line: first missing cell
    ("....\n.^..\n......\n", 3, 5, "rectangular"),           # long line: first extra cell
    ("....\n.^..\n\n....\n", 3, 1, "rectangular"),           # blank line inside
    ("....\n.^x.\n", 2, 3, "unexpected character 'x'"),
    ("....\n.^..\n...\t\n", 3, 4, "unexpected character '\\t'"),
    ("..\x0c.\n.^..\n", 1, 3, "unexpected character '\\x0c'"),  # a form feed is no line break
    ("....\n....\n...#\n", 3, 5, "no guard"),
    ("^...\n..^.\n", 2, 3, "second guard"),
])
def test_parse_errors_name_line_and_column(text, line, column, words):
    with pytest.raises(day6.GridError) as info:
        day6.parse(text)
    err = info.value
    assert (err.line, err.column) == (line, column)
    assert str(err).startswith(f"line {line}, column {column}: ")
    assert words in str(err)


def test_parse_accepts_crlf_and_trailing_blank_lines():
    text = day6.EXAMPLE.replace("\n", "\r\n") + "\r\n\r\n"
    grid = day6.parse(text)
    assert (grid.rows, grid.cols) == (10, 10)
    assert day6.part1(grid) == 41


def test_guard_that_never_leaves():
    with pytest.raises(day6.GridError, match="never leaves") as info:
        day6.part1(day6.parse(".#.\n#^#\n.#.\n"))
    assert info.value.line is None


# ---------------------------------------------------------------------------
# Progress bars
# ---------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_shows_nothing_off_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    progress = study.Progress()
    assert progress.kind is None
    with progress.bar("x", 10) as bar:
        bar.advance(10)
    assert sys.stderr.getvalue() == ""


def test_progress_disabled():
    assert study.Progress(enabled=False).kind is None


def test_progress_on_a_terminal_uses_rich_or_tqdm(monkeypatch):
    have = [m for m in ("rich", "tqdm") if _importable(m)]
    if not have:
        pytest.skip("neither rich nor tqdm is installed")
    fake = _Terminal()
    monkeypatch.setattr(sys, "stderr", fake)
    progress = study.Progress()
    assert progress.kind == have[0]
    with progress.bar("interpool, workers = 2", 10) as bar:
        for _ in range(10):
            bar.advance(1)
    assert fake.getvalue()  # something was drawn


def test_progress_with_tqdm_when_rich_is_missing(monkeypatch):
    if not _importable("tqdm"):
        pytest.skip("tqdm is not installed")
    fake = _Terminal()
    monkeypatch.setattr(sys, "stderr", fake)
    monkeypatch.setitem(sys.modules, "rich.progress", None)
    monkeypatch.setitem(sys.modules, "rich", None)
    progress = study.Progress()
    assert progress.kind == "tqdm"
    with progress.bar("threads, workers = 2", 10) as bar:
        for _ in range(10):
            bar.advance(1)
    assert "threads, workers = 2" in fake.getvalue()


def test_progress_without_rich_or_tqdm(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Terminal())
    monkeypatch.setitem(sys.modules, "rich.progress", None)
    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setitem(sys.modules, "tqdm", None)
    assert study.Progress().kind is None


def _importable(name):
    try:
        __import__(name)
    except ImportError:
        return False
    return True
