"""Recorded Anthropic streams through the translator: OpenAI chunks out, as they arrive, however
the network splits the bytes."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import example, given, settings, strategies as st
from openai.types.chat import ChatCompletionChunk

from localgate.relay import SseWatcher
from tests.providers.anthropic_helpers import ADAPTER, TARGET, frames, raw, translate

STREAMS = ("stream_text.sse", "stream_tool_use.sse", "stream_thinking.sse", "stream_error.sse")


def chunks(name: str) -> list[Any]:
    got = frames(translate(raw(name)))
    for c in got[:-1]:
        if "error" not in c:
            ChatCompletionChunk.model_validate(c)  # the official SDK's own type accepts it
    return got


def deltas(got: list[Any]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in got if isinstance(c, dict) and c["choices"]]


def test_text_stream() -> None:
    got = chunks("stream_text.sse")
    assert got[-1] == "[DONE]"
    assert deltas(got)[0] == {"role": "assistant", "content": ""}  # the role comes first
    assert "".join(d.get("content", "") for d in deltas(got)) == \
        "Bonjour ! Un café ☃ et 😀 pour vous."
    finish = got[-3]
    assert finish["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    usage = got[-2]
    assert usage["choices"] == [] and usage["usage"] == {
        "prompt_tokens": 12 + 1500 + 2048, "completion_tokens": 15,
        "total_tokens": 12 + 1500 + 2048 + 15,
        "prompt_tokens_details": {"cached_tokens": 2048, "cache_write_tokens": 1500}}
    objs = got[:-1]
    assert {c["id"] for c in objs} == {"msg_01K2JbSUMYhez5RHoK9ZCj9U"}
    assert {c["model"] for c in objs} == {"anthropic/claude-sonnet-4.6"}
    assert {c["object"] for c in objs} == {"chat.completion.chunk"}
    assert len({c["created"] for c in objs}) == 1
    assert all(c["choices"][0]["finish_reason"] is None for c in objs[:-2])


def test_chunks_are_compact_json_frames() -> None:
    out = translate(raw("stream_tool_use.sse")) + translate(raw("stream_text.sse"))
    for event in out.split(b"\n\n")[:-1]:
        assert re.fullmatch(rb'data: (\{"id":.*\}|\[DONE\])', event, re.S), event
        if event != b"data: [DONE]":
            compact = json.dumps(json.loads(event[6:]), separators=(",", ":"),
                                 ensure_ascii=False).encode()
            assert event[6:] == compact


def test_tool_calls_stream_index_id_name_then_argument_fragments() -> None:
    got = chunks("stream_tool_use.sse")
    calls = [d["tool_calls"][0] for d in deltas(got) if "tool_calls" in d]
    assert calls[0] == {"index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function",
                        "function": {"name": "get_weather", "arguments": ""}}
    assert [c["function"]["arguments"] for c in calls[1:5]] == [
        '{"location":', ' "San Fra', 'ncisco, CA", ', '"unit": "fahrenheit"}']  # no empty one
    assert all(set(c) == {"index", "function"} for c in calls[1:5])
    assert calls[5]["index"] == 1 and calls[5]["id"] == "toolu_01RzVnJmWkP3kqD2bQq3TzKc"
    by_index: dict[int, str] = {}
    for c in calls:
        by_index[c["index"]] = by_index.get(c["index"], "") + c["function"]["arguments"]
    assert json.loads(by_index[0]) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert json.loads(by_index[1]) == {"timezone": "America/Los_Angeles"}
    assert deltas(got)[1] == {"content": "Okay, let's check the weather for San Francisco, CA:"}
    assert got[-3]["choices"][0]["finish_reason"] == "tool_calls"
    assert got[-2]["usage"]["completion_tokens"] == 89


def test_argument_fragments_split_across_reads_arrive_whole_and_in_order() -> None:
    stream = raw("stream_tool_use.sse")
    inside = [stream.index(b"San Fra") + 3, stream.index(b"ncisco") + 2,
              stream.index(b"fahrenheit") + 4]
    got = frames(translate(stream, inside))
    args = [tc["function"]["arguments"] for d in deltas(got) for tc in d.get("tool_calls", [])
            if tc["index"] == 0]
    assert args == ["", '{"location":', ' "San Fra', 'ncisco, CA", ', '"unit": "fahrenheit"}']


def test_thinking_streams_as_reasoning_then_the_signature() -> None:
    ds = deltas(chunks("stream_thinking.sse"))
    reasoning = [d["reasoning"] for d in ds if "reasoning" in d]
    assert "".join(reasoning) == "Let me solve this step by step:\n\n1. First break down " \
                                 "27 * 453\n2. 453 = 400 + 50 + 3"
    details = [d["reasoning_details"][0] for d in ds if "reasoning_details" in d]
    assert details[0] == {"type": "reasoning.text", "text": reasoning[0],
                          "format": "anthropic-claude-v1", "index": 0}
    assert details[2] == {"type": "reasoning.text", "text": "",
                          "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
                          "format": "anthropic-claude-v1", "index": 0}
    assert details[3] == {"type": "reasoning.encrypted", "format": "anthropic-claude-v1",
                          "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3"
                                  "rAFBa8cr3qpP", "index": 1}
    assert [d.get("content") for d in ds if "content" in d] == ["", "27 * 453 = 12,231"]


def test_a_mid_stream_error_event_ends_with_an_error_chunk_and_done() -> None:
    got = chunks("stream_error.sse")
    assert got[-1] == "[DONE]" and deltas(got)[1] == {"content": "Once upon"}
    err = got[-2]
    assert err["error"] == {"message": "Overloaded", "type": "overloaded_error",
                            "code": "overloaded_error", "param": None}
    assert err["choices"] == [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]
    assert err["usage"]["prompt_tokens"] == 40  # what was used so far, for the spend log
    assert not any(c["choices"][0]["finish_reason"] for c in got[:-2])


def test_a_cut_stream_is_never_made_to_look_finished() -> None:
    tr = ADAPTER.stream_translator(TARGET)
    assert tr is not None
    out = tr.feed(raw("stream_cut.sse"))
    assert tr.close() == b""
    assert b"[DONE]" not in out and b'"finish_reason":"' not in out
    assert b'"content":"Hello"' in out


def test_close_completes_a_stream_whose_last_event_lacks_its_blank_line() -> None:
    tr = ADAPTER.stream_translator(TARGET)
    assert tr is not None
    out = tr.feed(raw("stream_text.sse").rstrip(b"\n"))
    assert b"[DONE]" not in out
    tail = tr.close()
    assert tail.endswith(b"data: [DONE]\n\n") and b'"finish_reason":"stop"' in tail


def test_nothing_after_message_stop() -> None:
    tr = ADAPTER.stream_translator(TARGET)
    assert tr is not None
    tr.feed(raw("stream_text.sse"))
    assert tr.feed(raw("stream_text.sse")) == b"" and tr.close() == b""


def test_each_event_is_translated_as_soon_as_it_is_whole() -> None:
    """No buffering beyond one incomplete event: what a read completes goes out at once."""
    stream = raw("stream_tool_use.sse")
    tr = ADAPTER.stream_translator(TARGET)
    assert tr is not None
    for event in stream.split(b"\n\n")[:-1]:
        half = len(event) // 2
        assert tr.feed(event[:half]) == b""
        out = tr.feed(event[half:] + b"\n\n")
        if b"text_delta" in event or b'"partial_json":"{' in event:
            assert out.startswith(b"data: ") and b'"delta":{' in out


def test_pings_unknown_events_and_junk_say_nothing() -> None:
    tr = ADAPTER.stream_translator(TARGET)
    assert tr is not None
    assert tr.feed(b'event: ping\ndata: {"type":"ping"}\n\n') == b""
    assert tr.feed(b'event: future_event\ndata: {"type":"future_event"}\n\n') == b""
    assert tr.feed(b"data: not json\n\n: comment\n\n") == b""


WORDS = st.sampled_from(["tool_use", "text", "thinking", "redacted_thinking", "text_delta",
                         "input_json_delta", "thinking_delta", "signature_delta", "end_turn"])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5) | WORDS,
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["index", "type", "text", "partial_json",
                                                       "thinking", "input", "id", "usage"]),
                                      inner, max_size=4), max_leaves=12)
PART = st.fixed_dictionaries({"type": WORDS}, optional={
    k: JSON for k in ("text", "partial_json", "thinking", "signature", "data", "input", "id",
                      "name", "stop_reason")}) | JSON
EVENT = st.fixed_dictionaries({"type": st.sampled_from([
    "message_start", "content_block_start", "content_block_delta", "message_delta", "ping",
    "error", "content_block_stop"])}, optional={
    "index": st.integers(0, 2) | JSON, "delta": PART, "content_block": PART, "message": JSON,
    "usage": JSON, "error": JSON})


@settings(max_examples=120, deadline=None)
@given(st.lists(EVENT, max_size=8), st.binary(max_size=40))
@example([{"type": "content_block_start", "index": [1], "content_block": {"type": "tool_use"}},
          {"type": "content_block_delta", "index": {}, "delta": {"type": "input_json_delta",
                                                                 "partial_json": "x"}},
          {"type": ["message_stop"]}, {"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": 5}}], b"")
def test_junk_from_upstream_never_raises(events: list[dict[str, Any]], noise: bytes) -> None:
    tr = ADAPTER.stream_translator(TARGET)
    assert tr is not None
    for ev in events:
        out = tr.feed(f"event: {ev['type']}\ndata: {json.dumps(ev)}\n\n".encode())
        frames(out)  # whatever comes out is whole OpenAI SSE frames
    tr.feed(noise)
    tr.close()


def normalized(out: bytes) -> bytes:
    return re.sub(rb'"created":\d+', b'"created":0', out)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(STREAMS), st.lists(st.integers(min_value=0, max_value=4000), max_size=15))
def test_split_anywhere_gives_the_same_chunks(name: str, cuts: list[int]) -> None:
    stream = raw(name)
    assert normalized(translate(stream, [c % (len(stream) + 1) for c in cuts])) == \
        normalized(translate(stream))


def test_unicode_split_mid_character() -> None:
    stream = raw("stream_text.sse")
    for char in ("☃", "😀"):
        start = stream.index(char.encode())
        for k in range(1, len(char.encode())):
            got = frames(translate(stream, [start + k]))
            assert "".join(d.get("content", "") for d in deltas(got)).endswith(
                "☃ et 😀 pour vous.")


def test_the_relay_reads_usage_and_drops_the_usage_chunk_the_client_did_not_ask_for() -> None:
    out = translate(raw("stream_text.sse"))
    watch = SseWatcher(drop_usage_chunk=True)
    relayed = watch.feed(out) + watch.flush()
    assert watch.done and watch.finished and watch.error is None
    assert watch.usage is not None and watch.usage["prompt_tokens"] == 3560
    assert b'"choices":[]' not in relayed and relayed.endswith(b"data: [DONE]\n\n")
    err = SseWatcher(drop_usage_chunk=True)
    err.feed(translate(raw("stream_error.sse")))
    assert err.error is not None and err.error["type"] == "overloaded_error" and err.done
