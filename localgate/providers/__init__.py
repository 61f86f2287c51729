"""Provider adapters: pure translators from the OpenAI wire body to an upstream HttpCall.

They know nothing of the HTTP server, of where keys come from, or of where money is recorded.
"""

from __future__ import annotations

from localgate.providers.base import HttpCall
from localgate.providers.openai_compat import (GATEWAY_FIM_FIELDS, build_chat, build_fim,
                                               mistral_body)

__all__ = ["GATEWAY_FIM_FIELDS", "HttpCall", "build_chat", "build_fim", "mistral_body"]
