"""Real clients as coding tools use them (issue 8): the Kilo CLI's OpenRouter AI-SDK provider,
the Vercel AI SDK's default OpenAI provider and the openai Node SDK (tests/node, installed by
.ci/run), and the openai Python SDK, against a daemon whose upstreams are fakes on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LOCAL_KEY, StartDaemon
from tests.e2e import responses_api
from tests.fakes import FakeUpstream

NODE_DIR = Path(__file__).parent / "node"
OPENAI_KEY = "sk-test-openai-0123456789abcdef"
KILO_KEY = "kilo-test-key-0123456789"
BYOK = "openai/gpt-5.2"
__all__ = ["responses_api"]  # the fixture, imported for pytest


def _node_ready() -> bool:
    return shutil.which("node") is not None and (NODE_DIR / "node_modules" / "ai").is_dir()


needs_node = pytest.mark.skipif(
    not _node_ready() and not os.environ.get("CI"),
    reason="node and tests/node/node_modules are needed (`npm ci --prefix tests/node`)")


async def node(case: str, base_url: str, key: str = LOCAL_KEY, model: str = BYOK) -> Any:
    proc = await asyncio.create_subprocess_exec(
        "node", str(NODE_DIR / "clients.mjs"), case, base_url, key, model,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"})
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    line = out.decode().strip().splitlines()[-1]
    return json.loads(line)


@needs_node
@pytest.mark.parametrize("prefix", ["/api/openrouter/", "//api/openrouter/", "/api/gateway/"])
async def test_kilo_cli_stream_gets_tokens_and_cost(start_daemon: StartDaemon, fake: FakeUpstream,
                                                    prefix: str) -> None:
    """The Kilo CLI's provider sends no stream_options: on the hosted gateway's paths the usage
    chunk is kept (with localgate's cost fields for BYOK), as the hosted gateway does; a
    KILO_API_URL ending in `/` (`//api/...`) works too."""
    d = await start_daemon(OPENAI_API_KEY=OPENAI_KEY)
    got = await node("kilo-cli-stream", d.url + prefix)
    assert got["ok"], got
    assert got["text"] == "tok0 tok1 tok2 "
    assert got["usage"]["inputTokens"] == 11 and got["usage"]["outputTokens"] == 7
    usage = got["meta"]["openrouter"]["usage"]
    assert usage["cost"] > 0  # BYOK: what it cost at OpenAI's prices
    assert "stream_options" not in (fake.last.body or {}) or \
        fake.last.body["stream_options"]["include_usage"] is True


@needs_node
async def test_kilo_cli_non_stream_gets_cost(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(OPENAI_API_KEY=OPENAI_KEY)
    got = await node("kilo-cli-generate", d.url + "/api/openrouter/")
    assert got["ok"], got
    assert got["usage"]["inputTokens"] == 11
    assert got["meta"]["openrouter"]["usage"]["cost"] > 0


@needs_node
async def test_openai_node_chat_stream(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(OPENAI_API_KEY=OPENAI_KEY)
    got = await node("openai-node-chat-stream", d.url + "/v1")
    assert got["ok"], got
    assert got["text"] == "tok0 tok1 tok2 "
    assert got["usage"]["prompt_tokens"] == 11 and got["usage"]["cost"] > 0
    assert got["usage"]["is_byok"] is True


async def test_v1_stream_usage_only_when_asked(start_daemon: StartDaemon,
                                              fake: FakeUpstream) -> None:
    """On /v1 the usage chunk goes to clients that asked for it, the OpenAI way
    (stream_options) or OpenRouter's (usage.include), and to nobody else."""
    from tests.http import HELLO, chat
    d = await start_daemon(OPENAI_API_KEY=OPENAI_KEY)
    base = {"model": BYOK, "messages": HELLO, "stream": True}
    for extra, expected in (({}, False), ({"usage": {"include": True}}, True),
                            ({"stream_options": {"include_usage": True}}, True),
                            ({"usage": {"include": False}}, False)):
        r = await chat(d, {**base, **extra})
        assert r.status == 200
        chunks = [json.loads(line[5:]) for line in r.raw.decode().splitlines()
                  if line.startswith("data:") and "[DONE]" not in line]
        usage = [c["usage"] for c in chunks if c.get("usage")]
        assert bool(usage) == expected, (extra, usage)
        if expected:
            assert usage[-1]["prompt_tokens"] == 11 and usage[-1]["cost"] > 0
        assert fake.last.body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("gateway_key", [True, False])
async def test_sdk_retries_do_not_multiply_upstream_calls(start_daemon: StartDaemon,
                                                          fake: FakeUpstream,
                                                          gateway_key: bool) -> None:
    """The openai SDK retries a 503 twice by default. When localgate has already retried (the
    BYOK call fell back to the gateway) it says `x-should-retry: false`, so one SDK call makes
    at most 3 upstream calls on a persistent 503 (2 with a fallback, 3 without)."""
    import openai
    env = {"OPENAI_API_KEY": OPENAI_KEY, **({"KILO_API_KEY": KILO_KEY} if gateway_key else {})}
    d = await start_daemon(**env)
    fake.knobs.status = 503
    async with openai.AsyncOpenAI(base_url=f"{d.url}/v1", api_key=LOCAL_KEY) as client:
        with pytest.raises(openai.InternalServerError) as info:
            await client.chat.completions.create(model=BYOK, messages=[
                {"role": "user", "content": "hi"}])
    calls = [s.path for s in fake.seen]
    assert len(calls) <= 3, calls
    if gateway_key:
        assert calls == ["/openai/v1/chat/completions", "/api/gateway/chat/completions"]
        assert info.value.response.headers["x-should-retry"] == "false"
        assert info.value.response.headers["x-localgate-route"] == "byok-fallback"
    else:
        assert calls == ["/openai/v1/chat/completions"] * 3
        assert "x-should-retry" not in info.value.response.headers


async def test_upstream_saying_no_retry_is_passed_on(start_daemon: StartDaemon,
                                                     aiohttp_server: Any) -> None:
    from aiohttp import web

    from tests.http import HELLO, chat, openai_at
    seen: list[int] = []

    async def refuse(request: web.Request) -> web.Response:
        seen.append(1)
        return web.json_response({"error": {"message": "bad input", "type": "invalid"}},
                                 status=500, headers={"x-should-retry": "false"})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", refuse)
    d = await start_daemon({**await openai_at(aiohttp_server, app),
                            "routing": {"fallback_to_gateway": False}},
                           OPENAI_API_KEY=OPENAI_KEY)
    r = await chat(d, {"model": BYOK, "messages": HELLO})
    assert r.status == 500 and r.headers["x-should-retry"] == "false"
    assert len(seen) == 1


async def test_mid_stream_cut_is_said_in_words(start_daemon: StartDaemon,
                                               fake: FakeUpstream) -> None:
    import openai
    d = await start_daemon(OPENAI_API_KEY=OPENAI_KEY)
    fake.knobs.cut_after = 1
    async with d.sdk() as client:
        stream = await client.chat.completions.create(model=BYOK, messages=[
            {"role": "user", "content": "hi"}], stream=True)
        with pytest.raises(openai.APIError) as info:
            async for _ in stream:
                pass
    message = str(info.value)
    assert "the connection to OpenAI was cut mid-stream" in message, message
    for internal in ("ClientPayloadError", "TransferEncodingError", "aiohttp", "Traceback"):
        assert internal not in message


def _jwt(claims: dict[str, Any]) -> str:
    import base64

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


async def test_a_signed_in_kilo_cli_is_served_through_the_hosted_gateway(
        start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    """A Kilo token that is not localgate's own: the hosted gateway with that token only —
    never the user's BYOK keys, never local providers — logged as client `kilo-token`."""
    from tests.http import HELLO, call, chat
    from tests.test_spend import settled
    d = await start_daemon(OPENAI_API_KEY=OPENAI_KEY)  # no KILO_API_KEY configured
    token = _jwt({"kiloUserId": "u1", "version": 3})
    r = await chat(d, {"model": BYOK, "messages": HELLO}, {"Authorization": f"Bearer {token}"},
                   prefix="/api/openrouter")
    assert r.status == 200, r.raw
    assert r.headers["x-localgate-route"] == "gateway"
    assert r.headers["x-localgate-upstream"] == "kilo"
    assert fake.last.path == "/api/gateway/chat/completions"
    assert fake.last.headers["Authorization"] == f"Bearer {token}"
    assert OPENAI_KEY not in json.dumps(fake.last.headers)
    r = await chat(d, {"model": "ollama/llama3", "messages": HELLO},
                   {"Authorization": f"Bearer {token}"})
    assert r.status == 403
    r = await call(d, "GET", "/api/profile", headers={"Authorization": f"Bearer {token}"})
    assert r.status == 200 and fake.last.headers["Authorization"] == f"Bearer {token}"
    rows = await settled(d.home, 2, d)
    assert {row["client"] for row in rows} == {"kilo-token"}
    r = await chat(d, {"model": BYOK, "messages": HELLO},
                   {"Authorization": "Bearer not.a.jwt"})
    assert r.status == 401


async def test_kilo_sign_in_needs_no_key(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    from tests.http import call
    d = await start_daemon(KILO_API_KEY=KILO_KEY)
    r = await call(d, "POST", "/api/device-auth/codes", body={})
    assert r.status == 200, r.raw
    assert fake.last.path == "/api/device-auth/codes"
    assert "Authorization" not in fake.last.headers  # neither ours nor the user's Kilo key
    r = await call(d, "GET", "/api/device-auth/codes/abc123")
    assert r.status == 200 and fake.last.path == "/api/device-auth/codes/abc123"
    r = await call(d, "GET", "/api/profile")
    assert r.status == 401  # everything else still needs local auth


async def test_models_list_auto_models_first_with_their_own_index(daemon: Any) -> None:
    from tests.http import call
    r = await call(daemon, "GET", "/v1/models")
    data = r.json["data"]
    ids = [m["id"] for m in data]
    assert "kilo/auto" in ids
    virtual = ["kilo-auto/frontier", "kilo-auto/balanced", "kilo-auto/free", "kilo/auto",
               "localgate/default"]
    assert ids[: len(virtual)] == virtual
    indexed = [(m["preferredIndex"], m["id"]) for m in data if "preferredIndex" in m]
    assert len({i for i, _ in indexed}) == len(indexed), indexed  # no index shared
    assert [i for i, _ in indexed] == sorted(i for i, _ in indexed)
    popular = [m for i, m in indexed if i >= 0]
    assert popular[:2] == ["anthropic/claude-opus-4.6", "anthropic/claude-sonnet-4.6"]


async def test_every_proxied_response_names_its_upstream(start_daemon: StartDaemon,
                                                         fake: FakeUpstream) -> None:
    from tests.http import HELLO, chat
    d = await start_daemon(OPENAI_API_KEY=OPENAI_KEY, KILO_API_KEY=KILO_KEY)
    for model, route, upstream in ((BYOK, "byok", "openai"),
                                   ("x-ai/grok-code-fast-1", "gateway", "kilo"),
                                   ("minimax/minimax-m2.5:free", "free", "kilo"),
                                   ("ollama/llama3", "local", "ollama")):
        for stream in (False, True):
            r = await chat(d, {"model": model, "messages": HELLO, "stream": stream})
            assert r.status == 200, (model, r.raw)
            assert (r.headers["x-localgate-route"], r.headers["x-localgate-upstream"]) == \
                (route, upstream), model
    fake.knobs.status = 500
    r = await chat(d, {"model": "x-ai/grok-code-fast-1", "messages": HELLO})
    assert r.status == 500 and r.headers["x-localgate-upstream"] == "kilo"


@needs_node
@pytest.mark.parametrize("case", ["ai-sdk-openai-stream", "ai-sdk-openai-tools"])
async def test_ai_sdk_default_provider_to_openais_own_responses(
        start_daemon: StartDaemon, responses_api: Any, case: str) -> None:
    """The Vercel AI SDK's default OpenAI provider speaks the Responses API: with the user's
    OpenAI key it reaches OpenAI's own /responses untranslated (tests/fake_responses.py)."""
    from tests.e2e import responses_at
    d = await start_daemon(responses_at(responses_api), OPENAI_API_KEY=OPENAI_KEY)
    responses_api.knobs.function_call = case.endswith("tools")
    got = await node(case, d.url + "/v1")
    assert got["ok"], got
    assert responses_api.last.path == "/openai/v1/responses"
    assert responses_api.last.body["model"] == "gpt-5.2"
    assert got["usage"]["inputTokens"] == 40 and got["usage"]["outputTokens"] == 12
    if case.endswith("tools"):
        assert [(c["toolName"], c["input"]) for c in got["toolCalls"]] == \
            [("get_weather", {"city": "Paris"})]
    else:
        assert got["text"] == responses_api.knobs.text


@needs_node
@pytest.mark.parametrize("case", ["ai-sdk-openai-stream", "ai-sdk-openai-tools"])
async def test_ai_sdk_default_provider_translated(start_daemon: StartDaemon, fake: FakeUpstream,
                                                  case: str) -> None:
    """The same client on a route without a Responses API (xAI with the user's key): the
    request is translated to chat and the answer back, and the SDK cannot tell."""
    d = await start_daemon(XAI_API_KEY="xai-test-key-0123456789")
    fake.knobs.tool_call = case.endswith("tools")
    got = await node(case, d.url + "/v1", model="x-ai/grok-code-fast-1")
    assert got["ok"], got
    assert fake.last.path == "/x-ai/v1/chat/completions"
    assert got["usage"]["inputTokens"] == 11 and got["usage"]["outputTokens"] == 7
    if case.endswith("tools"):
        assert [(c["toolName"], c["input"]) for c in got["toolCalls"]] == \
            [("get_weather", {"city": "Paris"})]
    else:
        assert got["text"] == "tok0 tok1 tok2 "
