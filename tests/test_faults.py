"""Upstream faults, seen from the client: refused connections, timeouts, error statuses, BYOK
refusals and fallback, garbage, and streams that break after their first byte (SPEC 4-5)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import aiohttp
import openai
import pytest

from tests.conftest import LOCAL_KEY, Daemon, StartDaemon, auth
from tests.fakes import FakeUpstream
from tests.http import FAST, HELLO, Reply, chat, openai_at

OPENAI_KEY = "sk-test-openai-secret-987654"
KILO_KEY = "kilo-user-key-abcdef123456"
BYOK = "openai/gpt-5.2"
GATEWAY_MODEL = "anthropic/claude-sonnet-4.6"


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def conf(**sections: Any) -> dict[str, Any]:
    out: dict[str, Any] = {k: dict(v) for k, v in FAST.items()}
    for k, v in sections.items():
        out.setdefault(k, {}).update(v)
    return out


def sse_events(raw: bytes) -> list[str]:
    """The `data:` payloads of an SSE body, in order (comments and blank lines skipped)."""
    out = []
    for block in raw.decode().split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data:"):
                out.append(line[5:].strip())
    return out


def content(events: list[str]) -> str:
    text = ""
    for e in events:
        if e == "[DONE]":
            continue
        for c in json.loads(e).get("choices") or []:
            text += (c.get("delta") or {}).get("content") or ""
    return text


def assert_error_ending(events: list[str], code: str | None = None) -> dict[str, Any]:
    """The OpenRouter way to end a failed stream: an error chunk, then [DONE], nothing else."""
    assert events[-1] == "[DONE]", events[-3:]
    assert events.count("[DONE]") == 1
    last = json.loads(events[-2])
    err = last["error"]
    assert {"message", "type", "code", "param"} <= set(err), err
    assert isinstance(err["message"], str) and err["message"]
    if code is not None:
        assert err["code"] == code, err
    assert last["choices"][0]["finish_reason"] == "error"
    assert sum(1 for e in events if e != "[DONE]" and "error" in json.loads(e)) == 1
    return err


# ---- before the first byte ----------------------------------------------------------------------

async def test_connection_refused_is_502(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    port = closed_port()
    d = await start_daemon(conf(providers={"openai": {"base_url": f"http://127.0.0.1:{port}/v1"}}),
                           OPENAI_API_KEY=OPENAI_KEY)
    r = await chat(d, {"model": BYOK, "messages": HELLO})
    err = r.error(502, "upstream_error")
    assert err["type"] == "upstream_error"
    assert OPENAI_KEY not in err["message"] and LOCAL_KEY not in err["message"]
    assert r.elapsed < 1.5
    assert r.headers["x-request-id"].startswith("lg-")
    r = await chat(d, {"model": BYOK, "messages": HELLO, "stream": True})
    r.error(502, "upstream_error")  # no headers were sent yet: a plain error response
    assert fake.seen == []


async def test_gateway_refused_is_502(start_daemon: StartDaemon) -> None:
    port = closed_port()
    dead = f"http://127.0.0.1:{port}/api/gateway"
    d = await start_daemon(conf(providers={"kilo": {"base_url": dead}}),
                           KILO_API_KEY=KILO_KEY)
    r = await chat(d, {"model": GATEWAY_MODEL, "messages": HELLO})
    r.error(502, "upstream_error")
    assert r.elapsed < 1.5


@pytest.mark.parametrize("knob", ["hang", "header_delay"])
async def test_no_headers_in_time_is_504(start_daemon: StartDaemon, fake: FakeUpstream,
                                         knob: str) -> None:
    d = await start_daemon(FAST, KILO_API_KEY=KILO_KEY)
    if knob == "hang":
        fake.knobs.hang = True
    else:
        fake.knobs.header_delay = 1.5
    for stream in (False, True):
        r = await chat(d, {"model": GATEWAY_MODEL, "messages": HELLO, "stream": stream})
        err = r.error(504, "upstream_timeout")
        assert err["type"] == "timeout"
        assert 0.45 < r.elapsed < 1.2


@pytest.mark.parametrize("status", [400, 404, 422, 500, 503])
async def test_upstream_error_status_passed_through(start_daemon: StartDaemon,
                                                    fake: FakeUpstream, status: int) -> None:
    d = await start_daemon(FAST, KILO_API_KEY=KILO_KEY)
    fake.knobs.status = status
    fake.knobs.error_body = {"error": {"message": f"gateway says no ({status})",
                                       "code": status, "metadata": {"raw": "x"}}}
    for stream in (False, True):
        r = await chat(d, {"model": GATEWAY_MODEL, "messages": HELLO, "stream": stream})
        assert r.status == status
        assert r.json == fake.knobs.error_body
        assert r.headers["x-localgate-route"] == "gateway"
    assert len(fake.seen) == 2  # no retry for a gateway request


@pytest.mark.parametrize("status", [400, 500, 503])
async def test_byok_error_status_passed_through_without_fallback(start_daemon: StartDaemon,
                                                                 fake: FakeUpstream,
                                                                 status: int) -> None:
    d = await start_daemon(FAST, OPENAI_API_KEY=OPENAI_KEY)  # no gateway key: nothing to retry
    fake.knobs.status = status
    r = await chat(d, {"model": BYOK, "messages": HELLO})
    assert r.status == status
    assert r.json == {"error": {"message": f"fake upstream says {status}", "type": "fake_error",
                                "code": status}}
    assert r.headers["x-localgate-route"] == "byok"
    assert len(fake.seen) == 1


@pytest.mark.parametrize("status", [401, 402, 403, 429])
async def test_byok_refusal_says_it_was_the_users_key(start_daemon: StartDaemon,
                                                      fake: FakeUpstream, status: int) -> None:
    d = await start_daemon(FAST, OPENAI_API_KEY=OPENAI_KEY)
    fake.knobs.status = status
    # a provider that echoes the key it refused must not get it shown to the client
    fake.knobs.error_body = {"error": {"message": f"Incorrect API key provided: {OPENAI_KEY}.",
                                       "type": "invalid_request_error"}}
    r = await chat(d, {"model": BYOK, "messages": HELLO})
    err = r.error(status, None)
    msg = err["message"]
    assert "your own OpenAI key" in msg
    assert "BYOK" in msg or "refused" in msg or "rate-limited" in msg
    assert OPENAI_KEY not in r.raw.decode()
    assert OPENAI_KEY[-8:] not in r.raw.decode()
    assert r.headers["x-localgate-route"] == "byok"
    async with d.sdk() as client:
        with pytest.raises(openai.APIStatusError) as exc:
            await client.chat.completions.create(model=BYOK, messages=HELLO)
    assert exc.value.status_code == status and "your own OpenAI key" in exc.value.message


async def test_gateway_401_is_not_called_a_byok_refusal(start_daemon: StartDaemon,
                                                        fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, KILO_API_KEY=KILO_KEY)
    fake.knobs.status = 401
    r = await chat(d, {"model": GATEWAY_MODEL, "messages": HELLO})
    assert r.status == 401
    assert r.json["error"]["message"] == "fake upstream says 401"


# ---- BYOK fallback via the gateway --------------------------------------------------------------

async def byok_pair(start_daemon: StartDaemon, aiohttp_server: Any,
                    **routing: Any) -> tuple[Daemon, FakeUpstream]:
    """A daemon whose openai (BYOK) points at its own fake, the gateway at the shared one."""
    byok = FakeUpstream()
    server = await aiohttp_server(byok.app)
    byok.url = str(server.make_url("")).rstrip("/")
    d = await start_daemon(conf(routing=routing,
                                providers={"openai": {"base_url": f"{byok.url}/openai/v1"}}),
                           OPENAI_API_KEY=OPENAI_KEY, KILO_API_KEY=KILO_KEY)
    return d, byok


def assert_fell_back(r: Reply, byok: FakeUpstream, fake: FakeUpstream) -> None:
    assert r.status == 200, r.raw
    assert r.headers["x-localgate-route"] == "byok-fallback"
    assert r.headers["x-localgate-provider"] == "openai"
    assert r.headers["x-localgate-model"] == BYOK
    assert [s.path for s in byok.seen] == ["/openai/v1/chat/completions"]
    assert byok.seen[0].headers["Authorization"] == f"Bearer {OPENAI_KEY}"
    assert byok.seen[0].body["model"] == "gpt-5.2"
    assert [s.path for s in fake.seen] == ["/api/gateway/chat/completions"]
    assert fake.last.headers["Authorization"] == f"Bearer {KILO_KEY}"
    assert fake.last.body["model"] == BYOK  # the gateway takes the full id


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_byok_fallback_on_status(start_daemon: StartDaemon, fake: FakeUpstream,
                                       aiohttp_server: Any, status: int) -> None:
    d, byok = await byok_pair(start_daemon, aiohttp_server)
    byok.knobs.status = status
    r = await chat(d, {"model": BYOK, "messages": HELLO})
    assert_fell_back(r, byok, fake)
    assert r.json["choices"][0]["message"]["content"] == "Hello from the fake upstream."


async def test_byok_fallback_on_stream(start_daemon: StartDaemon, fake: FakeUpstream,
                                       aiohttp_server: Any) -> None:
    d, byok = await byok_pair(start_daemon, aiohttp_server)
    byok.knobs.status = 503
    r = await chat(d, {"model": BYOK, "messages": HELLO, "stream": True})
    assert_fell_back(r, byok, fake)
    events = sse_events(r.raw)
    assert content(events) == "tok0 tok1 tok2 " and events[-1] == "[DONE]"


async def test_byok_fallback_on_connection_error(start_daemon: StartDaemon,
                                                 fake: FakeUpstream) -> None:
    port = closed_port()
    d = await start_daemon(conf(providers={"openai": {"base_url": f"http://127.0.0.1:{port}/v1"}}),
                           OPENAI_API_KEY=OPENAI_KEY, KILO_API_KEY=KILO_KEY)
    r = await chat(d, {"model": BYOK, "messages": HELLO})
    assert r.status == 200, r.raw
    assert r.headers["x-localgate-route"] == "byok-fallback"
    assert [s.path for s in fake.seen] == ["/api/gateway/chat/completions"]
    assert fake.last.headers["Authorization"] == f"Bearer {KILO_KEY}"


async def test_byok_fallback_on_first_byte_timeout(start_daemon: StartDaemon, fake: FakeUpstream,
                                                   aiohttp_server: Any) -> None:
    d, byok = await byok_pair(start_daemon, aiohttp_server)
    byok.knobs.hang = True
    r = await chat(d, {"model": BYOK, "messages": HELLO})
    assert_fell_back(r, byok, fake)
    assert 0.45 < r.elapsed < 1.5


@pytest.mark.parametrize("status", [400, 401, 402, 403])
async def test_no_fallback_for_client_errors(start_daemon: StartDaemon, fake: FakeUpstream,
                                             aiohttp_server: Any, status: int) -> None:
    d, byok = await byok_pair(start_daemon, aiohttp_server)
    byok.knobs.status = status
    r = await chat(d, {"model": BYOK, "messages": HELLO})
    assert r.status == status
    assert r.headers["x-localgate-route"] == "byok"
    assert len(byok.seen) == 1 and fake.seen == []


@pytest.mark.parametrize("fault", ["429", "500", "hang", "refused"])
async def test_no_fallback_when_disabled(start_daemon: StartDaemon, fake: FakeUpstream,
                                         aiohttp_server: Any, fault: str) -> None:
    d, byok = await byok_pair(start_daemon, aiohttp_server, fallback_to_gateway=False)
    if fault == "hang":
        byok.knobs.hang = True
    elif fault == "refused":
        port = closed_port()
        d = await start_daemon(conf(routing={"fallback_to_gateway": False}, providers={
            "openai": {"base_url": f"http://127.0.0.1:{port}/v1"}}),
            OPENAI_API_KEY=OPENAI_KEY, KILO_API_KEY=KILO_KEY)
    else:
        byok.knobs.status = int(fault)
    r = await chat(d, {"model": BYOK, "messages": HELLO})
    expected = {"429": 429, "500": 500, "hang": 504, "refused": 502}[fault]
    assert r.status == expected, r.raw
    if fault == "429":
        assert "your own OpenAI key" in r.json["error"]["message"]
    assert fake.seen == []
    assert len(byok.seen) == (0 if fault == "refused" else 1)


async def test_no_fallback_without_gateway_key(start_daemon: StartDaemon, fake: FakeUpstream,
                                               aiohttp_server: Any) -> None:
    byok = FakeUpstream()
    server = await aiohttp_server(byok.app)
    byok.url = str(server.make_url("")).rstrip("/")
    d = await start_daemon(conf(providers={"openai": {"base_url": f"{byok.url}/openai/v1"}}),
                           OPENAI_API_KEY=OPENAI_KEY)
    byok.knobs.status = 503
    r = await chat(d, {"model": BYOK, "messages": HELLO})
    assert r.status == 503 and r.headers["x-localgate-route"] == "byok"
    assert fake.seen == []


async def test_no_retry_after_the_first_byte(start_daemon: StartDaemon, fake: FakeUpstream,
                                             aiohttp_server: Any) -> None:
    d, byok = await byok_pair(start_daemon, aiohttp_server)
    byok.knobs.cut_after = 1
    r = await chat(d, {"model": BYOK, "messages": HELLO, "stream": True})
    assert r.status == 200 and r.headers["x-localgate-route"] == "byok"
    assert_error_ending(sse_events(r.raw))
    assert fake.seen == []


# ---- broken responses ---------------------------------------------------------------------------

async def test_garbage_2xx_is_502(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, OPENAI_API_KEY=OPENAI_KEY)
    fake.knobs.garbage = True
    r = await chat(d, {"model": BYOK, "messages": HELLO})
    r.error(502, "upstream_error")
    async with d.sdk() as client:
        with pytest.raises(openai.APIStatusError) as exc:
            await client.chat.completions.create(model=BYOK, messages=HELLO)
    assert exc.value.status_code == 502


async def test_stream_cut_midway(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, OPENAI_API_KEY=OPENAI_KEY)
    fake.knobs.chunks, fake.knobs.cut_after = 5, 2
    r = await chat(d, {"model": BYOK, "messages": HELLO, "stream": True})
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    assert r.elapsed < 1.0
    events = sse_events(r.raw)
    assert content(events) == "tok0 tok1 "  # what was sent before the cut
    err = assert_error_ending(events, "upstream_error")
    assert OPENAI_KEY not in err["message"]
    assert json.loads(events[-2])["model"] == "gpt-5.2"

    async with d.sdk() as client:
        stream = await client.chat.completions.create(model=BYOK, messages=HELLO, stream=True)
        got = []
        with pytest.raises(openai.APIError):
            async for chunk in stream:
                got.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(got) == "tok0 tok1 "


async def test_stream_stall_hits_read_gap_timeout(start_daemon: StartDaemon,
                                                  fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, OPENAI_API_KEY=OPENAI_KEY)
    fake.knobs.stall_after = 1
    r = await chat(d, {"model": BYOK, "messages": HELLO, "stream": True})
    assert r.status == 200
    assert 0.45 < r.elapsed < 1.2
    events = sse_events(r.raw)
    assert content(events) == "tok0 "
    assert_error_ending(events, "upstream_timeout")


async def test_stream_without_any_content_then_cut(start_daemon: StartDaemon,
                                                   fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, KILO_API_KEY=KILO_KEY)
    fake.knobs.cut_after = 0
    r = await chat(d, {"model": GATEWAY_MODEL, "messages": HELLO, "stream": True})
    assert r.status == 200
    events = sse_events(r.raw)
    assert content(events) == ""
    assert_error_ending(events, "upstream_error")


async def test_mid_stream_upstream_error_is_relayed(start_daemon: StartDaemon,
                                                    fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, KILO_API_KEY=KILO_KEY)
    fake.knobs.mid_error = True
    r = await chat(d, {"model": GATEWAY_MODEL, "messages": HELLO, "stream": True})
    assert r.status == 200
    events = sse_events(r.raw)
    assert content(events) == "tok0 "
    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1
    last = json.loads(events[-2])
    assert last["error"] == {"code": 502, "message": "provider fell over"}  # the upstream's own
    assert last["choices"][0]["finish_reason"] == "error"
    assert sum(1 for e in events[:-1] if "error" in json.loads(e)) == 1
    async with d.sdk() as client:
        stream = await client.chat.completions.create(model=GATEWAY_MODEL, messages=HELLO,
                                                      stream=True)
        with pytest.raises(openai.APIError, match="provider fell over"):
            async for _ in stream:
                pass


async def test_mid_stream_error_without_done_gets_done(start_daemon: StartDaemon,
                                                       aiohttp_server: Any) -> None:
    err = {"error": {"code": 502, "message": "provider fell over"}}
    app = _stream_app([_chunk({"content": "part"}) + b"\n\n",  # then an error, and no [DONE]
                       _chunk({"content": ""}, "error", **err) + b"\n\n"])
    d = await start_daemon(conf(**await openai_at(aiohttp_server, app)),
                           OPENAI_API_KEY=OPENAI_KEY)
    r = await chat(d, {"model": BYOK, "messages": HELLO, "stream": True})
    events = sse_events(r.raw)
    assert content(events) == "part"
    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1
    assert json.loads(events[-2])["error"]["message"] == "provider fell over"
    assert sum(1 for e in events[:-1] if "error" in json.loads(e)) == 1


async def test_missing_done_is_appended(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, OPENAI_API_KEY=OPENAI_KEY)
    fake.knobs.no_done = True
    for usage in (False, True):
        body: dict[str, Any] = {"model": BYOK, "messages": HELLO, "stream": True}
        if usage:
            body["stream_options"] = {"include_usage": True}
        r = await chat(d, body)
        events = sse_events(r.raw)
        assert content(events) == "tok0 tok1 tok2 "
        assert events[-1] == "[DONE]" and events.count("[DONE]") == 1
        assert not any("error" in json.loads(e) for e in events[:-1])
        assert r.raw.endswith(b"data: [DONE]\n\n")
        finals = [json.loads(e) for e in events[:-1]]
        assert any(c["choices"] and c["choices"][0]["finish_reason"] == "stop" for c in finals)
        assert (finals[-1].get("usage") is not None) == usage


async def test_stream_ending_without_finish_or_done_is_an_error(start_daemon: StartDaemon,
                                                                fake: FakeUpstream,
                                                                aiohttp_server: Any) -> None:
    app = _stream_app([_chunk({"content": "half"}) + b"\n\n"])  # then the end, no finish
    d = await start_daemon(conf(**await openai_at(aiohttp_server, app)),
                           OPENAI_API_KEY=OPENAI_KEY)
    r = await chat(d, {"model": BYOK, "messages": HELLO, "stream": True})
    events = sse_events(r.raw)
    assert content(events) == "half"
    assert_error_ending(events, "upstream_error")


async def test_stream_bytes_relayed_unchanged(start_daemon: StartDaemon,
                                              fake: FakeUpstream) -> None:
    d = await start_daemon(conf(routing={"gateway": "openrouter"}), OPENROUTER_API_KEY="or-key")
    fake.knobs.style, fake.knobs.chunks = "openrouter", 4
    body = {"model": GATEWAY_MODEL, "messages": HELLO, "stream": True,
            "stream_options": {"include_usage": True}}
    r = await chat(d, body)
    assert r.status == 200 and r.headers["x-localgate-route"] == "gateway"
    sent_upstream = fake.last
    assert sent_upstream.path == "/openrouter/v1/chat/completions"
    # what the upstream sends for exactly that request, fetched directly
    async with aiohttp.ClientSession() as s:
        async with s.post(fake.url + sent_upstream.path, data=sent_upstream.raw,
                          headers={"Content-Type": "application/json"}) as resp:
            direct = await resp.read()
    assert direct.startswith(b": OPENROUTER PROCESSING\n\n")
    assert b'"cost": 0.000123' in direct
    assert r.raw == direct


async def test_usage_chunk_dropped_but_rest_unchanged(start_daemon: StartDaemon,
                                                      fake: FakeUpstream) -> None:
    d = await start_daemon(conf(routing={"gateway": "openrouter"}), OPENROUTER_API_KEY="or-key")
    fake.knobs.style = "openrouter"
    r = await chat(d, {"model": GATEWAY_MODEL, "messages": HELLO, "stream": True})
    sent_upstream = fake.last
    assert sent_upstream.body["stream_options"] == {"include_usage": True}
    async with aiohttp.ClientSession() as s:
        async with s.post(fake.url + sent_upstream.path, data=sent_upstream.raw,
                          headers={"Content-Type": "application/json"}) as resp:
            direct = await resp.read()
    blocks = direct.split(b"\n\n")
    usage_only = [b for b in blocks if b'"choices": []' in b]
    assert len(usage_only) == 1
    assert r.raw == b"\n\n".join(b for b in blocks if b not in usage_only)


async def test_first_chunk_arrives_before_upstream_finishes(start_daemon: StartDaemon,
                                                            fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, OPENAI_API_KEY=OPENAI_KEY)
    fake.knobs.chunks, fake.knobs.chunk_delay = 3, 0.3
    arrivals: list[tuple[float, str]] = []
    async with aiohttp.ClientSession() as s:
        t0 = time.monotonic()
        async with s.post(f"{d.url}/v1/chat/completions", headers=auth(),
                          json={"model": BYOK, "messages": HELLO, "stream": True}) as resp:
            assert resp.status == 200
            async for line in resp.content:
                if line.startswith(b"data:"):
                    payload = line[5:].strip().decode()
                    text = "" if payload == "[DONE]" else content([payload])
                    arrivals.append((time.monotonic() - t0, text))
    first = next(t for t, text in arrivals if text)
    assert first < 0.6, arrivals
    assert arrivals[-1][0] >= 0.85
    texts = [text for _, text in arrivals if text]
    assert texts == ["tok0 ", "tok1 ", "tok2 "]


async def test_client_disconnect_cancels_upstream(start_daemon: StartDaemon,
                                                  fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, OPENAI_API_KEY=OPENAI_KEY)
    fake.knobs.chunks, fake.knobs.chunk_delay = 20, 0.2
    async with aiohttp.ClientSession() as s:
        resp = await s.post(f"{d.url}/v1/chat/completions", headers=auth(),
                            json={"model": BYOK, "messages": HELLO, "stream": True})
        assert resp.status == 200
        first = await resp.content.readline()
        assert first.startswith(b"data:")
        resp.close()  # drop the connection mid-stream
    t0 = time.monotonic()
    while fake.disconnects == 0 and time.monotonic() - t0 < 1.5:
        await asyncio.sleep(0.02)
    assert fake.disconnects == 1
    assert time.monotonic() - t0 < 1.0
    # the daemon still serves
    fake.reset()
    async with d.sdk() as client:
        resp2 = await client.chat.completions.create(model=BYOK, messages=HELLO)
    assert resp2.choices[0].message.content == "Hello from the fake upstream."


async def test_shutdown_ends_open_streams(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(FAST, OPENAI_API_KEY=OPENAI_KEY)
    fake.knobs.chunks, fake.knobs.chunk_delay = 50, 0.1
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{d.url}/v1/chat/completions", headers=auth(),
                          json={"model": BYOK, "messages": HELLO, "stream": True}) as resp:
            assert resp.status == 200
            await resp.content.readline()
            t0 = time.monotonic()
            stopping = asyncio.create_task(d.running.stop())
            raw = await resp.read()
            await stopping
    assert time.monotonic() - t0 < 1.5
    assert_error_ending(sse_events(raw))


# ---- review findings: keys echoed by upstreams, SSE event boundaries ----------------------------

def _stream_app(lines: list[bytes], status: int = 200) -> aiohttp.web.Application:
    async def handler(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        if status != 200:
            return aiohttp.web.Response(status=status, body=b"".join(lines),
                                        content_type="application/json")
        resp = aiohttp.web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for line in lines:
            await resp.write(line)
        await resp.write_eof()
        return resp

    app = aiohttp.web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    return app


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    obj = {"id": "c1", "object": "chat.completion.chunk", "model": "m",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
    return b"data: " + json.dumps(obj).encode()


async def test_an_echoed_key_never_reaches_client_or_log(start_daemon: StartDaemon,
                                                         aiohttp_server: Any) -> None:
    echo = json.dumps({"error": {"message": f"bad request for key {OPENAI_KEY}"}}).encode()
    d = await start_daemon(conf(**await openai_at(aiohttp_server, _stream_app([echo], 400))),
                           OPENAI_API_KEY=OPENAI_KEY)
    r = await chat(d, {"model": BYOK, "messages": HELLO})
    assert r.status == 400 and OPENAI_KEY.encode() not in r.raw and b"<your key>" in r.raw
    assert await asyncio.to_thread(d.running.built.spend_log.flush)
    d2 = await start_daemon(conf(**await openai_at(aiohttp_server, _stream_app([
        _chunk({"content": "hi"}) + b"\n\n",
        b'data: {"error": {"message": "quota for ' + OPENAI_KEY.encode() + b'"}}\n\n',
        b"data: [DONE]\n\n"]))), OPENAI_API_KEY=OPENAI_KEY)
    r = await chat(d2, {"model": BYOK, "messages": HELLO, "stream": True})
    assert OPENAI_KEY.encode() not in r.raw and b"<your key>" in r.raw
    assert await asyncio.to_thread(d2.running.built.spend_log.flush)
    for f in sorted(d.home.glob("spend.db*")):
        assert OPENAI_KEY.encode() not in await asyncio.to_thread(f.read_bytes), f.name


async def test_our_done_starts_its_own_event(start_daemon: StartDaemon,
                                             aiohttp_server: Any) -> None:
    # the upstream's last event lacks its blank line, and it sends no [DONE]
    app = _stream_app([_chunk({"content": "hi"}) + b"\n\n", _chunk({}, "stop") + b"\n"])
    d = await start_daemon(conf(**await openai_at(aiohttp_server, app)),
                           OPENAI_API_KEY=OPENAI_KEY)
    r = await chat(d, {"model": BYOK, "messages": HELLO, "stream": True})
    events = [e for e in r.raw.decode().split("\n\n") if e.strip()]
    assert events[-1] == "data: [DONE]"
    for e in events[:-1]:
        json.loads(e.removeprefix("data: "))  # every event is one whole JSON object
    async with d.sdk() as client:
        stream = await client.chat.completions.create(model=BYOK, messages=HELLO, stream=True)
        assert "".join([c.choices[0].delta.content or "" async for c in stream
                        if c.choices]) == "hi"


async def test_an_error_chunk_with_usage_is_not_dropped(start_daemon: StartDaemon,
                                                        aiohttp_server: Any) -> None:
    err = (b'data: {"id": "c1", "choices": [], "usage": {"prompt_tokens": 3, '
           b'"completion_tokens": 0}, "error": {"message": "overloaded", "code": 529}}\n\n')
    app = _stream_app([_chunk({"content": "hi"}) + b"\n\n", err, b"data: [DONE]\n\n"])
    d = await start_daemon(conf(**await openai_at(aiohttp_server, app)),
                           OPENAI_API_KEY=OPENAI_KEY)
    r = await chat(d, {"model": BYOK, "messages": HELLO, "stream": True})  # usage not asked
    assert b"overloaded" in r.raw
