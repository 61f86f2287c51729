"""The request half of the Anthropic adapter: an OpenAI chat body in, the Messages call out."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest

from localgate.providers import ADAPTERS, AnthropicAdapter, adapter_for
from localgate.providers.anthropic_request import DEFAULT_MAX_TOKENS, OPENING
from tests.providers.anthropic_helpers import ADAPTER, KEY, TARGET, anthropic_body

EPH = {"type": "ephemeral"}
FIELDS = {"model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
          "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking"}
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                                         "parameters": {"type": "object", "properties": {
                                             "city": {"type": "string"}}}, "strict": True}}


def body(*messages: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "anthropic/claude-sonnet-4.6", "messages": list(messages), **extra}


def plain(b: dict[str, Any]) -> dict[str, Any]:
    """The body without the cache breakpoints the adapter adds (tested on their own)."""
    def strip(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k != "cache_control"}
        return [strip(v) for v in x] if isinstance(x, list) else x
    return strip(b)  # type: ignore[no-any-return]


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def call(cid: str, name: str = "get_weather", args: str = '{"city":"Paris"}') -> dict[str, Any]:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}


# -- the call ---------------------------------------------------------------------------------

def test_the_registry_finds_the_adapter_by_the_configs_api_value() -> None:
    assert isinstance(adapter_for("anthropic"), AnthropicAdapter)
    assert adapter_for("anthropic") is ADAPTERS["anthropic"]
    with pytest.raises(KeyError):
        adapter_for("grpc")


def test_url_headers_and_native_model() -> None:
    t = dataclasses.replace(TARGET, base_url="https://api.anthropic.test/")
    c = ADAPTER.chat_call(body(user("hi")), t, stream=True,
                          client_headers={"Authorization": "Bearer local-key",
                                          "Anthropic-Beta": "fine-grained-tool-streaming"})
    assert (c.method, c.url) == ("POST", "https://api.anthropic.test/v1/messages")
    assert c.headers == {"x-api-key": KEY, "anthropic-version": "2023-06-01",
                         "content-type": "application/json", "accept": "text/event-stream",
                         "anthropic-beta": "fine-grained-tool-streaming"}
    sent = anthropic_body(body(user("hi")), stream=True)
    assert sent["model"] == "claude-sonnet-4-6" and sent["stream"] is True
    assert "stream" not in anthropic_body(body(user("hi")))


def test_no_key_no_key_header() -> None:
    c = ADAPTER.chat_call(body(user("hi")), dataclasses.replace(TARGET, api_key=None),
                          stream=False, client_headers={})
    assert "x-api-key" not in c.headers and c.headers["accept"] == "application/json"


def test_openai_only_fields_are_dropped() -> None:
    sent = anthropic_body(body(user("hi"), stream_options={"include_usage": True}, n=1, seed=7,
                               logprobs=True, response_format={"type": "json_object"},
                               frequency_penalty=0.5, presence_penalty=0.1, metadata={"a": "b"},
                               provider={"order": ["anthropic"]}, user="user-42",
                               service_tier="auto", store=True))
    assert set(sent) <= FIELDS
    assert sent["metadata"] == {"user_id": "user-42"}


# -- messages ---------------------------------------------------------------------------------

def test_system_and_developer_messages_become_system_blocks() -> None:
    sent = plain(anthropic_body(body(
        {"role": "system", "content": "You are terse."}, user("hi"),
        {"role": "developer", "content": [{"type": "text", "text": "Use French."},
                                          {"type": "text", "text": "  "}]},
        {"role": "system", "content": ""})))
    assert sent["system"] == [{"type": "text", "text": "You are terse."},
                              {"type": "text", "text": "Use French."}]
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def test_text_and_image_parts() -> None:
    sent = plain(anthropic_body(body(user([
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg",
                                            "detail": "high"}},
        {"type": "image_url", "image_url": "data:image/jpeg;base64,/9j/4AAQ"},
        {"type": "image_url", "image_url": {"url": "data:image/svg+xml;base64,PHN2Zz4="}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x",
                                  "filename": "a.pdf"}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        {"type": "text", "text": ""}]))))
    assert sent["messages"][0]["content"] == [
        {"type": "text", "text": "What is in these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg",
                                     "data": "/9j/4AAQ"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": "JVBERi0x"}}]


def test_assistant_tool_calls_become_tool_use_and_results_one_user_turn() -> None:
    sent = plain(anthropic_body(body(
        user("Weather in Paris and Rome?"),
        {"role": "assistant", "content": "Checking.",
         "tool_calls": [call("toolu_1"), call("toolu_2", args='{"city":"Rome"}')]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_2",
         "content": [{"type": "text", "text": "21C"}]},
        user("And tomorrow?"))))
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
             "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather",
             "input": {"city": "Rome"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1",
             "content": [{"type": "text", "text": "18C"}]},
            {"type": "tool_result", "tool_use_id": "toolu_2",
             "content": [{"type": "text", "text": "21C"}]},
            {"type": "text", "text": "And tomorrow?"}]}]


def test_tool_results_open_their_turn_even_after_user_text() -> None:
    """Repair leaves a result after a user message of the same turn where it was: the API
    wants results first, so they move ahead of the text."""
    sent = plain(anthropic_body(body(
        user("go"), {"role": "assistant", "content": None, "tool_calls": [call("toolu_1")]},
        user("(meanwhile)"), {"role": "tool", "tool_call_id": "toolu_1", "content": ""})))
    assert sent["messages"][2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1"},
        {"type": "text", "text": "(meanwhile)"}]}


@pytest.mark.parametrize(("arguments", "expected"), [
    ('{"city":"Paris"}', {"city": "Paris"}),
    ("", {}),
    ("   ", {}),
    ("[1, 2]", {"value": [1, 2]}),
    ('{"city": "Par', {"_raw_arguments": '{"city": "Par'}),
    ({"already": "object"}, {"already": "object"}),
])
def test_tool_call_arguments(arguments: Any, expected: dict[str, Any]) -> None:
    msg = {"role": "assistant", "content": "",
           "tool_calls": [{"id": "t1", "type": "function",
                           "function": {"name": "f", "arguments": arguments}}]}
    sent = anthropic_body(body(user("x"), msg, {"role": "tool", "tool_call_id": "t1",
                                                "content": "ok"}))
    assert sent["messages"][1]["content"] == [{"type": "tool_use", "id": "t1", "name": "f",
                                               "input": expected}]


def test_same_role_turns_merge_and_empty_messages_vanish() -> None:
    sent = plain(anthropic_body(body(
        user("one"), user(""), user([{"type": "text", "text": " "}]), user("two"),
        {"role": "assistant", "content": "a"}, {"role": "assistant", "content": None},
        {"role": "assistant", "content": [{"type": "text", "text": "b"}]},
        user("three"), {"role": "function", "name": "f", "content": "legacy"}, "junk")))
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "one"},
                                     {"type": "text", "text": "two"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "a"},
                                          {"type": "text", "text": "b"}]},
        {"role": "user", "content": [{"type": "text", "text": "three"}]}]


def test_a_history_opening_with_the_assistant_gets_a_user_turn_first() -> None:
    sent = plain(anthropic_body(body({"role": "system", "content": "s"},
                                     {"role": "assistant", "content": "Hi, I am here."},
                                     user("hello"))))
    assert sent["messages"][0] == {"role": "user",
                                   "content": [{"type": "text", "text": OPENING}]}
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]


def test_prefill_loses_trailing_whitespace() -> None:
    sent = anthropic_body(body(user("Say hi"), {"role": "assistant", "content": "Hi \n"}))
    assert sent["messages"][-1] == {"role": "assistant",
                                    "content": [{"type": "text", "text": "Hi"}]}


def test_tool_call_ids_with_dots_are_rewritten_in_pairs() -> None:
    dotted = "functions.read_file:0"
    sent = anthropic_body(body(user("x"), {"role": "assistant", "content": None,
                                           "tool_calls": [call(dotted), call("plain_id")]},
                               {"role": "tool", "tool_call_id": dotted, "content": "a"},
                               {"role": "tool", "tool_call_id": "plain_id", "content": "b"}))
    digest = hashlib.sha256(dotted.encode()).hexdigest()
    uses = [b["id"] for b in sent["messages"][1]["content"]]
    results = [b["tool_use_id"] for b in sent["messages"][2]["content"]]
    assert uses == results == [digest, "plain_id"]


# -- parameters -------------------------------------------------------------------------------

@pytest.mark.parametrize(("extra", "max_output", "expected"), [
    ({"max_tokens": 300}, 64000, 300),
    ({"max_completion_tokens": 500, "max_tokens": 300}, 64000, 500),
    ({}, 64000, 64000),
    ({}, None, DEFAULT_MAX_TOKENS),
    ({"max_tokens": 0}, None, DEFAULT_MAX_TOKENS),
])
def test_max_tokens(extra: dict[str, Any], max_output: int | None, expected: int) -> None:
    t = dataclasses.replace(TARGET, max_output=max_output)
    assert anthropic_body(body(user("x"), **extra), t)["max_tokens"] == expected


def test_stop_and_sampling() -> None:
    sent = anthropic_body(body(user("x"), stop="END", temperature=1.6, top_p=0.5, top_k=40))
    assert sent["stop_sequences"] == ["END"]
    assert sent["temperature"] == 1.0 and "top_p" not in sent and sent["top_k"] == 40
    sent = anthropic_body(body(user("x"), stop=["A", " ", "B"], top_p=0.9))
    assert sent["stop_sequences"] == ["A", "B"] and sent["top_p"] == 0.9
    assert "temperature" not in sent
    assert "stop_sequences" not in anthropic_body(body(user("x"), stop=None))
    sent = anthropic_body(body(user("x"), temperature=float("nan"), top_p=True))
    assert "temperature" not in sent and "top_p" not in sent


def test_tools_and_tool_choice() -> None:
    sent = anthropic_body(body(user("x"), tools=[
        TOOL, {"type": "function", "function": {"name": "now"}},
        {"type": "web_search_preview"}, "junk", {"type": "function", "function": {}}]))
    assert plain(sent)["tools"] == [
        {"name": "get_weather", "description": "Weather now", "input_schema": {
            "type": "object", "properties": {"city": {"type": "string"}}}},
        {"name": "now", "input_schema": {"type": "object", "properties": {}}}]
    assert "tool_choice" not in sent


@pytest.mark.parametrize(("choice", "parallel", "expected"), [
    ("auto", None, None),
    ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ("none", False, {"type": "none"}),
    ("required", None, {"type": "any"}),
    ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ({"type": "function", "function": {"name": "get_weather"}}, None,
     {"type": "tool", "name": "get_weather"}),
])
def test_tool_choice(choice: Any, parallel: Any, expected: Any) -> None:
    extra: dict[str, Any] = {"tools": [TOOL], "tool_choice": choice}
    if parallel is not None:
        extra["parallel_tool_calls"] = parallel
    assert anthropic_body(body(user("x"), **extra)).get("tool_choice") == expected


def test_tool_choice_without_tools_is_not_sent() -> None:
    assert "tool_choice" not in anthropic_body(body(user("x"), tool_choice="required"))
