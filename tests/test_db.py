"""The schema exists only through migrations; both backends get the pragmas and types right."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import inspect, select, text

from tui_helpdesk.db.engine import Database, alembic_config
from tui_helpdesk.db.models import Base, Organisation
from tui_helpdesk.db.revisions import head_revision, known_revisions


def test_migrations_create_every_model_table(db: Database) -> None:
    tables = set(inspect(db.engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    assert "alembic_version" in tables


def test_migrate_is_idempotent(db: Database) -> None:
    db.migrate()
    db.migrate()
    with db.read() as session:
        version = session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version.startswith("2026")


def test_the_head_read_from_the_files_is_alembics_head(db: Database) -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    assert head_revision() == script.get_current_head()
    assert known_revisions() == {r.revision: r.down_revision for r in script.walk_revisions()}
    assert db.schema_revision() == head_revision()


def test_a_database_never_migrated_has_no_revision(tmp_path) -> None:  # type: ignore[no-untyped-def]
    empty = Database(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    try:
        assert empty.schema_revision() is None
    finally:
        empty.dispose()


def test_sqlite_pragmas(db: Database, backend: str) -> None:
    if backend != "sqlite":
        assert db.engine.dialect.name == "postgresql"
        return
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_datetimes_come_back_aware_utc(db: Database) -> None:
    when = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    with db.write() as session:
        session.add(Organisation(name="Acme", created_at=when, updated_at=when))
    with db.read() as session:
        org = session.scalars(select(Organisation)).one()
    assert org.created_at == when
    assert org.created_at.tzinfo is not None
