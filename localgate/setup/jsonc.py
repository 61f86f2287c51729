"""JSON with comments and trailing commas (JSONC), as Claude Code, OpenCode and the Kilo CLI read
their settings: parse it, and set one value at a key path by editing the text in place, so the
user's comments, key order and layout survive (no JSONC library in the stdlib, and none on PyPI
is both kept up and round-trip safe). Every edit is checked by parsing the result; should the
edit ever not produce exactly the intended document, the document is re-serialised instead.

Stdlib only; pure functions.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

_LITERAL = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null")
_INDENT = "  "
_DECODER = json.JSONDecoder()


class JsoncError(ValueError):
    pass


@dataclass
class _Node:
    start: int
    end: int
    value: Any
    members: dict[str, tuple[int, _Node]] | None = None  # objects: key -> (key offset, value)
    open: int = -1
    close: int = -1
    last_end: int = -1                                  # end of the last member's value
    order: list[str] = field(default_factory=list)


class _Scanner:
    def __init__(self, text: str) -> None:
        self.t, self.i = text, 0

    def fail(self, what: str) -> JsoncError:
        line = self.t.count("\n", 0, self.i) + 1
        col = self.i - (self.t.rfind("\n", 0, self.i) + 1) + 1
        return JsoncError(f"{what} at line {line}, column {col}")

    def skip(self) -> None:
        t = self.t
        while self.i < len(t):
            if t[self.i] in " \t\r\n\ufeff":
                self.i += 1
            elif t.startswith("//", self.i):
                end = t.find("\n", self.i)
                self.i = len(t) if end < 0 else end
            elif t.startswith("/*", self.i):
                end = t.find("*/", self.i + 2)
                if end < 0:
                    raise self.fail("unterminated comment")
                self.i = end + 2
            else:
                return

    def value(self) -> _Node:
        self.skip()
        if self.i >= len(self.t):
            raise self.fail("unexpected end of text")
        c, start = self.t[self.i], self.i
        if c == "{":
            return self.obj()
        if c == "[":
            return self.arr()
        if c == '"':
            s = self.string()
            return _Node(start, self.i, s)
        m = _LITERAL.match(self.t, self.i)
        if not m:
            raise self.fail("expected a value")
        self.i = m.end()
        return _Node(start, self.i, json.loads(m.group()))

    def string(self) -> str:
        try:
            s, self.i = _DECODER.raw_decode(self.t, self.i)
        except json.JSONDecodeError as exc:
            raise self.fail("bad string") from exc
        return str(s)

    def obj(self) -> _Node:
        node = _Node(self.i, -1, {}, members={}, open=self.i)
        self.i += 1
        while True:
            self.skip()
            if self.t.startswith("}", self.i):
                break
            if self.i >= len(self.t) or self.t[self.i] != '"':
                raise self.fail("expected a key in double quotes")
            key_at = self.i
            key = self.string()
            self.skip()
            if not self.t.startswith(":", self.i):
                raise self.fail("expected ':'")
            self.i += 1
            child = self.value()
            node.value[key] = child.value
            node.members[key] = (key_at, child)  # type: ignore[index]
            node.order.append(key)
            node.last_end = child.end
            if not self._comma("}"):
                break
        node.close = self.i
        self.i += 1
        node.end = self.i
        return node

    def arr(self) -> _Node:
        node = _Node(self.i, -1, [])
        self.i += 1
        while True:
            self.skip()
            if self.t.startswith("]", self.i):
                break
            node.value.append(self.value().value)
            if not self._comma("]"):
                break
        self.i += 1
        node.end = self.i
        return node

    def _comma(self, close: str) -> bool:
        """After an item: True after a comma (another item or a trailing comma may follow)."""
        self.skip()
        if self.t.startswith(",", self.i):
            self.i += 1
            return True
        if not self.t.startswith(close, self.i):
            raise self.fail(f"expected ',' or '{close}'")
        return False


def _tree(text: str) -> _Node:
    s = _Scanner(text)
    node = s.value()
    s.skip()
    if s.i != len(text):
        raise s.fail("unexpected text after the end")
    return node


def parse(text: str) -> Any:
    """The document's value; JsoncError (with line and column) if it is not JSONC."""
    return _tree(text).value


def set_value(text: str, path: list[str], value: Any) -> str:
    """`text` with `value` at `path` (objects created as needed), everything else unchanged."""
    if not text.strip():
        return json.dumps(_nest(path, value), indent=2, ensure_ascii=False) + "\n"
    root = _tree(text)
    if not isinstance(root.value, dict):
        raise JsoncError("the top level is not an object")
    expected = copy.deepcopy(root.value)
    _deep_set(expected, path, value)
    try:
        out = _edit(text, root, path, value)
        if parse(out) == expected:
            return out
    except JsoncError:
        pass
    return json.dumps(expected, indent=2, ensure_ascii=False) + "\n"


def _edit(text: str, node: _Node, path: list[str], value: Any) -> str:
    for depth, key in enumerate(path):
        assert node.members is not None
        hit = node.members.get(key)
        rest = path[depth + 1:]
        if hit is None:
            return _insert(text, node, key, _nest(rest, value))
        key_at, child = hit
        if not rest or child.members is None:
            new = _dump(_nest(rest, value), _line_indent(text, key_at))
            return text[:child.start] + new + text[child.end:]
        node = child
    raise JsoncError("empty key path")


def _insert(text: str, obj: _Node, key: str, value: Any) -> str:
    assert obj.members is not None
    if obj.order and "\n" not in text[obj.open:obj.close]:
        # a one-line object (`"env": {"A": "1"}`) is laid out anew rather than wrapped oddly
        merged = {**obj.value, key: value}
        return text[:obj.open] + _dump(merged, _line_indent(text, obj.open)) + text[obj.end:]
    if obj.order:
        indent = _line_indent(text, obj.members[obj.order[0]][0])
    else:
        indent = _line_indent(text, obj.open) + _INDENT
    member = json.dumps(key, ensure_ascii=False) + ": " + _dump(value, indent)
    if not obj.order:
        same_line = "\n" not in text[obj.open:obj.close]
        tail = "\n" + _line_indent(text, obj.open) if same_line else ""
        return text[:obj.open + 1] + "\n" + indent + member + tail + text[obj.open + 1:]
    s = _Scanner(text)
    s.i = obj.last_end
    s.skip()
    if text.startswith(",", s.i):  # the file uses trailing commas: keep doing so
        at = _line_end(text, s.i + 1)
        return text[:at] + "\n" + indent + member + "," + text[at:]
    at = _line_end(text, obj.last_end)
    return (text[:obj.last_end] + "," + text[obj.last_end:at] + "\n" + indent + member
            + text[at:])


def _line_end(text: str, pos: int) -> int:
    """End of pos's line when only blanks or a // comment follow (a comment stays with the
    member it describes); else pos itself."""
    end = text.find("\n", pos)
    end = len(text) if end < 0 else end
    rest = text[pos:end].strip()
    return end if not rest or rest.startswith("//") else pos


def _line_indent(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    line = text[start:pos]
    return line[:len(line) - len(line.lstrip(" \t"))]


def _dump(value: Any, indent: str) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n" + indent)


def _nest(path: list[str], value: Any) -> Any:
    for key in reversed(path):
        value = {key: value}
    return value


def _deep_set(doc: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        if not isinstance(doc.get(key), dict):
            doc[key] = {}
        doc = doc[key]
    doc[path[-1]] = value
