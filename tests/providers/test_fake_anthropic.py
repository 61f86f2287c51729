"""The strict fake Messages server, proven against the adapter: what the adapter sends is
accepted, what the real API refuses is refused, and its answers translate."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import aiohttp
import pytest

from localgate.providers import Target
from tests.fake_anthropic import FAKE_KEY, FakeAnthropic
from tests.providers.anthropic_helpers import ADAPTER, TARGET, frames

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]
HISTORY: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                                 {"type": "image_url",
                                  "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call.1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
    {"role": "user", "content": "Celsius please."},
    {"role": "tool", "tool_call_id": "call.1", "content": "18C"},
    {"role": "user", "content": "Thanks."},
]


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeAnthropic:
    f = FakeAnthropic()
    server = await aiohttp_server(f.app)
    f.url = str(server.make_url("")).rstrip("/")
    return f


def target(fake: FakeAnthropic) -> Target:
    return dataclasses.replace(TARGET, base_url=fake.url, api_key=FAKE_KEY)


async def send(fake: FakeAnthropic, body: dict[str, Any], *, stream: bool = False,
               t: Target | None = None) -> tuple[int, bytes]:
    """Build the call with the adapter and send it, as the gateway will."""
    call = ADAPTER.chat_call(body, t or target(fake), stream=stream, client_headers={})
    return await post(call.url, call.headers, call.body)


async def post(url: str, headers: dict[str, str], data: bytes) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as s, s.post(url, headers=headers, data=data) as r:
        return r.status, await r.read()


async def raw_post(fake: FakeAnthropic, body: Any, **headers: str) -> tuple[int, dict[str, Any]]:
    hdrs = {"x-api-key": FAKE_KEY, "anthropic-version": "2023-06-01",
            "content-type": "application/json", **headers}
    status, data = await post(f"{fake.url}/v1/messages", hdrs, json.dumps(body).encode())
    return status, json.loads(data)


def chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "anthropic/claude-sonnet-4.6", "messages": list(messages), **extra}


def ok_body(**extra: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-6", "max_tokens": 100,
            "messages": [{"role": "user", "content": "hi"}], **extra}


# -- the adapter's calls are accepted ---------------------------------------------------------

@pytest.mark.parametrize("extra", [
    {}, {"tools": TOOLS, "tool_choice": "required", "parallel_tool_calls": False},
    {"reasoning_effort": "high", "temperature": 0.2, "top_p": 0.5, "max_tokens": 2000},
    {"stop": ["END"], "user": "u-1", "stream_options": {"include_usage": True}, "n": 1},
])
async def test_the_adapters_calls_are_accepted(fake: FakeAnthropic, extra: dict[str, Any]) -> None:
    status, data = await send(fake, chat(*HISTORY, **extra))
    assert status == 200, data
    c = json.loads(ADAPTER.chat_response(data, target(fake)))
    assert c["choices"][0]["message"]["content"] == "Hello from the fake Messages API."
    assert fake.last.path == "/v1/messages"
    assert fake.last.headers["anthropic-version"] == "2023-06-01"


async def test_thinking_history_round_trips(fake: FakeAnthropic) -> None:
    """Turn 1 with thinking and a tool call; turn 2 echoes the reasoning_details back, which
    the API demands while thinking stays on."""
    fake.knobs.reply = "tool_use"
    first = chat({"role": "user", "content": "Weather?"}, tools=TOOLS, reasoning_effort="low")
    status, data = await send(fake, first)
    assert status == 200, data
    msg = json.loads(ADAPTER.chat_response(data, target(fake)))["choices"][0]["message"]
    assert msg["reasoning_details"][0]["signature"] and msg["tool_calls"]
    second = chat({"role": "user", "content": "Weather?"}, msg,
                  {"role": "tool", "tool_call_id": msg["tool_calls"][0]["id"], "content": "18C"},
                  tools=TOOLS, reasoning_effort="low")
    status, data = await send(fake, second)
    assert status == 200, data
    assert fake.last.body["thinking"]["type"] == "enabled"
    del msg["reasoning_details"]  # a client that drops them: thinking is left off, not a 400
    status, data = await send(fake, second)
    assert status == 200, data
    assert "thinking" not in fake.last.body


async def test_the_stream_is_the_real_event_sequence_and_translates(fake: FakeAnthropic) -> None:
    fake.knobs.reply = "tool_use"
    call = ADAPTER.chat_call(chat(*HISTORY, tools=TOOLS), target(fake), stream=True,
                             client_headers={})
    tr = ADAPTER.stream_translator(target(fake))
    assert tr is not None
    seen: list[bytes] = []
    out = b""
    async with aiohttp.ClientSession() as s, \
            s.post(call.url, headers=call.headers, data=call.body) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "text/event-stream"
        async for piece in r.content.iter_any():
            seen.append(piece)
            out += tr.feed(piece)
    out += tr.close()
    names = [line[7:] for line in b"".join(seen).split(b"\n") if line.startswith(b"event: ")]
    assert names[0] == b"message_start" and b"ping" in names and names[-1] == b"message_stop"
    got = frames(out)
    assert got[-1] == "[DONE]" and got[-3]["choices"][0]["finish_reason"] == "tool_calls"
    args = "".join(tc["function"]["arguments"] for c in got[:-1] if c["choices"]
                   for tc in c["choices"][0]["delta"].get("tool_calls", []))
    assert json.loads(args) == {"city": "Paris", "unit": "C"}


async def test_the_second_turn_reads_what_the_first_wrote(fake: FakeAnthropic) -> None:
    turn1 = [HISTORY[0], {"role": "user", "content": "Tell me a long story. " * 40}]
    status, data = await send(fake, chat(*turn1))
    first = json.loads(ADAPTER.chat_response(data, target(fake)))["usage"]
    assert first["prompt_tokens_details"]["cache_write_tokens"] > 0
    assert first["prompt_tokens_details"]["cached_tokens"] == 0
    reply = {"role": "assistant", "content": "Once upon a time."}
    status, data = await send(fake, chat(*turn1, reply, {"role": "user", "content": "More."}))
    second = json.loads(ADAPTER.chat_response(data, target(fake)))["usage"]
    assert second["prompt_tokens_details"]["cached_tokens"] == \
        first["prompt_tokens_details"]["cache_write_tokens"]
    assert second["prompt_tokens"] > first["prompt_tokens"]


# -- what the real API refuses is refused -----------------------------------------------------

USE = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}


def msgs(*pairs: tuple[str, Any]) -> dict[str, Any]:
    return ok_body(messages=[{"role": r, "content": c} for r, c in pairs])


@pytest.mark.parametrize(("body", "says"), [
    (msgs(("assistant", "hi"), ("user", "x")), 'first message must use the "user" role'),
    (msgs(("user", "a"), ("user", "b")), "roles must alternate"),
    (msgs(("user", "a"), ("assistant", "b"), ("user", [RESULT])), "unexpected `tool_use_id`"),
    (msgs(("user", "a"), ("assistant", [USE]), ("user", "b")), "without `tool_result` blocks"),
    (msgs(("user", "a"), ("assistant", [USE]), ("user", [{"type": "text", "text": "b"},
                                                         RESULT])), "at the beginning"),
    (msgs(("user", "")), "non-empty content"),
    (msgs(("user", [])), "non-empty content"),
    (msgs(("user", [{"type": "text", "text": ""}])), "text content blocks must be non-empty"),
    (msgs(("user", "a"), ("assistant", "b ")), "trailing whitespace"),
    ({k: v for k, v in ok_body().items() if k != "max_tokens"}, "max_tokens: Field required"),
    (ok_body(stream_options={"include_usage": True}), "stream_options: Extra inputs"),
    (ok_body(temperature=0.5, thinking={"type": "enabled", "budget_tokens": 1024},
             max_tokens=2000), "may only be set to 1 when thinking is enabled"),
    (ok_body(thinking={"type": "enabled", "budget_tokens": 1024}),
     "must be greater than `thinking.budget_tokens`"),
    (ok_body(temperature=0.5, top_p=0.9), "cannot both be specified"),
    (ok_body(system=[{"type": "text", "text": ""}]), "text content blocks must be non-empty"),
])
async def test_refused_like_the_real_api(fake: FakeAnthropic, body: dict[str, Any],
                                         says: str) -> None:
    status, data = await raw_post(fake, body)
    assert status == 400
    assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error"
    assert says in data["error"]["message"]


async def test_key_and_version_headers_are_checked(fake: FakeAnthropic) -> None:
    status, data = await raw_post(fake, ok_body(), **{"x-api-key": "sk-ant-wrong"})
    assert status == 401 and data["error"]["type"] == "authentication_error"
    status, data = await raw_post(fake, ok_body(), **{"anthropic-version": ""})
    assert status == 400 and "anthropic-version" in data["error"]["message"]
    assert (await raw_post(fake, ok_body()))[0] == 200


# -- faults -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "kind"), [(429, "rate_limit_error"),
                                              (529, "overloaded_error"), (500, "api_error")])
async def test_error_statuses_carry_anthropics_body(fake: FakeAnthropic, status: int,
                                                    kind: str) -> None:
    fake.knobs.status = status
    got, data = await send(fake, chat({"role": "user", "content": "hi"}))
    assert got == status and json.loads(data)["error"]["type"] == kind
    err = json.loads(ADAPTER.error_response(got, data, target(fake)))["error"]
    assert err["type"] == err["code"] == kind


async def test_mid_stream_error_and_cut(fake: FakeAnthropic) -> None:
    fake.knobs.mid_error = True
    status, data = await send(fake, chat({"role": "user", "content": "hi"}), stream=True)
    tr = ADAPTER.stream_translator(target(fake))
    assert tr is not None
    got = frames(tr.feed(data) + tr.close())
    assert got[-1] == "[DONE]" and got[-2]["error"]["type"] == "overloaded_error"
    fake.knobs = dataclasses.replace(fake.knobs, mid_error=False, cut_after=4)
    with pytest.raises(aiohttp.ClientPayloadError):
        await send(fake, chat({"role": "user", "content": "hi"}), stream=True)


async def test_hang_and_slow(fake: FakeAnthropic) -> None:
    fake.knobs.hang = True
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(send(fake, chat({"role": "user", "content": "hi"})), 0.3)
    fake.knobs = dataclasses.replace(fake.knobs, hang=False, event_delay=0.02)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    status, _ = await send(fake, chat({"role": "user", "content": "hi"}), stream=True)
    assert status == 200 and loop.time() - t0 >= 0.02 * 8
    assert len(fake.seen) == 2
