"""Pause/resume, the dashboard's login, pages and JSON (SPEC sections 1, 3 and 7), over HTTP
against a daemon started as `serve` starts it, and the CLI as a subprocess.

Sessions are carried by hand in a `Cookie` header (aiohttp's cookie jar ignores cookies from
IP hosts), which also lets a test send exactly the Origin a browser would.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import stat
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from localgate.dashboard import sessions
from tests.conftest import LOCAL_KEY, Daemon, StartDaemon, auth
from tests.fakes import FakeUpstream
from tests.http import HELLO, Reply, call, chat
from tests.test_daemon import acli, daemon_env, serve, write_config
from tests.test_spend import db_rows, settled

OPENAI_KEY = "sk-test-openai-dashboard-3141"
KILO_KEY = "kilo-test-key-dashboard-2718"
BYOK = "openai/gpt-5.2"
SONNET = "anthropic/claude-sonnet-4.6"
FREE = "z-ai/glm-5:free"
CSRF_ORIGINS = ["http://evil.example", "http://127.0.0.1:1", "null"]


# ---- helpers (also used by the browser test) ----------------------------------------------------

async def login_url(target: Daemon | str) -> str:
    r = await call(target, "POST", "/localgate/login-link", body={}, headers=auth())
    assert r.status == 200, r.raw
    assert r.json["expires_in_s"] == 120
    return str(r.json["url"])


async def open_link(target: Daemon | str, link: str,
                    headers: dict[str, str] | None = None) -> Reply:
    """GET a login link as a browser's first request does, without following the redirect."""
    base = target if isinstance(target, str) else target.url
    async with aiohttp.ClientSession() as s, s.get(
            base + link[link.index("/localgate/"):], headers=headers or {},
            allow_redirects=False) as resp:
        return Reply(resp.status, resp.headers, await resp.read())


async def session_cookie(d: Daemon) -> dict[str, str]:
    """A dashboard session: redeem a fresh login link; the Cookie header that carries it."""
    r = await open_link(d, await login_url(d))
    assert r.status == 303, r.raw
    name, _, rest = r.headers["Set-Cookie"].partition("=")
    return {"Cookie": f"{name}={rest.split(';', 1)[0]}"}


def same_origin(d: Daemon) -> dict[str, str]:
    return {"Origin": d.url}


async def populate(d: Daemon) -> list[dict[str, Any]]:
    """Three models on three routes from two clients; one row moved three days back. Returns
    spend.db's rows, oldest first."""
    for body, key in (({"model": BYOK, "messages": HELLO}, LOCAL_KEY),
                      ({"model": BYOK, "messages": HELLO, "stream": True}, LOCAL_KEY),
                      ({"model": SONNET, "messages": HELLO}, LOCAL_KEY),
                      ({"model": FREE, "messages": HELLO}, None)):
        r = await chat(d, body, headers=auth(key) if key else {})
        assert r.status == 200, r.raw
    rows = await settled(d.home, 4, d)
    await asyncio.to_thread(move_back, d.home / "spend.db", rows[0]["id"], 3)
    return await db_rows(d.home)


def move_back(db: Path, rid: str, days: int) -> None:
    import sqlite3
    from datetime import UTC, datetime, timedelta
    conn = sqlite3.connect(db, timeout=10)
    try:
        ts = (datetime.now(UTC) - timedelta(days=days)).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z")
        conn.execute("update spend set ts = ? where id = ?", (ts, rid))
        conn.commit()
    finally:
        conn.close()


async def byok_daemon(start_daemon: StartDaemon, extra: dict[str, Any] | None = None) -> Daemon:
    return await start_daemon(extra, OPENAI_API_KEY=OPENAI_KEY, KILO_API_KEY=KILO_KEY)


def config_doc(home: Path) -> dict[str, Any]:
    with (home / "config.toml").open("rb") as f:
        return tomllib.load(f)


# ---- pause / resume ------------------------------------------------------------------------------

async def test_pause_refuses_proxied_requests_and_resume_serves_again(
        start_daemon: StartDaemon, fake: FakeUpstream) -> None:
    d = await byok_daemon(start_daemon)
    r = await call(d, "POST", "/localgate/pause", body={}, headers=auth())
    assert r.status == 200 and r.json == {"paused": True}
    health = await call(d, "GET", "/health")
    assert health.json["paused"] is True
    n = len(fake.seen)
    for body in ({"model": BYOK, "messages": HELLO}, {"model": FREE, "messages": HELLO},
                 {"model": BYOK, "messages": HELLO, "stream": True}):
        err = (await chat(d, body)).error(503, "paused")
        assert "paused" in err["message"] and "localgate resume" in err["message"]
    fim = await call(d, "POST", "/v1/fim/completions", headers=auth(),
                     body={"model": "mistral/codestral-2508", "prompt": "def f("})
    fim.error(503, "paused")
    assert len(fake.seen) == n, "a paused daemon sent a request upstream"
    assert (await call(d, "GET", "/v1/models")).status == 200  # the catalog still answers
    r = await call(d, "POST", "/localgate/resume", body={}, headers=auth())
    assert r.status == 200 and r.json == {"paused": False}
    assert (await call(d, "GET", "/health")).json["paused"] is False
    assert (await chat(d, {"model": BYOK, "messages": HELLO})).status == 200


async def test_cli_pause_resume_status_against_a_running_daemon(home: Path,
                                                                fake: FakeUpstream) -> None:
    write_config(home, fake.url)
    code, out, err = await acli("pause")
    assert code == 3, (out, err)
    assert "no daemon is running" in err and "localgate serve" in err
    async with serve(home, daemon_env(OPENAI_API_KEY=OPENAI_KEY)) as d:
        code, out, err = await acli("pause")
        assert code == 0, err
        assert "paused" in out
        r = await chat(d.url, {"model": BYOK, "messages": HELLO})
        r.error(503, "paused")
        code, out, _ = await acli("status")
        assert code == 0 and "paused" in out.splitlines()[0], out
        code, out, _ = await acli("status", "--format", "json")
        assert json.loads(out)["paused"] is True
        code, out, err = await acli("resume")
        assert code == 0 and "resumed" in out, err
        code, out, _ = await acli("status", "--format", "json")
        assert json.loads(out)["paused"] is False
        code, out, _ = await acli("status")
        assert "paused" not in out
        assert (await chat(d.url, {"model": BYOK, "messages": HELLO})).status == 200
        # a daemon that refuses the key: said plainly, exit 1
        code, out, err = await acli("pause", env=daemon_env(LOCALGATE_API_KEY="not-the-key"))
        assert code == 1 and "refused" in err and "localgate token show" in err, err
        assert "not-the-key" not in out + err


# ---- who may call what ---------------------------------------------------------------------------

ENDPOINTS = [("GET", "/localgate/spend", None), ("GET", "/localgate/log", None),
             ("GET", "/localgate/overview", None), ("POST", "/localgate/pause", {}),
             ("POST", "/localgate/resume", {}),
             ("POST", "/localgate/default", {"model": "kilo-auto/frontier"}),
             ("POST", "/localgate/limits", {"daily_usd": 9.5})]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=lambda v: str(v))
async def test_endpoint_auth(start_daemon: StartDaemon, method: str, path: str,
                             body: Any) -> None:
    d = await start_daemon()
    (await call(d, method, path, body=body)).error(401, "authentication_required")
    (await call(d, method, path, body=body, headers=auth("anonymous"))).error(401)
    err = (await call(d, method, path, body=body, headers=auth("lg-wrong-key"))).error(401)
    assert "lg-wrong-key" not in err["message"]
    r = await call(d, method, path, body=body, headers=auth())
    assert r.status == 200, r.raw
    cookie = await session_cookie(d)
    headers = {**cookie, **(same_origin(d) if method == "POST" else {})}
    r = await call(d, method, path, body=body, headers=headers)
    assert r.status == 200, r.raw
    # a wrong key is refused even beside a valid session: never downgraded
    (await call(d, method, path, body=body, headers={**headers, **auth("lg-wrong")})).error(401)


async def test_login_link_needs_the_local_key(start_daemon: StartDaemon) -> None:
    d = await start_daemon()
    (await call(d, "POST", "/localgate/login-link", body={})).error(401)
    (await call(d, "POST", "/localgate/login-link", body={}, headers=auth("nope"))).error(401)
    cookie = await session_cookie(d)
    (await call(d, "POST", "/localgate/login-link", body={},
                headers={**cookie, **same_origin(d)})).error(401)
    url = await login_url(d)
    assert url.startswith(f"{d.url}/localgate/login?token=")
    assert url != await login_url(d), "two links must differ"


async def test_login_sets_a_strict_httponly_cookie_once(start_daemon: StartDaemon) -> None:
    d = await start_daemon()
    url = await login_url(d)
    head = await call(d, "HEAD", url[url.index("/localgate/"):])
    assert head.status == 405, "a HEAD request must not use up the link"
    r = await open_link(d, url)
    assert r.status == 303 and r.headers["Location"] == "/"
    cookie = r.headers["Set-Cookie"]
    attrs = {a.strip().split("=")[0].lower(): a.strip() for a in cookie.split(";")[1:]}
    assert cookie.startswith(f"{sessions.COOKIE}=")
    assert "httponly" in attrs and attrs["samesite"].lower() == "samesite=strict"
    assert attrs["path"] == "Path=/"
    assert "secure" not in attrs  # plain http on loopback: a Secure cookie would be dropped
    assert r.headers["Referrer-Policy"] == "no-referrer"
    sid = cookie.split(";", 1)[0]
    page = await call(d, "GET", "/", headers={"Cookie": sid})
    assert page.status == 200 and b'src="/localgate/static/app.js"' in page.raw
    assert page.headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    again = await open_link(d, url)
    assert again.status == 403 and "Set-Cookie" not in again.headers
    assert b"already been used or has expired" in again.raw
    assert b"localgate dashboard" in again.raw
    for bad in ("", "?token=", "?token=forged-token"):
        r = await open_link(d, f"/localgate/login{bad}")
        assert r.status == 403 and b"localgate dashboard" in r.raw
    who = await call(d, "GET", "/localgate/session", headers={"Cookie": sid})
    assert who.json == {"session": True}
    assert (await call(d, "GET", "/localgate/session")).json == {"session": False}


async def test_expired_login_link_and_session(start_daemon: StartDaemon,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    d = await start_daemon()
    monkeypatch.setattr(sessions, "LOGIN_TTL_S", 0.05)
    url = await login_url(d)
    await asyncio.sleep(0.1)
    r = await open_link(d, url)
    assert r.status == 403 and b"expired" in r.raw and "Set-Cookie" not in r.headers
    monkeypatch.setattr(sessions, "LOGIN_TTL_S", 120.0)
    monkeypatch.setattr(sessions, "SESSION_TTL_S", 0.05)
    cookie = await session_cookie(d)
    await asyncio.sleep(0.1)
    (await call(d, "GET", "/localgate/log", headers=cookie)).error(401)
    page = await call(d, "GET", "/", headers=cookie)
    assert page.status == 401 and b"localgate dashboard" in page.raw


async def test_without_a_session_the_page_says_how_to_open_it(start_daemon: StartDaemon,
                                                              fake: FakeUpstream) -> None:
    d = await byok_daemon(start_daemon)
    rows = await populate(d)
    for headers in ({}, {"Cookie": f"{sessions.COOKIE}=forged"}, auth()):
        r = await call(d, "GET", "/", headers=headers)
        assert r.status == 401 and r.headers["Content-Type"].startswith("text/html")
        text = r.raw.decode()
        assert "localgate dashboard" in text and "Open dashboard" in text
        assert "app.js" not in text and "default-src 'self'" in r.headers[
            "Content-Security-Policy"]
        for row in rows:  # never the data
            assert row["id"] not in text and row["resolved_model"] not in text


async def test_session_calls_from_another_origin_are_refused(start_daemon: StartDaemon) -> None:
    d = await start_daemon()
    cookie = await session_cookie(d)
    for origin in CSRF_ORIGINS:
        r = await call(d, "POST", "/localgate/pause", body={},
                       headers={**cookie, "Origin": origin})
        r.error(403)
        r = await call(d, "GET", "/localgate/log", headers={**cookie, "Origin": origin})
        r.error(403)
    (await call(d, "POST", "/localgate/pause", body={}, headers=cookie)).error(
        403, "origin_not_allowed")  # no Origin on a POST: not from the dashboard page
    (await call(d, "POST", "/localgate/pause", body={},
                headers={**cookie, **same_origin(d), "Sec-Fetch-Site": "same-site"})).error(403)
    # a form or no-cors post cannot carry JSON: refused before any handler
    r = await call(d, "POST", "/localgate/pause", data="{}",
                   headers={**cookie, **same_origin(d), "Content-Type": "text/plain"})
    r.error(415)
    assert (await call(d, "GET", "/health")).json["paused"] is False
    r = await call(d, "POST", "/localgate/pause", body={}, headers={**cookie, **same_origin(d)})
    assert r.status == 200
    assert (await call(d, "GET", "/health")).json["paused"] is True


async def test_static_files(start_daemon: StartDaemon) -> None:
    d = await start_daemon()
    for name, ctype in (("app.js", "text/javascript"), ("app.css", "text/css"),
                        ("gate.js", "text/javascript"), ("icon.svg", "image/svg+xml")):
        r = await call(d, "GET", f"/localgate/static/{name}")
        assert r.status == 200 and r.headers["Content-Type"].startswith(ctype), name
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    for bad in ("index.html", "nope.js", "..%2Fapi.py", "%2E%2E%2Fsessions.py"):
        r = await call(d, "GET", f"/localgate/static/{bad}")
        assert r.status == 404, bad
    js = (await call(d, "GET", "/localgate/static/app.js")).raw.decode()
    assert "http://" not in js.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in js


# ---- the JSON: identical to the CLI's ------------------------------------------------------------

async def test_spend_and_log_json_are_the_clis(start_daemon: StartDaemon,
                                               fake: FakeUpstream) -> None:
    d = await byok_daemon(start_daemon)
    rows = await populate(d)
    newest = rows[-1]["ts"]
    day = newest[:10]
    windows = [["--since", day], ["--until", newest], ["--since", "today"],
               ["--since", "2020-01-01T00:00:00Z", "--until", "2099-01-01"]]
    spend_calls = [[], *(["--by", by] for by in ("model", "provider", "day", "client", "route")),
                   *(w + b for w in windows for b in ([], ["--by", "model"]))]
    log_calls = [[], ["--limit", "2"], ["--limit", "0"], *windows]
    gate = asyncio.Semaphore(3)  # a CLI start costs ~0.3 s of CPU; the machine has 2 cores

    def query(args: list[str]) -> str:
        pairs = [f"{args[i][2:]}={args[i + 1]}" for i in range(0, len(args), 2)]
        return "?" + "&".join(pairs) if pairs else ""

    async def compare(cmd: str, args: list[str]) -> Any:
        async with gate:
            code, out, err = await acli(cmd, *args, "--format", "json")
        assert code == 0, (args, err)
        r = await call(d, "GET", f"/localgate/{cmd}{query(args)}", headers=auth())
        assert r.status == 200, (args, r.raw)
        assert r.json == json.loads(out), (cmd, args)
        return r.json

    docs = await asyncio.gather(*(compare("spend", a) for a in spend_calls))
    logs = await asyncio.gather(*(compare("log", a) for a in log_calls))
    assert docs[0]["total"]["requests"] == 4
    assert [r["id"] for r in logs[0]] == [r["id"] for r in reversed(rows)]
    assert len(logs[1]) == 2 and logs[2] == []
    assert any(len(doc["rows"]) >= 2 for doc in docs)  # the comparison saw real breakdowns


@pytest.mark.parametrize(("cmd", "query", "param"), [
    ("spend", "by=colour", "by"), ("spend", "since=last%20tuesday", "since"),
    ("spend", "until=soon", "until"), ("log", "limit=-1", "limit"), ("log", "limit=ten", "limit"),
    ("log", "since=yesterday-ish", "since")])
async def test_bad_review_parameters(start_daemon: StartDaemon, cmd: str, query: str,
                                     param: str) -> None:
    d = await start_daemon()
    err = (await call(d, "GET", f"/localgate/{cmd}?{query}", headers=auth())).error(
        400, "invalid_request", param=param)
    assert param in err["message"]
    key, _, value = query.partition("=")
    if value != "ten":  # argparse refuses a non-number itself
        code, _, out = await acli(cmd, f"--{key}", value.replace("%20", " "))
        assert code == 2, out


async def test_overview_holds_the_logged_data(start_daemon: StartDaemon,
                                              fake: FakeUpstream) -> None:
    from localgate import review
    d = await byok_daemon(start_daemon, {"limits": {"daily_usd": 4.5}})
    rows = await populate(d)
    ov = (await call(d, "GET", "/localgate/overview", headers=auth())).json
    assert ov["paused"] is False and ov["default_model"] == "kilo-auto/balanced"
    assert ov["limits"] == {"daily_usd": 4.5, "monthly_usd": None}
    assert len(ov["days"]) == 30 and ov["days"][-1] == review.local_days(1)[0][0]
    want = expected_daily(rows)
    got = {(day, s["model"]): v for s in ov["daily"]
           for day, v in zip(ov["days"], s["cost_microdollars"], strict=True) if v}
    assert got == want and len({day for day, _ in want}) == 2
    today = sum(r["cost_microdollars"] for r in rows if local_day(r["ts"]) == ov["days"][-1])
    assert ov["spent"]["today_microdollars"] == today > 0
    assert ov["ttft"] == expected_ttft(rows)
    assert ov["models"]["auto"][:3] == ["kilo-auto/frontier", "kilo-auto/balanced",
                                        "kilo-auto/free"]
    assert SONNET in ov["models"]["popular"]
    assert BYOK in ov["models"]["recent"] or BYOK in ov["models"]["popular"]
    assert FREE in ov["models"]["recent"]
    for days in ("0", "367", "x"):
        (await call(d, "GET", f"/localgate/overview?days={days}", headers=auth())).error(
            400, param="days")
    assert len((await call(d, "GET", "/localgate/overview?days=7", headers=auth())).json[
        "days"]) == 7


def local_day(ts: str) -> str:
    from datetime import datetime
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d")


def expected_daily(rows: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """(local day, model) -> microdollars, from spend.db's rows (only what cost something)."""
    out: dict[tuple[str, str], int] = {}
    for r in rows:
        if r["cost_microdollars"]:
            k = (local_day(r["ts"]), r["resolved_model"] or r["model"])
            out[k] = out.get(k, 0) + r["cost_microdollars"]
    return out


def expected_ttft(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nearest-rank p50/p95 of ttft_ms per model over the rows that ended ok."""
    by: dict[str, list[int]] = {}
    for r in rows:
        if r["status"] == "ok" and r["ttft_ms"] is not None:
            by.setdefault(r["resolved_model"] or r["model"], []).append(r["ttft_ms"])
    out = []
    for model, v in by.items():
        v.sort()
        out.append({"model": model, "requests": len(v),
                    "p50_ms": v[math.ceil(0.5 * len(v)) - 1],
                    "p95_ms": v[math.ceil(0.95 * len(v)) - 1]})
    return sorted(out, key=lambda x: (-x["requests"], x["model"]))


# ---- the tray's controls, over HTTP --------------------------------------------------------------

async def test_default_model_is_checked_saved_and_used_at_once(start_daemon: StartDaemon,
                                                               fake: FakeUpstream) -> None:
    d = await byok_daemon(start_daemon)
    r = await call(d, "POST", "/localgate/default", body={"model": f"  {BYOK} "}, headers=auth())
    assert r.status == 200 and r.json == {"default_model": BYOK}
    assert config_doc(d.home)["routing"]["default_model"] == BYOK
    assert (await call(d, "GET", "/health")).json["default_model"] == BYOK
    r = await chat(d, {"messages": HELLO})
    assert r.status == 200 and r.headers["x-localgate-model"] == BYOK
    refused = [("localgate/default", 400), ("nosuchprovider/model-x", 404), ("", 400),
               (" ", 400)]
    for model, status in refused:
        r = await call(d, "POST", "/localgate/default", body={"model": model}, headers=auth())
        r.error(status, param="model")
        code, _, err = await acli("default", model)  # the CLI refuses the same ids
        assert code == 2, (model, err)
    for body in ({"model": 42}, {}, [BYOK]):
        (await call(d, "POST", "/localgate/default", body=body, headers=auth())).error(400)
    (await call(d, "POST", "/localgate/default", data="{nope", headers={
        **auth(), "Content-Type": "application/json"})).error(400)
    assert config_doc(d.home)["routing"]["default_model"] == BYOK


async def test_limits_are_saved_and_enforced_at_once(start_daemon: StartDaemon,
                                                     fake: FakeUpstream) -> None:
    d = await byok_daemon(start_daemon, {"limits": {"monthly_usd": 50.0}})
    r = await call(d, "POST", "/localgate/limits", body={"daily_usd": 0}, headers=auth())
    assert r.status == 200 and r.json == {"daily_usd": 0.0, "monthly_usd": 50.0}
    assert config_doc(d.home)["limits"] == {"daily_usd": 0, "monthly_usd": 50.0}
    (await chat(d, {"model": BYOK, "messages": HELLO})).error(402, "usage_limit_exceeded")
    r = await call(d, "POST", "/localgate/limits", body={"daily_usd": None, "monthly_usd": 12.5},
                   headers=auth())
    assert r.json == {"daily_usd": None, "monthly_usd": 12.5}
    assert config_doc(d.home)["limits"] == {"monthly_usd": 12.5}
    assert (await chat(d, {"model": BYOK, "messages": HELLO})).status == 200
    for body in ({"daily_usd": -1}, {"daily_usd": "5"}, {"monthly_usd": True},
                 {"daily_usd": 1e10}, {}, {"weekly_usd": 3}):
        (await call(d, "POST", "/localgate/limits", body=body, headers=auth())).error(400)
    code, out, _ = await acli("limits", "--format", "json")
    assert code == 0 and json.loads(out)["monthly_usd"] == 12.5 and json.loads(out)["daily_usd"] is None


# ---- `localgate dashboard` -----------------------------------------------------------------------

async def test_dashboard_command_prints_or_opens_a_one_time_link(home: Path, fake: FakeUpstream,
                                                                 tmp_path: Path) -> None:
    write_config(home, fake.url)
    code, _, err = await acli("dashboard", "--print")
    assert code == 3 and "no daemon is running" in err
    seen = tmp_path / "browser-argv.json"
    browser = tmp_path / "fake-browser"
    browser.write_text(f"#!{sys.executable}\nimport json, sys\n"
                       f"open({str(seen)!r}, 'w').write(json.dumps(sys.argv[1:]))\n")
    browser.chmod(0o700)
    async with serve(home) as d:
        code, out, err = await acli("dashboard", "--print")
        assert code == 0, err
        link = out.strip()
        assert link.startswith(f"{d.url}/localgate/login?token=")
        assert (await open_link(d.url, link)).status == 303
        assert (await open_link(d.url, link)).status == 403
        env = daemon_env(BROWSER=str(browser), DISPLAY="")
        code, out, err = await acli("dashboard", env=env)
        assert code == 0, err
        assert "opened" in out and "token=" not in out + err
    argv = json.loads(seen.read_text())
    assert len(argv) == 1 and argv[0].startswith("file://") and "token" not in argv[0]
    page = Path(urlsplit(argv[0]).path)
    assert stat.S_IMODE(page.stat().st_mode) == 0o600 or os.name != "posix"
    assert "/localgate/login?token=" in page.read_text()


async def test_recent_models_feed_the_picker(start_daemon: StartDaemon,
                                             fake: FakeUpstream) -> None:
    d = await byok_daemon(start_daemon)
    for model in ("openai/gpt-4.1-mini", "openai/gpt-5.2", "openai/gpt-4.1-mini"):
        assert (await chat(d, {"model": model, "messages": HELLO})).status == 200
    await settled(d.home, 3, d)
    ov = (await call(d, "GET", "/localgate/overview", headers=auth())).json
    recent = ov["models"]["recent"]
    listed = set(ov["models"]["auto"]) | set(ov["models"]["popular"])
    assert not set(recent) & listed, "a model is offered twice"
    if "openai/gpt-4.1-mini" not in listed:
        assert recent[0] == "openai/gpt-4.1-mini"
