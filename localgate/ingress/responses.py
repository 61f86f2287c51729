"""OpenAI Responses ingress (the Vercel AI SDK's default OpenAI provider, LangChain for codex
models, the `openai` SDK's responses.create), stateless: a Responses request to an OpenAI chat
body (`to_chat`). The way back (`from_chat`, `StreamEncoder`) and `error_body` live in
responses_out.py and are re-exported here.

Nothing is stored: `previous_response_id`, `conversation`, stored prompts and `item_reference`
are refused with a 400; `store` is accepted and ignored. Pure: no I/O, no asyncio, no aiohttp;
imports only localgate.ingress.* and the stdlib.
"""

from __future__ import annotations

from typing import Any

from localgate.ingress.chat import fail, require
from localgate.ingress.responses_out import StreamEncoder, error_body, from_chat

__all__ = ["StreamEncoder", "error_body", "from_chat", "to_chat"]

_STATEFUL = {
    "previous_response_id": "localgate does not keep responses (it is stateless): send the "
                            "whole conversation in 'input' instead of 'previous_response_id'",
    "conversation": "localgate does not keep conversations (it is stateless): send the whole "
                    "conversation in 'input'",
    "prompt": "stored prompt templates live at OpenAI; localgate cannot use them: send the "
              "prompt in 'instructions' and 'input'",
    "background": "background responses need a stored response; localgate is stateless",
}
_PASSED: dict[str, Any] = {"temperature": int | float, "top_p": int | float,
                           "parallel_tool_calls": bool, "user": str, "safety_identifier": str,
                           "prompt_cache_key": str}
_KIND_NAMES = {int | float: "number", bool: "boolean", str: "string"}


def to_chat(body: Any) -> dict[str, Any]:
    """A Responses request -> an OpenAI chat body. Raises errors.InvalidRequest (400, with
    `param`) for malformed input, for state it would need (previous_response_id, ...) and for
    built-in tools (web_search, file_search, ...), which chat models cannot run."""
    require(isinstance(body, dict), "the request body must be a JSON object", "body")
    for name, why in _STATEFUL.items():
        require(not body.get(name), why, name)
    model = body.get("model")
    require(isinstance(model, str) and bool(model), "'model' is required (a model id)", "model")
    messages = _instructions(body.get("instructions")) + _input(body.get("input"))
    out: dict[str, Any] = {"model": model, "messages": messages}
    limit = body.get("max_output_tokens")
    if limit is not None:
        require(_is_int(limit) and limit >= 1,
                "'max_output_tokens' must be a whole number of at least 1", "max_output_tokens")
        out["max_tokens"] = limit
    for name, kind in _PASSED.items():
        if body.get(name) is not None:
            require(_is(body[name], kind), f"'{name}' must be a {_KIND_NAMES[kind]}", name)
            out[name] = body[name]
    _tools(body, out)
    _reasoning_and_text(body, out)
    if body.get("stream") is True:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}  # response.completed carries usage
    return out


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is(v: Any, kind: Any) -> bool:
    # bool is an int in Python, but `true` is not a temperature in JSON
    return isinstance(v, bool) if kind is bool else isinstance(v, kind) and not isinstance(v, bool)


def _instructions(text: Any) -> list[dict[str, Any]]:
    if text is None or text == "":
        return []
    require(isinstance(text, str), "'instructions' must be a string", "instructions")
    return [{"role": "system", "content": text}]


def _input(items: Any) -> list[dict[str, Any]]:
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    require(isinstance(items, list) and bool(items),
            "'input' is required: a string or a non-empty list of items", "input")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        param = f"input[{i}]"
        require(isinstance(item, dict), "each input item must be an object", param)
        _item(item, param, out)
    return out


def _item(item: dict[str, Any], param: str, out: list[dict[str, Any]]) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        out.extend(_message(item, param))
    elif kind == "function_call":
        _function_call(item, param, out)
    elif kind == "function_call_output":
        out.extend(_function_output(item, param))
    elif kind == "reasoning":
        return  # earlier turns' reasoning: chat has no standard field for it (see README)
    elif kind == "item_reference":
        fail("'item_reference' points at a stored item; localgate keeps no responses "
             "(it is stateless): send the item itself", f"{param}.type")
    else:
        fail(f"input items of type '{kind}' cannot be translated to OpenAI chat "
             "(message, function_call, function_call_output and reasoning are)",
             f"{param}.type")


def _message(item: dict[str, Any], param: str) -> list[dict[str, Any]]:
    role = item.get("role")
    require(role in ("user", "assistant", "system", "developer"),
            "a message needs a 'role' of user, assistant, system or developer", f"{param}.role")
    content = item.get("content")
    if isinstance(content, str):
        return [{"role": "system" if role == "developer" else role, "content": content}]
    if not isinstance(content, list):
        fail("'content' must be a string or a list of parts", f"{param}.content")
    parts = [_part(p, f"{param}.content[{j}]") for j, p in enumerate(content)]
    if role == "assistant":
        return [{"role": "assistant", "content": "".join(p.get("text", "") for p in parts)}]
    if role in ("system", "developer"):  # chat's system content takes text only
        return [{"role": "system", "content": "\n".join(p.get("text", "") for p in parts)}]
    return [{"role": "user", "content": parts}]


def _part(part: Any, param: str) -> dict[str, Any]:
    require(isinstance(part, dict), "each content part must be an object", param)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        require(isinstance(part.get("text"), str), "a text part needs 'text'", f"{param}.text")
        return {"type": "text", "text": part["text"]}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal", ""))}
    if kind == "input_image":
        url = part.get("image_url")
        require(isinstance(url, str) and bool(url), "an input_image needs 'image_url' (file ids "
                "are not kept here: send the image as a URL or data URL)", f"{param}.image_url")
        image: dict[str, Any] = {"url": url}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        data = part.get("file_data") or part.get("file_url")
        require(isinstance(data, str) and bool(data), "an input_file needs 'file_data' or "
                "'file_url' (file ids are not kept here)", f"{param}.file_data")
        name = part.get("filename") if isinstance(part.get("filename"), str) else "file"
        return {"type": "file", "file": {"filename": name, "file_data": data}}
    fail(f"content parts of type '{kind}' cannot be translated to OpenAI chat",
         f"{param}.type")


def _function_call(item: dict[str, Any], param: str, out: list[dict[str, Any]]) -> None:
    """Consecutive calls (and the assistant text just before them) form one assistant turn."""
    call_id, name = item.get("call_id"), item.get("name")
    require(isinstance(call_id, str) and bool(call_id), "a function_call needs 'call_id'",
            f"{param}.call_id")
    require(isinstance(name, str) and bool(name), "a function_call needs 'name'",
            f"{param}.name")
    args = item.get("arguments", "")
    require(isinstance(args, str), "function_call 'arguments' must be a JSON string",
            f"{param}.arguments")
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
    last = out[-1] if out else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
        if last.get("content") == "":
            last["content"] = None
    else:
        out.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _function_output(item: dict[str, Any], param: str) -> list[dict[str, Any]]:
    call_id = item.get("call_id")
    require(isinstance(call_id, str) and bool(call_id),
            "a function_call_output needs 'call_id'", f"{param}.call_id")
    output = item.get("output", "")
    if isinstance(output, str):
        return [{"role": "tool", "tool_call_id": call_id, "content": output}]
    require(isinstance(output, list), "'output' must be a string or a list of parts",
            f"{param}.output")
    parts = [_part(p, f"{param}.output[{j}]") for j, p in enumerate(output)]
    text = "\n".join(p["text"] for p in parts if p["type"] == "text")
    others = [p for p in parts if p["type"] != "text"]
    # chat's tool messages carry text only: images and files follow as a user message
    tail = [{"role": "user", "content": others}] if others else []
    return [{"role": "tool", "tool_call_id": call_id, "content": text}] + tail


def _tools(body: dict[str, Any], out: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools:
        require(isinstance(tools, list), "'tools' must be a list", "tools")
        out["tools"] = [_tool(t, f"tools[{i}]") for i, t in enumerate(tools)]
    choice = body.get("tool_choice")
    if choice is None:
        return
    if isinstance(choice, str):
        require(choice in ("auto", "none", "required"),
                "'tool_choice' must be auto, none, required or a function", "tool_choice")
        out["tool_choice"] = choice
        return
    require(isinstance(choice, dict) and choice.get("type") == "function"
            and isinstance(choice.get("name"), str),
            "'tool_choice' must be auto, none, required or {\"type\": \"function\", "
            "\"name\": ...}; built-in tools are not available here", "tool_choice")
    out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}


def _tool(tool: Any, param: str) -> dict[str, Any]:
    require(isinstance(tool, dict), "each tool must be an object", param)
    kind = tool.get("type")
    require(kind == "function", f"'{kind}' is one of OpenAI's built-in tools; localgate "
            "translates this request to OpenAI chat, which takes only function tools",
            f"{param}.type")
    require(isinstance(tool.get("name"), str) and bool(tool["name"]),
            "a function tool needs a 'name'", f"{param}.name")
    fn: dict[str, Any] = {"name": tool["name"]}
    for key in ("description", "parameters", "strict"):
        if tool.get(key) is not None:
            fn[key] = tool[key]
    return {"type": "function", "function": fn}


def _reasoning_and_text(body: dict[str, Any], out: dict[str, Any]) -> None:
    reasoning = body.get("reasoning")
    if reasoning is not None:
        require(isinstance(reasoning, dict), "'reasoning' must be an object", "reasoning")
        if isinstance(reasoning.get("effort"), str):
            out["reasoning_effort"] = reasoning["effort"]
    text = body.get("text")
    if text is None:
        return
    require(isinstance(text, dict), "'text' must be an object", "text")
    if isinstance(text.get("verbosity"), str):
        out["verbosity"] = text["verbosity"]
    fmt = text.get("format")
    if fmt is None or (isinstance(fmt, dict) and fmt.get("type") == "text"):
        return
    require(isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object"),
            "text.format 'type' must be text, json_schema or json_object", "text.format.type")
    if fmt["type"] == "json_object":
        out["response_format"] = {"type": "json_object"}
        return
    require(isinstance(fmt.get("name"), str) and isinstance(fmt.get("schema"), dict),
            "a json_schema format needs 'name' and 'schema'", "text.format")
    schema = {k: fmt[k] for k in ("name", "schema", "description", "strict") if k in fmt}
    out["response_format"] = {"type": "json_schema", "json_schema": schema}
