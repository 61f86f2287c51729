"""The daemon's spend-log writer: the event loop only enqueues; one thread commits.

Nothing accepted is lost without a word: a row SQLite refuses is made storable and written
alone (one bad row never takes its batch with it); when the disk is full or the file cannot be
written, rows wait in memory (bounded) and are retried every second, `/health`, `status` and
the tray say so, and once the backlog reaches its bound the gateway refuses new requests
rather than spend blind. A damaged spend.db is set aside (renamed, never deleted) and a new
one started.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from localgate import ledger

log = logging.getLogger("localgate")
GROUP_COMMIT_S = 0.005
RETRY_S = 1.0
MAX_PENDING = 10_000   # rows kept in memory while the log cannot be written
_DISK = ("disk is full", "disk i/o error", "readonly", "read-only", "unable to open",
         "no such table", "locked")


class LedgerWriter:
    """`write()` enqueues and returns at once; a thread commits in batches.

    A row is written when a request is accepted and rewritten when it ends (same id, so a
    request is never counted twice)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn: sqlite3.Connection | None = None
        self.set_aside: Path | None = None
        self.error: str | None = None
        self._pending: dict[str, tuple[Any, ...]] = {}
        self.dropped = 0
        self._open()
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="localgate-ledger", daemon=True)
        self._thread.start()

    # ---- called from the loop ----------------------------------------------------------------
    def write(self, entry: ledger.SpendEntry) -> None:
        """Queue a row (a snapshot the caller no longer changes); never blocks."""
        self._q.put(entry)

    def accepting(self) -> bool:
        """False once the rows waiting for the disk (those the writer holds and those still
        queued for it) reach their bound."""
        return len(self._pending) + self._q.qsize() < MAX_PENDING

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.error is None, "unwritten": len(self._pending)}
        if self.error is not None:
            out["error"] = self.error
        if self.set_aside is not None:
            out["set_aside"] = str(self.set_aside)
        return out

    def flush(self, timeout: float = 5.0) -> bool:
        done = threading.Event()
        self._q.put(done)
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self._q.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("spend log writer did not stop in %.0f s", timeout)
            return
        if self._pending:
            log.error("%d spend rows could not be written to %s (%s)", len(self._pending),
                      self.path, self.error)
        if self.conn is not None:
            self.conn.close()

    # ---- the writer thread -------------------------------------------------------------------
    def _open(self) -> bool:
        try:
            self.conn = ledger.connect(self.path)
            self.conn.execute("select count(*) from spend where rowid = 1").fetchone()
        except sqlite3.DatabaseError as exc:
            self._close_conn()
            if _is_disk(exc):
                self._fail(exc)
                return False
            self.set_aside = _set_aside(self.path)
            log.error("the spend log %s is damaged (%s): set aside as %s; a new one is "
                      "started", self.path, exc, self.set_aside)
            try:
                self.conn = ledger.connect(self.path)
            except (sqlite3.DatabaseError, OSError) as exc2:
                self._close_conn()
                self._fail(exc2)
                return False
        except OSError as exc:
            self._close_conn()
            self._fail(exc)
            return False
        return True

    def _close_conn(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except sqlite3.Error:
                pass
            self.conn = None

    def _run(self) -> None:
        while True:
            try:
                item = self._q.get(timeout=RETRY_S) if self._pending else self._q.get()
            except queue.Empty:
                item = ...  # time to retry what waits
            events, stop = [], False
            n = 0
            while True:
                if item is None:
                    stop = True
                elif isinstance(item, threading.Event):
                    events.append(item)
                elif item is not ...:
                    row = ledger.values(item)
                    self._pending[row[0]] = row  # the final row of a request replaces its first
                    n += 1
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
            self._bound()
            if self._pending:
                self._write_pending()
            for ev in events:
                ev.set()
            if stop:
                return
            if n:
                # group commit: the first row after a quiet spell is written at once; under
                # load, rows gather for a few ms so the thread takes the GIL less often
                time.sleep(GROUP_COMMIT_S)

    def _bound(self) -> None:
        # the gateway refuses new requests at MAX_PENDING; only rows of requests already in
        # flight then can add to it, so this last resort (memory stays bounded) never drops
        # a row in practice
        over = len(self._pending) - 2 * MAX_PENDING
        if over > 0:
            for key in list(self._pending)[:over]:
                del self._pending[key]
            self.dropped += over
            log.error("spend log: %d rows dropped (%d waiting for the disk)", over,
                      len(self._pending))

    def _write_pending(self) -> None:
        if self.conn is None and not self._open():
            return
        rows = list(self._pending.values())
        try:
            self._commit(rows)
        except sqlite3.Error as exc:
            if _is_disk(exc):
                self._fail(exc)
                return
            for row in rows:  # one bad row must not take the others with it
                self._commit_alone(row)
        else:
            self._pending.clear()
        if self.error is not None and not self._pending:
            log.warning("spend log writable again: every waiting row is written")
            self.error = None

    def _commit(self, rows: list[tuple[Any, ...]]) -> None:
        assert self.conn is not None
        try:
            self.conn.execute("begin")
            self.conn.executemany(ledger.INSERT, rows)
            self.conn.execute("commit")
        except BaseException:
            try:
                self.conn.execute("rollback")
            except sqlite3.Error:
                pass
            raise

    def _commit_alone(self, row: tuple[Any, ...]) -> None:
        for attempt in (row, ledger.storable(row)):
            try:
                self._commit([attempt])
            except (sqlite3.Error, ValueError, OverflowError) as exc:
                if isinstance(exc, sqlite3.Error) and _is_disk(exc):
                    self._fail(exc)
                    return
                continue
            self._pending.pop(row[0], None)
            return
        log.error("spend log: row %s could not be stored and is dropped", row[0])
        self._pending.pop(row[0], None)
        self.dropped += 1

    def _fail(self, exc: BaseException) -> None:
        text = f"cannot write {self.path}: {exc}"
        if text != self.error:
            log.error("spend log: %s; %d rows wait in memory and are retried every %g s",
                      text, len(self._pending), RETRY_S)
        self.error = text
        if isinstance(exc, sqlite3.DatabaseError):
            self._close_conn()  # reopen on the next try: the file may be back


def _is_disk(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and any(s in text for s in _DISK)


def _set_aside(path: Path) -> Path:
    """Rename a damaged spend.db (and its -wal/-shm) out of the way; nothing is deleted."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while target.exists():  # never over an earlier copy, even one set aside this second
        n += 1
        target = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    for suffix in ("", "-wal", "-shm"):
        src = path.with_name(path.name + suffix)
        if src.exists():
            os.replace(src, target.with_name(target.name + suffix))
    return target
