"""Provider adapters: pure translators from the OpenAI wire body to an upstream HttpCall and
back, looked up by wire format (`api` in the config).

They know nothing of the HTTP server, of where keys come from, or of where money is recorded.
"""

from __future__ import annotations

from localgate.providers.anthropic import AnthropicAdapter
from localgate.providers.base import Adapter, HttpCall, StreamTranslator, Target
from localgate.providers.openai_compat import (GATEWAY_FIM_FIELDS, build_chat, build_fim,
                                               mistral_body)

# one stateless adapter per wire format; the config's `api` value is the key
ADAPTERS: dict[str, Adapter] = {"anthropic": AnthropicAdapter()}


def adapter_for(api: str) -> Adapter:
    """The adapter for a wire format; KeyError for one no adapter speaks."""
    try:
        return ADAPTERS[api]
    except KeyError:
        raise KeyError(f"no provider adapter for api {api!r}") from None


__all__ = ["ADAPTERS", "GATEWAY_FIM_FIELDS", "Adapter", "AnthropicAdapter", "HttpCall",
           "StreamTranslator", "Target", "adapter_for", "build_chat", "build_fim",
           "mistral_body"]
