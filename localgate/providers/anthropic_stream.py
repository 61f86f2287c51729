"""Anthropic's streamed events as OpenAI chat chunks, one event at a time, as they arrive.

message_start -> the role chunk; text_delta -> content; tool_use start -> a tool call's
index/id/name, input_json_delta -> its argument fragments; thinking_delta / signature_delta /
redacted_thinking -> reasoning and reasoning_details; message_delta -> the finish reason and
usage (kept); message_stop -> the finish chunk, one usage-only chunk and [DONE]; an `error`
event -> OpenRouter's error chunk and [DONE]. Pure: stdlib, localgate.sse, localgate.jsonfast.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from localgate import jsonfast
from localgate.providers.anthropic_response import (error_object, finish_reason, openai_usage,
                                                    reasoning_encrypted, reasoning_text)
from localgate.providers.base import Target
from localgate.sse import Event, SseParser

DONE = b"data: [DONE]\n\n"


class AnthropicStream:
    """feed(bytes) -> OpenAI SSE bytes to send now; holds back at most one incomplete event.

    The finish chunk waits for message_stop (it follows message_delta at once): a stream cut
    between the two must not look finished, because the relay takes a finish_reason without
    [DONE] as a complete answer."""

    __slots__ = ("_model", "_parser", "_id", "_created", "_usage", "_stop", "_tools",
                 "_thoughts", "_started", "_ended", "_handlers")

    def __init__(self, t: Target) -> None:
        self._model = t.model_id
        self._parser = SseParser()
        self._id = ""
        self._created = int(time.time())
        self._usage: dict[str, Any] = {}
        self._stop: Any = None
        self._tools: dict[Any, int] = {}     # content block index -> tool_calls index
        self._thoughts: dict[Any, int] = {}  # content block index -> reasoning_details index
        self._started = False
        self._ended = False
        self._handlers: dict[str, Callable[[dict[str, Any]], bytes]] = {
            "message_start": self._message_start,
            "content_block_start": self._block_start,
            "content_block_delta": self._block_delta,
            "message_delta": self._message_delta,
            "message_stop": self._message_stop,
            "error": self._error,
        }

    @property
    def ended(self) -> bool:
        """True once message_stop or an error event was translated (the stream is complete)."""
        return self._ended

    def feed(self, data: bytes) -> bytes:
        return b"" if self._ended else self._translate(self._parser.feed(data))

    def close(self) -> bytes:
        """Upstream EOF: the last event if it completes the stream, else b"" (a cut stream is
        reported by the relay, never dressed up as finished here)."""
        if self._ended:
            return b""
        out = self._translate(self._parser.close())
        return out if self._ended else b""

    def _translate(self, events: list[Event]) -> bytes:
        out: list[bytes] = []
        for ev in events:
            try:
                obj = jsonfast.loads(ev.data.encode())
            except ValueError:
                continue  # not JSON: nothing Anthropic sends
            if not isinstance(obj, dict):
                continue
            kind = obj.get("type")
            handler = self._handlers.get(kind if isinstance(kind, str) else ev.event)
            if handler is not None:  # ping, content_block_stop and unknown events say nothing
                out.append(handler(obj))
            if self._ended:
                break
        return b"".join(out)

    # -- events --------------------------------------------------------------------------------

    def _message_start(self, obj: dict[str, Any]) -> bytes:
        msg = obj.get("message")
        if not isinstance(msg, dict):
            msg = {}
        if isinstance(msg.get("id"), str) and not self._id:
            self._id = msg["id"]
        self._merge_usage(msg.get("usage"))
        return self._opening()

    def _block_start(self, obj: dict[str, Any]) -> bytes:
        block = obj.get("content_block")
        if not isinstance(block, dict):
            return b""
        index, kind = obj.get("index"), block.get("type")
        if not isinstance(index, int):
            return b""
        if kind == "tool_use":
            n = self._tools[index] = len(self._tools)
            args = block.get("input")
            return self._delta({"tool_calls": [{
                "index": n, "id": block.get("id"), "type": "function",
                "function": {"name": block.get("name"),
                             "arguments": jsonfast.dumps(args).decode() if args else ""}}]})
        if kind in ("thinking", "redacted_thinking"):
            n = self._thoughts[index] = len(self._thoughts)
            if kind == "redacted_thinking":
                detail = reasoning_encrypted(str(block.get("data") or ""), n)
                return self._delta({"reasoning_details": [detail]})
            return self._reasoning(str(block.get("thinking") or ""), n)
        if kind == "text" and isinstance(block.get("text"), str) and block["text"]:
            return self._delta({"content": block["text"]})
        return self._opening()  # an empty text block, or a server tool we do not translate

    def _block_delta(self, obj: dict[str, Any]) -> bytes:
        delta = obj.get("delta")
        if not isinstance(delta, dict):
            return b""
        index, kind = obj.get("index"), delta.get("type")
        if kind == "text_delta" and isinstance(delta.get("text"), str) and delta["text"]:
            return self._delta({"content": delta["text"]})
        if not isinstance(index, int):
            return b""
        if kind == "input_json_delta" and isinstance(delta.get("partial_json"), str) \
                and delta["partial_json"] and index in self._tools:
            return self._delta({"tool_calls": [{
                "index": self._tools[index], "function": {"arguments": delta["partial_json"]}}]})
        if kind == "thinking_delta" and index in self._thoughts:
            return self._reasoning(str(delta.get("thinking") or ""), self._thoughts[index])
        if kind == "signature_delta" and index in self._thoughts:
            detail = reasoning_text("", self._thoughts[index], str(delta.get("signature") or ""))
            return self._delta({"reasoning_details": [detail]})
        return b""

    def _message_delta(self, obj: dict[str, Any]) -> bytes:
        delta = obj.get("delta")
        if isinstance(delta, dict) and delta.get("stop_reason"):
            self._stop = delta["stop_reason"]
        self._merge_usage(obj.get("usage"))  # counts here are cumulative: they replace
        return b""

    def _message_stop(self, obj: dict[str, Any]) -> bytes:
        self._ended = True
        usage = {"id": self._gen_id(), "object": "chat.completion.chunk",
                 "created": self._created, "model": self._model, "choices": [],
                 "usage": openai_usage(self._usage)}
        return self._opening() + self._chunk({}, finish_reason(self._stop)) \
            + _frame(usage) + DONE

    def _error(self, obj: dict[str, Any]) -> bytes:
        """OpenRouter's way to end a failed stream; usage so far rides along for the log."""
        self._ended = True
        chunk: dict[str, Any] = {
            "id": self._gen_id(), "object": "chat.completion.chunk",
            "created": self._created, "model": self._model,
            "error": error_object(0, jsonfast.dumps(obj)),
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}
        if self._usage:
            chunk["usage"] = openai_usage(self._usage)
        return _frame(chunk) + DONE

    # -- chunks --------------------------------------------------------------------------------

    def _gen_id(self) -> str:
        if not self._id:  # only when message_start never came
            import uuid  # rare: kept off the daemon's start-up imports
            self._id = f"msg_localgate_{uuid.uuid4().hex[:24]}"
        return self._id

    def _merge_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if isinstance(v, int)})

    def _opening(self) -> bytes:
        """The role chunk, once, before anything else the client sees."""
        if self._started:
            return b""
        self._started = True
        return self._chunk({"role": "assistant", "content": ""}, None)

    def _reasoning(self, text: str, n: int) -> bytes:
        if not text:
            return self._opening()
        return self._delta({"reasoning": text, "reasoning_details": [reasoning_text(text, n)]})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return self._opening() + self._chunk(delta, None)

    def _chunk(self, delta: dict[str, Any], finish: str | None) -> bytes:
        return _frame({"id": self._gen_id(), "object": "chat.completion.chunk",
                       "created": self._created, "model": self._model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def _frame(obj: dict[str, Any]) -> bytes:
    return b"data: " + jsonfast.dumps(obj) + b"\n\n"
