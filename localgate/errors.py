"""Every error a client can see, as one tree; each class knows its HTTP status and OpenAI type.

    GatewayError (500 server_error)
    ├── InvalidRequest (400 invalid_request)
    ├── AuthRequired (401 authentication_required)
    │   ├── PaidModelAuthRequired (401 paid_model_auth_required)
    │   └── ProviderKeyMissing (401 authentication_required)
    ├── Forbidden (403: model_not_allowed / provider_not_allowed / host_not_allowed)
    ├── ModelNotFound (404 model_not_found)
    ├── BodyTooLarge (413) · UnsupportedMediaType (415) · RateLimited (429)
    ├── Paused (503 paused) · SpendLogUnavailable (503 spend_log_unavailable)
    ├── ByokRefused (the provider's 401/402/403/429 for the user's own key)
    └── UpstreamError (502 upstream_error)
        └── UpstreamTimeout (504 upstream_timeout)

Stdlib only. Messages name providers and keys' *names*, never a key.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthRequired", "BodyTooLarge", "ByokRefused", "ConfigError", "Forbidden", "GatewayError",
    "InvalidRequest", "KeychainError",
    "ModelNotFound", "PaidModelAuthRequired", "Paused", "ProviderKeyMissing", "RateLimited",
    "SpendLogUnavailable", "UnsupportedMediaType", "UpstreamError", "UpstreamTimeout",
]


class GatewayError(Exception):
    """Base of every client-visible error; `envelope()` is the OpenAI error body."""

    status: ClassVar[int] = 500
    kind: ClassVar[str] = "server_error"
    default_code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None,
                 status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status  # e.g. an upstream refusal relayed with the upstream's status
        self.message = message
        self.code = code or self.default_code
        self.param = param
        self.headers = headers or {}
        self.extra = extra or {}

    def envelope(self) -> dict[str, Any]:
        err: dict[str, Any] = {"message": self.message, "type": self.kind,
                               "code": self.code, "param": self.param}
        err.update(self.extra)
        return {"error": err}


class InvalidRequest(GatewayError):
    status, kind, default_code = 400, "invalid_request_error", "invalid_request"


class AuthRequired(GatewayError):
    status, kind, default_code = 401, "authentication_error", "authentication_required"


class PaidModelAuthRequired(AuthRequired):
    default_code = "paid_model_auth_required"


class ProviderKeyMissing(AuthRequired):
    """No key for the provider the request needs (BYOK key or a gateway key)."""


class Forbidden(GatewayError):
    status, kind, default_code = 403, "permission_error", "forbidden"


class ModelNotFound(GatewayError):
    status, kind, default_code = 404, "invalid_request_error", "model_not_found"


class BodyTooLarge(GatewayError):
    status, kind, default_code = 413, "invalid_request_error", "request_too_large"


class UnsupportedMediaType(GatewayError):
    status, kind, default_code = 415, "invalid_request_error", "unsupported_media_type"


class RateLimited(GatewayError):
    status, kind, default_code = 429, "rate_limit_error", "rate_limit_exceeded"


class Paused(GatewayError):
    status, kind, default_code = 503, "service_unavailable", "paused"


class SpendLogUnavailable(GatewayError):
    status, kind, default_code = 503, "service_unavailable", "spend_log_unavailable"


class UpstreamError(GatewayError):
    status, kind, default_code = 502, "upstream_error", "upstream_error"


class UpstreamTimeout(UpstreamError):
    status, kind, default_code = 504, "timeout", "upstream_timeout"


class ByokRefused(GatewayError):
    """The provider refused the user's own key (401/402/403/429); status is the provider's."""

    kind, default_code = "byok_error", "byok_error"


class ConfigError(Exception):
    """A known config key holds a bad value; the message names the key and what it expects."""


class KeychainError(Exception):
    """The keychain (or the fallback key file) failed; the message names the store, never a
    key. Not a client error: the daemon keeps its last keys and says why."""
