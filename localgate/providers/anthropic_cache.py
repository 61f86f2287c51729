"""The hosted gateway's prompt-caching shaping for Anthropic (reference/hosted-gateway.md 2.3):
ephemeral cache_control breakpoints on a Messages body, unless the client placed its own.

Pure: works on the body anthropic_request built; imports nothing of localgate.
"""

from __future__ import annotations

from typing import Any

EPHEMERAL = {"type": "ephemeral"}


def client_cached(out: dict[str, Any]) -> bool:
    """True when the client put a cache_control anywhere (then none are added)."""
    blocks = list(out.get("system", [])) + list(out.get("tools", []))
    for turn in out["messages"]:
        for b in turn["content"]:
            blocks.append(b)
            if isinstance(b.get("content"), list):
                blocks += b["content"]
    return any("cache_control" in b for b in blocks)


def add_breakpoints(out: dict[str, Any]) -> None:
    """The hosted gateway's breakpoints: the system prompt, the last user turn, and the user
    turn before the last assistant turn (so the next request reads what this one wrote)."""
    if out.get("system"):
        out["system"][-1] = {**out["system"][-1], "cache_control": dict(EPHEMERAL)}
    turns = out["messages"]
    users = [i for i, turn in enumerate(turns) if turn["role"] == "user"]
    assistants = [i for i, turn in enumerate(turns) if turn["role"] == "assistant"]
    marks = set(users[-1:])
    if assistants:
        marks.update([i for i in users if i < assistants[-1]][-1:])
    for i in marks:
        blocks = turns[i]["content"]
        blocks[-1] = {**blocks[-1], "cache_control": dict(EPHEMERAL)}
