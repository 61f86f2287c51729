"""End to end: the official openai SDK -> a running daemon -> `anthropic/*` with the user's
Anthropic key -> the strict fake Messages API (tests/fake_anthropic.py), and back. The client
must not be able to tell it from an OpenAI-format model: the SDK's own types parse every answer,
errors arrive in the OpenAI envelope, streams end the OpenAI way. What the fake received shows
the translation and the hosted gateway's shaping; the spend log shows the cost.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.conftest import LOCAL_KEY, Daemon, StartDaemon, auth
from tests.e2e import (GPT, OPENAI_KEY, SONNET, SONNET_NATIVE, anthropic_at, claude_api,
                       cost_of, events, one_row, prices, settled)
from tests.fake_anthropic import FAKE_KEY, SIGNATURE, FakeAnthropic
from tests.fakes import FakeUpstream
from tests.http import call

__all__ = ["claude_api"]  # the fixture, imported for pytest

HELLO = [{"role": "user", "content": "hi"}]
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"type": "string"}},
                   "required": ["city"]}}}]
EPHEMERAL = {"type": "ephemeral"}


async def byok(start_daemon: StartDaemon, fake: FakeAnthropic, **env: str) -> Daemon:
    return await start_daemon(anthropic_at(fake), ANTHROPIC_API_KEY=FAKE_KEY, **env)


def skeleton(chunks: list[Any]) -> list[tuple[bool, bool, str | None]]:
    """The shape of a chat stream: (role?, text?, finish) per chunk, repeats folded."""
    out: list[tuple[bool, bool, str | None]] = []
    for c in chunks:
        if not c.choices:
            continue
        ch = c.choices[0]
        step = (ch.delta.role is not None, bool(ch.delta.content), ch.finish_reason)
        if not out or out[-1] != step:
            out.append(step)
    return out


async def test_text_reads_like_an_openai_model(start_daemon: StartDaemon,
                                               claude_api: FakeAnthropic,
                                               fake: FakeUpstream) -> None:
    d = await byok(start_daemon, claude_api, OPENAI_API_KEY=OPENAI_KEY)
    info = await call(d, "GET", f"/v1/models/{SONNET}")
    max_out = info.json["top_provider"]["max_completion_tokens"]
    async with d.sdk() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model=SONNET, messages=[{"role": "system", "content": "Be terse."}, *HELLO])
        other = await client.chat.completions.with_raw_response.create(model=GPT,
                                                                       messages=HELLO)
    resp, mine, theirs = raw.parse(), json.loads(raw.content), json.loads(other.content)
    assert resp.choices[0].message.content == claude_api.knobs.text
    assert resp.choices[0].finish_reason == "stop" and resp.object == "chat.completion"
    assert resp.model == SONNET
    # the same envelope an OpenAI-format model answers with
    assert set(mine) == set(theirs)
    assert set(mine["choices"][0]) == set(theirs["choices"][0])
    assert set(mine["choices"][0]["message"]) >= set(theirs["choices"][0]["message"])
    assert (raw.headers["x-localgate-route"], raw.headers["x-localgate-provider"],
            raw.headers["x-localgate-upstream"], raw.headers["x-localgate-model"]) == \
        ("byok", "anthropic", "anthropic", SONNET)
    seen = claude_api.last
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == FAKE_KEY and seen.headers["anthropic-version"]
    assert LOCAL_KEY not in json.dumps(seen.headers)
    assert seen.body["model"] == SONNET_NATIVE
    assert seen.body["max_tokens"] == max_out  # none asked: the catalog's maximum output
    assert seen.body["system"] == [{"type": "text", "text": "Be terse.",
                                    "cache_control": EPHEMERAL}]
    # a first turn writes the cache: prompt_tokens counts the written tokens too (SPEC 5)
    usage = resp.usage
    assert usage is not None and usage.prompt_tokens > 0
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0
    written = usage.prompt_tokens_details.cache_write_tokens
    assert written == usage.prompt_tokens
    row = (await settled(d.home, 2, d))[0]
    p = await prices(d.url, SONNET)
    assert (row["provider"], row["route"], row["resolved_model"], row["status"]) == \
        ("anthropic", "byok", SONNET, "ok")
    assert row["cache_write_tokens"] == written and row["cost_source"] == "catalog"
    assert row["cost_microdollars"] == cost_of(p, row) > 0
    assert (usage.model_extra or {})["cost"] * 1_000_000 == pytest.approx(
        row["cost_microdollars"])


async def test_stream_reads_like_an_openai_stream(start_daemon: StartDaemon,
                                                  claude_api: FakeAnthropic,
                                                  fake: FakeUpstream) -> None:
    d = await byok(start_daemon, claude_api, OPENAI_API_KEY=OPENAI_KEY)
    claude_api.knobs.chunks = 4
    async with d.sdk() as client:
        stream = await client.chat.completions.create(model=SONNET, messages=HELLO, stream=True)
        chunks = [c async for c in stream]
        stream = await client.chat.completions.create(model=GPT, messages=HELLO, stream=True)
        theirs = [c async for c in stream]
        stream = await client.chat.completions.create(
            model=SONNET, messages=HELLO, stream=True, stream_options={"include_usage": True})
        with_usage = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == claude_api.knobs.text
    assert len([c for c in chunks if c.choices[0].delta.content]) == 4  # as they arrived
    assert skeleton(chunks) == skeleton(theirs) == [(True, False, None), (False, True, None),
                                                    (False, False, "stop")]
    assert all(c.usage is None for c in chunks)  # not asked for: the usage chunk is dropped
    assert claude_api.last.body["stream"] is True
    last = with_usage[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0
    assert (last.usage.model_extra or {})["is_byok"] is True
    rows = await settled(d.home, 3, d)
    assert rows[-1]["stream"] and rows[-1]["prompt_tokens"] == last.usage.prompt_tokens
    assert rows[-1]["ttft_ms"] is not None


async def test_a_multi_turn_tool_conversation(start_daemon: StartDaemon,
                                              claude_api: FakeAnthropic) -> None:
    d = await byok(start_daemon, claude_api)
    claude_api.knobs.reply = "tool_use"
    history: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    async with d.sdk() as client:
        first = await client.chat.completions.create(model=SONNET, messages=history,
                                                     tools=TOOLS, tool_choice="required")
        msg = first.choices[0].message
        assert first.choices[0].finish_reason == "tool_calls"
        call_ = msg.tool_calls[0]
        assert call_.function.name == "get_weather"
        assert json.loads(call_.function.arguments) == claude_api.knobs.tool_input
        assert claude_api.last.body["tool_choice"] == {"type": "any"}
        assert claude_api.last.body["tools"][0]["input_schema"]["required"] == ["city"]
        # the same call streamed: the SDK assembles the argument fragments
        async with client.chat.completions.stream(model=SONNET, messages=history,
                                                  tools=TOOLS) as s:
            final = await s.get_final_completion()
        streamed = final.choices[0].message.tool_calls[0]
        assert (streamed.id, streamed.function.name) == (call_.id, "get_weather")
        assert json.loads(streamed.function.arguments) == claude_api.knobs.tool_input
        # turn two: the assistant's call and its result go back; the strict fake checks pairs
        claude_api.knobs.reply = "text"
        history += [msg.model_dump(exclude_none=True),
                    {"role": "tool", "tool_call_id": call_.id, "content": "18C and sunny"}]
        second = await client.chat.completions.create(model=SONNET, messages=history,
                                                      tools=TOOLS)
    assert second.choices[0].message.content == claude_api.knobs.text
    turns = claude_api.last.body["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    uses = [b for b in turns[1]["content"] if b["type"] == "tool_use"]
    assert uses == [{"type": "tool_use", "id": call_.id, "name": "get_weather",
                     "input": claude_api.knobs.tool_input}]
    result = turns[2]["content"][0]
    assert (result["type"], result["tool_use_id"]) == ("tool_result", call_.id)
    assert result["content"][0]["text"] == "18C and sunny"


async def test_dotted_tool_call_ids_are_rewritten_in_pairs(start_daemon: StartDaemon,
                                                          claude_api: FakeAnthropic) -> None:
    """Anthropic refuses `.` in tool ids (the hosted gateway hashes them); pairs stay matched."""
    d = await byok(start_daemon, claude_api)
    history = [{"role": "user", "content": "Weather?"},
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "functions.get_weather:0", "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]},
               {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "-3C"},
               {"role": "user", "content": "And tomorrow?"}]
    async with d.sdk() as client:
        resp = await client.chat.completions.create(model=SONNET, messages=history, tools=TOOLS)
    assert resp.choices[0].message.content == claude_api.knobs.text
    turns = claude_api.last.body["messages"]
    use = turns[1]["content"][0]
    result = turns[2]["content"][0]
    assert "." not in use["id"] and use["id"] == result["tool_use_id"]


async def test_images_data_and_http_urls(start_daemon: StartDaemon,
                                         claude_api: FakeAnthropic) -> None:
    d = await byok(start_daemon, claude_api)
    png = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
           "AAAABJRU5ErkJggg==")  # a 1x1 PNG
    content = [{"type": "text", "text": "What is in these?"},
               {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
               {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]
    async with d.sdk() as client:
        resp = await client.chat.completions.create(model=SONNET, messages=[
            {"role": "user", "content": content}])
    assert resp.choices[0].message.content == claude_api.knobs.text
    blocks = claude_api.last.body["messages"][0]["content"]
    assert blocks[1] == {"type": "image", "source": {"type": "base64",
                                                      "media_type": "image/png", "data": png}}
    assert blocks[2]["source"] == {"type": "url", "url": "https://example.com/cat.jpg"}


async def test_reasoning_effort_becomes_thinking_and_comes_back(start_daemon: StartDaemon,
                                                                claude_api: FakeAnthropic
                                                                ) -> None:
    d = await byok(start_daemon, claude_api)
    claude_api.knobs.reply = "tool_use"
    history: list[Any] = [{"role": "user", "content": "Think, then check the weather."}]
    async with d.sdk() as client:
        resp = await client.chat.completions.create(model=SONNET, messages=history,
                                                    tools=TOOLS, reasoning_effort="high",
                                                    max_tokens=2000)
        sent = claude_api.last.body
        assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1600}
        assert sent["max_tokens"] == 2000
        msg = resp.choices[0].message
        extra = msg.model_extra or {}
        assert extra["reasoning"] == "Let me think about that."
        assert extra["reasoning_details"][0]["signature"] == SIGNATURE
        stream = await client.chat.completions.create(model=SONNET, messages=history,
                                                      tools=TOOLS, reasoning_effort="high",
                                                      max_tokens=2000, stream=True)
        thought = "".join([(c.choices[0].delta.model_extra or {}).get("reasoning") or ""
                           async for c in stream if c.choices])
        assert thought == "Let me think about that."
        # with thinking on, the API wants the signed thinking block back before the tool_use
        claude_api.knobs.reply = "text"
        history += [msg.model_dump(exclude_none=True),
                    {"role": "tool", "tool_call_id": msg.tool_calls[0].id, "content": "sunny"}]
        again = await client.chat.completions.create(model=SONNET, messages=history,
                                                      tools=TOOLS, reasoning_effort="high",
                                                      max_tokens=2000)
    assert again.choices[0].message.content == claude_api.knobs.text
    turn = claude_api.last.body["messages"][1]["content"]
    assert turn[0] == {"type": "thinking", "thinking": "Let me think about that.",
                       "signature": SIGNATURE}
    assert claude_api.last.body["thinking"]["type"] == "enabled"


@pytest.mark.parametrize(("stop_reason", "finish"), [("stop_sequence", "stop"),
                                                     ("max_tokens", "length"),
                                                     ("refusal", "content_filter")])
async def test_stop_sequences_and_stop_reasons(start_daemon: StartDaemon,
                                               claude_api: FakeAnthropic, stop_reason: str,
                                               finish: str) -> None:
    d = await byok(start_daemon, claude_api)
    claude_api.knobs.stop_reason = stop_reason
    async with d.sdk() as client:
        resp = await client.chat.completions.create(model=SONNET, messages=HELLO,
                                                    stop=["END", " "], max_tokens=50)
    assert claude_api.last.body["stop_sequences"] == ["END"]  # blank ones: the API refuses
    assert claude_api.last.body["max_tokens"] == 50
    assert resp.choices[0].finish_reason == finish


async def test_second_turn_reads_the_cache_and_costs_the_cache_price(
        start_daemon: StartDaemon, claude_api: FakeAnthropic) -> None:
    d = await byok(start_daemon, claude_api)
    system = {"role": "system", "content": "You are a careful assistant. " * 20}
    turn1 = [system, {"role": "user", "content": "Tell me about caching. " * 10}]
    async with d.sdk() as client:
        first = await client.chat.completions.create(model=SONNET, messages=turn1)
        turn2 = turn1 + [{"role": "assistant", "content": first.choices[0].message.content},
                         {"role": "user", "content": "And the second turn?"}]
        second = await client.chat.completions.create(model=SONNET, messages=turn2)
    body = claude_api.last.body
    # the hosted gateway's breakpoints: system, the last user turn, the user turn before the
    # last assistant turn; none on the assistant turn
    assert body["system"][-1]["cache_control"] == EPHEMERAL
    marks = ["cache_control" in t["content"][-1] for t in body["messages"]]
    assert marks == [True, False, True]
    assert second.usage is not None and second.usage.prompt_tokens_details is not None
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached and cached == first.usage.prompt_tokens  # turn one's prompt, read back
    rows = await settled(d.home, 2, d)
    p = await prices(d.url, SONNET)
    assert rows[1]["cached_tokens"] == cached and rows[0]["cached_tokens"] == 0
    assert rows[1]["cost_microdollars"] == cost_of(p, rows[1])
    # the read tokens are costed at the cache-read price, not the plain input price
    plain = dict(rows[1], cached_tokens=0)
    assert p["input_cache_read"] < p["prompt"]
    assert rows[1]["cost_microdollars"] < cost_of(p, plain)
    print(f"\nsecond turn: {rows[1]['prompt_tokens']} prompt tokens ({cached} read from the "
          f"cache) = {rows[1]['cost_microdollars']} microdollars, "
          f"{cost_of(p, plain)} without the cache price")


async def test_clients_own_cache_control_is_kept_alone(start_daemon: StartDaemon,
                                                       claude_api: FakeAnthropic) -> None:
    d = await byok(start_daemon, claude_api)
    async with d.sdk() as client:
        await client.chat.completions.create(model=SONNET, messages=[
            {"role": "system", "content": "sys"},
            {"role": "user", "content": [{"type": "text", "text": "big doc",
                                          "cache_control": EPHEMERAL},
                                         {"type": "text", "text": "question"}]}])
    body = claude_api.last.body
    assert "cache_control" not in body["system"][-1]
    assert [("cache_control" in b) for b in body["messages"][0]["content"]] == [True, False]


@pytest.mark.parametrize(("status", "error", "kind"), [
    (429, openai.RateLimitError, "rate_limit_error"),
    (529, openai.InternalServerError, "overloaded_error"),
    (400, openai.BadRequestError, "invalid_request_error"),
    (401, openai.AuthenticationError, "authentication_error")])
async def test_errors_in_the_openai_envelope_with_the_same_status(
        start_daemon: StartDaemon, claude_api: FakeAnthropic, status: int,
        error: type[openai.APIStatusError], kind: str) -> None:
    d = await byok(start_daemon, claude_api)
    if status == 401:
        claude_api.knobs.api_key = "sk-ant-a-different-key"  # the user's key is refused
    else:
        claude_api.knobs.status = status
    async with d.sdk() as client:
        with pytest.raises(error) as info:
            await client.chat.completions.create(model=SONNET, messages=HELLO)
    exc = info.value
    assert exc.status_code == status
    envelope = exc.response.json()
    assert set(envelope) == {"error"}
    assert {"message", "type", "code", "param"} <= set(envelope["error"])
    if status in (401, 429):  # SPEC 5: the user's own key, said plainly
        assert "your own Anthropic key" in exc.message
    else:
        assert envelope["error"]["type"] == kind
    if status == 429:
        assert exc.response.headers["retry-after"] == "7"
    row = await one_row(d)
    assert (row["status"], row["http_status"]) == ("error", status)
    assert FAKE_KEY not in json.dumps(envelope) and FAKE_KEY not in (row["error"] or "")


async def test_mid_stream_error_event_ends_with_an_error_chunk(start_daemon: StartDaemon,
                                                               claude_api: FakeAnthropic
                                                               ) -> None:
    d = await byok(start_daemon, claude_api)
    claude_api.knobs.mid_error = True
    r = await call(d, "POST", "/v1/chat/completions", headers=auth(),
                   body={"model": SONNET, "messages": HELLO, "stream": True})
    evs = [data for _, data in events(r.raw)]
    assert r.status == 200 and evs[-1] == "[DONE]"
    err = evs[-2]
    assert err["error"]["message"] == "Overloaded"
    assert err["choices"][0]["finish_reason"] == "error"
    assert not [e for e in evs[:-2] if e["choices"] and e["choices"][0]["finish_reason"]]
    async with d.sdk() as client:
        stream = await client.chat.completions.create(model=SONNET, messages=HELLO, stream=True)
        with pytest.raises(openai.APIError, match="Overloaded"):
            async for _ in stream:
                pass
    rows = await settled(d.home, 2, d)
    assert [(r_["status"], r_["error"]) for r_ in rows] == [("error", "Overloaded")] * 2


async def test_a_cut_stream_is_reported_never_completed(start_daemon: StartDaemon,
                                                        claude_api: FakeAnthropic) -> None:
    d = await byok(start_daemon, claude_api)
    claude_api.knobs.cut_after = 5  # after message_start, the block start and three deltas
    r = await call(d, "POST", "/v1/chat/completions", headers=auth(),
                   body={"model": SONNET, "messages": HELLO, "stream": True})
    evs = [data for _, data in events(r.raw)]
    assert evs[-1] == "[DONE]"
    assert evs[-2]["choices"][0]["finish_reason"] == "error"
    assert "cut" in evs[-2]["error"]["message"]
    finished = [e for e in evs[:-2] if e["choices"] and e["choices"][0]["finish_reason"]]
    assert finished == []  # never dressed up as a complete answer
    row = await one_row(d)
    assert row["status"] == "error" and "cut" in row["error"]
