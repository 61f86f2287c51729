"""Bad input, local auth and browser safety, routing decisions and the read-only endpoints,
all through the daemon's public HTTP surface (SPEC sections 3-5)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web
from yarl import URL

from tests.conftest import LOCAL_KEY, Daemon, StartDaemon, auth
from tests.fakes import FakeUpstream
from tests.http import FAST, HELLO, Reply, call, chat

KILO_KEY = "kilo-user-key-abcdef123456"
OPENAI_KEY = "sk-test-openai-secret-987654"
FREE = "z-ai/glm-5:free"
PAID = "anthropic/claude-sonnet-4.6"


def assert_error(r: Reply, status: int, code: str | None, param: str | None = None) -> dict:
    err = r.error(status, code, param)
    assert r.headers["Content-Type"].startswith("application/json")
    return err


def route_headers(r: Reply, route: str, provider: str, model: str) -> None:
    assert r.headers["x-localgate-route"] == route
    assert r.headers["x-localgate-provider"] == provider
    assert r.headers["x-localgate-model"] == model
    assert r.headers["x-request-id"].startswith("lg-")


# ---- malformed input --------------------------------------------------------------------------

async def test_malformed_json_is_400(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, OPENAI_API_KEY=OPENAI_KEY)
    r = await call(d, "POST", "/v1/chat/completions", data=b'{"model": "openai/gpt-5.2", ',
                   headers={**auth(), "Content-Type": "application/json"})
    assert_error(r, 400, "invalid_request")
    assert r.headers["x-request-id"].startswith("lg-")
    assert fake.seen == []


async def test_json_array_body_is_400(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, OPENAI_API_KEY=OPENAI_KEY)
    r = await chat(d, [{"model": "openai/gpt-5.2", "messages": HELLO}])
    assert_error(r, 400, "invalid_request")
    assert fake.seen == []


async def test_empty_body_is_400(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, OPENAI_API_KEY=OPENAI_KEY)
    r = await call(d, "POST", "/v1/chat/completions", data=b"",
                   headers={**auth(), "Content-Type": "application/json"})
    assert_error(r, 400, "invalid_request")
    assert fake.seen == []


@pytest.mark.parametrize(("patch", "param"), [
    ({"model": 42}, "model"),
    ({"messages": "hi"}, "messages"),
    ({"stream": "yes"}, "stream"),
    ({"stream_options": [{"include_usage": True}]}, "stream_options"),
    ({"messages": []}, "messages"),
    ({"messages": None}, "messages"),
])
async def test_wrong_types_are_400_with_param(start_daemon: StartDaemon, fake: FakeUpstream,
                                              patch: dict[str, Any], param: str) -> None:
    d = await start_daemon(FAST, OPENAI_API_KEY=OPENAI_KEY)
    body = {"model": "openai/gpt-5.2", "messages": HELLO, **patch}
    if patch.get("messages", ...) is None:
        del body["messages"]  # missing entirely
    r = await chat(d, body)
    err = assert_error(r, 400, "invalid_request", param)
    assert err["type"] == "invalid_request_error"
    assert fake.seen == []


async def test_body_over_max_body_mb_is_413(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon({**FAST, "server": {"max_body_mb": 0.01}}, OPENAI_API_KEY=OPENAI_KEY)
    big = [{"role": "user", "content": "x" * 20_000}]
    r = await chat(d, {"model": "openai/gpt-5.2", "messages": big})
    assert_error(r, 413, None)
    # just under the limit still goes through
    r = await chat(d, {"model": "openai/gpt-5.2",
                       "messages": [{"role": "user", "content": "x" * 5_000}]})
    assert r.status == 200
    assert len(fake.seen) == 1


async def test_non_json_content_type_is_415(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, OPENAI_API_KEY=OPENAI_KEY)
    payload = json.dumps({"model": "openai/gpt-5.2", "messages": HELLO})
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        r = await call(d, "POST", "/v1/chat/completions", data=payload.encode(),
                       headers={**auth(), "Content-Type": ctype})
        assert_error(r, 415, None)
    assert fake.seen == []


# ---- models and routing -----------------------------------------------------------------------

async def test_unknown_provider_is_404(daemon: Daemon, fake: FakeUpstream) -> None:
    r = await chat(daemon, {"model": "nope/model", "messages": HELLO})
    err = assert_error(r, 404, "model_not_found", "model")
    assert "nope/model" in err["message"]
    assert fake.seen == []


async def test_unknown_provider_is_404_even_anonymously(daemon: Daemon) -> None:
    r = await chat(daemon, {"model": "nope/model", "messages": HELLO}, headers={})
    assert_error(r, 404, "model_not_found")


async def test_unknown_model_of_known_provider_is_routed(start_daemon: StartDaemon,
                                                         fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, OPENAI_API_KEY=OPENAI_KEY)
    r = await chat(d, {"model": "openai/gpt-9-future", "messages": HELLO})
    assert r.status == 200, r.raw
    route_headers(r, "byok", "openai", "openai/gpt-9-future")
    assert fake.last.path == "/openai/v1/chat/completions"
    assert fake.last.body["model"] == "gpt-9-future"


@pytest.mark.parametrize("model", ["mistral/foo", "mistralai/foo"])
async def test_mistral_alias_resolves_to_mistral(start_daemon: StartDaemon, fake: FakeUpstream,
                                                 model: str) -> None:
    d = await start_daemon(FAST, MISTRAL_API_KEY="mistral-key")
    r = await chat(d, {"model": model, "messages": HELLO})
    assert r.status == 200, r.raw
    assert r.headers["x-localgate-provider"] == "mistral"
    assert r.headers["x-localgate-route"] == "byok"
    assert fake.last.path == "/mistral/v1/chat/completions"
    assert fake.last.body["model"] == "foo"
    assert fake.last.headers["Authorization"] == "Bearer mistral-key"


async def test_unknown_top_level_fields_pass_through(start_daemon: StartDaemon,
                                                     fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, OPENAI_API_KEY=OPENAI_KEY, KILO_API_KEY="kilo-key")
    extra = {"x_future": {"a": [1, 2.5, None, True]}, "temperature": 0.3, "top_k": 7,
             "seed": 12, "metadata": {"k": "ü"}}
    openrouter = {"transforms": ["middle-out"], "usage": {"include": True},
                  "provider": {"sort": "price"}, "reasoning": {"effort": "high"}}
    for model in ("openai/gpt-5.2", "x-ai/grok-code-fast-1"):  # BYOK direct; the gateway
        r = await chat(d, {"model": model, "messages": HELLO, "max_tokens": 50, **extra,
                           **openrouter})
        assert r.status == 200
        sent = fake.last.body
        for k, v in extra.items():
            assert sent[k] == v
        assert sent["messages"] == HELLO
    # the gateway takes OpenRouter's own fields as they are ...
    assert all(sent[k] == v for k, v in openrouter.items()) and sent["max_tokens"] == 50
    # ... a provider's own API would refuse them (OpenAI: 400 unrecognized argument), so a
    # direct call carries the effort as reasoning_effort and max_tokens as OpenAI takes it
    r = await chat(d, {"model": "openai/gpt-5.2", "messages": HELLO, "max_tokens": 50,
                       **openrouter})
    sent = fake.last.body
    assert not set(openrouter) & set(sent), sent
    assert sent["reasoning_effort"] == "high" and sent["max_completion_tokens"] == 50
    assert "max_tokens" not in sent


async def test_default_model_for_no_model_and_localgate_default(start_daemon: StartDaemon,
                                                                fake: FakeUpstream) -> None:
    d = await start_daemon({**FAST, "routing": {"default_model": "openai/gpt-5.2"}},
                           OPENAI_API_KEY=OPENAI_KEY)
    for body in ({"messages": HELLO}, {"model": "localgate/default", "messages": HELLO}):
        fake.seen.clear()
        r = await chat(d, body)
        assert r.status == 200, r.raw
        route_headers(r, "byok", "openai", "openai/gpt-5.2")
        assert fake.last.body["model"] == "gpt-5.2"


@pytest.mark.parametrize(("mode", "expected"), [
    ("plan", "anthropic/claude-opus-4.6"),
    ("build", "anthropic/claude-sonnet-4.6"),
    (None, "anthropic/claude-sonnet-4.6"),
])
async def test_kilo_auto_frontier_by_mode(start_daemon: StartDaemon, fake: FakeUpstream,
                                          mode: str | None, expected: str) -> None:
    d = await start_daemon(FAST, KILO_API_KEY=KILO_KEY)
    headers = {**auth(), **({"x-kilocode-mode": mode} if mode else {})}
    r = await chat(d, {"model": "kilo-auto/frontier", "messages": HELLO}, headers)
    assert r.status == 200, r.raw
    route_headers(r, "gateway", "anthropic", expected)
    assert fake.last.path == "/api/gateway/chat/completions"
    assert fake.last.body["model"] == expected


async def test_auto_table_override(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon({**FAST, "auto": {"kilo-auto/balanced": {
        "default": "openai/gpt-5.2", "modes": {"plan": "openai/gpt-9-future"}}}},
        OPENAI_API_KEY=OPENAI_KEY)
    r = await chat(d, {"model": "kilo-auto/balanced", "messages": HELLO},
                   {**auth(), "x-kilocode-mode": "plan"})
    assert r.status == 200, r.raw
    route_headers(r, "byok", "openai", "openai/gpt-9-future")
    r = await chat(d, {"model": "kilo-auto/balanced", "messages": HELLO},
                   {**auth(), "x-kilocode-mode": "some-new-mode"})
    route_headers(r, "byok", "openai", "openai/gpt-5.2")
    assert fake.last.body["model"] == "gpt-5.2"


async def test_route_headers_on_every_proxied_response(start_daemon: StartDaemon,
                                                       fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, OPENAI_API_KEY=OPENAI_KEY)
    body = {"model": "openai/gpt-5.2", "messages": HELLO}
    r = await chat(d, body)
    route_headers(r, "byok", "openai", "openai/gpt-5.2")
    r = await chat(d, {**body, "stream": True})
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    route_headers(r, "byok", "openai", "openai/gpt-5.2")
    fake.knobs.status = 400  # an upstream error relayed as-is is still a proxied response
    r = await chat(d, body)
    assert r.status == 400
    route_headers(r, "byok", "openai", "openai/gpt-5.2")
    ids = set()
    for _ in range(3):
        ids.add((await chat(d, body)).headers["x-request-id"])
    assert len(ids) == 3


async def test_openrouter_gateway_adds_provider_order(start_daemon: StartDaemon,
                                                      fake: FakeUpstream) -> None:
    d = await start_daemon({**FAST, "routing": {"gateway": "openrouter"}},
                           OPENROUTER_API_KEY="or-key")
    r = await chat(d, {"model": PAID, "messages": HELLO})
    assert r.status == 200, r.raw
    route_headers(r, "gateway", "anthropic", PAID)
    assert fake.last.path == "/openrouter/v1/chat/completions"
    assert fake.last.headers["Authorization"] == "Bearer or-key"
    assert fake.last.body["model"] == PAID  # gateways take the full id
    assert fake.last.body["provider"] == {"order": ["amazon-bedrock"]}

    r = await chat(d, {"model": PAID, "messages": HELLO,
                       "provider": {"order": ["anthropic"], "allow_fallbacks": False}})
    assert r.status == 200
    assert fake.last.body["provider"] == {"order": ["anthropic"], "allow_fallbacks": False}

    r = await chat(d, {"model": PAID, "messages": HELLO,
                       "provider": {"allow_fallbacks": False, "data_collection": "deny"}})
    assert r.status == 200
    assert fake.last.body["provider"] == {"allow_fallbacks": False, "data_collection": "deny",
                                          "order": ["amazon-bedrock"]}

    # a provider without a seeds' preference gets no hint
    r = await chat(d, {"model": "openai/gpt-5.2", "messages": HELLO})
    assert r.status == 200
    assert "provider" not in fake.last.body


async def test_local_provider_needs_no_key(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(FAST)
    for headers in ({}, {"Authorization": "Bearer anonymous"}, auth()):
        fake.seen.clear()
        r = await chat(d, {"model": "ollama/llama3", "messages": HELLO}, headers)
        assert r.status == 200, r.raw
        route_headers(r, "local", "ollama", "ollama/llama3")
        assert fake.last.path == "/ollama/v1/chat/completions"
        assert fake.last.body["model"] == "llama3"
        assert "Authorization" not in fake.last.headers


# ---- local auth ---------------------------------------------------------------------------------

async def test_paid_model_without_key_is_401(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, KILO_API_KEY=KILO_KEY)
    for headers in ({}, {"Authorization": "Bearer anonymous"}):
        r = await chat(d, {"model": PAID, "messages": HELLO}, headers)
        err = assert_error(r, 401, "paid_model_auth_required")
        assert err["type"] == "authentication_error"
    async with d.sdk(key=None) as client:
        with pytest.raises(openai.AuthenticationError) as exc:
            await client.chat.completions.create(model=PAID, messages=HELLO)
    assert exc.value.status_code == 401
    assert fake.seen == []


async def test_wrong_key_is_401(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, KILO_API_KEY=KILO_KEY)
    for headers in ({"Authorization": "Bearer not-the-key"}, {"x-api-key": "not-the-key"}):
        # a wrong key is refused, never downgraded to anonymous (even for a free model)
        for model in (PAID, FREE):
            r = await chat(d, {"model": model, "messages": HELLO}, headers)
            err = assert_error(r, 401, "authentication_required")
            assert "not-the-key" not in err["message"]
    assert fake.seen == []


async def test_no_provider_key_says_which_key_to_add(daemon: Daemon, fake: FakeUpstream) -> None:
    r = await chat(daemon, {"model": "openai/gpt-5.2", "messages": HELLO})
    err = assert_error(r, 401, "authentication_required")
    msg = err["message"]
    assert "`localgate keys set openai`" in msg and "OPENAI_API_KEY" in msg, msg
    assert "`localgate keys set kilo`" in msg and "KILO_API_KEY" in msg, msg
    assert fake.seen == []


async def test_x_api_key_and_kilo_key_are_local_keys(start_daemon: StartDaemon,
                                                     fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, KILO_API_KEY=KILO_KEY)
    for headers in ({"x-api-key": LOCAL_KEY}, auth(KILO_KEY), {"x-api-key": KILO_KEY}):
        r = await chat(d, {"model": PAID, "messages": HELLO}, headers)
        assert r.status == 200, (headers, r.raw)
        route_headers(r, "gateway", "anthropic", PAID)
        assert fake.last.headers["Authorization"] == f"Bearer {KILO_KEY}"


async def test_anonymous_free_model_goes_to_gateway_without_auth(start_daemon: StartDaemon,
                                                                 fake: FakeUpstream) -> None:
    d = await start_daemon(FAST)
    for headers in ({}, {"Authorization": "Bearer anonymous"}):
        fake.seen.clear()
        r = await chat(d, {"model": FREE, "messages": HELLO}, headers)
        assert r.status == 200, r.raw
        route_headers(r, "free", "z-ai", FREE)
        assert fake.last.path == "/api/gateway/chat/completions"
        assert fake.last.body["model"] == FREE
        assert "Authorization" not in fake.last.headers
    async with d.sdk(key=None) as client:
        resp = await client.chat.completions.create(model=FREE, messages=HELLO)
    assert resp.choices[0].message.content == "Hello from the fake upstream."


async def test_anonymous_free_model_uses_kilo_key_when_set(start_daemon: StartDaemon,
                                                           fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, KILO_API_KEY=KILO_KEY, ZAI_API_KEY="zai-key")
    r = await chat(d, {"model": FREE, "messages": HELLO}, {"Authorization": "Bearer anonymous"})
    assert r.status == 200, r.raw
    route_headers(r, "free", "z-ai", FREE)
    # free stays free: the hosted gateway, not z-ai with the user's BYOK key
    assert fake.last.path == "/api/gateway/chat/completions"
    assert fake.last.headers["Authorization"] == f"Bearer {KILO_KEY}"


async def test_local_key_is_never_forwarded(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, KILO_API_KEY=KILO_KEY, OPENAI_API_KEY=OPENAI_KEY)
    bodies = [{"model": m, "messages": HELLO, "stream": s}
              for m in ("openai/gpt-5.2", PAID, FREE, "ollama/llama3") for s in (False, True)]
    for body in bodies:
        for headers in (auth(), {"x-api-key": LOCAL_KEY},
                        {**auth(), "x-api-key": LOCAL_KEY}):
            r = await chat(d, body, headers)
            assert r.status == 200, r.raw
    r = await call(d, "GET", "/api/profile", headers={**auth(), "x-api-key": LOCAL_KEY})
    assert r.status == 200
    assert len(fake.seen) == len(bodies) * 3 + 1
    for seen in fake.seen:
        dump = json.dumps(seen.headers) + seen.raw.decode() + seen.path
        assert LOCAL_KEY not in dump, seen


async def test_kilocode_headers_only_reach_the_kilo_gateway(start_daemon: StartDaemon,
                                                            fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, KILO_API_KEY=KILO_KEY, OPENAI_API_KEY=OPENAI_KEY)
    kilo_headers = {"X-KiloCode-Mode": "code", "X-KiloCode-TaskId": "task-42",
                    "X-KiloCode-EditorName": "vscode", "X-KiloCode-Feature": "chat"}

    def kilocode(seen: Any) -> dict[str, str]:
        return {k.lower(): v for k, v in seen.headers.items()
                if k.lower().startswith("x-kilocode-")}

    r = await chat(d, {"model": PAID, "messages": HELLO}, {**auth(), **kilo_headers})
    assert r.status == 200
    assert fake.last.path == "/api/gateway/chat/completions"
    assert kilocode(fake.last) == {k.lower(): v for k, v in kilo_headers.items()}

    r = await chat(d, {"model": "openai/gpt-5.2", "messages": HELLO}, {**auth(), **kilo_headers})
    assert r.status == 200
    assert fake.last.path == "/openai/v1/chat/completions"
    assert kilocode(fake.last) == {}


async def test_anonymous_rate_limit(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon()  # default timeouts: 50 requests at once on a busy machine take time
    body = {"model": FREE, "messages": HELLO}
    async with aiohttp.ClientSession() as s:
        for _ in range(4):
            replies = await asyncio.gather(*(
                call(d, "POST", "/v1/chat/completions", body=body, session=s)
                for _ in range(50)))
            assert all(r.status == 200 for r in replies), {r.status for r in replies}
        r = await call(d, "POST", "/v1/chat/completions", body=body, session=s)
        err = assert_error(r, 429, "rate_limit_exceeded")
        assert err["type"] == "rate_limit_error"
        retry = int(r.headers["Retry-After"])
        assert 1 <= retry <= 3600
        # the refused request never reached a provider
        assert len(fake.seen) == 200
        # the local key is not rate-limited
        r = await call(d, "POST", "/v1/chat/completions", body=body, session=s, headers=auth())
        assert r.status == 200


async def test_paid_model_without_any_key_names_the_env_var(start_daemon: StartDaemon,
                                                            fake: FakeUpstream) -> None:
    d = await start_daemon(FAST)
    r = await chat(d, {"model": PAID, "messages": HELLO})
    err = assert_error(r, 401, None)
    assert err["code"] == "authentication_required"
    assert "KILO_API_KEY" in err["message"]
    r = await chat(d, {"model": "openai/gpt-5.2", "messages": HELLO})
    err = assert_error(r, 401, None)
    assert "KILO_API_KEY" in err["message"] and "OPENAI_API_KEY" in err["message"]
    assert fake.seen == []


# ---- browser safety -----------------------------------------------------------------------------

async def test_foreign_host_is_403(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, OPENAI_API_KEY=OPENAI_KEY)
    port = d.url.rsplit(":", 1)[1]
    for host in ("evil.example:8642", f"evil.example:{port}", "evil.example",
                 f"127.0.0.1.evil.example:{port}"):
        r = await call(d, "POST", "/v1/chat/completions", headers={**auth(), "Host": host},
                       body={"model": "openai/gpt-5.2", "messages": HELLO})
        assert_error(r, 403, "host_not_allowed")
        r = await call(d, "GET", "/v1/models", headers={"Host": host})
        assert_error(r, 403, "host_not_allowed")
    assert fake.seen == []
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        r = await call(d, "GET", "/health", headers={"Host": host})
        assert r.status == 200, host


async def test_cors_preflight(daemon: Daemon) -> None:
    req = {"Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "authorization, content-type"}
    r = await call(daemon, "OPTIONS", "/v1/chat/completions",
                   headers={**req, "Origin": "https://evil.example"})
    assert_error(r, 403, None)
    assert "Access-Control-Allow-Origin" not in r.headers

    # a page of any local dev server is a web page like any other (issue 6 item 9)
    r = await call(daemon, "OPTIONS", "/v1/chat/completions",
                   headers={**req, "Origin": "http://localhost:3000"})
    assert_error(r, 403, "origin_not_allowed")

    webview = "vscode-webview://1n2b3c4d5e6f"
    r = await call(daemon, "OPTIONS", "/v1/chat/completions", headers={**req, "Origin": webview})
    assert r.status == 204
    assert r.headers["Access-Control-Allow-Origin"] == webview
    assert "POST" in r.headers["Access-Control-Allow-Methods"]


async def test_post_with_foreign_origin_is_403(start_daemon: StartDaemon,
                                               fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, OPENAI_API_KEY=OPENAI_KEY)
    body = {"model": "openai/gpt-5.2", "messages": HELLO}
    for origin in ("https://evil.example", "http://localhost.evil.example", "null"):
        r = await chat(d, body, {**auth(), "Origin": origin})
        assert_error(r, 403, None)
        assert "Access-Control-Allow-Origin" not in r.headers
    # anonymous free requests from a web page are refused as well
    r = await chat(d, {"model": FREE, "messages": HELLO}, {"Origin": "https://evil.example"})
    assert_error(r, 403, None)
    assert fake.seen == []
    r = await chat(d, body, {**auth(), "Origin": "http://127.0.0.1:5173"})
    assert_error(r, 403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in r.headers


# ---- read-only endpoints --------------------------------------------------------------------

PREFIXES = ("/v1", "/api/gateway", "/api/openrouter")


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_get_one_model(daemon: Daemon, prefix: str) -> None:
    r = await call(daemon, "GET", f"{prefix}/models/{PAID}")
    assert r.status == 200, r.raw
    m = r.json
    assert m["id"] == PAID and m["owned_by"] == "anthropic"
    assert m["pricing"]["prompt"] == "0.000003"
    r = await call(daemon, "GET", f"{prefix}/models/kilo-auto/frontier")
    assert r.status == 200 and r.json["id"] == "kilo-auto/frontier"
    r = await call(daemon, "GET", f"{prefix}/models/nope/model")
    assert_error(r, 404, "model_not_found")


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_providers_list_never_holds_a_key(start_daemon: StartDaemon, prefix: str) -> None:
    d = await start_daemon(FAST, OPENAI_API_KEY=OPENAI_KEY, KILO_API_KEY=KILO_KEY)
    r = await call(d, "GET", f"{prefix}/providers")
    assert r.status == 200
    assert OPENAI_KEY.encode() not in r.raw and KILO_KEY.encode() not in r.raw
    assert LOCAL_KEY.encode() not in r.raw
    rows = {p["slug"]: p for p in r.json["data"]}
    for p in rows.values():
        assert set(p) == {"slug", "name", "displayName", "baseUrl", "byokEnabled", "hasKey"}
    assert rows["openai"]["hasKey"] is True
    assert rows["kilo"]["hasKey"] is True
    assert rows["anthropic"]["hasKey"] is False
    assert rows["openai"]["byokEnabled"] is True


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_models_by_provider_shape(daemon: Daemon, prefix: str) -> None:
    r = await call(daemon, "GET", f"{prefix}/models-by-provider")
    assert r.status == 200
    doc = r.json
    assert {"providers", "total_providers", "total_models", "generated_at"} <= set(doc)
    assert doc["total_providers"] == len(doc["providers"]) > 5
    assert doc["total_models"] == sum(len(p["models"]) for p in doc["providers"]) > 300
    assert isinstance(doc["generated_at"], str) and doc["generated_at"]
    anthropic = next(p for p in doc["providers"] if p["slug"] == "anthropic")
    assert {"slug", "name", "displayName", "models"} <= set(anthropic)
    assert PAID in {m["id"] for m in anthropic["models"]}


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_models_list_under_every_prefix(daemon: Daemon, prefix: str) -> None:
    r = await call(daemon, "GET", f"{prefix}/models")
    assert r.status == 200
    ids = {m["id"] for m in r.json["data"]}
    assert PAID in ids and "kilo-auto/frontier" in ids


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_chat_under_every_prefix(start_daemon: StartDaemon, fake: FakeUpstream,
                                       prefix: str) -> None:
    d = await start_daemon(FAST, OPENAI_API_KEY=OPENAI_KEY)
    r = await chat(d, {"model": "openai/gpt-5.2", "messages": HELLO}, prefix=prefix)
    assert r.status == 200, r.raw
    route_headers(r, "byok", "openai", "openai/gpt-5.2")
    assert fake.last.path == "/openai/v1/chat/completions"


async def test_health(daemon: Daemon) -> None:
    r = await call(daemon, "GET", "/health")
    assert r.status == 200
    assert r.json["status"] == "ok" and r.json["version"]


# ---- /api/... pass-through --------------------------------------------------------------------

async def test_api_passthrough_to_kilo(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, KILO_API_KEY=KILO_KEY)
    r = await call(d, "GET", "/api/profile?x=1&y=%2B", headers=auth())
    assert r.status == 200, r.raw
    assert r.json["echo_path"] == "/api/profile?x=1&y=%2B"
    assert r.json["method"] == "GET"
    assert fake.last.headers["Authorization"] == f"Bearer {KILO_KEY}"
    r = await call(d, "POST", "/api/defaults", body={"a": 1},
                   headers={"x-api-key": LOCAL_KEY})
    assert r.status == 200
    assert r.json["body"] == {"a": 1} and r.json["method"] == "POST"
    assert fake.last.headers["Authorization"] == f"Bearer {KILO_KEY}"
    assert "x-api-key" not in {k.lower() for k in fake.last.headers}


async def test_api_passthrough_keeps_the_raw_path(start_daemon: StartDaemon,
                                                  aiohttp_server: Any) -> None:
    raw_paths: list[str] = []

    async def echo(request: web.Request) -> web.Response:
        raw_paths.append(request.raw_path)
        return web.json_response({"ok": True}, headers={"x-kilo-extra": "1"})

    kilo = web.Application()
    kilo.router.add_route("*", "/{tail:.*}", echo)
    server = await aiohttp_server(kilo)
    api_url = str(server.make_url("")).rstrip("/")
    d = await start_daemon({**FAST, "providers": {"kilo": {"api_url": api_url}}},
                           KILO_API_KEY=KILO_KEY)
    path = "/api/users/a%2Fb/profile?next=%2Fhome&q=a+b&r=%2B1"
    async with aiohttp.ClientSession() as s:
        async with s.get(URL(d.url + path, encoded=True), headers=auth()) as resp:
            assert resp.status == 200
            assert resp.headers["x-kilo-extra"] == "1"
            assert await resp.json() == {"ok": True}
    assert raw_paths == [path]


async def test_api_passthrough_needs_local_auth(start_daemon: StartDaemon,
                                                fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, KILO_API_KEY=KILO_KEY)
    for headers in ({}, {"Authorization": "Bearer anonymous"}):
        r = await call(d, "GET", "/api/profile?x=1", headers=headers)
        assert_error(r, 401, "authentication_required")
    r = await call(d, "GET", "/api/profile?x=1", headers=auth("wrong"))
    assert_error(r, 401, "authentication_required")
    assert fake.seen == []


# ---- junk that must not become a 500 (review findings) ---------------------------------------

async def test_deeply_nested_json_is_400(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(OPENAI_API_KEY=OPENAI_KEY)
    deep = b'{"model": "openai/gpt-5.2", "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    r = await call(d, "POST", "/v1/chat/completions", data=deep,
                   headers={**auth(), "Content-Type": "application/json"})
    assert_error(r, 400, "invalid_request")


async def test_odd_content_parts_are_forwarded_not_500(start_daemon: StartDaemon,
                                                       fake: FakeUpstream) -> None:
    d = await start_daemon(OPENAI_API_KEY=OPENAI_KEY)
    odd = [{"role": "user", "content": [{"type": "text", "text": 5}]},
           {"role": "assistant", "content": "x", "tool_calls": 5}]
    r = await chat(d, {"model": "openai/gpt-5.2", "messages": odd})
    assert r.status == 200  # the provider judges its own input; the fake accepts it
    assert fake.last.body["messages"] == odd


async def test_lone_surrogate_is_forwarded(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(OPENAI_API_KEY=OPENAI_KEY)
    raw = b'{"model": "openai/gpt-5.2", "messages": [{"role": "user", "content": "hi \\ud83d"}]}'
    r = await call(d, "POST", "/v1/chat/completions", data=raw,
                   headers={**auth(), "Content-Type": "application/json"})
    assert r.status == 200, r.raw
    assert b"\\ud83d" in fake.last.raw  # sent on escaped, as JSON allows
