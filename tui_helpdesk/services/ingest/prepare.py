"""The first step: what one ingest transaction looks up once (configuration, duplicates,
contacts), and the Batch every later step works on.

Setup may outlive a batch (SQLite, while nobody else writes); Batch lives for one
transaction and journals what a rolled-back savepoint must forget.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, String, any_, bindparam, func, or_, select
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import pipelined, read_together
from tui_helpdesk.db.models import (
    ConfigVersion,
    Contact,
    Conversation,
    Mailbox,
    Message,
    Organisation,
    Queue,
)
from tui_helpdesk.mail.inbound import InboundMail
from tui_helpdesk.mail.parsed import ParsedMessage
from tui_helpdesk.services import (
    assignment,
    audit,
    autoresponder,
    changes,
    contacts,
    routing,
    threading,
    webhooks,
)
from tui_helpdesk.services.ingest import locks
from tui_helpdesk.services.ingest.budget import Budget
from tui_helpdesk.services.ingest.clean import message_id_of, sender_of
from tui_helpdesk.services.ingest.rows import (
    ConversationRef,
    Delivery,
    NewContact,
    NewConversation,
    PendingRows,
    reserving,
    reserving_contacts,
    row_id,
    sqlite_read,
)

CONTACTS_KEPT = 50_000  # contacts remembered from batch to batch (SQLite; see Setup)


_STORED_COLUMNS = (
    Message.mailbox_id, Message.message_id_header, Message.raw_sha256, Message.id,
    Message.conversation_id,
)  # fmt: skip
_STORED = select(*_STORED_COLUMNS).where(  # PostgreSQL: one array parameter
    Message.message_id_header == any_(bindparam("ids", type_=ARRAY(String)))
)
_CONFIG_VERSION = select(ConfigVersion.version).where(ConfigVersion.id == 1)


@functools.cache
def _stored_among(count: int) -> Any:
    """The duplicate lookup for exactly `count` Message-IDs (SQLite's DBAPI path)."""
    ids = [bindparam(f"id{n}") for n in range(count)]
    return select(*_STORED_COLUMNS).where(Message.message_id_header.in_(ids))


_MAILBOX_SEEN = (
    Mailbox.__table__.update()
    .where(
        Mailbox.__table__.c.id == bindparam("mailbox_id"),
        # another worker may have stored later mail meanwhile: the time only moves forward
        or_(
            Mailbox.__table__.c.last_inbound_at.is_(None),
            Mailbox.__table__.c.last_inbound_at < bindparam("when"),
        ),
    )
    .values(last_inbound_at=bindparam("when"))
)


# --- configuration: read once per batch, on SQLite kept while nobody else writes --------------


class Setup:
    """The configuration batches read: mailboxes and their organisations, routing, queues with
    their assigners (members, rotation pointer), autoresponders.

    Read once per batch. On SQLite it is kept for the next batch when nothing but our batches
    wrote in between: `PRAGMA data_version` on the writer's connection changes exactly when
    another connection commits, its `total_changes` when anyone else wrote through that very
    connection, and our own batches change only what the kept rows carry (rotation pointers,
    last_inbound_at). On PostgreSQL other workers write all the time, so it is kept while the
    configuration version (bumped by every configuration change, services/audit.py) stays the
    same, and the assigners (the queue lock, its rotation pointer, available members) are made
    again for every batch. Any rollback drops it.
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.seen: tuple[int, int, int] | None = None  # connection, data_version, total_changes
        self.config_version: int | None = None  # PostgreSQL: the version the rows were read at
        self.mailboxes: dict[str, Mailbox] = {}  # by lowercased alias
        self.organisations: dict[int, Organisation] = {}
        self.queues: dict[int, Queue | None] = {}
        self.routings: dict[int, routing.InboundRouting] = {}
        self.assigners: dict[int, assignment.QueueAssigner] = {}
        # PostgreSQL: the queues the last batch locked, which the next locks with its first reads
        self.queues_locked: tuple[int, ...] = ()
        self.replies: dict[int, autoresponder.MailboxSetup | None] = {}
        self.webhooks: dict[int, webhooks.WebhookTarget | None] = {}
        self.contacts: dict[tuple[int, str], tuple[int, str]] = {}  # (org, email) → (id, name)
        self._writer: tuple[Any, int] | None = None  # this batch's DBAPI connection, version

    def remember_contacts(self, known: dict[tuple[int, str], tuple[int | NewContact, str]]) -> None:
        """Keep the batch's contacts (written by now) for the next batches, up to a bound."""
        if len(self.contacts) > CONTACTS_KEPT:
            self.contacts.clear()
        for key, (contact, name) in known.items():
            contact_id = row_id(contact)
            if contact_id is not None:
                self.contacts[key] = (contact_id, name)

    def begin(self, session: Session) -> None:
        """Keep or drop what earlier batches read, at the start of a write transaction.

        Kept rows stay detached: ingest only reads them, and writes the two columns it changes
        (rotation pointer, last_inbound_at) with UPDATEs of its own.
        """
        connection = session.connection()
        if connection.dialect.name != "sqlite":
            self._begin_shared(session)
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

    def _begin_shared(self, session: Session) -> None:
        """PostgreSQL: never keep the assigners; the configuration is checked by the batch's
        first reads (Batch.prepare reads its version with them)."""
        self.assigners.clear()

    def holds(self, version: int) -> bool:
        """PostgreSQL: True when the kept configuration was read at this version, else it is
        dropped (and the version it will be read at remembered)."""
        if version == self.config_version:
            return True
        self.clear()
        self.config_version = version
        return False

    def committed(self) -> None:
        """Our batch committed: what is kept is what the database holds (see the class)."""
        if self._writer is not None:
            dbapi, version = self._writer
            self.seen = (id(dbapi), version, dbapi.total_changes)
            self._writer = None


# --- the batch: what one transaction looks up once -------------------------------------------

_MISSING = object()


class Batch:
    """Lookups shared by the mails of one transaction, its pending rows, and what to do once
    at its end.

    The writer stores up to a few dozen mails per transaction; asking the database for each
    one's mailbox, duplicates, contact, routing rules, queue members and autoresponder
    separately would cost more than storing it. Entries learnt inside a savepoint are
    journaled, so a rolled-back savepoint forgets them too.
    """

    def __init__(
        self,
        session: Session,
        settings: Settings,
        *,
        careful: bool,
        setup: Setup | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.careful = careful  # one savepoint per stored copy, flushed at its end
        self.budget = budget or Budget(settings.smtp.processing_budget_seconds)
        self.setup = setup or Setup()
        self.setup.begin(session)
        self.shared = session.get_bind().dialect.name != "sqlite"  # other workers write too
        self.pending = PendingRows()
        self.stored: dict[tuple[int, str, str], Delivery] = {}
        self.contacts: dict[tuple[int, str], tuple[int | NewContact, str]] = {}
        self.last_inbound: dict[int, tuple[Mailbox, datetime]] = {}
        self.attached: dict[NewConversation, Conversation] = {}
        self.changed = False
        self.rolled_back = False  # a savepoint was rolled back: the kept setup may be stale
        self._journal: list[tuple[dict[Any, Any] | None, Any, Any]] = []

    def prepare(self, mails: Sequence[tuple[InboundMail, ParsedMessage | None]]) -> None:
        """Mailboxes, locks, duplicates and contacts of the batch, before any mail is stored.

        On PostgreSQL with the configuration kept, the configuration version, the locks and
        the reads go in one round trip; were the version moved on, nothing read with it is
        used and the configuration is read again first.
        """
        aliases = {r.strip().lower() for mail, _ in mails for r in mail.rcpt_tos}
        if self.shared:
            kept = self.setup.config_version is not None and all(
                a in self.setup.mailboxes for a in aliases
            )
            if kept and self._look_up(mails, aliases, with_version=True):
                return
            if not kept:
                self.setup.holds(audit.config_version(self.session))
        self._load_mailboxes(aliases)
        self._look_up(mails, aliases, with_version=False)

    def _load_mailboxes(self, aliases: set[str]) -> None:
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

    def _look_up(
        self,
        mails: Sequence[tuple[InboundMail, ParsedMessage | None]],
        aliases: set[str],
        *,
        with_version: bool,
    ) -> bool:
        """Lock the batch's Message-IDs and new senders, then read which are stored already.

        False (nothing learnt) when the configuration version read along (with_version) is
        not the kept configuration's.
        """
        parsed = [p for _, p in mails if p is not None]
        senders = {s for mail, p in mails if p is not None and (s := sender_of(p, mail)[0])}
        receiving = (self.setup.mailboxes.get(a) for a in aliases)
        organisations = {m.organisation_id for m in receiving if m is not None}
        unknown = {
            organisation_id: [s for s in senders if (organisation_id, s) not in self.setup.contacts]
            for organisation_id in organisations
        }
        keys = [
            *(k for p in parsed for k in locks.message_keys(p)),
            *(locks.contact_key(o, s) for o, emails in unknown.items() for s in emails),
        ]
        message_ids = list(dict.fromkeys(i for p in parsed if (i := message_id_of(p)) is not None))
        if self.shared:
            found = self._read_shared(mails, keys, message_ids, unknown, with_version=with_version)
            if found is None:
                return False
            stored, known = found
        else:  # SQLite: no locks (its writers take turns); the DBAPI read is cheaper
            stored = sqlite_read(self.session.connection(), _stored_among(len(message_ids)),
                                 message_ids) if message_ids else []  # fmt: skip
            known = {o: contacts.known_ids(self.session, o, e) for o, e in unknown.items()}
        for mailbox_id, message_id, sha, stored_id, conversation_id in stored:
            if mailbox_id is not None:
                key = (mailbox_id, message_id, sha)
                self.stored.setdefault(key, Delivery(stored_id, conversation_id, duplicate=True))
        for organisation_id in unknown:
            for sender in senders:
                kept = self.setup.contacts.get((organisation_id, sender))
                if kept is not None:
                    self.contacts[(organisation_id, sender)] = kept
            for email, entry in known[organisation_id].items():
                self.contacts[(organisation_id, email)] = entry
        return True

    def _read_shared(
        self,
        mails: Sequence[tuple[InboundMail, ParsedMessage | None]],
        keys: list[int],
        message_ids: list[str],
        unknown: dict[int, list[str]],
        *,
        with_version: bool,
    ) -> tuple[list[Any], dict[int, dict[str, tuple[int, str]]]] | None:
        """PostgreSQL, in one round trip: the version (with_version), the locks, the queues the
        last batch locked (likely this one's: their assigners are made from these rows), the
        reads, and ids for the rows the batch will likely add (PendingRows.reserve). None when
        the version says the kept configuration is stale (the ids are kept all the same: any
        row of their table may have them)."""
        taking = locks.statement(keys)
        queues = [q for i in self.setup.queues_locked if (q := self.setup.queues.get(i))]
        queues = queues if with_version else []
        asking = [o for o, emails in unknown.items() if emails]
        messages, conversations = self._likely_rows(mails)
        reads = [
            *([(_CONFIG_VERSION, {})] if with_version else []),
            *([taking] if taking is not None else []),
            *(read for queue in queues for read in assignment.locking_reads(queue.id)),
            *([(_STORED, {"ids": message_ids})] if message_ids else []),
            *(contacts.known_ids_read(o, unknown[o]) for o in asking),
            *(reserving_contacts(o, unknown[o]) for o in asking),
            reserving(messages, conversations),
        ]
        found = read_together(self.session, reads)
        [(message_ids_ahead, conversation_ids_ahead)] = found.pop()
        self.pending.reserve(Message.__table__, message_ids_ahead)
        self.pending.reserve(Conversation.__table__, conversation_ids_ahead)
        for contact_ids_ahead in found[len(found) - len(asking) :]:
            self.pending.reserve(Contact.__table__, contact_ids_ahead[0][0])
        rows = iter(found)
        if with_version:
            version = next(rows)
            if not self.setup.holds(version[0][0] if version else 0):
                return None
        if taking is not None:
            next(rows)
        for queue in queues:
            locked = (next(rows), next(rows))
            if queue not in self.session:  # kept from an earlier batch
                self.session.add(queue)
            self.setup.assigners[queue.id] = assignment.QueueAssigner(self.session, queue, locked)
        stored = next(rows) if message_ids else []
        known: dict[int, dict[str, tuple[int, str]]] = {o: {} for o in unknown}
        for organisation_id in asking:
            known[organisation_id] = {email: (i, name) for email, i, name in next(rows)}
        return stored, known

    def _likely_rows(
        self, mails: Sequence[tuple[InboundMail, ParsedMessage | None]]
    ) -> tuple[int, int]:
        """How many more message and conversation ids the batch will most likely need: a copy
        per receiving mailbox, each in a new conversation unless it may thread (or bounce),
        less the ids it holds already (its first reads were sent twice: the configuration
        had changed)."""
        prefix = self.settings.mail.subject_token_prefix
        messages = conversations = 0
        for mail, parsed in mails:
            if parsed is None:
                continue
            copies = len(self.receiving(mail.rcpt_tos))
            messages += copies
            if parsed.bounce is None and not threading.has_evidence(parsed, prefix):
                conversations += copies
        held = self.pending.reserved
        return (max(0, messages - len(held.get(Message.__tablename__, ()))),
                max(0, conversations - len(held.get(Conversation.__tablename__, ()))))  # fmt: skip

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

    def assignee(self, queue: Queue, contact: int | NewContact | None, now: datetime) -> int | None:
        assigner = self.setup.assigners.get(queue.id)
        if assigner is None:
            if queue not in self.session:  # kept from an earlier batch; the lock is re-taken
                self.session.add(queue)
            assigner = assignment.QueueAssigner(self.session, queue)
            self.setup.assigners[queue.id] = assigner
        if assigner.reads_history(contact is not None):
            self.flush()  # sticky routing and counts must see this batch's conversations
        return assigner.choose(row_id(contact), now)

    def reply_setup(self, mailbox: Mailbox) -> autoresponder.MailboxSetup | None:
        replies = self.setup.replies
        if mailbox.id not in replies:
            replies[mailbox.id] = autoresponder.load_setup(self.session, self.settings, mailbox)
        return replies[mailbox.id]

    def webhook(self, mailbox: Mailbox) -> webhooks.WebhookTarget | None:
        found = self.setup.webhooks
        if mailbox.id not in found:
            found[mailbox.id] = webhooks.target_of(self.session, mailbox.id)
        return found[mailbox.id]

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

    def orm(self, conversation: ConversationRef) -> Conversation:
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

    def finish(self, *, commit: bool = False) -> None:
        """The batch's last writes; on PostgreSQL sent in one round trip (nothing here reads
        an answer but the ids of the new rows), with the COMMIT when `commit` says the
        transaction ends here (store_batch's: nothing follows but building the results).

        Changed ORM objects (a conversation a reply joined, a contact's learnt name) are
        flushed before: the ORM checks each UPDATE's row count, which pipeline mode does not
        report, so an autoflush inside the block would fail the batch's fast attempt.
        """
        self.pending.number(self.session)
        self.session.flush()
        with pipelined(self.session, commit=commit):
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
        if self.shared:
            self.setup.queues_locked = tuple(sorted(
                queue_id for queue_id, assigner in self.setup.assigners.items()
                if assignment.QueueAssigner.locks(assigner.queue)
            ))  # fmt: skip
