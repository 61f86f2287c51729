"""Tool-call repair and tool-call id rewriting for chat-completions message lists.

Implements the hosted gateway's algorithm (reference/hosted-gateway.md section 4, SPEC.md
section 5). Pure functions: no I/O, never mutate their input, import nothing of localgate.
"""

from __future__ import annotations

import hashlib

PLACEHOLDER = "Tool execution was interrupted before completion."


def _is_tool(msg) -> bool:
    return isinstance(msg, dict) and msg.get("role") == "tool"


def _call_id(call):
    """The id of a tool_calls entry, or None when it has no usable (string) id."""
    if isinstance(call, dict):
        cid = call.get("id")
        if isinstance(cid, str):
            return cid
    return None


def _result_id(msg):
    """The tool_call_id of a tool message, or None when it is missing or not a string."""
    tid = msg.get("tool_call_id")
    return tid if isinstance(tid, str) else None


def _needs_repair_scan(messages: list) -> bool:
    """Cheap pre-scan: repair can only matter if some message is a tool result or has tool_calls."""
    for msg in messages:
        if isinstance(msg, dict) and (msg.get("role") == "tool" or "tool_calls" in msg):
            return True
    return False


def repair_tool_calls(messages: list) -> tuple[list, int]:
    """Return (repaired_messages, repairs).

    Groups the messages per assistant turn (group 0 holds everything before the first
    assistant message; each assistant message owns the following non-assistant messages).
    Per group: keep the first tool call per id; insert a placeholder tool result, right after
    the assistant message and in tool-call order, for every call without a result; drop tool
    results whose id has no call in that turn and later duplicate results. Non-tool messages
    and junk (non-dicts, malformed tool_calls) stay in place.

    repairs counts dropped duplicate calls + inserted placeholders + dropped tool results.
    The input is never mutated; when nothing needs repair the same list object is returned.
    """
    if not isinstance(messages, list) or not _needs_repair_scan(messages):
        return messages, 0

    # 1. Group: [assistant or None, [other messages...]]
    groups: list[tuple[object, list]] = [(None, [])]
    for msg in messages:
        if isinstance(msg, dict) and msg.get("role") == "assistant":
            groups.append((msg, []))
        else:
            groups[-1][1].append(msg)

    out: list = []
    repairs = 0
    for assistant, others in groups:
        expected: list[str] = []  # deduplicated call ids, in tool-call order
        if assistant is not None:
            calls = assistant.get("tool_calls")
            if isinstance(calls, list):
                # 2. Deduplicate tool calls by id; first wins. Id-less entries are kept as-is.
                seen: set[str] = set()
                kept: list = []
                for call in calls:
                    cid = _call_id(call)
                    if cid is not None:
                        if cid in seen:
                            continue
                        seen.add(cid)
                        expected.append(cid)
                    kept.append(call)
                dropped = len(calls) - len(kept)
                if dropped:
                    repairs += dropped
                    assistant = {**assistant, "tool_calls": kept}
            out.append(assistant)

        # 3. Placeholders for calls with no result anywhere in the group, ahead of everything.
        present = set()
        for msg in others:
            if _is_tool(msg):
                tid = _result_id(msg)
                if tid is not None:
                    present.add(tid)
        pending = set(expected)
        for cid in expected:
            if cid not in present:
                out.append({"role": "tool", "tool_call_id": cid, "content": PLACEHOLDER})
                repairs += 1
                pending.discard(cid)

        # 4. Keep the first result per expected id; drop orphans and later duplicates.
        for msg in others:
            if _is_tool(msg):
                tid = _result_id(msg)
                if tid is not None and tid in pending:
                    pending.discard(tid)
                    out.append(msg)
                else:
                    repairs += 1
                continue
            out.append(msg)

    if repairs == 0:
        return messages, 0
    return out, repairs


def _sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def rewrite_tool_call_ids(messages: list, style: str) -> tuple[list, int]:
    """Return (messages, ids_rewritten) with tool-call ids made acceptable to a provider.

    style "anthropic": ids containing "." become their SHA-256 hex digest (64 chars).
    style "mistral": ids whose length is not 9 become the first 9 hex chars of their SHA-256.
    Any other style: unchanged. The same mapping is applied to assistant tool_calls[].id and
    tool messages' tool_call_id, so pairs stay matched; the count is per rewritten field.
    The input is never mutated; when nothing changes the same list object is returned.
    """
    if style == "anthropic":
        def needs(i: str) -> bool:
            return "." in i

        def new_id(i: str) -> str:
            return _sha256_hex(i)
    elif style == "mistral":
        def needs(i: str) -> bool:
            return len(i) != 9

        def new_id(i: str) -> str:
            return _sha256_hex(i)[:9]
    else:
        return messages, 0
    if not isinstance(messages, list):
        return messages, 0

    out: list | None = None
    count = 0
    for idx, msg in enumerate(messages):
        if not isinstance(msg, dict):
            continue
        replacement = None
        role = msg.get("role")
        if role == "assistant":
            calls = msg.get("tool_calls")
            if isinstance(calls, list):
                new_calls = None
                for j, call in enumerate(calls):
                    cid = _call_id(call)
                    if cid is not None and needs(cid):
                        if new_calls is None:
                            new_calls = list(calls)
                        new_calls[j] = {**call, "id": new_id(cid)}
                        count += 1
                if new_calls is not None:
                    replacement = {**msg, "tool_calls": new_calls}
        elif role == "tool":
            tid = _result_id(msg)
            if tid is not None and needs(tid):
                replacement = {**msg, "tool_call_id": new_id(tid)}
                count += 1
        if replacement is not None:
            if out is None:
                out = list(messages)
            out[idx] = replacement

    if out is None:
        return messages, 0
    return out, count
