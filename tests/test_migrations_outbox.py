"""20261207_outbox_bodies on a database that holds queued mail (both backends): the bytes of
every job move to outbox_bodies and back, and a job queued before the upgrade is sent with
its bytes after it."""

from __future__ import annotations

from datetime import UTC, datetime

from migration_support import downgrade, settings_for
from sqlalchemy import text
from test_ingest_support import make_desk

from tui_helpdesk.db.engine import Database
from tui_helpdesk.services import mailboxes, outbox

BEFORE = "20261207_search_deferred"
BYTES = b"Subject: queued before the upgrade\r\n\r\n\x00\xff binary-safe\r\n"


def test_queued_bytes_survive_the_move_and_its_downgrade(empty_url: str) -> None:
    settings = settings_for(empty_url)
    db = Database(empty_url)
    try:
        db.migrate()
        desk = make_desk(db, settings)
        with db.write() as session:
            box = mailboxes.load(session, desk.org.admin, desk.support.email_address)
            job = outbox.enqueue(session, mailbox=box, kind="reply", mail_from=box.email_address,
                                 rcpt_to=["carol@customer.test"], raw=BYTES,
                                 not_before=datetime.now(UTC))  # fmt: skip
            session.flush()
            job_id = job.id
        downgrade(db, BEFORE)
        with db.engine.connect() as connection:
            kept = connection.execute(
                text("SELECT raw FROM outbox_jobs WHERE id = :i"), {"i": job_id}
            )
            assert bytes(kept.scalar_one()) == BYTES
        db.migrate()
        with db.write() as session:
            [claimed] = outbox.claim(session, settings, claimer="test", now=datetime.now(UTC),
                                     limit=10)  # fmt: skip
        assert (claimed.id, claimed.raw) == (job_id, BYTES)
    finally:
        db.dispose()
