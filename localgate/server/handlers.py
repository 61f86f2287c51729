"""HTTP handlers: thin — parse, call the gateway, write the bytes.

The chat relay passes upstream bytes through as they arrive; relay.SseWatcher only watches.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from localgate import __version__, jsonfast
from localgate.auth import ANONYMOUS
from localgate.catalog import public_model
from localgate.errors import (AuthRequired, GatewayError, InvalidRequest, ModelNotFound,
                              UpstreamError)
from localgate.gateway import Gateway, Prepared, scrub
from localgate.relay import SseWatcher, error_event, looks_like_object, text_chars, usage_span
from localgate.server.keys import ACTIVE, AUTH, GATEWAY, LIMITER, RELOAD, REQUEST_ID, STOPPING
from localgate.upstream import chunks, read_all

log = logging.getLogger("localgate")
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                         "te", "trailer", "trailers", "transfer-encoding", "upgrade", "host",
                         "content-length", "content-encoding", "authorization", "x-api-key"})


def json_response(obj: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(obj).encode(),
                        content_type="application/json")


async def _json_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise InvalidRequest("the request body is empty; expected a JSON object")
    try:
        return jsonfast.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the request body is not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise InvalidRequest("the request body is nested too deeply") from exc


def _route_headers(p: Prepared, request_id: str) -> dict[str, str]:
    ex = p.ex
    return {"x-localgate-route": ex.route, "x-localgate-provider": ex.provider,
            "x-localgate-model": ex.resolved_model, "x-request-id": request_id}


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _complete(request, fim=False)


async def fim_completions(request: web.Request) -> web.StreamResponse:
    return await _complete(request, fim=True)


async def _complete(request: web.Request, *, fim: bool) -> web.StreamResponse:
    """One completion along the gateway's line; every request accepted leaves a spend row."""
    gw = request.app[GATEWAY]
    rid = request[REQUEST_ID]
    client = request.app[AUTH].client(request.headers)  # a wrong key: refused, not logged
    body: Any = None
    ex = gw.accept(body, headers=request.headers, client=client, request_id=rid)
    try:
        body = await _json_body(request)
        ex.model = gw.requested_model(body)
        prepare = gw.prepare_fim if fim else gw.prepare
        p = prepare(ex, body, headers=request.headers)
        if client == ANONYMOUS:
            request.app[LIMITER].check(request.remote or "unknown")
    except GatewayError as err:
        gw.refuse(ex, err)
        raise
    except Exception as exc:  # a bug: answered 500 by the middleware, and logged as such
        gw.refuse(ex, GatewayError(f"internal error: {type(exc).__name__}"))
        raise
    gw.begin(ex)
    try:
        upstream, rt = await gw.open(p)
        ex.http_status = upstream.status
        ctype = upstream.headers.get("Content-Type", "")
        if upstream.status < 400 and ctype.startswith("text/event-stream"):
            return await _relay_stream(request, gw, p, upstream, rt)
        return await _relay_body(gw, p, upstream, rt, rid)
    except GatewayError as err:
        ex.status, ex.error, ex.http_status = "error", err.message, err.status
        raise
    except asyncio.CancelledError:
        ex.status = "client_closed"
        raise
    except Exception as exc:  # a bug: the middleware answers 500; the row must say so too
        ex.status, ex.http_status, ex.error = "error", 500, f"internal error: {type(exc).__name__}"
        raise
    finally:
        if ex.status == "in_flight":
            ex.status = "ok"
        gw.finish(ex)


_PASSED_ON = ("Retry-After", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
              "x-ratelimit-reset-requests", "x-ratelimit-limit-tokens",
              "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens")


async def _relay_body(gw: Gateway, p: Prepared, upstream: aiohttp.ClientResponse, rt: Any,
                      rid: str) -> web.Response:
    try:
        data = await read_all(upstream, rt.target.name)
    finally:
        upstream.release()
    headers = _route_headers(p, rid)
    headers["Content-Type"] = upstream.headers.get("Content-Type", "application/json")
    if upstream.status >= 400:
        data = scrub(rt, data)
        back_off = {h: upstream.headers[h] for h in _PASSED_ON if h in upstream.headers}
        refusal = gw.byok_refusal(rt, upstream.status, data)
        if refusal is not None:
            refusal.headers.update(_route_headers(p, rid), **back_off)
            raise refusal
        p.ex.status, p.ex.error = "error", data[:300].decode("utf-8", "replace")
        return web.Response(status=upstream.status, body=data, headers={**headers, **back_off})
    if not looks_like_object(data):
        raise UpstreamError(f"{rt.target.name} sent a response that is not a JSON object")
    found = usage_span(data)
    if found is not None:  # splice our cost fields in; the rest of the body stays byte for byte
        usage, a, b = found
        new = gw.usage_with_cost(p.ex, usage)
        if new is not None:
            data = data[:a] + jsonfast.dumps(new) + data[b:]
    else:
        p.ex.content_chars = text_chars(data)
    p.ex.first_token()
    return web.Response(status=upstream.status, body=data, headers=headers)


async def _relay_stream(request: web.Request, gw: Gateway, p: Prepared,
                        upstream: aiohttp.ClientResponse, rt: Any) -> web.StreamResponse:
    ex, who = p.ex, rt.target.name
    key = rt.api_key.encode() if rt.api_key else None
    out = web.StreamResponse(status=200, headers={
        **_route_headers(p, request[REQUEST_ID]), "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    await out.prepare(request)
    watch = SseWatcher(drop_usage_chunk=not p.wants_usage,
                       on_usage=lambda usage: gw.usage_with_cost(ex, usage))
    active = request.app[ACTIVE]
    active.add(upstream)
    ending = b"\n\n"  # the last bytes sent: our own events must start a new event

    async def send(data: bytes) -> None:
        nonlocal ending
        if key is not None and key in data:  # an echoed key never goes out
            data = data.replace(key, b"<your key>")
        await out.write(data)
        ending = data[-4:]

    async def send_own(event: bytes) -> None:
        ended = ending.endswith(b"\n\n") or ending == b"\r\n\r\n"
        await send(event if ended else b"\n" + event)

    try:
        try:
            async for chunk in chunks(upstream, who):
                data = watch.feed(chunk)
                if data:
                    await send(data)
                    if watch.first_content and ex.ttft_ms is None:
                        ex.first_token()
                    watch.sent(data)
            tail = watch.flush()
            if tail:
                await send(tail)
            if watch.error is not None:
                message = str(watch.error.get("message", watch.error))[:300]
                ex.status, ex.error = "error", scrub(rt, message.encode()).decode()
                if not watch.done:  # the upstream's error chunk ends the stream: close it properly
                    await send_own(b"data: [DONE]\n\n")
            elif not watch.done:
                if not watch.finished:
                    raise UpstreamError(f"{who} ended the stream before it was complete")
                await send_own(b"data: [DONE]\n\n")
        except UpstreamError as exc:
            err = UpstreamError("localgate is shutting down; the stream was ended") \
                if request.app[STOPPING].is_set() else exc
            ex.status, ex.error = "error", err.message
            gen_id, model = watch.ids()
            await send_own(error_event(err.envelope()["error"], gen_id=gen_id, model=model))
        await out.write_eof()
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        ex.status = "client_closed"
    finally:
        active.discard(upstream)
        ex.usage, ex.content_chars = watch.usage, watch.text_chars
        upstream.close()  # mid-stream exits must drop the upstream connection, not reuse it
    return out


async def list_models(request: web.Request) -> web.Response:
    return web.Response(body=request.app[GATEWAY].models_body(), content_type="application/json")


async def get_model(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    model_id = request.match_info["model_id"]
    entry = gw.live.catalog.get(model_id)
    if entry is not None:
        has = any(p.slug == entry.get("provider") and gw.keys.provider_key(p)
                  for p in gw.live.settings.providers.values() if not p.gateway)
        return json_response(public_model(entry, has_key=has))
    for m in gw.model_entries()[: len(gw.live.settings.auto) + 1]:
        if m["id"] == model_id:
            return json_response(m)
    raise ModelNotFound(f"model {model_id!r} is not in the catalog", param="model")


async def list_providers(request: web.Request) -> web.Response:
    return json_response({"data": request.app[GATEWAY].providers_list()})


async def models_by_provider(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    names = {p.slug: p.name for p in gw.live.settings.providers.values()}
    groups: dict[str, list[dict[str, Any]]] = {}
    for m in gw.model_entries():
        groups.setdefault(m["owned_by"], []).append(m)
    providers = [{"slug": slug, "name": names.get(slug, slug),
                  "displayName": names.get(slug, slug), "models": models}
                 for slug, models in sorted(groups.items())]
    return json_response({"providers": providers, "total_providers": len(providers),
                          "total_models": sum(len(p["models"]) for p in providers),
                          "generated_at": gw.live.catalog.generated_at})


async def health(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    return json_response({"status": "ok", "version": __version__,
                          "default_model": gw.live.settings.default_model,
                          "paused": gw.live.paused})


async def reload(request: web.Request) -> web.Response:
    if request.app[AUTH].client(request.headers) == ANONYMOUS:
        raise AuthRequired("reloading the configuration needs the local API key")
    reload_fn: Any = request.app[RELOAD]
    try:
        default = await reload_fn()
    except GatewayError:
        raise
    except Exception as exc:  # a bad config file: say so, keep serving with the old one
        raise InvalidRequest(f"config not reloaded: {exc}") from exc
    return json_response({"status": "reloaded", "default_model": default})


# Inference calls the Kilo service offers that localgate forwards as they are: still controlled
# and logged (a model refused for chat must not be reachable through /responses).
_FORWARDED_INFERENCE = re.compile(
    r"^/api/(?:gateway|openrouter|v1)(?:/v1)?/(?:responses|messages|embeddings|"
    r"audio/transcriptions|edit/completions)$")
_USAGE_SCAN_LIMIT = 4 * 2**20


async def passthrough(request: web.Request) -> web.StreamResponse:
    """Any other /api/... path goes to the hosted Kilo service unchanged (local auth needed)."""
    client = request.app[AUTH].client(request.headers)
    if client == ANONYMOUS:
        raise AuthRequired("this path is forwarded to the Kilo service and needs the local "
                           "API key (`localgate token show`)")
    gw = request.app[GATEWAY]
    data = await request.read() if request.body_exists else None
    ex = None
    if request.method == "POST" and _FORWARDED_INFERENCE.match(request.path):
        body: Any = None
        ex = gw.accept(body, headers=request.headers, client=client,
                       request_id=request[REQUEST_ID])
        try:
            body = jsonfast.loads(data or b"null")
            ex.model = gw.requested_model(body)
            gw.admit_forward(ex, body)
        except GatewayError as err:
            gw.refuse(ex, err)
            raise
        except ValueError:
            ex = None  # not JSON: the service will say so; nothing to control or cost
        else:
            gw.begin(ex)
    try:
        return await _forward(request, gw, data, ex)
    except asyncio.CancelledError:
        if ex is not None:
            ex.status = "client_closed"
        raise
    finally:
        if ex is not None:
            if ex.status == "in_flight":
                ex.status = "ok" if ex.http_status < 400 else "error"
            gw.finish(ex)


async def _forward(request: web.Request, gw: Gateway, data: bytes | None,
                   ex: Any) -> web.StreamResponse:
    kilo = gw.live.settings.kilo
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    key = gw.keys.provider_key(kilo)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    # encoded=True: yarl would otherwise re-normalise the client's escapes (%2F -> /)
    url = URL(f"{kilo.api_url}{request.raw_path}", encoded=True)
    try:
        upstream = await gw.upstream.open(request.method, url, headers=headers, data=data,
                                          who="the Kilo service")
    except GatewayError as err:
        if ex is not None:
            ex.status, ex.error, ex.http_status = "error", err.message, err.status
        raise
    kept: list[bytes] | None = [] if ex is not None and not upstream.headers.get(
        "Content-Type", "").startswith("text/event-stream") else None
    try:
        out = web.StreamResponse(status=upstream.status, headers={
            k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP})
        out.headers["x-request-id"] = request[REQUEST_ID]
        await out.prepare(request)
        size = 0
        try:
            async for chunk in chunks(upstream, "the Kilo service"):
                await out.write(chunk)
                if kept is not None and size < _USAGE_SCAN_LIMIT:
                    kept.append(chunk)
                    size += len(chunk)
        except UpstreamError as err:
            if ex is not None:
                ex.status, ex.error = "error", err.message
            # headers are gone already; ending the body early is all we can do
        await out.write_eof()
        return out
    finally:
        upstream.release()
        if ex is not None:
            ex.http_status = upstream.status
            found = usage_span(b"".join(kept)) if kept else None
            if found is not None:
                ex.usage = found[0]
