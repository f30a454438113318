"""PostgreSQL: the search vectors of messages stored since the last run, filled after the commit.

Ingest and sending insert messages with `search` NULL (migration 20261207_search_deferred):
computing the vector was most of PostgreSQL's work per stored mail, and the SMTP 250 waited
for it. The worker's indexer (worker/search_indexer.py) calls `index_pending` in batches,
outside any mail's transaction; several workers share the work (FOR UPDATE SKIP LOCKED).
Search does not wait for it: a row without a vector is matched by the vector computed on the
fly (fulltext.py). SQLite needs none of this: its FTS5 index is kept by triggers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import literal_column, select, text
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Message
from tui_helpdesk.services.search.fulltext import pg_vector

BATCH = 500  # rows per UPDATE: a short transaction, a few hundred ms of 50 KB bodies at most

_INDEX = text(
    f"UPDATE messages SET search = {pg_vector('messages')} WHERE id IN ("
    "SELECT id FROM messages WHERE search IS NULL ORDER BY id LIMIT :limit "
    "FOR UPDATE SKIP LOCKED)"
)


def used(session: Session) -> bool:
    """Whether this database fills vectors after the commit (PostgreSQL) at all."""
    return session.get_bind().dialect.name == "postgresql"


def mail_arriving(session: Session, now: datetime, *, quiet: float, longest: float) -> bool:
    """Rows wait (the newest stored less than `quiet` seconds ago) and none has waited
    `longest` seconds yet: an indexer that yields to ingest waits for the burst's end."""
    # The first and last waiting row by id, two probes of the partial index however many wait
    # (ids follow arrival closely enough for "is a burst on").
    waiting = select(Message.received_at).where(
        literal_column("messages.search").is_(None)  # not mapped: see the migration
    )
    newest = session.scalar(waiting.order_by(Message.id.desc()).limit(1))
    oldest = session.scalar(waiting.order_by(Message.id).limit(1))
    if newest is None or oldest is None:
        return False
    return bool(
        newest > now - timedelta(seconds=quiet) and oldest > now - timedelta(seconds=longest)
    )


def index_pending(session: Session, limit: int = BATCH) -> int:
    """Fill the vectors of up to `limit` messages that have none (oldest first); how many."""
    if not used(session):
        return 0
    # A vector is derived data: a commit lost to a server crash only leaves its rows NULL,
    # to be filled again. So this transaction does not wait for the WAL flush.
    session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    return session.execute(_INDEX, {"limit": limit}).rowcount  # type: ignore[attr-defined]
