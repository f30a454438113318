"""Storing inbound mail (F40, F41, F70, F71, F74, F76): the rules behind the worker's 250.

One SMTP transaction becomes one Message per receiving mailbox, with its exact raw bytes, in a
conversation found by threading or newly routed and assigned. Whatever the bytes are, the mail
is kept: when parsing or storing the parsed parts fails, the raw message is stored with its
error in a conversation of its own, so an agent sees it and nothing is lost. Only database
errors escape, and then the sender is told to retry (451).

Speed (issue 3, point 6): the writer stores a batch of mail per transaction. Configuration
(routing rules, queues and their members, autoresponders) is read once per batch, and new rows
are kept in memory and INSERTed table by table for the whole batch (`_Pending`), flushed early
only before a query that could see them (threading, sticky routing, counts, an auto-reply).
The fast attempt uses no savepoints; if anything in it fails, the whole transaction is rolled
back and the batch is stored again carefully, one savepoint per stored copy, which isolates
the failing mail exactly as a per-mail transaction would.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import (
    Attachment,
    Blob,
    Contact,
    Conversation,
    ConversationParticipant,
    ConversationTag,
    Mailbox,
    Message,
    Organisation,
    Queue,
)
from tui_helpdesk.mail.ingest import Accepted, InboundMail, StoreBatch
from tui_helpdesk.mail.parse import Address, ParsedAttachment, ParsedMessage, parse_message
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
CONTACTS_KEPT = 50_000  # contacts remembered from batch to batch (SQLite; see _Setup)


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


# --- rows not written yet --------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class _NewContact:
    """A contact to INSERT when the batch flushes; `id` is set then."""

    values: dict[str, Any]
    id: int | None = None


@dataclass(eq=False, slots=True)
class _NewConversation:
    values: dict[str, Any]
    contact: _NewContact | None  # set when the contact is new in this batch too
    id: int | None = None


_ConversationRef = Conversation | _NewConversation


@dataclass(eq=False, slots=True)
class _NewMessage:
    values: dict[str, Any]
    conversation: _ConversationRef
    attachments: tuple[ParsedAttachment, ...]
    id: int | None = None


_Ref = int | Conversation | Message | _NewContact | _NewConversation | _NewMessage


def _id(ref: _Ref | None) -> int | None:
    """The database id of a row, stored or pending (a pending row has one after a flush)."""
    return ref if ref is None or isinstance(ref, int) else ref.id


@dataclass(frozen=True, slots=True)
class _Delivery:
    message: int | Message | _NewMessage
    conversation: int | _ConversationRef
    duplicate: bool = False
    processing_error: str = ""


class _Pending:
    """New rows of the batch, INSERTed table by table (one executemany each) on flush."""

    def __init__(self) -> None:
        self.contacts: list[_NewContact] = []
        self.conversations: list[_NewConversation] = []
        self.messages: list[_NewMessage] = []
        self.participants: list[tuple[_ConversationRef, str]] = []
        self.tags: list[tuple[_ConversationRef, str]] = []

    def __bool__(self) -> bool:
        return bool(self.contacts or self.conversations or self.messages or self.participants
                    or self.tags)  # fmt: skip

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    def flush(self, session: Session) -> None:
        """Write everything pending, parents first; afterwards every pending row has its id."""
        if not self:
            return
        connection = session.connection()
        tables = [(Contact.__table__, self.contacts), (Conversation.__table__, self.conversations),
                  (Message.__table__, self.messages)]  # fmt: skip
        next_ids = _next_ids(connection, [t for t, rows in tables if rows])
        _insert_with_ids(connection, Contact.__table__, self.contacts, next_ids)
        for conversation in self.conversations:
            if conversation.contact is not None:
                conversation.values["contact_id"] = conversation.contact.id
        _insert_with_ids(connection, Conversation.__table__, self.conversations, next_ids)
        for message in self.messages:
            message.values["conversation_id"] = _id(message.conversation)
        _insert_with_ids(connection, Message.__table__, self.messages, next_ids)
        _add_attachments(connection, self.messages)
        _insert_ignore(connection, ConversationParticipant, [
            {"conversation_id": _id(c), "email": e} for c, e in dict.fromkeys(self.participants)
        ])  # fmt: skip
        _insert_ignore(connection, ConversationTag, [
            {"conversation_id": _id(c), "tag": t} for c, t in dict.fromkeys(self.tags)
        ])  # fmt: skip
        self.clear()


def _next_ids(connection: Connection, tables: list[Table]) -> dict[Table, int]:
    """SQLite: the first free id of each table, in one query (see _insert_with_ids)."""
    if connection.dialect.name != "sqlite" or not tables:
        return {}
    [row] = _sqlite_read(connection, _max_ids(tuple(tables)), ())
    return {table: (last or 0) + 1 for table, last in zip(tables, row, strict=True)}


@functools.cache
def _max_ids(tables: tuple[Table, ...]) -> Any:
    return select(*(select(func.max(t.c.id)).scalar_subquery() for t in tables))


@functools.cache
def _sqlite_sql(statement: Any) -> str:
    return str(statement.compile(dialect=sqlite_dialect.dialect()))


def _sqlite_read(connection: Connection, statement: Any, parameters: Sequence[Any]) -> list[Any]:
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
def _insert(table: Table) -> Any:
    return table.insert()


def _insert_with_ids(
    connection: Connection,
    table: Table,
    rows: Sequence[_NewContact | _NewConversation | _NewMessage],
    next_ids: dict[Table, int],
) -> None:
    """One executemany INSERT for all rows, giving each row object its new id.

    PostgreSQL returns the ids in the order of the rows (INSERT … RETURNING, sorted by
    parameter order). SQLite cannot promise that order, so there the ids are given: the write
    transaction began IMMEDIATE, nobody else can insert meanwhile, and max(id) + 1 onwards is
    exactly what SQLite itself would choose for a table without AUTOINCREMENT.
    """
    if not rows:
        return
    values = [row.values for row in rows]
    if table in next_ids:
        for new_id, row in enumerate(rows, start=next_ids[table]):
            row.id = row.values["id"] = new_id
        connection.execute(_insert(table), values)
        return
    ids = connection.execute(_insert_returning(table), values).scalars().all()
    for row, new_id in zip(rows, ids, strict=True):
        row.id = row.values["id"] = new_id


@functools.cache
def _insert_returning(table: Table) -> Any:
    return table.insert().returning(table.c.id, sort_by_parameter_order=True)


# --- recipients ------------------------------------------------------------------------------


def _active_mailbox() -> list[Any]:
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
    aliases = session.scalars(select(Mailbox.alias).where(*_active_mailbox()))
    return frozenset(a.lower() for a in aliases)


_STORED_COLUMNS = (
    Message.mailbox_id, Message.message_id_header, Message.raw_sha256, Message.id,
    Message.conversation_id,
)  # fmt: skip
_STORED = select(*_STORED_COLUMNS).where(
    Message.message_id_header.in_(bindparam("ids", expanding=True))
)


@functools.cache
def _stored_among(count: int) -> Any:
    """The duplicate lookup for exactly `count` Message-IDs (SQLite's DBAPI path)."""
    ids = [bindparam(f"id{n}") for n in range(count)]
    return select(*_STORED_COLUMNS).where(Message.message_id_header.in_(ids))


_MAILBOX_SEEN = (
    Mailbox.__table__.update()
    .where(Mailbox.__table__.c.id == bindparam("mailbox_id"))
    .values(last_inbound_at=bindparam("when"))
)


# --- configuration: read once per batch, on SQLite kept while nobody else writes --------------


class _Setup:
    """The configuration batches read: mailboxes and their organisations, routing, queues with
    their assigners (members, rotation pointer), autoresponders.

    Read once per batch. On SQLite it is kept for the next batch when nothing but our batches
    wrote in between: `PRAGMA data_version` on the writer's connection changes exactly when
    another connection commits, its `total_changes` when anyone else wrote through that very
    connection, and our own batches change only what the kept rows carry (rotation pointers,
    last_inbound_at). PostgreSQL has no such counter, so there it lives for one batch. Any
    rollback drops it.
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.seen: tuple[int, int, int] | None = None  # connection, data_version, total_changes
        self.mailboxes: dict[str, Mailbox] = {}  # by lowercased alias
        self.organisations: dict[int, Organisation] = {}
        self.queues: dict[int, Queue | None] = {}
        self.routings: dict[int, routing.InboundRouting] = {}
        self.assigners: dict[int, assignment.QueueAssigner] = {}
        self.replies: dict[int, autoresponder.MailboxSetup | None] = {}
        self.contacts: dict[tuple[int, str], tuple[int, str]] = {}  # (org, email) → (id, name)
        self._writer: tuple[Any, int] | None = None  # this batch's DBAPI connection, version

    def remember_contacts(
        self, known: dict[tuple[int, str], tuple[int | _NewContact, str]]
    ) -> None:
        """Keep the batch's contacts (written by now) for the next batches, up to a bound."""
        if len(self.contacts) > CONTACTS_KEPT:
            self.contacts.clear()
        for key, (contact, name) in known.items():
            contact_id = _id(contact)
            if contact_id is not None:
                self.contacts[key] = (contact_id, name)

    def begin(self, session: Session) -> None:
        """Keep or drop what earlier batches read, at the start of a write transaction.

        Kept rows stay detached: ingest only reads them, and writes the two columns it changes
        (rotation pointer, last_inbound_at) with UPDATEs of its own.
        """
        connection = session.connection()
        if connection.dialect.name != "sqlite":
            self.clear()
            return
        dbapi = connection.connection.dbapi_connection
        assert dbapi is not None
        cursor = dbapi.execute("PRAGMA data_version")  # read-only; the DBAPI call is cheaper
        version = cursor.fetchone()[0]
        cursor.close()
        if (id(dbapi), version, dbapi.total_changes) != self.seen:
            self.clear()
        self._writer = (dbapi, version)
        for assigner in self.assigners.values():
            assigner.bind(session)

    def committed(self) -> None:
        """Our batch committed: what is kept is what the database holds (see the class)."""
        if self._writer is not None:
            dbapi, version = self._writer
            self.seen = (id(dbapi), version, dbapi.total_changes)
            self._writer = None


# --- the batch: what one transaction looks up once -------------------------------------------

_MISSING = object()


class _Batch:
    """Lookups shared by the mails of one transaction, its pending rows, and what to do once
    at its end.

    The writer stores up to a few dozen mails per transaction; asking the database for each
    one's mailbox, duplicates, contact, routing rules, queue members and autoresponder
    separately would cost more than storing it. Entries learnt inside a savepoint are
    journaled, so a rolled-back savepoint forgets them too.
    """

    def __init__(
        self, session: Session, settings: Settings, *, careful: bool, setup: _Setup | None = None
    ) -> None:
        self.session = session
        self.settings = settings
        self.careful = careful  # one savepoint per stored copy, flushed at its end
        self.setup = setup or _Setup()
        self.setup.begin(session)
        self.pending = _Pending()
        self.stored: dict[tuple[int, str, str], _Delivery] = {}
        self.contacts: dict[tuple[int, str], tuple[int | _NewContact, str]] = {}
        self.last_inbound: dict[int, tuple[Mailbox, datetime]] = {}
        self.attached: dict[_NewConversation, Conversation] = {}
        self.changed = False
        self.rolled_back = False  # a savepoint was rolled back: the kept setup may be stale
        self._journal: list[tuple[dict[Any, Any] | None, Any, Any]] = []

    def prepare(self, mails: Sequence[tuple[InboundMail, ParsedMessage | None]]) -> None:
        aliases = {r.strip().lower() for mail, _ in mails for r in mail.rcpt_tos}
        missing = [a for a in aliases if a not in self.setup.mailboxes]
        if missing:
            # The organisations come along and stay referenced: the session's identity map
            # holds rows only weakly, and services called per message look them up.
            rows = self.session.execute(
                select(Mailbox, Organisation)
                .join(Organisation, Organisation.id == Mailbox.organisation_id)
                .where(func.lower(Mailbox.alias).in_(missing))
            ).all()
            for mailbox, organisation in rows:
                self.setup.mailboxes[mailbox.alias.lower()] = mailbox
                self.setup.organisations[organisation.id] = organisation
        parsed = [p for _, p in mails if p is not None]
        self._load_stored([i for p in parsed if (i := _message_id(p)) is not None])
        senders = {s for mail, p in mails if p is not None and (s := _sender(p, mail)[0])}
        receiving = (self.setup.mailboxes.get(a) for a in aliases)
        for organisation_id in {m.organisation_id for m in receiving if m is not None}:
            unknown = []
            for sender in senders:
                kept = self.setup.contacts.get((organisation_id, sender))
                if kept is None:
                    unknown.append(sender)
                else:
                    self.contacts[(organisation_id, sender)] = kept
            known = contacts.known_ids(self.session, organisation_id, unknown)
            for email, entry in known.items():
                self.contacts[(organisation_id, email)] = entry

    def _load_stored(self, message_ids: list[str]) -> None:
        if not message_ids:
            return
        ids = list(dict.fromkeys(message_ids))
        connection = self.session.connection()
        if connection.dialect.name == "sqlite":
            rows: Iterable[Any] = _sqlite_read(connection, _stored_among(len(ids)), ids)
        else:
            rows = connection.execute(_STORED, {"ids": ids})
        for mailbox_id, message_id, sha, row_id, conversation_id in rows:
            if mailbox_id is not None:
                key = (mailbox_id, message_id, sha)
                self.stored.setdefault(key, _Delivery(row_id, conversation_id, duplicate=True))

    # configuration, read once per batch

    def queue(self, queue_id: int | None) -> Queue | None:
        if queue_id is None:
            return None
        queues = self.setup.queues
        if queue_id not in queues:
            queues[queue_id] = self.session.get(Queue, queue_id)
        return queues[queue_id]

    def routing(self, mailbox: Mailbox) -> routing.InboundRouting:
        routings = self.setup.routings
        if mailbox.id not in routings:
            routings[mailbox.id] = routing.load_inbound_routing(self.session, mailbox)
        return routings[mailbox.id]

    def assignee(
        self, queue: Queue, contact: int | _NewContact | None, now: datetime
    ) -> int | None:
        assigner = self.setup.assigners.get(queue.id)
        if assigner is None:
            if queue not in self.session:  # kept from an earlier batch; the lock is re-taken
                self.session.add(queue)
            assigner = assignment.QueueAssigner(self.session, queue)
            self.setup.assigners[queue.id] = assigner
        if assigner.reads_history(contact is not None):
            self.flush()  # sticky routing and counts must see this batch's conversations
        return assigner.choose(_id(contact), now)

    def reply_setup(self, mailbox: Mailbox) -> autoresponder.MailboxSetup | None:
        replies = self.setup.replies
        if mailbox.id not in replies:
            replies[mailbox.id] = autoresponder.load_setup(self.session, self.settings, mailbox)
        return replies[mailbox.id]

    def receiving(self, rcpt_tos: Sequence[str]) -> list[tuple[Mailbox, tuple[str, ...]]]:
        """Each mailbox addressed by the envelope once, with the recipients that named it.

        Status is not checked again here: RCPT accepted these, and mail answered 250 must be
        kept even if its mailbox was deactivated a moment later.
        """
        by_mailbox: dict[int, tuple[Mailbox, list[str]]] = {}
        for rcpt in rcpt_tos:
            mailbox = self.setup.mailboxes.get(rcpt.strip().lower())
            if mailbox is not None:
                by_mailbox.setdefault(mailbox.id, (mailbox, []))[1].append(rcpt)
        return [(mailbox, tuple(rcpts)) for mailbox, rcpts in by_mailbox.values()]

    # pending rows

    def flush(self) -> None:
        """Write the pending rows and the queues' rotation pointers."""
        self.pending.flush(self.session)
        for assigner in self.setup.assigners.values():
            assigner.write()

    def orm(self, conversation: _ConversationRef) -> Conversation:
        """An ORM object for a conversation, flushed first if it is new in this batch.

        Built from the values we inserted (no read-back); the autoresponder works on it.
        """
        if isinstance(conversation, Conversation):
            return conversation
        self.flush()
        found = self.attached.get(conversation)
        if found is None:
            found = Conversation(**conversation.values)
            make_transient_to_detached(found)
            self.session.add(found)
            self.remember(self.attached, conversation, found)
            self._journal.append((None, found, None))
        return found

    # the journal of what a savepoint may have to forget

    def remember(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        self._journal.append((table, key, table.get(key, _MISSING)))
        table[key] = value

    def checkpoint(self) -> int:
        return len(self._journal)

    def forget_since(self, mark: int) -> None:
        """Undo what was learnt since `mark`, and drop rows not written yet.

        The assigners go too: the queue row lock (PostgreSQL) and the rotation pointer of the
        rolled-back savepoint are gone, so the next choice locks and reads the queue again.
        """
        self.rolled_back = True
        self.setup.assigners.clear()
        self.pending.clear()
        while len(self._journal) > mark:
            table, key, previous = self._journal.pop()
            if table is None:
                if key in self.session:
                    self.session.expunge(key)
            elif previous is _MISSING:
                table.pop(key, None)
            else:
                table[key] = previous

    def touch(self, mailbox: Mailbox, when: datetime) -> None:
        self.changed = True
        _, latest = self.last_inbound.get(mailbox.id, (mailbox, None))
        if latest is None or when > latest:
            self.last_inbound[mailbox.id] = (mailbox, when)

    def finish(self) -> None:
        self.flush()
        for mailbox, when in self.last_inbound.values():
            if mailbox.last_inbound_at is None or when > mailbox.last_inbound_at:
                self.session.connection().execute(
                    _MAILBOX_SEEN, {"mailbox_id": mailbox.id, "when": when}
                )
                set_committed_value(mailbox, "last_inbound_at", when)
        if self.changed:
            changes.notify(self.session)
        self.setup.remember_contacts(self.contacts)


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
    batch = _Batch(session, settings, careful=True)
    batch.prepare([(mail, parsed)])
    deliveries = _store_mail(batch, mail, parsed, parse_error)
    batch.finish()
    return _stored_mail(deliveries)


def store_batch(
    db: Database, settings: Settings, mails: Sequence[InboundMail], setup: _Setup | None = None
) -> list[StoredMail | Exception]:
    """Store a batch in ONE transaction (group commit).

    Parsing happens before the transaction starts (unless the writer parsed already:
    InboundMail.parsed), so the write lock is held only for the database work. The batch is
    first stored without savepoints; when that fails, it is stored again with a SAVEPOINT per
    stored copy, so a mail that fails with a database error is left out (its sender gets 451,
    and retries) while the rest of the batch commits. An error of the connection or of the
    commit propagates.

    `setup` carries configuration from one batch to the next (see _Setup); the writer's
    `batch_store` keeps one.
    """
    setup = setup or _Setup()
    parsed = [(mail.parsed, "") if mail.parsed is not None else _parse(mail.raw) for mail in mails]
    try:
        try:
            with db.write() as session:
                results = _store_all(session, settings, setup, mails, parsed, careful=False)
        except Exception as exc:
            setup.clear()
            if _connection_lost(exc):
                raise
            log.warning("batch of %d mails failed (%s); storing each on its own", len(mails), exc)
            with db.write() as session:
                results = _store_all(session, settings, setup, mails, parsed, careful=True)
    except BaseException:
        setup.clear()
        raise
    setup.committed()
    return results


def _store_all(
    session: Session,
    settings: Settings,
    setup: _Setup,
    mails: Sequence[InboundMail],
    parsed: Sequence[tuple[ParsedMessage | None, str]],
    *,
    careful: bool,
) -> list[StoredMail | Exception]:
    batch = _Batch(session, settings, careful=careful, setup=setup)
    batch.prepare([(mail, p) for mail, (p, _) in zip(mails, parsed, strict=True)])
    outcomes: list[list[_Delivery] | Exception] = []
    for mail, (message, parse_error) in zip(mails, parsed, strict=True):
        try:
            outcomes.append(_store_mail(batch, mail, message, parse_error))
        except Exception as exc:
            if not careful or _connection_lost(exc):
                raise
            log.error("mail from %r not stored: %s", mail.mail_from, exc)
            outcomes.append(exc)
    batch.finish()
    if batch.rolled_back:
        setup.clear()
    return [o if isinstance(o, Exception) else _stored_mail(o) for o in outcomes]


def batch_store(db: Database, settings: Settings) -> StoreBatch:
    """The `store` callable of the worker's writer: StoredMail → Accepted.

    It keeps the configuration from one batch to the next (see _Setup); call it from one
    thread at a time, as the writers do.
    """
    setup = _Setup()

    def store(mails: Sequence[InboundMail]) -> list[Accepted | BaseException]:
        return [_accepted(r) for r in store_batch(db, settings, mails, setup)]

    return store


def _accepted(result: StoredMail | Exception) -> Accepted | BaseException:
    if isinstance(result, Exception):
        return result
    queue_id = ",".join(str(i) for i in result.message_ids) or "0"
    return Accepted(queue_id=queue_id, processing_error="; ".join(result.processing_errors))


def _store_mail(
    batch: _Batch, mail: InboundMail, parsed: ParsedMessage | None, parse_error: str
) -> list[_Delivery]:
    deliveries = [
        _deliver(batch, mail, parsed, parse_error, mailbox, rcpts)
        for mailbox, rcpts in batch.receiving(mail.rcpt_tos)
    ]
    if not deliveries:
        log.warning("mail from %r for %r matched no mailbox", mail.mail_from, mail.rcpt_tos)
    return deliveries


def _stored_mail(deliveries: list[_Delivery]) -> StoredMail:
    """The result, once the batch is flushed and every row has its id."""
    return StoredMail(
        message_ids=tuple(_id(d.message) for d in deliveries),  # type: ignore[misc]
        conversation_ids=tuple(_id(d.conversation) for d in deliveries),  # type: ignore[misc]
        duplicate=bool(deliveries) and all(d.duplicate for d in deliveries),
        processing_errors=tuple(d.processing_error for d in deliveries if d.processing_error),
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
    batch: _Batch,
    mail: InboundMail,
    parsed: ParsedMessage | None,
    parse_error: str,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
) -> _Delivery:
    if parsed is not None and not parse_error:
        if not batch.careful:  # any failure abandons the fast attempt (see store_batch)
            return _store_parsed(batch, mail, parsed, mailbox, rcpts)
        try:
            return _in_savepoint(batch, _store_parsed, mail, parsed, mailbox, rcpts)
        except Exception as exc:
            if _connection_lost(exc):
                raise
            log.warning("storing the parsed message failed, keeping it raw: %s", exc)
            parse_error = f"{type(exc).__name__}: {exc}"
    if not batch.careful:
        return _store_raw(batch, mail, parsed, mailbox, rcpts, parse_error)
    return _in_savepoint(batch, _store_raw, mail, parsed, mailbox, rcpts, parse_error)


def _in_savepoint(batch: _Batch, store: Callable[..., _Delivery], *args: Any) -> _Delivery:
    mark = batch.checkpoint()
    try:
        with batch.session.begin_nested():
            delivery = store(batch, *args)
            batch.flush()
            return delivery
    except BaseException:
        batch.forget_since(mark)
        raise


# --- the parsed path -------------------------------------------------------------------------


def _store_parsed(
    batch: _Batch,
    mail: InboundMail,
    parsed: ParsedMessage,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
) -> _Delivery:
    message_id = _message_id(parsed)
    key = (mailbox.id, message_id or "", parsed.sha256)
    if message_id is not None and key in batch.stored:
        return batch.stored[key]
    sender, sender_name = _sender(parsed, mail)
    bounced = _bounced_conversation(batch, mailbox, parsed, sender)
    if bounced is not None:
        delivery = _store_bounce(batch, mail, parsed, mailbox, rcpts, bounced)
    else:
        delivery = _store_mail_message(batch, mail, parsed, mailbox, rcpts, sender, sender_name)
    if message_id is not None:
        batch.remember(batch.stored, key, dataclasses.replace(delivery, duplicate=True))
    return delivery


def _store_mail_message(
    batch: _Batch,
    mail: InboundMail,
    parsed: ParsedMessage,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
    sender: str,
    sender_name: str,
) -> _Delivery:
    contact = _contact(batch, mailbox.organisation_id, sender, sender_name, mail)
    conversation, queue, is_new = _conversation_for(
        batch, mail, parsed, mailbox, rcpts, sender, contact
    )
    message = _add_message(batch, mail, parsed, mailbox, rcpts, conversation, kind="mail")
    batch.pending.participants.extend((conversation, p) for p in _people(parsed, sender))
    batch.touch(mailbox, mail.received_at)
    if not is_new:  # a new one is inserted already counting this message
        assert isinstance(conversation, Conversation)
        _count_message(conversation, mail.received_at)
        if conversation.status == "pending":  # the customer answered: back to the agents
            conversation.status = "open"
    choice = autoresponder.due_reply(batch.reply_setup(mailbox), queue, mail.received_at)
    if choice is not None:
        autoresponder.answer(
            batch.session, batch.settings, choice, mailbox=mailbox, queue=queue,
            conversation=batch.orm(conversation), envelope_from=message.values["envelope_from"],
            parsed=parsed, now=mail.received_at,
        )  # fmt: skip
    return _Delivery(message, conversation)


def _contact(
    batch: _Batch, organisation_id: int, sender: str, name: str, mail: InboundMail
) -> int | _NewContact | None:
    """The sender's contact (F40): found in the batch's lookup, else a new one."""
    if not sender:
        return None
    key = (organisation_id, sender)
    known = batch.contacts.get(key)
    if known is None:
        new = _NewContact(contacts.new_row(organisation_id, sender, name, mail.received_at))
        batch.pending.contacts.append(new)
        batch.remember(batch.contacts, key, (new, name))
        return new
    contact, known_name = known
    if name and not known_name:
        if isinstance(contact, _NewContact) and contact.id is None:
            contact.values["name"] = contacts.clean_name(name)
        else:
            contacts.learn_name(batch.session, _id(contact), name)  # type: ignore[arg-type]
        batch.remember(batch.contacts, key, (contact, name))
    return contact


def _conversation_for(
    batch: _Batch,
    mail: InboundMail,
    parsed: ParsedMessage,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
    sender: str,
    contact: int | _NewContact | None,
) -> tuple[_ConversationRef, Queue | None, bool]:
    """The conversation threading finds (F41), else a new routed and assigned one (True)."""
    prefix = batch.settings.mail.subject_token_prefix
    found = None
    if threading.has_evidence(parsed, prefix):
        batch.flush()  # a reply may answer a mail of this very batch
        found = threading.find_conversation(
            batch.session, mailbox=mailbox, parsed=parsed, sender=sender, token_prefix=prefix
        )
    if found is not None and found.status != "closed":
        return found, batch.queue(found.queue_id), False
    decision = routing.decide(batch.routing(mailbox), mailbox, parsed, rcpts[0] if rcpts else "")
    queue = batch.queue(decision.queue_id)
    assignee = batch.assignee(queue, contact, mail.received_at) if queue is not None else None
    when = mail.received_at
    conversation = _NewConversation(
        {
            "organisation_id": mailbox.organisation_id,
            "mailbox_id": mailbox.id,
            "queue_id": decision.queue_id,
            "contact_id": _id(contact),
            "subject": _clean(parsed.subject),
            "status": "open",
            "priority": decision.priority or "normal",
            "assignee_id": assignee,
            "previous_conversation_id": found.id if found is not None else None,
            "last_message_at": when,
            "closed_at": None,
            "message_count": 1,
            "created_at": when,
            "updated_at": when,
        },
        contact if isinstance(contact, _NewContact) and contact.id is None else None,
    )
    batch.pending.conversations.append(conversation)
    batch.pending.tags.extend((conversation, t) for t in decision.tags)
    return conversation, queue, True


def _add_message(
    batch: _Batch,
    mail: InboundMail,
    parsed: ParsedMessage,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
    conversation: _ConversationRef,
    *,
    kind: str,
    bounce_recipient: str = "",
) -> _NewMessage:
    sender = parsed.sender
    values: dict[str, Any] = {
        "conversation_id": None,  # set on flush
        "mailbox_id": mailbox.id,
        "direction": "inbound",
        "kind": kind,
        "message_id_header": _message_id(parsed),
        "in_reply_to": _clean(" ".join(parsed.in_reply_to)),
        "references": _clean(" ".join(parsed.references)),
        "subject": _clean(parsed.subject),
        "from_address": _clean(sender.address if sender else "", ADDRESS_MAX),
        "from_name": _clean(sender.name if sender else ""),
        "to_addresses": _format_addresses(parsed.to),
        "cc_addresses": _format_addresses(parsed.cc),
        "envelope_from": _clean(mail.mail_from),
        "envelope_to": _clean(", ".join(rcpts)),
        "date_header": _clean(parsed.date_header),
        "sent_at": _aware_utc(parsed.date),
        "received_at": mail.received_at,
        "text_body": _clean(parsed.text_body),
        "html_body": _clean(parsed.html_body),
        "raw": mail.raw,
        "raw_sha256": parsed.sha256,
        "raw_size": len(mail.raw),
        "defects": [_clean(d) for d in parsed.defects],
        "auto_submitted": _clean(parsed.auto_submitted, 64),
        "bounce_recipient": _clean(bounce_recipient, ADDRESS_MAX),
        "processing_error": "",
    }
    message = _NewMessage(values, conversation, parsed.attachments)
    batch.pending.messages.append(message)
    return message


def _add_attachments(connection: Connection, messages: Sequence[_NewMessage]) -> None:
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
            "filename": _clean(part.filename),
            "content_type": _clean(part.content_type, CONTENT_TYPE_MAX)
            or "application/octet-stream",
            "size": len(part.data),
            "sha256": digest,
            "disposition": "inline" if part.disposition == "inline" else "attachment",
            "content_id": _clean(part.content_id, MESSAGE_ID_MAX),
        }
        for (message, part), digest in zip(parts, digests, strict=True)
    ]
    connection.execute(_insert(Attachment.__table__), rows)


def _insert_ignore(connection: Connection, model: type, rows: list[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING: a row that exists already is simply kept."""
    if rows:
        connection.execute(_insert_ignoring(connection.dialect.name, model), rows)


@functools.cache
def _insert_ignoring(dialect: str, model: type) -> Any:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(model.__table__).on_conflict_do_nothing()  # type: ignore[attr-defined]


def _count_message(conversation: Conversation, received_at: datetime) -> None:
    conversation.message_count = (conversation.message_count or 0) + 1
    if conversation.last_message_at is None or received_at > conversation.last_message_at:
        conversation.last_message_at = received_at


# --- bounces (F74) ---------------------------------------------------------------------------


def _bounced_conversation(
    batch: _Batch, mailbox: Mailbox, parsed: ParsedMessage, sender: str
) -> Conversation | None:
    bounce = parsed.bounce
    if bounce is None or not bounce.original_message_id:
        return None
    batch.flush()  # the bounced mail, or a contact it flags, may be new in this batch
    original = bounce.original_message_id[:MESSAGE_ID_MAX]
    return threading.find_bounced_conversation(
        batch.session,
        mailbox=mailbox,
        original_message_id=original,
        people=[sender, *bounce.failed_recipients],
    )


def _store_bounce(
    batch: _Batch,
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
        batch,
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
            contact = contacts.flag_bounced(
                batch.session,
                mailbox.organisation_id,
                address,
                reason=reason,
                when=mail.received_at,
            )
            key = (mailbox.organisation_id, contact.email)
            batch.remember(batch.contacts, key, (contact.id, contact.name))
    _count_message(conversation, mail.received_at)
    batch.touch(mailbox, mail.received_at)
    return _Delivery(message, conversation)


# --- the raw path (F71, F76) -----------------------------------------------------------------


def _store_raw(
    batch: _Batch,
    mail: InboundMail,
    parsed: ParsedMessage | None,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
    error: str,
) -> _Delivery:
    """The bytes and the error in a new conversation of the mailbox: nothing else is trusted."""
    error = _clean(error) or "unknown processing error"
    subject = _clean(parsed.subject) if parsed is not None and parsed.subject else ""
    conversation = Conversation(
        organisation_id=mailbox.organisation_id,
        mailbox_id=mailbox.id,
        queue_id=routing.default_queue_id(batch.session, mailbox),
        subject=subject or UNREADABLE_SUBJECT,
        status="open",
        last_message_at=mail.received_at,
        message_count=1,
    )
    batch.session.add(conversation)
    batch.session.flush()
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
    batch.session.add(message)
    batch.session.flush()
    batch.touch(mailbox, mail.received_at)
    return _Delivery(message, conversation, processing_error=error)


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
