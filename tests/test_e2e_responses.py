"""End to end: the official openai SDK's `responses.create` / `responses.stream` and
`embeddings.create` against a running daemon. OpenAI's own /responses with the user's key and
the hosted gateway's /responses get the request untranslated (tests/fake_responses.py); every
other route is translated to chat and back, event by event. Same controls, spend rows and
headers as chat.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import openai
import pytest

from tests.conftest import LOCAL_KEY, Daemon, StartDaemon
from tests.e2e import (GPT, KILO_KEY, OPENAI_KEY, SONNET, XAI_KEY, anthropic_at, claude_api,
                       cost_of, one_row, prices, responses_api, responses_at, settled)
from tests.fake_anthropic import FAKE_KEY, FakeAnthropic
from tests.fake_responses import EMBEDDING, FakeResponses
from tests.fakes import FakeUpstream
from tests.http import call

__all__ = ["claude_api", "responses_api"]  # the fixtures, imported for pytest

GROK = "x-ai/grok-code-fast-1"
TOOLS: list[Any] = [{"type": "function", "name": "get_weather", "description": "Weather",
                     "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                    "required": ["city"]}, "strict": False}]


def route_of(headers: Any) -> tuple[str, str, str]:
    return (headers["x-localgate-route"], headers["x-localgate-upstream"],
            headers["x-localgate-model"])


# ---- (a) OpenAI with the user's key and (b) the hosted gateway: untranslated ------------------

async def test_openai_gets_the_request_as_sent(start_daemon: StartDaemon,
                                               responses_api: FakeResponses) -> None:
    d = await start_daemon(responses_at(responses_api), OPENAI_API_KEY=OPENAI_KEY)
    responses_api.knobs.reasoning = True
    body: dict[str, Any] = {"model": GPT, "input": "hi", "instructions": "Be terse.",
                            "tools": TOOLS, "reasoning": {"effort": "low", "summary": "auto"},
                            "max_output_tokens": 500}
    async with d.sdk() as client:
        raw = await client.responses.with_raw_response.create(**body)
        async with client.responses.stream(**body) as s:
            kinds = [e.type async for e in s]
            final = await s.get_final_response()
    resp = raw.parse()
    assert raw.content == responses_api.sent[0]  # OpenAI's own bytes, untouched
    assert resp.output_text == responses_api.knobs.text
    assert [o.type for o in resp.output] == ["reasoning", "message"]
    first = responses_api.seen[0]
    assert first.path == "/openai/v1/responses"
    assert first.body == {**body, "model": "gpt-5.2"}  # only the model made native
    assert first.headers["Authorization"] == f"Bearer {OPENAI_KEY}"
    assert route_of(raw.headers) == ("byok", "openai", GPT)
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.reasoning_summary_text.delta" in kinds
    assert final.output_text == responses_api.knobs.text
    assert final.usage is not None and final.usage.input_tokens == 40
    rows = await settled(d.home, 2, d)
    p = await prices(d.url, GPT)
    for row in rows:
        assert (row["route"], row["provider"], row["prompt_tokens"], row["cached_tokens"],
                row["completion_tokens"], row["reasoning_tokens"]) == \
            ("byok", "openai", 40, 16, 12, 4)
        assert row["cost_source"] == "catalog" and row["cost_microdollars"] == cost_of(p, row)
    assert [r["stream"] for r in rows] == [False, True]


async def test_openai_function_call_and_a_cut_stream(start_daemon: StartDaemon,
                                                     responses_api: FakeResponses) -> None:
    d = await start_daemon(responses_at(responses_api), OPENAI_API_KEY=OPENAI_KEY)
    responses_api.knobs.function_call = True
    async with d.sdk() as client:
        async with client.responses.stream(model=GPT, input="weather?", tools=TOOLS) as s:
            final = await s.get_final_response()
        call_ = final.output[0]
        assert (call_.type, call_.name, json.loads(call_.arguments)) == \
            ("function_call", "get_weather", {"city": "Paris"})
        responses_api.knobs.cut_after = 6  # mid-arguments
        seen: list[str] = []
        async with client.responses.stream(model=GPT, input="weather?", tools=TOOLS) as s:
            async for e in s:
                seen.append(e.type)
    assert seen[-1] == "error" and "response.completed" not in seen
    row = await one_row(d, 2)
    assert row["status"] == "error" and "cut" in row["error"]


async def test_the_hosted_gateway_gets_its_responses(start_daemon: StartDaemon,
                                                     responses_api: FakeResponses) -> None:
    d = await start_daemon(responses_at(responses_api), KILO_API_KEY=KILO_KEY)
    async with d.sdk() as client:
        raw = await client.responses.with_raw_response.create(model=GROK, input="hi")
        async with client.responses.stream(model="minimax/minimax-m2.5:free", input="hi") as s:
            final = await s.get_final_response()
    assert raw.parse().output_text == responses_api.knobs.text == final.output_text
    paid, free = responses_api.seen
    assert (paid.path, paid.body["model"]) == ("/api/gateway/responses", GROK)
    assert paid.headers["Authorization"] == f"Bearer {KILO_KEY}"
    assert (free.path, free.body["model"]) == ("/api/gateway/responses",
                                               "minimax/minimax-m2.5:free")
    assert route_of(raw.headers) == ("gateway", "kilo", GROK)
    rows = await settled(d.home, 2, d)
    assert [(r["route"], r["prompt_tokens"]) for r in rows] == [("gateway", 40), ("free", 40)]
    assert rows[1]["cost_microdollars"] == 0 < rows[0]["cost_microdollars"]


# ---- (c) every other route: translated to chat and back --------------------------------------

async def test_xai_translated_event_by_event(start_daemon: StartDaemon,
                                             fake: FakeUpstream) -> None:
    d = await start_daemon(XAI_API_KEY=XAI_KEY)
    async with d.sdk() as client:
        async with client.responses.stream(model=GROK, input="hi", instructions="Be terse.",
                                           max_output_tokens=300) as s:
            kinds = [e.type async for e in s]
            final = await s.get_final_response()
        fake.knobs.tool_call = True
        raw = await client.responses.with_raw_response.create(model=GROK, input="weather?",
                                                              tools=TOOLS)
        resp = raw.parse()
        call_ = resp.output[0]
        fake.knobs.tool_call = False
        again = await client.responses.create(model=GROK, tools=TOOLS, input=[
            {"role": "user", "content": "weather?"},
            {"type": "function_call", "call_id": call_.call_id, "name": call_.name,
             "arguments": call_.arguments},
            {"type": "function_call_output", "call_id": call_.call_id, "output": "18C"}])
    assert kinds[:3] == ["response.created", "response.in_progress",
                         "response.output_item.added"]
    assert kinds.count("response.output_text.delta") == 3
    assert kinds[-1] == "response.completed"
    assert final.output_text == "tok0 tok1 tok2 "
    assert final.usage is not None and (final.usage.input_tokens, final.usage.output_tokens) == \
        (11, 7)
    first = fake.seen[0]
    assert first.path == "/x-ai/v1/chat/completions"
    assert first.body["messages"] == [{"role": "system", "content": "Be terse."},
                                      {"role": "user", "content": "hi"}]
    assert first.body["stream_options"] == {"include_usage": True}
    assert (call_.type, call_.name, json.loads(call_.arguments)) == \
        ("function_call", "get_weather", {"city": "Paris"})
    assert fake.seen[1].body["tools"][0]["function"]["name"] == "get_weather"
    assert route_of(raw.headers) == ("byok", "x-ai", GROK)
    assert again.output_text == "Hello from the fake upstream."
    assert [m["role"] for m in fake.last.body["messages"]] == ["user", "assistant", "tool"]
    rows = await settled(d.home, 3, d)
    assert {(r["route"], r["provider"], r["prompt_tokens"]) for r in rows} == \
        {("byok", "x-ai", 11)}


async def test_anthropic_translated_with_reasoning(start_daemon: StartDaemon,
                                                   claude_api: FakeAnthropic) -> None:
    d = await start_daemon(anthropic_at(claude_api), ANTHROPIC_API_KEY=FAKE_KEY)
    body: dict[str, Any] = {"model": SONNET, "input": "think first", "max_output_tokens": 2000,
                            "reasoning": {"effort": "high"}}
    async with d.sdk() as client:
        resp = await client.responses.create(**body)
        async with client.responses.stream(**body) as s:
            kinds = [e.type async for e in s]
            final = await s.get_final_response()
    assert claude_api.last.body["thinking"] == {"type": "enabled", "budget_tokens": 1600}
    for r in (resp, final):
        assert [o.type for o in r.output] == ["reasoning", "message"]
        assert r.output[0].summary[0].text == "Let me think about that."
        assert r.output_text == claude_api.knobs.text
    assert "response.reasoning_summary_text.delta" in kinds
    assert resp.usage is not None and resp.usage.input_tokens > 0
    rows = await settled(d.home, 2, d)
    assert {(r["route"], r["provider"]) for r in rows} == {("byok", "anthropic")}


async def test_a_local_model_is_translated(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon()
    async with d.sdk() as client:
        raw = await client.responses.with_raw_response.create(model="ollama/llama3", input="hi")
    assert raw.parse().output_text == "Hello from the fake upstream."
    assert fake.last.path == "/ollama/v1/chat/completions"
    assert raw.headers["x-localgate-route"] == "local"


async def test_previous_response_id_is_a_clear_400(start_daemon: StartDaemon,
                                                   responses_api: FakeResponses) -> None:
    d = await start_daemon(responses_at(responses_api), OPENAI_API_KEY=OPENAI_KEY)
    async with d.sdk() as client:
        with pytest.raises(openai.BadRequestError) as info:
            await client.responses.create(model=GPT, input="and then?",
                                          previous_response_id="resp_abc")
    assert info.value.param == "previous_response_id"
    assert "stateless" in info.value.message and "input" in info.value.message
    assert responses_api.seen == []


async def test_same_controls_as_chat(start_daemon: StartDaemon,
                                     responses_api: FakeResponses) -> None:
    d = await start_daemon({**responses_at(responses_api),
                            "limits": {"daily_usd": 0.00001, "allow_providers": ["openai"]}},
                           OPENAI_API_KEY=OPENAI_KEY, XAI_API_KEY=XAI_KEY)
    async with d.sdk() as client:
        with pytest.raises(openai.PermissionDeniedError) as denied:
            await client.responses.create(model=GROK, input="hi")
        await client.responses.create(model=GPT, input="hi")
        with pytest.raises(openai.APIStatusError) as over:
            await client.responses.create(model=GPT, input="hi")
    async with d.sdk(None) as anonymous:  # a paid model without the local key
        with pytest.raises(openai.AuthenticationError):
            await anonymous.responses.create(model=GPT, input="hi")
    assert denied.value.code == "provider_not_allowed"
    assert over.value.status_code == 402 and over.value.code == "usage_limit_exceeded"
    assert len(responses_api.seen) == 1
    rows = await settled(d.home, 4, d)
    assert [(r["http_status"], r["status"]) for r in rows] == [
        (403, "refused"), (200, "ok"), (402, "refused"), (401, "refused")]


async def test_no_retry_after_a_fallback(start_daemon: StartDaemon,
                                         responses_api: FakeResponses) -> None:
    """One SDK call with the SDK's default retries: BYOK, then the gateway fallback, then no
    more (x-should-retry: false), not six upstream calls."""
    d = await start_daemon(responses_at(responses_api), OPENAI_API_KEY=OPENAI_KEY,
                           KILO_API_KEY=KILO_KEY)
    responses_api.knobs.status = 503
    async with openai.AsyncOpenAI(base_url=f"{d.url}/v1", api_key=LOCAL_KEY,
                                  max_retries=2) as client:
        with pytest.raises(openai.InternalServerError) as info:
            await client.responses.create(model=GPT, input="hi")
    assert [s.path for s in responses_api.seen] == ["/openai/v1/responses",
                                                     "/api/gateway/responses"]
    assert info.value.response.headers["x-should-retry"] == "false"
    assert info.value.response.headers["x-localgate-route"] == "byok-fallback"


# ---- embeddings ---------------------------------------------------------------------------

async def dearest_prompt_price(d: Daemon, provider: str) -> Decimal:
    r = await call(d, "GET", "/v1/models")
    return max(Decimal(m["pricing"]["prompt"]) for m in r.json["data"]
               if m["id"].startswith(f"{provider}/") and m["pricing"]["prompt"])


@pytest.mark.parametrize(("env", "path", "route", "sent_model"), [
    ({"OPENAI_API_KEY": OPENAI_KEY}, "/openai/v1/embeddings", "byok", "text-embedding-3-small"),
    ({"KILO_API_KEY": KILO_KEY}, "/api/gateway/embeddings", "gateway",
     "openai/text-embedding-3-small")])
async def test_embeddings_routed_logged_and_costed(start_daemon: StartDaemon,
                                                   responses_api: FakeResponses,
                                                   env: dict[str, str], path: str, route: str,
                                                   sent_model: str) -> None:
    d = await start_daemon(responses_at(responses_api), **env)
    model = "openai/text-embedding-3-small"
    async with d.sdk() as client:
        raw = await client.embeddings.with_raw_response.create(
            model=model, input=["hello world, embed me", "bye"])
    resp = raw.parse()
    assert [e.embedding for e in resp.data] == [EMBEDDING, EMBEDDING]  # base64, decoded
    seen = responses_api.last
    assert (seen.path, seen.body["model"]) == (path, sent_model)
    assert seen.body["encoding_format"] == "base64"
    assert seen.headers["Authorization"] == f"Bearer {next(iter(env.values()))}"
    assert raw.headers["x-localgate-route"] == route
    row = await one_row(d)
    assert (row["route"], row["model"], row["prompt_tokens"], row["completion_tokens"]) == \
        (route, model, resp.usage.prompt_tokens, 0)
    # the catalog lists no embedding model: priced at OpenAI's dearest input price, so that
    # it still counts against the limits (README), and marked as an estimate
    want = int(resp.usage.prompt_tokens * await dearest_prompt_price(d, "openai") * 1_000_000)
    assert row["cost_source"] == "estimated"
    assert row["cost_microdollars"] == pytest.approx(want, abs=1) and want > 0


# ---- LangChain ----------------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True])
async def test_langchain_chat_openai_codex_model_uses_responses(
        start_daemon: StartDaemon, responses_api: FakeResponses, stream: bool) -> None:
    """LangChain's ChatOpenAI switches to the Responses API by itself for codex models."""
    from langchain_openai import ChatOpenAI
    d = await start_daemon(responses_at(responses_api), OPENAI_API_KEY=OPENAI_KEY)
    llm = ChatOpenAI(model="openai/gpt-5.2-codex", base_url=f"{d.url}/v1", api_key=LOCAL_KEY,
                     max_retries=0, streaming=stream)
    msg = await llm.ainvoke("hi")
    assert msg.text == responses_api.knobs.text
    assert responses_api.last.path == "/openai/v1/responses"
    assert responses_api.last.body["model"] == "gpt-5.2-codex"
    assert msg.usage_metadata is not None and msg.usage_metadata["input_tokens"] == 40
    row = await one_row(d)
    assert (row["route"], row["stream"], row["prompt_tokens"]) == ("byok", stream, 40)
