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
               stream: bool, extra_headers: Mapping[str, str] | None = None,
               request_usage: bool = True) -> HttpCall:
    """POST {base_url}/chat/completions with `model` set and, when streaming, usage requested
    (`request_usage=False` for upstreams that refuse stream_options)."""
    out = dict(body)
    out["model"] = model
    if stream and request_usage:
        opts = out.get("stream_options")
        out["stream_options"] = {**(opts if isinstance(opts, dict) else {}), "include_usage": True}
    return HttpCall("POST", f"{base_url}/chat/completions",
                    _headers(api_key, stream, extra_headers), jsonfast.dumps(out))


def _headers(api_key: str | None, stream: bool,
             extra: Mapping[str, str] | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json",
               "Accept": "text/event-stream" if stream else "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if extra:
        headers.update(extra)
    return headers


# The FIM fields Mistral accepts (it refuses others with 422); the hosted gateway keeps fewer.
FIM_FIELDS = frozenset({"prompt", "suffix", "max_tokens", "min_tokens", "stop", "stream",
                        "temperature", "top_p", "random_seed"})
GATEWAY_FIM_FIELDS = frozenset({"prompt", "suffix", "max_tokens", "min_tokens", "stop",
                                "stream"})


def build_fim(body: Mapping[str, Any], *, model: str, api_key: str | None, url: str,
              stream: bool, fields: frozenset[str] = FIM_FIELDS,
              extra_headers: Mapping[str, str] | None = None) -> HttpCall:
    """POST a fill-in-the-middle request (Mistral Codestral shape) to `url`."""
    out = {k: v for k, v in body.items() if k in fields}
    out["model"] = model
    return HttpCall("POST", url, _headers(api_key, stream, extra_headers), jsonfast.dumps(out))


def mistral_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """Mistral's API refuses OpenAI fields it does not know (422 extra_forbidden):
    `stream_options` (its streams end with usage anyway) and `max_completion_tokens` (it takes
    `max_tokens`); and, as the hosted gateway does, tools lose `strict`."""
    out = {k: v for k, v in body.items() if k != "stream_options"}
    if "max_completion_tokens" in out:
        limit = out.pop("max_completion_tokens")
        out.setdefault("max_tokens", limit)
    tools = out.get("tools")
    if isinstance(tools, list):
        out["tools"] = [_without_strict(t) for t in tools]
    return out


def _without_strict(tool: Any) -> Any:
    fn = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(fn, dict) or "strict" not in fn:
        return tool
    return {**tool, "function": {k: v for k, v in fn.items() if k != "strict"}}
