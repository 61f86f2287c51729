"""Issue 6, items 4, 6, 10, 11, 12 (memory), 13 (shutdown), 14: what needs a real `localgate
serve` process, files on disk or the CLI as a subprocess. Every subprocess is asyncio's, so the
scripted upstream in the test's loop keeps answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import auth
from tests.hardening_helpers import (BYOK, HELLO, OPENAI_KEY, peak_rss_mb, raw_request, read_rows,
                                     wire_at)
from tests.test_daemon import (STARTUP_TIMEOUT_S, Served, _launch, acli, daemon_env, free_port,
                               serve, write_config)
from tests.wire import Script, Wire


@pytest.fixture
async def wire(aiohttp_server: Any) -> Wire:
    return await wire_at(aiohttp_server)


async def get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def db_rows(home: Path) -> list[dict[str, Any]]:
    return await asyncio.to_thread(read_rows, home / "spend.db")


@contextlib.asynccontextmanager
async def serve_logging_to(logs: Path, env: dict[str, str]) -> Any:
    """tests/test_daemon.py's `serve`, with stderr kept in `logs` (not in a full home)."""
    port = free_port()
    proc, log, t0 = await _launch(logs, env, port)
    d = Served(proc, port, log)
    try:
        async with aiohttp.ClientSession() as http:
            while True:
                assert proc.returncode is None, f"serve exited:\n{d.stderr()}"
                assert time.monotonic() - t0 < STARTUP_TIMEOUT_S, d.stderr()
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with http.get(f"{d.url}/health",
                                        timeout=aiohttp.ClientTimeout(total=1)) as r:
                        if r.status == 200:
                            break
                await asyncio.sleep(0.02)
        yield d
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def no_traceback(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text, text


# ---- 4. one daemon per home ---------------------------------------------------------------------

async def test_4_a_second_daemon_on_the_same_home_says_where_the_first_is(
        home: Path, wire: Wire) -> None:
    write_config(home, wire.url, {"limits": {"daily_usd": 1.0}})
    env = daemon_env(OPENAI_API_KEY=OPENAI_KEY)
    # one request costs 100k completion tokens at gpt-5.2 prices: $1.40, over the $1 limit
    wire.script = Script(usage={"prompt_tokens": 10, "completion_tokens": 100_000},
                         chunks=16, chunk_delay=0.3)  # ~5 s: the second daemon exits first
    async with serve(home, env) as d1, aiohttp.ClientSession() as http:
        resp = await http.post(f"{d1.url}/v1/chat/completions", headers=auth(),
                               json={"model": BYOK, "messages": HELLO, "stream": True})
        assert resp.status == 200
        rid = resp.headers["x-request-id"]
        await asyncio.wait_for(resp.content.readline(), 3)
        state = (home / "daemon.json").read_bytes()
        port2 = free_port()
        proc, log, _ = await _launch(home, env, port2)
        try:
            code = await asyncio.wait_for(proc.wait(), 10)
        finally:
            if proc.returncode is None:  # it kept running (the bug): never leave it behind
                proc.kill()
                await proc.wait()
        err = log.read_text()
        assert code != 0
        assert "already running" in err and f"http://127.0.0.1:{d1.port}/v1" in err, err
        assert f"pid {d1.proc.pid}" in err, err
        no_traceback(err)
        assert not resp.content.at_eof(), "the stream ended before the check: inconclusive"
        # the first daemon's state is untouched: its state file, its live row, its port
        assert (home / "daemon.json").read_bytes() == state
        assert [r["status"] for r in await db_rows(home) if r["id"] == rid] == ["in_flight"]
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(f"http://127.0.0.1:{port2}/health")
        body = await asyncio.wait_for(resp.read(), 10)
        assert body.rstrip().endswith(b"data: [DONE]")
        # and its limit counters: the request above spent $1.40, so the next is refused
        async with http.post(f"{d1.url}/v1/chat/completions", headers=auth(),
                             json={"model": BYOK, "messages": HELLO}) as r:
            assert r.status == 402, await r.text()
            assert (await r.json())["error"]["spent_usd"] == pytest.approx(1.4, abs=0.01)
        code, out, _ = await acli("status", "--format", "json", env=env)
        assert json.loads(out)["pid"] == d1.proc.pid
    assert [r["status"] for r in await db_rows(home) if r["id"] == rid] == ["ok"]


# ---- 6. a full disk loses nothing without a word ------------------------------------------------

@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 400 KB tmpfs (needs root: CI runs as root; elsewhere the test skips unless CI is set)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    why = None
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("mount") is None:
        why = "mounting a small tmpfs needs root (CI runs as root)"
    else:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k,mode=0700", "tmpfs",
                               str(mnt)], capture_output=True, text=True)
        if done.returncode != 0:
            why = f"cannot mount a tmpfs here: {done.stderr.strip()}"
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path: Path) -> int:
    """Write `path` until the disk is full; returns the bytes written."""
    n = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    n += os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return n


async def wait_health(url: str, ok: bool, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        health = await get_json(f"{url}/health")
        log = health["spend_log"]
        if log["ok"] is ok and (log["unwritten"] == 0) is ok:
            return health
        assert time.monotonic() < deadline, health
        await asyncio.sleep(0.1)


async def test_6_full_disk_every_request_is_written_later_or_reported(
        tiny_disk: Path, tmp_path: Path, wire: Wire, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tiny_disk
    monkeypatch.setenv("LOCALGATE_HOME", str(home))
    write_config(home, wire.url)
    env = daemon_env(OPENAI_API_KEY=OPENAI_KEY)
    filler = home / "filler"
    body = {"model": BYOK, "messages": HELLO}
    async with serve_logging_to(tmp_path, env) as d, aiohttp.ClientSession() as http:
        async with http.post(f"{d.url}/v1/chat/completions", json=body, headers=auth()) as r:
            assert r.status == 200
        await wait_health(d.url, True)
        await asyncio.to_thread(fill, filler)

        async def one() -> str:
            async with http.post(f"{d.url}/v1/chat/completions", json=body,
                                 headers=auth()) as r:
                assert r.status == 200, await r.text()
                return r.headers["x-request-id"]

        ids: list[str] = []
        for _ in range(6):
            ids += await asyncio.gather(*(one() for _ in range(50)))
        health = await wait_health(d.url, False)
        print(f"\ndisk full after 300 requests: {health['spend_log']}")
        assert health["spend_log"]["unwritten"] > 0 and health["spend_log"]["error"]
        code, out, _ = await acli("status", env=env)
        assert code == 0 and "spend log" in out and "unwritten" in out, out
        status = json.loads((await acli("status", "--format", "json", env=env))[1])
        assert status["spend_log"]["ok"] is False, status
        filler.unlink()  # space again: every waiting row is written within a retry or two
        await wait_health(d.url, True)
        logged = {r["id"]: r["status"] for r in await db_rows(home)}
        assert all(logged.get(i) == "ok" for i in ids), [i for i in ids if i not in logged][:5]
        assert len(logged) == 301
        d.proc.send_signal(signal.SIGTERM)
        assert await d.exit_code(5) == 0, d.stderr()
    # the daemon restarts on a disk that is full again: no crash, and nothing is lost
    await asyncio.to_thread(fill, filler)
    async with serve_logging_to(tmp_path, env) as d2, aiohttp.ClientSession() as http:
        async with http.post(f"{d2.url}/v1/chat/completions", json=body,
                             headers=auth()) as r:
            assert r.status == 200
        health = await wait_health(d2.url, False)
        assert health["spend_log"]["unwritten"] == 1
        no_traceback(d2.stderr())
        assert "status` will not find this daemon" in d2.stderr()  # no room for daemon.json
        filler.unlink()
        await wait_health(d2.url, True)
    assert len(await db_rows(home)) == 302


# ---- 10. damaged files: set aside, or a clear message --------------------------------------------

@pytest.mark.parametrize("damage", ["garbage", "truncated"])
async def test_10_a_damaged_spend_db_is_set_aside_and_a_new_one_started(
        home: Path, wire: Wire, damage: str) -> None:
    write_config(home, wire.url)
    env = daemon_env(OPENAI_API_KEY=OPENAI_KEY)
    db = home / "spend.db"
    if damage == "garbage":
        db.write_bytes(b"this is not a database\n" * 400)
    else:  # a real log whose last pages were lost
        conn = sqlite3.connect(db)
        conn.execute("create table spend (id text primary key, pad text)")
        conn.executemany("insert into spend values (?, ?)",
                         [(f"r{i}", "x" * 300) for i in range(300)])
        conn.commit()
        conn.close()
        os.truncate(db, db.stat().st_size - 8192)
    before = db.read_bytes()
    readers = ("log", "spend", "status", "limits")  # readers say so, and change nothing
    for reader, (_, out, err) in zip(readers, await asyncio.gather(
            *(acli(reader, env=env) for reader in readers)), strict=True):
        no_traceback(out + err)
        assert "cannot be read" in out + err, (reader, out, err)
    assert db.read_bytes() == before
    async with serve(home, env) as d, aiohttp.ClientSession() as http:
        health = await get_json(f"{d.url}/health")
        aside = Path(health["spend_log"]["set_aside"])
        assert aside.parent == home and aside.name.startswith("spend.db.damaged-")
        assert aside.read_bytes() == before  # renamed, nothing deleted
        assert "set aside" in d.stderr() and str(aside) in d.stderr()
        no_traceback(d.stderr())
        async with http.post(f"{d.url}/v1/chat/completions", headers=auth(),
                             json={"model": BYOK, "messages": HELLO}) as r:
            assert r.status == 200
            rid = r.headers["x-request-id"]
        code, out, _ = await acli("status", env=env)
        assert "set aside as" in out and str(aside) in out, out
        deadline = time.monotonic() + 3
        while not any(r["id"] == rid and r["status"] == "ok" for r in await db_rows(home)):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)


BAD_CONFIGS = {
    "binary": b"\x00\x01\x02\xff\xfe binary \x00",
    "invalid UTF-8": b'[routing]\ndefault_model = "caf\xe9"\n',
    "directory": None,
}


@pytest.mark.parametrize("what", list(BAD_CONFIGS))
async def test_10_an_unreadable_config_is_a_clear_message_never_a_traceback(
        home: Path, what: str) -> None:
    cfg = home / "config.toml"
    if BAD_CONFIGS[what] is None:
        cfg.mkdir()
    else:
        cfg.write_bytes(BAD_CONFIGS[what])
    code, out, err = await acli("serve", "--port", str(free_port()))
    assert code == 2, (code, err)
    assert str(cfg) in err and "config" in err, err
    no_traceback(out + err)
    commands = (["status"], ["log"], ["config", "show"], ["default", "openai/gpt-5.2"],
                ["limits", "--daily-usd", "3"])
    for args, (code, out, err) in zip(commands, await asyncio.gather(
            *(acli(*args) for args in commands)), strict=True):
        no_traceback(out + err)
        assert code in (0, 1, 2, 3), (args, code, err)
        if args[0] != "log":  # it never reads the config
            assert str(cfg) in out + err, (args, out, err)


@pytest.mark.parametrize("line", ["[server]\nmax_body_mb = inf", "[limits]\ndaily_usd = nan",
                                  "[limits]\ndaily_usd = inf", "[limits]\nmonthly_usd = -inf",
                                  "[clients.ci]\ndaily_usd = nan",
                                  "[upstream]\nfirst_byte_timeout_s = inf"])
async def test_10_non_finite_numbers_are_a_config_error_naming_the_key(home: Path,
                                                                       line: str) -> None:
    (home / "config.toml").write_text(line + "\n")
    code, out, err = await acli("serve", "--port", str(free_port()))
    section, key = line[1:].split("]\n")[0], line.split("\n")[1].split(" = ")[0]
    assert code == 2, err
    assert f"{section}.{key}" in err, err
    no_traceback(err)


# ---- 11. config writes never lose each other -----------------------------------------------------

MODELS = ["openai/gpt-5.2", "anthropic/claude-sonnet-4.6", "mistralai/codestral-2508",
          "z-ai/glm-5:free"]


async def test_11_parallel_default_and_limits_never_lose_a_write(tmp_path: Path) -> None:
    async def rounds(n: int, home: Path) -> None:
        home.mkdir()
        (home / "config.toml").write_text('[catalog]\nrefresh = false\n# kept\n[future]\nx = 1\n')
        env = daemon_env("LOCALGATE_API_KEY", LOCALGATE_HOME=str(home))
        for i in range(n):
            model, usd = MODELS[i % len(MODELS)], 7 + i
            done = await asyncio.gather(acli("default", model, env=env),
                                        acli("limits", "--daily-usd", str(usd), env=env))
            for code, out, err in done:
                assert code == 0 and err == "", (code, out, err)
            doc = tomllib.loads((home / "config.toml").read_text())
            assert doc["routing"]["default_model"] == model, (i, doc)
            assert doc["limits"]["daily_usd"] == usd, (i, doc)
            assert doc["future"] == {"x": 1} and doc["catalog"] == {"refresh": False}
        assert [p.name for p in home.iterdir() if p.name.endswith(".tmp")] == []

    # 40 rounds in all, on 4 homes at once (the race is within one home)
    await asyncio.gather(*(rounds(10, tmp_path / f"h{k}") for k in range(4)))


# ---- 12. bounded memory --------------------------------------------------------------------------

async def test_12_a_200_mb_upstream_body_is_a_502_and_memory_stays_bounded(
        home: Path, wire: Wire) -> None:
    write_config(home, wire.url, {"routing": {"fallback_to_gateway": False}})
    async with serve(home, daemon_env(OPENAI_API_KEY=OPENAI_KEY)) as d, \
            aiohttp.ClientSession() as http:
        async def ask(status: int) -> None:
            async with http.post(f"{d.url}/v1/chat/completions", headers=auth(),
                                 json={"model": BYOK, "messages": HELLO}) as r:
                body = await r.json()
                assert r.status == status, body
                assert status != 502 or body["error"]["code"] == "upstream_error", body

        await ask(200)  # warm up: the first request builds what every request uses
        before = peak_rss_mb(d.proc.pid)
        for announced in (True, False):
            wire.script = Script(body_bytes=200 * 2**20, content_length=announced)
            await ask(502)
        grew = peak_rss_mb(d.proc.pid) - before
        print(f"\npeak RSS {before:.0f} MB -> +{grew:.0f} MB after two 200 MB upstream bodies")
        assert grew < 120, grew  # bounded by the 32 MB cap, not the 200 MB body


# ---- 13. shutdown ends what is in flight at once, and says so ----------------------------------

async def test_13_sigterm_ends_streams_and_waiting_calls_at_once_rows_interrupted(
        home: Path, wire: Wire, aiohttp_server: Any) -> None:
    waiting = await wire_at(aiohttp_server)  # a second upstream that never sends headers
    waiting.script = Script(hang=True)
    wire.script = Script(chunks=50, chunk_delay=0.2)
    write_config(home, wire.url, {"routing": {"fallback_to_gateway": False},
                                  "providers": {"mistral": {"base_url": f"{waiting.url}/v1"}}})
    env = daemon_env(OPENAI_API_KEY=OPENAI_KEY, MISTRAL_API_KEY="mistral-k")
    async with serve(home, env) as d, aiohttp.ClientSession() as http:
        stream = await http.post(f"{d.url}/v1/chat/completions", headers=auth(),
                                 json={"model": BYOK, "messages": HELLO, "stream": True})
        assert stream.status == 200
        seen = 0
        while seen < 3:  # the opening chunk and two content chunks
            line = await asyncio.wait_for(stream.content.readline(), 3)
            assert line, "the stream ended early"
            seen += line.startswith(b"data:")

        async def wait_for_headers() -> tuple[int, Any, float]:
            async with http.post(f"{d.url}/v1/chat/completions", headers=auth(),
                                 json={"model": "mistral/mistral-small-latest",
                                       "messages": HELLO}) as r:
                return r.status, await r.json(), time.monotonic()

        sid = stream.headers["x-request-id"]
        held = asyncio.create_task(wait_for_headers())
        while not waiting.seen:
            await asyncio.sleep(0.01)
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(stream.content.read(), 5)
        stream_s = time.monotonic() - t0
        status, body, answered = await asyncio.wait_for(held, 5)
        code = await d.exit_code(5)
        print(f"\nSIGTERM: stream ended in {stream_s * 1000:.0f} ms, the waiting call answered "
              f"in {(answered - t0) * 1000:.0f} ms, exit after {(time.monotonic() - t0):.2f} s")
    assert code == 0, d.stderr()
    evs = [e[5:].strip() for e in rest.decode().split("\n") if e.startswith("data:")]
    assert evs[-1] == "[DONE]" and "error" in json.loads(evs[-2]), evs[-3:]
    assert len(evs) < 20  # cut short: the whole answer is 50 chunks
    assert stream_s < 2.0 and answered - t0 < 2.0
    assert status == 503 and body["error"]["message"], body
    got = {r["id"]: r["status"] for r in await db_rows(home)}
    assert got.pop(sid) == "interrupted", got
    # the call that was waiting for headers: final, never ok (its status: see test_hardening.py
    # test_13_a_call_waiting_for_headers_at_shutdown_is_logged_interrupted)
    assert list(got.values()) in (["interrupted"], ["error"]), got
    no_traceback(d.stderr())


# ---- 14. the user's files are the user's only; a malformed request is one line ------------------

async def test_14_files_under_the_home_are_0600_in_a_0700_folder(tmp_path: Path,
                                                                 wire: Wire) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    write_config(home, wire.url, {"catalog": {"refresh": True}})
    (home / "config.toml").chmod(0o644)
    wire.models = [{"id": "newlab/model-1", "name": "New", "pricing": {"prompt": "0.000001",
                                                                      "completion": "0.000002"}}]
    logs = tmp_path / "logs"
    logs.mkdir()
    env = daemon_env("LOCALGATE_API_KEY", LOCALGATE_HOME=str(home), OPENAI_API_KEY=OPENAI_KEY)
    code, out, _ = await acli("token", "show", env=env)
    key = out.strip()
    assert code == 0 and key
    assert (await acli("token", "create", "ci", env=env))[0] == 0
    async with serve_logging_to(logs, env) as d, aiohttp.ClientSession() as http:
        assert (await acli("default", BYOK, env=env))[0] == 0  # rewrites config.toml
        async with http.post(f"{d.url}/v1/chat/completions", headers=auth(key),
                             json={"model": BYOK, "messages": HELLO}) as r:
            assert r.status == 200
        deadline = time.monotonic() + 5
        while not (home / "catalog-cache.json").exists():  # the refresher's first run: ~1 s
            assert time.monotonic() < deadline, "the catalog was never refreshed"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)
        files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in home.iterdir()}
    # (the local key and the clients live in the keychain: the tests' keyring backend)
    for name in ("spend.db", "spend.db-wal", "config.toml", "daemon.json",
                 "catalog-cache.json", "daemon.lock", "keys.changed"):
        assert name in files, (name, sorted(files))
    assert {n: oct(m) for n, m in files.items() if m & 0o077} == {}
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


async def test_14_a_malformed_request_logs_one_line_not_a_traceback(home: Path,
                                                                   wire: Wire) -> None:
    write_config(home, wire.url)
    bad = [b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header Line",
           b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Ok: \x00\x01",
           b"GARBAGE\r\nHost: 127.0.0.1",
           b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: zz"]
    async with serve(home) as d:
        for head in bad:
            status, _, _ = await raw_request(d.port, head)
            assert status == 400
        async with aiohttp.ClientSession() as http, http.get(f"{d.url}/health") as r:
            assert r.status == 200  # still serving
        await asyncio.sleep(0.2)
        err = d.stderr()
    no_traceback(err)
    lines = [line for line in err.splitlines() if "listening on" not in line]
    assert len(lines) <= len(bad), err
    assert all("malformed HTTP request from 127.0.0.1" in line for line in lines), err
    assert "Bad Header Line" not in err  # the offending bytes are not logged (they may hold a key)


async def test_6_a_full_backlog_refuses_new_requests_until_the_disk_is_back(
        tiny_disk: Path, wire: Wire, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the rows waiting for a full disk reach their bound, new requests get 503
    spend_log_unavailable (spend is never blind), and are served again once the rows are
    written. The bound is lowered from 10,000 so that the test reaches it in a few requests
    (a module constant; no fake would do)."""
    from localgate.ledger import writer
    monkeypatch.setattr(writer, "MAX_PENDING", 8)
    monkeypatch.setenv("LOCALGATE_HOME", str(tiny_disk))
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    write_config(tiny_disk, wire.url)
    from localgate import config, runtime
    running = await runtime.start(await asyncio.to_thread(config.load), "127.0.0.1", 0)
    url = f"http://127.0.0.1:{running.port}"
    body = {"model": BYOK, "messages": HELLO}
    filler = tiny_disk / "filler"
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(running.stop)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        async def post() -> aiohttp.ClientResponse:
            async with http.post(f"{url}/v1/chat/completions", json=body,
                                 headers=auth()) as r:
                await r.read()
                return r
        assert (await post()).status == 200
        await wait_health(url, True)
        await asyncio.to_thread(fill, filler)
        statuses = [(await post()).status for _ in range(20)]
        served = statuses.count(200)
        # the bound counts rows (a request's first and final row count once held, twice queued)
        assert 1 <= served <= 8 and set(statuses) == {200, 503}, statuses
        async with http.post(f"{url}/v1/chat/completions", json=body,
                             headers=auth()) as r:
            err = (await r.json())["error"]
        assert r.status == 503 and err["code"] == "spend_log_unavailable", err
        assert "disk" in err["message"]
        health = await wait_health(url, False)
        assert 0 < health["spend_log"]["unwritten"] <= 8
        await asyncio.to_thread(filler.unlink)
        await wait_health(url, True)
        assert (await post()).status == 200
    rows = await asyncio.to_thread(read_rows, tiny_disk / "spend.db")
    assert len(rows) == 1 + served + 1 and all(r["status"] == "ok" for r in rows), rows
