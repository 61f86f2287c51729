"""A scripted upstream on 127.0.0.1 that speaks the real wire shapes and misbehaves on demand.

Unlike tests/fakes.py (spaced JSON, a fixed script), this one writes what OpenAI and OpenRouter
really send: compact JSON (`separators=(",", ":")`), `"usage":null` on every chunk when usage
was asked for, then a usage-only chunk. Its `script` says how to answer the next requests:
which usage (with or without OpenRouter's `cost`), whether to echo the key it was given (in the
body, every stream chunk and a response header), and which fault to commit (an error status,
garbage, a cut, slow or missing headers, frames split into tiny reads, an unterminated last
line, a huge body). One handler answers every path: chat, FIM, the Kilo service's legacy
`/api/gateway/completions`, and any other `/api/...` path (pass-through).

Every body it makes carries MARKER, so a test can tell an upstream's own 5xx from the daemon's.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MARKER = "wire-upstream"


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass
class Script:
    status: int = 200                 # >= 400: answer this status with an error body
    usage: dict[str, Any] | None = field(
        default_factory=lambda: {"prompt_tokens": 11, "completion_tokens": 7})
    content: str = "Hello there, friend."
    chunks: int = 3                   # content chunks in a stream (content split evenly)
    chunk_delay: float = 0.0
    echo_key: bool = False            # the Authorization received goes into body and headers
    garbage: bool = False             # 200 with a non-JSON body (streams: non-JSON data lines)
    cut: bool = False                 # abort the connection after the first content chunk
    header_delay: float = 0.0         # seconds before the response headers
    hang: bool = False                # never answer
    piece: int | None = None          # write a stream in pieces of this many bytes
    piece_delay: float = 0.002        # ... with this pause between them (separate reads)
    unterminated: bool = False        # the last line has no newline, and no [DONE] follows
    body_bytes: int = 0               # a non-stream 200 body of about this many bytes
    content_length: bool = True       # ... announced in Content-Length (else chunked)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class Wire:
    def __init__(self) -> None:
        self.script = Script()
        self.models: list[dict[str, Any]] = []  # GET .../models answers these (if any)
        self.seen: list[Seen] = []
        self.url = ""
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.seen.append(Seen(request.method, request.path, dict(request.headers), body))
        s = self.script
        if s.hang:
            await asyncio.sleep(3600)
        if s.header_delay:
            await asyncio.sleep(s.header_delay)
        auth = request.headers.get("Authorization", "") if s.echo_key else ""
        headers = {"x-echo-auth": auth} if auth else {}
        if s.status >= 400:
            err = {"message": f"{MARKER} says {s.status} {auth}", "type": "upstream_test",
                   "code": s.status}
            return web.Response(status=s.status, headers=headers, body=compact({"error": err}),
                                content_type="application/json")
        if s.garbage and not (isinstance(body, dict) and body.get("stream")):
            return web.Response(body=f"<html>{MARKER} oops</html>".encode(), headers=headers,
                                content_type="application/json")
        if s.body_bytes:
            return await self._huge(request)
        path = request.path
        if request.method == "GET" and path.endswith("/models") and self.models:
            return web.json_response({"data": self.models})
        inference = path.endswith(("/completions", "/embeddings")) and request.method == "POST"
        if not inference:  # another /api/... path: a profile-like answer
            return web.Response(body=compact({"path": path, "who": MARKER, "auth": auth}),
                                headers=headers, content_type="application/json")
        model = body.get("model", "wire-model") if isinstance(body, dict) else "wire-model"
        if isinstance(body, dict) and body.get("stream"):
            return await self._stream(request, body, model, headers, auth)
        return await self._whole(request, model, headers, auth)

    # ---- answers -------------------------------------------------------------------------
    def _usage(self) -> dict[str, Any] | None:
        u = self.script.usage
        if u is None:
            return None
        out = dict(u)
        if "prompt_tokens" in out and "completion_tokens" in out:
            out.setdefault("total_tokens", out["prompt_tokens"] + out["completion_tokens"])
        return out

    async def _whole(self, request: web.Request, model: str, headers: dict[str, str],
                     auth: str) -> web.StreamResponse:
        s = self.script
        text = s.content + (f" {auth}" if auth else "")
        if request.path.endswith("/chat/completions") or request.path.endswith("/fim/completions"):
            obj: dict[str, Any] = {"id": "chatcmpl-wire", "object": "chat.completion",
                                   "created": 1700000000, "model": model,
                                   "choices": [{"index": 0, "message": {"role": "assistant",
                                                                        "content": text},
                                                "finish_reason": "stop"}]}
        else:  # legacy completions (forwarded to the Kilo service as it is)
            obj = {"id": "cmpl-wire", "object": "text_completion", "created": 1700000000,
                   "model": model, "choices": [{"index": 0, "text": text,
                                                "finish_reason": "stop"}]}
        usage = self._usage()
        if usage is not None:
            obj["usage"] = usage
        data = compact(obj)
        if s.cut:
            resp = web.StreamResponse(headers={**headers, "Content-Type": "application/json",
                                               "Content-Length": str(len(data) * 2)})
            await resp.prepare(request)
            await resp.write(data[: len(data) // 2])
            assert request.transport is not None
            request.transport.abort()
            return resp
        return web.Response(body=data, headers=headers, content_type="application/json")

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        s = self.script
        block = b" " * 2**20
        n = s.body_bytes // len(block)
        head = {"Content-Type": "application/json"}
        if s.content_length:
            head["Content-Length"] = str(n * len(block) + 2)
        resp = web.StreamResponse(headers=head)
        await resp.prepare(request)
        try:
            await resp.write(b"{")
            for _ in range(n):
                await resp.write(block)
            await resp.write(b"}")
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass  # the daemon stopped reading: what this fault is for
        return resp

    def _frames(self, body: dict[str, Any], model: str, auth: str) -> list[bytes]:
        s = self.script
        opts = body.get("stream_options")
        want_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            obj: dict[str, Any] = {"id": "chatcmpl-wire", "object": "chat.completion.chunk",
                                   "created": 1700000000, "model": model,
                                   "choices": [{"index": 0, "delta": delta,
                                                "finish_reason": finish}]}
            if want_usage:
                obj["usage"] = None
            return b"data: " + compact(obj) + b"\n\n"

        text = s.content
        n = max(1, s.chunks)
        step = max(1, -(-len(text) // n))
        frames = [chunk({"role": "assistant", "content": ""}, None)]
        frames += [chunk({"content": text[i:i + step]}, None) for i in range(0, len(text), step)]
        if auth:  # whole, in a frame of its own: a key split over two frames is no key
            frames.append(chunk({"content": f" {auth}"}, None))
        frames.append(chunk({}, "stop"))
        usage = self._usage()
        if usage is not None:  # real upstreams send it when asked; this one always does
            frames.append(b"data: " + compact({"id": "chatcmpl-wire",
                                               "object": "chat.completion.chunk",
                                               "created": 1700000000, "model": model,
                                               "choices": [], "usage": usage}) + b"\n\n")
        if s.garbage:
            frames.insert(2, f"data: <{MARKER} not json>\n\n".encode())
        if s.unterminated:
            frames[-1] = frames[-1].rstrip(b"\n")
        else:
            frames.append(b"data: [DONE]\n\n")
        return frames

    async def _stream(self, request: web.Request, body: dict[str, Any], model: str,
                      headers: dict[str, str], auth: str) -> web.StreamResponse:
        s = self.script
        resp = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream"})
        await resp.prepare(request)
        frames = self._frames(body, model, auth)
        try:
            for i, frame in enumerate(frames):
                if s.cut and i == 2:
                    assert request.transport is not None
                    request.transport.abort()
                    return resp
                if s.chunk_delay and i:
                    await asyncio.sleep(s.chunk_delay)
                if s.piece:
                    for j in range(0, len(frame), s.piece):
                        await resp.write(frame[j:j + s.piece])
                        await asyncio.sleep(s.piece_delay)
                else:
                    await resp.write(frame)
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass  # the daemon or its client went away
        return resp
