"""Thinking parameters and the hosted gateway's cache breakpoints on Anthropic calls."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import example, given, settings, strategies as st

from tests.providers.anthropic_helpers import TARGET, anthropic_body

EPH = {"type": "ephemeral"}
SIG = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"


def body(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "anthropic/claude-sonnet-4.6", "messages": list(messages), **extra}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def asst(content: Any, **extra: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content, **extra}


def tool_turn(details: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    msg = asst(None, tool_calls=[{"id": "toolu_1", "type": "function",
                                  "function": {"name": "f", "arguments": "{}"}}])
    if details is not None:
        msg["reasoning_details"] = details
    return [user("go"), msg, {"role": "tool", "tool_call_id": "toolu_1", "content": "done"}]


def marked(sent: dict[str, Any]) -> list[str]:
    """Where cache_control sits: 'system', 'tools.N' or 'messages.I.content.J'."""
    where = [f"system.{j}" for j, b in enumerate(sent.get("system", [])) if "cache_control" in b]
    where += [f"tools.{j}" for j, b in enumerate(sent.get("tools", [])) if "cache_control" in b]
    for i, m in enumerate(sent["messages"]):
        where += [f"messages.{i}.content.{j}" for j, b in enumerate(m["content"])
                  if "cache_control" in b]
    return where


# -- thinking ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("extra", "budget"), [
    ({"reasoning": {"effort": "high"}}, 8000),
    ({"reasoning": {"effort": "low"}}, 2000),
    ({"reasoning": {"effort": "minimal"}}, 1024),          # 10% of 10000, raised to the minimum
    ({"reasoning": {"enabled": True}}, 5000),
    ({"reasoning": {"max_tokens": 3000}}, 3000),
    ({"reasoning_effort": "medium"}, 5000),
    ({"reasoning": {"effort": "xhigh"}}, 9500),
    ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, 2048),
])
def test_reasoning_becomes_a_thinking_budget(extra: dict[str, Any], budget: int) -> None:
    sent = anthropic_body(body(user("x"), max_tokens=10000, **extra))
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert sent["max_tokens"] == 10000


@pytest.mark.parametrize("extra", [
    {}, {"reasoning": {"effort": "none"}}, {"reasoning": {"enabled": False, "effort": "high"}},
    {"reasoning_effort": "none"}, {"reasoning": {"exclude": True}}, {"reasoning_effort": "max"},
])
def test_no_thinking(extra: dict[str, Any]) -> None:
    assert "thinking" not in anthropic_body(body(user("x"), **extra))


def test_thinking_drops_what_the_api_refuses_alongside() -> None:
    sent = anthropic_body(body(user("x"), reasoning_effort="high", temperature=0.3, top_k=5))
    assert "temperature" not in sent and "top_k" not in sent and "thinking" in sent
    sent = anthropic_body(body(user("x"), reasoning_effort="high", top_p=0.5))
    assert "top_p" not in sent
    assert anthropic_body(body(user("x"), reasoning_effort="high", top_p=0.97))["top_p"] == 0.97


def test_max_tokens_rises_above_a_larger_budget() -> None:
    sent = anthropic_body(body(user("x"), max_tokens=500, reasoning={"max_tokens": 4000}))
    assert sent["thinking"]["budget_tokens"] == 4000 and sent["max_tokens"] == 4500
    sent = anthropic_body(body(user("x"), max_tokens=800, reasoning_effort="low"))
    assert sent["thinking"]["budget_tokens"] == 1024 and sent["max_tokens"] == 1824


def test_budget_is_capped_by_the_models_maximum_output() -> None:
    t = dataclasses.replace(TARGET, max_output=8000)
    sent = anthropic_body(body(user("x"), max_tokens=6000, reasoning={"max_tokens": 7000}), t)
    assert sent["max_tokens"] == 8000 and sent["thinking"]["budget_tokens"] == 7000
    sent = anthropic_body(body(user("x"), max_tokens=6000, reasoning={"max_tokens": 9000}), t)
    assert sent["max_tokens"] == 8000 and sent["thinking"]["budget_tokens"] == 7999
    tiny = dataclasses.replace(TARGET, max_output=1000)
    assert "thinking" not in anthropic_body(body(user("x"), reasoning_effort="high"), tiny)


def test_forced_tool_use_wins_over_thinking() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    sent = anthropic_body(body(user("x"), tools=tools, tool_choice="required",
                               reasoning_effort="high"))
    assert "thinking" not in sent and sent["tool_choice"] == {"type": "any"}
    sent = anthropic_body(body(user("x"), tools=tools, tool_choice="auto",
                               reasoning_effort="high"))
    assert "thinking" in sent


def test_open_tool_turn_without_its_thinking_block_turns_thinking_off() -> None:
    assert "thinking" not in anthropic_body(body(*tool_turn(), reasoning_effort="high"))


def test_echoed_reasoning_details_become_thinking_blocks_again() -> None:
    """What the adapter streamed as reasoning_details (deltas a client appended one by one,
    the signature last) comes back as the signed thinking block the API requires."""
    details = [
        {"type": "reasoning.text", "text": "Let me ", "format": "anthropic-claude-v1",
         "index": 0},
        {"type": "reasoning.text", "text": "think.", "format": "anthropic-claude-v1",
         "index": 0},
        {"type": "reasoning.text", "text": "", "signature": SIG,
         "format": "anthropic-claude-v1", "index": 0},
        {"type": "reasoning.encrypted", "data": "EmwKAhgB", "format": "anthropic-claude-v1",
         "index": 1},
        {"type": "reasoning.text", "text": "other vendor", "signature": "x",
         "format": "google-gemini-v1", "index": 2},
        {"type": "reasoning.text", "text": "unsigned", "format": "anthropic-claude-v1",
         "index": 3},
    ]
    sent = anthropic_body(body(*tool_turn(details), reasoning_effort="high"))
    assert sent["messages"][1]["content"][:2] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": SIG},
        {"type": "redacted_thinking", "data": "EmwKAhgB"}]
    assert sent["messages"][1]["content"][2]["type"] == "tool_use"
    assert "thinking" in sent


# -- cache breakpoints ------------------------------------------------------------------------

def test_breakpoints_on_system_last_user_and_the_user_before_the_last_assistant() -> None:
    sent = anthropic_body(body({"role": "system", "content": "sys"}, user("one"), asst("a1"),
                               user("two"), asst("a2"), user([
                                   {"type": "text", "text": "three"},
                                   {"type": "text", "text": "more"}])))
    assert marked(sent) == ["system.0", "messages.2.content.0", "messages.4.content.1"]
    assert sent["system"][0]["cache_control"] == EPH


def test_a_tool_result_turn_is_the_last_user_turn() -> None:
    sent = anthropic_body(body(*tool_turn()))
    assert marked(sent) == ["messages.0.content.0", "messages.2.content.0"]
    assert sent["messages"][2]["content"][0]["type"] == "tool_result"


def test_first_turn_gets_one_breakpoint_and_a_prefill_is_not_marked() -> None:
    assert marked(anthropic_body(body(user("only")))) == ["messages.0.content.0"]
    sent = anthropic_body(body(user("q"), asst("The answer is")))
    assert marked(sent) == ["messages.0.content.0"]


@pytest.mark.parametrize("messages", [
    [{"role": "system", "content": [{"type": "text", "text": "sys",
                                     "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},
     user("one"), asst("a"), user("two")],
    [{"role": "system", "content": "sys"},
     {"role": "user", "content": "one", "cache_control": {"type": "ephemeral"}},
     asst("a"), user("two")],
])
def test_the_clients_own_breakpoints_are_kept_and_none_added(
        messages: list[dict[str, Any]]) -> None:
    sent = anthropic_body(body(*messages))
    assert len(marked(sent)) == 1


def test_a_breakpoint_on_a_tool_definition_counts_as_the_clients() -> None:
    tools = [{"type": "function", "cache_control": {"type": "ephemeral"},
              "function": {"name": "f"}}]
    sent = anthropic_body(body(user("x"), tools=tools))
    assert marked(sent) == ["tools.0"]


# -- junk -------------------------------------------------------------------------------------

LEAF = st.none() | st.booleans() | st.integers() | st.text(max_size=4) | st.sampled_from(
    ["text", "image_url", "file", "function", "reasoning.text", "reasoning.encrypted",
     "anthropic-claude-v1", "data:image/png;base64,AA", "{}", "call.1"])
JSON = st.recursive(LEAF, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["type", "text", "content", "image_url", "url", "file", "file_data", "id",
                     "function", "name", "arguments", "signature", "index", "format", "data",
                     "cache_control", "parameters"]), inner, max_size=4), max_leaves=15)
MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(
    ["system", "developer", "user", "assistant", "tool", "function"])}, optional={
    "content": JSON, "tool_calls": JSON, "tool_call_id": JSON, "reasoning_details": JSON,
    "cache_control": JSON}) | JSON


@settings(max_examples=200, deadline=None)
@example([{"role": "user", "content": "x"}, {"role": "assistant", "content": "y",
                                             "reasoning_details": [{"type": ["list"]}]}], {})
@given(st.lists(MESSAGE, max_size=6), st.dictionaries(st.sampled_from(
    ["tools", "tool_choice", "parallel_tool_calls", "max_tokens", "temperature", "top_p",
     "stop", "reasoning", "reasoning_effort", "thinking", "user"]), JSON, max_size=5))
def test_junk_bodies_never_raise_and_keep_the_apis_rules(messages: list[Any],
                                                         extra: dict[str, Any]) -> None:
    sent = anthropic_body(body(*messages, **extra))
    turns = sent["messages"]
    assert all(turn["content"] for turn in turns)
    assert all(a["role"] != b["role"] for a, b in zip(turns, turns[1:], strict=False))
    assert not turns or turns[0]["role"] == "user"
    assert sent["max_tokens"] > sent.get("thinking", {}).get("budget_tokens", 0)
