"""Set root keys and replace one table in a TOML file by editing its text, so the user's
comments and layout survive (tomli-w writes a document anew and would drop them). The edited
text is parsed back with tomllib and must equal the intended document; when it does not (a
layout the line edit cannot handle, such as the table written inline), the document is written
with tomli-w instead and the caller is told that comments were not kept.

Pure functions over text; tomllib and tomli-w only.
"""

from __future__ import annotations

import copy
import re
import tomllib
from typing import Any

import tomli_w

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
# `key = <one-line string or bare value>  # note`: the note is kept when the value is replaced
_TRAILING_COMMENT = re.compile(
    r"^[^=]*=\s*(?:\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^\s#\"'\[{]+)(\s+#.*?)\s*$")


class TomlError(ValueError):
    pass


def parse(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TomlError(str(exc)) from exc


def merge(text: str, root: dict[str, Any], table_path: tuple[str, ...],
          table: dict[str, Any]) -> tuple[str, bool]:
    """(new text, whether the original layout and comments were kept)."""
    expected = copy.deepcopy(parse(text))
    expected.update(root)
    cursor = expected
    for key in table_path[:-1]:
        if not isinstance(cursor.get(key), dict):
            cursor[key] = {}
        cursor = cursor[key]
    cursor[table_path[-1]] = table
    if text.strip():
        out = _edit(text, root, table_path, table)
        try:
            if tomllib.loads(out) == expected:
                return out, True
        except tomllib.TOMLDecodeError:
            pass
    return tomli_w.dumps(expected), not text.strip()


def _edit(text: str, root: dict[str, Any], table_path: tuple[str, ...],
          table: dict[str, Any]) -> str:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines = _drop_table(lines, ".".join(table_path))
    first = next((i for i, ln in enumerate(lines) if _HEADER.match(ln)), len(lines))
    missing = []
    for key, value in root.items():
        line = tomli_w.dumps({key: value})
        pattern = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*=")
        at = next((i for i in range(first) if pattern.match(lines[i])), None)
        if at is None:
            missing.append(line)
            continue
        end = _statement_end(lines, at, first)
        note = _TRAILING_COMMENT.match(lines[at]) if end == at + 1 else None
        lines[at:end] = [line[:-1] + note.group(1) + "\n" if note else line]
        first -= end - at - 1
    at = first
    while at > 0 and (not lines[at - 1].strip() or lines[at - 1].lstrip().startswith("#")):
        at -= 1  # blank lines and comments above the first table belong to that table
    lines[at:at] = missing
    after = at + len(missing)
    if missing and after < len(lines) and lines[after].strip():
        lines.insert(after, "\n")
    nested: dict[str, Any] = table
    for key in reversed(table_path):
        nested = {key: nested}
    body = "".join(lines).rstrip("\n")
    return (body + "\n\n" if body else "") + tomli_w.dumps(nested)


def _statement_end(lines: list[str], at: int, limit: int) -> int:
    """The line after the key/value pair starting at `at` (a multi-line array or string spans
    several lines): the first end at which the lines parse on their own."""
    for end in range(at + 1, limit + 1):
        try:
            tomllib.loads("".join(lines[at:end]))
            return end
        except tomllib.TOMLDecodeError:
            continue
    return at + 1


def _drop_table(lines: list[str], name: str) -> list[str]:
    """Without the table `name` and its sub-tables (header to the next header)."""
    out, skipping = [], False
    for line in lines:
        m = _HEADER.match(line)
        if m:
            header = re.sub(r"\s*\.\s*", ".", m.group(1)).replace('"', "").replace("'", "")
            skipping = header == name or header.startswith(name + ".")
        if not skipping:
            out.append(line)
    return out
