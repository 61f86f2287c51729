"""The in-place editors behind `localgate setup` (JSONC and TOML), on generated documents: the
result is exactly the intended document, and a comment elsewhere in the file survives (which
proves the edit was made in place, not by writing the document anew)."""

from __future__ import annotations

import copy
import json
import tomllib
from typing import Any

import tomli_w
from hypothesis import given, settings, strategies as st

from localgate.setup import jsonc, tomledit

KEYS = st.sampled_from(["env", "model", "provider", "kilo", "options", "a", "b", "x y", "é"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=5))
DOCS = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)), max_leaves=12)


def _set(doc: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    cursor = out
    for key in path[:-1]:
        if not isinstance(cursor.get(key), dict):
            cursor[key] = {}
        cursor = cursor[key]
    cursor[path[-1]] = value
    return out


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, DOCS, max_size=5), st.lists(KEYS, min_size=1, max_size=3),
       DOCS, st.sampled_from([1, 2, 4]), st.booleans())
def test_jsonc_set_value_edits_in_place(doc: dict[str, Any], path: list[str], value: Any,
                                        indent: int, trailing: bool) -> None:
    text = json.dumps(doc, indent=indent, ensure_ascii=False)
    text = text.replace("{", "{ // keep me", 1) if doc else "{\n  // keep me\n}"
    if trailing and doc:
        text = text[:text.rstrip().rindex("}")].rstrip() + ",\n}"
    out = jsonc.set_value(text, path, value)
    assert jsonc.parse(out) == _set(doc, path, value)
    assert "// keep me" in out


def test_jsonc_errors_say_where() -> None:
    try:
        jsonc.parse('{\n  "a": 1\n  "b": 2\n}')
    except jsonc.JsoncError as exc:
        assert "line 3" in str(exc)
    else:
        raise AssertionError("no error")


TOML_KEYS = st.sampled_from(["model", "approval_policy", "name", "x", "sandbox_mode"])
TOML_VALUES = st.one_of(st.booleans(), st.integers(-5, 5), st.text(max_size=6),
                        st.lists(st.integers(0, 3), max_size=3))
TABLES = st.dictionaries(TOML_KEYS, TOML_VALUES, max_size=3)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(TOML_KEYS, TOML_VALUES, max_size=4),
       st.dictionaries(st.sampled_from(["mcp_servers", "profiles", "tui"]),
                       st.dictionaries(st.sampled_from(["docs", "fast"]), TABLES, max_size=2),
                       max_size=2),
       st.dictionaries(st.sampled_from(["azure", "localgate", "ollama"]), TABLES, max_size=2),
       TABLES)
def test_toml_merge_edits_in_place(root: dict[str, Any], tables: dict[str, Any],
                                   providers: dict[str, Any], mine: dict[str, Any]) -> None:
    doc: dict[str, Any] = {**root, **tables}
    if providers:
        doc["model_providers"] = providers
    text = "# keep me\n" + tomli_w.dumps(doc)
    new_root = {"model_provider": "localgate", "model": "localgate/default"}
    out, kept = tomledit.merge(text, new_root, ("model_providers", "localgate"), mine)
    expected = {**copy.deepcopy(doc), **new_root}
    expected.setdefault("model_providers", {})["localgate"] = mine
    assert tomllib.loads(out) == expected
    assert kept and "# keep me" in out
