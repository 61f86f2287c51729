"""End to end: the official `anthropic` Python SDK (and Claude Code's own request shapes) ->
POST /v1/messages on a running daemon. An Anthropic model with the user's Anthropic key is
passed through to the strict fake Messages API byte for byte; every other model is translated to
chat, routed and controlled like chat (tests/fakes.py upstreams), and translated back.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import anthropic
from anthropic._constants import ANTHROPIC_API_VERSION
import pytest
from aiohttp import web

from localgate.server import inference
from tests.conftest import LOCAL_KEY, Daemon, StartDaemon
from tests.e2e import (GPT, KILO_KEY, OPENAI_KEY, SONNET, SONNET_NATIVE, XAI_KEY, anthropic_at,
                       claude_api, cost_of, events, one_row, prices, settled)
from tests.fake_anthropic import FAKE_KEY, FakeAnthropic
from tests.fakes import FakeUpstream

__all__ = ["claude_api"]  # the fixture, imported for pytest

HELLO: list[Any] = [{"role": "user", "content": "hi"}]
TOOLS = [{"name": "get_weather", "description": "The weather in a city", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
BETA = "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"

# Claude Code's request, in the shape its public docs and captured traffic show: `?beta=true`,
# the anthropic-beta list, X-Claude-Code-Session-Id, system as text blocks (a billing line, the
# identity line and the prompt, the last two with cache_control), a system-reminder block before
# the user's text, tools with JSON-Schema input_schema, metadata.user_id, thinking, stream.
CLAUDE_CODE: dict[str, Any] = {
    "model": "claude-sonnet-4-5-20250929",
    "max_tokens": 32000,
    "system": [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.0.14; "
                                 "cc_entrypoint=cli;"},
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.",
         "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "You are an interactive CLI tool that helps users with "
                                 "software engineering tasks.",
         "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>\nThe working directory is /home/u/app.\n"
                                 "</system-reminder>"},
        {"type": "text", "text": "list the files", "cache_control": {"type": "ephemeral"}}]}],
    "tools": [{"name": "Bash", "description": "Executes a bash command",
               "input_schema": {"type": "object", "properties": {
                   "command": {"type": "string", "description": "The command to execute"},
                   "timeout": {"type": "number"}},
                   "required": ["command"], "additionalProperties": False,
                   "$schema": "http://json-schema.org/draft-07/schema#"}}],
    "metadata": {"user_id": "user_3f2a9c0d1e_account__session_"
                             "6c1d1b7e-0b8e-4a5c-9d0f-2a1b3c4d5e6f"},
    "thinking": {"type": "enabled", "budget_tokens": 31999},
    "temperature": 1,
    "stream": True,
}
# the SDK warns about the dated id Claude Code still sends; the warning is not the subject here
DATED_ID_DEPRECATED = pytest.mark.filterwarnings(
    "ignore:The model 'claude-sonnet-4-5-20250929' is deprecated:DeprecationWarning")
CLAUDE_CODE_HEADERS = {"anthropic-beta": BETA, "x-app": "cli",
                       "User-Agent": "claude-cli/2.0.14 (external, cli)",
                       "X-Claude-Code-Session-Id": "6c1d1b7e-0b8e-4a5c-9d0f-2a1b3c4d5e6f"}


def sdk_body(body: dict[str, Any]) -> dict[str, Any]:
    """A raw Messages body as SDK keyword arguments (what this SDK version has no parameter
    for goes in extra_body; `stream` is the caller's)."""
    named = {"model", "max_tokens", "system", "messages", "tools", "metadata", "thinking"}
    out = {k: v for k, v in body.items() if k in named}
    out["extra_body"] = {k: v for k, v in body.items() if k not in named | {"stream"}}
    return out


def claude(d: Daemon, how: str = "bearer", key: str = LOCAL_KEY,
           **kw: Any) -> anthropic.AsyncAnthropic:
    """The SDK pointed at the daemon's root, the local key as Bearer (ANTHROPIC_AUTH_TOKEN, as
    Claude Code sends it) or as x-api-key."""
    kw.setdefault("max_retries", 0)
    if how == "x-api-key":
        return anthropic.AsyncAnthropic(base_url=d.url, api_key="unused", default_headers={
            "Authorization": anthropic.Omit(), "x-api-key": key}, **kw)
    return anthropic.AsyncAnthropic(base_url=d.url, auth_token=key, **kw)


async def raw_stream(c: anthropic.AsyncAnthropic, **body: Any) -> tuple[bytes, Any]:
    """The bytes of a streamed answer as the client received them, and its headers."""
    async with c.messages.with_streaming_response.create(stream=True, **body) as resp:
        return b"".join([chunk async for chunk in resp.iter_bytes()]), resp.headers


# ---- (a) Anthropic models with the user's Anthropic key: passed through ----------------------

@pytest.mark.parametrize("how", ["x-api-key", "bearer"])
async def test_passed_through_byte_for_byte(start_daemon: StartDaemon,
                                            claude_api: FakeAnthropic, how: str) -> None:
    d = await start_daemon(anthropic_at(claude_api), ANTHROPIC_API_KEY=FAKE_KEY)
    async with claude(d, how) as c:
        raw = await c.messages.with_raw_response.create(
            model=SONNET_NATIVE, max_tokens=300, messages=HELLO, system="Be terse.",
            extra_headers={"anthropic-beta": "token-efficient-tools-2025-02-19"})
        got, headers = await raw_stream(c, model=SONNET, max_tokens=300, messages=HELLO)
        async with c.messages.stream(model=SONNET, max_tokens=300, messages=HELLO) as s:
            final = await s.get_final_message()
    assert raw.http_response.content == claude_api.sent[0]  # the upstream's own bytes
    msg = await raw.parse()
    assert msg.content[0].text == claude_api.knobs.text and msg.stop_reason == "end_turn"
    first = claude_api.seen[0]
    assert first.body == {"model": SONNET_NATIVE, "max_tokens": 300, "messages": HELLO,
                          "system": "Be terse."}  # untranslated: no breakpoints added
    assert first.headers["anthropic-version"] == ANTHROPIC_API_VERSION  # the SDK's own
    assert first.headers["anthropic-beta"] == "token-efficient-tools-2025-02-19"
    assert first.headers["x-api-key"] == FAKE_KEY
    assert LOCAL_KEY not in json.dumps(first.headers)
    stream_bytes = b"".join(claude_api.sent[1:1 + len(events(got))])
    assert got == stream_bytes
    names = [name for name, _ in events(got)]
    assert names[0] == "message_start" and names[-1] == "message_stop" and "ping" in names
    assert claude_api.seen[1].body["model"] == SONNET_NATIVE  # a catalog id made native
    assert final.content[0].text == claude_api.knobs.text
    assert (raw.headers["x-localgate-route"], raw.headers["x-localgate-model"],
            headers["x-localgate-upstream"]) == ("byok", SONNET, "anthropic")
    rows = await settled(d.home, 3, d)
    p = await prices(d.url, SONNET)
    for row, stream in zip(rows, (False, True, True), strict=True):
        assert (row["route"], row["provider"], row["stream"], row["status"]) == \
            ("byok", "anthropic", stream, "ok")
        assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
        assert row["cost_source"] == "catalog" and row["cost_microdollars"] == cost_of(p, row)
    assert rows[0]["prompt_tokens"] == msg.usage.input_tokens
    assert rows[0]["completion_tokens"] == msg.usage.output_tokens


async def test_passed_through_errors_and_mid_stream_error(start_daemon: StartDaemon,
                                                          claude_api: FakeAnthropic) -> None:
    d = await start_daemon(anthropic_at(claude_api), ANTHROPIC_API_KEY=FAKE_KEY)
    claude_api.knobs.status = 529
    async with claude(d) as c:
        with pytest.raises(anthropic.APIStatusError) as info:
            await c.messages.create(model=SONNET, max_tokens=10, messages=HELLO)
        assert info.value.status_code == 529
        assert info.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
        claude_api.knobs.status, claude_api.knobs.mid_error = 200, True
        with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
            async with c.messages.stream(model=SONNET, max_tokens=10, messages=HELLO) as s:
                async for _ in s:
                    pass
    rows = await settled(d.home, 2, d)
    assert [r["status"] for r in rows] == ["error", "error"]


# ---- (b) every other model: translated ---------------------------------------------------------

async def test_translated_text_and_stream(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(OPENAI_API_KEY=OPENAI_KEY)
    async with claude(d, "x-api-key") as c:
        raw = await c.messages.with_raw_response.create(model=GPT, max_tokens=100,
                                                        messages=HELLO, system="Be terse.")
        got, headers = await raw_stream(c, model=GPT, max_tokens=100, messages=HELLO)
        async with c.messages.stream(model=GPT, max_tokens=100, messages=HELLO) as s:
            text = "".join([t async for t in s.text_stream])
            final = await s.get_final_message()
    msg = await raw.parse()
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == "Hello from the fake upstream."
    assert (msg.stop_reason, msg.usage.input_tokens, msg.usage.output_tokens) == \
        ("end_turn", 11, 7)
    sent = fake.seen[0]
    assert sent.path == "/openai/v1/chat/completions"
    assert sent.body["messages"] == [{"role": "system", "content": "Be terse."}, *HELLO]
    assert sent.body["max_completion_tokens"] == 100
    names = [name for name, _ in events(got)]
    assert names[:2] == ["ping", "message_start"]
    assert names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_delta") == 3
    assert text == "tok0 tok1 tok2 " and final.usage.output_tokens == 7
    for h in (raw.headers, headers):
        assert (h["x-localgate-route"], h["x-localgate-provider"], h["x-localgate-model"],
                h["x-localgate-upstream"]) == ("byok", "openai", GPT, "openai")
        assert h["x-request-id"].startswith("lg-")
    rows = await settled(d.home, 3, d)
    assert {(r["route"], r["provider"], r["prompt_tokens"], r["completion_tokens"],
             r["cost_source"]) for r in rows} == {("byok", "openai", 11, 7, "catalog")}


async def test_translated_stream_pings_while_the_first_chunk_is_awaited(
        start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(OPENAI_API_KEY=OPENAI_KEY)
    fake.knobs.chunk_delay = 0.2
    async with claude(d) as c, c.messages.with_streaming_response.create(
            stream=True, model=GPT, max_tokens=100, messages=HELLO) as resp:
        chunks = resp.iter_bytes()
        first = await chunks.__anext__()  # sent before the upstream's first chunk came
        rest = b"".join([chunk async for chunk in chunks])
    assert events(first)[0][0] == "ping"
    names = [name for name, _ in events(first + rest)]
    assert names.count("ping") == 1 and names[-1] == "message_stop"


KEEPALIVE = b'event: ping\ndata: {"type": "ping"}\n\n'


async def test_a_silent_translated_stream_gets_keepalive_pings_between_events(
        start_daemon: StartDaemon, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    # a model thinking for minutes says nothing; Claude Code calls such a stream stalled
    monkeypatch.setattr(inference, "KEEPALIVE_S", 0.1)
    d = await start_daemon(OPENAI_API_KEY=OPENAI_KEY)
    fake.knobs.chunk_delay = 0.35
    async with claude(d) as c:
        got, _ = await raw_stream(c, model=GPT, max_tokens=100, messages=HELLO)
        async with c.messages.stream(model=GPT, max_tokens=100, messages=HELLO) as s:
            final = await s.get_final_message()  # the SDK reads through the pings
    names = [name for name, _ in events(got)]  # every event whole: pings fell between them
    assert names.count("ping") >= 4 and names[-1] == "message_stop"
    assert [n for n in names if n != "ping"][0] == "message_start"
    assert final.stop_reason == "end_turn" and final.content[0].text
    rows = await settled(d.home, 2, d)
    assert [r["status"] for r in rows] == ["ok", "ok"]


async def test_a_silent_passed_through_stream_gets_pings_and_its_own_bytes_unchanged(
        start_daemon: StartDaemon, claude_api: FakeAnthropic,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inference, "KEEPALIVE_S", 0.1)
    d = await start_daemon(anthropic_at(claude_api), ANTHROPIC_API_KEY=FAKE_KEY)
    claude_api.knobs.event_delay = 0.25
    async with claude(d) as c:
        got, _ = await raw_stream(c, model=SONNET, max_tokens=300, messages=HELLO)
    assert got.count(KEEPALIVE) >= 3
    assert got.replace(KEEPALIVE, b"") == b"".join(claude_api.sent)  # Anthropic's bytes, whole
    assert [name for name, _ in events(got)][-1] == "message_stop"


async def test_a_client_gone_during_a_silence_leaves_client_closed(
        start_daemon: StartDaemon, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inference, "KEEPALIVE_S", 0.05)
    d = await start_daemon(OPENAI_API_KEY=OPENAI_KEY)
    fake.knobs.chunk_delay = 0.5
    async with claude(d) as c, c.messages.with_streaming_response.create(
            stream=True, model=GPT, max_tokens=100, messages=HELLO) as resp:
        chunks = resp.iter_bytes()
        await chunks.__anext__()
        await chunks.__anext__()  # a ping at least, during the silence
    [row] = await settled(d.home, 1, d)
    assert row["status"] == "client_closed"


async def test_translated_multi_turn_tool_conversation(start_daemon: StartDaemon,
                                                       fake: FakeUpstream) -> None:
    d = await start_daemon(OPENAI_API_KEY=OPENAI_KEY)
    fake.knobs.tool_call, fake.knobs.chunks = True, 2
    history: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    async with claude(d) as c:
        got, _ = await raw_stream(c, model=GPT, max_tokens=100, messages=history, tools=TOOLS)
        async with c.messages.stream(model=GPT, max_tokens=100, messages=history,
                                     tools=TOOLS) as s:
            streamed = await s.get_final_message()
        msg = await c.messages.create(model=GPT, max_tokens=100, messages=history, tools=TOOLS,
                                      tool_choice={"type": "any"})
        fake.knobs.tool_call = False
        use = msg.content[0]
        history += [msg.to_param(), {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": use.id, "content": "18C"},
            {"type": "text", "text": "and tomorrow?"}]}]
        again = await c.messages.create(model=GPT, max_tokens=100, messages=history,
                                        tools=TOOLS)
    deltas = [data["delta"] for name, data in events(got) if name == "content_block_delta"]
    assert [x["type"] for x in deltas] == ["input_json_delta"]
    assert streamed.stop_reason == "tool_use"
    assert (streamed.content[0].type, streamed.content[0].input) == ("tool_use", {"c": 1})
    assert (use.type, use.name, use.input) == ("tool_use", "get_weather", {"city": "Paris"})
    assert fake.seen[2].body["tool_choice"] == "required"
    assert fake.seen[2].body["tools"][0]["function"]["parameters"] == TOOLS[0]["input_schema"]
    assert again.content[0].text == "Hello from the fake upstream."
    turn = fake.last.body["messages"]
    assert [m["role"] for m in turn] == ["user", "assistant", "tool", "user"]
    assert turn[1]["tool_calls"][0]["id"] == use.id == turn[2]["tool_call_id"]
    assert turn[2]["content"] == "18C"


def reasoning_app() -> web.Application:
    """An OpenAI-format upstream (xAI's shape) whose model reasons before it answers."""

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        usage = {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29,
                 "completion_tokens_details": {"reasoning_tokens": 5}}
        if not body.get("stream"):
            return web.json_response({
                "id": "c1", "object": "chat.completion", "created": 1, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "message": {
                    "role": "assistant", "content": "42.", "reasoning_content": "Six by seven."}}],
                "usage": usage})
        out = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await out.prepare(request)
        deltas = [{"role": "assistant", "reasoning_content": "Six "},
                  {"reasoning_content": "by seven."}, {"content": "42."}]
        for i, delta in enumerate(deltas + [{}]):
            chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1,
                     "model": body["model"], "choices": [
                         {"index": 0, "delta": delta, "finish_reason": "stop" if i == 3 else None}]}
            await out.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        final = {"id": "c1", "object": "chat.completion.chunk", "created": 1,
                 "model": body["model"], "choices": [], "usage": usage}
        await out.write(b"data: " + json.dumps(final).encode() + b"\n\ndata: [DONE]\n\n")
        return out

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


async def test_translated_thinking_where_the_model_reasons(start_daemon: StartDaemon,
                                                          aiohttp_server: Any) -> None:
    server = await aiohttp_server(reasoning_app())
    d = await start_daemon({"providers": {"x-ai": {"base_url": str(server.make_url("/v1"))}}},
                           XAI_API_KEY=XAI_KEY)
    model = "x-ai/grok-code-fast-1"
    async with claude(d) as c:
        msg = await c.messages.create(model=model, max_tokens=2000, messages=HELLO,
                                      thinking={"type": "enabled", "budget_tokens": 1024})
        got, _ = await raw_stream(c, model=model, max_tokens=2000, messages=HELLO)
    assert [(b.type, getattr(b, "thinking", None) or getattr(b, "text", None))
            for b in msg.content] == [("thinking", "Six by seven."), ("text", "42.")]
    evs = events(got)
    starts = [data["content_block"]["type"] for name, data in evs
              if name == "content_block_start"]
    assert starts == ["thinking", "text"]
    thought = "".join(data["delta"].get("thinking", "") for name, data in evs
                      if name == "content_block_delta")
    assert thought == "Six by seven."
    assert evs[-2][1]["usage"]["output_tokens"] == 9


@DATED_ID_DEPRECATED
@pytest.mark.parametrize(("model", "route", "path"), [
    ("kilo-auto/free", "free", "/api/gateway/chat/completions"),
    ("localgate/default", "gateway", "/api/gateway/chat/completions"),
    ("claude-sonnet-4-6", "gateway", "/api/gateway/chat/completions"),
    ("claude-sonnet-4-5-20250929", "gateway", "/api/gateway/chat/completions")])
async def test_virtual_and_bare_ids_routed_like_chat(start_daemon: StartDaemon,
                                                     fake: FakeUpstream, model: str, route: str,
                                                     path: str) -> None:
    d = await start_daemon(KILO_API_KEY=KILO_KEY)
    async with claude(d) as c:
        raw = await c.messages.with_raw_response.create(model=model, max_tokens=50,
                                                        messages=HELLO)
    msg = await raw.parse()
    assert msg.content[0].text == "Hello from the fake upstream."
    assert msg.model == model  # the id the client asked for
    resolved = raw.headers["x-localgate-model"]
    assert raw.headers["x-localgate-route"] == route and fake.last.path == path
    assert fake.last.body["model"] == resolved
    assert fake.last.headers["Authorization"] == f"Bearer {KILO_KEY}"
    if model.startswith("claude-"):
        assert resolved == {"claude-sonnet-4-6": SONNET,
                            "claude-sonnet-4-5-20250929": "anthropic/claude-sonnet-4.5"}[model]
    row = await one_row(d)
    assert (row["model"], row["resolved_model"], row["route"]) == (model, resolved, route)


async def test_errors_are_the_sdks_own(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    token = await create_token("vscode")
    d = await start_daemon({"limits": {"daily_usd": 0.00001},
                            "clients": {"vscode": {"allow_models": ["anthropic/*"]}}},
                           OPENAI_API_KEY=OPENAI_KEY)
    cases: list[tuple[Any, dict[str, Any], type[anthropic.APIStatusError], int, str]] = [
        ("lg-wrong-key", {"model": GPT}, anthropic.AuthenticationError, 401,
         "authentication_error"),
        (None, {"model": "nope/model"}, anthropic.NotFoundError, 404, "not_found_error"),
        (None, {"model": GPT, "max_tokens": 0}, anthropic.BadRequestError, 400,
         "invalid_request_error"),
        (None, {"model": GPT, "tools": [{"type": "web_search_20250305", "name": "s"}]},
         anthropic.BadRequestError, 400, "invalid_request_error")]
    for key, body, error, status, kind in cases:
        async with claude(d, key=key or LOCAL_KEY) as c:
            with pytest.raises(error) as info:
                await c.messages.create(**{"max_tokens": 10, "messages": HELLO, **body})
        assert info.value.status_code == status
        assert info.value.body["type"] == "error"  # type: ignore[index]
        assert info.value.body["error"]["type"] == kind, body  # type: ignore[index]
    async with claude(d) as c:  # over the daily limit after one request
        await c.messages.create(model=GPT, max_tokens=10, messages=HELLO)
        with pytest.raises(anthropic.APIStatusError) as over:
            await c.messages.create(model=GPT, max_tokens=10, messages=HELLO)
    assert over.value.status_code == 402
    assert over.value.body["error"]["type"] == "billing_error"  # type: ignore[index]
    assert "limit" in over.value.message
    async with claude(d, key=token) as c:
        with pytest.raises(anthropic.PermissionDeniedError) as denied:
            await c.messages.create(model=GPT, max_tokens=10, messages=HELLO)
    assert denied.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    rows = await settled(d.home, 6, d)  # a wrong local key is refused before any row
    assert [(r["http_status"], r["status"]) for r in rows] == [
        (404, "refused"), (400, "error"), (400, "error"), (200, "ok"), (402, "refused"),
        (403, "refused")]
    assert rows[-1]["client"] == "vscode"


async def create_token(name: str) -> str:
    from tests.test_daemon import acli
    code, out, err = await acli("token", "create", name)  # the CLI, as a user creates one
    assert code == 0, err
    return out.strip().splitlines()[-1]


# ---- Claude Code's own shapes ---------------------------------------------------------------

@DATED_ID_DEPRECATED
async def test_claude_code_passed_through_to_anthropic(start_daemon: StartDaemon,
                                                      claude_api: FakeAnthropic) -> None:
    d = await start_daemon(anthropic_at(claude_api), ANTHROPIC_API_KEY=FAKE_KEY)
    body = copy.deepcopy(CLAUDE_CODE)
    async with claude(d) as c:
        got, headers = await raw_stream(
            c, **sdk_body(body),
            extra_headers=CLAUDE_CODE_HEADERS, extra_query={"beta": "true"})
    seen = claude_api.last
    assert seen.body == {**body, "model": "claude-sonnet-4-5-20250929"}
    assert seen.headers["anthropic-beta"] == BETA
    assert got == b"".join(claude_api.sent)
    starts = [d_["content_block"]["type"] for n, d_ in events(got) if n == "content_block_start"]
    assert starts == ["thinking", "text"]
    assert headers["x-localgate-model"] == "anthropic/claude-sonnet-4.5"


@DATED_ID_DEPRECATED
@pytest.mark.parametrize(("model", "env", "path"), [
    (GPT, {"OPENAI_API_KEY": OPENAI_KEY}, "/openai/v1/chat/completions"),
    ("claude-sonnet-4-5-20250929", {"KILO_API_KEY": KILO_KEY}, "/api/gateway/chat/completions")])
async def test_claude_code_translated(start_daemon: StartDaemon, fake: FakeUpstream, model: str,
                                      env: dict[str, str], path: str) -> None:
    d = await start_daemon(**env)
    body = {**copy.deepcopy(CLAUDE_CODE), "model": model}
    async with claude(d) as c:
        got, _ = await raw_stream(c, **sdk_body(body),
                                  extra_headers=CLAUDE_CODE_HEADERS, extra_query={"beta": "true"})
    chat = fake.last.body
    assert fake.last.path == path and chat["stream"] is True
    system = chat["messages"][0]
    assert system["role"] == "system"
    assert [p.get("cache_control") for p in system["content"]] == \
        [None, {"type": "ephemeral"}, {"type": "ephemeral"}]
    assert chat["messages"][1]["content"][0]["text"].startswith("<system-reminder>")
    assert chat["tools"][0]["function"]["parameters"] == CLAUDE_CODE["tools"][0]["input_schema"]
    assert chat["user"] == CLAUDE_CODE["metadata"]["user_id"]
    if path.startswith("/api/gateway"):  # the gateway takes OpenRouter's reasoning object
        assert chat["reasoning"] == {"max_tokens": 31999}
        assert chat["max_tokens"] == 32000
    names = [name for name, _ in events(got)]
    assert names[:2] == ["ping", "message_start"] and names[-1] == "message_stop"
    text = "".join(data["delta"].get("text", "") for name, data in events(got)
                   if name == "content_block_delta")
    assert text == "tok0 tok1 tok2 "


# ---- count_tokens --------------------------------------------------------------------------

async def test_count_tokens_anthropics_own_or_an_estimate(start_daemon: StartDaemon,
                                                          claude_api: FakeAnthropic,
                                                          fake: FakeUpstream) -> None:
    d = await start_daemon(anthropic_at(claude_api), ANTHROPIC_API_KEY=FAKE_KEY,
                           OPENAI_API_KEY=OPENAI_KEY)
    body = {"messages": [{"role": "user", "content": "How many tokens is this sentence?"}],
            "system": "Be terse.", "tools": TOOLS}
    async with claude(d) as c:
        native = await c.messages.with_raw_response.count_tokens(
            model=SONNET_NATIVE, extra_headers={"anthropic-beta": BETA},
            extra_query={"beta": "true"}, **body)
        estimate = await c.messages.with_raw_response.count_tokens(model=GPT, **body)
    counted = json.loads(claude_api.sent[-1])["input_tokens"]
    assert (await native.parse()).input_tokens == counted > 0
    seen = claude_api.last
    assert seen.path == "/v1/messages/count_tokens" and seen.body["model"] == SONNET_NATIVE
    assert (seen.headers["x-api-key"], seen.headers["anthropic-beta"]) == (FAKE_KEY, BETA)
    assert "x-localgate-estimate" not in native.headers
    assert estimate.headers["x-localgate-estimate"] == "true"
    chars = len("How many tokens is this sentence?") + len("Be terse.")
    assert (await estimate.parse()).input_tokens > chars // 4  # the tool's schema counts too
    assert fake.seen == [] and len(claude_api.seen) == 1  # an estimate asks nobody
    assert await settled(d.home, 0, d) == []  # counting is free: no spend row


async def test_no_retry_after_a_fallback(start_daemon: StartDaemon, claude_api: FakeAnthropic,
                                         fake: FakeUpstream) -> None:
    """The SDK retries a 5xx twice by default; localgate already retried through the gateway,
    so it says x-should-retry: false and one SDK call makes two upstream calls, not six."""
    d = await start_daemon(anthropic_at(claude_api), ANTHROPIC_API_KEY=FAKE_KEY,
                           KILO_API_KEY=KILO_KEY)
    claude_api.knobs.status, fake.knobs.status = 529, 503
    async with claude(d, max_retries=2) as c:
        with pytest.raises(anthropic.InternalServerError) as info:
            await c.messages.create(model=SONNET, max_tokens=10, messages=HELLO)
    headers = info.value.response.headers
    assert headers["x-should-retry"] == "false"
    assert headers["x-localgate-route"] == "byok-fallback"
    assert len(claude_api.seen) == 1 and [s.path for s in fake.seen] == [
        "/api/gateway/chat/completions"]
    assert info.value.body["type"] == "error"  # type: ignore[index]
