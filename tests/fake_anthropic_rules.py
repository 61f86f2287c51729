"""What Anthropic's Messages API refuses, as the fake checks it: `problem(body)` returns the
first message the real API would send in its 400 `invalid_request_error`, or None.

The messages are the real API's own wording where it is public (issue reports quoting it);
only the rules matter to tests, which assert the 400 and the error type.
"""

from __future__ import annotations

from typing import Any

FIELDS = frozenset({"model", "messages", "max_tokens", "system", "metadata", "stop_sequences",
                    "stream", "temperature", "top_p", "top_k", "tools", "tool_choice",
                    "thinking", "service_tier", "container", "mcp_servers"})
USER_BLOCKS = frozenset({"text", "image", "document", "tool_result"})
ASSISTANT_BLOCKS = frozenset({"text", "tool_use", "thinking", "redacted_thinking"})
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
EMPTY = ("messages.{i}: all messages must have non-empty content except for the optional "
         "final assistant message")


def problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "There was an issue with the format of your request: body is not an object"
    checks = (_fields, _system, _messages, _roles, _tool_pairs, _prefill, _sampling,
              _thinking, _tools, _breakpoints)
    for check in checks:
        msg = check(body)
        if msg:
            return msg
    return None


def _fields(body: dict[str, Any]) -> str | None:
    for name in body:
        if name not in FIELDS:
            return f"{name}: Extra inputs are not permitted"
    for name in ("model", "messages", "max_tokens"):
        if name not in body:
            return f"{name}: Field required"
    mt = body["max_tokens"]
    if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
        return "max_tokens: Input should be greater than or equal to 1"
    meta = body.get("metadata")
    if meta is not None and (not isinstance(meta, dict) or set(meta) - {"user_id"}):
        return "metadata: only user_id is permitted"
    return None


def _text_problem(block: dict[str, Any], where: str) -> str | None:
    text = block.get("text")
    if not isinstance(text, str) or text == "":
        return f"{where}: text content blocks must be non-empty"
    if not text.strip():
        return f"{where}: text content blocks must contain non-whitespace text"
    return None


def _system(body: dict[str, Any]) -> str | None:
    system = body.get("system")
    if system is None or isinstance(system, str):
        return None
    if not isinstance(system, list):
        return "system: Input should be a valid list"
    for block in system:
        if not isinstance(block, dict) or block.get("type") != "text":
            return "system: only text blocks are allowed"
        msg = _text_problem(block, "system")
        if msg:
            return msg
    return None


def _messages(body: dict[str, Any]) -> str | None:
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return "messages: List should have at least 1 item after validation, not 0"
    last = len(messages) - 1
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        content = msg.get("content")
        if isinstance(content, str):
            if not content and not (i == last and msg["role"] == "assistant"):
                return EMPTY.format(i=i)
            continue
        if not isinstance(content, list):
            return f"messages.{i}.content: Input should be a valid list"
        if not content and not (i == last and msg["role"] == "assistant"):
            return EMPTY.format(i=i)
        for j, block in enumerate(content):
            err = _block_problem(block, msg["role"], f"messages.{i}.content.{j}")
            if err:
                return err
    return None


def _block_problem(block: Any, role: str, where: str) -> str | None:
    allowed = USER_BLOCKS if role == "user" else ASSISTANT_BLOCKS
    kind = block.get("type") if isinstance(block, dict) else None
    if kind not in allowed:
        return f"{where}.type: Input tag '{kind}' is not allowed in a {role} message"
    if kind == "text":
        return _text_problem(block, "messages")
    if kind == "image":
        src = block.get("source") or {}
        ok = (src.get("type") == "base64" and src.get("media_type") in IMAGE_TYPES
              and src.get("data")) or (src.get("type") == "url" and src.get("url"))
        return None if ok else f"{where}.source: invalid image source"
    if kind == "tool_use":
        if not isinstance(block.get("input"), dict):
            return f"{where}.tool_use.input: Input should be a valid dictionary"
        if not block.get("id") or not block.get("name"):
            return f"{where}.tool_use: id and name are required"
    if kind == "tool_result":
        inner = block.get("content")
        for part in inner if isinstance(inner, list) else []:
            if isinstance(part, dict) and part.get("type") == "text":
                err = _text_problem(part, "messages")
                if err:
                    return err
    if kind == "thinking" and not block.get("signature"):
        return f"{where}.thinking.signature: Field required"
    return None


def _roles(body: dict[str, Any]) -> str | None:
    messages = body["messages"]
    if messages[0]["role"] != "user":
        return 'messages: first message must use the "user" role'
    for prev, msg in zip(messages, messages[1:], strict=False):
        if prev["role"] == msg["role"]:
            return ('messages: roles must alternate between "user" and "assistant", but found '
                    f'multiple "{msg["role"]}" roles in a row')
    return None


def _blocks(msg: dict[str, Any]) -> list[dict[str, Any]]:
    content = msg["content"]
    return content if isinstance(content, list) else []


def _tool_pairs(body: dict[str, Any]) -> str | None:
    messages = body["messages"]
    for i, msg in enumerate(messages):
        if msg["role"] == "user":
            prev = messages[i - 1] if i else None
            calls = {b.get("id") for b in _blocks(prev) if b.get("type") == "tool_use"} \
                if prev else set()
            for j, b in enumerate(_blocks(msg)):
                if b.get("type") == "tool_result" and b.get("tool_use_id") not in calls:
                    return (f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                            f"`tool_result` blocks: {b.get('tool_use_id')}. Each `tool_result` "
                            "block must have a corresponding `tool_use` block in the previous "
                            "message.")
            continue
        ids = [b["id"] for b in _blocks(msg) if b.get("type") == "tool_use"]
        if not ids:
            continue
        after = _blocks(messages[i + 1]) if i + 1 < len(messages) else []
        answered = {b.get("tool_use_id") for b in after if b.get("type") == "tool_result"}
        missing = [x for x in ids if x not in answered]
        if missing:
            return (f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(missing)}. Each `tool_use` block must have "
                    "a corresponding `tool_result` block in the next message.")
        if any(b.get("type") != "tool_result" for b in after[:len(ids)]):
            return (f"messages.{i + 1}: Did not find {len(ids)} `tool_result` block(s) at the "
                    "beginning of this message. Messages following `tool_use` blocks must "
                    "begin with a matching number of `tool_result` blocks.")
    return None


def _prefill(body: dict[str, Any]) -> str | None:
    last = body["messages"][-1]
    if last["role"] != "assistant":
        return None
    content = last["content"]
    text = content if isinstance(content, str) else (
        content[-1].get("text", "") if content and content[-1].get("type") == "text" else "")
    if text and text != text.rstrip():
        return "messages: final assistant content cannot end with trailing whitespace"
    return None


def _sampling(body: dict[str, Any]) -> str | None:
    if body.get("temperature") is not None and body.get("top_p") is not None:
        return ("`temperature` and `top_p` cannot both be specified for this model. "
                "Please use only one.")
    t = body.get("temperature")
    if t is not None and not 0 <= t <= 1:
        return "temperature: Input should be less than or equal to 1"
    stops = body.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list)
                              or any(not isinstance(s, str) or not s.strip() for s in stops)):
        return "stop_sequences: each stop sequence must contain non-whitespace"
    return None


def _thinking(body: dict[str, Any]) -> str | None:
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget < 1024:
        return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    if body["max_tokens"] <= budget:
        return "`max_tokens` must be greater than `thinking.budget_tokens`."
    if body.get("temperature") not in (None, 1, 1.0):
        return ("`temperature` may only be set to 1 when thinking is enabled. Please consult "
                "our documentation at https://docs.claude.com/en/docs/build-with-claude/"
                "extended-thinking#feature-compatibility")
    if body.get("top_k") is not None:
        return "`top_k` must be unset when thinking is enabled."
    if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
        return "Thinking may not be enabled when tool_choice forces tool use."
    for i in range(len(body["messages"]) - 1, -1, -1):
        msg = body["messages"][i]
        if msg["role"] == "assistant":
            blocks = _blocks(msg)
            if any(b.get("type") == "tool_use" for b in blocks) and \
                    blocks[0].get("type") not in ("thinking", "redacted_thinking"):
                return (f"messages.{i}.content.0.type: Expected `thinking` or "
                        "`redacted_thinking`, but found `tool_use`. When `thinking` is enabled, "
                        "a final `assistant` message must start with a thinking block.")
            break
    return None


def _tools(body: dict[str, Any]) -> str | None:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if choice is not None and not tools:
        return "tool_choice: may only be specified while providing tools"
    for i, tool in enumerate(tools or []):
        tool = tool if isinstance(tool, dict) else {}
        schema = tool.get("input_schema")
        if not isinstance(tool.get("name"), str) or not isinstance(schema, dict) \
                or schema.get("type") != "object":
            return f"tools.{i}.custom.input_schema: an object schema is required"
    if choice is not None and choice.get("type") not in ("auto", "any", "tool", "none"):
        return "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"
    return None


def _breakpoints(body: dict[str, Any]) -> str | None:
    blocks = list(body.get("tools") or [])
    if isinstance(body.get("system"), list):
        blocks += body["system"]
    for msg in body["messages"]:
        blocks += _blocks(msg)
    n = sum(1 for b in blocks if isinstance(b, dict) and "cache_control" in b)
    if n > 4:
        return f"A maximum of 4 blocks with cache_control may be provided. Found {n}."
    return None
