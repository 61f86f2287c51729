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
from tests.fakes import FakeUpstream

NODE_DIR = Path(__file__).parent / "node"
OPENAI_KEY = "sk-test-openai-0123456789abcdef"
KILO_KEY = "kilo-test-key-0123456789"
BYOK = "openai/gpt-5.2"


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
