"""A real upstream on 127.0.0.1 that speaks the providers' wire formats, with fault knobs.

One FakeUpstream app answers every provider path (`.../chat/completions` under any prefix), so a
test points each provider's base_url at its own prefix and asserts where requests went.
Wire formats: OpenAI chat + SSE (with `usage:null` on every chunk when usage is requested, then
a usage-only chunk), OpenRouter (`: OPENROUTER PROCESSING` comments, usage with `cost`,
`is_byok`, `cost_details`).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes


@dataclass
class Knobs:
    status: int = 200                # answer this status with an error body
    error_body: Any = None           # body for status >= 400 (default: OpenAI error envelope)
    header_delay: float = 0.0        # seconds before response headers
    hang: bool = False               # never answer
    chunks: int = 3                  # content chunks in a stream
    chunk_delay: float = 0.0         # seconds between chunks
    cut_after: int | None = None     # abort the connection after N content chunks
    stall_after: int | None = None   # go silent (forever) after N content chunks
    garbage: bool = False            # 200 with a non-JSON body
    style: str = "openai"            # "openai" | "openrouter"
    tool_call: bool = False          # answer with a tool call instead of text
    mid_error: bool = False          # send an OpenRouter-style error chunk mid-stream
    no_done: bool = False            # end the stream without [DONE]
    usage: dict[str, int] = field(default_factory=lambda: {"prompt_tokens": 11,
                                                           "completion_tokens": 7})


class FakeUpstream:
    def __init__(self) -> None:
        self.knobs = Knobs()
        self.seen: list[Seen] = []
        self.disconnects = 0
        self.models: list[dict[str, Any]] = []
        self.app = web.Application()
        self.app.router.add_post("/{tail:.*}/chat/completions", self.chat)
        self.app.router.add_post("/{tail:.*}/fim/completions", self.fim)
        self.app.router.add_get("/{tail:.*}/models", self.list_models)
        self.app.router.add_route("*", "/api/{tail:.*}", self.kilo_api)
        self.url = ""

    def reset(self) -> None:
        self.knobs = Knobs()
        self.seen.clear()
        self.disconnects = 0

    @property
    def last(self) -> Seen:
        return self.seen[-1]

    async def _record(self, request: web.Request) -> Seen:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        seen = Seen(request.path, dict(request.headers), body, raw)
        self.seen.append(seen)
        return seen

    async def list_models(self, request: web.Request) -> web.Response:
        if not self.models:
            raise web.HTTPNotFound()
        return web.json_response({"data": self.models})

    async def kilo_api(self, request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/chat/completions"):
            return await self.chat(request)  # aiohttp prefers the /api/ prefix route
        if request.path.endswith("/fim/completions"):
            return await self.fim(request)
        if request.path.endswith("/models") and request.method == "GET":
            return await self.list_models(request)
        seen = await self._record(request)
        return web.json_response({"echo_path": request.path_qs, "method": request.method,
                                  "auth": seen.headers.get("Authorization", "")[:7],
                                  "body": seen.body}, status=200)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record(request)
        k = self.knobs
        if k.hang:
            await asyncio.sleep(3600)
        if k.header_delay:
            await asyncio.sleep(k.header_delay)
        if k.status >= 400:
            body = k.error_body if k.error_body is not None else {
                "error": {"message": f"fake upstream says {k.status}", "type": "fake_error",
                          "code": k.status}}
            return web.json_response(body, status=k.status)
        if k.garbage:
            return web.Response(body=b"<html>oops</html>", content_type="application/json")
        body = seen.body or {}
        model = body.get("model", "fake-model")
        if body.get("stream"):
            return await self._stream(request, body, model)
        return web.json_response(self._completion(body, model))

    async def fim(self, request: web.Request) -> web.StreamResponse:
        """Mistral's FIM endpoint (Codestral): strict about fields, usage on the last chunk."""
        seen = await self._record(request)
        body = seen.body or {}
        allowed = {"model", "prompt", "suffix", "max_tokens", "min_tokens", "stop", "stream",
                   "temperature", "top_p", "random_seed"}
        extra = sorted(set(body) - allowed)
        if extra:
            return web.json_response({"object": "error", "message": {"detail": [
                {"type": "extra_forbidden", "loc": ["body", extra[0]]}]}}, status=422)
        if self.knobs.status >= 400:
            return web.json_response({"message": "fim refused"}, status=self.knobs.status)
        usage = {**self.knobs.usage,
                 "total_tokens": sum(self.knobs.usage.values())}
        model = body.get("model", "codestral")
        if not body.get("stream"):
            return web.json_response({
                "id": "fim-1", "object": "chat.completion", "model": model, "created": 1,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "return a + b"}}],
                "usage": usage})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i, text in enumerate(("return ", "a + b")):
            if self.knobs.chunk_delay:
                await asyncio.sleep(self.knobs.chunk_delay)
            last = i == 1
            chunk: dict[str, Any] = {"id": "fim-1", "object": "chat.completion.chunk",
                                     "model": model, "created": 1, "choices": [{
                                         "index": 0, "delta": {"content": text},
                                         "finish_reason": "stop" if last else None}]}
            if last:
                chunk["usage"] = usage
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        return resp

    def _usage(self) -> dict[str, Any]:
        u: dict[str, Any] = dict(self.knobs.usage)
        u["total_tokens"] = u["prompt_tokens"] + u["completion_tokens"]
        if self.knobs.style == "openrouter":
            u.update(cost=0.000123, is_byok=False,
                     prompt_tokens_details={"cached_tokens": 0},
                     completion_tokens_details={"reasoning_tokens": 0},
                     cost_details={"upstream_inference_cost": None})
        return u

    def _completion(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": "assistant", "content": "Hello from the fake upstream."}
        finish = "stop"
        if self.knobs.tool_call:
            msg = {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_fake_1", "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]}
            finish = "tool_calls"
        return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                "model": model, "choices": [{"index": 0, "message": msg,
                                             "finish_reason": finish, "logprobs": None}],
                "usage": self._usage()}

    def _chunk(self, model: str, delta: dict[str, Any], finish: str | None,
               with_usage_null: bool) -> bytes:
        obj: dict[str, Any] = {"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                               "created": 1700000000, "model": model,
                               "choices": [{"index": 0, "delta": delta,
                                            "finish_reason": finish}]}
        if self.knobs.style == "openrouter":
            obj["provider"] = "FakeProvider"
        elif with_usage_null:
            obj["usage"] = None
        return b"data: " + json.dumps(obj).encode() + b"\n\n"

    async def _stream(self, request: web.Request, body: dict[str, Any],
                      model: str) -> web.StreamResponse:
        k = self.knobs
        want_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            if k.style == "openrouter":
                await resp.write(b": OPENROUTER PROCESSING\n\n")
            await resp.write(self._chunk(model, {"role": "assistant", "content": ""}, None,
                                         want_usage))
            for i in range(k.chunks):
                if k.cut_after is not None and i >= k.cut_after:
                    assert request.transport is not None
                    request.transport.abort()
                    return resp
                if k.stall_after is not None and i >= k.stall_after:
                    await asyncio.sleep(3600)
                if k.mid_error and i == 1:
                    err = {"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                           "error": {"code": 502, "message": "provider fell over"},
                           "choices": [{"index": 0, "delta": {"content": ""},
                                        "finish_reason": "error"}]}
                    await resp.write(b"data: " + json.dumps(err).encode() + b"\n\n")
                    await resp.write(b"data: [DONE]\n\n")
                    return resp
                if k.chunk_delay:
                    await asyncio.sleep(k.chunk_delay)
                delta: dict[str, Any] = {"content": f"tok{i} "}
                if k.tool_call:
                    delta = {"tool_calls": [{"index": 0, "id": "call_fake_1", "type": "function",
                                             "function": {"name": "get_weather",
                                                          "arguments": ""}}]} if i == 0 else {
                        "tool_calls": [{"index": 0, "function": {"arguments": '{"c":1}'}}]}
                await resp.write(self._chunk(model, delta, None, want_usage))
            finish = "tool_calls" if k.tool_call else "stop"
            await resp.write(self._chunk(model, {}, finish, want_usage))
            if want_usage:
                final = {"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                         "created": 1700000000, "model": model, "choices": [],
                         "usage": self._usage()}
                await resp.write(b"data: " + json.dumps(final).encode() + b"\n\n")
            if not k.no_done:
                await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnects += 1
            raise
        return resp


class FakeController:
    """The tray's Controller, recording every call; `fail` names methods that raise."""

    def __init__(self, **status: Any) -> None:
        from localgate.controller import ModelChoices, Status
        self.state = Status(base_url="http://127.0.0.1:8642/v1",
                            default_model="kilo-auto/balanced", **status)
        self.choices = ModelChoices(auto=("kilo-auto/balanced", "kilo-auto/free"),
                                    popular=("anthropic/claude-sonnet-4.6", "openai/gpt-5.2"),
                                    recent=("openai/gpt-5.2", "mistral/codestral-2508"))
        self.calls: list[tuple[str, Any]] = []
        self.fail: set[str] = set()

    def _call(self, name: str, arg: Any = None) -> None:
        self.calls.append((name, arg))
        if name in self.fail:
            raise RuntimeError(f"{name} broke")

    def _set(self, **changes: Any) -> None:
        import dataclasses
        self.state = dataclasses.replace(self.state, **changes)

    def status(self) -> Any:
        if "status" in self.fail:
            raise RuntimeError("status broke")
        return self.state

    def model_choices(self) -> Any:
        return self.choices

    def set_default_model(self, model: str) -> None:
        self._call("set_default_model", model)
        self._set(default_model=model)

    def set_paused(self, paused: bool) -> None:
        self._call("set_paused", paused)
        self._set(paused=paused)

    def dashboard_url(self) -> str:
        self._call("dashboard_url")
        return "http://127.0.0.1:8642/localgate/login?token=one-time-token"

    def api_key(self) -> str:
        self._call("api_key")
        return "lg-fake-local-key"

    def set_autostart(self, enabled: bool) -> None:
        self._call("set_autostart", enabled)
        self._set(autostart=enabled)

    def quit(self) -> None:
        self._call("quit")
