"""Backups and restores: SQLite through its online backup API, PostgreSQL through its own tools.

SQLite: the backup copies one consistent snapshot in a single step (one read transaction; in
WAL mode the worker keeps committing into the WAL meanwhile), so every mail acknowledged before
the backup began is in it, and it is checked with `PRAGMA integrity_check` before it gets its
name. A restore copies the backup *into* the live file with the same API, under SQLite's locks,
so open connections see the restored rows instead of a file swapped under them; it refuses
while a worker beats on the database (mail acknowledged since the backup would vanish).

PostgreSQL: pg_dump and pg_restore do this properly; we print their command lines.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import WorkerStatus
from tui_helpdesk.errors import Conflict, Invalid

# A worker beats every 5 s (worker.HEARTBEAT_SECONDS) and once when it stops: quiet this long,
# or its process gone on this host, means it is not running.
WORKER_QUIET_SECONDS = 30
BUSY_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class SqliteCopy:
    """A checked copy: where it is, its size, its schema revision and the integrity verdict."""

    path: str
    bytes: int
    revision: str | None
    integrity: str


def backup_sqlite(source: Path, target: Path) -> SqliteCopy:
    """Write a consistent copy of the live database `source` to the new file `target`."""
    if target.exists():
        raise Conflict(f"{target} already exists; give a new file name", field="path")
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))  # like the database
    try:
        with _connect(source) as live, _connect(partial) as copy:
            live.backup(copy)  # pages=-1: the whole database in one step, one snapshot
            integrity, revision = _check(copy)
        if integrity != "ok":
            raise Invalid(f"the copy failed PRAGMA integrity_check: {integrity}", field="path")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return SqliteCopy(str(target), target.stat().st_size, revision, integrity)


def inspect_backup(path: Path) -> SqliteCopy:
    """A backup's revision and integrity, read without changing it."""
    if not path.is_file():
        raise Invalid(f"{path}: no such backup file", field="path")
    try:
        with _connect(path, read_only=True) as copy:
            integrity, revision = _check(copy)
    except sqlite3.DatabaseError as error:
        raise Invalid(f"{path}: not a SQLite database ({error})", field="path") from None
    if integrity != "ok":
        raise Invalid(f"{path} failed PRAGMA integrity_check: {integrity}", field="path")
    if revision is None:
        raise Invalid(f"{path}: not a tui-helpdesk database (no schema revision)", field="path")
    return SqliteCopy(str(path), path.stat().st_size, revision, integrity)


def restore_sqlite(backup: Path, target: Path) -> SqliteCopy:
    """Copy the checked backup into the database file `target` (made when missing)."""
    if target.exists():
        _refuse_while_a_worker_runs(target)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    with _connect(backup, read_only=True) as copy, _connect(target) as live:
        copy.backup(live)
        integrity, revision = _check(live)
    if integrity != "ok":
        raise Invalid(f"the restored database fails PRAGMA integrity_check: {integrity}")
    return SqliteCopy(str(target), target.stat().st_size, revision, integrity)


def _refuse_while_a_worker_runs(target: Path) -> None:
    running = [name for name in _recent_workers(target) if _may_be_running(name)]
    if running:
        raise Conflict(
            f"worker {running[0]} is running on this database: stop every worker first "
            "(systemctl stop tui-helpdesk-worker; close TUIs that run one); mail it "
            "acknowledged after the backup would be lost",
            field="database",
        )


def _recent_workers(target: Path) -> list[str]:
    db = Database(f"sqlite:///{target}")
    since = datetime.now(UTC) - timedelta(seconds=WORKER_QUIET_SECONDS)
    try:
        with db.read() as session:
            return list(
                session.scalars(select(WorkerStatus.name).where(WorkerStatus.heartbeat_at >= since))
            )
    except SQLAlchemyError:  # no worker table (not initialised): nothing runs on it
        return []
    finally:
        db.dispose()


def _may_be_running(name: str) -> bool:
    """Workers are named worker@HOST:PID (worker.WorkerRuntime); on this host, ask the kernel."""
    host, _, pid = name.removeprefix("worker@").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine's beat is all we know
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _connect(path: Path, *, read_only: bool = False) -> Iterator[sqlite3.Connection]:
    uri = path.absolute().as_uri() + ("?mode=ro" if read_only else "")
    connection = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        yield connection
    finally:
        connection.close()


def _check(connection: sqlite3.Connection) -> tuple[str, str | None]:
    rows = connection.execute("PRAGMA integrity_check").fetchall()
    integrity = "; ".join(str(row[0]) for row in rows)
    try:
        found = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        found = None
    return integrity, found[0] if found else None


def libpq_url(url: str) -> tuple[str, str | None]:
    """The URL for pg_dump/pg_restore (no driver, no password) and its search_path schema."""
    parsed = make_url(url)
    schema = None
    for option in str(parsed.query.get("options", "")).split():
        if option.startswith("-csearch_path="):
            schema = option.removeprefix("-csearch_path=").split(",")[0]
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), schema
