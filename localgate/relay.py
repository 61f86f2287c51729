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


def dumps(obj: Any) -> bytes:
    return jsonfast.dumps(obj)


def error_text(body: bytes) -> str:
    """The human message of an error body (OpenAI, OpenRouter, Anthropic or plain), short."""
    try:
        obj = jsonfast.loads(body)
    except (ValueError, RecursionError):
        return body[:300].decode("utf-8", "replace").strip()
    err = obj.get("error") if isinstance(obj, dict) else None
    if isinstance(err, dict):
        return str(err.get("message") or "")[:300]
    if isinstance(obj, dict) and isinstance(obj.get("message"), str):
        return obj["message"][:300]
    return str(err or "")[:300]


def body_chars(body: Any) -> int:
    """Characters of a request body other than chat (Responses, Messages, embeddings): its JSON
    text, a slight over-estimate of the prompt, for worst cases and estimates."""
    return len(jsonfast.dumps(body))


def normalise_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """OpenAI Responses spells usage input/output_tokens with *_details (input includes cached);
    return it in chat's spelling so that accounting reads one convention. Others unchanged."""
    if "input_tokens_details" not in usage and "output_tokens_details" not in usage:
        return usage
    itd = usage.get("input_tokens_details") if isinstance(
        usage.get("input_tokens_details"), dict) else {}
    otd = usage.get("output_tokens_details") if isinstance(
        usage.get("output_tokens_details"), dict) else {}
    out: dict[str, Any] = {
        "prompt_tokens": usage.get("input_tokens") or 0,
        "completion_tokens": usage.get("output_tokens") or 0,
        "prompt_tokens_details": {"cached_tokens": itd.get("cached_tokens") or 0},
        "completion_tokens_details": {"reasoning_tokens": otd.get("reasoning_tokens") or 0}}
    for k in ("cost", "is_byok", "cost_details"):
        if k in usage:
            out[k] = usage[k]
    return out


class Shadow:
    """Watches a stream that is passed on untranslated (Anthropic Messages to Anthropic with the
    user's key): a translator turns a copy into chat chunks for an SseWatcher to read usage,
    first content and errors from; the client gets the upstream's bytes."""

    def __init__(self, translator: Any) -> None:
        self.tr = translator
        self.inner = SseWatcher(drop_usage_chunk=False)

    def feed(self, chunk: bytes) -> bytes:
        self.inner.feed(self.tr.feed(chunk))
        return chunk

    def flush(self) -> bytes:
        self.inner.feed(self.tr.close())
        self.inner.flush()
        return b""

    def sent(self, data: bytes) -> None:
        pass

    def ids(self) -> tuple[str | None, str | None]:
        return self.inner.ids()

    def __getattr__(self, name: str) -> Any:  # usage, error, done, finished, first_content ...
        return getattr(self.inner, name)


class _EventWatcher:
    """Watches an event stream that is passed on untranslated, one parsed SSE event at a time;
    feed() hands the bytes back unchanged."""

    def __init__(self) -> None:
        from localgate.sse import SseParser
        self._sse = SseParser()
        self.usage: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None
        self.done = self.finished = self.first_content = False
        self.text_chars = 0

    def feed(self, chunk: bytes) -> bytes:
        for ev in self._sse.feed(chunk):
            self._event(ev.data)
        return chunk

    def flush(self) -> bytes:
        for ev in self._sse.close():
            self._event(ev.data)
        return b""

    def sent(self, data: bytes) -> None:
        pass

    def ids(self) -> tuple[str | None, str | None]:
        return None, None

    def _event(self, data: str) -> None:
        raise NotImplementedError

    @staticmethod
    def _object(data: str) -> dict[str, Any] | None:
        """An event's JSON object, or None for anything else."""
        try:
            obj = json.loads(data)
        except ValueError:
            return None
        return obj if isinstance(obj, dict) else None


class ResponsesWatcher(_EventWatcher):
    """Watches an OpenAI Responses event stream passed on untranslated (OpenAI or the hosted
    gateway): usage from `response.completed`, failures, the first output, text for estimates."""

    def __init__(self) -> None:
        super().__init__()
        self.sequence = 0

    def _event(self, data: str) -> None:
        obj = self._object(data)
        if obj is None:
            return
        kind = obj.get("type", "")
        if isinstance(obj.get("sequence_number"), int):
            self.sequence = obj["sequence_number"]
        if kind.endswith(".delta") and isinstance(obj.get("delta"), str):
            self.first_content = True
            self.text_chars += len(obj["delta"])
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self.done = self.finished = True
            resp = obj.get("response") if isinstance(obj.get("response"), dict) else {}
            if isinstance(resp.get("usage"), dict):
                self.usage = normalise_usage(resp["usage"])
            if kind == "response.failed":
                err = resp.get("error")
                self.error = err if isinstance(err, dict) else {"message": "response failed"}
        elif kind == "error":
            self.error = {"message": str(obj.get("message") or "error"),
                          "code": obj.get("code")}


def native_error_event(fmt: str, err: dict[str, Any], sequence: int = 0) -> bytes:
    """Our own error event in a stream passed on untranslated (its own wire format)."""
    message = str(err.get("message") or "upstream error")
    if fmt == "messages":
        body = {"type": "error", "error": {"type": "api_error", "message": message}}
        return b"event: error\ndata: " + jsonfast.dumps(body) + b"\n\n"
    body = {"type": "error", "code": err.get("code") or "upstream_error", "message": message,
            "param": None, "sequence_number": sequence + 1}
    return b"event: error\ndata: " + jsonfast.dumps(body) + b"\n\n"


class KeyScrubber:
    """Replaces a key in a stream of byte chunks, also when it arrives split across chunks:
    the only bytes held back are a chunk's end that could be the start of the key (almost
    always none, so nothing waits)."""

    __slots__ = ("key", "_held")

    def __init__(self, key: bytes) -> None:
        self.key = key
        self._held = b""

    def feed(self, data: bytes) -> bytes:
        if self._held:
            data, self._held = self._held + data, b""
        if self.key in data:
            data = data.replace(self.key, b"<your key>")
        if data and data[-1:] in self.key:  # else no key can start at the end (the usual case)
            for k in range(min(len(self.key) - 1, len(data)), 0, -1):
                if data.endswith(self.key[:k]):
                    data, self._held = data[:-k], data[-k:]
                    break
        return data

    def flush(self) -> bytes:
        held, self._held = self._held, b""
        return held


def scrub_text(text: str, key: str | None) -> str:
    return text.replace(key, "<your key>") if key and key in text else text


class AnyWatcher(_EventWatcher):
    """Watches a stream of a format localgate does not speak (a Kilo service call forwarded as
    it is): usage from whatever JSON events carry one (chat chunks, `response.usage`, Anthropic
    `message.usage` + `message_delta`), merged; no judgement on how it ends."""

    def __init__(self) -> None:
        super().__init__()
        self.done = self.finished = True

    def feed(self, chunk: bytes) -> bytes:
        self.first_content = True
        return super().feed(chunk)

    def sent(self, data: bytes) -> None:
        self.text_chars += text_chars(data)

    def _event(self, data: str) -> None:
        obj = self._object(data) if '"usage"' in data else None
        if obj is None:
            return
        for holder in (obj, obj.get("response"), obj.get("message")):
            if isinstance(holder, dict) and isinstance(holder.get("usage"), dict):
                self.usage = {**(self.usage or {}), **normalise_usage(holder["usage"])}
