"""Who is calling: the local API key, the user's Kilo key, or nobody (anonymous).

Pure policy plus the anonymous tier's rolling-hour counter. The local key is compared in
constant time and never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections import deque
from collections.abc import Callable, Mapping

from localgate.errors import AuthRequired, RateLimited

ANONYMOUS = "anonymous"
KILO_TOKEN = "kilo-token"  # a Kilo sign-in token that is not localgate's own KILO_API_KEY
ANON_PER_HOUR = 200


def looks_like_kilo_token(token: str) -> bool:
    """Kilo issues JWTs: three base64url parts, the first a JSON header naming its `alg`."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts) or len(token) > 8192:
        return False
    try:
        head = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    return isinstance(head, dict) and isinstance(head.get("alg"), str)


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a client presented (Bearer or Anthropic-style x-api-key), None for anonymous."""
    auth = headers.get("Authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else auth.strip()
    token = token or headers.get("x-api-key", "").strip()
    if not token or token == ANONYMOUS:
        return None
    return token


class LocalAuth:
    """Maps a presented key to a client name; a wrong key is refused, never downgraded."""

    def __init__(self, local_key: str, kilo_key: Callable[[], str | None],
                 named: Callable[[], Mapping[str, str]] = dict) -> None:
        self._local = local_key.encode()
        self._kilo = kilo_key
        self._named = named  # sha256 of a named client's key -> its name (revoked ones absent)

    def client(self, headers: Mapping[str, str]) -> str:
        token = presented_key(headers)
        if token is None:
            return ANONYMOUS
        raw = token.encode()
        if hmac.compare_digest(raw, self._local):
            return "default"
        kilo = self._kilo()
        if kilo and hmac.compare_digest(raw, kilo.encode()):
            return "kilo"
        name = self._named().get(hashlib.sha256(raw).hexdigest())
        if name is not None:
            return name
        if looks_like_kilo_token(token):  # a signed-in Kilo client: the hosted gateway only
            return KILO_TOKEN
        raise AuthRequired("the API key presented is not a localgate key: use the key shown by "
                           "`localgate token show` (or no key, for free models only)",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class AnonymousLimiter:
    """At most `limit` anonymous requests per rolling hour per client address."""

    def __init__(self, limit: int = ANON_PER_HOUR, window_s: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._seen: dict[str, deque[float]] = {}

    def check(self, address: str) -> None:
        now = self._clock()
        q = self._seen.setdefault(address, deque())
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if len(q) >= self.limit:
            retry = max(1, int(q[0] + self.window_s - now) + 1)
            raise RateLimited(f"anonymous requests are limited to {self.limit} per hour; "
                              f"try again in {retry} s or use a local API key",
                              headers={"Retry-After": str(retry)})
        q.append(now)
