"""A zero-think-time fake OpenAI upstream for the benchmark (run as its own process).

POST .../chat/completions answers at once: a small fixed JSON body with usage, or, with
`"stream": true`, `bench_chunks` (default 50) OpenAI SSE chunks, a usage-only chunk when
`stream_options.include_usage` is set, then `data: [DONE]`. No sleeps anywhere.
GET /stats: how many distinct client connections each first path segment has seen
(so the driver can tell whether a proxy reuses its upstream connections).

    python bench/upstream.py --port 9001
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import defaultdict

from aiohttp import web

USAGE = {"prompt_tokens": 24, "completion_tokens": 9, "total_tokens": 33}
COMPLETION = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000,
    "model": "gpt-5.2", "system_fingerprint": "fp_bench",
    "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                 "message": {"role": "assistant", "content": "Hello! How can I help you today?",
                             "refusal": None}}],
    "usage": USAGE}).encode()


def _chunk(delta: dict, finish: str | None = None, usage: bool = False) -> bytes:
    obj = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
           "model": "gpt-5.2", "system_fingerprint": "fp_bench",
           "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    if usage:
        obj["usage"] = None
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


FIRST = {u: _chunk({"role": "assistant", "content": "", "refusal": None}, usage=u)
         for u in (False, True)}
TOKEN = {u: _chunk({"content": " tok"}, usage=u) for u in (False, True)}
LAST = {u: _chunk({}, "stop", usage=u) for u in (False, True)}
USAGE_CHUNK = b"data: " + json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
    "model": "gpt-5.2", "choices": [], "usage": USAGE}, separators=(",", ":")).encode() + b"\n\n"
DONE = b"data: [DONE]\n\n"

peers: dict[str, set[tuple]] = defaultdict(set)


async def chat(request: web.Request) -> web.StreamResponse:
    body = json.loads(await request.read())
    peer = request.transport.get_extra_info("peername") if request.transport else None
    peers[request.path.split("/")[1]].add(peer)
    if not body.get("stream"):
        return web.Response(body=COMPLETION, content_type="application/json")
    n = int(body.get("bench_chunks", 50))
    usage = bool((body.get("stream_options") or {}).get("include_usage"))
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Cache-Control": "no-cache"})
    await resp.prepare(request)
    think = float(body.get("bench_think_ms", 0))  # a model's time to its first token
    if think > 0:
        await asyncio.sleep(think / 1000)
    await resp.write(FIRST[usage])
    for _ in range(max(0, n - 2)):
        await resp.write(TOKEN[usage])
    await resp.write(LAST[usage])
    if usage:
        await resp.write(USAGE_CHUNK)
    await resp.write(DONE)
    await resp.write_eof()
    return resp


async def stats(request: web.Request) -> web.Response:
    return web.json_response({k: len(v) for k, v in peers.items()})


async def main(port: int) -> None:
    app = web.Application()
    app.router.add_post("/{tail:.*}/chat/completions", chat)
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    try:
        asyncio.run(main(ap.parse_args().port))
    except KeyboardInterrupt:
        pass
