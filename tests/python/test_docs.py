"""Every code block of README.md and docs/*.md is run or checked, so the docs
cannot drift from the code; and docs/reference.md names every public name.

How each block is tested, by the words on its opening fence (the language, then
optional words; tests/python/doc_blocks.py parses them):

```python        A whole program. It is written to example.py in an empty temporary
                 directory and run there, in a fresh process of this Python
                 (`python example.py`); it must exit with status 0. As in real
                 programs, functions sent to workers live at module level and the
                 code that starts executors sits under `if __name__ == "__main__":`.
```text output   Right after a python block: that block's exact standard output.
```cpp           A whole program (with main): ctest compiles it against the built
                 library and runs it (test DocBlock.<page>:<line>, from
                 tests/cpp/doc_blocks.cmake); it must exit with status 0.
```cpp fragment  Statements, compiled as the body of a function and linked, not run.
                 For both, this test checks that the C++ build tree registered the
                 block with its current text, compiled it since, and (programs)
                 has its ctest: run `make test-cpp` after editing one.
```sh, ```bash   Each command is checked: `make ARGS` as `make -n ARGS` in the source
                 tree (the targets exist); `python -m interpool ARGS`: ARGS parse
                 with interpool's own parser, and `info` runs;
                 `[.venv/bin/]python SCRIPT.py ARGS`: the script exists and its
                 --help lists every --option used; `dask scheduler|worker ARGS`:
                 the same for Dask's command, and a --preload module imports;
                 `pip install 'interpool[EXTRA]'`: the extra exists. Any other
                 command fails the test: mark such a block not-run.
```console       The same, for the lines that start with "$ " (the rest is output).
```text          Output, messages, layouts: not run.
```sh cpp-install  The commands that build and install the C++ package (one block):
                 `make test-cpp-install` runs them as they are, in a copy of the tree,
                 and builds a program against that install; this test checks that
                 the target exists, and skips.

Two words change that, visibly on the fence line:

```LANG not-run  Not run (reported as skipped, with the block's place: pytest's
                 summary counts them). For commands that change the machine or
                 take long, and code in a language without a runner (cmake).
```LANG continued  Appended to the previous block of the same kind (language,
                 not-run, fragment) on the page; they run as one (the test is
                 named after the first). For a program explained in steps.

A block without a language, or with an unknown word, fails. The source tree is
the one this file is in, or $INTERPOOL_SOURCE_DIR (the wheel test runs a copy of
the tests outside it); python blocks always run against the installed package.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

import doc_blocks

HERE = os.path.dirname(os.path.abspath(__file__))
from source_tree import ROOT  # noqa: E402
TIMEOUT = 120

if not os.path.isfile(os.path.join(ROOT, "README.md")) or not os.path.isdir(os.path.join(ROOT, "docs")):
    pytest.skip(f"no README.md and docs/ in {ROOT} (set INTERPOOL_SOURCE_DIR to the source tree)",
                allow_module_level=True)


def _collect():
    found = []
    for page in doc_blocks.pages(ROOT):
        try:
            found += [pytest.param(g, id=g.name) for g in doc_blocks.groups(ROOT, page)]
        except doc_blocks.DocError as e:
            found.append(pytest.param(e, id=page))
    return found


GROUPS = _collect()


def test_the_pages_have_blocks():
    """The collection found the pages (a wrong root would make every test vanish)."""
    pages = doc_blocks.pages(ROOT)
    assert "README.md" in pages and "docs/guide.md" in pages, pages
    assert len(GROUPS) > 20


def test_the_cpp_install_block(tmp_path):
    """`make test-cpp-install` runs docs/cpp.md's build commands: one block says so."""
    group = doc_blocks.block_with(ROOT, "cpp-install")
    assert group.first.page == "docs/cpp.md" and "cmake --install build" in group.text
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("```sh cpp-install\ncmake --build build\n```\n")
    (tmp_path / "docs" / "a.md").write_text("```sh cpp-install\ncmake --build build\n```\n")
    with pytest.raises(doc_blocks.DocError, match="not 2"):
        doc_blocks.block_with(str(tmp_path), "cpp-install")
    (tmp_path / "docs" / "a.md").write_text("```python cpp-install\nprint()\n```\n")
    (tmp_path / "README.md").write_text("Nothing to run.\n")
    with pytest.raises(doc_blocks.DocError, match="for sh or bash blocks"):
        doc_blocks.block_with(str(tmp_path), "cpp-install")


@pytest.mark.parametrize("group", GROUPS)
def test_block(group, tmp_path):
    if isinstance(group, doc_blocks.DocError):
        pytest.fail(str(group))
    if group.errors:
        pytest.fail(f"{group.name}: " + "; ".join(group.errors))
    if group.not_run:
        pytest.skip(f"{group.name}: ```{group.lang} not-run")
    for word, target in doc_blocks.RUN_BY_MAKE.items():
        if word in group.first.words:
            # The target exists, and finds this block (no other says the word).
            check_make(group.name, ["make", target])
            assert doc_blocks.block_with(ROOT, word).name == group.name
            pytest.skip(f"{group.name}: ```{group.lang} {word}, run by `make {target}`")
    if group.lang in doc_blocks.TEXT:
        pytest.skip(f"{group.name}: ```text (output or text, not code)")
    if group.lang in doc_blocks.PYTHON:
        run_python_block(group, tmp_path)
    elif group.lang in doc_blocks.CPP:
        check_cpp_block(group)
    else:
        check_shell_block(group, tmp_path)


# ---------------------------------------------------------------------------
# python
# ---------------------------------------------------------------------------


def _line_map(group) -> str:
    """Where the lines of example.py come from, for failure messages."""
    parts, start = [], 1
    for b in group.blocks:
        n = b.text.count("\n")
        parts.append(f"example.py lines {start}-{start + n - 1} are {b.page}:{b.first_line}-"
                     f"{b.first_line + n - 1}")
        start += n
    return "; ".join(parts)


def run_python_block(group, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(group.text)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    try:
        proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{group.name} did not end within {TIMEOUT} s ({_line_map(group)}); "
                    f"output so far: {e.stdout!r}")
    assert proc.returncode == 0, (
        f"{group.name} exited with status {proc.returncode} ({_line_map(group)})\n"
        f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}")
    if group.output is not None:
        assert proc.stdout == group.output.text, (
            f"{group.name}: the output differs from the ```text output block at "
            f"{group.output.name}")


# ---------------------------------------------------------------------------
# cpp: compiled and run by ctest; checked here to be registered there
# ---------------------------------------------------------------------------


def cpp_build_dir() -> str:
    return os.environ.get("INTERPOOL_CPP_BUILD") or os.path.join(
        ROOT, "build", "cpp-%d.%d" % sys.version_info[:2])


def check_cpp_block(group):
    build = cpp_build_dir()
    out = os.path.join(build, "tests", "cpp", "doc_blocks")
    if not os.path.isfile(os.path.join(build, "CMakeCache.txt")):
        pytest.skip(f"{group.name}: no C++ build tree in {build}: `make test-cpp` builds it, "
                    f"then compiles and runs the C++ blocks")
    manifest_path = os.path.join(out, "manifest.json")
    assert os.path.isfile(manifest_path), (
        f"{build} has no doc-block manifest: it was configured before C++ blocks were "
        f"registered; run `make test-cpp`")
    with open(manifest_path) as f:
        manifest = json.load(f)
    # By page and text, not line: editing the prose above a block does not
    # unregister it (its ctest keeps the line it had when registered).
    entry = next((e for e in manifest if e["name"].rpartition(":")[0] == group.first.page
                  and e["digest"] == group.digest()), None)
    assert entry is not None, (
        f"{group.name}: the C++ build tree {build} has not registered this block as it is "
        f"now (new or changed since `make test-cpp` last configured it; registered: "
        f"{sorted(e['name'] for e in manifest)}): run `make test-cpp`")
    with open(os.path.join(out, "built.json")) as f:
        built = json.load(f)[entry["target"]]
    assert os.path.isfile(built), f"{group.name}: {built} was not built: run `make test-cpp`"
    assert os.path.getmtime(built) >= os.path.getmtime(entry["source"]), (
        f"{group.name}: {built} is older than its source: run `make test-cpp`")
    if entry["kind"] == "program":
        with open(os.path.join(build, "tests", "cpp", "CTestTestfile.cmake")) as f:
            tests = {a or b for a, b in _ADD_TEST.findall(f.read())}
        assert entry["test"] in tests, f"{group.name}: no ctest {entry['test']} in {build}"


# add_test("NAME" ...) or add_test([=[NAME]=] ...), as CMake writes them.
_ADD_TEST = re.compile(r'add_test\(\s*(?:"([^"]*)"|\[=*\[(.*?)\]=*\])')


# ---------------------------------------------------------------------------
# sh, bash, console
# ---------------------------------------------------------------------------


def shell_commands(group):
    """(line, argv) of each command: continuation lines joined, comments dropped;
    in console blocks only the lines that start with "$ "."""
    pending, start = "", 0
    for b in group.blocks:
        for offset, line in enumerate(b.text.splitlines()):
            number = b.first_line + offset
            if group.lang == "console" and not pending:
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            if not pending:
                start = number
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            argv = shlex.split(pending + line, comments=True)
            pending = ""
            if argv:
                yield start, argv


def make_env():
    # pytest may run under make: a child make must not join its jobserver or flags.
    drop = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "MAKE_TERMOUT", "MAKE_TERMERR"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def check_make(where, argv):
    proc = subprocess.run(["make", "-n", *argv[1:]], cwd=ROOT, env=make_env(),
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, (
        f"{where}: `make -n {shlex.join(argv[1:])}` failed:\n{proc.stderr[-2000:]}")


def check_interpool_cli(where, args, tmp_path):
    from interpool.__main__ import build_parser

    parser, _ = build_parser()
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parsed = parser.parse_args(args)
    except SystemExit as e:
        assert e.code == 0, f"{where}: `python -m interpool {shlex.join(args)}`: {err.getvalue()}"
        return  # --help
    if parsed.command == "info":
        proc = subprocess.run([sys.executable, "-m", "interpool", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=TIMEOUT)
        assert proc.returncode == 0, f"{where}: {proc.stdout}{proc.stderr}"


def check_script(where, script, args):
    path = os.path.join(ROOT, script)
    assert os.path.isfile(path), f"{where}: no {script} in the source tree"
    check_options(where, [sys.executable, path], script, args)


def check_options(where, command, name, args):
    """`command --help` works and lists every --option of args."""
    proc = subprocess.run([*command, "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, f"{where}: `{name} --help` failed:\n{proc.stderr}"
    for arg in args:
        if arg.startswith("--"):
            option = arg.split("=", 1)[0]
            assert re.search(rf"(^|[\s,\[]){re.escape(option)}\b", proc.stdout), (
                f"{where}: {name} has no option {option}")


def check_dask(where, args):
    """`dask scheduler|worker ARGS`: Dask's own command has those options, and a
    --preload given as a module name imports."""
    pytest.importorskip("distributed", reason="Dask's distributed is not installed")
    dask = os.path.join(os.path.dirname(sys.executable), "dask")
    assert os.path.isfile(dask), f"{where}: no `dask` command beside {sys.executable}"
    check_options(where, [dask, args[0]], f"dask {args[0]}", args[1:])
    for option, value in zip(args, args[1:]):
        if option == "--preload" and not value.endswith(".py"):
            proc = subprocess.run([sys.executable, "-c", f"import {value}"], capture_output=True,
                                  text=True, timeout=TIMEOUT)
            assert proc.returncode == 0, f"{where}: --preload {value} does not import:\n{proc.stderr}"


def check_pip_install(where, args):
    """`pip install 'interpool[EXTRA,...]'` or `pip install '.[EXTRA,...]'` (from a
    clone): the extras exist in pyproject.toml."""
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    for arg in args:
        m = re.fullmatch(r"interpool\[([\w,-]+)\]|\.(?:\[([\w,-]+)\])?", arg)
        assert m or arg.startswith("-"), f"{where}: pip installs {arg!r}, not interpool"
        listed = (m.group(1) or m.group(2) or "") if m else ""
        for extra in filter(None, listed.split(",")):
            assert extra in extras, f"{where}: pyproject.toml has no extra {extra!r}"


def is_python(word):
    return re.fullmatch(r"(\S*/)?python(3(\.\d+)?)?", word) is not None


def check_shell_block(group, tmp_path):
    commands = list(shell_commands(group))
    assert commands, f"{group.name}: no command found"
    for line, argv in commands:
        where = f"{group.first.page}:{line}"
        if argv[0] == "make":
            check_make(where, argv)
        elif is_python(argv[0]) and argv[1:3] == ["-m", "interpool"]:
            check_interpool_cli(where, argv[3:], tmp_path)
        elif is_python(argv[0]) and len(argv) > 1 and argv[1].endswith(".py"):
            check_script(where, argv[1], argv[2:])
        elif argv[0] == "dask" and argv[1:2] in (["scheduler"], ["worker"]):
            check_dask(where, argv[1:])
        elif argv[:2] == ["pip", "install"]:
            check_pip_install(where, argv[2:])
        else:
            pytest.fail(f"{where}: no check for `{shlex.join(argv)}`: mark the block "
                        f"```{group.lang} not-run, or add a check to {__file__}")


# ---------------------------------------------------------------------------
# docs/reference.md
# ---------------------------------------------------------------------------

REFERENCE = os.path.join(ROOT, "docs", "reference.md")
# The modules whose every public name the reference documents, and the prefix
# their names take there (### `interpreters.create()`).
REFERENCED_MODULES = {"interpool": "interpool", "interpool.interpreters": "interpreters",
                      "interpool.joblib": "interpool.joblib"}
_ENTRY = re.compile(r"^#{2,4} `(?P<name>[\w.]+)(?P<signature>\(.*\))?`", re.M)


def reference_entries() -> dict[str, str | None]:
    """Documented name -> its signature as written (None for attributes)."""
    with open(REFERENCE, encoding="utf-8") as f:
        return {m["name"]: m["signature"] for m in _ENTRY.finditer(f.read())}


def public_names():
    """(documented name, object) of every public name of the referenced modules,
    and of the public members that their classes define themselves."""
    import importlib

    for module_name, prefix in REFERENCED_MODULES.items():
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            yield f"{prefix}.{name}", obj
            if isinstance(obj, type) and obj.__module__.startswith("interpool"):
                for member in vars(obj):
                    if not member.startswith("_"):
                        yield f"{name}.{member}", getattr(obj, member)


def test_reference_documents_every_public_name():
    documented = reference_entries()
    missing = sorted({name for name, _ in public_names() if name not in documented})
    assert not missing, (
        f"docs/reference.md has no entry (a heading like ### `NAME(...)`) for: {missing}")


def _parameters(signature: str) -> list[str]:
    tree = ast.parse(f"def f{signature}: pass")
    a = tree.body[0].args
    names = [p.arg for p in a.posonlyargs + a.args]
    names += [f"*{a.vararg.arg}"] if a.vararg else (["*"] if a.kwonlyargs else [])
    names += [p.arg for p in a.kwonlyargs]
    names += [f"**{a.kwarg.arg}"] if a.kwarg else []
    return names


def _actual_parameters(obj) -> list[str] | None:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None  # no introspectable signature (some types of the extension)
    names = []
    for p in sig.parameters.values():
        if p.name == "self" or (p.name == "cls" and p.kind == p.POSITIONAL_OR_KEYWORD):
            continue
        if p.kind == p.VAR_POSITIONAL:
            names.append(f"*{p.name}")
        elif p.kind == p.KEYWORD_ONLY and not any(n.startswith("*") for n in names):
            names += ["*", p.name]
        elif p.kind == p.VAR_KEYWORD:
            names.append(f"**{p.name}")
        else:
            names.append(p.name)
    return names


def test_reference_signatures_match_the_code():
    """The parameters written in the reference are the callables' own (where
    Python can tell them)."""
    documented = reference_entries()
    wrong = []
    for name, obj in public_names():
        signature = documented.get(name)
        if signature is None or not callable(obj):
            continue
        actual = _actual_parameters(obj)
        if actual is not None and _parameters(signature) != actual:
            wrong.append(f"{name}{signature}: the code has ({', '.join(actual)})")
    assert not wrong, "docs/reference.md: " + "; ".join(wrong)


_MISSING = object()


def test_reference_names_exist():
    """Every entry names something that exists (no entry outlives its name)."""
    import importlib

    from interpool._future import _Future

    modules = {prefix: importlib.import_module(m) for m, prefix in REFERENCED_MODULES.items()}
    # The futures that Executor.submit returns (a concurrent.futures.Future subclass).
    classes = {"Future": _Future}
    stale = []
    for name in reference_entries():
        head, _, rest = name.partition(".")
        obj = modules.get(head) or classes.get(head)
        if obj is None:  # Class.member, the class being in one of the modules
            obj = next((getattr(m, head) for m in modules.values() if hasattr(m, head)), _MISSING)
        for part in rest.split(".") if obj is not _MISSING and rest else ():
            obj = getattr(obj, part, _MISSING)
        if obj is _MISSING:
            stale.append(name)
    assert not stale, f"docs/reference.md documents names that do not exist: {stale}"
