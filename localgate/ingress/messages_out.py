"""The way back to Anthropic Messages: a chat.completion -> a Message (`from_chat`), and the chat
SSE stream -> Anthropic's event stream as it arrives (`StreamEncoder`), and Anthropic's error
body (`error_body`). Re-exported by
localgate.ingress.messages, which is what callers import.

Pure: no I/O, no asyncio, no aiohttp; imports localgate.ingress.chat, jsonfast, sse, stdlib.
"""

from __future__ import annotations

import json
from typing import Any

from localgate import jsonfast, sse
from localgate.ingress.chat import (
    ChatStreamReader,
    Thought,
    Tokens,
    ToolCall,
    error_message,
    error_status,
    new_id,
    obj,
    text_of,
    thoughts,
    tokens,
)

_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                 "function_call": "tool_use", "content_filter": "refusal"}
# Anthropic's error `type` for each status it documents; other 4xx/5xx fall back below.
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                429: "rate_limit_error", 500: "api_error", 503: "overloaded_error",
                504: "timeout_error", 529: "overloaded_error"}
CUT_MESSAGE = "the model's reply was cut off before it was complete (the upstream stream ended)"


def from_chat(resp: dict[str, Any], *, model: str) -> dict[str, Any]:
    """A chat.completion body -> an Anthropic Message (content blocks, stop reason, usage in
    Anthropic's convention). `model` is the id to report (what the client asked for)."""
    choices = resp.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    msg = obj(choice.get("message"))
    content: list[dict[str, Any]] = [_thought_block(t) for t in thoughts(msg)]
    for name in ("content", "refusal"):
        if isinstance(msg.get(name), str) and msg[name]:
            content.append({"type": "text", "text": msg[name]})
    for call in msg.get("tool_calls") or []:
        if isinstance(call, dict):
            content.extend(_tool_blocks(call))
    reason, stop_seq = stop_reason(choice)
    return {"id": new_id("msg_"), "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": reason, "stop_sequence": stop_seq,
            "usage": usage(tokens(resp.get("usage")) or Tokens())}


def stop_reason(choice: dict[str, Any]) -> tuple[str, str | None]:
    """(Anthropic stop_reason, stop_sequence) for a chat choice. A matched stop sequence is
    known only where the upstream says so: vLLM's string `stop_reason`, or OpenRouter's
    `native_finish_reason: "stop_sequence"`."""
    finish = choice.get("finish_reason")
    matched = choice.get("stop_reason")
    matched = matched if isinstance(matched, str) and matched else None
    if finish == "stop" and (matched or choice.get("native_finish_reason") == "stop_sequence"):
        return "stop_sequence", matched
    return _STOP_REASONS.get(finish or "stop", "end_turn"), None


def usage(t: Tokens) -> dict[str, int]:
    """Anthropic's usage: input_tokens excludes what was read from or written to a cache."""
    return {"input_tokens": t.uncached, "cache_creation_input_tokens": t.cache_write,
            "cache_read_input_tokens": t.cached, "output_tokens": t.completion}


def _thought_block(t: Thought) -> dict[str, Any]:
    if t.redacted is not None:
        return {"type": "redacted_thinking", "data": t.redacted}
    return {"type": "thinking", "thinking": t.text, "signature": t.signature or ""}


def tool_input(arguments: str) -> dict[str, Any] | None:
    """A tool call's JSON arguments as Anthropic's `input` object; None when they are not a
    JSON object (the caller then sends `{}` and says so in a text block)."""
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def bad_arguments_note(name: str, arguments: str) -> str:
    return (f"[localgate: the model called tool '{name}' with arguments that are not a JSON "
            f"object, so the call carries {{}}; the model sent: {arguments}]")


def _tool_blocks(call: dict[str, Any]) -> list[dict[str, Any]]:
    fn = obj(call.get("function"))
    name = text_of(fn.get("name"))
    raw = fn.get("arguments")
    raw = raw if isinstance(raw, str) else json.dumps(raw) if isinstance(raw, dict) else ""
    parsed = tool_input(raw)
    block = {"type": "tool_use", "id": call.get("id") or new_id("toolu_"), "name": name,
             "input": parsed if parsed is not None else {}}
    if parsed is None:
        return [block, {"type": "text", "text": bad_arguments_note(name, raw)}]
    return [block]


def error_body(status: int, openai_envelope: Any) -> dict[str, Any]:
    """An OpenAI error envelope (or the hosted gateway's flat shape) with its HTTP status ->
    Anthropic's `{"type": "error", "error": {"type", "message"}}`."""
    kind = _ERROR_TYPES.get(status) or ("invalid_request_error" if 400 <= status < 500
                                        else "api_error")
    return {"type": "error", "error": {"type": kind, "message": error_message(openai_envelope)}}


def _event(obj: dict[str, Any]) -> bytes:
    return sse.encode(jsonfast.dumps(obj), obj["type"])


class StreamEncoder(ChatStreamReader):
    """Chat SSE bytes -> Anthropic's event stream, event by event as the chunks arrive:
    message_start, content blocks (text, thinking, tool_use) one after another,
    message_delta (stop reason and usage), message_stop. An error chunk becomes an `error`
    event; a stream that ends before its finish becomes an `error` event too, never a
    message_stop."""

    def __init__(self, *, model: str, message_id: str | None = None) -> None:
        super().__init__()
        self.model = model
        self.message_id = message_id or new_id("msg_")
        self._index = -1            # the index of the last block started
        self._open: Any = None      # "text" | "thinking" | a ToolCall | None
        self._signed = False        # the open thinking block has its signature
        self._blocks: dict[int, int] = {}        # tool-call index -> its block index
        self._held: dict[int, str | None] = {}   # tool-call index -> arguments held back

    def ping(self) -> bytes:
        """A ping event, for the handler to send while the first chunk is awaited."""
        return _event({"type": "ping"})

    # -- hooks ---------------------------------------------------------------------------
    def _on_start(self, chunk: dict[str, Any]) -> None:
        t = tokens(chunk.get("usage")) or Tokens()
        self._emit(_event({"type": "message_start", "message": {
            "id": self.message_id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage(t)}}))

    def _on_text(self, text: str) -> None:
        if self._open != "text":
            self._block_start({"type": "text", "text": ""}, "text")
        self._block_delta({"type": "text_delta", "text": text})

    def _on_thought(self, t: Thought) -> None:
        if t.redacted is not None:
            self._block_start({"type": "redacted_thinking", "data": t.redacted}, "redacted")
            self._block_stop()
            return
        if self._open != "thinking" or (self._signed and t.text):
            self._block_start({"type": "thinking", "thinking": "", "signature": ""}, "thinking")
        if t.text:
            self._block_delta({"type": "thinking_delta", "thinking": t.text})
        if t.signature:
            self._block_delta({"type": "signature_delta", "signature": t.signature})
            self._signed = True

    def _on_tool_start(self, call: ToolCall) -> None:
        self._block_start({"type": "tool_use", "id": call.id, "name": call.name, "input": {}}, call)
        self._blocks[call.index] = self._index
        self._held[call.index] = ""

    def _on_tool_args(self, call: ToolCall, fragment: str) -> None:
        held = self._held.get(call.index)
        if held is None:  # streaming live: the arguments began as a JSON object
            self._json_delta(call, fragment)
            return
        held += fragment
        if not held.strip():
            self._held[call.index] = held
        elif held.lstrip().startswith("{"):
            self._held[call.index] = None
            self._json_delta(call, held)
        else:  # not an object: the client's partial-JSON parser must never see it
            self._held[call.index] = held

    def _on_finish(self) -> None:
        self._block_stop()

    def _on_end(self) -> None:
        self._block_stop()
        reason, stop_seq = stop_reason(self.finish_choice or {"finish_reason": self.finish})
        self._emit(_event({"type": "message_delta",
                           "delta": {"stop_reason": reason, "stop_sequence": stop_seq},
                           "usage": usage(self.usage or Tokens())}))
        self._emit(_event({"type": "message_stop"}))

    def _on_error(self, err: dict[str, Any]) -> None:
        self._emit(_event(error_body(error_status(err), {"error": err})))

    def _on_cut(self) -> None:
        self._emit(_event(error_body(502, {"error": {"message": CUT_MESSAGE}})))

    # -- blocks --------------------------------------------------------------------------
    def _block_start(self, block: dict[str, Any], kind: Any) -> None:
        self._block_stop()
        self._index += 1
        self._open, self._signed = kind, False
        self._emit(_event({"type": "content_block_start", "index": self._index,
                           "content_block": block}))

    def _block_delta(self, delta: dict[str, Any], index: int | None = None) -> None:
        self._emit(_event({"type": "content_block_delta",
                           "index": self._index if index is None else index, "delta": delta}))

    def _json_delta(self, call: ToolCall, fragment: str) -> None:
        # A fragment for a call whose block was already closed (a provider interleaving
        # parallel calls) still goes to that block's index: the SDKs assemble by index.
        self._block_delta({"type": "input_json_delta", "partial_json": fragment},
                    self._blocks[call.index])

    def _block_stop(self) -> None:
        if self._open is None:
            return
        call, self._open = self._open, None
        note = None
        if isinstance(call, ToolCall) and (self._held.get(call.index) or "").strip():
            # held back because it did not begin as a JSON object: the call carries {}
            note = bad_arguments_note(call.name, call.arguments)
        if isinstance(call, ToolCall):
            self._held[call.index] = None
        self._emit(_event({"type": "content_block_stop", "index": self._index}))
        if note:
            self._block_start({"type": "text", "text": ""}, "text")
            self._block_delta({"type": "text_delta", "text": note})
            self._block_stop()
