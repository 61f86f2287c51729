"""A strict fake of Anthropic's Messages API on 127.0.0.1 (an aiohttp app), for tests that drive
localgate end to end: POST /v1/messages (under any prefix) checks `x-api-key` and
`anthropic-version`, refuses with Anthropic's real 400 what the real API refuses
(tests/fake_anthropic_rules.py), and answers like it, streamed (the real event sequence, `ping`
included) or not, with text, a tool_use, or thinking first when the request enables it.

POST /v1/messages/count_tokens answers Anthropic's `{"input_tokens": N}` with the same tokenizer.
Prompt caching is simulated: the prefix up to each `cache_control` breakpoint is remembered, so
a second request with the same prefix reports `cache_read_input_tokens`. Fault knobs: an error
status with Anthropic's body (429, 529, ...), an `error` event mid-stream, a cut stream, slow
events, a hang. Everything received is recorded in `seen`, every answer's bytes in `sent`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fake_anthropic_rules import problem

FAKE_KEY = "sk-ant-fake-0123456789"
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}
SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Knobs:
    api_key: str = FAKE_KEY
    reply: str = "text"                 # "text" | "tool_use"
    text: str = "Hello from the fake Messages API."
    tool_name: str = "get_weather"
    tool_input: dict[str, Any] = field(default_factory=lambda: {"city": "Paris", "unit": "C"})
    stop_reason: str | None = None      # instead of end_turn / tool_use (max_tokens, refusal...)
    status: int = 200                   # >= 400: answer with Anthropic's error body
    error_message: str | None = None
    header_delay: float = 0.0           # seconds before the response headers
    hang: bool = False                  # never answer
    event_delay: float = 0.0            # seconds between stream events
    mid_error: bool = False             # an `error` event (overloaded) after the first delta
    cut_after: int | None = None        # drop the connection after this many events
    chunks: int = 3                     # pieces the text and the tool input are streamed in


def tokens(obj: Any) -> int:
    """The fake's tokenizer: four characters of compact JSON a token."""
    return max(1, len(json.dumps(obj, separators=(",", ":"))) // 4)


class FakeAnthropic:
    def __init__(self) -> None:
        self.knobs = Knobs()
        self.seen: list[Seen] = []
        self.sent: list[bytes] = []       # the bytes of every answer (stream events one by one)
        self.cache: dict[str, int] = {}   # prefix digest -> its tokens
        self.app = web.Application()
        self.app.router.add_post("/v1/messages", self.messages)
        self.app.router.add_post("/{prefix:.+}/v1/messages", self.messages)
        self.app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        self.app.router.add_post("/{prefix:.+}/v1/messages/count_tokens", self.count_tokens)
        self.url = ""

    def reset(self) -> None:
        self.knobs = Knobs()
        self.seen.clear()
        self.sent.clear()
        self.cache.clear()

    @property
    def last(self) -> Seen:
        return self.seen[-1]

    async def messages(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.seen.append(Seen(request.path, dict(request.headers), body))
        k = self.knobs
        if k.hang:
            await asyncio.sleep(3600)
        if k.header_delay:
            await asyncio.sleep(k.header_delay)
        refusal = self._refusal(request, body)
        if refusal is not None:
            return refusal
        msg = self._message(body)
        if body.get("stream"):
            return await self._stream(request, msg)
        data = json.dumps(msg).encode()
        self.sent.append(data)
        return web.Response(body=data, content_type="application/json",
                            headers={"request-id": "req_fake_0001"})

    async def count_tokens(self, request: web.Request) -> web.Response:
        """Anthropic's token count: the same fields as a message minus max_tokens and stream."""
        raw = await request.read()
        body = json.loads(raw)
        self.seen.append(Seen(request.path, dict(request.headers), body))
        if request.headers.get("x-api-key") != self.knobs.api_key:
            return error(401, "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return error(400, "anthropic-version: header is required")
        msg = problem({**body, "max_tokens": 1}) if isinstance(body, dict) else "body"
        if msg is None and ("max_tokens" in body or "stream" in body):
            msg = "max_tokens: Extra inputs are not permitted"
        if msg is not None:
            return error(400, msg)
        count = sum(tokens({k: v for k, v in b.items() if k != "cache_control"})
                    for b in _cacheable(body))
        data = json.dumps({"input_tokens": count}).encode()
        self.sent.append(data)
        return web.Response(body=data, content_type="application/json")

    def _refusal(self, request: web.Request, body: Any) -> web.Response | None:
        if request.headers.get("x-api-key") != self.knobs.api_key:
            return error(401, "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return error(400, "anthropic-version: header is required")
        msg = problem(body)
        if msg is not None:
            return error(400, msg)
        if self.knobs.status >= 400:
            return error(self.knobs.status, self.knobs.error_message)
        return None

    # -- the answer ------------------------------------------------------------------------

    def _message(self, body: dict[str, Any]) -> dict[str, Any]:
        k = self.knobs
        content: list[dict[str, Any]] = []
        if (body.get("thinking") or {}).get("type") == "enabled":
            content.append({"type": "thinking", "thinking": "Let me think about that.",
                            "signature": SIGNATURE})
        content.append({"type": "text", "text": k.text})
        stop = "end_turn"
        if k.reply == "tool_use":
            content.append({"type": "tool_use", "id": "toolu_01FakeToolUse0000000001",
                            "name": k.tool_name, "input": k.tool_input})
            stop = "tool_use"
        out_tokens = tokens(content)
        return {"id": f"msg_fake{len(self.seen):020d}", "type": "message", "role": "assistant",
                "model": body["model"], "content": content,
                "stop_reason": k.stop_reason or stop, "stop_sequence": None,
                "usage": {**self._input_usage(body), "output_tokens": out_tokens,
                          "service_tier": "standard"}}

    def _input_usage(self, body: dict[str, Any]) -> dict[str, Any]:
        """Tokens of the prompt, split as the real cache would: the longest remembered prefix
        ending at a breakpoint is read; the prefix up to the last breakpoint is written."""
        h = hashlib.sha256(str(body["model"]).encode())
        total, marks = 0, []
        for block in _cacheable(body):
            bare = {k: v for k, v in block.items() if k != "cache_control"}
            h.update(json.dumps(bare, sort_keys=True).encode())
            total += tokens(bare)
            if "cache_control" in block:
                marks.append((h.hexdigest(), total))
        read = max((n for d, n in marks if d in self.cache), default=0)
        write = marks[-1][1] - read if marks and marks[-1][0] not in self.cache else 0
        self.cache.update(marks)
        return {"input_tokens": total - read - write, "cache_creation_input_tokens": write,
                "cache_read_input_tokens": read,
                "cache_creation": {"ephemeral_5m_input_tokens": write,
                                   "ephemeral_1h_input_tokens": 0}}

    # -- streaming -------------------------------------------------------------------------

    async def _stream(self, request: web.Request, msg: dict[str, Any]) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "request-id": "req_fake_0001"})
        await resp.prepare(request)
        k = self.knobs
        for n, (name, data) in enumerate(self._events(msg)):
            if k.cut_after is not None and n >= k.cut_after:
                assert request.transport is not None
                request.transport.abort()
                return resp
            if k.event_delay:
                await asyncio.sleep(k.event_delay)
            await self._send(resp, sse(name, data))
            if k.mid_error and name == "content_block_delta":
                await self._send(resp, sse("error", {"type": "error", "error": {
                    "type": "overloaded_error", "message": "Overloaded"}}))
                return resp
        await resp.write_eof()
        return resp

    async def _send(self, resp: web.StreamResponse, data: bytes) -> None:
        self.sent.append(data)
        await resp.write(data)

    def _events(self, msg: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        usage = msg["usage"]
        start = {**msg, "content": [], "stop_reason": None,
                 "usage": {**usage, "output_tokens": 1}}
        events = [("message_start", {"type": "message_start", "message": start})]
        for i, block in enumerate(msg["content"]):
            events += self._block_events(i, block)
            if i == 0:
                events.append(("ping", {"type": "ping"}))
        final = {k: v for k, v in usage.items() if k not in ("service_tier", "cache_creation")}
        events += [("message_delta", {"type": "message_delta", "delta": {
                       "stop_reason": msg["stop_reason"], "stop_sequence": None},
                       "usage": final}),
                   ("message_stop", {"type": "message_stop"})]
        return events

    def _block_events(self, i: int, block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        kind = block["type"]
        opening: dict[str, Any]
        deltas: list[dict[str, Any]]
        if kind == "text":
            opening = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece}
                      for piece in split(block["text"], self.knobs.chunks)]
        elif kind == "tool_use":
            opening = {**block, "input": {}}
            raw = json.dumps(block["input"])
            deltas = [{"type": "input_json_delta", "partial_json": ""}] + [
                {"type": "input_json_delta", "partial_json": p}
                for p in split(raw, self.knobs.chunks)]
        else:  # thinking
            opening = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": block["thinking"]},
                      {"type": "signature_delta", "signature": block["signature"]}]
        return ([("content_block_start", {"type": "content_block_start", "index": i,
                                          "content_block": opening})]
                + [("content_block_delta", {"type": "content_block_delta", "index": i,
                                            "delta": d}) for d in deltas]
                + [("content_block_stop", {"type": "content_block_stop", "index": i})])


def _cacheable(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The prompt in the order the cache sees it: tools, system, messages."""
    system = body.get("system")
    blocks = list(body.get("tools") or [])
    blocks += system if isinstance(system, list) else [{"type": "text", "text": system}] \
        if system else []
    for msg in body["messages"]:
        content = msg["content"]
        blocks += content if isinstance(content, list) else [{"type": "text", "text": content}]
    return blocks


def split(text: str, n: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, n)))
    return [text[i:i + size] for i in range(0, len(text), size)] or [text]


def sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def error(status: int, message: str | None) -> web.Response:
    kind = ERROR_TYPES.get(status, "api_error")
    headers: dict[str, str] = {"request-id": "req_fake_error"}
    if status == 429:
        headers["retry-after"] = "7"
    default = {429: "Number of request tokens has exceeded your per-minute rate limit",
               529: "Overloaded"}.get(status, f"fake Messages API says {status}")
    body = {"type": "error", "error": {"type": kind, "message": message or default},
            "request_id": "req_fake_error"}
    return web.json_response(body, status=status, headers=headers)
