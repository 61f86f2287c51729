"""Helpers shared by the hardening tests (issue 6) and the property-based suite: a daemon in
front of tests/wire.py's scripted upstream, the spend log read back once it has settled, a raw
HTTP request (bytes no HTTP client would send), and the daemon's peak memory.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import Daemon, StartDaemon, merge, provider_doc
from tests.wire import Wire

OPENAI_KEY = "sk-hardening-openai-5f3a9c41d2"
KILO_KEY = "kilo-hardening-key-77aa13be90"
MISTRAL_KEY = "mistral-hardening-key-2b2b9e0f"
HELLO = [{"role": "user", "content": "hi"}]
BYOK = "openai/gpt-5.2"
MICRO = Decimal(1_000_000)


async def wire_at(aiohttp_server: Any) -> Wire:
    w = Wire()
    server = await aiohttp_server(w.app)
    w.url = str(server.make_url("")).rstrip("/")
    return w


async def up(start_daemon: StartDaemon, wire: Wire, extra: dict[str, Any] | None = None,
             **env: str) -> Daemon:
    """The daemon in-process with every provider (and the Kilo service) at `wire`."""
    return await start_daemon(merge(provider_doc(wire.url), extra or {}), **env)


def read_rows(db: Path) -> list[dict[str, Any]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(db, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("select * from spend order by ts, rowid")]
    finally:
        conn.close()


async def rows(d: Daemon, n: int | None = None, timeout: float = 5.0) -> list[dict[str, Any]]:
    """spend.db's rows (oldest first) once none is in flight (and there are n, when given)."""
    writer = d.running.built.spend_log
    deadline = time.monotonic() + timeout
    while True:
        assert await asyncio.to_thread(writer.flush)
        got = await asyncio.to_thread(read_rows, d.home / "spend.db")
        if all(r["status"] != "in_flight" for r in got) and (n is None or len(got) >= n):
            if n is not None:
                assert len(got) == n, got
            return got
        assert time.monotonic() < deadline, f"rows never settled: {got}"
        await asyncio.sleep(0.02)


async def prices(d: Daemon | str, model: str) -> dict[str, Decimal]:
    url = d if isinstance(d, str) else d.url
    async with aiohttp.ClientSession() as s, s.get(f"{url}/v1/models/{model}") as r:
        assert r.status == 200, await r.text()
        p = (await r.json())["pricing"]
    return {k: Decimal(str(v or "0")) for k, v in p.items()}


def micros(usd: Decimal) -> int:
    return int((usd * MICRO).to_integral_value(ROUND_HALF_UP))


def cost_of(p: dict[str, Decimal], prompt: int, completion: int) -> int:
    """Catalog cost of uncached tokens, in microdollars (SPEC 6)."""
    return micros(prompt * p["prompt"] + completion * p["completion"] + p.get("request", 0))


async def raw_request(port: int, head: bytes, body: bytes = b"",
                      timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Send exactly these bytes (request line and headers, CRLF-separated, without the blank
    line) and read the answer to the end (the request says Connection: close)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.rstrip(b"\r\n") + b"\r\nConnection: close\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    top, _, payload = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in lines[1:])}
    return status, headers, payload


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")
