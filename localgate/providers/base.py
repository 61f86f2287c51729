"""What every provider adapter is: a pure translator between the OpenAI chat wire format (the
lingua franca inside localgate) and one upstream wire format. No I/O, no asyncio, no aiohttp;
the key arrives in the Target, the gateway sends the HttpCall.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


# (not frozen: a frozen dataclass's __init__ costs ~6x more, and these are made per request)
@dataclass(slots=True)
class HttpCall:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class Target:
    """Where one call goes and what the adapter must know about it (built by the gateway)."""

    slug: str                    # the service called: openai, anthropic, mistral, kilo, ...
    base_url: str                # the provider's base_url (SPEC 4: its SDK's convention)
    api_key: str | None
    model: str                   # the id sent upstream (native id for direct providers)
    model_id: str                # the catalog id, e.g. anthropic/claude-sonnet-4.6
    provider: str                # the model's provider slug (anthropic for a gateway call too)
    kind: str                    # byok | gateway | free | local | byok-fallback
    max_output: int | None = None  # the catalog's maximum output tokens, when known
    api_url: str | None = None   # the hosted service's root (kilo only)


class StreamTranslator(Protocol):
    """Upstream stream bytes in, OpenAI chat SSE bytes out (`data: {chunk}\\n\\n` ... `data:
    [DONE]\\n\\n`), as they arrive: never more held back than one incomplete event."""

    def feed(self, data: bytes) -> bytes: ...

    def close(self) -> bytes:
        """The upstream ended: what is still to say. A stream cut before its end must not be
        made to look complete (no finish chunk, no [DONE] that the upstream did not earn)."""
        ...


class Adapter(Protocol):
    """One wire format (`api` in the config: "openai" | "anthropic")."""

    def chat_call(self, body: Mapping[str, Any], t: Target, *, stream: bool,
                  client_headers: Mapping[str, str]) -> HttpCall:
        """The upstream call for an OpenAI chat body (already repaired and validated)."""
        ...

    def chat_response(self, raw: bytes, t: Target) -> bytes:
        """A 2xx non-streamed upstream body as an OpenAI chat.completion body (identity for
        OpenAI-format upstreams)."""
        ...

    def error_response(self, status: int, raw: bytes, t: Target) -> bytes:
        """An upstream error body (status >= 400) as the client should see it: the OpenAI error
        envelope for translated formats, the bytes unchanged for OpenAI-format upstreams."""
        ...

    def stream_translator(self, t: Target) -> StreamTranslator | None:
        """None when the upstream already streams OpenAI chat SSE (relayed byte for byte)."""
        ...

    def native(self, endpoint: str, t: Target) -> bool:
        """Whether a client's non-chat request (`responses`, `messages`, `embeddings`) is sent
        to this target as the client wrote it (pass-through) rather than translated to chat."""
        ...

    def native_call(self, endpoint: str, body: Mapping[str, Any], t: Target, *, stream: bool,
                    client_headers: Mapping[str, str]) -> HttpCall:
        """The pass-through call for `native()` endpoints: the client's body, model replaced."""
        ...
