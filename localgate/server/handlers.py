"""HTTP handlers other than inference: the catalog views, health, reload, and the pass-through
of other `/api/...` paths to the hosted Kilo service (inference among them is controlled and
logged through the gateway; everything forwarded is scrubbed of the key localgate presented).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from yarl import URL

from localgate import __version__, jsonfast, relay
from localgate.auth import ANONYMOUS, KILO_TOKEN, presented_key
from localgate.errors import (AuthRequired, GatewayError, InvalidRequest, ModelNotFound,
                              UpstreamError)
from localgate.headers import forward_headers
from localgate.server import inference
from localgate.server.codecs import FORWARD
from localgate.server.keys import AUTH, ERROR_FORMAT, GATEWAY, RELOAD
from localgate.server.middleware import start_answer
from localgate.upstream import chunks



def json_response(obj: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(obj).encode(),
                        content_type="application/json")


async def list_models(request: web.Request) -> web.Response:
    return web.Response(body=request.app[GATEWAY].listing.body(),
                        content_type="application/json")


async def get_model(request: web.Request) -> web.Response:
    model_id = request.match_info["model_id"]
    found = request.app[GATEWAY].listing.one(model_id)
    if found is None:
        raise ModelNotFound(f"model {model_id!r} is not in the catalog", param="model")
    return json_response(found)


async def list_providers(request: web.Request) -> web.Response:
    return json_response({"data": request.app[GATEWAY].listing.providers()})


async def models_by_provider(request: web.Request) -> web.Response:
    return json_response(request.app[GATEWAY].listing.by_provider())


async def health(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    return json_response({"status": "ok", "version": __version__,
                          "default_model": gw.live.settings.default_model,
                          "paused": gw.live.paused, **gw.health()})


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


# Kilo sign-in (`kilo auth login`): the device-code flow carries no key by design.
_NO_AUTH_PREFIX = "/api/device-auth/"
_GATEWAY_PREFIXES = ("/api/gateway/", "/api/openrouter/", "/api/v1/")


async def passthrough(request: web.Request) -> web.StreamResponse:
    """Any other /api/... path goes to the hosted Kilo service (local auth needed, except for
    Kilo's sign-in). A POST that can spend (a `model` in its JSON, or a gateway path) goes
    through the gateway's controls and spend log like every inference call."""
    gw = request.app[GATEWAY]
    if request.path.startswith(_NO_AUTH_PREFIX):
        return await _forward(request, None)
    client = request.app[AUTH].client(request.headers)
    if client == ANONYMOUS:
        raise AuthRequired("this path is forwarded to the Kilo service and needs the local "
                           "API key (`localgate token show`)")
    token = presented_key(request.headers) if client == KILO_TOKEN else None
    key = token or gw.keys.provider_key(gw.live.settings.kilo)
    if request.method == "POST" and await _spends(request):
        return await inference.serve(request, FORWARD)
    return await _forward(request, key)


async def _spends(request: web.Request) -> bool:
    if request.path.startswith(_GATEWAY_PREFIXES):
        return True
    raw = await request.read()
    try:
        body = jsonfast.loads(raw) if raw.strip() else None
    except (ValueError, RecursionError):
        return False
    return isinstance(body, dict) and isinstance(body.get("model"), str)


async def _forward(request: web.Request, key: str | None) -> web.StreamResponse:
    """Relay a non-inference call to the Kilo service: its answer streamed back unchanged but
    for the key localgate presented (never echoed: body and headers are scrubbed)."""
    gw = request.app[GATEWAY]
    data = await request.read() if request.body_exists else None
    url = URL(f"{gw.live.settings.kilo.api_url}{request.raw_path}", encoded=True)
    upstream = await gw.upstream.open(request.method, url,
                                      headers=forward_headers(request.headers, key),
                                      data=data, who="the Kilo service")
    scrub = relay.KeyScrubber(key.encode()) if key else None
    try:
        headers = {k: _scrub_text(v, key) for k, v in upstream.headers.items()
                   if k.lower() not in _HOP_BY_HOP}
        out = web.StreamResponse(status=upstream.status, headers=headers)
        await start_answer(request, out)
        try:
            async for chunk in chunks(upstream, "the Kilo service"):
                data_out = scrub.feed(chunk) if scrub is not None else chunk
                if data_out:
                    await out.write(data_out)
        except UpstreamError:
            pass  # the headers are gone already: ending the body early is all we can do
        if scrub is not None and (held := scrub.flush()):
            await out.write(held)
        await out.write_eof()
        return out
    finally:
        upstream.release()


_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                         "te", "trailer", "trailers", "transfer-encoding", "upgrade",
                         "content-length", "content-encoding"})


def _scrub_text(value: str, key: str | None) -> str:
    return value.replace(key, "<your key>") if key and key in value else value


async def count_tokens(request: web.Request) -> web.Response:
    """POST /v1/messages/count_tokens (Anthropic's shape): Anthropic's own count with your
    Anthropic key for Anthropic models, else localgate's estimate, marked as one by the
    `x-localgate-estimate: true` header. Local key required; nothing is logged (it is free)."""
    request[ERROR_FORMAT] = "anthropic"
    gw = request.app[GATEWAY]
    if request.app[AUTH].client(request.headers) == ANONYMOUS:
        raise AuthRequired("counting tokens needs your local API key (`localgate token show`)")
    body = await inference.json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        raise InvalidRequest("'model' is required", param="model")
    native = await _anthropic_count(request, gw, body)
    if native is not None:
        return native
    from localgate.ingress.messages import estimate_tokens
    try:
        count = estimate_tokens(body)
    except GatewayError:
        raise
    return web.Response(body=json.dumps({"input_tokens": count}).encode(),
                        content_type="application/json",
                        headers={"x-localgate-estimate": "true"})


async def _anthropic_count(request: web.Request, gw: Any, body: dict[str, Any]
                           ) -> web.Response | None:
    """Anthropic's own count_tokens, when the model is Anthropic's and the user holds the key."""
    from localgate import routing
    settings, cat = gw.live.settings, gw.live.catalog
    model = cat.by_native_id(body["model"]) or body["model"]
    prov = settings.providers.get("anthropic")
    key = gw.keys.provider_key(prov) if prov is not None else None
    if not key or not model.startswith("anthropic/") or prov.api not in routing.ADAPTERS:
        return None
    entry = cat.get(model)
    native = (entry or {}).get("native_id") or model.partition("/")[2]
    call = gw.count_tokens_call(body, native, key, request.headers)
    upstream = await gw.upstream.open(call.method, call.url, headers=call.headers,
                                      data=call.body, who=prov.name)
    try:
        data = await upstream.read()
    finally:
        upstream.release()
    data = data.replace(key.encode(), b"<your key>")
    return web.Response(status=upstream.status, body=data, content_type="application/json")
