"""PostgreSQL's search vectors, filled after the commit (migration 20261207_search_deferred):
new rows wait with none and are found meanwhile; the indexer fills exactly the vector the
generated column held; an edit of a searched column empties it again; a burst is waited out."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import literal_column, select, text, update
from test_ingest_support import Desk, build_mail, deliver, make_desk, only_conversation

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Message
from tui_helpdesk.services.search import indexer
from tui_helpdesk.services.search.fulltext import pg_vector
from tui_helpdesk.services.search.results import search
from tui_helpdesk.worker.search_indexer import SearchIndexer

# SQLite has no indexer: its FTS5 index is kept by triggers in the same transaction
# (tests/test_search.py covers it).
pytestmark = pytest.mark.postgresql_only


@pytest.fixture
def desk(db: Database, settings: Settings) -> Desk:
    return make_desk(db, settings)


def _vectors(db: Database) -> dict[int, tuple[str | None, str]]:
    """Each message's stored vector, and the one computed from its columns now."""
    with db.read() as session:
        computed = literal_column(f"({pg_vector('messages')})::text")
        rows = session.execute(select(Message.id, literal_column("search::text"), computed)).all()
    return {row[0]: (row[1], row[2]) for row in rows}


def _subjects(db: Database, desk: Desk, query: str) -> list[str]:
    with db.read() as session:
        return sorted(h.conversation.subject for h in search(session, desk.org.admin, query).hits)


def test_new_mail_is_found_before_and_after_its_vector_is_filled(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    for subject in ("Printer on fire", "Invoice overdue"):
        deliver(db, settings, build_mail(subject=subject, body="Smoke, toner.\r\n"),
                desk.support.alias)  # fmt: skip
    assert all(stored is None for stored, _ in _vectors(db).values())
    assert _subjects(db, desk, "printer") == ["Printer on fire"]
    assert _subjects(db, desk, "toner -invoice") == ["Printer on fire"]
    assert _subjects(db, desk, "from:carol toner") == ["Invoice overdue", "Printer on fire"]

    indexing = SearchIndexer(settings)
    try:
        assert indexing.run_once(yielding=False) == 2
        assert indexing.run_once(yielding=False) == 0
    finally:
        indexing.stop(1)
        assert indexing.db is not None
        indexing.db.dispose()
    assert all(stored == computed for stored, computed in _vectors(db).values())
    assert _subjects(db, desk, "printer") == ["Printer on fire"]
    assert _subjects(db, desk, "toner -invoice") == ["Printer on fire"]


def test_an_edit_of_a_searched_column_empties_the_vector_and_no_other_does(
    db, settings, desk
) -> None:  # type: ignore[no-untyped-def]
    conversation = only_conversation(deliver(db, settings, build_mail(subject="Paper jam"),
                                             desk.support.alias))  # fmt: skip
    with db.write() as session:
        assert indexer.index_pending(session) == 1
        session.execute(update(Message).values(processing_error="noted"))
    assert all(stored is not None for stored, _ in _vectors(db).values())
    with db.write() as session:
        session.execute(update(Message).where(Message.conversation_id == conversation)
                        .values(subject="Paper stuck"))  # fmt: skip
    assert all(stored is None for stored, _ in _vectors(db).values())
    assert _subjects(db, desk, "stuck") == ["Paper jam"]  # the conversation keeps its subject
    with db.write() as session:
        assert indexer.index_pending(session) == 1
    assert all(stored == computed for stored, computed in _vectors(db).values())


def test_a_burst_is_waited_out_unless_a_row_waited_too_long(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    deliver(db, settings, build_mail(subject="Just now"), desk.support.alias)
    with db.read() as session:
        now = session.scalars(select(Message.received_at)).one()  # the test's clock
    with db.read() as session:
        assert indexer.mail_arriving(session, now, quiet=2, longest=30)
        assert not indexer.mail_arriving(session, now + timedelta(seconds=3), quiet=2, longest=30)
        assert not indexer.mail_arriving(session, now + timedelta(seconds=1), quiet=2, longest=0.5)
    with db.write() as session:
        indexer.index_pending(session)
    with db.read() as session:
        assert not indexer.mail_arriving(session, now, quiet=2, longest=30)


def test_the_workers_indexer_fills_vectors_on_its_own(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    deliver(db, settings, build_mail(subject="Left alone"), desk.support.alias)
    later = datetime.now(UTC) + timedelta(minutes=1)  # the burst is over
    indexing = SearchIndexer(settings, clock=lambda: later)
    indexing.start()
    try:
        deadline = time.monotonic() + 10
        while indexing.indexed < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        indexing.stop(5)
    assert indexing.indexed == 1
    with db.read() as session:
        left = session.scalar(text("SELECT count(*) FROM messages WHERE search IS NULL"))
    assert left == 0
