"""The OpenAI chat body as an Anthropic Messages body: the request half of the Anthropic adapter.

Owns the message mapping (system, parts, tool calls and results, turn merging), tools and
tool_choice, sampling and thinking parameters; the cache breakpoints are anthropic_cache's.
Pure: imports only the stdlib, localgate.jsonfast and localgate.repair; never the server, the
gateway or aiohttp.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from localgate import jsonfast, repair
from localgate.providers.anthropic_cache import add_breakpoints, client_cached
from localgate.providers.base import Target

Block = dict[str, Any]
Turn = dict[str, Any]

DEFAULT_MAX_TOKENS = 4096   # neither the request nor the catalog says: a common output size
MIN_BUDGET = 1024           # the API refuses a smaller thinking budget
MAX_BUDGET = 128_000        # OpenRouter's cap for effort-derived budgets
# OpenRouter's effort -> share of max_tokens given to thinking
EFFORT = {"xhigh": 0.95, "high": 0.8, "medium": 0.5, "low": 0.2, "minimal": 0.1}
# Anthropic wants the first turn to be the user's; a history that opens with the assistant
# (a client trimming old turns) gets this stand-in rather than a 400.
OPENING = "(conversation continues)"
REASONING_FORMAT = "anthropic-claude-v1"
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def messages_body(body: Mapping[str, Any], t: Target, *, stream: bool) -> dict[str, Any]:
    """The Messages API body for an OpenAI chat body (already repaired): only the fields the
    API knows; OpenAI-only fields are dropped."""
    raw = body.get("messages")
    messages, _ = repair.rewrite_tool_call_ids(raw if isinstance(raw, list) else [], "anthropic")
    system, turns = _turns(messages)
    requested = _positive_int(body.get("max_completion_tokens")) \
        or _positive_int(body.get("max_tokens"))
    out: dict[str, Any] = {"model": t.model,
                           "max_tokens": requested or t.max_output or DEFAULT_MAX_TOKENS,
                           "messages": turns}
    if system:
        out["system"] = system
    tools = _tools(body.get("tools"))
    if tools:
        out["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
    _sampling(body, out)
    _thinking(body, out, t)
    user = body.get("user")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}
    if stream:
        out["stream"] = True
    if not client_cached(out):
        add_breakpoints(out)
    return out


# -- messages ---------------------------------------------------------------------------------

def _turns(messages: list[Any]) -> tuple[list[Block], list[Turn]]:
    """(system blocks, alternating turns): system/developer messages hoisted, empty messages
    dropped, consecutive same-role turns merged, tool results first in their user turn."""
    system: list[Block] = []
    turns: list[Turn] = []
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        role = msg.get("role")
        if role in ("system", "developer"):
            system += _marked(_parts(msg.get("content"), images=False), msg)
            continue
        blocks = _marked(_message_blocks(msg), msg)
        if not blocks:
            continue  # the API refuses empty content
        turn_role = "assistant" if role == "assistant" else "user"
        if turns and turns[-1]["role"] == turn_role:
            turns[-1]["content"] += blocks
        else:
            turns.append({"role": turn_role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":  # results must open the turn that follows a tool_use
            turn["content"].sort(key=lambda b: b.get("type") != "tool_result")
    if turns and turns[0]["role"] == "assistant":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": OPENING}]})
    _trim_prefill(turns)
    return system, turns


def _message_blocks(msg: dict[str, Any]) -> list[Block]:
    role = msg.get("role")
    if role == "user":
        return _parts(msg.get("content"))
    if role == "assistant":
        return _reasoning_blocks(msg.get("reasoning_details")) \
            + _parts(msg.get("content"), images=False) + _tool_uses(msg.get("tool_calls"))
    if role == "tool":
        tid = msg.get("tool_call_id")
        if not isinstance(tid, str):
            return []
        result: Block = {"type": "tool_result", "tool_use_id": tid}
        content = _parts(msg.get("content"))
        if content:  # a result with no content is allowed; an empty text block is not
            result["content"] = content
        return [result]
    return []  # legacy "function" messages and junk


def _marked(blocks: list[Block], msg: dict[str, Any]) -> list[Block]:
    """A cache_control the client put on the message itself goes onto its last block."""
    mark = msg.get("cache_control")
    if isinstance(mark, dict) and blocks and "cache_control" not in blocks[-1]:
        blocks[-1] = {**blocks[-1], "cache_control": mark}
    return blocks


def _parts(content: Any, *, images: bool = True) -> list[Block]:
    """Text (non-blank), image and PDF parts as blocks; the client's cache_control kept."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content.strip() else []
    if not isinstance(content, list):
        return []
    out: list[Block] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        block = _part(part, images)
        if block is None:
            continue
        if isinstance(part.get("cache_control"), dict):
            block["cache_control"] = part["cache_control"]
        out.append(block)
    return out


def _part(part: dict[str, Any], images: bool) -> Block | None:
    kind = part.get("type")
    if kind in ("text", "refusal"):
        text = part.get(kind)
        return {"type": "text", "text": text} if isinstance(text, str) and text.strip() else None
    if not images:
        return None
    if kind == "image_url":
        ref = part.get("image_url")
        url = ref.get("url") if isinstance(ref, dict) else ref
        return _image(url) if isinstance(url, str) else None
    if kind == "file":
        ref = part.get("file")
        data = ref.get("file_data") if isinstance(ref, dict) else None
        media, b64 = _data_url(data) if isinstance(data, str) else (None, None)
        if media == "application/pdf" and b64:
            return {"type": "document",
                    "source": {"type": "base64", "media_type": media, "data": b64}}
    return None  # audio, file ids and unknown parts have no Messages equivalent


def _image(url: str) -> Block | None:
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    media, b64 = _data_url(url)
    if media in _IMAGE_TYPES and b64:
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": b64}}
    return None


def _data_url(url: str) -> tuple[str | None, str | None]:
    """(media type, base64 payload) of a `data:<type>;base64,<payload>` URL."""
    head, sep, payload = url.partition(",")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        return None, None
    return head[5:-7].split(";")[0].lower(), payload


def _tool_uses(calls: Any) -> list[Block]:
    out: list[Block] = []
    for call in calls if isinstance(calls, list) else []:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(call.get("id"), str):
            continue
        name = fn.get("name")
        out.append({"type": "tool_use", "id": call["id"],
                    "name": name if isinstance(name, str) and name else "unknown_tool",
                    "input": _arguments(fn.get("arguments"))})
    return out


def _arguments(raw: Any) -> dict[str, Any]:
    """OpenAI's arguments string as the object `input` must be. Empty -> {}; JSON that is not
    an object is wrapped as {"value": ...}; text that is not JSON at all is kept, so the model
    still sees what it wrote, as {"_raw_arguments": text}."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        value = jsonfast.loads(raw.encode())
    except ValueError:
        return {"_raw_arguments": raw}
    return value if isinstance(value, dict) else {"value": value}


def _reasoning_blocks(details: Any) -> list[Block]:
    """reasoning_details this adapter returned earlier, echoed back by the client, as thinking
    blocks again (the API verifies their signatures; other providers' formats are dropped).
    Stream deltas a client appended one by one are joined again by their `index`."""
    merged: dict[Any, dict[str, Any]] = {}
    for i, d in enumerate(details if isinstance(details, list) else []):
        if not isinstance(d, dict) or d.get("format", REASONING_FORMAT) != REASONING_FORMAT \
                or d.get("type") not in ("reasoning.text", "reasoning.encrypted"):
            continue
        index = d.get("index")
        slot = merged.setdefault((d.get("type"), index if isinstance(index, int) else f"#{i}"),
                                 {"type": d.get("type")})
        for field in ("text", "data"):
            if isinstance(d.get(field), str):
                slot[field] = slot.get(field, "") + d[field]
        if isinstance(d.get("signature"), str) and d["signature"]:
            slot["signature"] = d["signature"]
    out: list[Block] = []
    for d in merged.values():
        if d["type"] == "reasoning.text" and d.get("signature"):
            out.append({"type": "thinking", "thinking": d.get("text", ""),
                        "signature": d["signature"]})
        elif d["type"] == "reasoning.encrypted" and d.get("data"):
            out.append({"type": "redacted_thinking", "data": d["data"]})
    return out


def _trim_prefill(turns: list[Turn]) -> None:
    """A final assistant turn (a prefill) may not end with whitespace."""
    if not turns or turns[-1]["role"] != "assistant":
        return
    blocks = turns[-1]["content"]
    if blocks[-1].get("type") == "text":
        text = blocks[-1]["text"].rstrip()
        if text:
            blocks[-1] = {**blocks[-1], "text": text}
        else:
            blocks.pop()
    if not blocks:
        turns.pop()


# -- tools, sampling, thinking ----------------------------------------------------------------

def _tools(tools: Any) -> list[Block]:
    out: list[Block] = []
    for tool in tools if isinstance(tools, list) else []:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or tool.get("type", "function") != "function" \
                or not isinstance(fn.get("name"), str):
            continue  # OpenAI's built-in tool types have no Messages equivalent
        params = fn.get("parameters")
        schema = {"type": "object", **params} if isinstance(params, dict) else {
            "type": "object", "properties": {}}
        block: Block = {"name": fn["name"], "input_schema": schema}
        if isinstance(fn.get("description"), str) and fn["description"]:
            block["description"] = fn["description"]
        mark = tool.get("cache_control") or fn.get("cache_control")
        if isinstance(mark, dict):
            block["cache_control"] = mark
        out.append(block)
    return out


def _tool_choice(choice: Any, parallel: Any) -> Block | None:
    out: Block | None
    if choice == "none":
        return {"type": "none"}  # disable_parallel_tool_use is not allowed with none
    if choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict) \
            and isinstance(choice["function"].get("name"), str):
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:  # "auto", absent or unknown
        out = {"type": "auto"} if parallel is False else None
    if out is not None and parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


def _sampling(body: Mapping[str, Any], out: dict[str, Any]) -> None:
    temperature = _number(body.get("temperature"))
    if temperature is not None:
        out["temperature"] = min(max(temperature, 0.0), 1.0)  # OpenAI allows up to 2
    top_p = _number(body.get("top_p"))
    if top_p is not None and temperature is None:  # current models refuse both together
        out["top_p"] = top_p
    top_k = _positive_int(body.get("top_k"))
    if top_k:
        out["top_k"] = top_k
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    stops = [s for s in stops if isinstance(s, str) and s.strip()]
    if stops:
        out["stop_sequences"] = stops


def _thinking(body: Mapping[str, Any], out: dict[str, Any], t: Target) -> None:
    """`reasoning` / `reasoning_effort` (or a native `thinking`) as a thinking budget, with
    what the API demands alongside: max_tokens above the budget, no temperature or top_k,
    top_p >= 0.95. Left off where the API would refuse it: forced tool use, and an open tool
    turn whose assistant message did not keep its thinking block."""
    budget = _budget(body, out["max_tokens"])
    if budget is None or out.get("tool_choice", {}).get("type") in ("any", "tool") \
            or _open_tool_turn_without_thinking(out["messages"]):
        return
    budget = max(budget, MIN_BUDGET)
    if budget >= out["max_tokens"]:
        out["max_tokens"] += budget  # the client's allowance stays for the answer itself
    cap = t.max_output
    if cap and out["max_tokens"] > cap:
        out["max_tokens"] = cap
        budget = min(budget, cap - 1)
    if budget < MIN_BUDGET:
        return
    out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    out.pop("temperature", None)
    out.pop("top_k", None)
    if out.get("top_p", 1.0) < 0.95:
        out.pop("top_p")


def _budget(body: Mapping[str, Any], max_tokens: int) -> int | None:
    native = body.get("thinking")
    if isinstance(native, dict) and native.get("type") == "enabled":
        return _positive_int(native.get("budget_tokens")) or MIN_BUDGET
    effort: Any = None
    r = body.get("reasoning")
    if isinstance(r, dict):
        if r.get("enabled") is False:
            return None
        explicit = _positive_int(r.get("max_tokens"))
        if explicit:
            return explicit
        effort = r.get("effort") or ("medium" if r.get("enabled") is True else None)
    if effort is None:
        effort = body.get("reasoning_effort")
    ratio = EFFORT.get(effort) if isinstance(effort, str) else None
    return None if ratio is None else min(int(max_tokens * ratio), MAX_BUDGET)


def _open_tool_turn_without_thinking(turns: list[Turn]) -> bool:
    for turn in reversed(turns):
        if turn["role"] == "assistant":
            blocks = turn["content"]
            return any(b.get("type") == "tool_use" for b in blocks) and \
                blocks[0].get("type") not in ("thinking", "redacted_thinking")
    return False


def _positive_int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


def _number(v: Any) -> float | None:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    return float(v) if ok else None
