"""The fenced code blocks of README.md and docs/*.md, as test_docs.py runs them.

Used by tests/python/test_docs.py, and by CMake (tests/cpp/doc_blocks.cmake),
which runs it as a script to write each C++ block out as a source file:

    python tests/python/doc_blocks.py cpp --root . --out DIR

The rules (test_docs.py's docstring is their user's guide): every block has a
language; the words after it on the fence line ask for something else than the
language's default:

    not-run     the block is not run (counted, and reported as skipped)
    continued   the block is appended to the previous block of the same kind
                (language, not-run, fragment) in the same page; they run as one
    fragment    (cpp) statements, compiled as the body of a function, not run
    output      (text) the exact output of the python block just before it
    cpp-install (sh) the commands that build and install the C++ package:
                `make test-cpp-install` runs them as they are, in a copy of the
                tree (`python tests/python/doc_blocks.py block cpp-install`
                prints them); pytest does not run them

Standard library only: CMake runs it with the Python it builds against.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass, field

# Languages with a runner in test_docs.py (or, for cpp, in ctest).
PYTHON = {"python"}
CPP = {"cpp"}
SHELL = {"sh", "bash", "console"}
TEXT = {"text"}
WORDS = {"not-run", "continued", "fragment", "output", "cpp-install"}
# Words that name the one block a Makefile target runs (`block WORD` prints it).
RUN_BY_MAKE = {"cpp-install": "test-cpp-install"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


class DocError(ValueError):
    """A block that breaks the rules; the message names its page and line."""


@dataclass
class Block:
    page: str          # path relative to the root, with "/" (README.md, docs/guide.md)
    line: int          # 1-based line of the opening fence
    lang: str
    words: tuple[str, ...]
    text: str

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def first_line(self) -> int:
        """Line of the block's first line of code."""
        return self.line + 1


@dataclass
class Group:
    """One block, or a block and the `continued` blocks joined to it."""

    blocks: list[Block]
    output: Block | None = None  # a `text output` block right after it (python)
    errors: list[str] = field(default_factory=list)

    @property
    def first(self) -> Block:
        return self.blocks[0]

    @property
    def name(self) -> str:
        return self.first.name

    @property
    def lang(self) -> str:
        return self.first.lang

    @property
    def not_run(self) -> bool:
        return "not-run" in self.first.words

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.blocks)

    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


def pages(root: str) -> list[str]:
    """README.md and every docs/*.md under root, as paths relative to it."""
    found = ["README.md"] if os.path.isfile(os.path.join(root, "README.md")) else []
    found += sorted(os.path.relpath(p, root).replace(os.sep, "/")
                    for p in glob.glob(os.path.join(root, "docs", "*.md")))
    return found


def parse(root: str, page: str) -> list[Block]:
    """The fenced blocks of one page, in order. DocError for an unclosed block."""
    with open(os.path.join(root, page), encoding="utf-8") as f:
        lines = f.read().splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None or (m["fence"][0] == "`" and "`" in m["info"]):
            i += 1
            continue
        indent, fence = len(m["indent"]), m["fence"]
        info = m["info"].split()
        start = i
        body = []
        i += 1
        while i < len(lines):
            close = _FENCE.match(lines[i])
            if (close is not None and close["fence"][0] == fence[0]
                    and len(close["fence"]) >= len(fence) and not close["info"].strip()):
                break
            line = lines[i]
            # The fence's indentation is not part of the code (blocks in lists).
            body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
            i += 1
        else:
            raise DocError(f"{page}:{start + 1}: the code block is never closed")
        i += 1
        text = "".join(line + "\n" for line in body)
        blocks.append(Block(page, start + 1, info[0] if info else "", tuple(info[1:]), text))
    return blocks


def groups(root: str, page: str) -> list[Group]:
    """The page's blocks joined into groups, each with the rule errors it has."""
    result: list[Group] = []
    last_of_kind: dict[tuple, Group] = {}
    previous: Group | None = None
    for block in parse(root, page):
        errors = []
        unknown = [w for w in block.words if w not in WORDS]
        if not block.lang:
            errors.append("the block has no language: write ```python, ```cpp, ```sh, "
                          "```console, or ```text for output and other text")
        if unknown:
            errors.append(f"unknown word(s) {unknown} after ```{block.lang}: "
                          f"the known ones are {sorted(WORDS)}")
        if "fragment" in block.words and block.lang not in CPP:
            errors.append("`fragment` is for cpp blocks")
        if "cpp-install" in block.words and block.lang not in SHELL - {"console"}:
            errors.append("`cpp-install` is for sh or bash blocks")
        if "output" in block.words:
            if block.lang not in TEXT:
                errors.append("`output` is for text blocks (```text output)")
            elif previous is None or previous.lang not in PYTHON or previous.not_run \
                    or previous.output is not None:
                errors.append("a ```text output block must follow a python block that runs")
            else:
                previous.output = block
                continue
        if block.lang and block.lang not in PYTHON | CPP | SHELL | TEXT \
                and "not-run" not in block.words:
            errors.append(f"no runner for ```{block.lang} blocks: mark it ```{block.lang} "
                          f"not-run (or add a runner to tests/python/test_docs.py)")
        kind = (block.lang, "not-run" in block.words, "fragment" in block.words)
        if "continued" in block.words:
            head = last_of_kind.get(kind)
            if head is None:
                errors.append(f"`continued`, but no block of the same kind ({block.lang}, with "
                              f"the same not-run and fragment words) comes before it in {page}")
            else:
                head.blocks.append(block)
                head.errors.extend(errors)
                previous = head
                continue
        group = Group([block], errors=errors)
        result.append(group)
        last_of_kind[kind] = group
        previous = group
    return result


def all_groups(root: str) -> list[Group]:
    return [g for page in pages(root) for g in groups(root, page)]


def block_with(root: str, word: str) -> Group:
    """The one group (of every page) whose first block has `word`; DocError if
    there is none, several, or it breaks a rule."""
    found = [g for g in all_groups(root) if word in g.first.words]
    if len(found) != 1:
        places = ", ".join(g.name for g in found) or "no block"
        raise DocError(f"one block must say ```sh {word}, not {len(found)} ({places})")
    if found[0].errors:
        raise DocError(f"{found[0].name}: " + "; ".join(found[0].errors))
    return found[0]


# ---------------------------------------------------------------------------
# C++ blocks as source files (for tests/cpp/doc_blocks.cmake)
# ---------------------------------------------------------------------------


def slug(group: Group) -> str:
    return "doc_" + re.sub(r"[^A-Za-z0-9]+", "_", group.name).strip("_")


def cpp_source(group: Group) -> str:
    """A translation unit: the blocks as they are (a program), or inside a
    function (a fragment). #line points compiler messages at the page."""
    parts = []
    for b in group.blocks:
        parts.append(f'#line {b.first_line} "{b.page}"\n{b.text}')
    body = "".join(parts)
    if "fragment" not in group.first.words:
        return body
    # Extern, so that it is compiled and linked although nothing calls it.
    return ("#include <interpool/interpool.hpp>\n\n"
            f"void interpool_{slug(group)}();\n"
            f"void interpool_{slug(group)}() {{\n{body}}}\n\n"
            "int main() { return 0; }\n")


def write_if_changed(path: str, text: str) -> None:
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def write_cpp(root: str, out: str) -> list[dict]:
    """Writes OUT/<slug>.cpp for every C++ group that runs, OUT/blocks.cmake (one
    interpool_doc_block(target kind source test) call each) and OUT/manifest.json
    (what test_docs checks against the pages)."""
    os.makedirs(out, exist_ok=True)
    manifest = []
    calls = []
    for group in all_groups(root):
        if group.lang not in CPP:
            continue
        if group.errors:
            raise DocError(f"{group.name}: " + "; ".join(group.errors))
        if group.not_run:
            continue
        kind = "fragment" if "fragment" in group.first.words else "program"
        if kind == "program" and not re.search(r"\bint\s+main\s*\(", group.text):
            raise DocError(f"{group.name}: a cpp block is a whole program with main(), "
                           f"or says ```cpp fragment")
        source = os.path.join(out, slug(group) + ".cpp")
        write_if_changed(source, cpp_source(group))
        test = f"DocBlock.{group.name}"
        manifest.append({"name": group.name, "kind": kind, "target": slug(group),
                         "source": source, "test": test if kind == "program" else None,
                         "digest": group.digest()})
        calls.append(f"interpool_doc_block({slug(group)} {kind} [[{source}]] [[{test}]])\n")
    write_if_changed(os.path.join(out, "blocks.cmake"), "".join(calls))
    write_if_changed(os.path.join(out, "manifest.json"), json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    cpp = sub.add_parser("cpp", help="write the C++ blocks as sources for CMake")
    cpp.add_argument("--root", required=True, help="the source tree (README.md, docs/)")
    cpp.add_argument("--out", required=True, help="directory for the sources")
    sub.add_parser("list", help="list every block group").add_argument("--root", default=".")
    block = sub.add_parser("block", help="print the text of the block a Makefile target runs")
    block.add_argument("word", choices=sorted(RUN_BY_MAKE), help="the word on its fence line")
    block.add_argument("--root", default=".")
    args = ap.parse_args(argv)
    try:
        if args.command == "cpp":
            for entry in write_cpp(args.root, args.out):
                print(f"{entry['name']}: {entry['kind']}")
        elif args.command == "block":
            group = block_with(args.root, args.word)
            print(f"# {group.name}", file=sys.stderr)
            sys.stdout.write(group.text)
        else:
            for g in all_groups(args.root):
                words = " ".join(g.first.words)
                print(f"{g.name}: {g.lang} {words}".rstrip() + (f" ({len(g.blocks)} blocks)"
                                                                 if len(g.blocks) > 1 else ""))
    except DocError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
