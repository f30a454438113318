"""A thread worth reading for the conversation screen's tests and snapshots: quoted history, a
signature, an attachment, an internal note, our reply sent and one the server refused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from test_tui_data import NOW, Seed, actor, add_message, seed

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Conversation, Mailbox, Message, MessageAuth, OutboxJob
from tui_helpdesk.services import changes
from tui_helpdesk.services.conversations import notes, replies

QUOTED_BODY = (
    "Still broken after the restart.\n"
    "\n"
    "On Sun, 22 Nov 2026, Support wrote:\n"
    "> Have you tried turning it off and on again?\n"
    "> Regards\n"
    "\n"
    "-- \n"
    "Carol Customer\n"
    "Head of Printing, Customer Ltd"
)


@dataclass
class Thread:
    ids: Seed
    conversation_id: int
    failed_message_id: int
    attachment_message_id: int


def sendable(db: Database, ids: Seed) -> None:
    """The seed's mailboxes verified (they may send) with a signature."""
    with db.write() as session:
        session.execute(update(Mailbox).values(verified_at=NOW - timedelta(days=30)))
        support = session.get_one(Mailbox, ids.mailboxes["support"])
        support.signature_text = "{{agent_name}}\nSupport, Acme"


def job_state(db: Database, message_id: int, status: str, error: str = "") -> None:
    """What the worker's sender would record for our message's job."""
    with db.write() as session:
        session.execute(
            update(OutboxJob)
            .where(OutboxJob.message_id == message_id)
            .values(status=status, last_error=error)
        )
        changes.notify(session)


def seed_thread(db: Database, settings: Settings) -> Thread:
    ids = seed(db)
    sendable(db, ids)
    cid = ids.conversations["printer"]
    ada = actor(db, "ada@acme.test")
    with db.write() as session:
        sent = replies.reply(session, settings, ada, cid, "Have you tried turning it off and on "
                             "again?", now=NOW - timedelta(minutes=4))  # fmt: skip
    with db.write() as session:
        conversation = session.get_one(Conversation, cid)
        add_message(session, conversation, subject="Re: Printer on fire",
                    sender="carol@customer.test", name="Carol Customer",
                    at=NOW - timedelta(minutes=3), body=QUOTED_BODY)  # fmt: skip
        with_file = add_message(
            session, conversation, subject="Re: Printer on fire", sender="carol@customer.test",
            name="Carol Customer", at=NOW - timedelta(minutes=2), body="A photo of the smoke.",
            attachments=(("../../smoke\u202egnp.exe", "image/png", b"\x89PNG" * 100),),
        )  # fmt: skip
        attachment_message_id = with_file.id
    with db.write() as session:
        note = notes.write_note(session, ada, cid, "Bob: call them, the [bold]fire[/bold] is real.")
    with db.write() as session:
        failed = replies.reply(session, settings, ada, cid, "We send a technician today.",
                               now=NOW - timedelta(minutes=1))  # fmt: skip
        session.execute(
            update(Message).where(Message.id == sent.message.id)
            .values(received_at=NOW - timedelta(minutes=4), sent_at=NOW - timedelta(minutes=4))
        )  # fmt: skip
        session.execute(
            update(Message).where(Message.id == note.message.id)
            .values(received_at=NOW - timedelta(seconds=90))
        )  # fmt: skip
        session.execute(
            update(Message).where(Message.id == failed.message.id)
            .values(received_at=NOW - timedelta(minutes=1), sent_at=NOW - timedelta(minutes=1))
        )  # fmt: skip
    job_state(db, sent.message.id, "sent")
    job_state(db, failed.message.id, "failed", "550 5.1.1 <carol@customer.test>: user unknown")
    return Thread(ids, cid, failed.message.id, attachment_message_id)


def flag(db: Database, message_id: int, level: str, reason: str) -> None:
    """What the sender checks (F75) store for a message that may not be from who it says."""
    with db.write() as session:
        session.add(MessageAuth(message_id=message_id, status="done", warning=level,
                                warning_reason=reason, dmarc="fail", next_attempt_at=NOW,
                                checked_at=NOW))  # fmt: skip
        changes.notify(session)
