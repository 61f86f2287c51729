"""Issue 6, items 1-9, 12, 13, 16: each one-line reproduction, replayed against a real daemon
(started in-process as `localgate serve` starts it) in front of tests/wire.py's scripted
upstream, through HTTP only; the spend log is read back from spend.db. Each test fails on the
behaviour the issue describes. Items needing a `localgate serve` process, files on disk or the
CLI are in test_hardening_files.py; item 17 in test_hardening_gaps.py.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import aiohttp
import pytest
from yarl import URL

from localgate import relay
from tests.conftest import LOCAL_KEY, Daemon, StartDaemon, auth
from tests.hardening_helpers import (BYOK, HELLO, KILO_KEY, OPENAI_KEY, cost_of, prices,
                                     raw_request, read_rows, rows, up, wire_at)
from tests.http import Reply, call, chat
from tests.wire import MARKER, Script, Wire


@pytest.fixture
async def wire(aiohttp_server: Any) -> Wire:
    return await wire_at(aiohttp_server)


async def post(d: Daemon, path: str, body: Any, key: str | None = LOCAL_KEY,
               headers: dict[str, str] | None = None) -> Reply:
    return await call(d, "POST", path, body=body,
                      headers={**(auth(key) if key else {}), **(headers or {})})


async def post_big(d: Daemon, body: Any, headers: dict[str, str]) -> Reply:
    """A body too big for aiohttp to send from bytes without a warning: from a stream."""
    raw = io.BytesIO(json.dumps(body).encode())
    return await call(d, "POST", "/v1/chat/completions", data=raw,
                      headers={**headers, "Content-Type": "application/json"})


def events(raw: bytes) -> list[Any]:
    out: list[Any] = []
    for line in raw.decode().split("\n"):
        if line.startswith("data:"):
            data = line[5:].strip()
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


# A malformed request (400) is logged `error` (tests/test_spend.py pins that); the point
# is that it is never `ok` nor left `in_flight`, and that nothing was sent.
FINAL_400 = {"error", "refused"}


# ---- 1. forwarded inference reserves a real worst case ------------------------------------------

async def test_1_parallel_forwarded_calls_cannot_walk_around_the_limit(
        start_daemon: StartDaemon, wire: Wire) -> None:
    d = await up(start_daemon, wire, {"limits": {"daily_usd": 1.0}}, KILO_API_KEY=KILO_KEY)
    wire.script = Script(usage={"prompt_tokens": 10, "completion_tokens": 20, "cost": 0.5},
                         header_delay=0.3)
    body = {"model": BYOK, "prompt": "def add(a, b):"}  # no max_tokens, as IDEs send it
    replies = await asyncio.gather(*(post(d, "/api/gateway/completions", body)
                                     for _ in range(50)))
    ok = [r for r in replies if r.status == 200]
    refused = [r for r in replies if r.status != 200]
    assert ok, [r.raw for r in replies[:3]]
    for r in refused:
        assert r.error(402, "usage_limit_exceeded")["period"] == "day"
    got = await rows(d, 50)
    spent = sum(r["cost_microdollars"] for r in got)
    print(f"\n50 parallel forwarded calls at $0.50 under a $1 limit: {len(ok)} admitted, "
          f"${spent / 1e6:.2f} spent")
    assert spent <= 1_000_000 + 500_000  # the limit plus one request, never 25x
    assert len(wire.seen) == len(ok)
    assert sorted(r["status"] for r in got) == ["ok"] * len(ok) + ["refused"] * len(refused)
    assert {(r["route"], r["cost_source"], r["cost_microdollars"]) for r in got
            if r["status"] == "ok"} == {("gateway", "upstream", 500_000)}


# ---- 2. dated, variant and unknown ids still cost ------------------------------------------------

async def test_2_a_dated_id_prices_as_its_base_model(start_daemon: StartDaemon,
                                                     wire: Wire) -> None:
    d = await up(start_daemon, wire, OPENAI_API_KEY=OPENAI_KEY)
    wire.script = Script(usage={"prompt_tokens": 1000, "completion_tokens": 50_000})
    for model in ("openai/gpt-5.2-2025-12-11", BYOK):
        r = await chat(d, {"model": model, "messages": HELLO})
        assert r.status == 200, r.raw
    dated, base = await rows(d, 2)
    want = cost_of(await prices(d, BYOK), 1000, 50_000)
    assert want > 500_000  # about $0.70 at gpt-5.2 prices, not $0
    assert (dated["model"], dated["cost_source"], dated["cost_microdollars"]) == (
        "openai/gpt-5.2-2025-12-11", "catalog", want)
    assert (base["cost_source"], base["cost_microdollars"]) == ("catalog", want)


async def test_2_an_unknown_model_counts_at_its_providers_dearest_prices(
        start_daemon: StartDaemon, wire: Wire) -> None:
    d = await up(start_daemon, wire, {"limits": {"daily_usd": 1.0}}, OPENAI_API_KEY=OPENAI_KEY)
    wire.script = Script(usage={"prompt_tokens": 1000, "completion_tokens": 2000})
    async with aiohttp.ClientSession() as s, s.get(f"{d.url}/v1/models") as resp:
        listed = (await resp.json())["data"]
    from decimal import Decimal
    own = [m["pricing"] for m in listed if m["owned_by"] == "openai" and not m["isFree"]]
    dearest = {k: max(Decimal(p[k]) for p in own) for k in ("prompt", "completion")}
    model = "openai/gpt-99-unreleased"
    first = await chat(d, {"model": model, "messages": HELLO})
    assert first.status == 200, first.raw
    second = await chat(d, {"model": model, "messages": HELLO})
    second.error(402, "usage_limit_exceeded")
    assert len(wire.seen) == 1  # the second never reached the provider
    row = (await rows(d, 2))[0]
    assert row["cost_source"] == "estimated"
    assert row["cost_microdollars"] == cost_of(dearest, 1000, 2000) > 1_000_000


# ---- 3. every spelling of a path that can spend is controlled and logged -------------------------

SPELLINGS = ["/api/gateway/completions", "/api/gateway/chat/completions/",
             "/api//gateway/chat/completions"]


async def test_3_every_path_spelling_is_controlled_and_logged(start_daemon: StartDaemon,
                                                              wire: Wire) -> None:
    d = await up(start_daemon, wire, {"limits": {"daily_usd": 1.0, "allow_models": [BYOK]}},
                 KILO_API_KEY=KILO_KEY)
    wire.script = Script(usage={"prompt_tokens": 5, "completion_tokens": 5, "cost": 0.4})

    async def send(path: str, model: str) -> Reply:
        body: dict[str, Any] = {"model": model, "messages": HELLO, "prompt": "hi"}
        async with aiohttp.ClientSession() as s, s.post(
                URL(d.url + path, encoded=True), json=body, headers=auth()) as resp:
            return Reply(resp.status, resp.headers, await resp.read())

    for path in SPELLINGS:  # an allow list holds on every spelling
        (await send(path, "anthropic/claude-sonnet-4.6")).error(403, "model_not_allowed")
    assert wire.seen == []
    for path in SPELLINGS:  # allowed: sent, logged and costed ($0.40 each: $1.20 in all)
        r = await send(path, BYOK)
        assert r.status == 200, (path, r.raw)
    for path in SPELLINGS:  # over the limit now: refused on every spelling
        (await send(path, BYOK)).error(402, "usage_limit_exceeded")
    assert [s.path for s in wire.seen] == ["/api/gateway/completions",
                                           "/api/gateway/chat/completions",
                                           "/api/gateway/chat/completions"]
    got = await rows(d, 9)
    assert [(r["status"], r["http_status"]) for r in got] == (
        [("refused", 403)] * 3 + [("ok", 200)] * 3 + [("refused", 402)] * 3)
    assert [r["cost_microdollars"] for r in got[3:6]] == [400_000] * 3


# ---- 5. a hostile string never loses a row -------------------------------------------------------

async def test_5_hostile_strings_never_lose_a_row(start_daemon: StartDaemon,
                                                  wire: Wire) -> None:
    d = await up(start_daemon, wire, OPENAI_API_KEY=OPENAI_KEY)
    wire.script = Script(header_delay=0.05)  # requests overlap, so their rows share batches
    body = json.dumps({"model": BYOK, "messages": HELLO}).encode()
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nAuthorization: Bearer " + LOCAL_KEY.encode())
    hostile = [
        # a lone surrogate (a JavaScript client's broken string) in the model id
        raw_request(d.running.port, head, body.replace(BYOK.encode(),
                                                        BYOK.encode() + b"\\ud800")),
        # invalid UTF-8 in the User-Agent and x-kilocode-mode (an encoded surrogate, a stray byte)
        raw_request(d.running.port, head + b"\r\nUser-Agent: ide/\xed\xa0\x80\xff"
                    b"\r\nx-kilocode-mode: co\xffde", body),
        # invalid UTF-8 inside the JSON body
        raw_request(d.running.port, head, body.replace(b"hi", b"h\xff\xfei")),
    ]
    normal = [chat(d, {"model": BYOK, "messages": HELLO}) for _ in range(30)]
    got = await asyncio.gather(*hostile, *normal)
    ids = [g[1]["x-request-id"] for g in got[:3]] + [g.headers["x-request-id"] for g in got[3:]]
    statuses = [g[0] for g in got[:3]] + [g.status for g in got[3:]]
    assert statuses[3:] == [200] * 30
    assert statuses[0] == 400 and statuses[1] == 200, statuses[:3]
    assert statuses[2] in (200, 400)
    logged = await rows(d, 33)
    assert sorted(r["id"] for r in logged) == sorted(ids)
    by_id = {r["id"]: r for r in logged}
    assert by_id[ids[0]]["http_status"] == 400 and by_id[ids[0]]["status"] in FINAL_400
    assert by_id[ids[1]]["status"] == "ok"
    assert by_id[ids[1]]["user_agent"].startswith("ide/")  # kept, made storable
    assert by_id[ids[1]]["mode"].startswith("co")


# ---- 7. control characters and malformed fields --------------------------------------------------

INFERENCE_PATHS = ["/v1/chat/completions", "/v1/fim/completions", "/api/gateway/completions",
                   "/v1/embeddings"]


@pytest.mark.parametrize("bad", ["openai/gpt\x00-5.2", "openai/gpt-5.2\r\nX-Injected: yes",
                                 "openai/gpt\n-5.2"], ids=["NUL", "CRLF", "LF"])
async def test_7_control_characters_in_model_are_a_400_before_anything_is_sent(
        start_daemon: StartDaemon, wire: Wire, bad: str) -> None:
    d = await up(start_daemon, wire, OPENAI_API_KEY=OPENAI_KEY, KILO_API_KEY=KILO_KEY,
                 MISTRAL_API_KEY="mistral-k")
    for path in INFERENCE_PATHS:
        r = await post(d, path, {"model": bad, "messages": HELLO, "prompt": "x", "input": "x"})
        r.error(400, param="model")
    assert wire.seen == []
    got = await rows(d, len(INFERENCE_PATHS))
    assert {r["http_status"] for r in got} == {400}
    assert {r["status"] for r in got} <= FINAL_400


@pytest.mark.parametrize("path", INFERENCE_PATHS)
@pytest.mark.parametrize("body", [{"prompt": 1}, {"model": BYOK, "prompt": 1},
                                  {"model": BYOK, "messages": HELLO, "prompt": 1},
                                  {"model": BYOK, "prompt": [1, {"a": None}], "suffix": 2},
                                  {"model": BYOK, "input": {"x": 1}}],
                         ids=["prompt", "model+prompt", "messages+prompt", "junk", "input"])
async def test_7_malformed_fields_are_never_a_500_and_their_row_is_final(
        start_daemon: StartDaemon, wire: Wire, path: str, body: dict[str, Any]) -> None:
    d = await up(start_daemon, wire, OPENAI_API_KEY=OPENAI_KEY, KILO_API_KEY=KILO_KEY)
    r = await post(d, path, body)
    assert r.status < 500 or MARKER in r.raw.decode(), (r.status, r.raw)
    if r.status >= 400:
        r.error(r.status)
    [row] = await rows(d, 1)
    assert row["status"] != "in_flight" and row["http_status"] == r.status, row


# ---- 8. keys echoed by an upstream never reach a client ------------------------------------------

def assert_no_key(r: Reply, *keys: str) -> None:
    seen = r.raw.decode("utf-8", "replace") + json.dumps(dict(r.headers))
    for key in keys:
        assert key not in seen, f"a key reached the client: {seen[:500]}"


@pytest.mark.parametrize("stream", [False, True], ids=["body", "stream"])
async def test_8_an_echoed_kilo_key_never_reaches_an_anonymous_caller(
        start_daemon: StartDaemon, wire: Wire, stream: bool) -> None:
    d = await up(start_daemon, wire, KILO_API_KEY=KILO_KEY)
    wire.script = Script(echo_key=True)
    r = await chat(d, {"model": "kilo-auto/free", "messages": HELLO, "stream": stream},
                   headers={})
    assert r.status == 200, r.raw
    assert wire.seen[-1].headers["Authorization"] == f"Bearer {KILO_KEY}"  # it was echoed...
    assert r.headers["x-localgate-route"] == "free"
    assert_no_key(r, KILO_KEY)                                           # ...and scrubbed
    assert "Bearer <your key>" in r.raw.decode()


async def test_8_an_echoed_provider_key_is_scrubbed_from_bodies_and_errors(
        start_daemon: StartDaemon, wire: Wire) -> None:
    d = await up(start_daemon, wire, {"routing": {"fallback_to_gateway": False}},
                 OPENAI_API_KEY=OPENAI_KEY)
    for script in (Script(echo_key=True), Script(echo_key=True, status=400),
                   Script(echo_key=True, status=500)):
        wire.script = script
        for stream in (False, True):
            r = await chat(d, {"model": BYOK, "messages": HELLO, "stream": stream})
            assert r.status == script.status, r.raw
            assert_no_key(r, OPENAI_KEY)
    for row in await rows(d, 6):
        assert OPENAI_KEY not in json.dumps(row)


@pytest.mark.parametrize("piece", [None, 7], ids=["whole", "split-reads"])
async def test_8_pass_through_answers_are_scrubbed_body_and_headers(
        start_daemon: StartDaemon, wire: Wire, piece: int | None) -> None:
    d = await up(start_daemon, wire, KILO_API_KEY=KILO_KEY)
    wire.script = Script(echo_key=True, piece=piece)
    r = await call(d, "GET", "/api/profile", headers=auth())
    assert r.status == 200, r.raw
    assert wire.seen[-1].headers["Authorization"] == f"Bearer {KILO_KEY}"
    assert r.json["who"] == MARKER and r.json["path"] == "/api/profile"
    assert_no_key(r, KILO_KEY, LOCAL_KEY)


async def test_8_a_key_split_across_reads_of_a_forwarded_stream_is_scrubbed(
        start_daemon: StartDaemon, wire: Wire) -> None:
    d = await up(start_daemon, wire, KILO_API_KEY=KILO_KEY)
    wire.script = Script(echo_key=True, piece=1, piece_delay=0.001)  # one byte a read
    r = await post(d, "/api/gateway/completions", {"model": BYOK, "prompt": "x", "stream": True})
    # (the search for local models may reach the fake meanwhile: find the forwarded call)
    [sent] = [s for s in wire.seen if s.path == "/api/gateway/completions"]
    assert r.status == 200 and sent.headers["Authorization"] == f"Bearer {KILO_KEY}"
    assert_no_key(r, KILO_KEY)


# ---- 9. CORS: IDE webviews may read answers, web pages may not -----------------------------------

async def test_9_cors_for_ide_webviews_on_every_kind_of_answer(start_daemon: StartDaemon,
                                                                wire: Wire) -> None:
    d = await up(start_daemon, wire, OPENAI_API_KEY=OPENAI_KEY, KILO_API_KEY=KILO_KEY)
    webview = "vscode-webview://1a2b3c4d"
    head = {**auth(), "Origin": webview}
    answers = {
        "stream": await chat(d, {"model": BYOK, "messages": HELLO, "stream": True}, head),
        "body": await chat(d, {"model": BYOK, "messages": HELLO}, head),
        "error": await chat(d, {"model": "nosuch/model", "messages": HELLO}, head),
        "auth error": await chat(d, {"model": BYOK, "messages": HELLO},
                                 {"Origin": webview, "Authorization": "Bearer wrong"}),
        "pass-through": await call(d, "GET", "/api/profile", headers=head),
        "preflight": await call(d, "OPTIONS", "/v1/chat/completions",
                                headers={"Origin": webview,
                                         "Access-Control-Request-Method": "POST"}),
    }
    assert [r.status for r in answers.values()] == [200, 200, 404, 401, 200, 204]
    for what, r in answers.items():
        assert r.headers.get("Access-Control-Allow-Origin") == webview, what
    for origin in ("http://localhost:3000", "http://127.0.0.1:5173", "https://evil.example"):
        r = await chat(d, {"model": BYOK, "messages": HELLO}, {**auth(), "Origin": origin})
        r.error(403, "origin_not_allowed")
        assert "Access-Control-Allow-Origin" not in r.headers
        pre = await call(d, "OPTIONS", "/v1/chat/completions", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST"})
        assert pre.status == 403 and "Access-Control-Allow-Origin" not in pre.headers
    assert len(wire.seen) == 3  # stream, body, pass-through: nothing from a web page


# ---- 12. bounded memory and storage --------------------------------------------------------------

async def test_12_anonymous_bodies_over_1_mb_are_413_and_logged_as_refused(
        start_daemon: StartDaemon, wire: Wire) -> None:
    d = await up(start_daemon, wire)
    big = {"model": "z-ai/glm-5:free", "messages": [{"role": "user", "content": "x" * 1_200_000}]}
    r = await post_big(d, big, {})
    r.error(413)
    assert wire.seen == []
    [row] = await rows(d, 1)
    assert (row["client"], row["status"], row["http_status"]) == ("anonymous", "refused", 413)


async def test_12_a_5_mb_model_is_a_400_and_never_stored(start_daemon: StartDaemon,
                                                        wire: Wire) -> None:
    d = await up(start_daemon, wire, OPENAI_API_KEY=OPENAI_KEY)
    r = await post_big(d, {"model": "openai/" + "g" * 5_000_000, "messages": HELLO}, auth())
    r.error(400, param="model")
    assert len(r.raw) < 2000  # the answer does not echo it either
    [row] = await rows(d, 1)
    assert row["status"] in FINAL_400 and len(row["model"]) <= 256
    size = sum(p.stat().st_size for p in d.home.glob("spend.db*"))
    assert size < 1_000_000, size


async def test_12_anonymous_refusals_are_rate_limited(start_daemon: StartDaemon,
                                                      wire: Wire) -> None:
    d = await up(start_daemon, wire)
    body = {"model": "nosuch/model", "messages": HELLO}
    async with aiohttp.ClientSession() as s:
        statuses = []
        for _ in range(4):
            statuses += [r.status for r in await asyncio.gather(*(
                call(d, "POST", "/v1/chat/completions", body=body, session=s)
                for _ in range(50)))]
        last = await call(d, "POST", "/v1/chat/completions", body=body, session=s)
    assert statuses == [404] * 200
    last.error(429, "rate_limit_exceeded")
    assert int(last.headers["Retry-After"]) > 0


# ---- 13. rows that say what happened -------------------------------------------------------------

async def test_13_a_413_is_logged_as_refused_413(start_daemon: StartDaemon, wire: Wire) -> None:
    d = await up(start_daemon, wire, {"server": {"max_body_mb": 0.5}},
                 OPENAI_API_KEY=OPENAI_KEY)
    r = await post_big(d, {"model": BYOK, "messages": [{"role": "user", "content": "x" * 700_000}]},
                       auth())
    r.error(413)
    [row] = await rows(d, 1)
    assert (row["status"], row["http_status"]) == ("refused", 413)
    assert "internal" not in (row["error"] or "")


@pytest.mark.parametrize("depth", [300, 1000, 5000, 200_000])
@pytest.mark.parametrize("path", INFERENCE_PATHS)
async def test_13_deeply_nested_json_is_a_400(start_daemon: StartDaemon, wire: Wire,
                                              depth: int, path: str) -> None:
    d = await up(start_daemon, wire, OPENAI_API_KEY=OPENAI_KEY, KILO_API_KEY=KILO_KEY,
                 MISTRAL_API_KEY="mistral-k")
    raw = (b'{"model":"openai/gpt-5.2","messages":[{"role":"user","content":"hi"}],'
           b'"prompt":"x","input":"x","x":' + b"[" * depth + b"]" * depth + b"}")
    r = await call(d, "POST", path, data=io.BytesIO(raw),
                   headers={**auth(), "Content-Type": "application/json"})
    if depth < 1000 and r.status == 200:  # a depth localgate can still write: answered
        assert len(wire.seen) == 1
    else:
        r.error(400)
        assert wire.seen == []
    [row] = await rows(d, 1)
    assert row["http_status"] == r.status and row["status"] in FINAL_400 | {"ok"}


async def test_13_a_call_waiting_for_headers_at_shutdown_is_logged_interrupted(
        start_daemon: StartDaemon, wire: Wire) -> None:
    d = await up(start_daemon, wire, {"routing": {"fallback_to_gateway": False}},
                 OPENAI_API_KEY=OPENAI_KEY)
    wire.script = Script(hang=True)
    held = asyncio.create_task(chat(d, {"model": BYOK, "messages": HELLO}))
    while not wire.seen:
        await asyncio.sleep(0.01)
    await asyncio.wait_for(d.running.stop(), 3)  # what SIGTERM runs (runtime.serve)
    r = await asyncio.wait_for(held, 3)
    r.error(503)
    row = (await asyncio.to_thread(read_rows, d.home / "spend.db"))[0]
    assert row["status"] == "interrupted", row


# ---- 16. a bug after the response is prepared still ends the stream ------------------------------

class _Broken(relay.SseWatcher):
    """Raises on the second chunk fed, and when asked for the stream's ids (what the issue
    injected): a bug in the relay after the headers went out."""

    __slots__ = ("_n",)

    def feed(self, chunk: bytes) -> bytes:
        self._n = getattr(self, "_n", 0) + 1
        if self._n == 2:
            raise TypeError("injected")
        return super().feed(chunk)

    def ids(self) -> tuple[str | None, str | None]:
        raise TypeError("injected too")


async def test_16_an_exception_mid_stream_still_ends_it_with_an_error_event(
        start_daemon: StartDaemon, wire: Wire, monkeypatch: pytest.MonkeyPatch) -> None:
    # A monkeypatch, not a fake: the fault must be inside localgate's own relay, after the
    # response was prepared; no upstream behaviour can make localgate's code raise there.
    monkeypatch.setattr(relay, "SseWatcher", _Broken)
    d = await up(start_daemon, wire, OPENAI_API_KEY=OPENAI_KEY)
    wire.script = Script(chunks=5, chunk_delay=0.02)
    r = await asyncio.wait_for(chat(d, {"model": BYOK, "messages": HELLO, "stream": True}), 5)
    assert r.status == 200
    evs = events(r.raw)
    assert evs[-1] == "[DONE]", evs
    err = evs[-2]
    assert isinstance(err, dict) and err["error"]["message"], evs
    assert err["choices"][0]["finish_reason"] == "error"
    assert "TypeError" not in r.raw.decode() and "Traceback" not in r.raw.decode()
    [row] = await rows(d, 1)
    assert row["status"] == "error" and row["latency_ms"] is not None, row


def test_16_the_suite_has_a_per_test_timeout(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.hasplugin("timeout")
    assert 0 < float(pytestconfig.getini("timeout")) <= 300
