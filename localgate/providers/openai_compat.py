"""The adapter for every upstream that speaks OpenAI Chat Completions (OpenAI, the Kilo gateway,
OpenRouter, xAI, Mistral, Gemini's compatible endpoint, Groq, Ollama, ...): one class, configured
by the Target, never subclassed. Bodies go out with only what routing needs changed, answers come
back byte for byte (STYLE 1). The per-provider shaping the hosted gateway applies lives here
(reference/hosted-gateway.md 2.3). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from localgate import jsonfast
from localgate.builtins import OPENROUTER_ORDER
from localgate.providers.base import HttpCall, StreamTranslator, Target
from localgate.repair import rewrite_tool_call_ids

# Direct providers that get tool_choice "required" when an attempt_completion tool is offered
# (reference 2.3: xAI, OpenAI, Gemini, Moonshot; Mistral too).
_REQUIRED_TOOL_CHOICE = frozenset({"x-ai", "openai", "google", "moonshotai", "mistral"})
_GATEWAYS = frozenset({"kilo", "openrouter"})
_KILO_HEADER_PREFIX = "x-kilocode-"
MISTRAL_TEMPERATURE = 0.2

# The FIM fields Mistral accepts (it refuses others with 422); the hosted gateway keeps fewer.
FIM_FIELDS = frozenset({"prompt", "suffix", "max_tokens", "min_tokens", "stop", "stream",
                        "temperature", "top_p", "random_seed"})
GATEWAY_FIM_FIELDS = frozenset({"prompt", "suffix", "max_tokens", "min_tokens", "stop",
                                "stream"})


class OpenAIAdapter:
    """Adapter (providers/base.py) for OpenAI-format upstreams."""

    api = "openai"

    def chat_call(self, body: Mapping[str, Any], t: Target, *, stream: bool,
                  client_headers: Mapping[str, str]) -> HttpCall:
        out = dict(body)
        out["model"] = t.model
        direct = t.kind not in _GATEWAY_KINDS and t.slug not in _GATEWAYS
        if direct:
            _direct_fields(out, t.slug)
        mistral = t.slug == "mistral" and direct
        if mistral:
            out = mistral_body(out)
        elif stream:
            opts = out.get("stream_options")
            out["stream_options"] = {**(opts if isinstance(opts, dict) else {}),
                                     "include_usage": True}
        if t.slug == "openrouter":
            openrouter_hints(out, t.provider)
        elif "tools" in out and t.slug in _REQUIRED_TOOL_CHOICE and direct:
            _require_completion_tool(out)
        return HttpCall("POST", f"{t.base_url}/chat/completions",
                        _headers(t.api_key, stream, _extra(t, client_headers)),
                        jsonfast.dumps(out))

    def fim_call(self, body: Mapping[str, Any], t: Target, *, stream: bool,
                 client_headers: Mapping[str, str]) -> HttpCall:
        """Fill-in-the-middle (Mistral Codestral shape): Mistral's own endpoint, or the hosted
        service's (`api_url` + /api/fim/completions, fewer fields) for the Kilo gateway."""
        if t.slug == "kilo":
            url, fields = f"{t.api_url}/api/fim/completions", GATEWAY_FIM_FIELDS
        else:
            url, fields = f"{t.base_url}/fim/completions", FIM_FIELDS
        out = {k: v for k, v in body.items() if k in fields}
        out["model"] = t.model
        return HttpCall("POST", url, _headers(t.api_key, stream, _extra(t, client_headers)),
                        jsonfast.dumps(out))

    def native(self, endpoint: str, t: Target) -> bool:
        """Embeddings are OpenAI's own endpoint everywhere; Responses is sent as it is to OpenAI
        and to the hosted gateway (SPEC 9 / issue 8), translated to chat for everyone else."""
        return endpoint == "embeddings" or (endpoint == "responses"
                                            and t.slug in ("openai", "kilo"))

    def native_call(self, path: str, body: Mapping[str, Any], t: Target, *, stream: bool,
                    client_headers: Mapping[str, str]) -> HttpCall:
        """An OpenAI endpoint other than chat (`responses`, `embeddings`) sent as the client
        wrote it, with only the model id replaced."""
        out = dict(body)
        out["model"] = t.model
        return HttpCall("POST", f"{t.base_url}/{path}",
                        _headers(t.api_key, stream, _extra(t, client_headers)),
                        jsonfast.dumps(out))

    def chat_response(self, raw: bytes, t: Target) -> bytes:
        return raw

    def error_response(self, status: int, raw: bytes, t: Target) -> bytes:
        return raw

    def stream_translator(self, t: Target) -> StreamTranslator | None:
        return None


_GATEWAY_KINDS = frozenset({"gateway", "free", "byok-fallback"})


# OpenRouter's own request fields: a provider's API refuses them (OpenAI: 400 "Unrecognized
# request argument"; Mistral: 422), so direct calls leave them out (`reasoning` is carried
# over as reasoning_effort).
_OPENROUTER_ONLY = ("usage", "provider", "transforms", "models", "route", "plugins",
                    "reasoning")
_OPENROUTER_ONLY_SET = frozenset(_OPENROUTER_ONLY)
_EFFORTS = frozenset({"minimal", "low", "medium", "high", "xhigh"})


def _direct_fields(out: dict[str, Any], slug: str) -> None:
    if _OPENROUTER_ONLY_SET.isdisjoint(out) and (slug != "openai" or "max_tokens" not in out):
        return  # the usual body: nothing of OpenRouter's, nothing to rename
    reasoning = out.get("reasoning")
    for name in _OPENROUTER_ONLY:
        out.pop(name, None)
    if isinstance(reasoning, dict) and reasoning.get("effort") in _EFFORTS and \
            "reasoning_effort" not in out and reasoning.get("enabled") is not False:
        out["reasoning_effort"] = reasoning["effort"]
    if slug == "openai" and "max_tokens" in out:
        # OpenAI's reasoning models refuse max_tokens; max_completion_tokens works for all
        limit = out.pop("max_tokens")
        out.setdefault("max_completion_tokens", limit)


def _extra(t: Target, client_headers: Mapping[str, str]) -> dict[str, str] | None:
    """The client's x-kilocode-* headers (mode, task id, feature, editor) go to the Kilo
    service only."""
    if t.slug != "kilo":
        return None
    return {k: v for k, v in client_headers.items()
            if k.lower().startswith(_KILO_HEADER_PREFIX)}


def _headers(api_key: str | None, stream: bool,
             extra: Mapping[str, str] | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json",
               "Accept": "text/event-stream" if stream else "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if extra:
        headers.update(extra)
    return headers


def openrouter_hints(body: dict[str, Any], provider: str) -> None:
    """Add the seeds' preferred inference provider as provider.order, never over the client's."""
    preferred = OPENROUTER_ORDER.get(provider)
    if preferred is None:
        return
    prefs = body.get("provider")
    if prefs is None:
        body["provider"] = {"order": [preferred]}
    elif isinstance(prefs, dict) and "order" not in prefs:
        body["provider"] = {**prefs, "order": [preferred]}


def _require_completion_tool(body: dict[str, Any]) -> None:
    """tool_choice "required" when an attempt_completion tool is offered and the client left
    the choice open (agent loops must end through that tool, as the hosted gateway ensures)."""
    tools = body.get("tools")
    if not isinstance(tools, list) or body.get("tool_choice") not in (None, "auto"):
        return
    if any(isinstance(t, dict) and isinstance(t.get("function"), dict)
           and t["function"].get("name") == "attempt_completion" for t in tools):
        body["tool_choice"] = "required"


def mistral_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """Mistral's API refuses OpenAI fields it does not know (422 extra_forbidden):
    `stream_options` (its streams end with usage anyway) and `max_completion_tokens` (it takes
    `max_tokens`); and, as the hosted gateway does, tools lose `strict`, tool-call ids become
    9 characters and the temperature defaults to 0.2."""
    out = {k: v for k, v in body.items() if k != "stream_options"}
    if "max_completion_tokens" in out:
        limit = out.pop("max_completion_tokens")
        out.setdefault("max_tokens", limit)
    out.setdefault("temperature", MISTRAL_TEMPERATURE)
    tools = out.get("tools")
    if isinstance(tools, list):
        out["tools"] = [_without_strict(t) for t in tools]
    if isinstance(out.get("messages"), list):
        out["messages"], _ = rewrite_tool_call_ids(out["messages"], "mistral")
    return out


def _without_strict(tool: Any) -> Any:
    fn = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(fn, dict) or "strict" not in fn:
        return tool
    return {**tool, "function": {k: v for k, v in fn.items() if k != "strict"}}
