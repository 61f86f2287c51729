"""Checking a client's request body: only the few fields localgate itself relies on (model,
stream, messages, FIM's prompt); everything else passes through to the upstream, which decides.
Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from localgate.errors import InvalidRequest
from localgate.exchange import MAX_MODEL_CHARS


def model(body: dict[str, Any]) -> str | None:
    model = body.get("model")
    if model is None:
        return None
    if not isinstance(model, str):
        raise InvalidRequest("'model' must be a string", param="model")
    model = model.strip()
    if len(model) > MAX_MODEL_CHARS or not model.isprintable():
        raise InvalidRequest(f"'model' must be a model id (printable, at most {MAX_MODEL_CHARS} "
                             "characters), e.g. anthropic/claude-sonnet-4.6", param="model")
    return model or None


def stream(body: dict[str, Any]) -> bool:
    stream = body.get("stream", False)
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be true or false", param="stream")
    return stream


def body_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


def chat(body: Any) -> tuple[str | None, bool]:
    """(model or None, stream) after checking the few fields the daemon itself relies on."""
    body = body_object(body)
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("'messages' is required", param="messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise InvalidRequest(f"messages[{i}] must be an object with a 'role'",
                                 param=f"messages[{i}]")
    for name in ("stream_options", "usage"):
        if body.get(name) is not None and not isinstance(body[name], dict):
            raise InvalidRequest(f"'{name}' must be an object", param=name)
    return model(body), stream(body)


def fim(body: Any) -> tuple[str, bool]:
    body = body_object(body)
    if not isinstance(body.get("prompt"), str):
        raise InvalidRequest("'prompt' (the code before the cursor) is required", param="prompt")
    if body.get("suffix") is not None and not isinstance(body["suffix"], str):
        raise InvalidRequest("'suffix' must be a string", param="suffix")
    for name in ("max_tokens", "min_tokens"):
        v = body.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise InvalidRequest(f"'{name}' must be a whole number", param=name)
    name, streamed = model(body), stream(body)
    if name is None:
        raise InvalidRequest("'model' is required, e.g. mistralai/codestral-2508", param="model")
    return name, streamed


def wants_usage(body: Mapping[str, Any], *, gateway_path: bool) -> bool:
    """Whether a streaming client gets the usage chunk: always on the hosted gateway's paths (as
    the hosted gateway does), else when asked the OpenAI way or OpenRouter's way."""
    if gateway_path:
        return True
    opts, usage = body.get("stream_options"), body.get("usage")
    return bool((isinstance(opts, dict) and opts.get("include_usage"))
                or (isinstance(usage, dict) and usage.get("include")))

