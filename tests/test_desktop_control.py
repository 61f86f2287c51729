"""The daemon under the tray: runtime.ServerThread (the server on its own thread and loop) and
the DaemonController the tray calls, driven from this (the "tray") thread while real HTTP
requests check what the daemon does. The blockbuster fixture watches the server loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import tomli_w

from localgate import config, ledger, runtime
from localgate.controls import local_midnight_utc
from localgate.desktop.control import DaemonController
from localgate.ledger import SpendEntry, utc_text
from localgate.server.keys import SESSIONS
from tests.conftest import LOCAL_KEY, auth, provider_doc
from tests.fakes import FakeUpstream


def _config(home: Path, extra: dict[str, Any] | None = None) -> config.Settings:
    doc = {"catalog": {"refresh": False}, **(extra or {})}
    (home / "config.toml").write_bytes(tomli_w.dumps(doc).encode())
    return config.load()


def _health(server: runtime.ServerThread) -> dict[str, Any]:
    assert server.running is not None
    url = f"http://127.0.0.1:{server.running.port}/health"
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 (loopback)
        return dict(json.loads(r.read()))


@pytest.fixture
def server(home: Path) -> Iterator[runtime.ServerThread]:
    s = runtime.ServerThread(_config(home), "127.0.0.1", 0)
    s.start()
    yield s
    s.stop()


def _log_rows(home: Path, *entries: SpendEntry) -> None:
    w = ledger.LedgerWriter(home / "spend.db")
    for e in entries:
        w.write(e)
    assert w.flush()
    w.close()


def test_server_thread_serves_and_stops_bounded(home: Path) -> None:
    before = {t.name for t in threading.enumerate()}
    s = runtime.ServerThread(_config(home), "127.0.0.1", 0)
    running = s.start()
    assert _health(s)["status"] == "ok"
    state = json.loads((home / "daemon.json").read_text())
    assert state["port"] == running.port
    t0 = time.monotonic()
    assert s.stop(timeout=10) is True
    print(f"\nServerThread.stop(): {(time.monotonic() - t0) * 1000:.0f} ms")
    assert not (home / "daemon.json").exists()
    assert "localgate-server" not in {t.name for t in threading.enumerate()} - before
    again = runtime.ServerThread(config.load(), "127.0.0.1", 0)  # the home lock was released
    again.start()
    assert again.stop()


def test_a_second_daemon_says_where_the_first_is(server: runtime.ServerThread) -> None:
    assert server.running is not None
    second = runtime.ServerThread(config.load(), "127.0.0.1", 0)
    with pytest.raises(runtime.AlreadyRunning) as err:
        second.start()
    assert f"already running at http://127.0.0.1:{server.running.port}/v1" in str(err.value)
    assert second.stop()


def test_status_pause_and_upstream_badge(server: runtime.ServerThread) -> None:
    c = DaemonController(server)
    s = c.status()
    assert (s.base_url, s.default_model, s.paused, s.spent_today, s.daily_limit, s.state) == (
        f"http://127.0.0.1:{c._running.port}/v1", "kilo-auto/balanced", False, 0, None,
        "running")
    c.set_paused(True)
    assert _health(server)["paused"] is True
    assert c.status().state == "paused"
    c.set_paused(False)
    assert _health(server)["paused"] is False
    assert server.running is not None
    server.soon(setattr, server.running.built.live, "upstream_failed", True)
    assert c.status().state == "upstream failed"


def test_default_model_persists_and_applies(server: runtime.ServerThread, home: Path) -> None:
    c = DaemonController(server)
    c.set_default_model("openai/gpt-5.2")
    assert config.read_document(home / "config.toml")["routing"]["default_model"] == \
        "openai/gpt-5.2"
    assert config.read_document(home / "config.toml")["catalog"] == {"refresh": False}
    assert _health(server)["default_model"] == "openai/gpt-5.2"  # before any reload poll
    assert c.status().default_model == "openai/gpt-5.2"


def test_dashboard_link_is_a_valid_one_time_token(server: runtime.ServerThread) -> None:
    c = DaemonController(server)
    url = c.dashboard_url()
    prefix = f"http://127.0.0.1:{c._running.port}/localgate/login?token="
    assert url.startswith(prefix)
    token = url[len(prefix):]

    async def redeem() -> str | None:
        assert server.running is not None
        return server.running.built.app[SESSIONS].redeem(token)
    assert server.call(redeem())
    assert server.call(redeem()) is None  # one use only
    assert c.api_key() == LOCAL_KEY


def test_model_choices_auto_popular_recent(home: Path) -> None:
    now = time.time()
    _log_rows(home, *(SpendEntry(f"r{i}", utc_text(now - 100 + i), "default",
                                 resolved_model=m, status="ok")
                      for i, m in enumerate(["x-ai/grok-4", "openai/gpt-5.2", "x-ai/grok-4",
                                             "mistral/codestral-2508"])))
    s = runtime.ServerThread(_config(home), "127.0.0.1", 0)
    s.start()
    try:
        ch = DaemonController(s).model_choices()
    finally:
        s.stop()
    # the dashboard's lists (choices.offered): auto models in the config's order, popular in
    # the catalog's, recently used without those already shown
    assert ch.auto == ("kilo-auto/frontier", "kilo-auto/balanced", "kilo-auto/free")
    assert ch.popular[:4] == ("anthropic/claude-opus-4.6", "anthropic/claude-sonnet-4.6",
                              "anthropic/claude-haiku-4.5", "openai/gpt-5.2")
    assert ch.recent == ("mistral/codestral-2508", "x-ai/grok-4")
    groups = dict(ch.groups)
    assert groups["recent"] == ("mistral/codestral-2508", "x-ai/grok-4")  # no repeats


def test_over_limit_from_the_spend_log(home: Path) -> None:
    _log_rows(home, SpendEntry("r1", utc_text(), "default", resolved_model="openai/gpt-5.2",
                               status="ok", cost_microdollars=1_500_000))
    assert local_midnight_utc() <= utc_text()
    s = runtime.ServerThread(_config(home, {"limits": {"daily_usd": 1.0}}), "127.0.0.1", 0)
    s.start()
    try:
        st = DaemonController(s).status()
    finally:
        s.stop()
    assert (st.spent_today, st.daily_limit, st.over_limit, st.state) == (
        1_500_000, 1_000_000, True, "over limit")


def test_start_at_login_from_the_controller(server: runtime.ServerThread, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user" / ".config"))
    monkeypatch.setenv("DISPLAY", ":99")
    c = DaemonController(server)
    assert c.status().autostart is False
    c.set_autostart(True)
    assert (tmp_path / "user/.config/autostart/localgate.desktop").is_file()
    assert c.status().autostart is True
    c.set_autostart(False)
    assert not (tmp_path / "user/.config/autostart/localgate.desktop").exists()
    assert c.status().autostart is False


async def test_quit_ends_streams_and_flushes_the_log(home: Path, fake: FakeUpstream,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """What the tray's Quit does (ServerThread.stop) with a long stream open: the client's
    stream ends at once with [DONE], the row is settled in spend.db, the thread is gone."""
    fake.knobs.chunk_delay, fake.knobs.chunks = 0.2, 100
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai")
    (home / "config.toml").write_bytes(tomli_w.dumps(provider_doc(fake.url)).encode())
    server = runtime.ServerThread(await asyncio.to_thread(config.load), "127.0.0.1", 0)
    running = await asyncio.to_thread(server.start)
    events: list[str] = []
    body = {"model": "openai/gpt-5.2", "messages": [{"role": "user", "content": "hi"}],
            "stream": True}
    async with aiohttp.ClientSession() as http, http.post(
            f"http://127.0.0.1:{running.port}/v1/chat/completions", json=body,
            headers=auth()) as r:
        assert r.status == 200
        async for line in r.content:
            if line.startswith(b"data: "):
                events.append(line[6:].decode().strip())
            if sum('"tok' in e for e in events) == 2:
                break
        t0 = time.monotonic()
        stopping = asyncio.ensure_future(asyncio.to_thread(server.stop, 10.0))
        try:
            async for line in r.content:
                if line.startswith(b"data: "):
                    events.append(line[6:].decode().strip())
        except aiohttp.ClientPayloadError:
            events.append("<payload error>")
        assert await stopping is True
    print(f"\nQuit with a stream open: stopped in {(time.monotonic() - t0) * 1000:.0f} ms")
    assert time.monotonic() - t0 < 6.0
    assert events[-1] == "[DONE]" and sum('"tok' in e for e in events) < 100, events[-3:]
    rows = await asyncio.to_thread(_rows, home)
    assert len(rows) == 1 and rows[0]["status"] != "in_flight", rows
    assert not (home / "daemon.json").exists()


def _rows(home: Path) -> list[dict[str, Any]]:
    conn = ledger.connect(home / "spend.db")
    try:
        return ledger.rows(conn)
    finally:
        conn.close()


def test_a_default_model_outside_the_lists_is_still_offered(home: Path) -> None:
    s = runtime.ServerThread(_config(home, {"routing": {"default_model": "openai/gpt-4.1-mini"}}),
                             "127.0.0.1", 0)
    s.start()
    try:
        ch = DaemonController(s).model_choices()
    finally:
        s.stop()
    assert ch.recent == ("openai/gpt-4.1-mini",)  # checked in the menu, so it must be there


def test_quit_from_the_controller_stops_the_server(server: runtime.ServerThread,
                                                   home: Path) -> None:
    DaemonController(server).quit()  # returns at once; the server winds down on its own
    deadline = time.monotonic() + 10
    while (home / "daemon.json").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not (home / "daemon.json").exists()
    assert server.stop(5) is True
