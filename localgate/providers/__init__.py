"""Provider adapters: pure translators between the OpenAI chat wire format and each upstream
wire format, found by the config's `api` value. They know nothing of the HTTP server, of where
keys come from, or of where money is recorded.
"""

from __future__ import annotations

from localgate.providers.anthropic import AnthropicAdapter
from localgate.providers.base import Adapter, HttpCall, StreamTranslator, Target
from localgate.providers.openai_compat import OpenAIAdapter

__all__ = ["ADAPTERS", "Adapter", "AnthropicAdapter", "HttpCall", "OpenAIAdapter",
           "StreamTranslator", "Target", "adapter_for"]

# one stateless adapter per wire format; the config's `api` value is the key
ADAPTERS: dict[str, Adapter] = {"openai": OpenAIAdapter(), "anthropic": AnthropicAdapter()}


def adapter_for(api: str) -> Adapter:
    """The adapter for a wire format; KeyError for one localgate does not speak."""
    return ADAPTERS[api]
