"""The dashboard as a person sees it: Debian's Chromium, headless, driven by Playwright (never
a downloaded browser), against a real daemon with logged requests served by the fake upstream.

Checks what the page shows against spend.db itself: the request table (local times, dollars),
the chart's SVG segments, the breakdowns and TTFT bars; that it updates live, that pause,
resume, the default model and the limits work from the page, that it loads nothing from
another host and logs no console error, and that a page on another origin cannot use the
session. Screenshots go to tests/artifacts/ (git-ignored) for a person to look at.

The daemon and the browser both run in a zone 5:30 east of UTC, so "local time" is tested.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from localgate import review
from localgate.dashboard import opener
from tests.conftest import StartDaemon
from tests.fakes import FakeUpstream
from tests.http import HELLO, call, chat
from tests.test_dashboard import (
    BYOK,
    SONNET,
    byok_daemon,
    config_doc,
    expected_daily,
    expected_ttft,
    local_day,
    login_url,
    move_back,
    populate,
)
from tests.test_spend import TZ_ENV, db_rows, local_text, settled

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium as the machine allows it: no sandbox as root, no GPU, and none of its own traffic
# (it would try Google's hosts, which a closed network refuses)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync",
        "--disable-default-apps"]
ZONE = "Asia/Kolkata"  # what TZ_ENV (LGT-5:30) is, by name, for Chromium
ARTIFACTS = Path(__file__).parent / "artifacts"
WAIT_MS = 8000


def _need_browser() -> None:
    missing = None
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        missing = "the playwright package (pip install -e '.[test]')"
    if missing is None and not os.access(CHROMIUM, os.X_OK):
        missing = "Debian's chromium (apt-get install chromium; .ci/run installs it)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing} is missing, and CI must run the browser test")
        pytest.skip(f"{missing} is not installed")


@pytest.fixture
def local_zone() -> Iterator[None]:
    """This process (the in-process daemon, SQLite's 'localtime') 5:30 east of UTC."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = TZ_ENV
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


@pytest.fixture
async def chromium(tmp_path: Path) -> AsyncIterator[Any]:
    _need_browser()
    from playwright.async_api import async_playwright
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS,
                                          env={**os.environ, "HOME": str(tmp_path)})
        try:
            yield browser
        finally:
            await browser.close()


class Watched:
    """Every request a page makes, and every console error or uncaught exception."""

    def __init__(self, page: Any) -> None:
        self.urls: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: self.urls.append(r.url))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))


async def new_page(browser: Any) -> tuple[Any, Watched]:
    ctx = await browser.new_context(timezone_id=ZONE, viewport={"width": 1440, "height": 900},
                                    locale="en-US")
    page = await ctx.new_page()
    return page, Watched(page)


async def loaded(page: Any) -> None:
    await page.wait_for_selector("body[data-loaded='1']", timeout=WAIT_MS)


async def until(page: Any, js: str, arg: Any = None) -> None:
    """Poll `js` (a function of `arg`) until it is true. Playwright's wait_for_function evals
    a string inside the page, which the dashboard's CSP (rightly) forbids."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not await page.evaluate(js, arg):
        assert time.monotonic() < deadline, f"never true: {js}"
        await asyncio.sleep(0.05)


async def text(page: Any, selector: str) -> str:
    return str(await page.inner_text(selector)).strip()


# ---- what the page shows, against spend.db -----------------------------------------------------

async def check_requests_table(page: Any, rows: list[dict[str, Any]]) -> None:
    shown = await page.eval_on_selector_all("#requests tbody tr", """trs => trs.map(tr => ({
        id: tr.dataset.id, cells: [...tr.cells].map(td => td.innerText.trim())}))""")
    newest = list(reversed(rows))
    assert [s["id"] for s in shown] == [r["id"] for r in newest]
    for s, r in zip(shown, newest, strict=True):
        time_, model, route, tin, tout, cost, ttft, status = s["cells"]
        assert time_ == local_text(r["ts"]), (time_, r["ts"])  # local, not UTC
        assert model == r["resolved_model"] and route == r["route"]
        assert (tin, tout) == (f"{r['prompt_tokens']:,}", f"{r['completion_tokens']:,}")
        assert cost == review.dollars(r["cost_microdollars"])
        assert ttft == f"{r['ttft_ms']:,} ms" and status == r["status"]


async def check_charts(page: Any, rows: list[dict[str, Any]]) -> None:
    segs = await page.eval_on_selector_all("#daily-chart rect.seg", """rs => rs.map(r =>
        [r.dataset.day, r.dataset.model, Number(r.dataset.micros), Number(r.getAttribute('height'))])""")
    assert {(d, m): v for d, m, v, _ in segs} == expected_daily(rows)
    assert len(segs) == len(expected_daily(rows)) and all(h >= 1 for *_, h in segs)
    labels = await page.eval_on_selector_all("#daily-chart text.xlabel", "ts => ts.map(t => "
                                             "[t.dataset.day, t.textContent])")
    today = local_day(rows[-1]["ts"])
    assert labels[-1][0] == today and len(labels) == 6
    legend = await page.eval_on_selector_all("#legend span", "ss => ss.map(s => s.dataset.model)")
    assert set(legend) == {m for _, m in expected_daily(rows)}
    for box, key in (("#by-client", "client"), ("#by-route", "route")):
        bars = await page.eval_on_selector_all(f"{box} .hbar", """bs => bs.map(b =>
            [b.dataset.key, Number(b.dataset.micros), Number(b.dataset.requests)])""")
        want: dict[str, list[int]] = {}
        for r in rows:
            want.setdefault(r[key], [0, 0])
            want[r[key]][0] += r["cost_microdollars"]
            want[r[key]][1] += 1
        assert {k: [m, n] for k, m, n in bars} == want, key
    ttft = await page.eval_on_selector_all("#ttft .hbar", """bs => bs.map(b =>
        ({model: b.dataset.model, p50_ms: Number(b.dataset.p50), p95_ms: Number(b.dataset.p95)}))""")
    assert ttft == [{k: t[k] for k in ("model", "p50_ms", "p95_ms")}
                    for t in expected_ttft(rows)]
    spent = sum(r["cost_microdollars"] for r in rows if local_day(r["ts"]) == today)
    assert await text(page, "#today-spent") == review.dollars(spent)
    assert (await text(page, "#today-limit")).startswith("of $2.00 daily limit")
    month = sum(r["cost_microdollars"] for r in rows if local_day(r["ts"])[:7] == today[:7])
    assert await text(page, "#month-spent") == review.dollars(month)


# ---- the test -----------------------------------------------------------------------------------

# A month that looks like use: (model, days ago, prompt tokens, completion tokens)
HISTORY = [("google/gemini-3-flash-preview", 27, 42_000, 2_100), (BYOK, 22, 18_000, 1_400),
           (SONNET, 19, 31_000, 2_600), ("x-ai/grok-code-fast-1", 15, 55_000, 3_900),
           (BYOK, 12, 26_000, 2_000), (SONNET, 9, 48_000, 4_100),
           ("google/gemini-3-flash-preview", 9, 12_000, 900), (BYOK, 6, 33_000, 2_700),
           ("anthropic/claude-haiku-4.5", 5, 61_000, 3_300), (SONNET, 2, 22_000, 1_800),
           ("x-ai/grok-code-fast-1", 1, 70_000, 5_200), (BYOK, 0, 15_000, 1_100)]


async def history(d: Any, fake: FakeUpstream) -> list[dict[str, Any]]:
    """populate()'s rows plus a month of larger requests, each moved to its day."""
    rows = await populate(d)
    ids = []
    for model, _, prompt, completion in HISTORY:
        fake.knobs.usage = {"prompt_tokens": prompt, "completion_tokens": completion}
        r = await chat(d, {"model": model, "messages": HELLO})
        assert r.status == 200, r.raw
        ids.append(r.headers["x-request-id"])
    await settled(d.home, len(rows) + len(HISTORY), d)
    fake.knobs.usage = {"prompt_tokens": 11, "completion_tokens": 7}
    for rid, (_, days, _, _) in zip(ids, HISTORY, strict=True):
        if days:
            await asyncio.to_thread(move_back, d.home / "spend.db", rid, days)
    return await db_rows(d.home)


async def test_dashboard_in_chromium(start_daemon: StartDaemon, fake: FakeUpstream,
                                     local_zone: None, chromium: Any, aiohttp_server: Any,
                                     tmp_path: Path) -> None:
    t0 = time.monotonic()
    d = await byok_daemon(start_daemon, {"limits": {"daily_usd": 2.0, "monthly_usd": 40.0}})
    rows = await history(d, fake)
    page, seen = await new_page(chromium)
    await page.goto(await login_url(d))
    await loaded(page)
    assert page.url == f"{d.url}/"
    await check_requests_table(page, rows)
    await check_charts(page, rows)
    assert await text(page, "#default-current") == "kilo-auto/balanced"
    # the page prints money exactly as the CLI does (cents from 1 cent, half to even)
    amounts = [0, 1, 120, 9_999, 10_000, 14_999, 15_000, 25_000, 35_000, 999_999, 1_005_000,
               1_234_567_890]
    assert await page.evaluate("ms => ms.map(dollars)", amounts) == [
        review.dollars(m) for m in amounts]
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    # live: a new request shows up without a reload
    r = await chat(d, {"model": SONNET, "messages": HELLO})
    await page.wait_for_selector(f"#requests tr[data-id='{r.headers['x-request-id']}']",
                                 timeout=WAIT_MS)
    rows = await settled(d.home, len(rows) + 1, d)
    await until(page, "n => document.querySelectorAll('#requests tbody tr').length == n && "
                "!document.querySelector('.badge.in_flight')", len(rows))
    await check_requests_table(page, rows)

    # pause and resume from the page
    await page.click("#pause")
    await page.wait_for_selector("#state.paused", timeout=WAIT_MS)
    assert (await call(d, "GET", "/health")).json["paused"] is True
    (await chat(d, {"model": BYOK, "messages": HELLO})).error(503, "paused")
    assert await text(page, "#pause") == "Resume"
    await page.screenshot(path=str(ARTIFACTS / "dashboard-paused.png"))
    await page.click("#pause")
    await until(page, "() => document.getElementById('state').textContent == 'Serving'")
    assert (await call(d, "GET", "/health")).json["paused"] is False

    # the default model: picked from the list, then a bad id refused with the daemon's reason
    await page.select_option("#model-select", SONNET)
    await page.click("#default-form button")
    await page.wait_for_selector("#default-msg.ok", timeout=WAIT_MS)
    assert (await call(d, "GET", "/health")).json["default_model"] == SONNET
    assert config_doc(d.home)["routing"]["default_model"] == SONNET
    await until(page, "m => document.getElementById('default-current').textContent == m",
                SONNET)

    # limits
    await page.fill("#daily", "3.25")
    await page.click("#limits-form button")
    await page.wait_for_selector("#limits-msg.ok", timeout=WAIT_MS)
    assert config_doc(d.home)["limits"]["daily_usd"] == 3.25
    await until(page, "() => document.getElementById('today-limit').textContent"
                ".startsWith('of $3.25 daily limit')")

    assert seen.errors == [], seen.errors
    await page.fill("#model-input", "nosuchprovider/model-x")
    await page.click("#default-form button")
    await page.wait_for_selector("#default-msg.bad", timeout=WAIT_MS)
    assert "nosuchprovider" in await text(page, "#default-msg")
    assert all("404" in e for e in seen.errors), seen.errors  # only the refusal itself
    foreign = [u for u in seen.urls if not u.startswith(f"{d.url}/")]
    assert foreign == [], foreign
    assert any(u.endswith("/localgate/overview") for u in seen.urls)

    await check_login_through_the_forwarding_page(chromium, d.url, tmp_path)
    await check_another_origin_cannot_use_the_session(page, d.url, aiohttp_server)
    print(f"\nbrowser test: {time.monotonic() - t0:.1f} s, {len(seen.urls)} requests from the "
          f"page, screenshots in {ARTIFACTS}")


async def check_login_through_the_forwarding_page(browser: Any, url: str, tmp: Path) -> None:
    """What `localgate dashboard` opens: a file that forwards to the link. A cross-site
    redirect chain withholds the Strict cookie; the sign-in page's retry must get through."""
    page, seen = await new_page(browser)
    await page.goto(f"{url}/")  # no session yet: how to get one, and nothing else
    assert "localgate dashboard" in await text(page, "main")
    assert await page.query_selector("#requests") is None
    await page.screenshot(path=str(ARTIFACTS / "dashboard-signed-out.png"))
    link = await login_url(url)
    forward = await asyncio.to_thread(opener.forwarder, link, tmp / "fwd.html")
    await page.goto(forward.as_uri())
    await loaded(page)
    assert page.url == f"{url}/"
    assert all("401" in e for e in seen.errors), seen.errors  # the signed-out page's status
    page2, _ = await new_page(browser)
    await page2.goto(link)  # used up
    assert "already been used or has expired" in await text(page2, "main")
    await page2.screenshot(path=str(ARTIFACTS / "dashboard-link-expired.png"))
    await page.context.close()
    await page2.context.close()


EVIL = """<!doctype html><title>evil</title><script>
const target = "%s";
(async () => {
  const out = {};
  try {
    const r = await fetch(target + "/localgate/pause", {method: "POST", credentials: "include",
      headers: {"Content-Type": "application/json"}, body: "{}"});
    out.json = r.status;
  } catch (e) { out.json = "blocked"; }
  try {
    await fetch(target + "/localgate/pause", {method: "POST", mode: "no-cors",
      credentials: "include", body: "{}"});
    out.simple = "sent";
  } catch (e) { out.simple = "blocked"; }
  try {
    const r = await fetch(target + "/localgate/log", {credentials: "include"});
    out.read = await r.text();
  } catch (e) { out.read = "blocked"; }
  document.title = JSON.stringify(out);
})();
</script>"""


async def check_another_origin_cannot_use_the_session(page: Any, url: str,
                                                      aiohttp_server: Any) -> None:
    """A page on another local port (same site as 127.0.0.1, so the browser does attach the
    session cookie) tries to pause the daemon and read the log, in the signed-in browser."""
    async def evil(request: web.Request) -> web.Response:
        return web.Response(text=EVIL % url, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", evil)
    server = await aiohttp_server(app)
    await page.goto(str(server.make_url("/")))
    await until(page, "() => document.title.startsWith('{')")
    import json
    out = json.loads(await page.title())
    assert out["json"] == "blocked" and out["read"] == "blocked", out
    assert (await call(url, "GET", "/health")).json["paused"] is False
    rows = await db_rows(Path(os.environ["LOCALGATE_HOME"]))
    assert rows  # the daemon is still serving the same log
