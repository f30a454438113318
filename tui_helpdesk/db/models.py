"""SQLAlchemy 2 typed models. The schema itself exists only through the Alembic migrations.

Some schema has no model because only SQL reaches it: on SQLite the `change_counter` row and
its triggers (services/changes.py) and the `message_search` FTS5 table with its triggers; on
PostgreSQL the `messages.search` tsvector column (filled after the commit by the worker's
search indexer) and its GIN index (services/search/). A batch migration that recreates a
SQLite table drops its triggers: recreate them in the same revision.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    select,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    column_property,
    deferred,
    mapped_column,
    relationship,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone: store naive UTC, read aware)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Organisation(Timestamped, Base):
    __tablename__ = "organisations"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    language: Mapped[str] = mapped_column(String(16), default="en")
    # F19 global switch: off silences every autoresponder of the organisation at once.
    autoresponders_enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class EmailDomain(Base):
    __tablename__ = "email_domains"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    domain: Mapped[str] = mapped_column(String(253), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class User(Timestamped, Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    first_name: Mapped[str] = mapped_column(String(255), default="")
    last_name: Mapped[str] = mapped_column(String(255), default="")
    role: Mapped[str] = mapped_column(String(16), default="agent")  # admin | agent
    availability: Mapped[str] = mapped_column(String(16), default="available")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    os_user: Mapped[str | None] = mapped_column(String(64), unique=True)
    timezone: Mapped[str | None] = mapped_column(String(64))  # None: the organisation's


class UserKey(Base):
    """An SSH public key that logs in as its user (F3, gitolite-style); one user per key."""

    __tablename__ = "user_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_type: Mapped[str] = mapped_column(String(64))
    key_data: Mapped[str] = mapped_column(Text)  # the base64 blob, as in authorized_keys
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)  # SHA256:…, as ssh-keygen -l
    comment: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Mailbox(Timestamped, Base):
    __tablename__ = "mailboxes"
    __table_args__ = (
        Index(
            "uq_mailboxes_active_address",
            "email_address",
            unique=True,
            sqlite_where=text("status = 'active' AND deleted_at IS NULL"),
            postgresql_where=text("status = 'active' AND deleted_at IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(255))
    local_part: Mapped[str] = mapped_column(String(64))
    domain_id: Mapped[int] = mapped_column(ForeignKey("email_domains.id"))
    email_address: Mapped[str] = mapped_column(String(320), index=True)
    alias: Mapped[str] = mapped_column(String(320), unique=True)
    timezone: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    department: Mapped[str] = mapped_column(String(255), default="")
    responsible_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # active | inactive: the life cycle (F14). An active mailbox not verified yet (F16) shows
    # as `pending`: it receives (its alias is accepted) and counts as active for every rule,
    # but sends nothing until verified_at is set.
    status: Mapped[str] = mapped_column(String(16), default="active")
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    binding_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # test came back
    private: Mapped[bool] = mapped_column(Boolean, default=False)  # F21: see MailboxGrant
    signature_text: Mapped[str] = mapped_column(Text, default="")  # F18
    signature_html: Mapped[str] = mapped_column(Text, default="")
    close_notice_enabled: Mapped[bool] = mapped_column(Boolean, default=True)  # F45
    close_notice_text: Mapped[str] = mapped_column(Text, default="")  # "" = the built-in text


class MailboxVerification(Base):
    """F16: the code last mailed to a pending mailbox's address (hashed), and wrong tries."""

    __tablename__ = "mailbox_verifications"
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id"), primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(255))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class MailboxBindingTest(Base):
    """F16: a marked test mail sent to the mailbox's address; returned_at once it came back
    through the customer's forwarding rule to the alias."""

    __tablename__ = "mailbox_binding_tests"
    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id"), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class MailboxSender(Base):
    """F20: the users who may send from a mailbox; no row means everyone who may reply."""

    __tablename__ = "mailbox_senders"
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)


class MailboxGrant(Base):
    """F21: the users who may see the conversations of a private mailbox."""

    __tablename__ = "mailbox_grants"
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)


class Autoresponder(Timestamped, Base):
    """F19: one per mailbox. windows: [{"start": "2026-12-24T00:00", "end": "..."}] local time."""

    __tablename__ = "autoresponders"
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    subject: Mapped[str] = mapped_column(String(255), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    windows: Mapped[list[Any]] = mapped_column(default=list)
    delay_seconds: Mapped[int] = mapped_column(Integer, default=0)


class Queue(Timestamped, Base):
    __tablename__ = "queues"
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    colour: Mapped[str] = mapped_column(String(32), default="")
    # F32 assignment
    assignment_rule: Mapped[str] = mapped_column(String(16), default="manual")
    fallback_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    sticky_days: Mapped[int] = mapped_column(Integer, default=0)
    last_assigned_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # F33 working hours: schedule {"mon": [["09:00", "17:00"]], ...}; holidays ["2026-12-25", ...]
    hours_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str | None] = mapped_column(String(64))
    schedule: Mapped[dict[str, Any]] = mapped_column(default=dict)
    holidays: Mapped[list[Any]] = mapped_column(default=list)
    outside_hours_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    outside_hours_subject: Mapped[str] = mapped_column(String(255), default="")
    outside_hours_body: Mapped[str] = mapped_column(Text, default="")

    mailbox_links: Mapped[list[QueueMailbox]] = relationship(
        back_populates="queue", cascade="all, delete-orphan", order_by="QueueMailbox.position"
    )
    members: Mapped[list[QueueMember]] = relationship(
        back_populates="queue", cascade="all, delete-orphan", order_by="QueueMember.user_id"
    )


class QueueMailbox(Base):
    __tablename__ = "queue_mailboxes"
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"), primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(
        ForeignKey("mailboxes.id"), primary_key=True, index=True
    )
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    queue: Mapped[Queue] = relationship(back_populates="mailbox_links")
    mailbox: Mapped[Mailbox] = relationship()


class QueueMember(Base):
    __tablename__ = "queue_members"
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(16), default="agent")  # agent | admin
    weight: Mapped[int] = mapped_column(Integer, default=1)  # percentage strategy
    # time strategy: [{"days": ["mon", ...], "start": "09:00", "end": "13:00"}] in queue timezone
    slots: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    queue: Mapped[Queue] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


class RoutingRule(Timestamped, Base):
    """F34. conditions: [{"field": "sender_domain", "op": "equals", "value": "acme.test"}]."""

    __tablename__ = "routing_rules"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    position: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    match: Mapped[str] = mapped_column(String(8), default="all")  # all | any
    conditions: Mapped[list[Any]] = mapped_column(default=list)
    action_queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id"))
    action_priority: Mapped[str | None] = mapped_column(String(16))
    action_tag: Mapped[str | None] = mapped_column(String(64))


class Contact(Timestamped, Base):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("organisation_id", "email"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(255), default="")
    bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    bounce_reason: Mapped[str] = mapped_column(Text, default="")


_VISIBILITY_COLUMNS = ("organisation_id", "status", "assignee_id", "queue_id", "mailbox_id")


def _keyset_index(name: str, *columns: str) -> Index:
    """A list view's filter columns, then the list order (newest first, ties by id), then the
    rest of what visibility reads: pages and counts read this index alone."""
    rest = [c for c in _VISIBILITY_COLUMNS if c not in columns]
    return Index(name, *columns, "last_message_at", "id", *rest)


class Conversation(Timestamped, Base):
    __tablename__ = "conversations"
    __table_args__ = (
        _keyset_index("ix_conversations_org_status_last", "organisation_id", "status"),
        _keyset_index(
            "ix_conversations_assignee_status_last", "organisation_id", "assignee_id", "status"
        ),
        _keyset_index(
            "ix_conversations_queue_status_last", "organisation_id", "queue_id", "status"
        ),
        _keyset_index(
            "ix_conversations_mailbox_status_last", "organisation_id", "mailbox_id", "status"
        ),
        _keyset_index("ix_conversations_org_last", "organisation_id"),
        # the stats' period (services/stats.py): covering, so no conversation row is read
        Index("ix_conversations_org_created", "organisation_id", "created_at", "queue_id",
              "assignee_id", "status", "closed_at"),
        Index("ix_conversations_org_closed", "organisation_id", "closed_at", "status",
              "queue_id", "assignee_id", "created_at"),
    )  # fmt: skip
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailboxes.id"))
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | pending | closed
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    previous_conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    message_count: Mapped[int] = mapped_column(Integer, default=0)


class ConversationTag(Base):
    __tablename__ = "conversation_tags"
    __table_args__ = (Index("ix_conversation_tags_tag", "tag", "conversation_id"),)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)


class ConversationRead(Base):
    """How far a user has read a conversation: unread while newer mail arrived since."""

    __tablename__ = "conversation_reads"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id"), primary_key=True, index=True
    )
    last_read_message_id: Mapped[int | None] = mapped_column(Integer)
    last_read_message_at: Mapped[datetime] = mapped_column(UTCDateTime())
    read_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ConversationParticipant(Base):
    """Addresses that took part (From, To, Cc of its messages): who may thread into it (F41)."""

    __tablename__ = "conversation_participants"
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True, index=True)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_received", "conversation_id", "received_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailboxes.id"), index=True)
    direction: Mapped[str] = mapped_column(String(16), default="inbound")  # inbound | outbound
    kind: Mapped[str] = mapped_column(String(16), default="mail")  # mail | auto_reply | bounce
    message_id_header: Mapped[str | None] = mapped_column(String(998), index=True)
    in_reply_to: Mapped[str] = mapped_column(Text, default="")
    references: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    from_address: Mapped[str] = mapped_column(String(320), default="")
    from_name: Mapped[str] = mapped_column(Text, default="")
    to_addresses: Mapped[str] = mapped_column(Text, default="")
    cc_addresses: Mapped[str] = mapped_column(Text, default="")
    envelope_from: Mapped[str] = mapped_column(Text, default="")
    envelope_to: Mapped[str] = mapped_column(Text, default="")
    date_header: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    text_body: Mapped[str] = mapped_column(Text, default="")
    html_body: Mapped[str] = deferred(mapped_column(Text, default=""))
    raw: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    raw_sha256: Mapped[str] = mapped_column(String(64), index=True)
    raw_size: Mapped[int] = mapped_column(BigInteger, default=0)
    defects: Mapped[list[Any]] = mapped_column(default=list)
    auto_submitted: Mapped[str] = mapped_column(String(64), default="")
    bounce_recipient: Mapped[str] = mapped_column(String(320), default="")
    processing_error: Mapped[str] = mapped_column(Text, default="")


class MessageAuth(Base):
    """F75: who really sent an inbound message. Made with the message (status queued, with the
    SMTP session's client address and HELO), checked later by a worker's auth checker: SPF,
    DKIM, DMARC and the warning (services/inbound_auth/)."""

    __tablename__ = "message_auth"
    __table_args__ = (
        Index("ix_message_auth_due", "status", "next_attempt_at"),
        Index("ix_message_auth_warning", "warning"),
    )
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    # queued | checking | retrying | done (a job, like the outbox's; see inbound_auth.jobs).
    # Ingest inserts only the envelope: everything else has a server default (less per row).
    status: Mapped[str] = mapped_column(String(16), server_default="queued")
    peer_ip: Mapped[str] = mapped_column(String(64), server_default="")
    helo: Mapped[str] = mapped_column(Text, server_default="")
    mail_from: Mapped[str] = mapped_column(Text, server_default="")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    # due at once unless the writer says otherwise (a row made by hand or by reprocess)
    next_attempt_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=lambda: datetime.now(UTC)
    )
    claimed_by: Mapped[str] = mapped_column(String(255), server_default="")
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # the results ("" until checked): pass | fail | softfail | neutral | none | temperror | …
    spf: Mapped[str] = mapped_column(String(16), server_default="")
    dkim: Mapped[str] = mapped_column(String(16), server_default="")  # the best signature's
    dmarc: Mapped[str] = mapped_column(String(16), server_default="")
    from_domain: Mapped[str] = mapped_column(String(253), server_default="")
    spf_domain: Mapped[str] = mapped_column(String(253), server_default="")
    dkim_domains: Mapped[str] = mapped_column(Text, server_default="")  # comma-separated
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the MessageAuthRecord
    explanation: Mapped[str] = mapped_column(Text, server_default="")
    warning: Mapped[str] = mapped_column(String(16), server_default="none")  # lookalike | spoof
    warning_reason: Mapped[str] = mapped_column(Text, server_default="")
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Blob(Base):
    """Content-addressed attachment bytes (sha256), stored once however often they arrive."""

    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = deferred(mapped_column(LargeBinary))


class Attachment(Base):
    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    filename: Mapped[str] = mapped_column(Text, default="")
    content_type: Mapped[str] = mapped_column(String(255), default="application/octet-stream")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    disposition: Mapped[str] = mapped_column(String(16), default="attachment")  # or inline
    content_id: Mapped[str] = mapped_column(String(998), default="")


class OutboxJob(Timestamped, Base):
    """F73: every outgoing mail is a durable job (auto-replies included)."""

    __tablename__ = "outbox_jobs"
    __table_args__ = (Index("ix_outbox_jobs_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailboxes.id"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="reply")  # outbox.queue.KINDS
    # queued | sending | retrying | sent | failed (vocabulary.OUTBOX_STATUSES)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    mail_from: Mapped[str] = mapped_column(String(320), default="")
    rcpt_to: Mapped[list[Any]] = mapped_column(default=list)
    # The bytes to send (a webhook job: its JSON body) live in outbox_bodies, written once:
    # claims and results rewrite this row twice per job, and SQLite copies a row whole at
    # each update, its triggers' OLD and NEW too. Read as `raw` (deferred), set as `body`.
    body: Mapped[OutboxBody] = relationship(cascade="all, delete-orphan", uselist=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # when it was queued, or queued again by `outbox retry`: the give-up age counts from here
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # the claim: which sender holds it (status sending) and until when
    claimed_by: Mapped[str] = mapped_column(String(255), default="")
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # webhook jobs (F22): where the body goes, its event, and the id the receiver dedupes on
    url: Mapped[str] = mapped_column(Text, default="")
    event: Mapped[str] = mapped_column(String(64), default="")
    delivery_id: Mapped[str] = mapped_column(String(64), default="")


class OutboxBody(Base):
    """The bytes of an outbox job, apart from the job's row (see OutboxJob.body)."""

    __tablename__ = "outbox_bodies"
    job_id: Mapped[int] = mapped_column(ForeignKey("outbox_jobs.id"), primary_key=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)


OutboxJob.raw = column_property(
    select(OutboxBody.raw)
    .where(OutboxBody.job_id == OutboxJob.id)
    .correlate_except(OutboxBody)
    .scalar_subquery(),
    deferred=True,
)


class MailboxTransport(Timestamped, Base):
    """F17: the mailbox's own outgoing SMTP server; no row means the platform relay.

    The password is stored as given: whoever can read the database is inside the trust
    boundary (F3). It never leaves the services except towards the server it is for.
    """

    __tablename__ = "mailbox_transports"
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id"), primary_key=True)
    host: Mapped[str] = mapped_column(String(253))
    port: Mapped[int] = mapped_column(Integer)
    security: Mapped[str] = mapped_column(String(16), default="starttls")  # none|starttls|tls
    username: Mapped[str] = mapped_column(String(255), default="")
    password: Mapped[str] = mapped_column(Text, default="")


class MailboxWebhook(Timestamped, Base):
    """F22: the https URL told about the mailbox's conversations, and the signing secret."""

    __tablename__ = "mailbox_webhooks"
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id"), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)


class AutoReplyLog(Base):
    """One row per auto-reply sent: the per-sender, per-mailbox, per-period limit (F72)."""

    __tablename__ = "auto_reply_log"
    __table_args__ = (Index("ix_auto_reply_log_lookup", "mailbox_id", "recipient", "sent_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id"))
    recipient: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(16), default="autoresponder")
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AutoReplyClaim(Base):
    """The last auto-reply per mailbox and recipient: the row the one-per-period rule (F72)
    claims atomically, so two workers answering the same sender at once send one reply."""

    __tablename__ = "auto_reply_claims"
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id"), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320), primary_key=True)
    last_sent_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConfigVersion(Base):
    """One row: bumped by every audited configuration change (see services/audit.py), so a
    worker on PostgreSQL knows when the configuration it keeps between batches is stale."""

    __tablename__ = "config_version"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)


class AuditEntry(Base):
    """F61: who did what, when, with the state before and after."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_label: Mapped[str] = mapped_column(String(320), default="")
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64), default="")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class WorkerStatus(Base):
    """F76 health row: one per running worker, updated by its timers."""

    __tablename__ = "worker_status"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer, default=0)
    smtp_address: Mapped[str] = mapped_column(String(255), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    accepted_count: Mapped[int] = mapped_column(BigInteger, default=0)
    # this worker's own intake lately, from the counts of its recent heartbeats
    accepted_last_minute: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    accepted_last_hour: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error_count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")


class Draft(Base):
    """An answer being written in the TUI's composer (F43): one per conversation and user, kept
    until it is sent or discarded, so an escape pressed by mistake loses nothing."""

    __tablename__ = "drafts"
    __table_args__ = (UniqueConstraint("conversation_id", "user_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    mode: Mapped[str] = mapped_column(String(16), default="reply")  # drafts.MODES
    to_addresses: Mapped[str] = mapped_column(Text, default="")
    cc_addresses: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
