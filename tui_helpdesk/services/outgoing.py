"""Our own mail in a conversation (F43, F45, F19): the message stored in the thread and the
outbox job that sends it, made together in the caller's transaction.

The message is stored as ours (direction outbound) with the Message-ID fixed here, so a
customer's answer threads to it (In-Reply-To / References against every stored Message-ID,
services/threading.py) whatever becomes of the job; its recipients become participants of
the conversation. Replies, forwards, new mail, auto-replies and close notices all come here;
verification codes and binding tests belong to no conversation and go straight to the outbox.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from sqlalchemy.orm import Session

from tui_helpdesk.db.engine import dialect_insert
from tui_helpdesk.db.models import (
    Conversation,
    ConversationParticipant,
    Mailbox,
    Message,
    OutboxJob,
)
from tui_helpdesk.mail.addresses import clean_line
from tui_helpdesk.mail.compose import Draft, Person, compose, new_message_id
from tui_helpdesk.services import outbox


@dataclass(frozen=True)
class Sent:
    message: Message
    job: OutboxJob


def listed(people: tuple[Person, ...]) -> str:
    """How a message row lists its recipients (as ingest lists those of inbound mail)."""
    return ", ".join(f"{clean_line(p.name, 255)} <{p.address}>" if p.name else p.address
                     for p in people)  # fmt: skip


def send_in_conversation(
    session: Session,
    *,
    mailbox: Mailbox,
    conversation: Conversation,
    draft: Draft,
    kind: str,
    job_kind: str,
    now: datetime,
    not_before: datetime | None = None,
    touch: bool = True,
) -> Sent:
    """Compose `draft`, store it as our message of kind `kind` and queue it (job_kind).

    touch=False leaves the conversation's last activity alone (a close notice: closing must
    not move the conversation up the lists nor make it unread for everyone)."""
    message_id = new_message_id(mailbox.email_address.rpartition("@")[2])
    raw = compose(draft, message_id=message_id, now=now)
    recipients = [p.address for p in (*draft.to, *draft.cc)]
    message = Message(
        conversation_id=conversation.id, mailbox_id=mailbox.id, direction="outbound",
        kind=kind, message_id_header=message_id, in_reply_to=draft.in_reply_to,
        references=" ".join(draft.references), subject=clean_line(draft.subject, 998),
        from_address=draft.sender.address, from_name=clean_line(draft.sender.name, 255),
        to_addresses=listed(draft.to), cc_addresses=listed(draft.cc),
        envelope_from=mailbox.email_address, envelope_to=", ".join(recipients),
        date_header=format_datetime(now), received_at=now, text_body=draft.text,
        html_body=draft.html, raw=raw, raw_sha256=hashlib.sha256(raw).hexdigest(),
        raw_size=len(raw), auto_submitted=draft.auto_submitted, defects=[],
    )  # fmt: skip
    session.add(message)
    conversation.message_count = (conversation.message_count or 0) + 1
    if touch and (conversation.last_message_at is None or conversation.last_message_at < now):
        conversation.last_message_at = now
    session.flush()
    _add_participants(session, conversation.id, recipients)
    job = outbox.enqueue(
        session, mailbox=mailbox, kind=job_kind, mail_from=mailbox.email_address,
        rcpt_to=recipients, raw=raw, not_before=not_before or now,
        conversation_id=conversation.id, message_id=message.id,
    )  # fmt: skip
    session.flush()
    return Sent(message, job)


def _add_participants(session: Session, conversation_id: int, addresses: list[str]) -> None:
    """Whom we wrote to may answer into the thread (F41); known ones stay as they are (an
    INSERT that ignores conflicts: ingest may add the same address at the same moment)."""
    rows = [
        {"conversation_id": conversation_id, "email": a}
        for a in sorted({a.lower() for a in addresses})
    ]
    if rows:
        insert = dialect_insert(session.get_bind().dialect.name)
        session.execute(insert(ConversationParticipant).on_conflict_do_nothing(), rows)
