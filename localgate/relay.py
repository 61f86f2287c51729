"""Watches an OpenAI-format SSE stream while it is relayed byte for byte.

The relay never re-serialises what it passes on: it hands complete lines through unchanged and
only parses the few frames it must look into (usage, errors, the first content). The one edit
it makes is dropping the usage-only chunk the daemon asked for when the client did not.
Pure: no I/O, no asyncio.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from localgate import jsonfast

# the text a stream delivers, counted for estimates when the upstream reports no usage
_TEXT_START = re.compile(rb'"(?:content|arguments|reasoning(?:_content)?)": ?"')
UsageHook = Callable[[dict[str, Any]], "dict[str, Any] | None"]

# Frames worth parsing are found by markers (see _notable): OpenAI sends `"usage":null` and
# `"finish_reason":null` on every chunk, so only non-null values count, compact or spaced.


class SseWatcher:
    """feed(bytes) -> bytes to send now. Holds back only an incomplete trailing line."""

    __slots__ = ("drop_usage_chunk", "on_usage", "usage", "error", "done", "finished",
                 "first_content", "text_chars", "_first_data", "_buf")

    def __init__(self, *, drop_usage_chunk: bool, on_usage: UsageHook | None = None) -> None:
        self.drop_usage_chunk = drop_usage_chunk
        self.on_usage = on_usage    # may return a new usage object to send instead
        self.usage: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None
        self.done = False            # saw `data: [DONE]`
        self.finished = False        # saw a non-null finish_reason
        self.first_content = False   # saw the first content / tool-call / reasoning text
        self.text_chars = 0          # generated text seen, for estimates
        self._first_data = b""       # the first data line, for id/model of our own error chunk
        self._buf = b""

    def feed(self, chunk: bytes) -> bytes:
        buf = self._buf + chunk if self._buf else chunk
        cut = buf.rfind(b"\n")
        if cut < 0:
            self._buf = buf
            return b""
        block, self._buf = buf[: cut + 1], buf[cut + 1 :]
        if not self.first_content:
            self._opening(block)
        if not _notable(block):
            return block  # the common mid-stream case: nothing to look at
        return self._scan(block)

    def flush(self) -> bytes:
        """What is left at end of stream (an unterminated last line)."""
        rest, self._buf = self._buf, b""
        return self.feed(rest + b"\n") if rest.strip() else b""

    def sent(self, data: bytes) -> None:
        """Count what was sent (after the write, to keep it off the time to first byte)."""
        self.text_chars += text_chars(data)

    def ids(self) -> tuple[str | None, str | None]:
        """(generation id, model) of this stream, for an error chunk of our own."""
        try:
            obj = json.loads(self._first_data)
        except ValueError:
            return None, None
        return (obj.get("id"), obj.get("model")) if isinstance(obj, dict) else (None, None)

    def _opening(self, block: bytes) -> None:
        if not self._first_data:
            i = block.find(b"data:")
            if i >= 0:
                j = block.find(b"\n", i)
                self._first_data = block[i + 5 : j].strip()
        if b'"tool_calls"' in block or any(block[m.end():m.end() + 1] != b'"'
                                           for m in _TEXT_START.finditer(block)):
            self.first_content = True

    def _scan(self, block: bytes) -> bytes:
        """Parse only the lines holding a marker; splice in what changed."""
        spans: set[tuple[int, int]] = set()
        for marker in _MARKERS:
            i = block.find(marker)
            while i >= 0:
                a = block.rfind(b"\n", 0, i) + 1
                b = block.find(b"\n", i)
                spans.add((a, b))
                i = block.find(marker, b)
        out: list[bytes] = []
        pos = 0
        for a, b in sorted(spans):
            if a < pos or not block.startswith(b"data:", a):
                continue
            new = self._look(block[a + 5 : b].strip())
            if new is None:
                continue
            out.append(block[pos:a])
            if new:
                out.append(b"data: " + new)
                pos = b
            else:  # drop the line and the blank line that ends its event
                pos = b + 2 if block.startswith(b"\n\n", b) else b + 1
        if not out:
            return block
        out.append(block[pos:])
        return b"".join(out)

    def _look(self, data: bytes) -> bytes | None:
        """Observe one `data:` payload: None keeps it, b"" drops it, else its replacement."""
        if data == b"[DONE]":
            self.done = True
            return None
        try:
            obj = json.loads(data)
        except ValueError:
            return None
        if not isinstance(obj, dict):
            return None
        if isinstance(obj.get("error"), dict):
            self.error = obj["error"]
        choices = obj.get("choices")
        if isinstance(choices, list) and any(isinstance(c, dict) and c.get("finish_reason")
                                             for c in choices):
            self.finished = True
        usage = obj.get("usage")
        if not isinstance(usage, dict):
            return None
        self.usage = usage
        if self.drop_usage_chunk and not choices and "error" not in obj:
            return b""
        new = self.on_usage(usage) if self.on_usage is not None else None
        if new is None:
            return None
        return jsonfast.dumps({**obj, "usage": new})


_MARKERS = (b'"usage":{', b'"usage": {', b'"finish_reason":"', b'"finish_reason": "',
            b'"error"', b"[DONE]")


def _notable(data: bytes) -> bool:
    return (b'"usage":{' in data or b'"finish_reason":"' in data or b'"error"' in data
            or b"[DONE]" in data or b'"usage": {' in data or b'"finish_reason": "' in data)


def text_chars(data: bytes) -> int:
    """Characters of generated text (content, tool arguments, reasoning) in raw JSON bytes,
    for estimates; escapes count as written."""
    n = 0
    for m in _TEXT_START.finditer(data):
        start = m.end()
        end = data.find(b'"', start)
        while end > 0 and data[end - 1] == 0x5C:  # an escaped quote: keep looking
            end = data.find(b'"', end + 1)
        if end > 0:
            n += end - start
    return n


_DECODER = json.JSONDecoder()


def looks_like_object(body: bytes) -> bool:
    """A cheap check that a non-streamed body is a JSON object (garbage becomes a 502)."""
    body = body.strip()
    return body[:1] == b"{" and body[-1:] == b"}"


def usage_span(body: bytes) -> tuple[dict[str, Any], int, int] | None:
    """The response's `usage` object and its byte span, found from the end without parsing the
    whole body (a quote inside a JSON string is escaped, so `"usage"` followed by a colon can
    only be a key)."""
    i = body.rfind(b'"usage"')
    while i >= 0:
        tail = body[i + 7 :].decode("utf-8", "replace")
        k = len(tail) - len(tail.lstrip())
        if tail[k : k + 1] == ":":
            k += 1
            k += len(tail[k:]) - len(tail[k:].lstrip())
            if tail[k : k + 1] == "{":
                try:
                    obj, end = _DECODER.raw_decode(tail, k)
                except ValueError:
                    return None
                a = i + 7 + len(tail[:k].encode())
                return obj, a, a + len(tail[k:end].encode())
        i = body.rfind(b'"usage"', 0, i)
    return None


def error_event(err: dict[str, Any], *, gen_id: str | None, model: str | None) -> bytes:
    """OpenRouter's way to end a failed stream: an error chunk, then [DONE]."""
    chunk = {"id": gen_id or "gen-localgate-error", "object": "chat.completion.chunk",
             "created": 0, "model": model or "", "error": err,
             "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"
