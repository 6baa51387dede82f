#!/usr/bin/env python3
"""List the longest functions of the package and the Rust crates, in lines of code.

"Lines of code" leaves out blank lines, comments and docstrings (Python) or doc comments (Rust),
as issue #14 counts them. A function may run over the limit only if the comment block right above
it (or above its decorators / attributes) holds a line ``long-function: <reason>``.

    python tools/function_lengths.py            # the ten longest of each language
    python tools/function_lengths.py --top 25
    python tools/function_lengths.py --check 80 # exit 1 naming every function over 80 lines
                                                # without a stated reason

Python is parsed with ``ast``; Rust with a small scanner that matches braces outside strings,
chars and comments (enough for this code base, which has no braces in raw strings).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY_DIRS = [ROOT / "python" / "ferrinet"]
RS_DIRS = [ROOT / "rust" / "ferrinet-core" / "src", ROOT / "rust" / "ferrinet-py" / "src"]
MARK = "long-function:"


@dataclass
class Function:
    path: Path
    line: int
    name: str
    code_lines: int
    reason: str | None

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line} {self.name}"


def _reason_above(lines: list[str], first: int, comment: str) -> str | None:
    """The ``long-function:`` reason in the comment block that ends right above line `first`."""
    i = first - 2  # 0-based index of the line above
    while i >= 0:
        text = lines[i].strip()
        if not text.startswith(comment):
            break
        if MARK in text:
            return text.split(MARK, 1)[1].strip()
        i -= 1
    return None


def python_functions(path: Path) -> list[Function]:
    src = path.read_text()
    lines = src.splitlines()
    out = []
    for node in ast.walk(ast.parse(src)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        skip: set[int] = set()
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            skip = set(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
        end = node.end_lineno or node.lineno
        count = 0
        for i in range(node.lineno, end + 1):
            text = lines[i - 1].strip()
            if text and not text.startswith("#") and i not in skip:
                count += 1
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        out.append(Function(path, node.lineno, node.name, count, _reason_above(lines, first, "#")))
    return out


_RS_FN = re.compile(
    r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:unsafe\s+)?(?:extern\s+\"C\"\s+)?fn\s+(\w+)"
)


def _strip_rust(line: str, in_block: bool) -> tuple[str, bool]:
    """The line's code with strings, chars and comments removed; whether a /* */ is still open."""
    out = []
    i = 0
    while i < len(line):
        if in_block:
            j = line.find("*/", i)
            if j < 0:
                return "".join(out), True
            i, in_block = j + 2, False
            continue
        c = line[i]
        if line.startswith("//", i):
            break
        if line.startswith("/*", i):
            in_block, i = True, i + 2
            continue
        if c == '"':
            i += 1
            while i < len(line) and line[i] != '"':
                i += 2 if line[i] == "\\" else 1
            i += 1
            out.append('""')
            continue
        if c == "'":
            m = re.match(r"'(\\.|[^\\'])'", line[i:])
            if m:  # a char literal; otherwise a lifetime
                i += m.end()
                continue
        out.append(c)
        i += 1
    return "".join(out), in_block


def rust_functions(path: Path) -> list[Function]:
    lines = path.read_text().splitlines()
    code: list[str] = []
    in_block = False
    for line in lines:
        stripped, in_block = _strip_rust(line, in_block)
        code.append(stripped)
    out = []
    for start, line in enumerate(code):
        m = _RS_FN.match(line)
        if not m:
            continue
        depth, opened, count = 0, False, 0
        for i in range(start, len(code)):
            text = code[i].strip()
            if text:
                count += 1
            if not opened and ";" in text and "{" not in text and depth == 0:
                break  # a declaration without a body (trait method)
            depth += text.count("{") - text.count("}")
            opened = opened or "{" in text
            if opened and depth <= 0:
                break
        if not opened:
            continue
        first = start + 1
        while first > 1 and lines[first - 2].strip().startswith("#["):
            first -= 1
        out.append(Function(path, start + 1, m.group(1), count, _reason_above(lines, first, "//")))
    return out


def collect() -> tuple[list[Function], list[Function]]:
    py = [f for d in PY_DIRS for p in sorted(d.rglob("*.py")) for f in python_functions(p)]
    rs = [f for d in RS_DIRS for p in sorted(d.rglob("*.rs")) for f in rust_functions(p)]
    key = lambda f: -f.code_lines  # noqa: E731
    return sorted(py, key=key), sorted(rs, key=key)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--top", type=int, default=10, help="how many to list per language")
    ap.add_argument("--check", type=int, metavar="N", help="fail on functions over N code lines")
    args = ap.parse_args(argv)
    py, rs = collect()
    for title, funcs in (("python/ferrinet", py), ("rust/", rs)) if args.top > 0 else ():
        print(f"{title}: the {args.top} longest functions (code lines)")
        for f in funcs[: args.top]:
            note = f"  [long-function: {f.reason}]" if f.reason else ""
            print(f"  {f.code_lines:4d}  {f.where()}{note}")
    if args.check is None:
        return 0
    bad = [f for f in py + rs if f.code_lines > args.check and not f.reason]
    for f in bad:
        print(f"over {args.check} code lines without a stated reason: {f.where()} ({f.code_lines})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
