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

# the text a stream delivers, counted for estimates when the upstream reports no usage
_TEXT = re.compile(rb'"(?:content|arguments|reasoning|reasoning_content)":\s*"((?:[^"\\]|\\.)*)"')
UsageHook = Callable[[dict[str, Any]], "dict[str, Any] | None"]

_NULL_USAGE = (b'"usage":null', b'"usage": null')
_NULL_FINISH = (b'"finish_reason":null', b'"finish_reason": null')


class SseWatcher:
    """feed(bytes) -> bytes to send now. Holds back only an incomplete trailing line."""

    __slots__ = ("drop_usage_chunk", "on_usage", "usage", "error", "done", "finished",
                 "first_content", "model", "gen_id", "text_chars", "_buf")

    def __init__(self, *, drop_usage_chunk: bool, on_usage: UsageHook | None = None) -> None:
        self.drop_usage_chunk = drop_usage_chunk
        self.on_usage = on_usage    # may return a new usage object to send instead
        self.text_chars = 0
        self.usage: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None
        self.done = False            # saw `data: [DONE]`
        self.finished = False        # saw a non-null finish_reason
        self.first_content = False   # saw the first content / tool-call / reasoning delta
        self.model: str | None = None
        self.gen_id: str | None = None
        self._buf = b""

    def feed(self, chunk: bytes) -> bytes:
        buf = self._buf + chunk if self._buf else chunk
        cut = buf.rfind(b"\n")
        if cut < 0:
            self._buf = buf
            return b""
        block, self._buf = buf[: cut + 1], buf[cut + 1 :]
        self.text_chars += text_chars(block)
        if (self.first_content and b'"usage"' not in block and b'"error"' not in block
                and b"[DONE]" not in block and b'"finish_reason"' not in block):
            return block  # the common mid-stream case: nothing to look at
        return self._scan(block)

    def flush(self) -> bytes:
        """What is left at end of stream (an unterminated last line)."""
        rest, self._buf = self._buf, b""
        return self._scan(rest + b"\n") if rest.strip() else b""

    def _scan(self, block: bytes) -> bytes:
        lines = block.split(b"\n")
        kept: list[bytes] = []
        changed = skip_blank = False
        for line in lines:
            if skip_blank and not line.strip():
                skip_blank = False
                continue
            skip_blank = False
            if line.startswith(b"data:"):
                new = self._look(line[5:].strip())
                if new is not None:
                    changed = True
                    if not new:
                        skip_blank = True  # the event's blank line goes with it
                        continue
                    line = b"data: " + new
            kept.append(line)
        return b"\n".join(kept) if changed else block

    def _look(self, data: bytes) -> bytes | None:
        """Observe one `data:` payload: None keeps it, b"" drops it, else its replacement."""
        if data == b"[DONE]":
            self.done = True
            return None
        if b'"finish_reason"' in data and not any(n in data for n in _NULL_FINISH):
            self.finished = True
        interesting = (not self.first_content or b'"error"' in data
                       or (b'"usage"' in data and not any(n in data for n in _NULL_USAGE)))
        if not interesting:
            return None
        try:
            obj = json.loads(data)
        except ValueError:
            return None
        if not isinstance(obj, dict):
            return None
        if self.gen_id is None:
            self.gen_id, self.model = obj.get("id"), obj.get("model")
        if isinstance(obj.get("error"), dict):
            self.error = obj["error"]
        choices = obj.get("choices")
        if not self.first_content and isinstance(choices, list) and _has_content(choices):
            self.first_content = True
        usage = obj.get("usage")
        if not isinstance(usage, dict):
            return None
        self.usage = usage
        if self.drop_usage_chunk and not choices:
            return b""
        new = self.on_usage(usage) if self.on_usage is not None else None
        if new is None:
            return None
        return json.dumps({**obj, "usage": new}, separators=(",", ":")).encode()


def text_chars(data: bytes) -> int:
    """Characters of generated text (content, tool arguments, reasoning) in raw JSON bytes."""
    return sum(len(m.group(1)) for m in _TEXT.finditer(data))


def _has_content(choices: list[Any]) -> bool:
    for c in choices:
        delta = c.get("delta") if isinstance(c, dict) else None
        if isinstance(delta, dict) and (delta.get("content") or delta.get("tool_calls")
                                        or delta.get("reasoning") or delta.get("reasoning_content")):
            return True
    return False


def parse_completion(body: bytes) -> dict[str, Any] | None:
    """A non-streamed response body as a JSON object, or None when it is not one."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def error_event(err: dict[str, Any], *, gen_id: str | None, model: str | None) -> bytes:
    """OpenRouter's way to end a failed stream: an error chunk, then [DONE]."""
    chunk = {"id": gen_id or "gen-localgate-error", "object": "chat.completion.chunk",
             "created": 0, "model": model or "", "error": err,
             "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n"
