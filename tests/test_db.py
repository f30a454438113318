"""The schema exists only through migrations; both backends get the pragmas and types right."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import inspect, select, text

from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Base, Organisation


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
