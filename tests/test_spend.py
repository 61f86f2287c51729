"""Spend log, offline review and spending controls (SPEC sections 1, 5, 6), through the public
surface only: HTTP (openai SDK / aiohttp), the CLI as a subprocess, spend.db read with sqlite3.

In-process daemons share the event loop with the fake upstream; every subprocess here is
asyncio's, and SQLite reads and the ledger flush run in a thread, so the loop never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import json
import re
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from localgate import config, runtime
from tests.conftest import LOCAL_KEY, Daemon, StartDaemon, auth, keychain_entries
from tests.fakes import FakeUpstream
from tests.http import Reply, chat, openai_at
from tests.test_daemon import acli, daemon_env, serve, write_config

HELLO = [{"role": "user", "content": "hi"}]
OPENAI_KEY = "sk-test-openai-spend-5551212"
OPENROUTER_KEY = "or-test-key-spend-0451"
KILO_KEY = "kilo-test-key-spend-7788"
BYOK = "openai/gpt-5.2"
SONNET = "anthropic/claude-sonnet-4.6"
FREE = "z-ai/glm-5:free"
LOCAL = "ollama/llama3"
MICRO = Decimal(1_000_000)
# SPEC section 6, in order: the spend log's fields and the keys of `localgate log --format json`
SPEC_FIELDS = ["id", "ts", "client", "user_agent", "model", "resolved_model", "provider", "route",
               "mode", "stream", "status", "http_status", "prompt_tokens", "completion_tokens",
               "cached_tokens", "cache_write_tokens", "reasoning_tokens", "cost_microdollars",
               "cost_source", "ttft_ms", "latency_ms", "repairs", "error"]
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
# a zone 5:30 east of UTC without tzdata: local times and "today" must really be local
TZ_ENV = "LGT-5:30"
TZ = timezone(timedelta(hours=5, minutes=30))


# ---- helpers ------------------------------------------------------------------------------------

async def post(url: str, body: dict[str, Any], key: str | None = LOCAL_KEY,
               headers: dict[str, str] | None = None) -> Reply:
    return await chat(url, body, headers={**(auth(key) if key else {}), **(headers or {})})


def sse_objects(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for line in raw.decode().split("\n"):
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            out.append(json.loads(line[5:]))
    return out


def _read_db(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    conn = sqlite3.connect(path, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("select * from spend order by ts, rowid")]
    finally:
        conn.close()


async def db_rows(home: Path) -> list[dict[str, Any]]:
    return await asyncio.to_thread(_read_db, home / "spend.db")


async def settled(home: Path, n: int, d: Daemon | runtime.Running | None = None,
                  timeout: float = 3.0) -> list[dict[str, Any]]:
    """spend.db's rows (oldest first) once there are n and none is in flight; then exactly n."""
    writer = None
    if d is not None:
        writer = (d.running if isinstance(d, Daemon) else d).built.spend_log
    deadline = time.monotonic() + timeout
    while True:
        if writer is not None:
            assert await asyncio.to_thread(writer.flush)
        rows = await db_rows(home)
        if len(rows) >= n and all(r["status"] != "in_flight" for r in rows):
            break
        assert time.monotonic() < deadline, f"rows never settled to {n}: {rows}"
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)  # anything late would show up now
    if writer is not None:
        await asyncio.to_thread(writer.flush)
    rows = await db_rows(home)
    assert len(rows) == n, rows
    return rows


async def prices(url: str, model: str) -> dict[str, Decimal]:
    async with aiohttp.ClientSession() as s, s.get(f"{url}/v1/models/{model}") as r:
        assert r.status == 200
        p = (await r.json())["pricing"]
    return {k: Decimal(str(v or "0")) for k, v in p.items()}


def micros(usd: Decimal) -> int:
    return int((usd * MICRO).to_integral_value(ROUND_HALF_UP))


def catalog_micros(p: dict[str, Decimal], prompt: int, completion: int, cached: int = 0,
                   written: int = 0) -> int:
    """What SPEC 6 says a request costs at catalog prices (cache prices where listed; a cache
    write without its own price costs the plain input price)."""
    plain = prompt - cached - written
    cwrite = p.get("input_cache_write") or p["prompt"]
    return micros(plain * p["prompt"] + cached * (p.get("input_cache_read") or p["prompt"])
                  + written * cwrite + completion * p["completion"] + p.get("request", 0))


@contextlib.asynccontextmanager
async def inproc(home: Path, fake: FakeUpstream,
                 extra: dict[str, Any] | None = None) -> AsyncIterator[runtime.Running]:
    """The daemon in-process as `serve` starts it, stopped at the end (for offline checks)."""
    write_config(home, fake.url, extra)
    settings = await asyncio.to_thread(config.load)
    running = await runtime.start(settings, "127.0.0.1", 0)
    try:
        yield running
    finally:
        await running.stop()


def custom_upstream(usage: dict[str, Any] | None, words: tuple[str, ...] = (
        "Hello ", "there, ", "friend.")) -> web.Application:
    """An OpenAI-format upstream that reports exactly `usage` (None: no usage at all, even when
    include_usage is asked for)."""
    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model = body.get("model", "m")
        if not body.get("stream"):
            obj: dict[str, Any] = {
                "id": "chatcmpl-c", "object": "chat.completion", "created": 1, "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "".join(words)}}]}
            if usage is not None:
                obj["usage"] = usage
            return web.json_response(obj)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        async def send(delta: dict[str, Any], finish: str | None) -> None:
            chunk = {"id": "chatcmpl-c", "object": "chat.completion.chunk", "created": 1,
                     "model": model, "choices": [{"index": 0, "delta": delta,
                                                  "finish_reason": finish}]}
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")

        await send({"role": "assistant", "content": ""}, None)
        for w in words:
            await send({"content": w}, None)
        await send({}, "stop")
        if usage is not None and (body.get("stream_options") or {}).get("include_usage"):
            final = {"id": "chatcmpl-c", "object": "chat.completion.chunk", "created": 1,
                     "model": model, "choices": [], "usage": usage}
            await resp.write(b"data: " + json.dumps(final).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


def local_text(ts: str) -> str:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(TZ).strftime(
        "%Y-%m-%d %H:%M:%S")


def utc_text(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# ---- 1. one row per request, every field -------------------------------------------------------

BROKEN_TOOLS = [
    {"role": "user", "content": "weather?"},
    {"role": "tool", "tool_call_id": "orphan", "content": "stray"},          # dropped: 1 repair
    {"role": "assistant", "content": None, "tool_calls": [                  # no result: 1 repair
        {"id": "call_1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
    {"role": "user", "content": "continue"},
]


async def test_one_row_per_request_with_every_field(start_daemon: StartDaemon,
                                                    fake: FakeUpstream) -> None:
    d = await start_daemon(OPENAI_API_KEY=OPENAI_KEY, KILO_API_KEY=KILO_KEY)
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    r1 = await post(d.url, {"model": BYOK, "messages": BROKEN_TOOLS},
                    headers={"User-Agent": "spend-test/1.0", "x-kilocode-mode": "code"})
    assert r1.status == 200, r1.raw
    r2 = await post(d.url, {"model": "kilo-auto/frontier", "messages": HELLO, "stream": True},
                    headers={"User-Agent": "Kilo-Code/5.0", "X-KiloCode-Mode": "Plan"})
    assert r2.status == 200, r2.raw
    await settled(d.home, 2, d)
    code, out, err = await acli("log", "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 2
    for row in rows:
        assert set(row) == set(SPEC_FIELDS), set(row) ^ set(SPEC_FIELDS)
        assert TS_RE.match(row["ts"]), row["ts"]
        ts = datetime.fromisoformat(row["ts"].replace("Z", "+00:00"))
        assert before <= ts <= datetime.now(timezone.utc), row["ts"]
        assert row["client"] == "default"
        assert row["status"] == "ok" and row["http_status"] == 200 and row["error"] is None
        assert isinstance(row["stream"], bool)
        assert row["latency_ms"] is not None and row["ttft_ms"] is not None
    by_id = {r["id"]: r for r in rows}
    a, b = by_id[r1.headers["x-request-id"]], by_id[r2.headers["x-request-id"]]
    assert rows[0]["id"] == b["id"]  # newest first
    assert (a["model"], a["resolved_model"], a["provider"], a["route"], a["mode"]) == (
        BYOK, BYOK, "openai", "byok", "code")
    assert a["stream"] is False and a["user_agent"] == "spend-test/1.0"
    assert a["repairs"] == 2
    assert (a["prompt_tokens"], a["completion_tokens"]) == (11, 7)
    assert a["cost_source"] == "catalog" and a["cost_microdollars"] > 0
    assert (b["model"], b["resolved_model"], b["provider"], b["route"], b["mode"]) == (
        "kilo-auto/frontier", "anthropic/claude-opus-4.6", "anthropic", "gateway", "plan")
    assert b["stream"] is True and b["user_agent"] == "Kilo-Code/5.0" and b["repairs"] == 0
    assert fake.seen[-1].path == "/api/gateway/chat/completions"


# ---- 2. truthful numbers ------------------------------------------------------------------------

USAGE_CACHED = {"prompt_tokens": 1000, "completion_tokens": 200,
                "prompt_tokens_details": {"cached_tokens": 400}}


async def test_byok_cost_from_catalog_prices_with_cache_reads(start_daemon: StartDaemon,
                                                              fake: FakeUpstream) -> None:
    d = await start_daemon(OPENAI_API_KEY=OPENAI_KEY)
    p = await prices(d.url, BYOK)
    assert p["input_cache_read"] and p["input_cache_read"] < p["prompt"]
    want = catalog_micros(p, 1000, 200, cached=400)
    assert want != catalog_micros(p, 1000, 200)  # the cache price really matters here
    fake.knobs.usage = dict(USAGE_CACHED)  # type: ignore[arg-type]

    r = await post(d.url, {"model": BYOK, "messages": HELLO})
    assert r.status == 200
    usage = r.json["usage"]
    assert usage["prompt_tokens"] == 1000 and usage["completion_tokens"] == 200
    assert usage["is_byok"] is True
    assert Decimal(str(usage["cost"])) == Decimal(want) / MICRO
    assert usage["cost_details"]["upstream_inference_cost"] == usage["cost"]

    async with d.sdk() as client:
        stream = await client.chat.completions.create(
            model=BYOK, messages=HELLO, stream=True, stream_options={"include_usage": True})
        chunks = [c async for c in stream]
    final = chunks[-1]
    assert final.choices == [] and final.usage is not None
    extra = final.usage.model_extra or {}
    assert final.usage.prompt_tokens == 1000
    assert extra["is_byok"] is True
    assert Decimal(str(extra["cost"])) == Decimal(want) / MICRO
    assert extra["cost_details"]["upstream_inference_cost"] == extra["cost"]

    rows = await settled(d.home, 2, d)
    for row, stream_ in zip(rows, (False, True), strict=True):
        assert row["stream"] == stream_
        assert row["cost_source"] == "catalog"
        assert row["cost_microdollars"] == want
        assert isinstance(row["cost_microdollars"], int)
        assert (row["prompt_tokens"], row["completion_tokens"], row["cached_tokens"],
                row["cache_write_tokens"]) == (1000, 200, 400, 0)
    print(f"\ngpt-5.2 1000 in (400 cached) / 200 out = {want} microdollars")


async def test_gateway_cost_is_the_upstreams_and_response_untouched(
        start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon({"routing": {"gateway": "openrouter"}},
                           OPENROUTER_API_KEY=OPENROUTER_KEY)
    fake.knobs.style = "openrouter"
    r = await post(d.url, {"model": SONNET, "messages": HELLO})
    assert r.status == 200 and r.headers["x-localgate-route"] == "gateway"
    assert fake.last.path == "/openrouter/v1/chat/completions"
    # exactly what OpenRouter sent: no fields of ours added, none changed
    assert r.json["usage"] == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18,
                               "cost": 0.000123, "is_byok": False,
                               "prompt_tokens_details": {"cached_tokens": 0},
                               "completion_tokens_details": {"reasoning_tokens": 0},
                               "cost_details": {"upstream_inference_cost": None}}
    r = await post(d.url, {"model": SONNET, "messages": HELLO, "stream": True,
                           "stream_options": {"include_usage": True}})
    final = sse_objects(r.raw)[-1]
    assert final["usage"]["cost"] == 0.000123 and final["usage"]["is_byok"] is False
    rows = await settled(d.home, 2, d)
    for row in rows:
        assert (row["route"], row["cost_source"], row["cost_microdollars"]) == (
            "gateway", "upstream", 123)


async def test_free_and_local_models_cost_nothing(start_daemon: StartDaemon,
                                                  fake: FakeUpstream) -> None:
    d = await start_daemon()
    for model, route in ((FREE, "free"), (LOCAL, "local")):
        r = await post(d.url, {"model": model, "messages": HELLO})
        assert r.status == 200, r.raw
        assert r.headers["x-localgate-route"] == route
        usage = r.json["usage"]
        assert usage["cost"] == 0 and usage["is_byok"] is False
        assert usage["cost_details"]["upstream_inference_cost"] == 0
    assert [s.path for s in fake.seen] == ["/api/gateway/chat/completions",
                                           "/ollama/v1/chat/completions"]
    rows = await settled(d.home, 2, d)
    assert [(r["resolved_model"], r["route"], r["cost_microdollars"], r["cost_source"])
            for r in rows] == [(FREE, "free", 0, "free"), (LOCAL, "local", 0, "free")]
    assert rows[0]["prompt_tokens"] == 11  # the reported tokens are still kept


async def test_no_usage_reported_is_estimated(start_daemon: StartDaemon,
                                              aiohttp_server: Any) -> None:
    extra = await openai_at(aiohttp_server, custom_upstream(None))
    d = await start_daemon(extra, OPENAI_API_KEY=OPENAI_KEY)
    p = await prices(d.url, BYOK)
    long_prompt = [{"role": "user", "content": "x" * 400}]
    for stream in (True, False):
        r = await post(d.url, {"model": BYOK, "messages": long_prompt, "stream": stream})
        assert r.status == 200, r.raw
        if stream:
            assert not any(o.get("usage") for o in sse_objects(r.raw))
    rows = await settled(d.home, 2, d)
    for row in rows:
        assert row["status"] == "ok"
        assert row["cost_source"] == "estimated"
        # 4 characters a token, rounded up: 400 characters of prompt, "Hello there, friend."
        assert (row["prompt_tokens"], row["completion_tokens"]) == (100, 5), row
        assert row["cost_microdollars"] == catalog_micros(p, 100, 5) > 0
    print(f"\nestimated: {[(r['prompt_tokens'], r['completion_tokens']) for r in rows]}")


async def test_anthropic_spelled_usage_is_added_up(start_daemon: StartDaemon,
                                                   aiohttp_server: Any) -> None:
    usage = {"input_tokens": 100, "output_tokens": 50, "cache_read_input_tokens": 300,
             "cache_creation_input_tokens": 200}
    extra = await openai_at(aiohttp_server, custom_upstream(usage))
    d = await start_daemon(extra, OPENAI_API_KEY=OPENAI_KEY)
    p = await prices(d.url, BYOK)
    r = await post(d.url, {"model": BYOK, "messages": HELLO})
    assert r.status == 200
    r = await post(d.url, {"model": BYOK, "messages": HELLO, "stream": True,
                           "stream_options": {"include_usage": True}})
    assert r.status == 200
    rows = await settled(d.home, 2, d)
    for row in rows:
        assert (row["prompt_tokens"], row["completion_tokens"], row["cached_tokens"],
                row["cache_write_tokens"]) == (600, 50, 300, 200)
        assert row["cost_source"] == "catalog"
        assert row["cost_microdollars"] == catalog_micros(p, 600, 50, cached=300, written=200)


async def test_upstream_error_answer_costs_nothing(start_daemon: StartDaemon,
                                                   fake: FakeUpstream) -> None:
    """An upstream that refuses before producing anything has used nothing: no spend."""
    d = await start_daemon({"limits": {"daily_usd": 100.0}}, OPENAI_API_KEY=OPENAI_KEY)
    fake.knobs.status = 400
    r = await post(d.url, {"model": BYOK, "messages": [{"role": "user", "content": "y" * 4000}]})
    assert r.status == 400
    [row] = await settled(d.home, 1, d)
    assert (row["status"], row["http_status"]) == ("error", 400)
    assert row["cost_microdollars"] == 0, row
    code, out, _ = await acli("limits", "--format", "json")
    assert json.loads(out)["spent_today_usd"] == 0


# ---- 3. timing ----------------------------------------------------------------------------------

async def test_ttft_and_latency(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(OPENAI_API_KEY=OPENAI_KEY)
    fake.knobs.chunks, fake.knobs.chunk_delay = 3, 0.2
    first = None
    async with aiohttp.ClientSession() as s:
        t0 = time.monotonic()
        async with s.post(f"{d.url}/v1/chat/completions", headers=auth(),
                          json={"model": BYOK, "messages": HELLO, "stream": True}) as resp:
            async for line in resp.content:
                if first is None and b'"tok0' in line:
                    first = (time.monotonic() - t0) * 1000
        total = (time.monotonic() - t0) * 1000
    [row] = await settled(d.home, 1, d)
    print(f"\nttft {row['ttft_ms']} ms (client saw {first:.0f}), latency {row['latency_ms']} ms "
          f"(client {total:.0f})")
    assert first is not None
    assert 150 <= row["ttft_ms"] <= first + 5
    assert row["ttft_ms"] >= first - 100
    assert row["ttft_ms"] < row["latency_ms"]
    assert 600 <= row["latency_ms"] <= total + 50


# ---- 4. dropped and killed ---------------------------------------------------------------------

async def test_client_disconnect_mid_stream_logs_what_was_used(start_daemon: StartDaemon,
                                                               fake: FakeUpstream) -> None:
    d = await start_daemon(OPENAI_API_KEY=OPENAI_KEY)
    fake.knobs.chunks, fake.knobs.chunk_delay = 20, 0.2
    async with aiohttp.ClientSession() as s:
        resp = await s.post(f"{d.url}/v1/chat/completions", headers=auth(),
                            json={"model": BYOK, "messages": HELLO, "stream": True})
        assert resp.status == 200
        while b'"tok0' not in await asyncio.wait_for(resp.content.readline(), 2):
            pass
        resp.close()
    [row] = await settled(d.home, 1, d)
    assert row["status"] == "client_closed", row
    assert row["id"] == resp.headers["x-request-id"]
    assert row["completion_tokens"] > 0  # estimated from what was streamed
    assert row["cost_source"] == "estimated" and row["cost_microdollars"] > 0
    assert row["latency_ms"] is not None and row["latency_ms"] < 1500


async def test_sigkill_leaves_in_flight_row_then_interrupted(home: Path,
                                                             fake: FakeUpstream) -> None:
    write_config(home, fake.url)
    fake.knobs.chunks, fake.knobs.chunk_delay = 50, 0.2
    env = daemon_env(OPENAI_API_KEY=OPENAI_KEY)
    async with serve(home, env) as d1, aiohttp.ClientSession() as http:
        resp = await http.post(f"{d1.url}/v1/chat/completions", headers=auth(),
                               json={"model": BYOK, "messages": HELLO, "stream": True})
        assert resp.status == 200
        rid = resp.headers["x-request-id"]
        while b'"tok0' not in await asyncio.wait_for(resp.content.readline(), 3):
            pass
        d1.proc.send_signal(signal.SIGKILL)
        await d1.exit_code(3.0)
        resp.close()
    code, out, err = await acli("log", "--format", "json")
    assert code == 0, err
    [row] = json.loads(out)
    assert (row["id"], row["status"], row["stream"]) == (rid, "in_flight", True)

    fake.reset()
    async with serve(home, env) as d2:
        code, out, _ = await acli("log", "--format", "json")
        [row] = json.loads(out)
        assert (row["id"], row["status"]) == (rid, "interrupted")
        assert row["error"]
        reply = await post(d2.url, {"model": BYOK, "messages": HELLO})
        assert reply.status == 200
        d2.proc.send_signal(signal.SIGTERM)
        assert await d2.exit_code(3.0) == 0
    code, out, _ = await acli("log", "--format", "json")  # daemon stopped: offline review
    rows = json.loads(out)
    assert [(r["id"], r["status"]) for r in rows] == [
        (reply.headers["x-request-id"], "ok"), (rid, "interrupted")]


# ---- 5. offline review --------------------------------------------------------------------------

async def populate(home: Path, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
                   ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Five requests on three routes from two clients, then two of them moved back in time
    (3 days ago; a minute before today's local midnight). Returns (rows, env for the CLI)."""
    env = daemon_env(TZ=TZ_ENV)
    code, ci_key, _ = await acli("token", "create", "ci", env=env)
    assert code == 0
    ci_key = ci_key.strip()
    for k, v in (("OPENAI_API_KEY", OPENAI_KEY), ("OPENROUTER_API_KEY", OPENROUTER_KEY)):
        monkeypatch.setenv(k, v)
    async with inproc(home, fake, {"routing": {"gateway": "openrouter"}}) as d:
        url = f"http://127.0.0.1:{d.port}"
        fake.knobs.usage = dict(USAGE_CACHED)  # type: ignore[arg-type]
        assert (await post(url, {"model": BYOK, "messages": HELLO})).status == 200
        fake.knobs.usage = {"prompt_tokens": 11, "completion_tokens": 7}
        assert (await post(url, {"model": BYOK, "messages": HELLO})).status == 200
        assert (await post(url, {"model": BYOK, "messages": HELLO})).status == 200
        fake.knobs.style = "openrouter"
        assert (await post(url, {"model": SONNET, "messages": HELLO}, key=ci_key)).status == 200
        fake.knobs.style = "openai"
        assert (await post(url, {"model": FREE, "messages": HELLO})).status == 200
        rows = await settled(home, 5, d)
        now_local = datetime.now(TZ)
        midnight = now_local.replace(hour=0, minute=0, second=0, microsecond=0)
        moves = {rows[0]["id"]: utc_text(now_local - timedelta(days=3)),
                 rows[1]["id"]: utc_text(midnight - timedelta(minutes=1))}

        def move() -> None:
            conn = sqlite3.connect(home / "spend.db", timeout=10)
            try:
                for rid, ts in moves.items():
                    conn.execute("update spend set ts = ? where id = ?", (ts, rid))
                conn.commit()
            finally:
                conn.close()

        await asyncio.to_thread(move)
        rows = await db_rows(home)
        # review while a daemon is serving
        code, out, err = await acli("spend", "--format", "json", env=env)
        assert code == 0, err
        serving = json.loads(out)
    code, out, err = await acli("spend", "--format", "json", env=env)  # and with it stopped
    assert code == 0, err
    assert json.loads(out) == serving
    assert serving["total"]["requests"] == 5
    return rows, env


def spans(dash_line: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"-+", dash_line)]


def assert_aligned(lines: list[str]) -> list[list[str]]:
    """Every line's cells sit in the columns the dash line draws, separated by blanks."""
    cols = spans(lines[1])
    assert len(cols) >= 2
    width = cols[-1][1]
    cells = []
    for line in [lines[0], *lines[2:]]:
        assert len(line) <= width, line
        line = line.ljust(width)
        for (_, end), (start, _) in zip(cols, cols[1:], strict=False):
            assert line[end:start].strip() == "", (line, end, start)
        row = [line[a:b].strip() for a, b in cols]
        assert all(row[1:]), line
        cells.append(row)
    return cells


async def test_log_review_table_windows_and_csv(home: Path, fake: FakeUpstream,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    rows, env = await populate(home, fake, monkeypatch)
    newest = sorted(rows, key=lambda r: r["ts"], reverse=True)
    ago = utc_text(datetime.now(TZ) - timedelta(days=1))
    today = datetime.now(TZ).strftime("%Y-%m-%d")
    calls = {"table": ["log"], "limit": ["log", "--limit", "2", "--format", "json"],
             "24h": ["log", "--since", "24h", "--format", "json"],
             "today": ["log", "--since", "today", "--format", "json"],
             "until": ["log", "--until", ago, "--format", "json"],
             "until_date": ["log", "--until", today, "--format", "json"],
             "csv": ["log", "--format", "csv"], "bad": ["log", "--since", "last tuesday"]}
    results = dict(zip(calls, await asyncio.gather(
        *(acli(*args, env=env) for args in calls.values())), strict=True))
    for name, (code, _, err) in results.items():
        assert code == (2 if name == "bad" else 0), (name, err)
    assert "last tuesday" in results["bad"][2]

    lines = results["table"][1].rstrip("\n").split("\n")
    cells = assert_aligned(lines)
    head, body = cells[0], cells[1:]
    assert head[0] == "time" and "model" in head and "cost" in head and "status" in head
    assert len(body) == 5
    assert [c[0] for c in body] == [local_text(r["ts"]) for r in newest]  # local, not UTC
    assert local_text(newest[0]["ts"]) != newest[0]["ts"][:19].replace("T", " ")
    model_col, cost_col = head.index("model"), head.index("cost")
    assert [c[model_col] for c in body] == [r["resolved_model"] for r in newest]
    for c, r in zip(body, newest, strict=True):
        assert Decimal(c[cost_col].lstrip("$")) == Decimal(r["cost_microdollars"]) / MICRO

    def ids(name: str) -> list[str]:
        return [r["id"] for r in json.loads(results[name][1])]

    assert ids("limit") == [r["id"] for r in newest[:2]]
    assert ids("24h") == [r["id"] for r in newest if r["id"] != rows[0]["id"]]
    assert ids("today") == [r["id"] for r in newest if r["id"] not in (rows[0]["id"],
                                                                      rows[1]["id"])]
    assert ids("until") == [rows[0]["id"]]
    assert ids("until_date") == [rows[1]["id"], rows[0]["id"]]  # a bare date is local time
    got = list(csv.reader(io.StringIO(results["csv"][1])))
    assert got[0] == SPEC_FIELDS
    assert [g[0] for g in got[1:]] == [r["id"] for r in newest]
    assert [int(g[SPEC_FIELDS.index("cost_microdollars")]) for g in got[1:]] == [
        r["cost_microdollars"] for r in newest]


async def test_spend_totals_and_breakdowns(home: Path, fake: FakeUpstream,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    rows, env = await populate(home, fake, monkeypatch)
    keys = {"model": lambda r: r["resolved_model"], "provider": lambda r: r["provider"],
            "client": lambda r: r["client"], "route": lambda r: r["route"],
            "day": lambda r: local_text(r["ts"])[:10]}
    calls = [["spend"], ["spend", "--format", "json"], ["spend", "--since", "24h", "--format",
                                                        "json"], ["spend", "--by", "model"]]
    calls += [["spend", "--by", by, "--format", "json"] for by in keys]
    res = await asyncio.gather(*(acli(*c, env=env) for c in calls))
    for (code, _, err), c in zip(res, calls, strict=True):
        assert code == 0, (c, err)
    total = sum(r["cost_microdollars"] for r in rows)
    assert total > 0 and all(isinstance(r["cost_microdollars"], int) for r in rows)

    table = res[0][1].rstrip("\n").split("\n")
    assert table[0].startswith("spend ")
    cells = assert_aligned(table[1:])
    assert cells[-1][0] == "total" and cells[-1][1] == "5"
    assert cells[-1][-1].startswith("$")
    assert Decimal(cells[-1][-1].lstrip("$")) == Decimal(total) / MICRO

    doc = json.loads(res[1][1])
    assert set(doc) == {"since", "until", "by", "rows", "total"}
    assert set(doc["total"]) == {"total", "requests", "prompt_tokens", "completion_tokens",
                                 "cached_tokens", "cache_write_tokens", "reasoning_tokens",
                                 "cost_microdollars"}
    assert doc["total"]["cost_microdollars"] == total
    assert doc["total"]["prompt_tokens"] == sum(r["prompt_tokens"] for r in rows)
    assert doc["total"]["cached_tokens"] == 400
    day = json.loads(res[2][1])
    assert day["since"] and day["total"]["requests"] == 4
    assert day["total"]["cost_microdollars"] == total - rows[0]["cost_microdollars"]

    by_model = assert_aligned(res[3][1].rstrip("\n").split("\n")[1:])
    assert by_model[0][0] == "model" and by_model[-1][0] == "total"
    for line in by_model[1:-1]:
        want = sum(r["cost_microdollars"] for r in rows if r["resolved_model"] == line[0])
        assert Decimal(line[-1].lstrip("$")) == Decimal(want) / MICRO, line

    for (by, key), (_, out, _) in zip(keys.items(), res[4:], strict=True):
        doc = json.loads(out)
        assert doc["by"] == by
        want: dict[str, list[int]] = {}
        for r in rows:
            want.setdefault(key(r), [0, 0])
            want[key(r)][0] += 1
            want[key(r)][1] += r["cost_microdollars"]
        assert {g[by]: [g["requests"], g["cost_microdollars"]] for g in doc["rows"]} == want, by
        assert doc["total"]["cost_microdollars"] == total
    client = {g["client"]: g["cost_microdollars"] for g in json.loads(res[6][1])["rows"]}
    assert client["ci"] == 123
    print(f"\nspend total {total} microdollars over 5 rows; by day "
          f"{json.loads(res[8][1])['rows']}")


# ---- 6. controls --------------------------------------------------------------------------------

async def test_allow_models_checked_after_resolution(start_daemon: StartDaemon,
                                                     fake: FakeUpstream) -> None:
    d = await start_daemon({"limits": {"allow_models": ["openai/*"]}},
                           OPENAI_API_KEY=OPENAI_KEY, KILO_API_KEY=KILO_KEY)
    r = await post(d.url, {"model": SONNET, "messages": HELLO})
    assert SONNET in r.error(403, "model_not_allowed")["message"]
    r = await post(d.url, {"model": "kilo-auto/frontier", "messages": HELLO},
                   headers={"x-kilocode-mode": "code"})
    assert SONNET in r.error(403, "model_not_allowed")["message"]
    assert fake.seen == []
    r = await post(d.url, {"model": BYOK, "messages": HELLO})
    assert r.status == 200
    assert len(fake.seen) == 1
    rows = await settled(d.home, 3, d)
    assert [(r["model"], r["resolved_model"], r["status"], r["http_status"]) for r in rows] == [
        (SONNET, SONNET, "refused", 403), ("kilo-auto/frontier", SONNET, "refused", 403),
        (BYOK, BYOK, "ok", 200)]
    assert all(r["cost_microdollars"] == 0 for r in rows[:2])
    assert "allow_models" in rows[0]["error"]


async def test_allow_providers(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon({"limits": {"allow_providers": ["openai"]}},
                           OPENAI_API_KEY=OPENAI_KEY, KILO_API_KEY=KILO_KEY)
    for model in (SONNET, FREE):
        r = await post(d.url, {"model": model, "messages": HELLO})
        r.error(403, "provider_not_allowed")
    assert fake.seen == []
    assert (await post(d.url, {"model": BYOK, "messages": HELLO})).status == 200
    rows = await settled(d.home, 3, d)
    assert [r["status"] for r in rows] == ["refused", "refused", "ok"]


async def _limit_test(start_daemon: StartDaemon, fake: FakeUpstream, limits: dict[str, Any],
                      period: str) -> None:
    d = await start_daemon({"limits": limits}, OPENAI_API_KEY=OPENAI_KEY)
    fake.knobs.usage = {"prompt_tokens": 10_000, "completion_tokens": 1000}
    small = {"model": BYOK, "messages": HELLO, "max_tokens": 100}
    r = await post(d.url, small)  # reserves little, costs more than the limit
    assert r.status == 200
    [first] = await settled(d.home, 1, d)
    assert first["cost_microdollars"] > 10_000
    seen = len(fake.seen)
    r = await post(d.url, small)
    err = r.error(402, "usage_limit_exceeded")
    assert err["period"] == period
    assert err["limit_usd"] == 0.01
    assert err["spent_usd"] == first["cost_microdollars"] / 1e6
    assert "$0.01" in err["message"]
    assert len(fake.seen) == seen
    for model in (FREE, LOCAL):  # free and local models are served over the limit
        assert (await post(d.url, {"model": model, "messages": HELLO})).status == 200
    rows = await settled(d.home, 4, d)
    assert (rows[1]["status"], rows[1]["http_status"], rows[1]["cost_microdollars"]) == (
        "refused", 402, 0)


async def test_daily_limit(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    await _limit_test(start_daemon, fake, {"daily_usd": 0.01}, "day")


async def test_monthly_limit(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    await _limit_test(start_daemon, fake, {"monthly_usd": 0.01}, "month")


async def test_concurrent_requests_cannot_overshoot_the_cap(start_daemon: StartDaemon,
                                                            fake: FakeUpstream) -> None:
    max_tokens = 1000
    probe = await start_daemon()
    p = await prices(probe.url, BYOK)
    # worst case: the prompt estimate (a handful of tokens for "hi") plus all of max_tokens
    w = catalog_micros(p, 0, max_tokens)
    limit = 3 * w + w // 2
    limit_usd = float(Decimal(limit) / MICRO)
    d = await start_daemon({"limits": {"daily_usd": limit_usd}}, OPENAI_API_KEY=OPENAI_KEY)
    fake.knobs.header_delay = 0.2
    fake.knobs.usage = {"prompt_tokens": 5, "completion_tokens": max_tokens}  # the worst case
    body = {"model": BYOK, "messages": HELLO, "max_tokens": max_tokens}
    t0 = time.monotonic()
    replies = await asyncio.gather(*(post(d.url, body) for _ in range(20)))
    took = time.monotonic() - t0
    ok = [r for r in replies if r.status == 200]
    refused = [r for r in replies if r.status != 200]
    print(f"\ncap {limit} microdollars, worst case {w} each: {len(ok)} served, "
          f"{len(refused)} refused in {took * 1000:.0f} ms")
    assert 1 <= len(ok) <= 4
    for r in refused:
        err = r.error(402, "usage_limit_exceeded")
        assert err["period"] == "day" and err["limit_usd"] == limit_usd
        assert str(Decimal(limit) / MICRO) in err["message"], err["message"]
    rows = await settled(d.home, 20, d)
    spent = sum(r["cost_microdollars"] for r in rows)
    one = max(r["cost_microdollars"] for r in rows)
    assert spent <= limit + one, (spent, limit)
    assert sum(r["status"] == "refused" for r in rows) == len(refused)


async def test_limits_command_persists_and_running_daemon_enforces(home: Path,
                                                                   fake: FakeUpstream) -> None:
    write_config(home, fake.url)
    async with serve(home, daemon_env(OPENAI_API_KEY=OPENAI_KEY)) as d:
        body = {"model": BYOK, "messages": HELLO}
        assert (await post(d.url, body)).status == 200  # costs ~117 microdollars
        code, out, err = await acli("limits", "--daily-usd", "0.0001")
        assert code == 0, err
        assert "limits saved" in out and "running daemon" in out, out
        r = await post(d.url, body)  # the very next request, no sleep
        err = r.error(402, "usage_limit_exceeded")
        assert err["period"] == "day" and err["limit_usd"] == 0.0001
        assert err["spent_usd"] > 0.0001
        assert "$0.0001" in err["message"]
        rows = await settled(home, 2)
        code, out, _ = await acli("limits", "--format", "json")
        info = json.loads(out)
        assert info["daily_usd"] == 0.0001 and info["monthly_usd"] is None
        assert info["spent_today_usd"] == sum(r["cost_microdollars"] for r in rows) / 1e6 > 0
        code, out, _ = await acli("limits")
        assert "of $0.0001" in out  # sub-cent limits are shown exactly
    doc = (await asyncio.to_thread((home / "config.toml").read_text))
    assert "daily_usd = 0.0001" in doc
    code, out, _ = await acli("limits", "--daily-usd", "off", "--format", "json")
    assert json.loads(out)["daily_usd"] is None


# ---- 7. named clients ---------------------------------------------------------------------------

async def test_named_client_keys_limits_and_revoke(home: Path, fake: FakeUpstream) -> None:
    write_config(home, fake.url)
    async with serve(home, daemon_env(OPENAI_API_KEY=OPENAI_KEY)) as d:
        code, out, err = await acli("token", "create", "ci", "--daily-usd", "0.01")
        assert code == 0, err
        key = out.strip()
        assert out.count("\n") == 1 and key.startswith("lg-") and len(key) > 30
        assert "only this once" in err and key not in err
        lists = await asyncio.gather(acli("token", "list"),
                                     acli("token", "list", "--format", "json"),
                                     acli("token", "list", "--format", "csv"))
        for code, out, err in lists:
            assert code == 0 and key not in out + err and "ci" in out
        listed = {c["name"]: c for c in json.loads(lists[1][1])}
        assert listed["ci"]["daily_usd"] == 0.01 and listed["ci"]["revoked"] is None
        entries = await asyncio.to_thread(keychain_entries)
        assert key not in str(entries) and hashlib.sha256(key.encode()).hexdigest() in \
            entries["clients"], "the keychain must hold the client key's hash, never the key"

        fake.knobs.usage = {"prompt_tokens": 10_000, "completion_tokens": 1000}
        small = {"model": BYOK, "messages": HELLO, "max_tokens": 100}
        assert (await post(d.url, small, key=key)).status == 200  # no sleep after create
        r = await post(d.url, small, key=key)
        err = r.error(402, "usage_limit_exceeded")
        assert err["period"] == "client_day" and err["limit_usd"] == 0.01
        assert "ci" in err["message"]
        assert (await post(d.url, small)).status == 200  # the default key still works

        code, out, err = await acli("token", "revoke", "ci")
        assert code == 0, err
        r = await post(d.url, small, key=key)  # the very next request
        r.error(401, "authentication_required")
        rows = await settled(home, 3)
        assert [(r["client"], r["status"]) for r in rows] == [
            ("ci", "ok"), ("ci", "refused"), ("default", "ok")]
        code, out, _ = await acli("token", "list", "--format", "json")
        assert {c["name"]: c for c in json.loads(out)}["ci"]["revoked"]
        d.proc.send_signal(signal.SIGTERM)
        assert await d.exit_code(3.0) == 0
    secrets = (key, LOCAL_KEY, OPENAI_KEY)

    def scan() -> list[str]:
        found = []
        conn = sqlite3.connect(home / "spend.db")
        try:
            tables = [t for (t,) in conn.execute("select name from sqlite_master "
                                                 "where type = 'table'")]
            for t in tables:
                for row in conn.execute(f"select * from {t}"):  # noqa: S608
                    found += [f"{t}: {v}" for v in row
                              if isinstance(v, str) and any(s in v for s in secrets)]
        finally:
            conn.close()
        for f in home.glob("spend.db*"):
            data = f.read_bytes()
            found += [f.name for s in secrets if s.encode() in data]
        return found

    assert await asyncio.to_thread(scan) == []
    stderr = d.stderr()
    assert "listening on" in stderr
    for s in secrets:
        assert s not in stderr


async def test_malformed_requests_are_logged_too(start_daemon: StartDaemon,
                                                 fake: FakeUpstream) -> None:
    d = await start_daemon()
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{d.url}/v1/chat/completions", data=b'{"model": "x", ',
                          headers={**auth(), "Content-Type": "application/json"}) as r:
            assert r.status == 400
    r2 = await post(d.url, {"model": BYOK})  # no messages
    assert r2.status == 400
    rows = await settled(d.home, 2, d)
    assert sorted((r["status"], r["http_status"], r["model"] or "") for r in rows) == [
        ("error", 400, ""), ("error", 400, BYOK)]
    assert fake.seen == []


async def test_absurd_usage_numbers_do_not_stop_the_log(start_daemon: StartDaemon,
                                                         fake: FakeUpstream) -> None:
    d = await start_daemon(OPENAI_API_KEY=OPENAI_KEY)
    fake.knobs.usage = {"prompt_tokens": 99999999999999999999, "completion_tokens": 1}
    assert (await post(d.url, {"model": BYOK, "messages": HELLO})).status == 200
    fake.knobs.usage = {"prompt_tokens": 5, "completion_tokens": 1}
    assert (await post(d.url, {"model": BYOK, "messages": HELLO})).status == 200
    rows = await settled(d.home, 2, d)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert rows[0]["prompt_tokens"] == 10**12 and rows[1]["prompt_tokens"] == 5
