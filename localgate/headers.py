"""The headers of the request path: what every proxied answer carries (x-localgate-*), what is
passed on from an upstream's answer, and what a forwarded call keeps of the client's. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# an upstream's back-off and rate-limit headers reach the client
PASSED_ON = ("Retry-After", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
             "x-ratelimit-reset-requests", "x-ratelimit-limit-tokens",
             "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens")
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                         "te", "trailer", "trailers", "transfer-encoding", "upgrade", "host",
                         "content-length", "content-encoding", "authorization", "x-api-key"})


def forward_headers(headers: Mapping[str, str], key: str | None) -> dict[str, str]:
    """The client's headers for the Kilo service: hop-by-hop and its own key removed, the
    user's Kilo key (or the client's own Kilo token) presented instead."""
    out = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
    if key:
        out["Authorization"] = f"Bearer {key}"
    return out


def route_headers(ex: Any) -> dict[str, str]:
    """The x-localgate-* headers of every proxied response (SPEC 3)."""
    return {"x-localgate-route": ex.route, "x-localgate-provider": ex.provider,
            "x-localgate-upstream": ex.upstream, "x-localgate-model": ex.resolved_model,
            "x-request-id": ex.id}


def scrub(rt: Any, data: bytes) -> bytes:
    """Upstream bytes with the key we presented replaced: providers echo keys, and nothing a
    client sees or the log keeps may show one."""
    if rt is not None and rt.api_key:
        key = rt.api_key.encode()
        if key in data:
            return data.replace(key, b"<your key>")
    return data
