"""One adapter for every OpenAI-format upstream (OpenAI, OpenRouter, the Kilo gateway, xAI,
Mistral, Gemini's compatible endpoint, Ollama, ...): configured, not subclassed.

The body is the client's own wire JSON with only what routing needs changed, so unknown fields
pass through untouched. Pure: no network, no keychain, no event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from localgate import jsonfast
from localgate.providers.base import HttpCall


def build_chat(body: Mapping[str, Any], *, model: str, api_key: str | None, base_url: str,
               stream: bool, extra_headers: Mapping[str, str] | None = None) -> HttpCall:
    """POST {base_url}/chat/completions with `model` set and usage requested when streaming."""
    out = dict(body)
    out["model"] = model
    if stream:
        opts = out.get("stream_options")
        out["stream_options"] = {**(opts if isinstance(opts, dict) else {}), "include_usage": True}
    headers = {"Content-Type": "application/json",
               "Accept": "text/event-stream" if stream else "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if extra_headers:
        headers.update(extra_headers)
    data = jsonfast.dumps(out)
    return HttpCall("POST", f"{base_url}/chat/completions", headers, data)
