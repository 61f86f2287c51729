"""The fast JSON path agrees with the standard library, including what orjson refuses."""

from __future__ import annotations

import json

import pytest

from localgate import jsonfast


@pytest.mark.parametrize("raw", [
    b'{"a": [1, 2.5, "caf\\u00e9", null, true], "b": {"c": "x"}}',
    b'{"s": "\\ud800"}',                             # a lone surrogate: stdlib fallback
    b'{"n": NaN}',
])
def test_loads_matches_stdlib(raw: bytes) -> None:
    a, b = jsonfast.loads(raw), json.loads(raw)
    assert json.dumps(a) == json.dumps(b)


def test_integers_beyond_64_bits_read_as_javascript_would() -> None:
    assert jsonfast.loads(b'{"a": 18446744073709551615}') == {"a": 2**64 - 1}
    assert jsonfast.loads(b'{"a": 123456789012345678901234567890}') == {
        "a": float(123456789012345678901234567890)}


def test_loads_rejects_invalid_json() -> None:
    with pytest.raises(ValueError):
        jsonfast.loads(b'{"a": ')


@pytest.mark.parametrize("obj", [{"a": "é", "b": [1, None]}, {"big": 2**70}])
def test_dumps_round_trips(obj: object) -> None:
    assert json.loads(jsonfast.dumps(obj)) == obj
