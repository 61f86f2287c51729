"""Provider quirks on direct (BYOK) calls, against upstreams as strict as the real ones."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from aiohttp import web

from tests.conftest import StartDaemon
from tests.http import HELLO, chat, openai_at

MISTRAL_ALLOWED = {"model", "messages", "temperature", "top_p", "max_tokens", "stream", "stop",
                   "random_seed", "response_format", "tools", "tool_choice", "presence_penalty",
                   "frequency_penalty", "n", "safe_prompt"}


def strict_mistral(seen: list[dict[str, Any]]) -> web.Application:
    """Mistral's chat endpoint: unknown fields are a 422; streams end with usage on the last
    chunk (no stream_options); tool-call ids must be 9 characters."""

    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        seen.append(body)
        extra = sorted(set(body) - MISTRAL_ALLOWED)
        if extra:
            return web.json_response({"object": "error", "message": {"detail": [
                {"type": "extra_forbidden", "loc": ["body", extra[0]],
                 "msg": "Extra inputs are not permitted"}]},
                "type": "invalid_request_error"}, status=422)
        for m in body["messages"]:
            ids = [c["id"] for c in m.get("tool_calls") or []] + \
                  ([m["tool_call_id"]] if "tool_call_id" in m else [])
            if any(len(i) != 9 for i in ids):
                return web.json_response({"message": "Tool call id has to be 9 chars"}, status=400)
        usage = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
        if not body.get("stream"):
            return web.json_response({"id": "m1", "object": "chat.completion", "model": "x",
                                      "choices": [{"index": 0, "finish_reason": "stop",
                                                   "message": {"role": "assistant",
                                                               "content": "bonjour"}}],
                                      "usage": usage})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for delta, finish, u in (({"role": "assistant", "content": "bon"}, None, None),
                                 ({"content": "jour"}, "stop", usage)):
            chunk: dict[str, Any] = {"id": "m1", "object": "chat.completion.chunk", "model": "x",
                                     "choices": [{"index": 0, "delta": delta,
                                                  "finish_reason": finish}]}
            if u:
                chunk["usage"] = u
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    return app


async def test_mistral_gets_only_fields_it_accepts(start_daemon: StartDaemon,
                                                   aiohttp_server: Any) -> None:
    seen: list[dict[str, Any]] = []
    conf = await openai_at(aiohttp_server, strict_mistral(seen))
    conf = {"providers": {"mistral": conf["providers"]["openai"]}}
    d = await start_daemon(conf, MISTRAL_API_KEY="mistral-test-key")
    tools = [{"type": "function", "function": {"name": "f", "strict": True,
                                               "parameters": {"type": "object"}}}]
    history = HELLO + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_abcdefghijkl", "type": "function",
             "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_abcdefghijkl", "content": "42"}]
    body = {"model": "mistral/mistral-large-2512", "messages": history, "tools": tools,
            "max_completion_tokens": 50, "stream": True,
            "stream_options": {"include_usage": True}}
    r = await chat(d, body)
    assert r.status == 200, r.raw
    assert b"bonjour" not in r.raw and b"jour" in r.raw and r.raw.endswith(b"data: [DONE]\n\n")
    sent = seen[-1]
    assert "stream_options" not in sent and sent["max_tokens"] == 50
    assert "strict" not in sent["tools"][0]["function"]
    call_id = sent["messages"][1]["tool_calls"][0]["id"]
    assert len(call_id) == 9 and sent["messages"][2]["tool_call_id"] == call_id
    # the usage on Mistral's last chunk is still seen, costed and reported back
    last = [json.loads(line[5:]) for line in r.raw.decode().splitlines()
            if line.startswith("data: {")][-1]
    assert last["usage"]["prompt_tokens"] == 12 and last["usage"]["is_byok"] is True
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{d.url}/v1/chat/completions", json={
                "model": "mistral/mistral-large-2512", "messages": HELLO},
                headers={"Authorization": "Bearer lg-test-local-key-0123456789"}) as resp:
            assert resp.status == 200
            assert (await resp.json())["usage"]["cost"] > 0


async def test_hosted_gateway_shaping_on_direct_calls(start_daemon: StartDaemon,
                                                      aiohttp_server: Any) -> None:
    """Reference 2.3 on BYOK calls: Mistral's default temperature 0.2 (a client's own wins);
    tool_choice "required" when an attempt_completion tool is offered to xAI, OpenAI, Gemini,
    Moonshot or Mistral and the client left the choice open; never on the gateway."""
    from tests.fakes import FakeUpstream
    seen: list[dict[str, Any]] = []
    conf = await openai_at(aiohttp_server, strict_mistral(seen))
    fake = FakeUpstream()
    fake_url = str((await aiohttp_server(fake.app)).make_url("")).rstrip("/")
    providers = {p: {"base_url": f"{fake_url}/{p}/v1"} for p in ("x-ai", "openai", "google",
                                                                 "moonshotai")}
    providers["mistral"] = conf["providers"]["openai"]
    providers["kilo"] = {"base_url": f"{fake_url}/api/gateway"}
    d = await start_daemon({"providers": providers}, MISTRAL_API_KEY="m", XAI_API_KEY="x",
                           OPENAI_API_KEY="o", GEMINI_API_KEY="g", MOONSHOT_API_KEY="k",
                           KILO_API_KEY="kilo")
    done = {"type": "function", "function": {"name": "attempt_completion",
                                             "parameters": {"type": "object"}}}
    other = {"type": "function", "function": {"name": "read_file",
                                              "parameters": {"type": "object"}}}
    r = await chat(d, {"model": "mistral/mistral-large-2512", "messages": HELLO})
    assert r.status == 200 and seen[-1]["temperature"] == 0.2
    r = await chat(d, {"model": "mistral/mistral-large-2512", "messages": HELLO,
                       "temperature": 0.9, "tools": [other, done]})
    assert seen[-1]["temperature"] == 0.9 and seen[-1]["tool_choice"] == "required"
    for model in ("x-ai/grok-code-fast-1", "openai/gpt-5.2", "google/gemini-3-flash-preview",
                  "moonshotai/kimi-k2.5"):
        for tools, choice, expected in (([other, done], None, "required"),
                                        ([other, done], "auto", "required"),
                                        ([other, done], "none", "none"),
                                        ([other], None, None)):
            body: dict[str, Any] = {"model": model, "messages": HELLO, "tools": tools}
            if choice is not None:
                body["tool_choice"] = choice
            r = await chat(d, body)
            assert r.status == 200, r.raw
            assert fake.last.body.get("tool_choice") == expected, (model, choice)
            assert "temperature" not in fake.last.body
    r = await chat(d, {"model": "anthropic/claude-haiku-4.5", "messages": HELLO,
                       "tools": [other, done]})  # via the hosted gateway: its own shaping
    assert fake.last.path == "/api/gateway/chat/completions"
    assert "tool_choice" not in fake.last.body
