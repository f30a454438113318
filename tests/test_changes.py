"""ChangeWatcher sees commits from other connections and other processes, on both backends."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text
from test_tui_data import seed

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Conversation, Organisation
from tui_helpdesk.services import changes
from tui_helpdesk.worker.runtime import WorkerRuntime

WRITER = textwrap.dedent(
    """
    import sys
    from tui_helpdesk.db.engine import Database
    from tui_helpdesk.db.models import Conversation
    from tui_helpdesk.services import changes

    db = Database(sys.argv[1])
    with db.write() as session:
        session.add(Conversation(organisation_id=int(sys.argv[2]), subject="from elsewhere"))
        changes.notify(session)
    db.dispose()
    """
)


def _write(db: Database, org_id: int, subject: str) -> None:
    with db.write() as session:
        session.add(Conversation(organisation_id=org_id, subject=subject))
        changes.notify(session)


def _poll_until(watcher: changes.ChangeWatcher, seconds: float = 30.0) -> bool:
    """NOTIFY reaches the listener asynchronously; SQLite answers at once."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if watcher.poll():
            return True
        time.sleep(0.01)
    return False


def test_nothing_changed_means_false(db: Database) -> None:
    seed(db)
    watcher = changes.ChangeWatcher(db)
    try:
        assert watcher.poll() is False
        with db.read() as session:
            session.get(Conversation, 1)
        assert watcher.poll() is False
    finally:
        watcher.close()


def test_a_commit_on_another_connection_is_seen_once(db: Database) -> None:
    ids = seed(db)
    watcher = changes.ChangeWatcher(db)
    try:
        _write(db, ids.org, "new")
        assert _poll_until(watcher)
        assert watcher.poll() is False and watcher.changes_seen == 1
    finally:
        watcher.close()


def test_a_rolled_back_write_is_not_a_change(db: Database) -> None:
    ids = seed(db)
    watcher = changes.ChangeWatcher(db)
    try:
        try:
            with db.write() as session:
                session.add(Conversation(organisation_id=ids.org, subject="never"))
                changes.notify(session)
                session.flush()
                raise RuntimeError("abort")
        except RuntimeError:
            pass
        # Then a real change: NOTIFYs arrive in commit order, so once this one is seen,
        # anything the rolled-back write had sent would have been seen (and counted) too.
        _write(db, ids.org, "real")
        assert _poll_until(watcher)
        assert watcher.changes_seen == 1
    finally:
        watcher.close()


def test_a_commit_by_another_process_is_seen(db: Database, db_url: str) -> None:
    ids = seed(db)
    watcher = changes.ChangeWatcher(db)
    try:
        subprocess.run([sys.executable, "-c", WRITER, db.url, str(ids.org)], check=True)
        assert _poll_until(watcher)
    finally:
        watcher.close()


def test_a_poll_with_nothing_new_reads_no_table(db: Database) -> None:
    """What keeps polling cheap whatever the size of the tables: SQLite reads one pragma,
    PostgreSQL only the notifications already on its connection (no statement at all)."""
    seed(db)
    watcher = changes.ChangeWatcher(db)
    statements: list[str] = []
    try:
        connection = watcher._connection
        if db.is_sqlite:
            connection.set_trace_callback(statements.append)
        else:
            real = connection.execute
            connection.execute = lambda *a, **k: statements.append(a[0]) or real(*a, **k)
        for _ in range(100):
            assert watcher.poll() is False
        assert set(statements) <= {"PRAGMA data_version"}
        assert len(statements) == (100 if db.is_sqlite else 0)
    finally:
        watcher.close()


def test_a_lost_connection_reconnects_and_reports_a_change(db: Database) -> None:
    ids = seed(db)
    watcher = changes.ChangeWatcher(db)
    try:
        watcher._connection.close()  # the server or the file went away under us
        assert watcher.poll() is True
        _write(db, ids.org, "after reconnect")
        assert _poll_until(watcher)
    finally:
        watcher.close()


def test_changes_to_another_helpdesk_are_ignored(
    db: Database, backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Another SQLite file, or another schema of the same PostgreSQL database."""
    seed(db)
    watcher = changes.ChangeWatcher(db)
    try:
        if backend == "sqlite":
            other_path = tmp_path / "other.sqlite3"
            shutil.copyfile(request.getfixturevalue("sqlite_template"), other_path)
            other = Database(f"sqlite:///{other_path}")
            with other.write() as session:
                session.add(Organisation(name="Other"))
            other.dispose()
        else:
            with db.engine.begin() as conn:
                conn.execute(text("SELECT pg_notify(:c, 'another_schema')"), {"c": changes.CHANNEL})
        _write(db, _org_id(db), "ours")  # arrives after the other one (commit order)
        assert _poll_until(watcher)
        assert watcher.changes_seen == 1
    finally:
        watcher.close()


def test_the_worker_heartbeat_is_not_a_change(db: Database, settings: Settings) -> None:
    """The worker's heartbeat commits every few seconds; open inboxes must not reload for it."""
    seed(db)
    watcher = changes.ChangeWatcher(db)
    try:
        WorkerRuntime(settings, db).beat()  # the real heartbeat, as the worker writes it
        assert watcher.poll() is False
        _write(db, _org_id(db), "real news")
        assert _poll_until(watcher) is True
        assert watcher.changes_seen == 1  # the heartbeat sent no NOTIFY before it
    finally:
        watcher.close()


def _org_id(db: Database) -> int:
    with db.read() as session:
        return session.scalars(select(Organisation.id)).first()
