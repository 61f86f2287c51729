"""The Anthropic Messages API as an egress adapter: OpenAI chat in, Messages out, and back.

The request mapping lives in anthropic_request, the answer mapping in anthropic_response, the
stream translation in anthropic_stream; this module is the Adapter the gateway looks up by
`api = "anthropic"`. Pure: no I/O, no asyncio, no aiohttp; the key arrives in the Target.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from localgate import jsonfast
from localgate.providers.anthropic_request import messages_body
from localgate.providers.anthropic_response import completion, error_object
from localgate.providers.anthropic_stream import AnthropicStream
from localgate.providers.base import HttpCall, Target

API_VERSION = "2023-06-01"
# client headers worth passing on: a client may opt in to an Anthropic beta feature
_FORWARDED = ("anthropic-beta",)


class AnthropicAdapter:
    """Adapter for `api = "anthropic"` (base_url is what `/v1/messages` is appended to)."""

    api = "anthropic"

    def chat_call(self, body: Mapping[str, Any], t: Target, *, stream: bool,
                  client_headers: Mapping[str, str]) -> HttpCall:
        """POST {base_url}/v1/messages with the translated body and Anthropic's headers."""
        return HttpCall("POST", f"{t.base_url.rstrip('/')}/v1/messages",
                        _headers(t, stream, client_headers, _FORWARDED),
                        jsonfast.dumps(messages_body(body, t, stream=stream)))

    def native(self, endpoint: str, t: Target) -> bool:
        """An Anthropic Messages client reaching Anthropic with the user's key: untranslated."""
        return endpoint == "messages"

    def native_call(self, endpoint: str, body: Mapping[str, Any], t: Target, *, stream: bool,
                    client_headers: Mapping[str, str]) -> HttpCall:
        """The client's own Messages body (or count_tokens body), only a catalog model id made
        native; its anthropic-* headers (version, beta) kept (SPEC 9)."""
        out = dict(body)
        # a bare Anthropic id (a dated snapshot included) is Anthropic's own name for the model
        # the client pinned: kept; only a catalog id (anthropic/...) becomes the native id
        model = body.get("model")
        bare = isinstance(model, str) and model.startswith("claude-") and "/" not in model
        out["model"] = model if bare else t.model
        path = "/v1/messages" if endpoint == "messages" else "/v1/messages/count_tokens"
        return HttpCall("POST", f"{t.base_url.rstrip('/')}{path}",
                        _headers(t, stream, client_headers, _PASSED_THROUGH),
                        jsonfast.dumps(out))

    def chat_response(self, raw: bytes, t: Target) -> bytes:
        """A Messages response as an OpenAI chat.completion body. Raises ValueError when the
        body is not a Messages response (for the caller's malformed-upstream error)."""
        msg = jsonfast.loads(raw)
        if not isinstance(msg, dict) or msg.get("type") != "message":
            raise ValueError("anthropic answered 2xx with something that is not a message")
        return jsonfast.dumps(completion(msg, t))

    def error_response(self, status: int, raw: bytes, t: Target) -> bytes:
        """Anthropic's error body (or a non-JSON one) in the OpenAI envelope; the caller keeps
        the status."""
        return jsonfast.dumps({"error": error_object(status, raw)})

    def stream_translator(self, t: Target) -> AnthropicStream:
        return AnthropicStream(t)


_PASSED_THROUGH = ("anthropic-version", "anthropic-beta")


def _headers(t: Target, stream: bool, client_headers: Mapping[str, str],
             forwarded: tuple[str, ...]) -> dict[str, str]:
    headers = {"anthropic-version": API_VERSION, "content-type": "application/json",
               "accept": "text/event-stream" if stream else "application/json"}
    if t.api_key:
        headers["x-api-key"] = t.api_key
    headers.update({name.lower(): value for name, value in client_headers.items()
                    if name.lower() in forwarded})
    return headers
