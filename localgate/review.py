"""Offline review of the spend log for `localgate log` and `localgate spend`: time windows,
queries on a read-mostly connection, and rows shaped for table/JSON/CSV output.

Money is integer microdollars until display; times are UTC in storage, local on screen.
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from localgate import ledger
from localgate.controls import local_midnight_utc
from localgate.ledger import utc_text

BY = ("model", "provider", "day", "client", "route")
LOG_LIMIT = 50
CHART_MODELS = 7  # the daily chart stacks the top models; the rest are summed as "(other)"
OTHER = "(other)"
_EMPTY_TOTAL = {"total": "total", "requests": 0, "prompt_tokens": 0, "completion_tokens": 0,
                "cached_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0,
                "cost_microdollars": 0}
_REL = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class QueryError(ValueError):
    """A bad review option (--since, ?by=, ...); `param` names it for the HTTP error."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class WindowError(QueryError):
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


def open_log(path: Path) -> sqlite3.Connection | None:
    """The spend log for reading (None when nothing was logged yet); ledger.Unreadable when
    it is damaged."""
    return ledger.open_for_reading(path)


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
    return rows, total[0] if total else dict(_EMPTY_TOTAL)


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



# ---- the JSON that `spend|log --format json` print and GET /localgate/spend|log return ---------

def window(since: str | None, until: str | None) -> tuple[str | None, str | None]:
    """--since/--until (or ?since=&until=) as the log's UTC text; empty or None = unbounded.
    Raises WindowError naming the bad one."""
    out: list[str | None] = []
    for name, text in (("since", since), ("until", until)):
        try:
            out.append(parse_when(text) if text else None)
        except WindowError as exc:
            raise WindowError(f"{name}: {exc}", param=name) from None
    return out[0], out[1]


def check_by(by: str | None) -> str | None:
    if by and by not in BY:
        raise QueryError(f"by: expected one of {', '.join(BY)}, got {by!r}", param="by")
    return by or None


def check_limit(limit: int) -> int:
    if limit < 0:
        raise QueryError(f"limit: expected a whole number >= 0, got {limit}", param="limit")
    return limit


def spend_json(path: Path, by: str | None, since: str | None,
               until: str | None) -> dict[str, Any]:
    """{since, until, by, rows, total} for a window (UTC text from `window`). Blocking."""
    conn = open_log(path)
    try:
        rows, total = spend_summary(conn, by, since, until) if conn else ([], dict(_EMPTY_TOTAL))
    finally:
        if conn is not None:
            conn.close()
    return {"since": since, "until": until, "by": by, "rows": rows, "total": total}


def log_json(path: Path, since: str | None, until: str | None,
             limit: int = LOG_LIMIT) -> list[dict[str, Any]]:
    """The newest `limit` rows of the window, every SPEC section 6 field. Blocking."""
    conn = open_log(path)
    if conn is None:
        return []
    try:
        return ledger.rows(conn, since=since, until=until, limit=limit)
    finally:
        conn.close()


# ---- the dashboard's charts ---------------------------------------------------------------------

def local_days(days: int, now: float | None = None) -> tuple[list[str], str]:
    """The last `days` local dates (oldest first) and the UTC text of the first one's midnight."""
    today = datetime.fromtimestamp(time.time() if now is None else now).date()
    dates = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
    return [d.isoformat() for d in dates], _midnight_utc(dates[0])


def _midnight_utc(day: date) -> str:
    return utc_text(datetime(day.year, day.month, day.day).astimezone().timestamp())


def percentile(ordered: list[int], q: float) -> int:
    """Nearest-rank percentile of an ascending, non-empty list."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def overview(path: Path, days: int = 30, now: float | None = None) -> dict[str, Any]:
    """Spend per local day stacked by model, TTFT p50/p95 per model (requests that ended
    `ok`), spent today and this month, and recently used models. Blocking (SQLite)."""
    labels, since = local_days(days, now)
    conn = open_log(path)
    try:
        cells = ledger.daily_cost(conn, "model", since=since) if conn else []
        samples = ledger.ttft_samples(conn, since=since) if conn else []
        today = ledger.spent_since(conn, local_midnight_utc(now)) if conn else 0
        month = ledger.spent_since(conn, local_midnight_utc(now, month=True)) if conn else 0
        recent = ledger.recent_models(conn) if conn else []
    finally:
        if conn is not None:
            conn.close()
    return {"since": since, "days": labels, "daily": _stacked(labels, cells),
            "ttft": _ttft(samples), "spent": {"today_microdollars": today,
                                              "month_microdollars": month},
            "recent": recent}


def _stacked(labels: list[str], cells: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    index = {d: i for i, d in enumerate(labels)}
    totals: dict[str, int] = {}
    for _, model, micros in cells:
        totals[model] = totals.get(model, 0) + micros
    ranked = sorted((m for m, t in totals.items() if t > 0), key=lambda m: (-totals[m], m))
    shown = ranked if len(ranked) <= CHART_MODELS + 1 else ranked[:CHART_MODELS]
    series = {m: [0] * len(labels) for m in shown}
    for day, model, micros in cells:
        if day in index and micros:
            key = model if model in series else OTHER
            series.setdefault(key, [0] * len(labels))[index[day]] += micros
    return [{"model": m, "cost_microdollars": v} for m, v in series.items()]


def _ttft(samples: list[tuple[str, int]]) -> list[dict[str, Any]]:
    by_model: dict[str, list[int]] = {}
    for model, ms in samples:
        by_model.setdefault(model, []).append(ms)
    out = []
    for model, values in by_model.items():
        values.sort()
        out.append({"model": model, "requests": len(values), "p50_ms": percentile(values, 0.5),
                    "p95_ms": percentile(values, 0.95)})
    return sorted(out, key=lambda r: (-r["requests"], r["model"]))
