"""The practical floor: a minimal aiohttp pass-through proxy (run as its own process).

One shared ClientSession; reads the request body, forwards it to the upstream, relays the
response chunks as they arrive. No parsing, no auth, no routing.

    python bench/refproxy.py --port 9002 --upstream http://127.0.0.1:9001
"""

from __future__ import annotations

import argparse
import asyncio

import aiohttp
from aiohttp import web

HOP = {"host", "connection", "keep-alive", "transfer-encoding", "content-length"}


def make_app(upstream: str) -> web.Application:
    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        connector = aiohttp.TCPConnector(limit=512, limit_per_host=0)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as s:
            app["session"] = s
            yield

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        async with request.app["session"].request(
                request.method, upstream + request.path_qs, headers=headers, data=body,
                allow_redirects=False) as up:
            out = web.StreamResponse(status=up.status, headers={
                k: v for k, v in up.headers.items() if k.lower() not in HOP})
            if up.content_length is not None:
                out.content_length = up.content_length
            await out.prepare(request)
            async for chunk in up.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


async def main(port: int, upstream: str) -> None:
    runner = web.AppRunner(make_app(upstream.rstrip("/")), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    a = ap.parse_args()
    try:
        asyncio.run(main(a.port, a.upstream))
    except KeyboardInterrupt:
        pass
