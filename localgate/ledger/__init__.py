"""Spend ledger: the SQLite record (spend.db, WAL) of every request, what it used and cost.

Owns the schema (ledger/migrations.py) and the SpendEntry row type. A writer thread owns the
daemon's connection, so the event loop only enqueues; readers (CLI) open their own connection.
Must not import providers, gateway or aiohttp.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localgate.ledger import migrations

log = logging.getLogger("localgate")
GROUP_COMMIT_S = 0.005


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
    t = time.time() if t is None else t
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


FIELDS = tuple(f.name for f in dataclasses.fields(SpendEntry))
_INSERT = (f"insert or replace into spend ({', '.join(FIELDS)}) "
           f"values ({', '.join('?' for _ in FIELDS)})")


def _values(e: SpendEntry) -> tuple[Any, ...]:
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


def recent_models(conn: sqlite3.Connection, limit: int = 5) -> list[str]:
    """The distinct models requests were served by lately (resolved ids), newest first."""
    sql = ("select resolved_model from spend where resolved_model != '' "
           "group by resolved_model order by max(ts) desc limit ?")
    return [r[0] for r in conn.execute(sql, (limit,))]


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


def _window(since: str | None, until: str | None) -> tuple[str, list[Any]]:
    conds, args = [], []
    if since:
        conds.append("ts >= ?")
        args.append(since)
    if until:
        conds.append("ts < ?")
        args.append(until)
    return ("where " + " and ".join(conds)) if conds else "", args


class LedgerWriter:
    """The daemon's writer: `write()` enqueues and returns at once; a thread commits in batches.

    A row is written when a request is accepted and rewritten when it ends (same id, so a
    request is never counted twice)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="localgate-ledger", daemon=True)
        self._thread.start()

    def write(self, entry: SpendEntry) -> None:
        """Queue a row (a snapshot the caller no longer changes); never blocks."""
        self._q.put(entry)

    def flush(self, timeout: float = 5.0) -> bool:
        done = threading.Event()
        self._q.put(done)
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self._q.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("ledger writer did not stop in %.0f s", timeout)
            return
        self.conn.close()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            batch, events, stop = [], [], False
            while True:
                if item is None:
                    stop = True
                elif isinstance(item, threading.Event):
                    events.append(item)
                else:
                    batch.append(_values(item))
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
            if batch:
                # a request that began and ended within one batch needs only its final row
                self._commit(list({row[0]: row for row in batch}.values()))
            for ev in events:
                ev.set()
            if stop:
                return
            if batch:
                # group commit: the first row after a quiet spell is written at once; under
                # load, rows gather for a few ms so the thread takes the GIL less often
                time.sleep(GROUP_COMMIT_S)

    def _commit(self, batch: list[tuple[Any, ...]]) -> None:
        try:
            self.conn.execute("begin")
            self.conn.executemany(_INSERT, batch)
            self.conn.execute("commit")
        except Exception:  # the writer must outlive any one bad batch
            log.exception("could not write %d spend rows", len(batch))
            try:
                self.conn.execute("rollback")
            except sqlite3.Error:
                pass
