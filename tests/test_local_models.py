"""Local models, discovered (issue 7 item 4): while Ollama or LM Studio answers on its configured
URL, `/models` (every prefix) and `localgate models` list its models as `ollama/<name>` /
`lmstudio/<name>`, free, with the context length the server gives; they go when it stops
answering; the looking never delays a request and says one line per change, none while
nothing answers. Fake servers with the real response shapes run on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from localgate import app, discovery
from tests.conftest import StartDaemon
from tests.fakes import FakeUpstream
from tests.fakes_local import FakeLMStudio, FakeOllama, lmstudio_model, ollama_model
from tests.http import HELLO, call, chat
from tests.test_spend import settled

LLAMA = ollama_model("llama3.2:latest", "llama", 131_072, ["completion", "tools"])
LLAVA = ollama_model("llava:7b", "llama", 32_768, ["completion", "vision"], size="7B")
EMBED = ollama_model("nomic-embed-text:latest", "nomic-bert", 8_192, ["embedding"], size="137M")
QWEN = lmstudio_model("qwen2.5-7b-instruct", "llm", 32_768)
QWEN_VL = lmstudio_model("qwen2-vl-7b-instruct", "vlm", 16_384)


@pytest.fixture(autouse=True)
def quick_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "LOCAL_FIRST_DELAY_S", 0.05)
    monkeypatch.setattr(app, "LOCAL_EVERY_S", 0.1)


async def _serve(aiohttp_server: Any, fake: Any, **kw: Any) -> Any:
    server = await aiohttp_server(fake.app, **kw)
    fake.url = str(server.make_url("")).rstrip("/")
    fake.server = server
    return fake


@pytest.fixture
async def ollama(aiohttp_server: Any) -> AsyncIterator[FakeOllama]:
    f = await _serve(aiohttp_server, FakeOllama([LLAMA, LLAVA, EMBED]))
    yield f
    f.release()


@pytest.fixture
async def lmstudio(aiohttp_server: Any) -> AsyncIterator[FakeLMStudio]:
    f = await _serve(aiohttp_server, FakeLMStudio([QWEN, QWEN_VL]))
    yield f
    f.release()


def at(ollama_url: str, lmstudio_url: str) -> dict[str, Any]:
    """Config pointing the two local providers at their (OpenAI-compatible) /v1 roots."""
    return {"providers": {"ollama": {"base_url": f"{ollama_url}/v1"},
                          "lmstudio": {"base_url": f"{lmstudio_url}/v1"}}}


def closed_port_url() -> str:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


async def listed(url: str, prefix: str = "/v1") -> dict[str, dict[str, Any]]:
    r = await call(url, "GET", f"{prefix}/models")
    assert r.status == 200, r.raw
    return {m["id"]: m for m in r.json["data"]}


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.03)


def local_ids(models: dict[str, Any]) -> set[str]:
    return {m for m in models if m.startswith(("ollama/", "lmstudio/"))}


# ---- the daemon ----------------------------------------------------------------------------------

async def test_daemon_lists_the_local_servers_models_under_every_prefix(
        start_daemon: StartDaemon, ollama: FakeOllama, lmstudio: FakeLMStudio) -> None:
    d = await start_daemon(at(ollama.url, lmstudio.url))
    want = {"ollama/llama3.2:latest", "ollama/llava:7b", "ollama/nomic-embed-text:latest",
            "lmstudio/qwen2.5-7b-instruct", "lmstudio/qwen2-vl-7b-instruct"}

    async def all_there() -> dict[str, Any] | None:
        models = await listed(d.url)
        return models if local_ids(models) == want else None

    models = await eventually(all_there)
    llama = models["ollama/llama3.2:latest"]
    assert llama["isFree"] is True and llama["owned_by"] == "ollama"
    assert all(v == "0" for v in llama["pricing"].values())
    assert llama["context_length"] == 131_072  # model_info.llama.context_length via /api/show
    assert llama["top_provider"] == {"context_length": 131_072,
                                     "max_completion_tokens": 131_072, "is_moderated": False}
    assert "tools" in llama["supported_parameters"]
    assert models["ollama/llava:7b"]["architecture"]["input_modalities"] == ["text", "image"]
    assert models["ollama/nomic-embed-text:latest"]["architecture"]["output_modalities"] == [
        "embeddings"]
    qwen = models["lmstudio/qwen2.5-7b-instruct"]
    assert qwen["context_length"] == 32_768 and qwen["owned_by"] == "lmstudio"  # /api/v0
    assert models["lmstudio/qwen2-vl-7b-instruct"]["architecture"]["input_modalities"] == [
        "text", "image"]
    for prefix in ("/api/gateway", "/api/openrouter", "/api/v1"):
        assert local_ids(await listed(d.url, prefix)) == want, prefix
    one = await call(d.url, "GET", "/v1/models/ollama/llama3.2:latest")
    assert one.status == 200 and one.json["id"] == "ollama/llama3.2:latest"
    groups = (await call(d.url, "GET", "/v1/models-by-provider")).json["providers"]
    assert {m["id"] for g in groups if g["slug"] == "ollama" for m in g["models"]} == {
        m for m in want if m.startswith("ollama/")}


async def test_every_listed_model_has_a_context_length_and_a_maximum_output(
        start_daemon: StartDaemon, ollama: FakeOllama, lmstudio: FakeLMStudio) -> None:
    d = await start_daemon(at(ollama.url, lmstudio.url))

    async def with_local() -> dict[str, Any] | None:
        models = await listed(d.url)
        return models if len(local_ids(models)) == 5 else None

    models = await eventually(with_local)
    assert len(models) > 400  # virtual models, the bundled catalog and the local ones
    holes = [mid for mid, m in models.items()
             if not (isinstance(m["context_length"], int) and m["context_length"] > 0)
             or not (isinstance(m["top_provider"]["max_completion_tokens"], int)
                     and m["top_provider"]["max_completion_tokens"] > 0)]
    assert holes == []
    assert models["giga-potato"]["context_length"] == 256_000
    assert models["corethink:free"]["top_provider"]["max_completion_tokens"] == 8_192


async def test_a_chat_to_a_local_model_goes_to_its_server_and_costs_nothing(
        start_daemon: StartDaemon, ollama: FakeOllama, lmstudio: FakeLMStudio,
        fake: FakeUpstream) -> None:
    d = await start_daemon(at(ollama.url, lmstudio.url))
    await eventually(lambda: _has(d.url, "ollama/llama3.2:latest"))
    r = await chat(d, {"model": "ollama/llama3.2:latest", "messages": HELLO})
    assert r.status == 200, r.raw
    assert r.headers["x-localgate-route"] == "local"
    assert r.headers["x-localgate-provider"] == "ollama"
    assert r.json["choices"][0]["message"]["content"] == "hello from FakeOllama llama3.2:latest"
    assert r.json["usage"]["cost"] == 0 and r.json["usage"]["is_byok"] is False
    # anonymous clients may use local models too; streamed through the SDK
    async with d.sdk(key=None) as client:
        stream = await client.chat.completions.create(
            model="lmstudio/qwen2.5-7b-instruct", messages=HELLO, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "hello from FakeLMStudio qwen2.5-7b-instruct"
    assert [c["model"] for c in ollama.chats + lmstudio.chats] == [
        "llama3.2:latest", "qwen2.5-7b-instruct"]  # the server's own names, prefix removed
    assert fake.seen == []  # nothing went to a hosted gateway
    rows = await settled(d.home, 2, d)
    assert [(r["resolved_model"], r["provider"], r["route"], r["cost_microdollars"],
             r["cost_source"]) for r in rows] == [
        ("ollama/llama3.2:latest", "ollama", "local", 0, "free"),
        ("lmstudio/qwen2.5-7b-instruct", "lmstudio", "local", 0, "free")]


async def _has(url: str, model_id: str) -> bool:
    return model_id in await listed(url)


async def test_a_server_that_stops_answering_takes_its_models_along(
        start_daemon: StartDaemon, ollama: FakeOllama, lmstudio: FakeLMStudio,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="localgate")
    d = await start_daemon(at(ollama.url, lmstudio.url))
    await eventually(lambda: _has(d.url, "ollama/llama3.2:latest"))
    await eventually(lambda: _has(d.url, "lmstudio/qwen2.5-7b-instruct"))
    await ollama.server.close()

    async def ollama_gone() -> bool:
        ids = local_ids(await listed(d.url))
        return not any(i.startswith("ollama/") for i in ids)

    await eventually(ollama_gone)
    assert await _has(d.url, "lmstudio/qwen2.5-7b-instruct")  # the other server's stay
    await asyncio.sleep(0.5)  # five more looks: still one line each, no repeats
    lines = [r.getMessage() for r in caplog.records if "answer" in r.getMessage()]
    assert lines == [f"Ollama answers at {ollama.url}/v1: 3 model(s) listed as ollama/…",
                     f"LM Studio answers at {lmstudio.url}/v1: 2 model(s) listed as lmstudio/…",
                     f"Ollama at {ollama.url}/v1 stopped answering; its models are no longer "
                     "listed"]
    assert all(r.levelno == logging.INFO for r in caplog.records if "answer" in r.getMessage())


async def test_quiet_while_nothing_answers_then_one_line_when_a_server_appears(
        start_daemon: StartDaemon, aiohttp_server: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="localgate")
    later = closed_port_url()
    d = await start_daemon(at(later, closed_port_url()))
    await asyncio.sleep(0.6)  # several looks at two closed ports
    assert local_ids(await listed(d.url)) == set()
    assert [r.getMessage() for r in caplog.records if "answer" in r.getMessage()] == []
    port = int(later.rsplit(":", 1)[1])
    f = await _serve(aiohttp_server, FakeOllama([LLAMA]), port=port)
    await eventually(lambda: _has(d.url, "ollama/llama3.2:latest"))
    lines = [r.getMessage() for r in caplog.records if "answer" in r.getMessage()]
    assert lines == [f"Ollama answers at {f.url}/v1: 1 model(s) listed as ollama/…"]


async def test_model_facts_are_asked_once_per_model(start_daemon: StartDaemon,
                                                    ollama: FakeOllama,
                                                    lmstudio: FakeLMStudio) -> None:
    d = await start_daemon(at(ollama.url, lmstudio.url))
    await eventually(lambda: _has(d.url, "ollama/llama3.2:latest"))
    await asyncio.sleep(0.45)  # four more looks at /api/tags
    assert sorted(ollama.shows) == sorted(m["name"] for m in (LLAMA, LLAVA, EMBED))


async def test_a_hanging_local_server_never_delays_a_request(
        start_daemon: StartDaemon, ollama: FakeOllama, lmstudio: FakeLMStudio,
        fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "LOCAL_TIMEOUT_S", 30.0)
    ollama.hang = lmstudio.hang = True  # both listings wait until released
    d = await start_daemon(at(ollama.url, lmstudio.url), OPENAI_API_KEY="sk-test")
    await asyncio.sleep(0.2)  # the first look is under way, waiting on both servers
    t0 = time.monotonic()
    models = await listed(d.url)
    r = await chat(d, {"model": "openai/gpt-5.2", "messages": HELLO})
    elapsed = time.monotonic() - t0
    assert r.status == 200 and r.headers["x-localgate-route"] == "byok"
    assert local_ids(models) == set() and "openai/gpt-5.2" in models
    assert elapsed < 1.0, elapsed
    ollama.release()
    lmstudio.release()
    await eventually(lambda: _has(d.url, "ollama/llama3.2:latest"))


# ---- the parsing (pure) --------------------------------------------------------------------------

def test_ollama_shapes() -> None:
    models = discovery.ollama_models({"models": [{k: v for k, v in LLAMA.items()
                                                  if not k.startswith("_")}]})
    assert models is not None and [m["name"] for m in models] == ["llama3.2:latest"]
    assert models[0]["created"] == 1791151009  # 2026-10-04T14:56:49.277302595-07:00
    show = {"model_info": {"general.architecture": "qwen3", "qwen3.context_length": 40_960},
            "capabilities": ["completion", "tools", "thinking"]}
    facts = discovery.ollama_facts(show)
    assert facts == {"context": 40_960, "capabilities": ["completion", "tools", "thinking"]}
    e = discovery.ollama_entry(models[0], facts, "http://localhost:11434")
    assert e["id"] == "ollama/llama3.2:latest" and e["free"] is True
    assert (e["context_length"], e["max_completion_tokens"]) == (40_960, 40_960)
    assert {"tools", "reasoning"} <= set(e["supported_parameters"])
    # /api/show unanswered: listed all the same, with the default window Ollama serves
    bare = discovery.ollama_entry(models[0], {}, "http://localhost:11434")
    assert bare["context_length"] == discovery.FALLBACK_CONTEXT == 4096
    for junk in (None, [], {"models": "x"}, {"error": "no"}):
        assert discovery.ollama_models(junk) is None
    assert discovery.ollama_models({"models": [{"size": 1}, "x", {"name": " "}]}) == []
    assert discovery.ollama_facts({"model_info": {"llama.context_length": 0}})["context"] is None


def test_lmstudio_shapes() -> None:
    listed = {"object": "list", "data": [{"id": "qwen2.5-7b-instruct", "object": "model"},
                                         {"id": "text-embedding-nomic", "object": "model"}]}
    native = {"data": [QWEN, {**lmstudio_model("text-embedding-nomic", "embeddings", 2048)}]}
    entries = discovery.lmstudio_entries(listed, native, "http://localhost:1234/v1")
    assert entries is not None
    by_id = {e["id"]: e for e in entries}
    assert by_id["lmstudio/qwen2.5-7b-instruct"]["context_length"] == 32_768
    assert by_id["lmstudio/text-embedding-nomic"]["architecture"]["output_modalities"] == [
        "embeddings"]
    # only the OpenAI-compatible listing answered (older LM Studio): the default window
    only = discovery.lmstudio_entries(listed, None, "http://localhost:1234/v1")
    assert only is not None and {e["context_length"] for e in only} == {4096}
    assert discovery.lmstudio_entries({"models": []}, native, "x") is None
    assert discovery.lmstudio_entries(None, None, "x") is None
    assert discovery.native_root("http://localhost:11434/v1/") == "http://localhost:11434"


# ---- the command ---------------------------------------------------------------------------------

def _cli(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "localgate", *args], capture_output=True,
                       text=True, env=os.environ.copy(), timeout=20, stdin=subprocess.DEVNULL)
    return r, time.monotonic() - t0


def _config(home: Path, doc: dict[str, Any]) -> None:
    (home / "config.toml").write_bytes(tomli_w.dumps(doc).encode())


async def test_localgate_models_asks_the_local_servers_itself(
        home: Path, ollama: FakeOllama, lmstudio: FakeLMStudio) -> None:
    _config(home, at(ollama.url, lmstudio.url))  # no daemon runs
    r, _ = await asyncio.to_thread(_cli, "models", "--provider", "ollama", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [(x["id"], x["free"], x["context_length"], x["prompt_per_m"]) for x in rows] == [
        ("ollama/llama3.2:latest", True, 131_072, 0.0), ("ollama/llava:7b", True, 32_768, 0.0),
        ("ollama/nomic-embed-text:latest", True, 8_192, 0.0)]
    r, _ = await asyncio.to_thread(_cli, "models", "--free")
    assert r.returncode == 0, r.stderr
    assert "lmstudio/qwen2-vl-7b-instruct" in r.stdout and "ollama/llava:7b" in r.stdout


async def test_localgate_models_stays_fast_when_local_servers_hang(
        home: Path, ollama: FakeOllama, lmstudio: FakeLMStudio) -> None:
    ollama.hang = lmstudio.hang = True
    _config(home, at(ollama.url, lmstudio.url))
    r, elapsed = await asyncio.to_thread(_cli, "models", "--format", "json")
    assert r.returncode == 0, r.stderr
    ids = {x["id"] for x in json.loads(r.stdout)}
    assert "anthropic/claude-sonnet-4.6" in ids and local_ids(dict.fromkeys(ids)) == set()
    # each server gets at most 0.5 s, both at once; the rest is the interpreter starting
    assert elapsed < 4.0, elapsed


async def test_localgate_models_with_nothing_local_running(home: Path) -> None:
    _config(home, at(closed_port_url(), closed_port_url()))
    r, _ = await asyncio.to_thread(_cli, "models", "--provider", "ollama", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [] and r.stderr == ""


# ---- LM Studio with "Require Authentication" on ---------------------------------------------------

LM_TOKEN = "sk-lm-test-token-4242"


async def test_an_lmstudio_that_requires_a_token_is_listed_and_served_with_the_users_token(
        start_daemon: StartDaemon, aiohttp_server: Any, ollama: FakeOllama) -> None:
    locked = await _serve(aiohttp_server, FakeLMStudio([QWEN], token=LM_TOKEN))
    d = await start_daemon(at(ollama.url, locked.url), LM_API_TOKEN=LM_TOKEN)
    await eventually(lambda: _has(d.url, "lmstudio/qwen2.5-7b-instruct"))
    assert (await listed(d.url))["lmstudio/qwen2.5-7b-instruct"]["context_length"] == 32_768
    r = await chat(d, {"model": "lmstudio/qwen2.5-7b-instruct", "messages": HELLO})
    assert r.status == 200, r.raw
    assert r.json["choices"][0]["message"]["content"] == \
        "hello from FakeLMStudio qwen2.5-7b-instruct"
    assert locked.refused == 0
    assert LM_TOKEN not in r.raw.decode()


async def test_without_the_token_its_models_are_not_listed(
        start_daemon: StartDaemon, aiohttp_server: Any, ollama: FakeOllama) -> None:
    locked = await _serve(aiohttp_server, FakeLMStudio([QWEN], token=LM_TOKEN))
    d = await start_daemon(at(ollama.url, locked.url))
    await eventually(lambda: _has(d.url, "ollama/llama3.2:latest"))
    await eventually(lambda: _refused(locked))
    assert not any(m.startswith("lmstudio/") for m in await listed(d.url))


async def _refused(fake: FakeLMStudio) -> bool:
    return fake.refused > 0


async def test_localgate_models_sends_the_token_too(
        home: Path, aiohttp_server: Any, ollama: FakeOllama,
        monkeypatch: pytest.MonkeyPatch) -> None:
    locked = await _serve(aiohttp_server, FakeLMStudio([QWEN], token=LM_TOKEN))
    _config(home, at(ollama.url, locked.url))
    monkeypatch.setenv("LM_API_TOKEN", LM_TOKEN)
    r, _ = await asyncio.to_thread(_cli, "models", "--provider", "lmstudio", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert [x["id"] for x in json.loads(r.stdout)] == ["lmstudio/qwen2.5-7b-instruct"]
    assert LM_TOKEN not in r.stdout + r.stderr
