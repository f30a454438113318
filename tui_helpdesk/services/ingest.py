"""Storing inbound mail (F40, F41, F70, F71, F74, F76): the rules behind the worker's 250.

One SMTP transaction becomes one Message per receiving mailbox, with its exact raw bytes, in a
conversation found by threading or newly routed and assigned. Whatever the bytes are, the mail
is kept: when parsing or storing the parsed parts fails, the raw message is stored with its
error in a conversation of its own, so an agent sees it and nothing is lost. Only database
errors escape, and then the sender is told to retry (451).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import (
    Attachment,
    Blob,
    Conversation,
    ConversationParticipant,
    ConversationTag,
    Mailbox,
    Message,
    Queue,
)
from tui_helpdesk.mail.ingest import Accepted, InboundMail, StoreBatch
from tui_helpdesk.mail.parse import Address, ParsedMessage, parse_message
from tui_helpdesk.services import assignment, autoresponder, changes, contacts, routing, threading

__all__ = [
    "InboundMail",
    "StoredMail",
    "accepts_recipient",
    "active_aliases",
    "batch_store",
    "store_batch",
    "store_inbound",
]

log = logging.getLogger(__name__)

UNREADABLE_SUBJECT = "(message could not be processed)"
MESSAGE_ID_MAX = 998
ADDRESS_MAX = 320
CONTENT_TYPE_MAX = 255


@dataclass(frozen=True)
class StoredMail:
    """What store_inbound did: ids of the stored (or already stored) messages.

    duplicate is True when every receiving mailbox already had this exact message (same
    Message-ID and same raw bytes), so nothing new was stored.
    """

    message_ids: tuple[int, ...]
    conversation_ids: tuple[int, ...]
    duplicate: bool
    processing_errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Delivery:
    message_id: int
    conversation_id: int
    duplicate: bool = False
    processing_error: str = ""


# --- recipients ------------------------------------------------------------------------------


def _active_mailbox() -> list[object]:
    return [Mailbox.status == "active", Mailbox.deleted_at.is_(None)]


def accepts_recipient(session: Session, address: str) -> bool:
    """True when the address is the alias of an active, not deleted mailbox (any case)."""
    found = session.scalar(
        select(Mailbox.id)
        .where(func.lower(Mailbox.alias) == address.strip().lower(), *_active_mailbox())
        .limit(1)
    )
    return found is not None


def active_aliases(session: Session) -> frozenset[str]:
    """Every address RCPT accepts, lowercased: what the SMTP handler caches."""
    return frozenset(
        a.lower() for a in session.scalars(select(Mailbox.alias).where(*_active_mailbox()))
    )


def _receiving_mailboxes(
    session: Session, rcpt_tos: Sequence[str]
) -> list[tuple[Mailbox, tuple[str, ...]]]:
    """Each mailbox addressed by the envelope once, with the recipients that named it.

    Status is not checked again here: RCPT already accepted these, and mail we answered
    250 for must be kept even if the mailbox was deactivated a moment later.
    """
    wanted = {r.strip().lower(): r for r in rcpt_tos}
    if not wanted:
        return []
    found = session.scalars(
        select(Mailbox).where(func.lower(Mailbox.alias).in_(list(wanted))).order_by(Mailbox.id)
    ).all()
    result = []
    for mailbox in found:
        rcpts = tuple(r for r in rcpt_tos if r.strip().lower() == mailbox.alias.lower())
        result.append((mailbox, rcpts))
    return result


# --- the entry points ------------------------------------------------------------------------


def store_inbound(
    session: Session, settings: Settings, mail: InboundMail, parsed: ParsedMessage | None = None
) -> StoredMail:
    """Store one received mail for every mailbox it was addressed to (see module docstring).

    Each mailbox's copy is stored inside a SAVEPOINT: if anything but the database fails, that
    savepoint is rolled back and the raw message is stored with processing_error instead.
    """
    parse_error = ""
    if parsed is None:
        parsed, parse_error = _parse(mail.raw)
    deliveries = [
        _deliver(session, settings, mail, parsed, parse_error, mailbox, rcpts)
        for mailbox, rcpts in _receiving_mailboxes(session, mail.rcpt_tos)
    ]
    if not deliveries:
        log.warning("mail from %r for %r matched no mailbox", mail.mail_from, mail.rcpt_tos)
    elif not all(d.duplicate for d in deliveries):
        changes.notify(session)
    return StoredMail(
        message_ids=tuple(d.message_id for d in deliveries),
        conversation_ids=tuple(d.conversation_id for d in deliveries),
        duplicate=bool(deliveries) and all(d.duplicate for d in deliveries),
        processing_errors=tuple(d.processing_error for d in deliveries if d.processing_error),
    )


def store_batch(
    db: Database, settings: Settings, mails: Sequence[InboundMail]
) -> list[StoredMail | Exception]:
    """Store a batch in ONE transaction (group commit), a SAVEPOINT per mail.

    Parsing happens before the transaction starts, so the write lock is held only for the
    database work. A mail whose savepoint fails with a database error is left out (its sender
    gets 451) while the rest of the batch commits; an error of the commit itself propagates.
    """
    parsed = [_parse(mail.raw) for mail in mails]
    results: list[StoredMail | Exception] = []
    with db.write() as session:
        for mail, (message, parse_error) in zip(mails, parsed, strict=True):
            try:
                with session.begin_nested():
                    results.append(
                        _store_parsed_or_raw(session, settings, mail, message, parse_error)
                    )
            except Exception as exc:
                if _connection_lost(exc):
                    raise
                log.error("mail from %r not stored: %s", mail.mail_from, exc)
                results.append(exc)
    return results


def batch_store(db: Database, settings: Settings) -> StoreBatch:
    """The `store` callable for mail.ingest.GroupCommitWriter: StoredMail → Accepted."""

    def store(mails: Sequence[InboundMail]) -> list[Accepted | BaseException]:
        return [_accepted(r) for r in store_batch(db, settings, mails)]

    return store


def _accepted(result: StoredMail | Exception) -> Accepted | BaseException:
    if isinstance(result, Exception):
        return result
    queue_id = ",".join(str(i) for i in result.message_ids) or "0"
    return Accepted(queue_id=queue_id, processing_error="; ".join(result.processing_errors))


def _store_parsed_or_raw(
    session: Session,
    settings: Settings,
    mail: InboundMail,
    parsed: ParsedMessage | None,
    parse_error: str,
) -> StoredMail:
    if parsed is None:
        return store_inbound_raw(session, mail, parse_error)
    return store_inbound(session, settings, mail, parsed)


def store_inbound_raw(
    session: Session, mail: InboundMail, error: str, parsed: ParsedMessage | None = None
) -> StoredMail:
    """Keep the raw bytes of a mail that could not be parsed, one copy per mailbox (F71)."""
    deliveries = [
        _store_raw(session, mail, mailbox, rcpts, parsed, error)
        for mailbox, rcpts in _receiving_mailboxes(session, mail.rcpt_tos)
    ]
    if deliveries:
        changes.notify(session)
    return StoredMail(
        message_ids=tuple(d.message_id for d in deliveries),
        conversation_ids=tuple(d.conversation_id for d in deliveries),
        duplicate=False,
        processing_errors=tuple(d.processing_error for d in deliveries),
    )


def _parse(raw: bytes) -> tuple[ParsedMessage | None, str]:
    try:
        return parse_message(raw), ""
    except Exception as exc:  # parse_message promises not to raise; if it does, keep the raw
        log.exception("parse_message raised")
        return None, f"parse failed: {type(exc).__name__}: {exc}"


def _connection_lost(exc: BaseException) -> bool:
    """Errors of the database itself, not of the data: retrying later is the only cure."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _deliver(
    session: Session,
    settings: Settings,
    mail: InboundMail,
    parsed: ParsedMessage | None,
    parse_error: str,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
) -> _Delivery:
    if parsed is not None and not parse_error:
        try:
            with session.begin_nested():
                return _store_parsed(session, settings, mail, parsed, mailbox, rcpts)
        except Exception as exc:
            if _connection_lost(exc):
                raise
            log.warning("storing the parsed message failed, keeping it raw: %s", exc)
            parse_error = f"{type(exc).__name__}: {exc}"
    return _store_raw(session, mail, mailbox, rcpts, parsed, parse_error)


# --- the parsed path -------------------------------------------------------------------------


def _store_parsed(
    session: Session,
    settings: Settings,
    mail: InboundMail,
    parsed: ParsedMessage,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
) -> _Delivery:
    duplicate = _find_duplicate(session, mailbox, parsed)
    if duplicate is not None:
        return duplicate
    sender, sender_name = _sender(parsed, mail)
    bounced = _bounced_conversation(session, mailbox, parsed, sender)
    if bounced is not None:
        return _store_bounce(session, mail, parsed, mailbox, rcpts, bounced)
    contact = (
        contacts.find_or_create(session, mailbox.organisation_id, sender, sender_name)
        if sender
        else None
    )
    contact_id = contact.id if contact is not None else None
    conversation, queue = _conversation_for(
        session, settings, mail, parsed, mailbox, rcpts, sender, contact_id
    )
    message = _add_message(session, mail, parsed, mailbox, rcpts, conversation, kind="mail")
    _add_participants(session, conversation.id, _people(parsed, sender))
    _touch(conversation, mailbox, mail.received_at)
    if conversation.status == "pending":  # the customer answered: back to the agents
        conversation.status = "open"
    autoresponder.on_inbound(
        session,
        settings,
        mailbox=mailbox,
        queue=queue,
        conversation=conversation,
        message=message,
        parsed=parsed,
        now=mail.received_at,
    )
    return _Delivery(message.id, conversation.id)


def _find_duplicate(session: Session, mailbox: Mailbox, parsed: ParsedMessage) -> _Delivery | None:
    """Same Message-ID and same bytes to the same mailbox: delivered twice, stored once."""
    message_id = _message_id(parsed)
    if message_id is None:
        return None
    row = session.execute(
        select(Message.id, Message.conversation_id)
        .where(
            Message.mailbox_id == mailbox.id,
            Message.message_id_header == message_id,
            Message.raw_sha256 == parsed.sha256,
        )
        .limit(1)
    ).first()
    return None if row is None else _Delivery(row[0], row[1], duplicate=True)


def _conversation_for(
    session: Session,
    settings: Settings,
    mail: InboundMail,
    parsed: ParsedMessage,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
    sender: str,
    contact_id: int | None,
) -> tuple[Conversation, Queue | None]:
    """The conversation threading finds (F41), else a new routed and assigned one."""
    found = threading.find_conversation(
        session,
        mailbox=mailbox,
        parsed=parsed,
        sender=sender,
        token_prefix=settings.mail.subject_token_prefix,
    )
    if found is not None and found.status != "closed":
        queue = session.get(Queue, found.queue_id) if found.queue_id is not None else None
        return found, queue
    decision = routing.route_inbound(session, mailbox, parsed, rcpts[0] if rcpts else "")
    queue = session.get(Queue, decision.queue_id) if decision.queue_id is not None else None
    assignee = (
        assignment.choose_assignee(session, queue, contact_id=contact_id, now=mail.received_at)
        if queue is not None
        else None
    )
    conversation = Conversation(
        organisation_id=mailbox.organisation_id,
        mailbox_id=mailbox.id,
        queue_id=decision.queue_id,
        contact_id=contact_id,
        subject=_clean(parsed.subject),
        status="open",
        priority=decision.priority or "normal",
        assignee_id=assignee,
        previous_conversation_id=found.id if found is not None else None,
        last_message_at=mail.received_at,
        message_count=0,
    )
    session.add(conversation)
    session.flush()
    for tag in dict.fromkeys(decision.tags):
        session.add(ConversationTag(conversation_id=conversation.id, tag=tag))
    return conversation, queue


def _add_message(
    session: Session,
    mail: InboundMail,
    parsed: ParsedMessage,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
    conversation: Conversation,
    *,
    kind: str,
    bounce_recipient: str = "",
) -> Message:
    sender = parsed.sender
    message = Message(
        conversation_id=conversation.id,
        mailbox_id=mailbox.id,
        direction="inbound",
        kind=kind,
        message_id_header=_message_id(parsed),
        in_reply_to=_clean(" ".join(parsed.in_reply_to)),
        references=_clean(" ".join(parsed.references)),
        subject=_clean(parsed.subject),
        from_address=_clean(sender.address if sender else "", ADDRESS_MAX),
        from_name=_clean(sender.name if sender else ""),
        to_addresses=_format_addresses(parsed.to),
        cc_addresses=_format_addresses(parsed.cc),
        envelope_from=_clean(mail.mail_from),
        envelope_to=_clean(", ".join(rcpts)),
        date_header=_clean(parsed.date_header),
        sent_at=_aware_utc(parsed.date),
        received_at=mail.received_at,
        text_body=_clean(parsed.text_body),
        html_body=_clean(parsed.html_body),
        raw=mail.raw,
        raw_sha256=parsed.sha256,
        raw_size=len(mail.raw),
        defects=[_clean(d) for d in parsed.defects],
        auto_submitted=_clean(parsed.auto_submitted, 64),
        bounce_recipient=_clean(bounce_recipient, ADDRESS_MAX),
        processing_error="",
    )
    session.add(message)
    session.flush()
    _add_attachments(session, message.id, parsed)
    return message


def _add_attachments(session: Session, message_id: int, parsed: ParsedMessage) -> None:
    """Attachment bytes go to blobs once per content (sha256), rows point at them."""
    if not parsed.attachments:
        return
    digests = [hashlib.sha256(part.data).hexdigest() for part in parsed.attachments]
    blobs = dict(zip(digests, (part.data for part in parsed.attachments), strict=True))
    # The blobs first: attachment rows reference them.
    rows = [{"sha256": d, "size": len(data), "data": data} for d, data in blobs.items()]
    _insert_ignore(session, Blob, rows)
    for part, digest in zip(parsed.attachments, digests, strict=True):
        session.add(
            Attachment(
                message_id=message_id,
                filename=_clean(part.filename),
                content_type=_clean(part.content_type, CONTENT_TYPE_MAX)
                or "application/octet-stream",
                size=len(part.data),
                sha256=digest,
                disposition="inline" if part.disposition == "inline" else "attachment",
                content_id=_clean(part.content_id, MESSAGE_ID_MAX),
            )
        )


def _add_participants(session: Session, conversation_id: int, people: Iterable[str]) -> None:
    rows = [{"conversation_id": conversation_id, "email": p} for p in dict.fromkeys(people)]
    _insert_ignore(session, ConversationParticipant, rows)


def _insert_ignore(session: Session, model: type, rows: list[dict[str, object]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING: a row that exists already is simply kept."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(model).on_conflict_do_nothing(), rows)


def _touch(conversation: Conversation, mailbox: Mailbox, received_at: datetime) -> None:
    conversation.message_count = (conversation.message_count or 0) + 1
    if conversation.last_message_at is None or received_at > conversation.last_message_at:
        conversation.last_message_at = received_at
    if mailbox.last_inbound_at is None or received_at > mailbox.last_inbound_at:
        mailbox.last_inbound_at = received_at


# --- bounces (F74) ---------------------------------------------------------------------------


def _bounced_conversation(
    session: Session, mailbox: Mailbox, parsed: ParsedMessage, sender: str
) -> Conversation | None:
    bounce = parsed.bounce
    if bounce is None or not bounce.original_message_id:
        return None
    original = bounce.original_message_id[:MESSAGE_ID_MAX]
    return threading.find_bounced_conversation(
        session,
        mailbox=mailbox,
        original_message_id=original,
        people=[sender, *bounce.failed_recipients],
    )


def _store_bounce(
    session: Session,
    mail: InboundMail,
    parsed: ParsedMessage,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
    conversation: Conversation,
) -> _Delivery:
    """File the bounce with the mail it returns and flag the address that failed.

    The bounce joins that conversation even when it is closed (it belongs to its history, it
    is no customer asking again) and never gets an auto-reply or a participant entry.
    """
    bounce = parsed.bounce
    assert bounce is not None
    failed = [r for r in bounce.failed_recipients if r]
    message = _add_message(
        session,
        mail,
        parsed,
        mailbox,
        rcpts,
        conversation,
        kind="bounce",
        bounce_recipient=failed[0] if failed else "",
    )
    if bounce.permanent:
        reason = _clean(" ".join(p for p in (bounce.status, bounce.diagnostic) if p)) or "bounced"
        for address in failed:
            contacts.flag_bounced(
                session, mailbox.organisation_id, address, reason=reason, when=mail.received_at
            )
    _touch(conversation, mailbox, mail.received_at)
    return _Delivery(message.id, conversation.id)


# --- the raw path (F71, F76) -----------------------------------------------------------------


def _store_raw(
    session: Session,
    mail: InboundMail,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
    parsed: ParsedMessage | None,
    error: str,
) -> _Delivery:
    """The bytes and the error in a new conversation of the mailbox: nothing else is trusted."""
    error = _clean(error) or "unknown processing error"
    subject = _clean(parsed.subject) if parsed is not None and parsed.subject else ""
    conversation = Conversation(
        organisation_id=mailbox.organisation_id,
        mailbox_id=mailbox.id,
        queue_id=routing.default_queue_id(session, mailbox),
        subject=subject or UNREADABLE_SUBJECT,
        status="open",
        last_message_at=mail.received_at,
        message_count=1,
    )
    session.add(conversation)
    session.flush()
    message = Message(
        conversation_id=conversation.id,
        mailbox_id=mailbox.id,
        direction="inbound",
        kind="mail",
        message_id_header=_message_id(parsed) if parsed is not None else None,
        subject=subject,
        envelope_from=_clean(mail.mail_from),
        envelope_to=_clean(", ".join(rcpts)),
        received_at=mail.received_at,
        raw=mail.raw,
        raw_sha256=hashlib.sha256(mail.raw).hexdigest(),
        raw_size=len(mail.raw),
        processing_error=error,
    )
    session.add(message)
    if mailbox.last_inbound_at is None or mail.received_at > mailbox.last_inbound_at:
        mailbox.last_inbound_at = mail.received_at
    session.flush()
    return _Delivery(message.id, conversation.id, processing_error=error)


# --- small helpers ---------------------------------------------------------------------------


def _clean(value: str | None, limit: int | None = None) -> str:
    """Text every database accepts: no NUL (PostgreSQL refuses it), no lone surrogates."""
    if not value:
        return ""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value if limit is None else value[:limit]


def _message_id(parsed: ParsedMessage) -> str | None:
    value = _clean(parsed.message_id, MESSAGE_ID_MAX)
    return value or None


def _sender(parsed: ParsedMessage, mail: InboundMail) -> tuple[str, str]:
    """The sender's lowercased address and name: From, else the envelope sender."""
    if parsed.sender is not None and "@" in parsed.sender.address:
        return contacts.normalise_email(_clean(parsed.sender.address)), _clean(parsed.sender.name)
    if "@" in mail.mail_from:
        return contacts.normalise_email(_clean(mail.mail_from)), ""
    return "", ""


def _people(parsed: ParsedMessage, sender: str) -> list[str]:
    """Who took part: From, To and Cc, lowercased (F41 eligibility)."""
    people = [sender] if sender else []
    for address in (*parsed.to, *parsed.cc):
        email = contacts.normalise_email(_clean(address.address))
        if "@" in email:
            people.append(email)
    return people


def _format_addresses(addresses: Iterable[Address]) -> str:
    return ", ".join(_format_address(a) for a in addresses if a.address or a.name)


def _format_address(address: Address) -> str:
    name = _clean(" ".join(address.name.split()))
    email = _clean(address.address)
    if not name:
        return email
    if any(c in name for c in ',;<>"@()[]:'):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{email}>" if email else name


def _aware_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return None
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
