"""The main paths through the official openai SDK: non-stream, stream, tools, models.list()."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import Daemon, StartDaemon
from tests.fakes import FakeUpstream

HELLO = [{"role": "user", "content": "hi"}]


async def test_non_stream_byok_openai(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(OPENAI_API_KEY="sk-test-openai")
    async with d.sdk() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="openai/gpt-5.2", messages=HELLO)
    resp = raw.parse()
    assert resp.choices[0].message.content == "Hello from the fake upstream."
    assert resp.usage is not None and resp.usage.prompt_tokens == 11
    assert raw.headers["x-localgate-route"] == "byok"
    assert raw.headers["x-localgate-provider"] == "openai"
    assert raw.headers["x-localgate-model"] == "openai/gpt-5.2"
    assert raw.headers["x-request-id"].startswith("lg-")
    seen = fake.last
    assert seen.path == "/openai/v1/chat/completions"
    assert seen.body["model"] == "gpt-5.2"  # the provider's native id
    assert seen.headers["Authorization"] == "Bearer sk-test-openai"
    assert "stream_options" not in seen.body


async def test_stream_relays_chunks_and_drops_usage_chunk(start_daemon: StartDaemon,
                                                          fake: FakeUpstream) -> None:
    d = await start_daemon(OPENAI_API_KEY="sk-test-openai")
    fake.knobs.chunks = 5
    async with d.sdk() as client:
        stream = await client.chat.completions.create(model="openai/gpt-5.2", messages=HELLO,
                                                      stream=True)
        chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "tok0 tok1 tok2 tok3 tok4 "
    # usage was requested upstream ...
    assert fake.last.body["stream_options"] == {"include_usage": True}
    # ... and the usage-only chunk dropped again because the client did not ask for it
    assert all(c.choices for c in chunks)


async def test_stream_keeps_usage_when_client_asked(start_daemon: StartDaemon,
                                                    fake: FakeUpstream) -> None:
    d = await start_daemon(OPENAI_API_KEY="sk-test-openai")
    async with d.sdk() as client:
        stream = await client.chat.completions.create(
            model="openai/gpt-5.2", messages=HELLO, stream=True,
            stream_options={"include_usage": True})
        chunks = [c async for c in stream]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 7


async def test_tools_round_trip(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(OPENAI_API_KEY="sk-test-openai")
    fake.knobs.tool_call = True
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    async with d.sdk() as client:
        resp = await client.chat.completions.create(model="openai/gpt-5.2", messages=HELLO,
                                                    tools=tools)
    call = resp.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and resp.choices[0].finish_reason == "tool_calls"
    assert fake.last.body["tools"] == tools


async def test_tool_history_is_repaired_before_forwarding(start_daemon: StartDaemon,
                                                          fake: FakeUpstream) -> None:
    d = await start_daemon(OPENAI_API_KEY="sk-test-openai")
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "tool", "tool_call_id": "orphan", "content": "stray"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "user", "content": "continue"},
    ]
    async with d.sdk() as client:
        await client.chat.completions.create(model="openai/gpt-5.2", messages=messages)
    sent = fake.last.body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "user"]
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1",
                       "content": "Tool execution was interrupted before completion."}


async def test_models_list(daemon: Daemon) -> None:
    async with daemon.sdk() as client:
        page = await client.models.list()
    ids = [m.id for m in page.data]
    assert "anthropic/claude-sonnet-4.6" in ids and "kilo-auto/frontier" in ids
    assert len(ids) > 300
    sonnet = next(m for m in page.data if m.id == "anthropic/claude-sonnet-4.6")
    extra = sonnet.model_extra or {}
    assert extra["pricing"]["prompt"] == "0.000003"
    assert extra["preferredIndex"] == 1
    assert sonnet.owned_by == "anthropic"


async def test_unknown_fields_pass_through(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(OPENAI_API_KEY="sk-test-openai")
    async with d.sdk() as client:
        await client.chat.completions.create(
            model="openai/gpt-5.2", messages=HELLO,
            extra_body={"reasoning": {"effort": "high"}, "brand_new_param": [1, 2]})
    # OpenRouter's `reasoning` object reaches OpenAI as OpenAI's own reasoning_effort
    assert fake.last.body["reasoning_effort"] == "high" and "reasoning" not in fake.last.body
    assert fake.last.body["brand_new_param"] == [1, 2]


async def test_sdk_sees_upstream_error_status(start_daemon: StartDaemon,
                                              fake: FakeUpstream) -> None:
    d = await start_daemon(KILO_API_KEY="kilo-test")
    fake.knobs.status = 400
    async with d.sdk() as client:
        with pytest.raises(openai.BadRequestError) as exc:
            await client.chat.completions.create(model="anthropic/claude-sonnet-4.6",
                                                 messages=HELLO)
    assert "fake upstream says 400" in str(exc.value)
