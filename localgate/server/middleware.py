"""Middlewares: browser safety (Host allow-list, Origin/CORS, JSON-only POSTs) and one place
that turns every error into the OpenAI envelope. Loopback is not a security boundary.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from localgate.config import is_loopback
from localgate.errors import (BodyTooLarge, Forbidden, GatewayError, InvalidRequest,
                              UnsupportedMediaType)
from localgate.gateway import new_request_id
from localgate.server.keys import REQUEST_ID

log = logging.getLogger("localgate")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CORS_HEADERS = ("Authorization, Content-Type, X-Api-Key, X-Title, HTTP-Referer, "
                 "X-KiloCode-Mode, X-KiloCode-TaskId, X-KiloCode-EditorName, X-KiloCode-Feature, "
                 "X-KiloCode-Version, X-KiloCode-OrganizationId, X-KiloCode-ProjectId, "
                 "X-KiloCode-MachineId, X-Stainless-Lang, X-Stainless-Package-Version, "
                 "X-Stainless-OS, X-Stainless-Arch, X-Stainless-Runtime, "
                 "X-Stainless-Runtime-Version, X-Stainless-Retry-Count, X-Stainless-Timeout")
_APP_ORIGIN_SCHEMES = ("vscode-webview", "vscode-file")


def error_response(err: GatewayError, request_id: str | None = None) -> web.Response:
    headers = dict(err.headers)
    if request_id:
        headers["x-request-id"] = request_id
    return web.Response(status=err.status, body=json.dumps(err.envelope()).encode(),
                        content_type="application/json", headers=headers)


def _local_origin(origin: str) -> bool:
    parts = urlsplit(origin)
    if parts.scheme in _APP_ORIGIN_SCHEMES:
        return True
    return parts.scheme in ("http", "https") and bool(parts.hostname) and \
        is_loopback(parts.hostname or "")


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def make_guard(allowed_hosts: frozenset[str], allow_ip_hosts: bool) -> Callable[..., Awaitable[
        web.StreamResponse]]:
    """Refuse foreign Host (DNS rebinding), foreign Origin, non-JSON POST bodies; answer CORS;
    turn every error into the OpenAI envelope (one middleware: one coroutine layer per request)."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = new_request_id()
        request[REQUEST_ID] = rid
        try:
            name = _host_name(request.host or "").lower()
            if not (is_loopback(name) or name in allowed_hosts or name.endswith(".localhost")
                    or (allow_ip_hosts and _is_ip(name))):
                raise Forbidden(f"Host {request.host!r} is not this daemon's loopback name "
                                "(DNS rebinding protection)", code="host_not_allowed")
            origin = request.headers.get("Origin")
            if origin is not None and not _local_origin(origin):
                raise Forbidden(f"requests from the web origin {origin!r} are refused",
                                code="origin_not_allowed")
            if request.method == "OPTIONS":
                return _preflight(request, origin)
            if request.method in ("POST", "PUT", "PATCH") and request.body_exists:
                ctype = request.content_type
                if ctype != "application/json" and not ctype.endswith("+json"):
                    raise UnsupportedMediaType(f"Content-Type must be application/json, "
                                               f"got {ctype!r}")
            resp = await handler(request)
            if origin is not None and not resp.prepared:
                resp.headers["Access-Control-Allow-Origin"] = origin
            return resp
        except GatewayError as err:
            return error_response(err, rid)
        except web.HTTPRequestEntityTooLarge as exc:
            return error_response(BodyTooLarge(f"request body too large ({exc.text})"), rid)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = {404: "invalid_path", 405: "method_not_allowed"}.get(exc.status,
                                                                         "invalid_request")
            return error_response(GatewayError(exc.reason, code=code, status=exc.status), rid)
        except (ConnectionResetError, TimeoutError):
            raise  # the client went away: nobody to answer
        except Exception:  # a bug: a 500 envelope for the client, the traceback for our log
            log.exception("unexpected error serving %s %s", request.method, request.path)
            return error_response(GatewayError("localgate hit an internal error; see its log"),
                                  rid)

    return guard


def _preflight(request: web.Request, origin: str | None) -> web.Response:
    if origin is None:
        raise InvalidRequest("a CORS preflight needs an Origin header")
    return web.Response(status=204, headers={
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers",
                                                            _CORS_HEADERS),
        "Access-Control-Max-Age": "600", "Vary": "Origin"})


def _is_ip(name: str) -> bool:
    import ipaddress
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False
