"""Anthropic Messages answers in OpenAI's words: the completion body, usage, stop reasons and
the error envelope, shared by the non-streamed and the streamed halves of the adapter.

Pure: stdlib and localgate.jsonfast only.
"""

from __future__ import annotations

import time
from typing import Any

from localgate import jsonfast
from localgate.providers.anthropic_request import REASONING_FORMAT
from localgate.providers.base import Target

FINISH = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop",
          "tool_use": "tool_calls", "max_tokens": "length",
          "model_context_window_exceeded": "length", "refusal": "content_filter"}
# Anthropic's error type for a status whose body does not say (docs: "HTTP errors")
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}


def finish_reason(stop: Any) -> str:
    """OpenAI's finish_reason for an Anthropic stop_reason (unknown or absent: "stop")."""
    return FINISH.get(stop, "stop") if isinstance(stop, str) else "stop"


def openai_usage(u: Any) -> dict[str, Any]:
    """SPEC 5: prompt_tokens counts cache reads and writes too; both are reported apart."""
    u = u if isinstance(u, dict) else {}
    read, write = _count(u.get("cache_read_input_tokens")), \
        _count(u.get("cache_creation_input_tokens"))
    prompt = _count(u.get("input_tokens")) + read + write
    completion = _count(u.get("output_tokens"))
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": write}}


def reasoning_text(text: str, index: int, signature: str | None = None) -> dict[str, Any]:
    """One OpenRouter `reasoning_details` entry for (part of) a thinking block."""
    d: dict[str, Any] = {"type": "reasoning.text", "text": text}
    if signature is not None:
        d["signature"] = signature
    d.update(format=REASONING_FORMAT, index=index)
    return d


def reasoning_encrypted(data: str, index: int) -> dict[str, Any]:
    """One OpenRouter `reasoning_details` entry for a redacted_thinking block."""
    return {"type": "reasoning.encrypted", "data": data, "format": REASONING_FORMAT,
            "index": index}


def completion(msg: dict[str, Any], t: Target) -> dict[str, Any]:
    """A Messages response object as an OpenAI chat.completion object."""
    texts: list[str] = []
    thoughts: list[str] = []
    details: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in msg.get("content") or []:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use":
            calls.append({"id": block.get("id"), "type": "function", "function": {
                "name": block.get("name"),
                "arguments": jsonfast.dumps(block.get("input") or {}).decode()}})
        elif kind == "thinking":
            thoughts.append(str(block.get("thinking") or ""))
            details.append(reasoning_text(thoughts[-1], len(details),
                                          str(block.get("signature") or "")))
        elif kind == "redacted_thinking":
            details.append(reasoning_encrypted(str(block.get("data") or ""), len(details)))
    message: dict[str, Any] = {"role": "assistant",
                               "content": "".join(texts) if texts or not calls else None,
                               "refusal": None}
    if calls:
        message["tool_calls"] = calls
    if details:
        message["reasoning"] = "".join(thoughts) if thoughts else None
        message["reasoning_details"] = details
    return {"id": str(msg.get("id") or "msg"), "object": "chat.completion",
            "created": int(time.time()), "model": t.model_id,
            "choices": [{"index": 0, "message": message,
                         "finish_reason": finish_reason(msg.get("stop_reason")),
                         "logprobs": None}],
            "usage": openai_usage(msg.get("usage"))}


def error_object(status: int, raw: bytes) -> dict[str, Any]:
    """Anthropic's `{"type":"error","error":{"type","message"}}` (or any other body) as the
    inner object of OpenAI's error envelope; `type` and `code` carry Anthropic's error type."""
    kind = ERROR_TYPES.get(status, "api_error")
    message = ""
    try:
        body = jsonfast.loads(raw)
    except ValueError:
        body = None
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        kind = err["type"] if isinstance(err.get("type"), str) and err["type"] else kind
        message = err["message"] if isinstance(err.get("message"), str) else ""
    elif raw.strip():  # not Anthropic's shape (a proxy's HTML page): say what came back
        message = " ".join(raw[:200].decode("utf-8", "replace").split())
    if not message:
        message = f"Anthropic answered HTTP {status} ({kind})"
    return {"message": message, "type": kind, "code": kind, "param": None}


def _count(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0
