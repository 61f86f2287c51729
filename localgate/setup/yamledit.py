"""YAML round trips for Continue's config.yaml and aider's .aider.conf.yml: ruamel.yaml keeps the
user's comments, key order and quoting (PyYAML would drop the comments). The list style the file
already uses (`- item` flush under its key, or indented) is kept.

Pure functions over text; ruamel.yaml is imported when first used.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

_DASH = re.compile(r"^(\s*)- ", re.M)


class YamlError(ValueError):
    pass


def _yaml(text: str) -> Any:
    from ruamel.yaml import YAML
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096  # never fold a long URL or key onto two lines
    if _flush_lists(text):
        y.indent(mapping=2, sequence=2, offset=0)
    else:
        y.indent(mapping=2, sequence=4, offset=2)
    return y


def _flush_lists(text: str) -> bool:
    """True when the file writes list items at their key's own indent (`key:` / `- item`)."""
    m = _DASH.search(text)
    if not m:
        return False
    above = [ln for ln in text[:m.start()].splitlines() if ln.strip() and
             not ln.lstrip().startswith("#")]
    if not above or not above[-1].rstrip().endswith(":"):
        return False
    key_indent = len(above[-1]) - len(above[-1].lstrip())
    return key_indent == len(m.group(1))


def load(text: str) -> Any:
    from ruamel.yaml.error import YAMLError
    try:
        return _yaml(text).load(text)
    except YAMLError as exc:
        # only the problem and where: ruamel's full message quotes the offending line, which
        # may hold one of the user's keys
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise YamlError(f"{getattr(exc, 'problem', None) or 'not YAML'}{where}") from exc


def dump(doc: Any, like: str = "") -> str:
    out = io.StringIO()
    _yaml(like).dump(doc, out)
    return out.getvalue()


def merge(text: str, update: Callable[[Any], None], new: Callable[[], dict[str, Any]]) -> str:
    """`text` with `update` applied to its top-level mapping. An empty file, or one holding only
    comments (aider's sample config), gets `new()` updated and appended after what is there."""
    from ruamel.yaml.comments import CommentedMap
    doc = load(text) if text.strip() else None
    if doc is None:
        fresh = CommentedMap(new())
        update(fresh)
        head = text if not text or text.endswith("\n") else text + "\n"
        return head + dump(fresh, text)
    if not isinstance(doc, dict):
        raise YamlError("the top level is not a mapping")
    update(doc)
    return dump(doc, text)
