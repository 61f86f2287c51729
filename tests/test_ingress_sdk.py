"""The ingress codecs under the official SDKs, over real HTTP: a small aiohttp app on 127.0.0.1
plays the daemon's part (codec in, a canned chat reply or chat stream out through the codec,
written in small pieces as a network would deliver it), and `anthropic` / `openai` talk to it
exactly as they talk to Anthropic and OpenAI."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from typing import Any

import anthropic
import openai
import pytest
from aiohttp import web

from localgate.errors import GatewayError
from localgate.ingress import messages, responses
from tests.chatsse import RICH, RICH_MESSAGE, TEXT, chunk, stream

TOOLS_A = [{"name": "read_file", "description": "Read a file", "input_schema": {
    "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}]
TOOLS_O = [{"type": "function", "name": "read_file", "description": "Read a file",
            "parameters": TOOLS_A[0]["input_schema"], "strict": False}]


class FakeDaemon:
    """What the lead's handler will do around the codecs, with a canned upstream reply."""

    def __init__(self) -> None:
        self.chat_stream: bytes = stream(RICH)
        self.seen: list[dict[str, Any]] = []  # the chat bodies the codecs produced
        self.app = web.Application()
        self.app.router.add_post("/v1/messages", self.messages)
        self.app.router.add_post("/v1/responses", self.responses)

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        try:
            chat = messages.to_chat(body)
        except GatewayError as exc:
            return web.json_response(messages.error_body(exc.status, exc.envelope()),
                                     status=exc.status)
        self.seen.append(chat)
        if not chat.get("stream"):
            return web.json_response(messages.from_chat(copy.deepcopy(RICH_MESSAGE),
                                                        model=body["model"]))
        enc = messages.StreamEncoder(model=body["model"])
        return await self._stream(request, enc.feed, enc.close, enc.ping())

    async def responses(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        try:
            chat = responses.to_chat(body)
        except GatewayError as exc:
            return web.json_response(responses.error_body(exc.status, exc.envelope()),
                                     status=exc.status)
        self.seen.append(chat)
        if not chat.get("stream"):
            return web.json_response(responses.from_chat(
                copy.deepcopy(RICH_MESSAGE), model=body["model"], request=body))
        enc = responses.StreamEncoder(model=body["model"], request=body)
        return await self._stream(request, enc.feed, enc.close, b"")

    async def _stream(self, request: web.Request, feed: Callable[[bytes], bytes],
                      close: Callable[[], bytes], first: bytes) -> web.StreamResponse:
        out = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await out.prepare(request)
        await out.write(first)
        raw = self.chat_stream
        for i in range(0, len(raw), 7):  # 7-byte pieces: events and characters split
            data = feed(raw[i:i + 7])
            if data:
                await out.write(data)
        await out.write(close())
        return out


@pytest.fixture
async def fake_daemon(aiohttp_server: Any) -> tuple[FakeDaemon, str]:
    d = FakeDaemon()
    server = await aiohttp_server(d.app)
    return d, str(server.make_url("")).rstrip("/")


@pytest.fixture
async def claude(fake_daemon: tuple[FakeDaemon, str]) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=fake_daemon[1], api_key="lg-key",
                                        max_retries=0) as client:
        yield client


@pytest.fixture
async def oai(fake_daemon: tuple[FakeDaemon, str]) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=fake_daemon[1] + "/v1", api_key="lg-key",
                                  max_retries=0) as client:
        yield client


async def test_anthropic_sdk_stream_and_multi_turn_tools(
        fake_daemon: tuple[FakeDaemon, str], claude: anthropic.AsyncAnthropic) -> None:
    d, _ = fake_daemon
    history: list[Any] = [{"role": "user", "content": "read a.txt and list src"}]
    async with claude.messages.stream(model="openai/gpt-5.2", max_tokens=512, tools=TOOLS_A,
                                      messages=history) as s:
        texts = [t async for t in s.text_stream]
        msg = await s.get_final_message()
    assert "".join(texts) == "Voilà: two calls 🚀"
    assert [b.type for b in msg.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert msg.content[2].input == {"path": "a.txt"} and msg.stop_reason == "tool_use"
    assert msg.usage.input_tokens == 30 and msg.usage.cache_read_input_tokens == 80
    # the next turn sends the assistant message back with the tool results
    history += [msg.to_param(), {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_a", "content": "alpha"},
        {"type": "tool_result", "tool_use_id": "call_b", "content": "beta"}]}]
    reply = await claude.messages.create(model="openai/gpt-5.2", max_tokens=512,
                                         tools=TOOLS_A, messages=history)
    assert reply.content[1].text == "Voilà: two calls 🚀"
    turn = d.seen[-1]["messages"]
    assert [x["role"] for x in turn] == ["user", "assistant", "tool", "tool"]
    assert turn[1]["reasoning_details"][0]["signature"] == "c2ln=="
    assert [c["id"] for c in turn[1]["tool_calls"]] == ["call_a", "call_b"]


async def test_anthropic_sdk_sees_a_bad_request_as_its_own_error(
        claude: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as exc:
        await claude.messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}],
            tools=[{"type": "web_search_20250305", "name": "web_search"}])
    assert exc.value.status_code == 400
    assert exc.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "server tool" in str(exc.value)


async def test_anthropic_sdk_raises_on_a_failed_stream(
        fake_daemon: tuple[FakeDaemon, str], claude: anthropic.AsyncAnthropic) -> None:
    d, _ = fake_daemon
    err = chunk({"content": ""}, "error")
    err["error"] = {"message": "the connection to OpenAI was cut mid-stream", "code": 502}
    d.chat_stream = stream(TEXT[:3] + [err])
    with pytest.raises(anthropic.APIStatusError) as exc:
        async with claude.messages.stream(model="m", max_tokens=10,
                                          messages=[{"role": "user", "content": "x"}]) as s:
            async for _ in s:
                pass
    assert "cut mid-stream" in str(exc.value)
    d.chat_stream = stream(TEXT[:3], done=False)  # cut without a word from upstream
    with pytest.raises(anthropic.APIStatusError, match="cut off"):
        async with claude.messages.stream(model="m", max_tokens=10,
                                          messages=[{"role": "user", "content": "x"}]) as s:
            async for _ in s:
                pass


async def test_openai_sdk_responses_stream_and_create(
        fake_daemon: tuple[FakeDaemon, str], oai: openai.AsyncOpenAI) -> None:
    d, _ = fake_daemon
    async with oai.responses.stream(model="anthropic/claude-sonnet-4.6", input="go",
                                    tools=TOOLS_O, instructions="be brief") as s:
        deltas = [e.delta async for e in s if e.type == "response.output_text.delta"]
        final = await s.get_final_response()
    assert "".join(deltas) == "Voilà: two calls 🚀" == final.output_text
    calls = [o for o in final.output if o.type == "function_call"]
    assert [(c.call_id, c.arguments) for c in calls] == [("call_a", '{"path": "a.txt"}'),
                                                          ("call_b", '{"dir": "src"}')]
    assert final.usage is not None and final.usage.total_tokens == 150
    assert d.seen[-1]["messages"][0] == {"role": "system", "content": "be brief"}
    # the next turn: the calls and their outputs go back as items
    again = await oai.responses.create(model="anthropic/claude-sonnet-4.6", tools=TOOLS_O,
                                       input=[{"role": "user", "content": "go"}, *[
                                           {"type": "function_call", "call_id": c.call_id,
                                            "name": c.name, "arguments": c.arguments}
                                           for c in calls], {
                                           "type": "function_call_output",
                                           "call_id": "call_a", "output": "alpha"}])
    assert again.status == "completed" and again.output_text == "Voilà: two calls 🚀"
    assert [m["role"] for m in d.seen[-1]["messages"]] == ["user", "assistant", "tool"]


async def test_openai_sdk_refused_previous_response_id(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        await oai.responses.create(model="m", input="x", previous_response_id="resp_1")
    assert "does not keep responses" in str(exc.value)
    assert exc.value.param == "previous_response_id"


async def test_openai_sdk_sees_a_failed_stream(fake_daemon: tuple[FakeDaemon, str],
                                               oai: openai.AsyncOpenAI) -> None:
    d, _ = fake_daemon
    d.chat_stream = stream(TEXT[:3], done=False)
    seen: list[str] = []
    async with oai.responses.stream(model="m", input="x") as s:
        async for e in s:
            seen.append(e.type)
    assert seen[-2:] == ["error", "response.failed"]
    assert "response.completed" not in seen
