"""Dashboard sessions: a one-time login token (opened by the tray or `localgate dashboard`)
is exchanged once for a session id kept in an HttpOnly SameSite=Strict cookie.

Tokens and sessions live in memory only (a restart logs the browser out). Pure apart from the
clock; touched only on the event loop.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable

LOGIN_TTL_S = 120.0           # a login link is good for two minutes, and for one use
SESSION_TTL_S = 12 * 3600.0   # a browser session lasts half a day
COOKIE = "localgate_session"


class Sessions:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._logins: dict[str, float] = {}    # one-time token -> expiry
        self._sessions: dict[str, float] = {}  # session id -> expiry

    def issue(self) -> str:
        """A new one-time login token."""
        self._prune()
        token = secrets.token_urlsafe(32)
        self._logins[token] = self._clock() + LOGIN_TTL_S
        return token

    def redeem(self, token: str) -> str | None:
        """Exchange a login token (once) for a new session id; None if unknown or expired."""
        self._prune()
        for known in list(self._logins):
            if hmac.compare_digest(known.encode(), token.encode()):
                del self._logins[known]
                sid = secrets.token_urlsafe(32)
                self._sessions[sid] = self._clock() + SESSION_TTL_S
                return sid
        return None

    def valid(self, sid: str | None) -> bool:
        if not sid:
            return False
        expiry = self._sessions.get(sid)
        return expiry is not None and expiry > self._clock()

    def _prune(self) -> None:
        now = self._clock()
        for table in (self._logins, self._sessions):
            for k in [k for k, exp in table.items() if exp <= now]:
                del table[k]
