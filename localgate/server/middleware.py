"""Middlewares: browser safety (Host allow-list, Origin/CORS, JSON-only POSTs), paths
normalised (repeated and trailing slashes: a path the daemon serves is served whatever its
spelling, so no spelling slips past the controls to the pass-through), and one place that turns
every error into the client's envelope (OpenAI's, or Anthropic's for /v1/messages).
Loopback is not a security boundary.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from localgate.config import is_loopback
from localgate.errors import (BodyTooLarge, Forbidden, GatewayError, InvalidRequest,
                              UnsupportedMediaType)
from localgate.exchange import new_request_id
from localgate.server.keys import ERROR_FORMAT, REQUEST_ID

log = logging.getLogger("localgate")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CORS_HEADERS = ("Authorization, Content-Type, X-Api-Key, X-Title, HTTP-Referer, "
                 "X-KiloCode-Mode, X-KiloCode-TaskId, X-KiloCode-EditorName, X-KiloCode-Feature, "
                 "X-KiloCode-Version, X-KiloCode-OrganizationId, X-KiloCode-ProjectId, "
                 "X-KiloCode-MachineId, X-Stainless-Lang, X-Stainless-Package-Version, "
                 "X-Stainless-OS, X-Stainless-Arch, X-Stainless-Runtime, "
                 "X-Stainless-Runtime-Version, X-Stainless-Retry-Count, X-Stainless-Timeout, "
                 "Anthropic-Version, Anthropic-Beta")
# IDE webviews (VS Code and its forks) may read responses; web pages, local ones included, not.
_APP_ORIGIN_SCHEMES = ("vscode-webview", "vscode-file")
_CORS_ORIGIN = web.RequestKey("localgate.cors_origin", str)
_SLASHES = re.compile(r"//+")


def error_response(err: GatewayError, request: web.Request | None = None) -> web.Response:
    headers = {k: v for k, v in err.headers.items() if k.lower() != "content-type"}
    if request is not None:
        headers["x-request-id"] = request.get(REQUEST_ID, "")
        if request.get(ERROR_FORMAT) == "anthropic":  # /v1/messages: Anthropic's envelope
            from localgate.ingress.messages import error_body
            body = error_body(err.status, err.envelope())
            body["error"].update(err.extra)  # a 402's period, limit_usd, spent_usd
            return web.Response(status=err.status, headers=headers,
                                content_type="application/json",
                                body=json.dumps(body).encode())
    return web.Response(status=err.status, body=json.dumps(err.envelope()).encode(),
                        content_type="application/json", headers=headers)


def _app_origin(origin: str, allowed: frozenset[str], host: str) -> bool:
    """IDE webviews, configured origins, and the daemon's own pages (the dashboard: same
    origin, whose Host already passed the loopback check)."""
    parts = urlsplit(origin)
    return (parts.scheme in _APP_ORIGIN_SCHEMES or origin.rstrip("/") in allowed
            or (parts.scheme == "http" and bool(host) and parts.netloc == host))


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def normal_path(path: str) -> str:
    """`/api//gateway/chat/completions/` -> `/api/gateway/chat/completions`."""
    path = _SLASHES.sub("/", path)
    return path[:-1] if len(path) > 1 and path.endswith("/") else path


def make_guard(allowed_hosts: frozenset[str], allow_ip_hosts: bool,
               allowed_origins: frozenset[str] = frozenset()) -> Callable[..., Awaitable[
                   web.StreamResponse]]:
    """Refuse foreign Host (DNS rebinding), foreign Origin, non-JSON POST bodies; answer CORS;
    turn every error into the client's envelope (one middleware: one coroutine layer)."""
    origins = frozenset(o.rstrip("/") for o in allowed_origins)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[REQUEST_ID] = new_request_id()
        cors = None  # the app origin allowed to read the answer
        try:
            name = _host_name(request.host or "").lower()
            if not (is_loopback(name) or name in allowed_hosts or name.endswith(".localhost")
                    or (allow_ip_hosts and _is_ip(name))):
                raise Forbidden(f"Host {request.host!r} is not this daemon's loopback name "
                                "(DNS rebinding protection)", code="host_not_allowed")
            origin = request.headers.get("Origin")
            if origin is not None:
                if not _app_origin(origin, origins, request.host):
                    raise Forbidden(f"requests from the web origin {origin!r} are refused",
                                    code="origin_not_allowed")
                request[_CORS_ORIGIN] = cors = origin
            if request.method == "OPTIONS":
                resp: web.StreamResponse = _preflight(request, origin)
            else:
                if request.method in ("POST", "PUT", "PATCH") and request.body_exists:
                    ctype = request.content_type
                    if ctype != "application/json" and not ctype.endswith("+json"):
                        raise UnsupportedMediaType(f"Content-Type must be application/json, "
                                                   f"got {ctype!r}")
                raw = request.raw_path  # as sent, query included
                if "//" in raw or "/?" in raw or (len(raw) > 1 and raw[-1] == "/"):
                    request, handler = await _renormalised(request, request.rel_url.raw_path)
                resp = await handler(request)
        except GatewayError as err:
            resp = error_response(err, request)
        except web.HTTPRequestEntityTooLarge as exc:
            resp = error_response(BodyTooLarge(f"request body too large ({exc.text})"), request)
        except web.HTTPException as exc:
            if exc.status < 400:
                if cors is not None:
                    _add_cors(exc.headers, cors)
                raise
            code = {404: "invalid_path", 405: "method_not_allowed"}.get(exc.status,
                                                                         "invalid_request")
            resp = error_response(GatewayError(exc.reason, code=code, status=exc.status),
                                  request)
        except (ConnectionResetError, TimeoutError):
            raise  # the client went away: nobody to answer
        except Exception:  # a bug: a 500 envelope for the client, the traceback for our log
            log.exception("unexpected error serving %s %s", request.method, request.path)
            resp = error_response(GatewayError("localgate hit an internal error; see its log"),
                                  request)
        if cors is not None and not resp.prepared:  # answers a handler sent: start_answer()
            _add_cors(resp.headers, cors)
        return resp

    return guard


async def _renormalised(request: web.Request, raw: str) -> tuple[web.Request, Handler]:
    """The request re-routed by its normalised path (same method, headers, body, state)."""
    new = request.clone(rel_url=request.rel_url.with_path(normal_path(raw), encoded=True))
    match = await request.app.router.resolve(new)
    match.add_app(request.app)
    new._match_info = match  # noqa: SLF001 - aiohttp sets it the same way when it routes
    return new, match.handler


async def start_answer(request: web.Request, response: web.StreamResponse) -> None:
    """Send an answer's headers from its handler (streams, and bodies sent before the request's
    bookkeeping): with CORS for an allowed app origin, which the middleware adds to every
    answer a handler returns unsent."""
    origin = request.get(_CORS_ORIGIN)
    if origin is not None:
        _add_cors(response.headers, origin)
    await response.prepare(request)


def _add_cors(headers: Any, origin: str) -> None:
    """Every answer to an allowed app origin is readable by it: bodies, streams, errors and
    pass-through alike."""
    headers["Access-Control-Allow-Origin"] = origin
    headers["Access-Control-Expose-Headers"] = (
        "x-request-id, x-localgate-route, x-localgate-provider, x-localgate-upstream, "
        "x-localgate-model")
    headers["Vary"] = "Origin"


def _preflight(request: web.Request, origin: str | None) -> web.Response:
    if origin is None:
        raise InvalidRequest("a CORS preflight needs an Origin header")
    return web.Response(status=204, headers={
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers",
                                                            _CORS_HEADERS),
        "Access-Control-Max-Age": "600"})


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False
