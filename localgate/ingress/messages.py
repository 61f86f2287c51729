"""Anthropic Messages ingress (Claude Code, the `anthropic` SDKs): a Messages request to an OpenAI
chat body (`to_chat`) and the local token estimate for count_tokens.
The way back (`from_chat`, `StreamEncoder`) and `error_body` live in messages_out.py and are
re-exported here.

Pure: no I/O, no asyncio, no aiohttp; imports only localgate.ingress.* and the stdlib.
"""

from __future__ import annotations

import json
from typing import Any

from localgate.ingress.chat import fail, obj, require
from localgate.ingress.messages_out import StreamEncoder, error_body, from_chat

__all__ = ["StreamEncoder", "error_body", "estimate_tokens", "from_chat", "to_chat"]

_SAMPLING = ("temperature", "top_p", "top_k")
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "xhigh"}
IMAGE_TOKENS = 1600  # Anthropic's cost of a full-size image; the estimate has no pixel sizes


def to_chat(body: Any) -> dict[str, Any]:
    """A Messages request -> an OpenAI chat body. Raises errors.InvalidRequest (400, with
    `param`) for malformed input and for what chat cannot express (server tools, MCP servers)."""
    require(isinstance(body, dict), "the request body must be a JSON object", "body")
    model, max_tokens = body.get("model"), body.get("max_tokens")
    require(isinstance(model, str) and bool(model), "'model' is required (a model id)", "model")
    require(_is_int(max_tokens) and max_tokens >= 1,
            "'max_tokens' is required: a whole number of at least 1", "max_tokens")
    require(not body.get("mcp_servers"), "MCP servers run inside Anthropic's API; localgate "
            "translates this request to OpenAI chat and cannot connect them", "mcp_servers")
    messages = _system(body.get("system")) + _messages(body.get("messages"))
    out: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens}
    _sampling(body, out)
    _tools(body, out)
    _reasoning(body, out)
    user = (body.get("metadata") or {}).get("user_id") if isinstance(
        body.get("metadata"), dict) else None
    if isinstance(user, str) and user:
        out["user"] = user
    if body.get("stream") is True:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}  # message_delta reports usage
    return out


def estimate_tokens(body: Any) -> int:
    """An estimate, not a count: characters / 4 over the system prompt, the messages and the
    tools (plus IMAGE_TOKENS per image), for /v1/messages/count_tokens when no Anthropic key can
    ask Anthropic. Raises errors.InvalidRequest when `messages` is not a list."""
    require(isinstance(body, dict) and isinstance(body.get("messages"), list),
            "'messages' is required: a list of messages", "messages")
    chars, images = 0, 0
    stack: list[Any] = [body.get("system"), body["messages"], body.get("tools")]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            chars += len(item)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            if item.get("type") in ("image", "document") and isinstance(item.get("source"), dict):
                images += 1
                continue
            for key, value in item.items():
                if key in ("input", "input_schema"):
                    chars += len(json.dumps(value, ensure_ascii=False))
                elif key not in ("type", "role", "cache_control", "id", "tool_use_id", "signature"):
                    stack.append(value)
    return max(1, -(-chars // 4) + images * IMAGE_TOKENS)


# -- request pieces ------------------------------------------------------------------------

def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _system(system: Any) -> list[dict[str, Any]]:
    if system is None or system == "" or system == []:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    require(isinstance(system, list), "'system' must be a string or a list of text blocks",
            "system")
    parts = []
    for i, block in enumerate(system):
        require(isinstance(block, dict) and block.get("type") == "text"
                and isinstance(block.get("text"), str),
                "each 'system' block must be {\"type\": \"text\", \"text\": ...}", f"system[{i}]")
        parts.append(_text_part(block))
    return [{"role": "system", "content": parts}]


def _text_part(block: dict[str, Any]) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "text", "text": block["text"]}
    if isinstance(block.get("cache_control"), dict):
        part["cache_control"] = block["cache_control"]  # OpenRouter's content-part caching
    return part


def _messages(messages: Any) -> list[dict[str, Any]]:
    require(isinstance(messages, list) and bool(messages),
            "'messages' is required: a non-empty list of user/assistant messages", "messages")
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        require(isinstance(msg, dict) and msg.get("role") in ("user", "assistant"),
                "each message needs a 'role' of 'user' or 'assistant'", f"{where}.role")
        content = msg.get("content")
        require(isinstance(content, str | list),
                "'content' must be a string or a list of content blocks", f"{where}.content")
        if msg["role"] == "assistant":
            out.append(_assistant(content, where))
        else:
            out.extend(_user(content, where))
    return out


def _blocks(content: str | list[Any], where: str) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(content, str):
        return [(f"{where}.content", {"type": "text", "text": content})]
    out = []
    for j, block in enumerate(content):
        param = f"{where}.content[{j}]"
        require(isinstance(block, dict) and isinstance(block.get("type"), str),
                "each content block must be an object with a 'type'", param)
        out.append((param, block))
    return out


def _user(content: str | list[Any], where: str) -> list[dict[str, Any]]:
    """Tool results first (as `tool` messages, right after the assistant turn they answer), then
    the rest of the turn as one user message; images inside tool results join that message,
    since chat's tool messages carry text only."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tools: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for param, block in _blocks(content, where):
        if block["type"] == "tool_result":
            tool, images = _tool_result(block, param)
            tools.append(tool)
            parts.extend(images)
        else:
            parts.append(_user_part(block, param))
    return tools + ([{"role": "user", "content": parts}] if parts else [])


def _user_part(block: dict[str, Any], param: str) -> dict[str, Any]:
    kind = block["type"]
    if kind == "text":
        require(isinstance(block.get("text"), str), "a text block needs 'text'", param)
        return _text_part(block)
    if kind == "image":
        return _image(block, param)
    if kind == "document":
        return _document(block, param)
    fail(f"content blocks of type '{kind}' cannot be translated to OpenAI chat "
         "(text, image, document, tool_result are)", f"{param}.type")


def _image(block: dict[str, Any], param: str) -> dict[str, Any]:
    src = block.get("source")
    if not isinstance(src, dict):
        fail("an image block needs a 'source'", f"{param}.source")
    if src.get("type") == "base64":
        require(isinstance(src.get("data"), str) and isinstance(src.get("media_type"), str),
                "a base64 image source needs 'media_type' and 'data'", f"{param}.source")
        url = f"data:{src['media_type']};base64,{src['data']}"
    else:
        require(src.get("type") == "url" and isinstance(src.get("url"), str),
                "an image source must be base64 or url (file ids are not kept here)",
                f"{param}.source")
        url = src["url"]
    part: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
    if isinstance(block.get("cache_control"), dict):
        part["cache_control"] = block["cache_control"]
    return part


def _document(block: dict[str, Any], param: str) -> dict[str, Any]:
    src = obj(block.get("source"))
    name = block.get("title") if isinstance(block.get("title"), str) else "document.pdf"
    if src.get("type") == "text" and isinstance(src.get("data"), str):
        return {"type": "text", "text": src["data"]}
    if src.get("type") == "base64" and isinstance(src.get("data"), str):
        media = src.get("media_type") or "application/pdf"
        data = f"data:{media};base64,{src['data']}"
    else:
        require(src.get("type") == "url" and isinstance(src.get("url"), str),
                "a document source must be base64, text or url", f"{param}.source")
        data = src["url"]
    return {"type": "file", "file": {"filename": name, "file_data": data}}


def _tool_result(block: dict[str, Any], param: str) -> tuple[dict[str, Any], list[Any]]:
    call_id = block.get("tool_use_id")
    require(isinstance(call_id, str) and bool(call_id), "a tool_result needs 'tool_use_id'",
            f"{param}.tool_use_id")
    content = block.get("content", "")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    if isinstance(content, str):
        texts.append(content)
    else:
        require(isinstance(content, list), "tool_result 'content' must be a string or blocks",
                f"{param}.content")
        for sub_param, sub in _blocks(content, param):
            part = _user_part(sub, sub_param)
            if part["type"] == "text":
                texts.append(part["text"])
            else:
                images.append(part)
    text = "\n".join(texts)
    if block.get("is_error") is True:
        text = f"Error: {text}"  # chat has no error flag on a tool result: say it in words
    tool: dict[str, Any] = {"role": "tool", "tool_call_id": call_id, "content": text}
    if isinstance(block.get("cache_control"), dict):
        tool["content"] = [{"type": "text", "text": text, "cache_control": block["cache_control"]}]
    return tool, images


def _assistant(content: str | list[Any], where: str) -> dict[str, Any]:
    texts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    for param, block in _blocks(content, where):
        kind = block["type"]
        if kind == "text":
            require(isinstance(block.get("text"), str), "a text block needs 'text'", param)
            texts.append(_text_part(block))
        elif kind == "tool_use":
            calls.append(_tool_use(block, param))
        elif kind == "thinking":
            details.append({"type": "reasoning.text", "text": str(block.get("thinking", "")),
                            "signature": block.get("signature") or None,
                            "format": "anthropic-claude-v1", "index": len(details)})
        elif kind == "redacted_thinking":
            details.append({"type": "reasoning.encrypted", "data": str(block.get("data", "")),
                            "format": "anthropic-claude-v1", "index": len(details)})
        else:
            fail(f"assistant blocks of type '{kind}' cannot be translated to OpenAI "
                 "chat (text, tool_use, thinking are)", f"{param}.type")
    msg: dict[str, Any] = {"role": "assistant", "content": _assistant_text(texts)}
    if calls:
        msg["tool_calls"] = calls
    if details:
        msg["reasoning_details"] = details  # OpenRouter carries signed thinking back this way
    return msg


def _assistant_text(parts: list[dict[str, Any]]) -> Any:
    if any("cache_control" in p for p in parts):
        return parts
    return "".join(p["text"] for p in parts) if parts else None


def _tool_use(block: dict[str, Any], param: str) -> dict[str, Any]:
    require(isinstance(block.get("id"), str) and isinstance(block.get("name"), str),
            "a tool_use block needs 'id' and 'name'", param)
    args = block.get("input", {})
    return {"id": block["id"], "type": "function",
            "function": {"name": block["name"], "arguments": json.dumps(args, ensure_ascii=False)}}


def _sampling(body: dict[str, Any], out: dict[str, Any]) -> None:
    for name in _SAMPLING:
        if body.get(name) is not None:
            require(_is_num(body[name]), f"'{name}' must be a number", name)
            out[name] = body[name]
    stops = body.get("stop_sequences")
    if stops:
        require(isinstance(stops, list) and all(isinstance(s, str) for s in stops),
                "'stop_sequences' must be a list of strings", "stop_sequences")
        out["stop"] = stops


def _tools(body: dict[str, Any], out: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools:
        require(isinstance(tools, list), "'tools' must be a list", "tools")
        out["tools"] = [_tool(t, f"tools[{i}]") for i, t in enumerate(tools)]
    choice = body.get("tool_choice")
    if choice is None:
        return
    require(isinstance(choice, dict), "'tool_choice' must be an object with a 'type'",
            "tool_choice")
    kind = choice.get("type")
    if kind == "tool":
        require(isinstance(choice.get("name"), str), "tool_choice 'tool' needs a 'name'",
                "tool_choice.name")
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        named = {"auto": "auto", "any": "required", "none": "none"}
        require(kind in named, "tool_choice 'type' must be auto, any, tool or none",
                "tool_choice.type")
        out["tool_choice"] = named[kind]
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False


def _tool(tool: Any, param: str) -> dict[str, Any]:
    require(isinstance(tool, dict), "each tool must be an object", param)
    kind = tool.get("type")
    require(kind in (None, "custom"), f"'{kind}' is one of Anthropic's server tools; localgate "
            "translates this request to OpenAI chat, which takes only custom tools (name, "
            "description, input_schema)", f"{param}.type")
    require(isinstance(tool.get("name"), str) and bool(tool["name"]), "a tool needs a 'name'",
            f"{param}.name")
    schema = tool.get("input_schema")
    require(isinstance(schema, dict), "a tool needs an 'input_schema' object",
            f"{param}.input_schema")
    fn: dict[str, Any] = {"name": tool["name"], "parameters": schema}
    if isinstance(tool.get("description"), str):
        fn["description"] = tool["description"]
    if isinstance(tool.get("strict"), bool):
        fn["strict"] = tool["strict"]
    return {"type": "function", "function": fn}


def _reasoning(body: dict[str, Any], out: dict[str, Any]) -> None:
    """`thinking` (and `output_config`) -> OpenRouter's `reasoning`; JSON output -> chat's."""
    thinking = body.get("thinking")
    config = obj(body.get("output_config"))
    effort = config.get("effort")
    require(effort is None or effort in _EFFORTS, "output_config.effort must be low, medium, "
            "high, xhigh or max", "output_config.effort")
    reasoning: dict[str, Any] | None = {"effort": _EFFORTS[effort]} if effort else None
    if thinking is not None:
        require(isinstance(thinking, dict), "'thinking' must be an object with a 'type'",
                "thinking")
        reasoning = _thinking(thinking, effort)
    if reasoning is not None:
        out["reasoning"] = reasoning
    fmt = config.get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        require(isinstance(fmt.get("schema"), dict), "output_config.format needs a 'schema'",
                "output_config.format.schema")
        out["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "output", "schema": fmt["schema"], "strict": True}}


def _thinking(thinking: dict[str, Any], effort: str | None) -> dict[str, Any]:
    kind = thinking.get("type")
    if kind == "disabled":
        return {"enabled": False}
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not (isinstance(budget, int) and not isinstance(budget, bool) and budget >= 1):
            fail("thinking 'budget_tokens' must be a whole number", "thinking.budget_tokens")
        reasoning: dict[str, Any] = {"max_tokens": budget}
    elif kind == "adaptive":
        reasoning = {"effort": _EFFORTS[effort] if effort else "high"}  # Anthropic's default
    else:
        require(kind == "between_tools", "thinking 'type' must be enabled, adaptive or disabled",
                "thinking.type")
        reasoning = {"enabled": True}
    if thinking.get("display") == "omitted":
        reasoning["exclude"] = True
    return reasoning
