"""spend.db: migrations from a blank database and from every earlier schema, rollback on a
failing migration, the writer thread, and the review queries."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localgate import ledger
from localgate.ledger import LedgerWriter, SpendEntry, migrations


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def _columns(conn: sqlite3.Connection) -> list[str]:
    return [r[1] for r in conn.execute("pragma table_info(spend)")]


def test_blank_database_gets_every_migration(tmp_path: Path) -> None:
    conn = ledger.connect(tmp_path / "spend.db")
    assert migrations.applied(conn) == [m.__name__ for m in migrations.MIGRATIONS]
    assert _columns(conn) == list(ledger.FIELDS)
    assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert migrations.pending(conn) == []


@pytest.mark.parametrize("upto", [m.__name__ for m in migrations.MIGRATIONS[:-1]])
def test_upgrade_from_every_earlier_schema_keeps_rows(tmp_path: Path, upto: str) -> None:
    path = tmp_path / "spend.db"
    conn = _raw(path)
    migrations.apply(conn, upto=upto)
    assert migrations.applied(conn)[-1] == upto
    conn.execute("insert into spend (id, ts, client, status, cost_microdollars) "
                 "values ('old', '2026-01-01T00:00:00.000Z', 'default', 'ok', 1234)")
    conn.close()
    conn = ledger.connect(path)  # upgrades the rest
    assert migrations.pending(conn) == []
    assert ledger.spent_since(conn, "2025-01-01T00:00:00Z") == 1234
    names = {r[0] for r in conn.execute("select name from sqlite_master where type='index'")}
    assert {"spend_ts", "spend_client_ts"} <= names


def test_failing_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def m999_broken(conn: sqlite3.Connection) -> None:
        conn.execute("create table half_done (x integer)")
        raise RuntimeError("boom")

    conn = ledger.connect(tmp_path / "spend.db")
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, m999_broken])
    with pytest.raises(RuntimeError):
        migrations.apply(conn)
    tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    assert "half_done" not in tables
    assert "m999_broken" not in migrations.applied(conn)


def test_writer_rewrites_the_same_row_and_marks_interrupted(tmp_path: Path) -> None:
    w = LedgerWriter(tmp_path / "spend.db")
    try:
        e = SpendEntry("r1", "2026-11-21T10:00:00.000Z", "default", model="m", stream=True)
        w.write(e)
        e.status, e.cost_microdollars = "ok", 42
        w.write(e)
        w.write(SpendEntry("r2", "2026-11-21T10:00:01.000Z", "ci"))
        assert w.flush()
        got = ledger.rows(w.conn)
        assert [r["id"] for r in got] == ["r2", "r1"]
        assert got[1]["status"] == "ok" and got[1]["cost_microdollars"] == 42
        assert got[1]["stream"] is True
        # only rows accepted before this start belong to a dead daemon
        assert ledger.mark_interrupted(w.conn, "2026-11-21T10:00:00.500Z") == 0
        assert ledger.mark_interrupted(w.conn, "2026-11-21T10:00:02.000Z") == 1
        assert ledger.rows(w.conn)[0]["status"] == "interrupted"
    finally:
        w.close()


def test_breakdown_groups_and_windows(tmp_path: Path) -> None:
    w = LedgerWriter(tmp_path / "spend.db")
    try:
        for i, (model, cost) in enumerate([("a/x", 10), ("a/x", 5), ("b/y", 100)]):
            w.write(SpendEntry(f"r{i}", f"2026-11-2{i}T12:00:00.000Z", "default",
                               resolved_model=model, provider=model[0], status="ok",
                               prompt_tokens=3, cost_microdollars=cost))
        w.flush()
        by_model = ledger.breakdown(w.conn, "model")
        assert [(r["model"], r["requests"], r["cost_microdollars"]) for r in by_model] == [
            ("b/y", 1, 100), ("a/x", 2, 15)]
        total = ledger.breakdown(w.conn, None, since="2026-11-21T00:00:00Z")
        assert total == [{"total": "total", "requests": 2, "prompt_tokens": 6,
                          "completion_tokens": 0, "cached_tokens": 0, "cache_write_tokens": 0,
                          "reasoning_tokens": 0, "cost_microdollars": 105}]
        assert len(ledger.rows(w.conn, until="2026-11-21T00:00:00Z")) == 1
    finally:
        w.close()


def test_row_tuple_follows_the_schema_order() -> None:
    e = SpendEntry("i", "t", "c", stream=True, cost_microdollars=7, error="x")
    values = ledger.values(e)
    assert len(values) == len(ledger.FIELDS)
    assert dict(zip(ledger.FIELDS, values, strict=True)) == {
        **{f: getattr(e, f) for f in ledger.FIELDS}, "stream": 1}


def test_a_damaged_log_set_aside_twice_in_one_second_keeps_both(tmp_path: Path) -> None:
    from localgate.ledger.writer import _set_aside
    db = tmp_path / "spend.db"
    asides = []
    for content in (b"first damaged copy", b"second damaged copy"):
        db.write_bytes(content)
        (tmp_path / "spend.db-wal").write_bytes(content + b" wal")
        asides.append(_set_aside(db))
    assert asides[0] != asides[1] and not db.exists()
    assert [a.read_bytes() for a in asides] == [b"first damaged copy", b"second damaged copy"]
    assert (asides[1].with_name(asides[1].name + "-wal")).read_bytes() == b"second damaged copy wal"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=-2e9, max_value=4e9, allow_nan=False), min_size=1,
                max_size=8))
def test_timestamps_match_the_clock_whatever_the_order(times: list[float]) -> None:
    # the date and time part is formatted once a second and reused: a call for another
    # second, earlier or later, must never get a stale one
    for t in times:
        ms = int(t * 1000)
        want = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + \
            f".{ms % 1000:03d}Z"
        assert ledger.utc_text(t) == want
