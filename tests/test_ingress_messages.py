"""The Anthropic Messages ingress codec, pure: requests to chat, chat results and streams back,
checked against the official `anthropic` SDK's own types and stream accumulator."""

from __future__ import annotations

import copy
import json
from typing import Any

import pydantic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.shared import ErrorResponse
from hypothesis import given, settings, strategies as st

from localgate.errors import InvalidRequest
from localgate.ingress import messages as m
from localgate.repair import repair_tool_calls
from tests.chatsse import RICH, RICH_MESSAGE, TEXT, call, chunk, events, feed_split, stream

EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)
BASE = {"model": "claude-sonnet-4-6", "max_tokens": 1024,
        "messages": [{"role": "user", "content": "hi"}]}

# Claude Code's request shape (its public docs and wire captures): system as blocks with
# cache_control, metadata.user_id, custom tools with input_schema, thinking, a tool round trip.
CLAUDE_CODE = {
    "model": "claude-sonnet-4-6", "max_tokens": 32000, "stream": True,
    "system": [{"type": "text", "text": "You are Claude Code, Anthropic's official CLI.",
                "cache_control": {"type": "ephemeral"}},
               {"type": "text", "text": "Working directory: /repo",
                "cache_control": {"type": "ephemeral"}}],
    "metadata": {"user_id": "user_abc_account__session_123"},
    "thinking": {"type": "enabled", "budget_tokens": 31999},
    "tools": [{"name": "Read", "description": "Reads a file",
               "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}},
                                "required": ["file_path"], "additionalProperties": False,
                                "$schema": "http://json-schema.org/draft-07/schema#"}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "read a.txt"}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I should read it.", "signature": "EqQBsig"},
            {"type": "text", "text": "Reading."},
            {"type": "tool_use", "id": "toolu_01A", "name": "Read",
             "input": {"file_path": "a.txt"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A",
             "content": [{"type": "text", "text": "héllo"}],
             "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "now summarise"}]}],
}


def req(**kw: Any) -> dict[str, Any]:
    return {**copy.deepcopy(BASE), **kw}


def bad(body: Any, param: str) -> str:
    with pytest.raises(InvalidRequest) as exc:
        m.to_chat(body)
    assert exc.value.status == 400 and exc.value.param == param
    return exc.value.message


# -- to_chat -------------------------------------------------------------------------------

def test_claude_code_request_becomes_a_well_formed_chat_request() -> None:
    out = m.to_chat(CLAUDE_CODE)
    sys_msg, user, assistant, tool, after = out["messages"]
    assert sys_msg == {"role": "system", "content": [
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI.",
         "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Working directory: /repo",
         "cache_control": {"type": "ephemeral"}}]}
    assert user == {"role": "user", "content": [{"type": "text", "text": "read a.txt"}]}
    assert assistant["content"] == "Reading."
    assert assistant["tool_calls"] == [{"id": "toolu_01A", "type": "function", "function": {
        "name": "Read", "arguments": '{"file_path": "a.txt"}'}}]
    assert assistant["reasoning_details"][0]["signature"] == "EqQBsig"
    assert assistant["reasoning_details"][0]["text"] == "I should read it."
    assert tool == {"role": "tool", "tool_call_id": "toolu_01A", "content": [
        {"type": "text", "text": "héllo", "cache_control": {"type": "ephemeral"}}]}
    assert after == {"role": "user", "content": [{"type": "text", "text": "now summarise"}]}
    assert out["tools"][0]["function"]["parameters"] == CLAUDE_CODE["tools"][0]["input_schema"]
    assert out["reasoning"] == {"max_tokens": 31999}
    assert out["user"] == "user_abc_account__session_123"
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    assert out["max_tokens"] == 32000
    _, repairs = repair_tool_calls(out["messages"])  # pairs already right: nothing to repair
    assert repairs == 0


def test_system_string_and_plain_text() -> None:
    out = m.to_chat(req(system="be brief", stop_sequences=["END"], temperature=0.2, top_p=0.9,
                        top_k=40))
    assert out["messages"] == [{"role": "system", "content": "be brief"},
                               {"role": "user", "content": "hi"}]
    assert (out["stop"], out["temperature"], out["top_p"], out["top_k"]) == (["END"], 0.2, 0.9, 40)
    assert "stream" not in out and "reasoning" not in out and "tools" not in out


def test_images_base64_and_url() -> None:
    content = [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                            "data": "iVBORw0KGgo="}},
               {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}}]
    out = m.to_chat(req(messages=[{"role": "user", "content": content}]))
    assert out["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}}]


def test_tool_results_come_first_and_errors_say_so() -> None:
    msgs = [{"role": "user", "content": "go"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "t1", "name": "a", "input": {}},
                {"type": "tool_use", "id": "t2", "name": "b", "input": {"x": [1]}}]},
            {"role": "user", "content": [
                {"type": "text", "text": "both done?"},
                {"type": "tool_result", "tool_use_id": "t1", "content": "ok"},
                {"type": "tool_result", "tool_use_id": "t2", "is_error": True,
                 "content": [{"type": "text", "text": "boom"},
                             {"type": "image", "source": {"type": "url", "url": "u://s"}}]}]}]
    out = m.to_chat(req(messages=msgs))["messages"]
    assert [x["role"] for x in out] == ["user", "assistant", "tool", "tool", "user"]
    assert out[1]["content"] is None and len(out[1]["tool_calls"]) == 2
    assert out[2] == {"role": "tool", "tool_call_id": "t1", "content": "ok"}
    assert out[3] == {"role": "tool", "tool_call_id": "t2", "content": "Error: boom"}
    # the tool result's image follows in the user turn, after the turn's own text
    assert out[4]["content"] == [{"type": "text", "text": "both done?"},
                                 {"type": "image_url", "image_url": {"url": "u://s"}}]


@pytest.mark.parametrize("choice, expected", [
    ({"type": "auto"}, {"tool_choice": "auto"}),
    ({"type": "any"}, {"tool_choice": "required"}),
    ({"type": "none"}, {"tool_choice": "none"}),
    ({"type": "tool", "name": "Read"}, {"tool_choice": {"type": "function",
                                                        "function": {"name": "Read"}}}),
    ({"type": "auto", "disable_parallel_tool_use": True},
     {"tool_choice": "auto", "parallel_tool_calls": False}),
])
def test_tool_choice(choice: dict[str, Any], expected: dict[str, Any]) -> None:
    out = m.to_chat(req(tools=CLAUDE_CODE["tools"], tool_choice=choice))
    assert {k: out[k] for k in expected} == expected
    assert "parallel_tool_calls" in out or "parallel_tool_calls" not in expected


@pytest.mark.parametrize("thinking, config, expected", [
    ({"type": "enabled", "budget_tokens": 2048}, None, {"max_tokens": 2048}),
    ({"type": "adaptive"}, None, {"effort": "high"}),
    ({"type": "adaptive"}, {"effort": "low"}, {"effort": "low"}),
    ({"type": "adaptive"}, {"effort": "max"}, {"effort": "xhigh"}),
    ({"type": "disabled"}, None, {"enabled": False}),
    ({"type": "enabled", "budget_tokens": 1024, "display": "omitted"}, None,
     {"max_tokens": 1024, "exclude": True}),
    (None, {"effort": "medium"}, {"effort": "medium"}),
])
def test_thinking_becomes_reasoning(thinking: Any, config: Any, expected: Any) -> None:
    body = req()
    if thinking:
        body["thinking"] = thinking
    if config:
        body["output_config"] = config
    assert m.to_chat(body)["reasoning"] == expected


def test_json_output_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    out = m.to_chat(req(output_config={"format": {"type": "json_schema", "schema": schema}}))
    assert out["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "output", "schema": schema, "strict": True}}


def test_documents_and_redacted_thinking() -> None:
    msgs = [{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": "JVBERi0="}, "title": "spec.pdf"},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                        "data": "plain words"}}]},
        {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "opaque"},
                                          {"type": "text", "text": "ok"}]}]
    out = m.to_chat(req(messages=msgs))["messages"]
    assert out[0]["content"] == [
        {"type": "file", "file": {"filename": "spec.pdf",
                                  "file_data": "data:application/pdf;base64,JVBERi0="}},
        {"type": "text", "text": "plain words"}]
    assert out[1]["reasoning_details"][0]["type"] == "reasoning.encrypted"
    assert out[1]["reasoning_details"][0]["data"] == "opaque"


@pytest.mark.parametrize("mutate, param", [
    (lambda b: b.pop("model"), "model"),
    (lambda b: b.pop("max_tokens"), "max_tokens"),
    (lambda b: b.update(max_tokens=True), "max_tokens"),
    (lambda b: b.update(max_tokens="100"), "max_tokens"),
    (lambda b: b.pop("messages"), "messages"),
    (lambda b: b.update(messages=[]), "messages"),
    (lambda b: b.update(messages=[{"role": "system", "content": "x"}]), "messages[0].role"),
    (lambda b: b.update(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
    (lambda b: b.update(messages=[{"role": "user", "content": [{"type": "video"}]}]),
     "messages[0].content[0].type"),
    (lambda b: b.update(messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "file", "file_id": "f"}}]}]),
     "messages[0].content[0].source"),
    (lambda b: b.update(system=7), "system"),
    (lambda b: b.update(temperature="hot"), "temperature"),
    (lambda b: b.update(stop_sequences="END"), "stop_sequences"),
    (lambda b: b.update(tool_choice={"type": "sometimes"}), "tool_choice.type"),
    (lambda b: b.update(thinking={"type": "enabled"}), "thinking.budget_tokens"),
    (lambda b: b.update(thinking={"type": "deep"}), "thinking.type"),
    (lambda b: b.update(tools=[{"name": "x"}]), "tools[0].input_schema"),
    (lambda b: b.update(mcp_servers=[{"type": "url", "url": "https://m"}]), "mcp_servers"),
])
def test_malformed_requests_are_clear_400s(mutate: Any, param: str) -> None:
    body = req()
    mutate(body)
    assert bad(body, param)


def test_server_tools_are_refused_by_name() -> None:
    tools = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]
    message = bad(req(tools=tools), "tools[0].type")
    assert "web_search_20250305" in message and "server tool" in message
    assert bad([1], "body")


# -- from_chat -----------------------------------------------------------------------------

def test_from_chat_is_a_valid_message_with_every_block() -> None:
    out = m.from_chat(copy.deepcopy(RICH_MESSAGE), model="claude-sonnet-4-6")
    msg = Message.model_validate(out)
    assert msg.id.startswith("msg_") and msg.model == "claude-sonnet-4-6"
    assert [b.type for b in msg.content] == ["thinking", "text", "tool_use", "tool_use"]
    thinking, text, read, ls = msg.content
    assert (thinking.thinking, thinking.signature) == ("Let me think ☃", "c2ln==")
    assert text.text == "Voilà: two calls 🚀"
    assert (read.id, read.name, read.input) == ("call_a", "read_file", {"path": "a.txt"})
    assert ls.input == {"dir": "src"}
    assert msg.stop_reason == "tool_use"
    # Anthropic's convention: input excludes cache reads (80) and writes (10) of the 120
    assert msg.usage.model_dump(include={"input_tokens", "cache_read_input_tokens",
                                         "cache_creation_input_tokens", "output_tokens"}) == {
        "input_tokens": 30, "cache_read_input_tokens": 80, "cache_creation_input_tokens": 10,
        "output_tokens": 30}


def completion(finish: str | None = "stop", **choice: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": "x"}, **choice}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1}}


@pytest.mark.parametrize("finish, extra, reason, seq", [
    ("stop", {}, "end_turn", None),
    ("length", {}, "max_tokens", None),
    ("tool_calls", {}, "tool_use", None),
    ("content_filter", {}, "refusal", None),
    (None, {}, "end_turn", None),
    ("stop", {"stop_reason": "END"}, "stop_sequence", "END"),  # vLLM names the match
    ("stop", {"native_finish_reason": "stop_sequence"}, "stop_sequence", None),
])
def test_stop_reasons(finish: Any, extra: Any, reason: str, seq: Any) -> None:
    msg = Message.model_validate(m.from_chat(completion(finish, **extra), model="c"))
    assert (msg.stop_reason, msg.stop_sequence) == (reason, seq)
    assert msg.usage.input_tokens == 5 and msg.usage.output_tokens == 1


def test_unparsable_tool_arguments_become_empty_input_and_a_note() -> None:
    resp = completion("tool_calls")
    resp["choices"][0]["message"]["tool_calls"] = [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{not json"}},
        {"id": "c2", "type": "function", "function": {"name": "g", "arguments": ""}}]
    msg = Message.model_validate(m.from_chat(resp, model="c"))
    assert [b.type for b in msg.content] == ["text", "tool_use", "text", "tool_use"]
    assert msg.content[1].input == {} and msg.content[3].input == {}
    assert "{not json" in msg.content[2].text and "'f'" in msg.content[2].text


def test_missing_usage_is_zero_not_a_crash() -> None:
    msg = Message.model_validate(m.from_chat({"choices": []}, model="c"))
    assert msg.content == [] and msg.usage.input_tokens == 0 and msg.stop_reason == "end_turn"
    junk = {"prompt_tokens": "12", "completion_tokens": float("inf"),
            "prompt_tokens_details": {"cached_tokens": -4}, "cache_creation_input_tokens": True}
    usage = m.from_chat({"choices": [], "usage": junk}, model="c")["usage"]
    assert set(usage.values()) == {0}


# -- StreamEncoder ---------------------------------------------------------------------------

def run(raw: bytes, cuts: list[int] | None = None) -> tuple[list[tuple[str, Any]], Any]:
    """Encode, check every event against the SDK's types and the SSE event name, and build the
    final message with the SDK's own accumulator."""
    enc = m.StreamEncoder(model="claude-sonnet-4-6", message_id="msg_test")
    evs = events(feed_split(enc, raw, cuts or []))
    snapshot, bufs = None, {}
    for name, data in evs:
        assert name == data["type"]
        if name in ("error", "ping"):
            continue
        snapshot = accumulate_event(event=EVENT.validate_python(data), current_snapshot=snapshot,
                                    json_bufs=bufs)
    return evs, snapshot


def test_stream_matches_the_non_streamed_message() -> None:
    evs, snap = run(stream(RICH))
    names = [n for n, _ in evs]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == names.count("content_block_stop") == 4
    whole = Message.model_validate(m.from_chat(copy.deepcopy(RICH_MESSAGE), model="c"))
    assert [b.model_dump() for b in snap.content] == [b.model_dump() for b in whole.content]
    assert snap.stop_reason == "tool_use" and snap.id == "msg_test"
    assert snap.usage.model_dump(exclude_none=True) == whole.usage.model_dump(exclude_none=True)
    deltas = [d["delta"]["type"] for n, d in evs if n == "content_block_delta"]
    assert {"thinking_delta", "signature_delta", "text_delta", "input_json_delta"} <= set(deltas)


def test_blocks_are_opened_and_closed_in_order() -> None:
    evs, _ = run(stream(RICH))
    open_block = None
    for name, data in evs:
        if name == "content_block_start":
            assert open_block is None
            open_block = data["index"]
        elif name == "content_block_delta":
            assert data["index"] == open_block
        elif name == "content_block_stop":
            assert data["index"] == open_block
            open_block = None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(stream(RICH))), max_size=20))
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    raw = stream(RICH)
    whole = m.StreamEncoder(model="c", message_id="msg_x")
    split = m.StreamEncoder(model="c", message_id="msg_x")
    assert feed_split(split, raw, cuts) == whole.feed(raw) + whole.close()


def test_unicode_split_mid_character() -> None:
    raw = stream(TEXT)
    cut = raw.index("é".encode()) + 1  # between the two bytes of é
    evs, snap = run(raw, [cut])
    assert snap.content[0].text == "Hello é"
    assert evs[-1][0] == "message_stop"


def test_events_go_out_as_soon_as_their_chunk_is_complete() -> None:
    enc = m.StreamEncoder(model="c")
    first = enc.feed(stream([chunk({"role": "assistant", "content": "Hi"})], done=False))
    assert [n for n, _ in events(first)] == [
        "message_start", "content_block_start", "content_block_delta"]
    assert enc.feed(b'data: {"choices":[{"index":0,"delta":{"content":"!"}}]}') == b""
    assert [n for n, _ in events(enc.feed(b"\n\n"))] == ["content_block_delta"]


def test_error_chunk_becomes_an_error_event_and_nothing_after() -> None:
    err = chunk({"content": ""}, "error")
    err["error"] = {"message": "provider overloaded", "code": 529}
    evs, _ = run(stream(TEXT[:3] + [err, chunk({"content": "ignored"})]))
    name, data = evs[-1]
    assert name == "error" and "message_stop" not in [n for n, _ in evs]
    assert data == {"type": "error", "error": {"type": "overloaded_error",
                                               "message": "provider overloaded"}}
    ErrorResponse.model_validate(data)
    assert "ignored" not in json.dumps(evs)


@pytest.mark.parametrize("err, kind", [
    ({"message": "m", "type": "timeout", "code": "upstream_timeout"}, "timeout_error"),
    ({"message": "m", "code": 429}, "rate_limit_error"),
    ({"message": "m", "type": "upstream_error", "code": "upstream_error"}, "api_error"),
    ({"message": "m"}, "api_error"),
])
def test_error_chunk_kinds(err: dict[str, Any], kind: str) -> None:
    evs, _ = run(stream([chunk({"content": "a"}), {"error": err}], done=False))
    assert evs[-1] == ("error", {"type": "error", "error": {"type": kind, "message": "m"}})


def test_cut_stream_ends_with_an_error_never_message_stop() -> None:
    evs, snap = run(stream(TEXT[:3], done=False))
    names = [n for n, _ in evs]
    assert names[-1] == "error" and "message_stop" not in names and "message_delta" not in names
    assert evs[-1][1]["error"]["type"] == "api_error"
    assert "cut off" in evs[-1][1]["error"]["message"]
    assert snap.content[0].text == "Hello é"  # what did arrive was passed on


def test_empty_cut_stream_is_an_error_too() -> None:
    enc = m.StreamEncoder(model="c")
    assert [n for n, _ in events(enc.close())] == ["message_start", "error"]


def test_finish_without_done_is_complete() -> None:
    evs, snap = run(stream(TEXT, done=False))
    assert evs[-1][0] == "message_stop" and snap.stop_reason == "end_turn"
    assert snap.usage.input_tokens == 9 and snap.usage.output_tokens == 3


def test_ping() -> None:
    assert events(m.StreamEncoder(model="c").ping()) == [("ping", {"type": "ping"})]


def test_interleaved_tool_calls_still_assemble() -> None:
    chunks = [call(0, "a", "f", '{"x": '), call(1, "b", "g", '{"y": 2}'), call(0, args="1}"),
              chunk({}, "tool_calls")]
    _, snap = run(stream(chunks))
    assert [(b.id, b.input) for b in snap.content] == [("a", {"x": 1}), ("b", {"y": 2})]


def test_name_arriving_after_the_id_holds_the_block() -> None:
    chunks = [call(0, "a", None, '{"q"'), call(0, None, "search", ': "z"}'),
              chunk({}, "tool_calls")]
    evs, snap = run(stream(chunks))
    assert (snap.content[0].name, snap.content[0].input) == ("search", {"q": "z"})


def test_non_object_tool_arguments_never_reach_the_json_parser() -> None:
    chunks = [call(0, "a", "f", "[1, "), call(0, args="2]"), chunk({}, "tool_calls")]
    evs, snap = run(stream(chunks))  # the SDK's partial-JSON parser would raise on "[1, 2]"
    assert [b.type for b in snap.content] == ["tool_use", "text"]
    assert snap.content[0].input == {} and "[1, 2]" in snap.content[1].text


def test_redacted_reasoning_and_plain_reasoning_fields() -> None:
    chunks = [chunk({"reasoning_details": [{"type": "reasoning.encrypted", "data": "zz"}]}),
              chunk({"reasoning_content": "deepseek style"}), chunk({"content": "done"}),
              chunk({}, "stop")]
    _, snap = run(stream(chunks))
    assert [b.type for b in snap.content] == ["redacted_thinking", "thinking", "text"]
    assert snap.content[0].data == "zz" and snap.content[1].thinking == "deepseek style"


# -- error_body, estimate_tokens -------------------------------------------------------------

@pytest.mark.parametrize("status, kind", [
    (400, "invalid_request_error"), (401, "authentication_error"), (402, "billing_error"),
    (403, "permission_error"), (404, "not_found_error"), (409, "invalid_request_error"),
    (429, "rate_limit_error"), (500, "api_error"), (502, "api_error"),
    (503, "overloaded_error"), (504, "timeout_error"), (529, "overloaded_error"),
])
def test_error_body(status: int, kind: str) -> None:
    env = InvalidRequest("over the daily limit", code="usage_limit_exceeded").envelope()
    body = m.error_body(status, env)
    assert body == {"type": "error", "error": {"type": kind, "message": "over the daily limit"}}
    ErrorResponse.model_validate(body)


def test_error_body_413_and_foreign_shapes() -> None:
    assert m.error_body(413, {"error": {"message": "big"}})["error"] == {
        "type": "request_too_large", "message": "big"}  # Anthropic's documented 413 type
    flat = {"error": "Service Unavailable", "message": "try later"}  # the hosted gateway's
    assert m.error_body(503, flat)["error"]["message"] == "try later"
    assert m.error_body(500, b"junk")["error"]["message"]


def test_estimate_tokens_counts_what_the_model_reads() -> None:
    small = m.estimate_tokens(req())
    assert small == 1  # "hi"
    body = copy.deepcopy(CLAUDE_CODE)
    base = m.estimate_tokens(body)
    body["messages"][0]["content"][0]["text"] += "x" * 400
    assert m.estimate_tokens(body) == base + 100
    body["tools"][0]["description"] += "y" * 40
    assert m.estimate_tokens(body) == base + 110
    body["messages"].append({"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": "A" * 100000}}]})
    assert m.estimate_tokens(body) == base + 110 + m.IMAGE_TOKENS
    with pytest.raises(InvalidRequest):
        m.estimate_tokens({"model": "c"})
