"""Upgrades and backups: schema checks at every start, db upgrade, online backup and restore."""

from __future__ import annotations

import json
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text
from test_cli import ADA, Cli
from test_ingest_support import build_mail, make_desk, send, start_worker_process

from tui_helpdesk.db.engine import Database, alembic_config
from tui_helpdesk.db.models import Message
from tui_helpdesk.db.schema import schema_status

FIRST = "20261122_0001"


@pytest.fixture
def db(db: Database) -> Iterator[Database]:
    """The test's database, put back at head afterwards (PostgreSQL's schema is shared)."""
    yield db
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :v WHERE version_num "
                                "LIKE '2999%'"), {"v": schema_status(db).head})  # fmt: skip
    db.migrate()


def _set_revision(db: Database, revision: str) -> None:
    """Down to an older schema with Alembic, or pretend a newer version upgraded it."""
    if revision == FIRST:
        config = alembic_config()
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, FIRST)
        return
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})


def test_an_older_schema_says_run_db_upgrade_and_upgrade_does_it(db: Database, db_url: str) -> None:
    run = Cli(db_url)
    head = run.json("db", "status")["head"]
    _set_revision(db, FIRST)
    status = run.json("db", "status")
    assert (status["revision"], status["state"]) == (FIRST, "older")
    for args in (["mailbox", "list", *ADA], ["--no-worker", *ADA], ["worker"]):
        refused = run(*args, code=2)
        assert "run `tui-helpdesk db upgrade`" in refused.stderr, args
    upgraded = run("db", "upgrade").stdout
    assert f"Schema upgraded from {FIRST} to {head}" in upgraded
    assert "nothing to do" in run("db", "upgrade").stdout
    assert run.json("db", "status")["state"] == "current"


def test_a_newer_schema_is_refused_everywhere(db: Database, db_url: str) -> None:
    run = Cli(db_url)
    _set_revision(db, "29990101_from_the_future")
    for args in (["mailbox", "list", *ADA], ["--no-worker", *ADA], ["worker"], ["db", "upgrade"],
                 ["init"]):  # fmt: skip
        refused = run(*args, code=2)
        assert "which this version does not know" in refused.stderr, args
    assert run.json("db", "status")["state"] == "newer"


def test_a_worker_process_meeting_an_older_schema_exits_non_zero(db: Database, db_url: str) -> None:
    _set_revision(db, FIRST)
    env = {"TUI_HELPDESK_DATABASE_URL": db_url, "TUI_HELPDESK_SMTP_PORT": "0", "PATH": "/usr/bin"}
    done = subprocess.run([sys.executable, "-m", "tui_helpdesk", "worker"], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "run `tui-helpdesk db upgrade`" in done.stderr


class Sender(threading.Thread):
    """Sends mail in a loop; remembers which Message-IDs got their 250 and when."""

    def __init__(self, address: tuple[str, int], alias: str) -> None:
        super().__init__(daemon=True)
        self.address, self.alias = address, alias
        self.acknowledged: list[str] = []
        self.stop = threading.Event()
        self.enough = threading.Event()

    def run(self) -> None:
        number = 0
        while not self.stop.is_set():
            number += 1
            message_id = f"<backup-{number}@customer.test>"
            raw = build_mail(subject=f"Mail {number}", message_id=message_id)
            if send(*self.address, raw, [self.alias])[0] == 250:
                self.acknowledged.append(message_id)
            if len(self.acknowledged) >= 20:
                self.enough.set()


def _stored_ids(connection: sqlite3.Connection) -> set[str]:
    return {row[0] for row in connection.execute("SELECT message_id_header FROM messages")}


def test_online_backup_while_the_worker_receives_then_restore(
    db,
    settings,
    db_url,
    backend,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    desk = make_desk(db, settings)
    run = Cli(db_url)
    worker, address = start_worker_process(db_url)
    sender = Sender(address, desk.support.alias)
    sender.start()
    try:
        assert sender.enough.wait(60)
        before = list(sender.acknowledged)  # every one of these was committed: 250 after commit
        backup = tmp_path / "backup.sqlite3"
        result = run.json("db", "backup", str(backup))
        while len(sender.acknowledged) < len(before) + 10:  # the worker kept receiving
            assert sender.is_alive()
            sender.join(0.05)
        sender.stop.set()
        sender.join(60)
        if backend == "postgresql":
            _check_pg_dump(result, tmp_path, before)
            return
        assert result["integrity"] == "ok" and result["revision"]
        assert oct(backup.stat().st_mode & 0o777) == "0o600"
        with sqlite3.connect(backup) as copy:
            assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert set(before) <= _stored_ids(copy)
            in_backup = _stored_ids(copy)
        refused = run.json("db", "restore", str(backup), "--yes", code=4)
        assert "stop every worker first" in refused["message"]
    finally:
        sender.stop.set()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert run.json("db", "restore", str(backup), code=2)["field"] == "yes"  # asks first
    restored = run.json("db", "restore", str(backup), "--yes")
    assert restored["integrity"] == "ok" and restored["next"] == "start the workers again"
    with db.read() as session:
        assert set(session.scalars(select(Message.message_id_header))) == in_backup
    assert len(in_backup) < len(sender.acknowledged)  # what came after the backup is gone


def _check_pg_dump(result: dict, tmp_path: Path, before: list[str]) -> None:  # type: ignore[type-arg]
    """PostgreSQL: the printed pg_dump line names no password and makes a dump holding it all."""
    assert result["backend"] == "postgresql"
    words = shlex.split(result["command"])
    assert words[:2] == ["pg_dump", "--format=custom"] and "+psycopg" not in result["command"]
    subprocess.run(words, check=True, timeout=120)
    dump = Path(words[2].removeprefix("--file="))
    restore = ["pg_restore", "--data-only", "--table=messages", "-f", "-", str(dump)]
    listing = subprocess.run(restore, capture_output=True, text=True, check=True).stdout
    assert all(message_id in listing for message_id in before)


def test_restore_refuses_what_is_not_a_good_backup(
    db: Database, db_url: str, backend: str, tmp_path: Path
) -> None:
    run = Cli(db_url)
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"not a database" * 100)
    if backend == "postgresql":
        line = run.json("db", "restore", str(garbage))["command"]
        assert line.startswith("pg_restore --clean --if-exists") and str(garbage) in line
        return
    assert "not a SQLite database" in run("db", "restore", str(garbage), "--yes", code=2).stderr
    future = tmp_path / "future.sqlite3"
    run("db", "backup", str(future))
    run("db", "backup", str(future), code=4)  # never overwrites
    with sqlite3.connect(future) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '29990101_future'")
    connection.close()
    assert "does not know" in run("db", "restore", str(future), "--yes", code=2).stderr


@pytest.mark.parametrize("args", [["db", "upgrade"], ["db", "backup", "x.sqlite3"]])
def test_db_commands_need_an_existing_sqlite_file(tmp_path: Path, args: list[str]) -> None:
    run = Cli(f"sqlite:///{tmp_path / 'nothing.sqlite3'}")
    assert "run `tui-helpdesk init`" in run(*args, code=2).stderr
    assert not (tmp_path / "nothing.sqlite3").exists()


def test_init_still_creates_and_is_idempotent(tmp_path: Path) -> None:
    run = Cli(f"sqlite:///{tmp_path / 'new.sqlite3'}")
    assert run.json("init")["migrated"] is True
    assert json.loads(run("db", "status", "--json").stdout)["state"] == "current"
    run("init")


def test_init_writes_the_start_up_cache_of_whom_it_acts_as(tmp_path: Path) -> None:
    """`make run` runs `init --demo --as ada@acme.test`, then the TUI as Ada: its first start
    draws her rows from the cache that init wrote (no earlier start needed)."""
    from tui_helpdesk import start_cache
    from tui_helpdesk.tui import quick_start

    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    Cli(url)("init", "--demo", "--as", "ada@acme.test")
    found = quick_start.read(start_cache.default_directory(), url, ("email", "ada@acme.test"),
                             page_size=50)  # fmt: skip
    assert found is not None and found.actor.email == "ada@acme.test" and found.rows
