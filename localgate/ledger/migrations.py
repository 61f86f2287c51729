"""Ordered, named migrations of spend.db. Never edit one that has shipped; add the next.

Each migration and its `_migrations` record run in one transaction (BEGIN IMMEDIATE ... COMMIT),
so a failing migration leaves the database exactly as it was. sqlite3 only.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_spend(conn: sqlite3.Connection) -> None:
    conn.execute("""
        create table spend (
            id                 text primary key,   -- the request id (x-request-id)
            ts                 text not null,      -- accepted at, ISO 8601 UTC ending in Z
            client             text not null,      -- local key name, or 'anonymous'
            user_agent         text,
            model              text,               -- as requested
            resolved_model     text,
            provider           text,
            route              text,               -- byok | free | local | gateway | byok-fallback
            mode               text,               -- x-kilocode-mode
            stream             integer not null default 0,
            status             text not null,      -- in_flight | ok | error | refused |
                                                   -- client_closed | interrupted
            http_status        integer,
            prompt_tokens      integer not null default 0,
            completion_tokens  integer not null default 0,
            cached_tokens      integer not null default 0,
            cache_write_tokens integer not null default 0,
            reasoning_tokens   integer not null default 0,
            cost_microdollars  integer not null default 0,  -- 1e-6 USD
            cost_source        text,               -- upstream | catalog | estimated | free
            ttft_ms            integer,
            latency_ms         integer,
            repairs            integer not null default 0,
            error              text
        )""")


@migration
def m002_spend_indexes(conn: sqlite3.Connection) -> None:
    # the review commands and the limit checks read by time, and by client within time
    conn.execute("create index spend_ts on spend (ts)")
    conn.execute("create index spend_client_ts on spend (client, ts)")
    conn.execute("create index spend_in_flight on spend (status) where status = 'in_flight'")


def _ensure_table(conn: sqlite3.Connection) -> None:
    conn.execute("create table if not exists _migrations "
                 "(name text primary key, applied_at text not null)")


def applied(conn: sqlite3.Connection) -> list[str]:
    _ensure_table(conn)
    return [r[0] for r in conn.execute("select name from _migrations order by rowid")]


def pending(conn: sqlite3.Connection) -> list[Migration]:
    done = set(applied(conn))
    return [m for m in MIGRATIONS if m.__name__ not in done]


def apply(conn: sqlite3.Connection, upto: str | None = None) -> list[str]:
    """Apply pending migrations in order (conn in autocommit mode); returns their names."""
    names = []
    for fn in pending(conn):
        conn.execute("begin immediate")
        try:
            fn(conn)
            conn.execute("insert into _migrations (name, applied_at) values (?, ?)",
                         (fn.__name__, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise
        names.append(fn.__name__)
        if fn.__name__ == upto:
            break
    return names
