"""Automatic replies without loops (F19, F33, F72, RFC 3834).

An inbound message may get one automatic answer: the mailbox's autoresponder when it is
enabled and `now` is inside one of its windows (mailbox timezone; no windows = always), else
the queue's outside-hours message when the queue is closed. It is never sent when the global
switch is off, when the message looks automated (Auto-Submitted other than "no", Precedence
bulk/list/junk, List-* headers, a bounce, MAILER-DAEMON-like or no-reply senders, an empty
return path), when it is our own mail (one of our mailbox addresses or aliases, the platform
domain, or our loop header), or when this sender already got one from this mailbox within
settings.mail.autoreply_period_hours (0 = no limit). Answering every inbound message, not only
new conversations, is deliberate: the period limit keeps it to one per sender, and a holiday
notice must reach someone who writes into an open conversation too.

The reply goes to the envelope sender (the Return-Path, RFC 3834 section 4), carries
Auto-Submitted: auto-replied and our loop header, and is stored as an outbound Message of the
conversation plus a queued OutboxJob (sending is the outbox's job) and an AutoReplyLog row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import dialect_insert
from tui_helpdesk.db.models import (
    AutoReplyClaim,
    AutoReplyLog,
    Autoresponder,
    Conversation,
    Mailbox,
    Message,
    Organisation,
    OutboxJob,
    Queue,
)
from tui_helpdesk.errors import Invalid
from tui_helpdesk.mail.addresses import clean_line, parse_address
from tui_helpdesk.mail.compose import (
    AUTO_REPLIED,
    MAX_QUOTED_SUBJECT,
    MAX_SUBJECT,
    Draft,
    Person,
    body_parts,
    fill,
    references_for,
    safe_message_ids,
    thread_subject,
)
from tui_helpdesk.services import mailboxes, outgoing
from tui_helpdesk.services.autoresponder.rules import (
    ReplyChoice,
    choose_reply,
    mailbox_timezone,
    return_address,
    suppression_reason,
)
from tui_helpdesk.services.hours import describe_opening

if TYPE_CHECKING:
    from tui_helpdesk.mail.parsed import ParsedMessage


def _own_addresses(session: Session, addresses: set[str]) -> frozenset[str]:
    """Which of these addresses belong to any of our mailboxes (address or alias, any state)."""
    rows = session.execute(
        select(Mailbox.email_address, Mailbox.alias).where(
            or_(
                func.lower(Mailbox.email_address).in_(addresses),
                func.lower(Mailbox.alias).in_(addresses),
            )
        )
    )
    return frozenset(a.lower() for row in rows for a in row if a and a.lower() in addresses)


def claim_reply(
    session: Session, mailbox_id: int, recipient: str, now: datetime, period_hours: int
) -> bool:
    """Take the right to answer `recipient` from this mailbox now, in one atomic statement.

    The claim row is inserted, or moved to `now` only when its last reply is older than the
    period; a row comes back exactly when this transaction may answer. On PostgreSQL a second
    worker's claim waits for the first transaction's row lock and then sees its reply, so two
    workers never both answer (F72). Period 0 means no limit.
    """
    if period_hours <= 0:
        return True
    table = AutoReplyClaim.__table__
    insert = dialect_insert(session.get_bind().dialect.name)(table).values(
        mailbox_id=mailbox_id, recipient=recipient, last_sent_at=now
    )
    claim = insert.on_conflict_do_update(
        index_elements=[table.c.mailbox_id, table.c.recipient],
        set_={"last_sent_at": insert.excluded.last_sent_at},
        where=table.c.last_sent_at <= now - timedelta(hours=period_hours),
    ).returning(table.c.mailbox_id)
    return session.execute(claim).first() is not None


@dataclass(frozen=True)
class MailboxSetup:
    """A mailbox's automatic-reply configuration, read once per write transaction (batch)."""

    autoresponder: Autoresponder | None
    timezone: str | None  # only looked up when the autoresponder is enabled


def load_setup(session: Session, settings: Settings, mailbox: Mailbox) -> MailboxSetup | None:
    """None when automatic replies are switched off globally, or the mailbox may not send yet
    (pending verification, F16): nothing more to read."""
    if not settings.mail.autoresponders_enabled or mailbox.verified_at is None:
        return None
    if not session.get_one(Organisation, mailbox.organisation_id).autoresponders_enabled:
        return None  # the organisation's switch (F19), read from the identity map in a batch
    row = session.get(Autoresponder, mailbox.id)
    active = row is not None and row.enabled
    return MailboxSetup(row, mailbox_timezone(session, mailbox) if active else None)


def due_reply(setup: MailboxSetup | None, queue: Queue | None, now: datetime) -> ReplyChoice | None:
    """The automatic message configured and due now (no query): the cheap first question."""
    if setup is None:
        return None
    return choose_reply(setup.autoresponder, setup.timezone, queue, now)


def on_inbound(
    session: Session,
    settings: Settings,
    *,
    mailbox: Mailbox,
    queue: Queue | None,
    conversation: Conversation,
    message: Message,
    parsed: ParsedMessage,
    now: datetime,
) -> OutboxJob | None:
    """Queue the automatic reply to one stored inbound message, if one is due (see module doc).

    The cheap question comes first (is any automatic message configured and due?), so mail to
    a mailbox without one costs a single primary-key lookup.
    """
    choice = due_reply(load_setup(session, settings, mailbox), queue, now)
    if choice is None:
        return None
    return answer(
        session, settings, choice, mailbox=mailbox, queue=queue, conversation=conversation,
        envelope_from=message.envelope_from or "", parsed=parsed, now=now,
    )  # fmt: skip


def answer(
    session: Session,
    settings: Settings,
    choice: ReplyChoice,
    *,
    mailbox: Mailbox,
    queue: Queue | None,
    conversation: Conversation,
    envelope_from: str,
    parsed: ParsedMessage,
    now: datetime,
) -> OutboxJob | None:
    """Send the due `choice` unless the message must not be answered (loops, RFC 3834, period)."""
    target = return_address(envelope_from)
    sender = parsed.sender.address.lower() if parsed.sender else ""
    candidates = {a for a in (target.lower() if target else "", sender) if a}
    reason = suppression_reason(
        parsed,
        envelope_from,
        own_addresses=_own_addresses(session, candidates),
        platform_domain=settings.mail.platform_domain,
    )
    if reason is not None or target is None:
        return None
    try:  # the envelope sender, from the internet: only a plain address is answered
        target = parse_address(target, field="to")
    except Invalid:
        return None
    if not claim_reply(
        session, mailbox.id, target.lower(), now, settings.mail.autoreply_period_hours
    ):
        return None
    return _queue_reply(
        session, settings, mailbox, queue, conversation, parsed, target, choice, now
    )


def _queue_reply(
    session: Session,
    settings: Settings,
    mailbox: Mailbox,
    queue: Queue | None,
    conversation: Conversation,
    parsed: ParsedMessage,
    target: str,
    choice: ReplyChoice,
    now: datetime,
) -> OutboxJob:
    prefix = settings.mail.subject_token_prefix
    values = {
        "subject": clean_line(parsed.subject, MAX_QUOTED_SUBJECT),
        "conversation_id": str(conversation.id),
        "next_opening": describe_opening(queue, now) if queue is not None else "",
    }
    configured = clean_line(fill(choice.subject, values), MAX_SUBJECT)
    subject = thread_subject(
        configured or parsed.subject, prefix=prefix, conversation_id=conversation.id,
        lead="" if configured else "Re",
    )  # fmt: skip
    parent = (safe_message_ids([parsed.message_id]) or [""])[0]
    signature_text, signature_html = mailboxes.signature(session, mailbox, None)
    text, html = body_parts(fill(choice.body, values), signature_text=signature_text,
                            signature_html=signature_html)  # fmt: skip
    draft = Draft(
        sender=mailboxes.sender(session, mailbox), to=(Person(target),), subject=subject,
        text=text, html=html, in_reply_to=parent,
        references=references_for(parent, parsed.references) if parent else (),
        auto_submitted=AUTO_REPLIED,
    )  # fmt: skip
    sent = outgoing.send_in_conversation(
        session, mailbox=mailbox, conversation=conversation, draft=draft, kind="auto_reply",
        job_kind="auto_reply", now=now, not_before=now + timedelta(seconds=choice.delay_seconds),
    )  # fmt: skip
    session.add(
        AutoReplyLog(mailbox_id=mailbox.id, recipient=target.lower(), kind=choice.kind, sent_at=now)
    )
    session.flush()
    return sent.job
