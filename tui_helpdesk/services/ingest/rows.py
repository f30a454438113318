"""The last step: the rows of an ingest batch, kept until written, and the bulk INSERTs.

The writer stores many mails per transaction; new contacts, conversations, messages,
attachments, participants and tags wait here and go in one executemany per table.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, select, text
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tui_helpdesk.db.engine import dialect_insert
from tui_helpdesk.db.models import (
    Attachment,
    Blob,
    Contact,
    Conversation,
    ConversationParticipant,
    ConversationTag,
    Mailbox,
    Message,
    MessageAuth,
)
from tui_helpdesk.mail.inbound import InboundMail
from tui_helpdesk.mail.parsed import ParsedAttachment, ParsedMessage
from tui_helpdesk.services import webhooks
from tui_helpdesk.services.inbound_auth import jobs as auth_jobs
from tui_helpdesk.services.ingest.clean import (
    ADDRESS_MAX,
    CONTENT_TYPE_MAX,
    MESSAGE_ID_MAX,
    aware_utc,
    clean_text,
    format_addresses,
    message_id_of,
)


@dataclass(eq=False, slots=True)
class NewContact:
    """A contact to INSERT when the batch flushes; `id` is set then."""

    values: dict[str, Any]
    id: int | None = None


@dataclass(eq=False, slots=True)
class NewConversation:
    values: dict[str, Any]
    contact: NewContact | None  # set when the contact is new in this batch too
    id: int | None = None


ConversationRef = Conversation | NewConversation


@dataclass(eq=False, slots=True)
class NewMessage:
    values: dict[str, Any]
    conversation: ConversationRef
    attachments: tuple[ParsedAttachment, ...]
    id: int | None = None
    client: tuple[str, str] = ("", "")  # the SMTP client's address and HELO (F75 checks them)


@dataclass(eq=False, slots=True)
class PendingEvent:
    """A new message (and maybe conversation) to tell the mailbox's webhook about (F22)."""

    target: webhooks.WebhookTarget
    mailbox: Mailbox
    message: NewMessage
    created: bool  # the message opened its conversation

    def emit(self, session: Session) -> None:
        values = self.message.values
        payload = {
            "conversation_id": row_id(self.message.conversation), "message_id": self.message.id,
            "subject": values["subject"], "from": values["from_address"],
            "from_name": values["from_name"], "received_at": values["received_at"],
        }  # fmt: skip
        when = values["received_at"]
        events = ("conversation.created", "message.received") if self.created else (
            "message.received",)  # fmt: skip
        for event in events:
            webhooks.emit(session, self.mailbox, event, payload, target=self.target, now=when)


_Ref = int | Conversation | Message | NewContact | NewConversation | NewMessage


def row_id(ref: _Ref | None) -> int | None:
    """The database id of a row, stored or pending (a pending row has one after a flush)."""
    return ref if ref is None or isinstance(ref, int) else ref.id


@dataclass(frozen=True, slots=True)
class Delivery:
    message: int | Message | NewMessage
    conversation: int | ConversationRef
    duplicate: bool = False
    processing_error: str = ""


def inbound_message(
    mail: InboundMail,
    parsed: ParsedMessage,
    mailbox_id: int,
    rcpts: tuple[str, ...],
    conversation: ConversationRef,
    *,
    kind: str,
    bounce_recipient: str = "",
) -> NewMessage:
    """The row of one received copy, everything from mail cleaned for the database."""
    sender = parsed.sender
    values: dict[str, Any] = {
        "conversation_id": None,  # set on flush
        "mailbox_id": mailbox_id,
        "direction": "inbound",
        "kind": kind,
        "message_id_header": message_id_of(parsed),
        "in_reply_to": clean_text(" ".join(parsed.in_reply_to)),
        "references": clean_text(" ".join(parsed.references)),
        "subject": clean_text(parsed.subject),
        "from_address": clean_text(sender.address if sender else "", ADDRESS_MAX),
        "from_name": clean_text(sender.name if sender else ""),
        "to_addresses": format_addresses(parsed.to),
        "cc_addresses": format_addresses(parsed.cc),
        "envelope_from": clean_text(mail.mail_from),
        "envelope_to": clean_text(", ".join(rcpts)),
        "date_header": clean_text(parsed.date_header),
        "sent_at": aware_utc(parsed.date),
        "received_at": mail.received_at,
        "text_body": clean_text(parsed.text_body),
        "html_body": clean_text(parsed.html_body),
        "raw": mail.raw,
        "raw_sha256": parsed.sha256,
        "raw_size": len(mail.raw),
        "defects": [clean_text(d) for d in parsed.defects],
        "auto_submitted": clean_text(parsed.auto_submitted, 64),
        "bounce_recipient": clean_text(bounce_recipient, ADDRESS_MAX),
        "processing_error": "",
    }
    return NewMessage(values, conversation, parsed.attachments, client=(mail.peer_ip, mail.helo))


class PendingRows:
    """New rows of the batch, INSERTed table by table (one executemany each) on flush."""

    def __init__(self) -> None:
        self.reserved: dict[str, list[int]] = {}  # ids taken ahead (reserve), by table name
        self._rows()

    def _rows(self) -> None:
        self.contacts: list[NewContact] = []
        self.conversations: list[NewConversation] = []
        self.messages: list[NewMessage] = []
        self.participants: list[tuple[ConversationRef, str]] = []
        self.tags: list[tuple[ConversationRef, str]] = []
        self.events: list[PendingEvent] = []

    def __bool__(self) -> bool:
        return bool(self.contacts or self.conversations or self.messages or self.participants
                    or self.tags or self.events)  # fmt: skip

    def clear(self) -> None:
        """Drop the rows not written yet (ids reserved stay: nobody else gets them)."""
        self._rows()

    def reserve(self, table: Table, ids: Sequence[int]) -> None:
        self.reserved.setdefault(table.name, []).extend(ids)

    def number(self, session: Session) -> None:
        """Give every pending row its id: reserved ones first, the rest in one query. flush()
        does it too; calling it first leaves flush nothing to read, so its INSERTs can be
        pipelined (db.engine.pipelined)."""
        tables = [(Contact.__table__, self.contacts), (Conversation.__table__, self.conversations),
                  (Message.__table__, self.messages)]  # fmt: skip
        unnumbered = [(t, [r for r in rows if r.id is None]) for t, rows in tables]
        for table, rows in unnumbered:
            ahead = self.reserved.get(table.name, [])
            for row, new_id in zip(rows, ahead, strict=False):
                row.id = row.values["id"] = new_id
            del ahead[: len(rows)]
        unnumbered = [(t, [r for r in rows if r.id is None]) for t, rows in unnumbered]
        next_ids = _next_ids(session.connection(), [(t, len(rows)) for t, rows in unnumbered])
        for table, rows in unnumbered:
            for new_id, row in zip(next_ids.get(table, ()), rows, strict=True):
                row.id = row.values["id"] = new_id

    def flush(self, session: Session) -> None:
        """Write everything pending, parents first; afterwards every pending row has its id."""
        if not self:
            return
        self.number(session)
        connection = session.connection()
        _insert(connection, Contact.__table__, self.contacts)
        for conversation in self.conversations:
            if conversation.contact is not None:
                conversation.values["contact_id"] = conversation.contact.id
        _insert(connection, Conversation.__table__, self.conversations)
        for message in self.messages:
            message.values["conversation_id"] = row_id(message.conversation)
        _insert(connection, Message.__table__, self.messages)
        _add_attachments(connection, self.messages)
        _queue_auth_checks(connection, self.messages)
        _insert_ignore(connection, ConversationParticipant, [
            {"conversation_id": row_id(c), "email": e} for c, e in dict.fromkeys(self.participants)
        ])  # fmt: skip
        _insert_ignore(connection, ConversationTag, [
            {"conversation_id": row_id(c), "tag": t} for c, t in dict.fromkeys(self.tags)
        ])  # fmt: skip
        for event in self.events:  # queued only: the sender POSTs them later
            event.emit(session)
        self.clear()


def _next_ids(connection: Connection, tables: list[tuple[Table, int]]) -> dict[Table, list[int]]:
    """The ids the new rows of each table get, for all tables in one query.

    SQLite: max(id) + 1 onwards (the write transaction began IMMEDIATE, nobody else can insert
    meanwhile, and that is what SQLite itself would choose for a table without AUTOINCREMENT).
    PostgreSQL: taken from each table's sequence, as a DEFAULT would. Given ids let every
    INSERT be a plain executemany: one prepared statement, no RETURNING to re-order.
    """
    tables = [(table, count) for table, count in tables if count]
    if not tables:
        return {}
    if connection.dialect.name == "sqlite":
        [row] = sqlite_read(connection, _max_ids(tuple(t for t, _ in tables)), ())
        return {
            table: list(range((last or 0) + 1, (last or 0) + 1 + count))
            for (table, count), last in zip(tables, row, strict=True)
        }
    statement = _sequence_ids(tuple(t.name for t, _ in tables))
    [row] = connection.execute(statement, {f"n{i}": c for i, (_, c) in enumerate(tables)}).all()
    return {table: list(ids) for (table, _), ids in zip(tables, row, strict=True)}


def reserving(messages: int, conversations: int) -> tuple[Any, dict[str, int]]:
    """PostgreSQL: the statement taking this many message and conversation ids from their
    sequences (a row of two arrays), for a batch that sends it with its first reads; give
    them to PendingRows.reserve. Ids left unused are skipped, as a rolled-back INSERT's are."""
    return _sequence_ids(("messages", "conversations")), {"n0": messages, "n1": conversations}


_NEW_CONTACT_IDS = text(
    "SELECT ARRAY(SELECT nextval(pg_get_serial_sequence('contacts', 'id'))"
    " FROM unnest(CAST(:emails AS VARCHAR[])) AS e(email) WHERE NOT EXISTS"
    " (SELECT 1 FROM contacts AS c WHERE c.organisation_id = :organisation_id"
    " AND c.email = e.email))"
)


def reserving_contacts(organisation_id: int, emails: Sequence[str]) -> tuple[Any, dict[str, Any]]:
    """PostgreSQL: the statement taking an id for each of these addresses that has no contact
    in the organisation yet (sent after the contact locks, so none is added meanwhile)."""
    return _NEW_CONTACT_IDS, {"organisation_id": organisation_id, "emails": list(emails)}


@functools.cache
def _sequence_ids(names: tuple[str, ...]) -> Any:
    columns = ", ".join(
        f"ARRAY(SELECT nextval(pg_get_serial_sequence('{name}', 'id'))"
        f" FROM generate_series(1, :n{i}))"
        for i, name in enumerate(names)
    )
    return text(f"SELECT {columns}")


@functools.cache
def _max_ids(tables: tuple[Table, ...]) -> Any:
    return select(*(select(func.max(t.c.id)).scalar_subquery() for t in tables))


@functools.cache
def _sqlite_sql(statement: Any) -> str:
    return str(statement.compile(dialect=sqlite_dialect.dialect()))


def sqlite_read(connection: Connection, statement: Any, parameters: Sequence[Any]) -> list[Any]:
    """Rows of a read-only query, run on the DBAPI connection of `connection` (SQLite only).

    For the few reads every batch makes, on columns that need no type conversion (ids and
    text): SQLAlchemy's per-statement work costs several times SQLite's own here. The SQL is
    SQLAlchemy's, compiled once; `parameters` are positional, in the statement's order.
    """
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    cursor = dbapi.execute(_sqlite_sql(statement), tuple(parameters))
    try:
        return cursor.fetchall()
    finally:
        cursor.close()


@functools.cache
def _insert_into(table: Table) -> Any:
    return table.insert()


def _insert(
    connection: Connection, table: Table, rows: Sequence[NewContact | NewConversation | NewMessage]
) -> None:
    """One executemany INSERT for all rows, with the ids given by _next_ids."""
    if rows:
        connection.execute(_insert_into(table), [row.values for row in rows])


def _add_attachments(connection: Connection, messages: Sequence[NewMessage]) -> None:
    """Attachment bytes go to blobs once per content (sha256), rows point at them."""
    parts = [(m, part) for m in messages for part in m.attachments]
    if not parts:
        return
    digests = [hashlib.sha256(part.data).hexdigest() for _, part in parts]
    blobs = dict(zip(digests, (part.data for _, part in parts), strict=True))
    # The blobs first: attachment rows reference them.
    _insert_ignore(connection, Blob, [
        {"sha256": d, "size": len(data), "data": data} for d, data in blobs.items()
    ])  # fmt: skip
    rows = [
        {
            "message_id": message.id,
            "filename": clean_text(part.filename),
            "content_type": clean_text(part.content_type, CONTENT_TYPE_MAX)
            or "application/octet-stream",
            "size": len(part.data),
            "sha256": digest,
            "disposition": "inline" if part.disposition == "inline" else "attachment",
            "content_id": clean_text(part.content_id, MESSAGE_ID_MAX),
        }
        for (message, part), digest in zip(parts, digests, strict=True)
    ]
    connection.execute(_insert_into(Attachment.__table__), rows)


def _queue_auth_checks(connection: Connection, messages: Sequence[NewMessage]) -> None:
    """F75: each received mail (not a bounce) gets its SPF/DKIM/DMARC check queued; a worker's
    checker runs it after the commit (inbound_auth.jobs)."""
    rows = [
        auth_jobs.queued(m.id, m.client[0], m.client[1], m.values["envelope_from"],
                         m.values["received_at"])
        for m in messages
        if m.values["kind"] == "mail"
    ]  # fmt: skip
    if rows:
        connection.execute(_insert_into(MessageAuth.__table__), rows)


def _insert_ignore(connection: Connection, model: type, rows: list[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING: a row that exists already is simply kept."""
    if rows:
        connection.execute(_insert_ignoring(connection.dialect.name, model), rows)


@functools.cache
def _insert_ignoring(dialect: str, model: type) -> Any:
    return dialect_insert(dialect)(model.__table__).on_conflict_do_nothing()  # type: ignore[attr-defined]
