"""Shared pieces of the end-to-end tests (tests/test_e2e_*.py): the strict fake Messages API and
the fake Responses/embeddings API served on 127.0.0.1, the config that points a provider at
them, and readers for what a daemon answered (SSE events, settled spend rows, catalog prices).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import Daemon
from tests.fake_anthropic import FakeAnthropic
from tests.fake_responses import FakeResponses
from tests.test_spend import catalog_micros, prices, settled

__all__ = ["catalog_micros", "prices", "settled"]

SONNET = "anthropic/claude-sonnet-4.6"
SONNET_NATIVE = "claude-sonnet-4-6"
GPT = "openai/gpt-5.2"
OPENAI_KEY = "sk-test-openai-e2e-0123456789"
KILO_KEY = "kilo-test-key-e2e-0123456789"
XAI_KEY = "xai-test-key-e2e-0123456789"


@pytest.fixture
async def claude_api(aiohttp_server: Any) -> FakeAnthropic:
    f = FakeAnthropic()
    server = await aiohttp_server(f.app)
    f.url = str(server.make_url("")).rstrip("/")
    return f


@pytest.fixture
async def responses_api(aiohttp_server: Any) -> FakeResponses:
    f = FakeResponses()
    server = await aiohttp_server(f.app)
    f.url = str(server.make_url("")).rstrip("/")
    return f


def anthropic_at(fake: FakeAnthropic) -> dict[str, Any]:
    """Config: provider anthropic's base_url (what /v1/messages is appended to) at the fake."""
    return {"providers": {"anthropic": {"base_url": fake.url}}}


def responses_at(fake: FakeResponses) -> dict[str, Any]:
    """Config: OpenAI and the hosted gateway at the fake Responses API, each on its prefix."""
    return {"providers": {"openai": {"base_url": f"{fake.url}/openai/v1"},
                          "kilo": {"base_url": f"{fake.url}/api/gateway"}}}


def events(raw: bytes) -> list[tuple[str | None, Any]]:
    """(event name, parsed data) of each SSE event; `[DONE]` stays a string."""
    out: list[tuple[str | None, Any]] = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            text = "\n".join(data)
            out.append((name, text if text == "[DONE]" else json.loads(text)))
    return out


async def one_row(d: Daemon, n: int = 1) -> dict[str, Any]:
    """The last of exactly n settled spend rows."""
    return (await settled(d.home, n, d))[-1]


def cost_of(p: dict[str, Decimal], row: dict[str, Any]) -> int:
    """What a row should cost at catalog prices, from its own token counts."""
    return catalog_micros(p, row["prompt_tokens"], row["completion_tokens"],
                          cached=row["cached_tokens"], written=row["cache_write_tokens"])
