"""The OpenAI Responses ingress codec, pure: requests to chat, chat results and streams back,
checked against the official `openai` SDK's Response and stream-event types and its own stream
state machine (which refuses out-of-order or inconsistent events)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pydantic
import pytest
from hypothesis import given, settings, strategies as st
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent

from localgate.errors import InvalidRequest
from localgate.ingress import responses as r
from tests.chatsse import RICH, RICH_MESSAGE, TEXT, USAGE, call, chunk, events, feed_split, stream

EVENT = pydantic.TypeAdapter(ResponseStreamEvent)
SDK_ONLY = ("id", "parsed", "parsed_arguments")
BASE: dict[str, Any] = {"model": "openai/gpt-5.2", "input": "hi"}
TOOLS = [{"type": "function", "name": "read_file", "description": "Read a file",
          "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
          "strict": False}]


def req(**kw: Any) -> dict[str, Any]:
    return {**copy.deepcopy(BASE), **kw}


def bad(body: Any, param: str) -> str:
    with pytest.raises(InvalidRequest) as exc:
        r.to_chat(body)
    assert exc.value.status == 400 and exc.value.param == param
    return exc.value.message


# -- to_chat -------------------------------------------------------------------------------

def test_string_input_and_instructions() -> None:
    out = r.to_chat(req(instructions="be brief", max_output_tokens=300, temperature=0.3,
                        top_p=0.8, user="u1", store=True, metadata={"k": "v"},
                        parallel_tool_calls=False))
    assert out == {"model": "openai/gpt-5.2", "max_tokens": 300, "temperature": 0.3,
                   "top_p": 0.8, "user": "u1", "parallel_tool_calls": False,
                   "messages": [{"role": "system", "content": "be brief"},
                                {"role": "user", "content": "hi"}]}


def test_a_multi_turn_tool_conversation() -> None:
    items = [
        {"role": "developer", "content": "use tools"},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "read a.txt"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAA=", "detail": "low"},
            {"type": "input_file", "filename": "s.pdf",
             "file_data": "data:application/pdf;base64,J"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "hm"}],
         "encrypted_content": "gAAA"},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "Reading.", "annotations": []}]},
        {"type": "function_call", "call_id": "call_1", "name": "read_file",
         "arguments": '{"path": "a.txt"}'},
        {"type": "function_call", "call_id": "call_2", "name": "read_file",
         "arguments": '{"path": "b.txt"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "alpha"},
        {"type": "function_call_output", "call_id": "call_2", "output": [
            {"type": "input_text", "text": "beta"},
            {"type": "input_image", "image_url": "https://x.test/b.png"}]},
    ]
    msgs = r.to_chat(req(input=items, tools=TOOLS, tool_choice="required"))["messages"]
    assert msgs[0] == {"role": "system", "content": "use tools"}
    assert msgs[1]["content"] == [
        {"type": "text", "text": "read a.txt"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA=",
                                            "detail": "low"}},
        {"type": "file", "file": {"filename": "s.pdf",
                                  "file_data": "data:application/pdf;base64,J"}}]
    assert msgs[2]["role"] == "assistant" and msgs[2]["content"] == "Reading."
    assert [c["id"] for c in msgs[2]["tool_calls"]] == ["call_1", "call_2"]
    assert msgs[2]["tool_calls"][1]["function"] == {"name": "read_file",
                                                    "arguments": '{"path": "b.txt"}'}
    assert msgs[3] == {"role": "tool", "tool_call_id": "call_1", "content": "alpha"}
    assert msgs[4] == {"role": "tool", "tool_call_id": "call_2", "content": "beta"}
    assert msgs[5] == {"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://x.test/b.png"}}]}
    assert len(msgs) == 6  # the reasoning item was dropped


def test_function_call_without_text_starts_its_own_assistant_turn() -> None:
    items = [{"role": "user", "content": "go"},
             {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}]
    msgs = r.to_chat(req(input=items))["messages"]
    assert msgs[1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}


def test_tools_choice_reasoning_format_stream() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    out = r.to_chat(req(tools=TOOLS, tool_choice={"type": "function", "name": "read_file"},
                        reasoning={"effort": "low", "summary": "auto"}, stream=True,
                        text={"format": {"type": "json_schema", "name": "out", "schema": schema,
                                         "strict": True}, "verbosity": "low"}))
    assert out["tools"] == [{"type": "function", "function": {
        "name": "read_file", "description": "Read a file", "parameters": TOOLS[0]["parameters"],
        "strict": False}}]
    assert out["tool_choice"] == {"type": "function", "function": {"name": "read_file"}}
    assert out["reasoning_effort"] == "low" and out["verbosity"] == "low"
    assert out["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "out", "schema": schema, "strict": True}}
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    plain = r.to_chat(req(text={"format": {"type": "json_object"}}))
    assert plain["response_format"] == {"type": "json_object"}
    assert "response_format" not in r.to_chat(req(text={"format": {"type": "text"}}))


def test_previous_response_id_says_it_is_not_kept() -> None:
    message = bad(req(previous_response_id="resp_123"), "previous_response_id")
    assert "does not keep responses" in message
    assert bad(req(conversation="conv_1"), "conversation")
    assert bad(req(input=[{"type": "item_reference", "id": "msg_1"}]), "input[0].type")


def test_built_in_tools_are_refused_by_name() -> None:
    message = bad(req(tools=[{"type": "web_search"}]), "tools[0].type")
    assert "web_search" in message and "built-in" in message
    assert bad(req(tool_choice={"type": "web_search_preview"}), "tool_choice")


@pytest.mark.parametrize("mutate, param", [
    (lambda b: b.pop("model"), "model"),
    (lambda b: b.pop("input"), "input"),
    (lambda b: b.update(input=[]), "input"),
    (lambda b: b.update(input=[5]), "input[0]"),
    (lambda b: b.update(input=[{"role": "robot", "content": "x"}]), "input[0].role"),
    (lambda b: b.update(input=[{"role": "user", "content": 3}]), "input[0].content"),
    (lambda b: b.update(input=[{"role": "user", "content": [{"type": "input_audio"}]}]),
     "input[0].content[0].type"),
    (lambda b: b.update(input=[{"role": "user", "content": [
        {"type": "input_image", "file_id": "file-1"}]}]), "input[0].content[0].image_url"),
    (lambda b: b.update(input=[{"type": "function_call", "name": "f"}]), "input[0].call_id"),
    (lambda b: b.update(input=[{"type": "function_call_output", "output": "x"}]),
     "input[0].call_id"),
    (lambda b: b.update(input=[{"type": "computer_call", "id": "c"}]), "input[0].type"),
    (lambda b: b.update(instructions=["x"]), "instructions"),
    (lambda b: b.update(max_output_tokens=0), "max_output_tokens"),
    (lambda b: b.update(tool_choice="sometimes"), "tool_choice"),
    (lambda b: b.update(text={"format": {"type": "yaml"}}), "text.format.type"),
    (lambda b: b.update(text={"format": {"type": "json_schema"}}), "text.format"),
    (lambda b: b.update(reasoning="high"), "reasoning"),
    (lambda b: b.update(background=True), "background"),
    (lambda b: b.update(temperature="hot"), "temperature"),
    (lambda b: b.update(temperature=True), "temperature"),
    (lambda b: b.update(parallel_tool_calls="no"), "parallel_tool_calls"),
    (lambda b: b.update(user=7), "user"),
])
def test_malformed_requests_are_clear_400s(mutate: Any, param: str) -> None:
    body = req()
    mutate(body)
    assert bad(body, param)


# -- from_chat -----------------------------------------------------------------------------

def test_from_chat_is_a_valid_response() -> None:
    request = req(instructions="be brief", tools=TOOLS, temperature=0.5,
                  metadata={"trace": "t1"}, reasoning={"effort": "high"})
    out = Response.model_validate(r.from_chat(copy.deepcopy(RICH_MESSAGE),
                                              model="openai/gpt-5.2", request=request))
    assert out.id.startswith("resp_") and out.status == "completed"
    assert out.created_at == 1700000000 and out.model == "openai/gpt-5.2"
    assert [o.type for o in out.output] == ["reasoning", "message", "function_call",
                                            "function_call"]
    reasoning, message, read, ls = out.output
    assert reasoning.summary[0].text == "Let me think ☃"
    assert message.content[0].text == "Voilà: two calls 🚀" and message.status == "completed"
    assert (read.call_id, read.name, read.arguments) == ("call_a", "read_file",
                                                         '{"path": "a.txt"}')
    assert ls.call_id == "call_b"
    assert out.output_text == "Voilà: two calls 🚀"  # the SDK's own convenience works
    assert out.usage is not None
    assert (out.usage.input_tokens, out.usage.output_tokens, out.usage.total_tokens) == (
        120, 30, 150)
    assert out.usage.input_tokens_details.cached_tokens == 80
    assert out.usage.output_tokens_details.reasoning_tokens == 12
    # echoed as OpenAI echoes them
    assert out.instructions == "be brief" and out.temperature == 0.5
    assert out.metadata == {"trace": "t1"} and out.tools[0].name == "read_file"
    assert out.reasoning is not None and out.reasoning.effort == "high"
    assert out.tool_choice == "auto" and out.parallel_tool_calls is True


def test_length_is_incomplete_with_details() -> None:
    resp = {"choices": [{"index": 0, "finish_reason": "length",
                         "message": {"role": "assistant", "content": "partial"}}]}
    out = Response.model_validate(r.from_chat(resp, model="m", request=req()))
    assert out.status == "incomplete" and out.incomplete_details is not None
    assert out.incomplete_details.reason == "max_output_tokens"
    assert out.output[0].status == "incomplete" and out.usage is None


def test_refusal_is_a_refusal_part() -> None:
    resp = {"choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": None,
                                     "refusal": "I can't help with that."}}]}
    out = Response.model_validate(r.from_chat(resp, model="m", request=req()))
    assert out.output[0].content[0].type == "refusal"


# -- StreamEncoder ---------------------------------------------------------------------------

def run(raw: bytes, request: dict[str, Any] | None = None,
        cuts: list[int] | None = None) -> tuple[list[tuple[str, Any]], Any]:
    """Encode; check every event's type, its SSE name and the numbering; drive the SDK's stream
    state machine with them; return the events and the response the SDK assembled when the
    stream completed (None if it did not)."""
    enc = r.StreamEncoder(model="openai/gpt-5.2", response_id="resp_test",
                          request=request or req(stream=True))
    evs = events(feed_split(enc, raw, cuts or []))
    assert [d["sequence_number"] for _, d in evs] == list(range(len(evs)))
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=TOOLS, text_format=omit)
    assembled = None
    for name, data in evs:
        assert name == data["type"]
        event = EVENT.validate_python(data)
        if name != "error":
            for out in state.handle_event(event):
                if out.type == "response.completed":
                    assembled = out.response
    return evs, assembled


def test_stream_matches_the_non_streamed_response() -> None:
    evs, snap = run(stream(RICH))
    names = [n for n, _ in evs]
    assert names[:2] == ["response.created", "response.in_progress"]
    assert names[-1] == "response.completed"
    final = Response.model_validate(evs[-1][1]["response"])
    whole = Response.model_validate(r.from_chat(copy.deepcopy(RICH_MESSAGE), model="m",
                                                request=req()))

    def shape(resp: Any) -> Any:  # ids are fresh each time; parsed* are the SDK's additions
        def strip(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: strip(x) for k, x in v.items() if k not in SDK_ONLY}
            return [strip(x) for x in v] if isinstance(v, list) else v
        return strip([o.model_dump() for o in resp.output])
    assert shape(final) == shape(whole)
    assert final.usage == whole.usage and final.status == "completed"
    assert shape(snap) == shape(whole)  # what the SDK assembled from the events
    for kind in ("response.reasoning_summary_text.delta", "response.output_text.delta",
                 "response.function_call_arguments.delta", "response.output_item.done",
                 "response.function_call_arguments.done", "response.content_part.done"):
        assert kind in names


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(stream(RICH))), max_size=20))
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    raw = stream(RICH)

    def encoded(points: list[int]) -> bytes:
        enc = r.StreamEncoder(model="m", response_id="resp_x", request=req())
        enc.created_at = 1  # the clock is not what this test is about
        return re.sub(rb'"(rs|msg|fc)_[0-9a-f]{24}"', b'"ID"', feed_split(enc, raw, points))
    assert encoded(cuts) == encoded([])


def test_unicode_split_mid_character() -> None:
    raw = stream(TEXT)
    evs, snap = run(raw, cuts=[raw.index("é".encode()) + 1])
    assert snap.output[0].content[0].text == "Hello é"
    assert evs[-1][0] == "response.completed"
    assert evs[-1][1]["response"]["usage"]["input_tokens"] == 9


def test_length_ends_incomplete() -> None:
    chunks = [chunk({"content": "so far"}), chunk({}, "length"), chunk(usage=USAGE)]
    evs, _ = run(stream(chunks))
    assert evs[-1][0] == "response.incomplete"
    resp = Response.model_validate(evs[-1][1]["response"])
    assert resp.incomplete_details is not None
    assert resp.incomplete_details.reason == "max_output_tokens"
    assert resp.output[0].status == "incomplete" and resp.usage is not None


def test_error_chunk_fails_the_response() -> None:
    err = chunk({"content": ""}, "error")
    err["error"] = {"message": "slow down", "code": 429}
    evs, _ = run(stream(TEXT[:3] + [err, chunk({"content": "ignored"})]))
    names = [n for n, _ in evs]
    assert names[-2:] == ["error", "response.failed"] and "response.completed" not in names
    assert evs[-2][1]["message"] == "slow down"
    failed = Response.model_validate(evs[-1][1]["response"])
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.code == "rate_limit_exceeded"
    assert failed.output[0].status == "incomplete"  # what arrived is kept, marked unfinished
    assert failed.output[0].content[0].text == "Hello é"


def test_cut_stream_fails_never_completes() -> None:
    evs, _ = run(stream(TEXT[:3], done=False))
    names = [n for n, _ in evs]
    assert names[-2:] == ["error", "response.failed"] and "response.completed" not in names
    assert "cut off" in evs[-1][1]["response"]["error"]["message"]
    assert evs[-1][1]["response"]["error"]["code"] == "server_error"


def test_finish_without_done_completes() -> None:
    evs, _ = run(stream(TEXT, done=False))
    assert evs[-1][0] == "response.completed"


def test_echo_in_every_lifecycle_event() -> None:
    request = req(stream=True, instructions="be brief", tools=TOOLS, max_output_tokens=99)
    evs, _ = run(stream(TEXT), request)
    for name, data in evs:
        if name.startswith("response.") and "response" in data:
            resp = data["response"]
            assert resp["id"] == "resp_test" and resp["instructions"] == "be brief"
            assert resp["max_output_tokens"] == 99 and resp["tools"][0]["name"] == "read_file"
    assert evs[0][1]["response"]["status"] == "in_progress"
    assert evs[0][1]["response"]["usage"] is None


def test_interleaved_tool_calls_keep_their_arguments() -> None:
    chunks = [call(0, "a", "f", '{"x": '), call(1, "b", "g", '{"y": 2}'), call(0, args="1}"),
              chunk({}, "tool_calls")]
    evs, _ = run(stream(chunks))
    final = Response.model_validate(evs[-1][1]["response"])
    assert [(o.call_id, o.arguments) for o in final.output] == [("a", '{"x": 1}'),
                                                                ("b", '{"y": 2}')]


# -- error_body -------------------------------------------------------------------------------

def test_error_body_is_the_openai_envelope() -> None:
    env = InvalidRequest("bad input", param="input").envelope()
    assert r.error_body(400, env) == env
    assert r.error_body(503, {"error": "Service Unavailable", "message": "later"}) == {
        "error": {"message": "later", "type": "server_error", "code": None, "param": None}}
