"""Offline review of the spend log for `localgate log` and `localgate spend`: time windows,
queries on a read-mostly connection, and rows shaped for table/JSON/CSV output.

Money is integer microdollars until display; times are UTC in storage, local on screen.
"""

from __future__ import annotations

import re
import sqlite3
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from localgate import ledger
from localgate.controls import local_midnight_utc
from localgate.ledger import utc_text

_REL = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class WindowError(ValueError):
    pass


def parse_when(text: str, *, now: float | None = None) -> str:
    """`24h`, `7d`, `30d`, `today`, `yesterday`, or an ISO date/time (local unless it has a
    zone) -> the log's UTC timestamp text."""
    now = time.time() if now is None else now
    t = text.strip().lower()
    if t == "today":
        return local_midnight_utc(now)
    if t == "yesterday":
        return local_midnight_utc(time.mktime(time.localtime(now)) - 86400)
    if t in ("month", "this-month"):
        return local_midnight_utc(now, month=True)
    m = _REL.match(t)
    if m:
        return utc_text(now - int(m.group(1)) * _UNITS[m.group(2)])
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise WindowError(f"{text!r} is not a time: use 24h, 7d, 30d, today, or an ISO "
                          "date/time such as 2026-11-01 or 2026-11-01T09:00") from exc
    if dt.tzinfo is None:
        dt = dt.astimezone()  # a bare date/time means the user's local time
    return utc_text(dt.timestamp())


class LogUnreadable(Exception):
    """spend.db exists but is not a readable SQLite database (damaged, truncated)."""


def open_log(path: Path) -> sqlite3.Connection | None:
    """The spend log for reading (None when nothing was logged yet); LogUnreadable when the
    file is damaged (the daemon sets such a file aside at its next start; readers only say so)."""
    if not path.exists():
        return None
    try:
        return ledger.connect(path)  # applies pending migrations, so an old file reads too
    except sqlite3.DatabaseError as exc:
        raise LogUnreadable(f"the spend log {path} cannot be read ({exc}); the daemon sets a "
                            "damaged log aside (renamed, not deleted) when it starts") from exc


def local_time(ts: str | None) -> str:
    if not ts:
        return "-"
    try:
        dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return ts
    return dt.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def dollars(micros: int | None) -> str:
    """Money for people: cents for big sums, more digits for the tiny ones."""
    if micros is None:
        return "-"
    d = Decimal(micros) / Decimal(1_000_000)
    if micros == 0:
        return "$0.00"
    if abs(micros) >= 10_000:  # >= 1 cent
        return f"${d:,.2f}"
    return f"${d:.6f}".rstrip("0")


def log_table_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"time": local_time(r["ts"]), "client": r["client"],
             "model": r["resolved_model"] or r["model"] or "-", "route": r["route"] or "-",
             "status": r["status"], "http": r["http_status"], "in": r["prompt_tokens"],
             "out": r["completion_tokens"], "cost": dollars(r["cost_microdollars"]),
             "ttft_ms": r["ttft_ms"], "ms": r["latency_ms"]} for r in rows]


LOG_COLUMNS = [("time", "time"), ("client", "client"), ("model", "model"), ("route", "route"),
               ("status", "status"), ("http", "http"), ("in", "tokens in"),
               ("out", "tokens out"), ("cost", "cost"), ("ttft_ms", "ttft ms"),
               ("ms", "latency ms")]


def spend_summary(conn: sqlite3.Connection, by: str | None, since: str | None,
                  until: str | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows = ledger.breakdown(conn, by, since=since, until=until) if by else []
    total = ledger.breakdown(conn, None, since=since, until=until)
    tot = total[0] if total else {"total": "total", "requests": 0, "prompt_tokens": 0,
                                  "completion_tokens": 0, "cached_tokens": 0,
                                  "cache_write_tokens": 0, "reasoning_tokens": 0,
                                  "cost_microdollars": 0}
    return rows, tot


def spend_columns(by: str | None) -> list[tuple[str, str]]:
    return [(by or "total", by or ""), ("requests", "requests"), ("prompt_tokens", "prompt"),
            ("completion_tokens", "completion"), ("cached_tokens", "cached"),
            ("cost", "cost")]


def with_dollars(row: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    """A breakdown row for the table: money in dollars, an empty group named."""
    out = {**row, "cost": dollars(row["cost_microdollars"])}
    if key is not None and not out.get(key):
        out[key] = "(none)"  # e.g. refused requests have no route or provider
    return out


def window_label(since: str | None, until: str | None) -> str:
    a = local_time(since) if since else "the beginning"
    b = local_time(until) if until else "now"
    return f"{a} → {b}"

