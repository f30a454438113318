"""Cheap detection of committed changes, so an open TUI refreshes within a second (F48).

SQLite: `PRAGMA data_version` on a dedicated connection changes whenever any other connection,
in this process or another, commits to the file; reading it costs no lock and no table scan.
Only when it moved does the watcher read the `change_counter` row, which triggers bump on every
write to a table a screen shows (whoever writes: ingest, the CLI, another TUI), so commits that
change nothing visible (the worker's heartbeat every few seconds) cause no reload. One row read
by primary key: no count, no scan, whatever the size of the tables.
PostgreSQL: writers call notify() inside their transaction (NOTIFY is delivered on commit) and
the watcher LISTENs on its own autocommit connection.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from tui_helpdesk.db.engine import Database

CHANNEL = "tui_helpdesk_changes"
FINGERPRINT = "SELECT version FROM change_counter WHERE id = 1"

log = logging.getLogger(__name__)


def notify(session: Session) -> None:
    """Announce a change to listeners; PostgreSQL delivers it when the transaction commits.

    The payload is the schema written to, so helpdesks (or test runs) sharing one database in
    different schemas do not wake each other.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, current_schema())"), {"channel": CHANNEL})


class ChangeWatcher:
    """Answers 'was anything committed since the last poll?' without reading any table."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._connection: Any = None
        self._last_version: int | None = None
        self._last_fingerprint: tuple[Any, ...] | None = None
        self._schema: str | None = None
        self.changes_seen = 0  # changes reported so far (PostgreSQL: each of our NOTIFYs)
        self._open()

    def _open(self) -> None:
        """Take a connection out of the pool for good: it must not serve anyone else."""
        pooled = self._db.engine.raw_connection()
        self._connection = pooled.driver_connection
        pooled.detach()
        if self._db.is_sqlite:
            self._last_version = self._data_version()
            self._last_fingerprint = self._fingerprint()
        else:
            self._connection.autocommit = True
            self._schema = self._connection.execute("SELECT current_schema()").fetchone()[0]
            self._connection.execute(f"LISTEN {CHANNEL}")

    def _data_version(self) -> int:
        cursor = self._connection.execute("PRAGMA data_version")
        try:
            return int(cursor.fetchone()[0])
        finally:
            cursor.close()

    def _fingerprint(self) -> tuple[Any, ...]:
        cursor = self._connection.execute(FINGERPRINT)
        try:
            return tuple(cursor.fetchone())
        finally:
            cursor.close()
            self._connection.rollback()  # end the read, so the next one sees new commits

    def poll(self) -> bool:
        """True when something was committed since the previous poll (or since creation)."""
        try:
            return self._poll_sqlite() if self._db.is_sqlite else self._poll_postgresql()
        except Exception as exc:  # a lost connection must not stop the refresh timer
            log.warning("change watcher lost its connection (%s); reconnecting", exc)
            self._reopen()
            return True

    def _poll_sqlite(self) -> bool:
        version = self._data_version()
        if version == self._last_version:
            return False
        self._last_version = version
        fingerprint = self._fingerprint()
        changed = fingerprint != self._last_fingerprint
        self._last_fingerprint = fingerprint
        self.changes_seen += changed
        return changed

    def _poll_postgresql(self) -> bool:
        ours = sum(n.payload == self._schema for n in self._connection.notifies(timeout=0))
        self.changes_seen += ours
        return ours > 0

    def _reopen(self) -> None:
        self.close()
        try:
            self._open()
        except Exception as exc:
            log.warning("change watcher could not reconnect: %s", exc)

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception as exc:
                log.debug("closing the change watcher connection failed: %s", exc)
