"""The catalog is refreshed from the hosted gateway's /models in the background: new models
appear, the list is cached for the next start, and being offline changes nothing."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import aiohttp
import pytest

from localgate import app
from tests.conftest import StartDaemon
from tests.fakes import FakeUpstream

NEW = {"id": "newlab/brand-new-model", "name": "NewLab: Brand New", "created": 1790000000,
       "description": "appeared after the snapshot", "context_length": 64000,
       "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
       "top_provider": {"context_length": 64000, "max_completion_tokens": 8000},
       "pricing": {"prompt": "0.000001", "completion": "0.000002"},
       "supported_parameters": ["tools"]}


@pytest.fixture(autouse=True)
def quick_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "REFRESH_FIRST_DELAY_S", 0.05)


async def _ids(url: str) -> set[str]:
    async with aiohttp.ClientSession() as s, s.get(f"{url}/v1/models") as r:
        return {m["id"] for m in (await r.json())["data"]}


async def _wait_for(url: str, model_id: str, timeout: float = 3.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if model_id in await _ids(url):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_refresh_adds_hosted_models_and_caches_them(start_daemon: StartDaemon,
                                                          fake: FakeUpstream,
                                                          home: Path) -> None:
    fake.models = [NEW]
    d = await start_daemon({"catalog": {"refresh": True}})
    assert await _wait_for(d.url, NEW["id"])
    async with aiohttp.ClientSession() as s, \
            s.get(f"{d.url}/v1/models/newlab/brand-new-model") as r:
        m = await r.json()
    assert m["pricing"]["prompt"] == "0.000001" and m["context_length"] == 64000
    assert "anthropic/claude-sonnet-4.6" in await _ids(d.url)  # the snapshot stays
    cache = json.loads((home / "catalog-cache.json").read_text())
    assert cache["data"][0]["id"] == NEW["id"]


async def test_offline_refresh_keeps_the_bundled_catalog(start_daemon: StartDaemon,
                                                         fake: FakeUpstream, home: Path,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    fake.models = []  # the fake answers 404 for /models
    caplog.set_level(logging.INFO, logger="localgate")
    d = await start_daemon({"catalog": {"refresh": True}})
    deadline = asyncio.get_running_loop().time() + 3.0
    # the refresher really ran (and failed): without this, a refresher that never runs passes
    while not any("catalog refresh skipped" in r.getMessage() for r in caplog.records):
        assert asyncio.get_running_loop().time() < deadline, "the refresher never ran"
        await asyncio.sleep(0.05)
    ids = await _ids(d.url)
    assert "anthropic/claude-sonnet-4.6" in ids and len(ids) > 300
    assert not (home / "catalog-cache.json").exists()


async def test_cached_list_is_used_at_the_next_start(start_daemon: StartDaemon,
                                                     home: Path) -> None:
    (home / "catalog-cache.json").write_text(json.dumps({"fetched_at": "2026-11-20T00:00:00Z",
                                                         "data": [NEW]}))
    d = await start_daemon()  # refresh off: the cache alone must bring the model
    assert NEW["id"] in await _ids(d.url)


async def test_a_hosted_model_without_an_output_limit_gets_its_context_length(
        start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    unbounded = {**NEW, "id": "newlab/unbounded", "context_length": None,
                 "top_provider": {"context_length": 32000, "max_completion_tokens": None}}
    fake.models = [unbounded]
    d = await start_daemon({"catalog": {"refresh": True}})
    assert await _wait_for(d.url, "newlab/unbounded")
    async with aiohttp.ClientSession() as s, s.get(f"{d.url}/v1/models/newlab/unbounded") as r:
        m = await r.json()
    assert m["context_length"] == 32000  # the top provider's, when the model gives none
    assert m["top_provider"]["max_completion_tokens"] == 32000
