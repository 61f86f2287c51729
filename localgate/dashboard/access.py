"""Who may use the dashboard's endpoints: a local API key (the CLI, the tray, scripts), or a
browser session from a one-time login link, held in an HttpOnly SameSite=Strict cookie.

A session is a browser credential, so session calls must also come from the dashboard's own
page: an Origin other than this daemon's is refused, and so is a state-changing call that
carries none (browsers send Origin on every POST). With SameSite=Strict and JSON-only POSTs
(server/middleware.py) this is the CSRF defence. Must not import gateway or the ledger.
"""

from __future__ import annotations

from aiohttp import web

from localgate.auth import ANONYMOUS
from localgate.dashboard.sessions import COOKIE
from localgate.errors import AuthRequired, Forbidden
from localgate.server.keys import AUTH, SESSIONS

SESSION_CLIENT = "dashboard"


def has_session(request: web.Request) -> bool:
    return request.app[SESSIONS].valid(request.cookies.get(COOKIE))


def caller(request: web.Request) -> str:
    """The client name of a local key, or SESSION_CLIENT for a dashboard session.

    Raises AuthRequired (no key and no session; a wrong key) or Forbidden (a session call
    from another origin)."""
    client = request.app[AUTH].client(request.headers)  # a wrong key: 401, never downgraded
    if client != ANONYMOUS:
        return client
    if not has_session(request):
        raise AuthRequired("this needs the local API key (`localgate token show`) or a "
                           "dashboard session (`localgate dashboard`)")
    _same_origin(request)
    return SESSION_CLIENT


def _same_origin(request: web.Request) -> None:
    own = f"{request.scheme}://{request.host}"
    origin = request.headers.get("Origin")
    site = request.headers.get("Sec-Fetch-Site")
    if origin is not None and origin != own:
        raise Forbidden(f"a dashboard session is only good on the dashboard's own page, "
                        f"not from {origin!r}", code="origin_not_allowed")
    if site is not None and site not in ("same-origin", "none"):
        raise Forbidden("a dashboard session is only good on the dashboard's own page",
                        code="origin_not_allowed")
    if request.method not in ("GET", "HEAD") and origin is None:
        raise Forbidden("a dashboard session call that changes something must come from the "
                        "dashboard page (no Origin header)", code="origin_not_allowed")
