"""Spend ledger: the SQLite record (spend.db, WAL) of every request, what it used and cost.

Owns the schema (ledger/migrations.py) and the SpendEntry row type. A writer thread owns the
daemon's connection, so the event loop only enqueues; readers (CLI) open their own connection.
Must not import providers, gateway or aiohttp.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localgate.ledger import migrations

log = logging.getLogger("localgate")


@dataclass(slots=True)
class SpendEntry:
    """One row of `spend`; the field names are SPEC section 6's (and `log --format json`'s)."""

    id: str
    ts: str
    client: str
    user_agent: str | None = None
    model: str | None = None
    resolved_model: str | None = None
    provider: str | None = None
    route: str | None = None
    mode: str | None = None
    stream: bool = False
    status: str = "in_flight"
    http_status: int | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_microdollars: int = 0
    cost_source: str | None = None
    ttft_ms: int | None = None
    latency_ms: int | None = None
    repairs: int = 0
    error: str | None = None


def utc_text(t: float | None = None) -> str:
    """The log's timestamp format: ISO 8601 UTC with milliseconds, ending in Z."""
    global _second
    t = time.time() if t is None else t
    ms = int(t * 1000)
    sec = ms // 1000
    cached = _second
    if cached[0] != sec:  # formatted once a second, not once a request
        cached = _second = (sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)))
    return f"{cached[1]}.{ms % 1000:03d}Z"


_second: tuple[int, str] = (-1, "")


FIELDS = tuple(f.name for f in dataclasses.fields(SpendEntry))
INSERT = (f"insert or replace into spend ({', '.join(FIELDS)}) "
           f"values ({', '.join('?' for _ in FIELDS)})")


def values(e: SpendEntry) -> tuple[Any, ...]:
    return (e.id, e.ts, e.client, e.user_agent, e.model, e.resolved_model, e.provider, e.route,
            e.mode, int(e.stream), e.status, e.http_status, e.prompt_tokens, e.completion_tokens,
            e.cached_tokens, e.cache_write_tokens, e.reasoning_tokens, e.cost_microdollars,
            e.cost_source, e.ttft_ms, e.latency_ms, e.repairs, e.error)


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating and migrating) spend.db in autocommit mode, WAL."""
    _private_file(path)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    conn.execute("pragma journal_mode=wal")
    conn.execute("pragma synchronous=normal")  # WAL + normal: durable across a process kill
    conn.execute("pragma busy_timeout=10000")
    migrations.apply(conn)
    return conn


_INT64 = 2**63 - 1


def storable(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row SQLite cannot refuse: text as valid UTF-8 (lone surrogates replaced), bounded;
    numbers within int64."""
    out: list[Any] = []
    for v in row:
        if isinstance(v, str):
            v = v[:2000].encode("utf-8", "replace").decode("utf-8")
        elif isinstance(v, int) and not isinstance(v, bool):
            v = max(-_INT64, min(v, _INT64))
        elif v is not None and not isinstance(v, bool | float):
            v = str(v)[:2000]
        out.append(v)
    return tuple(out)


def _private_file(path: Path) -> None:
    """spend.db is the user's only (0600): SQLite gives its -wal and -shm the same mode."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name != "posix":
        return
    # Create it 0600 only when missing: closing any descriptor of an open database would drop
    # the POSIX locks SQLite holds on it in this process (and another could then delete the WAL)
    if not path.exists():
        try:
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if p.stat().st_mode & 0o077:
                p.chmod(0o600)
        except OSError:
            pass


def row_dict(row: sqlite3.Row) -> dict[str, Any]:
    d = {k: row[k] for k in FIELDS}
    d["stream"] = bool(d["stream"])
    return d


@dataclasses.dataclass
class Recovered:
    interrupted: int
    day: int
    month: int
    per_client_day: dict[str, int]


class Unreadable(Exception):
    """The spend log exists but cannot be read (damaged, or not a database)."""


def open_for_reading(path: Path) -> sqlite3.Connection | None:
    """The spend log for the review commands (None when nothing was logged yet); Unreadable
    with a message for people when it is damaged."""
    if not path.exists():
        return None
    try:
        conn = connect(path)  # applies pending migrations, so an old file reads too
        conn.execute("select count(*) from spend where rowid = 1").fetchone()
        return conn
    except (sqlite3.Error, OSError) as exc:
        raise Unreadable(f"the spend log {path} cannot be read ({exc}); a damaged log is set "
                         "aside (renamed, kept) when the daemon next starts") from exc


def recover(path: Path, before: str, day_start: str, month_start: str) -> Recovered | None:
    """After a start: rows a killed daemon left in flight become `interrupted`, and what was
    spent today / this month (per client today) is read back for the limits. None when the log
    cannot be read (the writer reports why)."""
    try:
        conn = connect(path)
    except (sqlite3.Error, OSError) as exc:
        log.error("spend log not recovered: %s", exc)
        return None
    try:
        n = mark_interrupted(conn, before)
        names = [r[0] for r in conn.execute("select distinct client from spend where ts >= ?",
                                            (day_start,))]
        return Recovered(n, spent_since(conn, day_start), spent_since(conn, month_start),
                         {c: spent_since(conn, day_start, c) for c in names})
    except sqlite3.Error as exc:
        log.error("spend log not recovered: %s", exc)
        return None
    finally:
        conn.close()


def mark_interrupted(conn: sqlite3.Connection, before: str) -> int:
    """Rows a killed daemon left in flight (accepted before `before`) become `interrupted`."""
    cur = conn.execute("update spend set status = 'interrupted', "
                       "error = coalesce(error, 'the daemon stopped before the request ended') "
                       "where status = 'in_flight' and ts < ?", (before,))
    return cur.rowcount


def spent_since(conn: sqlite3.Connection, since_utc: str, client: str | None = None) -> int:
    sql = "select coalesce(sum(cost_microdollars), 0) from spend where ts >= ?"
    args: list[Any] = [since_utc]
    if client is not None:
        sql += " and client = ?"
        args.append(client)
    return int(conn.execute(sql, args).fetchone()[0])


def rows(conn: sqlite3.Connection, *, since: str | None = None, until: str | None = None,
         limit: int | None = None) -> list[dict[str, Any]]:
    """Newest first."""
    conn.row_factory = sqlite3.Row
    where, args = _window(since, until)
    sql = f"select * from spend {where} order by ts desc, rowid desc"
    if limit is not None:
        sql += " limit ?"
        args.append(limit)
    return [row_dict(r) for r in conn.execute(sql, args)]


_GROUPS = {"model": "coalesce(nullif(resolved_model, ''), model, '')",
           "provider": "coalesce(provider, '')", "client": "client",
           "route": "coalesce(route, '')", "day": "strftime('%Y-%m-%d', ts, 'localtime')"}


def breakdown(conn: sqlite3.Connection, by: str | None, *, since: str | None = None,
              until: str | None = None) -> list[dict[str, Any]]:
    """Totals per group (or one total row when by is None), most expensive first."""
    where, args = _window(since, until)
    key = _GROUPS[by] if by else "'total'"
    sql = (f"select {key} as k, count(*), sum(prompt_tokens), sum(completion_tokens), "
           "sum(cached_tokens), sum(cache_write_tokens), sum(reasoning_tokens), "
           f"sum(cost_microdollars) from spend {where} group by k "
           + ("order by k" if by == "day" else "order by 8 desc, k"))
    conn.row_factory = None
    out = []
    for r in conn.execute(sql, args):
        out.append({by or "total": r[0], "requests": r[1], "prompt_tokens": r[2] or 0,
                    "completion_tokens": r[3] or 0, "cached_tokens": r[4] or 0,
                    "cache_write_tokens": r[5] or 0, "reasoning_tokens": r[6] or 0,
                    "cost_microdollars": r[7] or 0})
    return out


def daily_cost(conn: sqlite3.Connection, by: str, *, since: str) -> list[tuple[str, str, int]]:
    """(local day, group, microdollars) for every pair with rows since `since`."""
    sql = (f"select strftime('%Y-%m-%d', ts, 'localtime') as d, {_GROUPS[by]} as k, "
           "sum(cost_microdollars) from spend where ts >= ? group by d, k order by d, k")
    conn.row_factory = None
    return [(r[0], r[1], int(r[2] or 0)) for r in conn.execute(sql, (since,))]


def ttft_samples(conn: sqlite3.Connection, *, since: str) -> list[tuple[str, int]]:
    """(model, ttft_ms) of the requests since `since` that ended well and measured one."""
    sql = (f"select {_GROUPS['model']}, ttft_ms from spend where ts >= ? and status = 'ok' "
           "and ttft_ms is not null")
    conn.row_factory = None
    return [(r[0], int(r[1])) for r in conn.execute(sql, (since,))]


def recent_models(conn: sqlite3.Connection, limit: int | None = None, *,
                  scan: int = 500) -> list[str]:
    """Distinct resolved models of the latest `scan` rows, most recently used first (at most
    `limit` of them)."""
    sql = ("select resolved_model, max(ts) as last from (select resolved_model, ts from spend "
           "order by ts desc limit ?) where coalesce(resolved_model, '') != '' "
           "group by resolved_model order by last desc")
    conn.row_factory = None
    found = [r[0] for r in conn.execute(sql, (scan,))]
    return found if limit is None else found[:limit]


def _window(since: str | None, until: str | None) -> tuple[str, list[Any]]:
    conds, args = [], []
    if since:
        conds.append("ts >= ?")
        args.append(since)
    if until:
        conds.append("ts < ?")
        args.append(until)
    return ("where " + " and ".join(conds)) if conds else "", args


from localgate.ledger.writer import LedgerWriter  # noqa: E402, F401  (re-exported)
