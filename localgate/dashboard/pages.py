"""The dashboard's pages: `/` (the dashboard for a session, otherwise a page saying how to open
it), the one-time login link, and the static files, all under a strict CSP.

Files come from the package (static/), read off the event loop. Must not import the gateway.
"""

from __future__ import annotations

import asyncio
from importlib import resources

from aiohttp import web

from localgate.auth import ANONYMOUS
from localgate.dashboard.access import has_session
from localgate.dashboard.sessions import COOKIE, LOGIN_TTL_S, SESSION_TTL_S
from localgate.errors import AuthRequired
from localgate.server.keys import AUTH, SESSIONS

# Everything the page loads comes from this daemon; nothing inline, nothing framed.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
            "X-Frame-Options": "DENY"}
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
          ".svg": "image/svg+xml"}
STATIC = ("app.js", "app.css", "gate.js", "icon.svg")


def _read(name: str) -> bytes:
    return resources.files("localgate.dashboard").joinpath("static", name).read_bytes()


async def _file(name: str, status: int = 200) -> web.Response:
    body = await asyncio.to_thread(_read, name)
    ctype = _TYPES[name[name.rindex("."):]]
    return web.Response(status=status, body=body, content_type=ctype, charset="utf-8",
                        headers=_HEADERS)


async def index(request: web.Request) -> web.Response:
    """The dashboard for a valid session; without one a page saying how to get one (401)."""
    if has_session(request):
        return await _file("index.html")
    return await _file("gate.html", status=401)


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC:
        raise web.HTTPNotFound()
    return await _file(name)


async def login(request: web.Request) -> web.Response:
    """Redeem a one-time token: a session cookie and 303 to `/`, or a page saying why not."""
    sid = request.app[SESSIONS].redeem(request.query.get("token", ""))
    if sid is None:
        return await _file("expired.html", status=403)
    resp = web.Response(status=303, headers={**_HEADERS, "Location": "/"})
    # no Secure: the daemon speaks plain http on loopback, where browsers would drop it
    resp.set_cookie(COOKIE, sid, max_age=int(SESSION_TTL_S), path="/", httponly=True,
                    samesite="Strict")
    return resp


async def login_link(request: web.Request) -> web.Response:
    """A fresh one-time login URL for `localgate dashboard` (local key only)."""
    if request.app[AUTH].client(request.headers) == ANONYMOUS:
        raise AuthRequired("a dashboard login link needs the local API key")
    token = request.app[SESSIONS].issue()
    url = f"{request.scheme}://{request.host}/localgate/login?token={token}"
    return web.json_response({"url": url, "expires_in_s": int(LOGIN_TTL_S)},
                             headers={"Cache-Control": "no-store"})


async def session(request: web.Request) -> web.Response:
    """Whether this browser holds a valid session (the gate page asks; see gate.js)."""
    return web.json_response({"session": has_session(request)},
                             headers={"Cache-Control": "no-store"})
