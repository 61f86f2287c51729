"""The inference endpoints: parse, pick the codec, call `Gateway.complete()`, write the Answer.

Every request accepted here leaves exactly one spend row with a final status, and every
response ends properly: a whole body, or a stream that ends with the upstream's own end or an
error event of ours — whatever goes wrong (client gone, upstream cut, shutdown, a bug).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from localgate import jsonfast
from localgate.auth import ANONYMOUS, KILO_TOKEN, presented_key
from localgate.errors import BodyTooLarge, GatewayError, InvalidRequest
from localgate.exchange import Prepared
from localgate.gateway import Gateway
from localgate.server.codecs import CHAT, FIM, Codec
from localgate.server.keys import AUTH, GATEWAY, LIMITER, REQUEST_ID
from localgate.server.middleware import start_answer
from localgate.streams import Answer, Relay

log = logging.getLogger("localgate")
ANONYMOUS_MAX_BODY = 1 * 2**20  # what an anonymous caller may send (free models only)
GATEWAY_PREFIXES = ("/api/gateway", "/api/openrouter", "/api/v1")
# A stream that says nothing this long gets a keep-alive event (codecs that have one: Anthropic
# Messages). Claude Code reports a stall after ~20 s of silence and drops a stream after ~180 s;
# a model thinking hard, or a tool call's arguments held back, can be silent longer.
KEEPALIVE_S = 15.0


async def json_body(request: web.Request, *, anonymous: bool = False) -> Any:
    """The request's JSON, bounded (a smaller bound for anonymous callers); 400/413 otherwise."""
    limit = ANONYMOUS_MAX_BODY if anonymous else request.app._client_max_size
    size = request.content_length
    if size is not None and size > limit:
        raise BodyTooLarge(f"request body too large: {size:,} bytes, the "
                           f"limit is {limit:,}" + (" without a local API key" if anonymous
                                                    else ""))
    try:
        raw = await request.content.read(limit + 1) if anonymous else await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise BodyTooLarge(f"request body too large (the limit is {limit:,} bytes)") from exc
    if len(raw) > limit:
        raise BodyTooLarge(f"request body too large (the limit is {limit:,} bytes without a "
                           "local API key)")
    if not raw.strip():
        raise InvalidRequest("the request body is empty; expected a JSON object")
    try:
        return jsonfast.loads(raw)
    except RecursionError as exc:
        raise InvalidRequest("the request body is nested too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the request body is not valid JSON ({str(exc)[:200]})") from exc


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await serve(request, CHAT)


async def fim_completions(request: web.Request) -> web.StreamResponse:
    return await serve(request, FIM)


async def serve(request: web.Request, codec: Codec) -> web.StreamResponse:
    """One request along the gateway's line; every request accepted leaves a spend row."""
    if codec.error_format != "openai":
        codec.mark(request)
    gw = request.app[GATEWAY]
    client = request.app[AUTH].client(request.headers)  # a wrong key: refused, not logged
    # the spend log's backlog is full (a full disk): refused before a row is made, as a row
    # could not be kept anyway (README: full disk)
    gw.check_log()
    ex = gw.accept(headers=request.headers, client=client, request_id=request[REQUEST_ID],
                   kind=codec.kind)
    try:
        if client == ANONYMOUS:  # counted before anything else, refusals included
            request.app[LIMITER].check(request.remote or "unknown")
        body = await json_body(request, anonymous=client == ANONYMOUS)
        gw.note_model(ex, body)
        p = codec.prepare(gw, ex, body, request,
                          kilo_token=presented_key(request.headers) if client == KILO_TOKEN
                          else None,
                          gateway_path=request.path.startswith(GATEWAY_PREFIXES))
    except GatewayError as err:
        gw.refuse(ex, err)
        raise
    except Exception as exc:  # a bug: answered 500 by the middleware, and logged as such
        gw.refuse(ex, GatewayError(f"internal error: {type(exc).__name__}"))
        raise
    gw.begin(ex)
    answer = await gw.complete(p)  # GatewayError: the row is settled already
    return await write(request, gw, p, answer, codec)


async def write(request: web.Request, gw: Gateway, p: Prepared, answer: Answer,
                codec: Codec) -> web.StreamResponse:
    ex = p.ex
    if answer.stream is None:
        return await _write_whole(request, gw, p, answer, codec)
    relay = answer.stream
    encode = codec.stream_encoder(answer, p)
    out = web.StreamResponse(status=200, headers={
        **answer.headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no"})
    keepalive = codec.keepalive
    chunks: Any = relay if keepalive is None else _kept_alive(relay, KEEPALIVE_S)
    try:
        await start_answer(request, out)
        ping = getattr(encode, "ping", None)
        if ping is not None:  # Anthropic's keep-alive, while the first chunk is awaited
            await out.write(ping())
        last = b"\n\n"  # the end of what was sent: a keep-alive goes between events only
        async for data in chunks:
            if data is None:  # the upstream is silent (a model thinking)
                if keepalive is not None and last.endswith(b"\n\n"):
                    await out.write(keepalive)
                continue
            if encode is not None:
                data = encode.feed(data)
            if data:
                await out.write(data)
                last = data[-2:]
        if encode is not None:
            tail = encode.close()
            if tail:
                await out.write(tail)
        await out.write_eof()
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        await _close(chunks, relay, "client_closed")
    except asyncio.CancelledError:
        await _close(chunks, relay, "client_closed")
        raise
    except Exception as exc:  # a bug after the headers went out: end the stream properly
        log.exception("writing the answer to %s failed", ex.id)
        ex.status, ex.error = "error", f"internal error: {type(exc).__name__}"
        await _end_with_error(out, codec, answer, p)
    finally:
        await _close(chunks, relay)
    return out


async def _write_whole(request: web.Request, gw: Gateway, p: Prepared, answer: Answer,
                       codec: Codec) -> web.Response:
    """A whole answer: sent first, then settled, so the client does not wait for the
    bookkeeping (costing, the limit's settle, the spend row)."""
    ex = p.ex
    try:
        resp = web.Response(status=answer.status, body=codec.body(answer, p),
                            headers=answer.headers)
        await start_answer(request, resp)
        await resp.write_eof()
    except (ConnectionResetError, aiohttp.ClientConnectionResetError, asyncio.CancelledError):
        ex.status = "client_closed"
        raise
    except Exception as exc:  # a bug: the middleware answers 500; the row says so too
        ex.status, ex.http_status = "error", 500
        ex.error = f"internal error: {type(exc).__name__}"
        raise
    finally:
        gw.finish(ex)
    return resp


async def _kept_alive(relay: Relay, every: float) -> AsyncIterator[bytes | None]:
    """The relay's chunks, and None each time `every` seconds pass without one."""
    it = relay.__aiter__()
    pending: asyncio.Future[bytes] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(it.__anext__())
            done, _ = await asyncio.wait((pending,), timeout=every)
            if not done:
                yield None
                continue
            got, pending = pending, None
            try:
                data = got.result()
            except StopAsyncIteration:
                return
            yield data
    finally:
        if pending is not None:  # the relay must be idle before it is closed
            pending.cancel()
            await asyncio.wait((pending,))


async def _close(chunks: Any, relay: Relay, status: str | None = None) -> None:
    if chunks is not relay:
        await chunks.aclose()
    await relay.aclose(status)


async def _end_with_error(out: web.StreamResponse, codec: Codec, answer: Answer,
                          p: Prepared) -> None:
    event = codec.error_event(GatewayError("localgate hit an internal error mid-stream; see its "
                                           "log"), answer, p)
    try:
        await out.write(b"\n" + event)
        await out.write_eof()
    except (ConnectionResetError, aiohttp.ClientConnectionResetError, RuntimeError):
        pass  # the client is gone too

