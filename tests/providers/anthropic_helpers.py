"""Shared by the Anthropic adapter tests: the Target, the recorded transcripts, and a way to
run a stream through the translator split at chosen byte offsets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from localgate.providers import Target, adapter_for

DATA = Path(__file__).parent / "data" / "anthropic"
KEY = "sk-ant-api03-test-not-a-real-key"
TARGET = Target(slug="anthropic", base_url="https://api.anthropic.test", api_key=KEY,
                model="claude-sonnet-4-6", model_id="anthropic/claude-sonnet-4.6",
                provider="anthropic", kind="byok", max_output=64000)
ADAPTER = adapter_for("anthropic")


def raw(name: str) -> bytes:
    return (DATA / name).read_bytes()


def anthropic_body(body: dict[str, Any], t: Target = TARGET, stream: bool = False,
                   headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The Messages body the adapter sends for an OpenAI chat body."""
    call = ADAPTER.chat_call(body, t, stream=stream, client_headers=headers or {})
    return json.loads(call.body)


def translate(stream: bytes, cuts: list[int] | None = None, t: Target = TARGET) -> bytes:
    """Feed `stream` split at `cuts`, then close; everything the translator said."""
    tr = ADAPTER.stream_translator(t)
    assert tr is not None
    out, last = [], 0
    for c in sorted(set(cuts or [])) + [len(stream)]:
        out.append(tr.feed(stream[last:c]))
        last = c
    out.append(tr.close())
    return b"".join(out)


def frames(out: bytes) -> list[Any]:
    """The `data:` payloads of OpenAI SSE output: parsed chunks, and "[DONE]" as a string."""
    assert out.endswith(b"\n\n") or not out
    got: list[Any] = []
    for event in out.split(b"\n\n")[:-1]:
        assert event.startswith(b"data: "), event
        payload = event[6:]
        got.append("[DONE]" if payload == b"[DONE]" else json.loads(payload))
    return got
