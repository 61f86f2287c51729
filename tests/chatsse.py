"""OpenAI chat streams as an upstream (or localgate's relay) sends them, for the ingress codec
tests: chunk builders, whole streams, and feeding an encoder split at chosen points."""

from __future__ import annotations

import json
from typing import Any, Protocol

from localgate.sse import SseParser


class Encoder(Protocol):
    def feed(self, data: bytes) -> bytes: ...
    def close(self) -> bytes: ...


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
          usage: dict[str, Any] | None = None, **choice: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"id": "gen-1", "object": "chat.completion.chunk", "created": 1700000000,
                         "model": "x/y", "choices": []}
    if delta is not None or finish is not None:
        c["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish, **choice}]
    if usage is not None:
        c["usage"] = usage
    return c


def call(index: int, id: str | None = None, name: str | None = None,
         args: str | None = None) -> dict[str, Any]:
    fn: dict[str, Any] = {}
    if name is not None:
        fn["name"] = name
    if args is not None:
        fn["arguments"] = args
    tc: dict[str, Any] = {"index": index, "function": fn}
    if id is not None:
        tc.update(id=id, type="function")
    return chunk({"tool_calls": [tc]})


def stream(chunks: list[dict[str, Any]], done: bool = True) -> bytes:
    raw = b"".join(b"data: " + json.dumps(c, ensure_ascii=False).encode() + b"\n\n"
                   for c in chunks)
    return raw + (b"data: [DONE]\n\n" if done else b"")


USAGE = {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
         "prompt_tokens_details": {"cached_tokens": 80, "cache_write_tokens": 10},
         "completion_tokens_details": {"reasoning_tokens": 12}}

# thinking (signed), text with multi-byte characters, two tool calls streamed by index
RICH = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"reasoning": "Let me ", "reasoning_details": [
        {"type": "reasoning.text", "text": "Let me ", "format": "anthropic-claude-v1",
         "index": 0}]}),
    chunk({"reasoning": "think ☃", "reasoning_details": [
        {"type": "reasoning.text", "text": "think ☃", "format": "anthropic-claude-v1",
         "index": 0}]}),
    chunk({"reasoning_details": [{"type": "reasoning.text", "text": "", "signature": "c2ln==",
                                  "format": "anthropic-claude-v1", "index": 0}]}),
    chunk({"content": "Voilà: "}),
    chunk({"content": "two calls 🚀"}),
    call(0, "call_a", "read_file", ""),
    call(0, args='{"path": '),
    call(0, args='"a.txt"}'),
    call(1, "call_b", "list_dir", '{"dir"'),
    call(1, args=': "src"}'),
    chunk({}, "tool_calls"),
    chunk(usage=USAGE),
]
RICH_MESSAGE = {  # the same reply as one chat.completion
    "id": "gen-1", "object": "chat.completion", "created": 1700000000, "model": "x/y",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Voilà: two calls 🚀", "reasoning": "Let me think ☃",
        "reasoning_details": [{"type": "reasoning.text", "text": "Let me think ☃",
                               "signature": "c2ln==", "format": "anthropic-claude-v1",
                               "index": 0}],
        "tool_calls": [
            {"id": "call_a", "type": "function",
             "function": {"name": "read_file", "arguments": '{"path": "a.txt"}'}},
            {"id": "call_b", "type": "function",
             "function": {"name": "list_dir", "arguments": '{"dir": "src"}'}}]}}],
    "usage": USAGE}
TEXT = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}),
        chunk({"content": "lo é"}), chunk({}, "stop"),
        chunk(usage={"prompt_tokens": 9, "completion_tokens": 3})]


def feed_split(enc: Encoder, raw: bytes, cuts: list[int]) -> bytes:
    """Feed `raw` cut at the given offsets, then close; everything the encoder said."""
    out, last = [], 0
    for c in sorted(set(cuts)) + [len(raw)]:
        out.append(enc.feed(raw[last:c]))
        last = c
    out.append(enc.close())
    return b"".join(out)


def events(raw: bytes) -> list[tuple[str, Any]]:
    """The (event name, parsed data) pairs of an SSE byte stream."""
    p = SseParser()
    return [(e.event, json.loads(e.data)) for e in p.feed(raw) + p.close()]
