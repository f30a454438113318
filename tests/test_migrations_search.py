"""The search and list migrations on a database that already holds mail (both backends):
mail stored before the upgrade is found after it; downgrading and upgrading again works."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from migration_support import downgrade, settings_for
from sqlalchemy import text
from test_ingest_support import build_mail, deliver, make_desk

from tui_helpdesk.db.engine import Database
from tui_helpdesk.services.search.results import search

BEFORE = "20261130_lists"


def _subjects(db: Database, desk, query: str) -> list[str]:  # type: ignore[no-untyped-def]
    with db.read() as session:
        page = search(session, desk.org.admin, query)
    return sorted(hit.conversation.subject for hit in page.hits)


def test_mail_stored_before_the_upgrade_is_found_after_it(empty_url: str) -> None:
    settings = settings_for(empty_url)
    db = Database(empty_url)
    try:
        # The services write the head's schema: the mail is stored there, then the database
        # goes back to the revision before the index (dropping it) and up again.
        db.migrate()
        desk = make_desk(db, settings)
        for subject in ("Printer on fire", "Invoice overdue", "Printer paper"):
            deliver(db, settings, build_mail(subject=subject, body=f"About {subject}.\r\n"),
                    desk.support.alias)  # fmt: skip
        downgrade(db, BEFORE)  # the previous revision: no full-text index
        db.migrate()  # to head: the index is built from the stored rows
        assert _subjects(db, desk, "printer") == ["Printer on fire", "Printer paper"]
        assert _subjects(db, desk, '"invoice overdue" from:carol') == ["Invoice overdue"]
        deliver(db, settings, build_mail(subject="Printer again"), desk.support.alias)
        assert len(_subjects(db, desk, "printer")) == 3
    finally:
        db.dispose()


@contextlib.contextmanager
def _down_and_up(empty_url: str, subject: str, revision: str) -> Iterator[tuple[Database, Any]]:
    """One mail stored at head, the schema taken down to `revision` and up again."""
    settings = settings_for(empty_url)
    db = Database(empty_url)
    try:
        db.migrate()
        desk = make_desk(db, settings)
        deliver(db, settings, build_mail(subject=subject), desk.support.alias)
        downgrade(db, revision)
        db.migrate()
        yield db, desk
    finally:
        db.dispose()


def test_downgrade_and_upgrade_again(empty_url: str) -> None:
    with _down_and_up(empty_url, "Kept through it all", "20261122_0001") as (db, desk):
        assert _subjects(db, desk, "kept") == ["Kept through it all"]


def test_vectors_survive_the_move_to_filling_them_after_the_commit(empty_url: str) -> None:
    """PostgreSQL: 20261207_search_deferred keeps the generated column's values (DROP
    EXPRESSION) and its downgrade computes them again; SQLite is unchanged by it."""
    # down to the revision before it: the column generated again, filled
    with _down_and_up(empty_url, "Printer on fire", "20261206_worker_recent") as (db, desk):
        if db.engine.dialect.name == "postgresql":
            with db.read() as session:
                empty = session.scalar(text("SELECT count(*) FROM messages WHERE search IS NULL"))
            assert empty == 0
        assert _subjects(db, desk, "printer") == ["Printer on fire"]
