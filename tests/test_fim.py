"""Fill-in-the-middle (SPEC 3-4): Codestral through Mistral with the user's key, else through
the Kilo service's FIM endpoint, with the same controls and spend log as chat."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from localgate import config
from tests.conftest import StartDaemon, auth
from tests.fakes import FakeUpstream
from tests.http import call

FIM = {"model": "mistralai/codestral-2508", "prompt": "def add(a, b):\n    ",
       "suffix": "\n", "max_tokens": 64, "temperature": 0.2, "stop": ["\n\n"]}
MISTRAL_KEY = "mistral-fim-key-123"
KILO_KEY = "kilo-fim-key-456"


async def fim(d: Any, body: dict[str, Any], path: str = "/v1/fim/completions",
              headers: dict[str, str] | None = None) -> Any:
    return await call(d, "POST", path, body=body, headers={**auth(), **(headers or {})})


async def test_byok_goes_to_mistral_with_the_native_id(start_daemon: StartDaemon,
                                                       fake: FakeUpstream) -> None:
    d = await start_daemon(MISTRAL_API_KEY=MISTRAL_KEY, KILO_API_KEY=KILO_KEY)
    r = await fim(d, {**FIM, "unknown_field": 1})
    assert r.status == 200, r.raw
    assert r.headers["x-localgate-route"] == "byok"
    assert r.headers["x-localgate-provider"] == "mistral"
    seen = fake.last
    assert seen.path == "/mistral/v1/fim/completions"
    assert seen.body["model"] == "codestral-2508" and seen.body["temperature"] == 0.2
    assert "unknown_field" not in seen.body  # Mistral would refuse it (422)
    assert seen.headers["Authorization"] == f"Bearer {MISTRAL_KEY}"
    usage = r.json["usage"]
    # catalog prices of mistralai/codestral-2508, read from the daemon's own /models
    price = (await call(d, "GET", "/v1/models/mistralai/codestral-2508")).json["pricing"]
    expected = (Decimal(price["prompt"]) * 11 + Decimal(price["completion"]) * 7) * 1_000_000
    micros = expected.quantize(Decimal(1), ROUND_HALF_UP)  # money is whole microdollars
    assert Decimal(str(usage["cost"])) * 1_000_000 == micros and usage["is_byok"] is True


async def test_without_a_mistral_key_it_goes_to_the_kilo_service(start_daemon: StartDaemon,
                                                                  fake: FakeUpstream) -> None:
    d = await start_daemon(KILO_API_KEY=KILO_KEY)
    r = await fim(d, FIM, path="/api/fim/completions",
                  headers={"X-KiloCode-Feature": "autocomplete"})
    assert r.status == 200, r.raw
    assert r.headers["x-localgate-route"] == "gateway"
    assert r.headers["x-localgate-provider"] == "mistral"
    seen = fake.last
    assert seen.path == "/api/fim/completions"
    assert seen.body["model"] == "mistralai/codestral-2508"
    assert "temperature" not in seen.body  # the hosted endpoint keeps only its own fields
    assert seen.headers["Authorization"] == f"Bearer {KILO_KEY}"
    assert seen.headers["X-KiloCode-Feature"] == "autocomplete"


@pytest.mark.parametrize("path", ["/v1/fim/completions", "/api/gateway/fim/completions",
                                  "/api/fim/completions"])
async def test_stream_is_relayed_and_logged(start_daemon: StartDaemon, fake: FakeUpstream,
                                            path: str) -> None:
    d = await start_daemon(MISTRAL_API_KEY=MISTRAL_KEY)
    r = await fim(d, {**FIM, "model": "mistral/codestral-2508", "stream": True}, path=path)
    assert r.status == 200
    events = [line[6:] for line in r.raw.decode().splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    text = "".join(json.loads(e)["choices"][0]["delta"]["content"] for e in events[:-1])
    assert text == "return a + b"
    assert "stream_options" not in fake.last.body
    assert json.loads(events[-2])["usage"]["prompt_tokens"] == 11
    assert await _wait_rows(d, 1)


async def _wait_rows(d: Any, n: int) -> list[dict[str, Any]]:
    import asyncio
    import sqlite3
    assert await asyncio.to_thread(d.running.built.spend_log.flush)

    def read() -> list[dict[str, Any]]:
        conn = sqlite3.connect(d.home / "spend.db")
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute("select * from spend order by ts")]
        finally:
            conn.close()

    rows = await asyncio.to_thread(read)
    assert len(rows) == n, rows
    return rows


async def test_rows_controls_and_refusals(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon({"limits": {"allow_models": ["anthropic/*"]}},
                           MISTRAL_API_KEY=MISTRAL_KEY)
    r = await fim(d, FIM)
    assert r.status == 403 and r.json["error"]["code"] == "model_not_allowed"
    assert fake.seen == []
    rows = await _wait_rows(d, 1)
    assert rows[0]["status"] == "refused" and rows[0]["provider"] == "mistral"


async def test_spend_row_of_a_served_fim(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon(MISTRAL_API_KEY=MISTRAL_KEY)
    assert (await fim(d, FIM)).status == 200
    row = (await _wait_rows(d, 1))[0]
    assert (row["model"], row["resolved_model"], row["provider"], row["route"]) == (
        "mistralai/codestral-2508", "mistralai/codestral-2508", "mistral", "byok")
    assert row["status"] == "ok" and row["cost_source"] == "catalog"
    assert row["prompt_tokens"] == 11 and row["completion_tokens"] == 7
    assert row["cost_microdollars"] > 0


async def test_bad_fim_requests(start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await start_daemon()
    r = await fim(d, FIM)  # no Mistral key, no Kilo key
    err = r.json["error"]
    assert r.status == 401 and "MISTRAL_API_KEY" in err["message"] \
        and "KILO_API_KEY" in err["message"]
    r = await fim(d, {**FIM, "model": "openai/gpt-5.2"})
    assert r.status == 400 and r.json["error"]["code"] == "unsupported_fim_model"
    r = await fim(d, {"model": "mistralai/codestral-2508"})
    assert r.status == 400 and r.json["error"]["param"] == "prompt"
    r = await call(d, "POST", "/v1/fim/completions", body=FIM)  # anonymous
    assert r.status == 401
    assert fake.seen == []


def test_a_moved_kilo_base_url_takes_its_service_root_along() -> None:
    s = config.from_document({"providers": {"kilo": {
        "base_url": "http://127.0.0.1:9/api/gateway"}}})
    assert s.kilo.api_url == "http://127.0.0.1:9"
    s = config.from_document({"providers": {"kilo": {
        "base_url": "http://proxy:8/x/api/gateway", "api_url": "http://other:1"}}})
    assert s.kilo.api_url == "http://other:1"


# ---- other inference calls forwarded to the Kilo service ---------------------------------------

async def test_forwarded_inference_is_controlled_and_logged(start_daemon: StartDaemon,
                                                            fake: FakeUpstream) -> None:
    d = await start_daemon({"limits": {"allow_models": ["openai/*"]}}, KILO_API_KEY=KILO_KEY)
    body = {"model": "anthropic/claude-sonnet-4.6", "input": "hi"}
    r = await call(d, "POST", "/api/gateway/responses", body=body, headers=auth())
    assert r.status == 403 and r.json["error"]["code"] == "model_not_allowed"
    assert fake.seen == []  # refused before anything was sent
    # Responses is served locally now, and sent on to the hosted gateway's own /responses
    r = await call(d, "POST", "/api/v1/responses", body={**body, "model": "openai/gpt-5.2"},
                   headers=auth())
    assert r.status == 200 and r.json["echo_path"] == "/api/gateway/responses"
    rows = await _wait_rows(d, 2)
    assert [(x["status"], x["model"], x["route"]) for x in rows] == [
        ("refused", "anthropic/claude-sonnet-4.6", None),
        ("ok", "openai/gpt-5.2", "gateway")]


async def test_forwarded_inference_respects_a_reached_limit(start_daemon: StartDaemon,
                                                            fake: FakeUpstream) -> None:
    d = await start_daemon({"limits": {"daily_usd": 0.0}}, KILO_API_KEY=KILO_KEY)
    r = await call(d, "POST", "/api/gateway/messages",
                   body={"model": "anthropic/claude-sonnet-4.6", "max_tokens": 5,
                         "messages": [{"role": "user", "content": "hi"}]}, headers=auth())
    assert r.status == 402 and r.json["error"]["period"] == "day"
    assert r.json["type"] == "error"  # /messages answers in Anthropic's envelope
    r = await call(d, "GET", "/api/profile", headers=auth())  # not inference: just forwarded
    assert r.status == 200
