"""Provider adapters: pure translators from the OpenAI wire body to an upstream HttpCall.

They know nothing of the HTTP server, of where keys come from, or of where money is recorded.
"""

from __future__ import annotations

from localgate.providers.base import HttpCall
from localgate.providers.openai_compat import build_chat, mistral_body

__all__ = ["HttpCall", "build_chat", "mistral_body"]
