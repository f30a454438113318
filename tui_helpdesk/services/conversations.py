"""The read side of conversations: lists, counts and threads, limited to what the actor may see.

Visibility: a global admin sees every conversation of the organisation; an agent sees one when
they are its assignee, a member of its queue, or a member of any queue linked to its mailbox.
A page is one query (joins plus a correlated tag aggregate), ordered by the
(status, last_message_at) index, so the TUI can read any page of a 100k-row inbox on demand.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, true
from sqlalchemy.orm import Session, aliased

from tui_helpdesk.db.models import (
    Attachment,
    Contact,
    Conversation,
    ConversationTag,
    Mailbox,
    Message,
    Queue,
    QueueMailbox,
    QueueMember,
    User,
)
from tui_helpdesk.errors import Invalid, NotFound
from tui_helpdesk.records import (
    AttachmentRecord,
    ConversationDetail,
    ConversationRecord,
    MessageRecord,
    UserRecord,
)
from tui_helpdesk.services.outbox import delivery_states

STATUSES = ("open", "pending", "closed")
TAG_SEPARATOR = "\x1f"

_Assignee = aliased(User, name="assignee")


def _visible(actor: UserRecord) -> ColumnElement[bool]:
    """The SQL condition for 'the actor may see this conversation'."""
    if not actor.active:
        return false()
    in_org = Conversation.organisation_id == actor.organisation_id
    if actor.is_admin:
        return in_org
    member_queues = select(QueueMember.queue_id).where(QueueMember.user_id == actor.id)
    member_mailboxes = select(QueueMailbox.mailbox_id).where(
        QueueMailbox.queue_id.in_(member_queues)
    )
    return and_(
        in_org,
        or_(
            Conversation.assignee_id == actor.id,
            Conversation.queue_id.in_(member_queues),
            Conversation.mailbox_id.in_(member_mailboxes),
        ),
    )


def _filters(
    session: Session,
    actor: UserRecord,
    *,
    status: str | None,
    queue: str | None,
    mailbox: str | None,
) -> list[ColumnElement[bool]]:
    """Visibility plus the optional filters; unknown names are NotFound, a bad status Invalid."""
    conditions = [_visible(actor)]
    if status is not None:
        if status not in STATUSES:
            raise Invalid(
                f"status must be one of {', '.join(STATUSES)}, got {status!r}", field="status"
            )
        conditions.append(Conversation.status == status)
    if queue is not None:
        conditions.append(Conversation.queue_id == _queue_id(session, actor, queue))
    if mailbox is not None:
        conditions.append(Conversation.mailbox_id.in_(_mailbox_ids(session, actor, mailbox)))
    return conditions


def _queue_id(session: Session, actor: UserRecord, name: str) -> int:
    found = session.scalar(
        select(Queue.id).where(Queue.organisation_id == actor.organisation_id, Queue.name == name)
    )
    if found is None:
        raise NotFound(f"no queue named {name!r}", field="queue")
    return found


def _mailbox_ids(session: Session, actor: UserRecord, address: str) -> list[int]:
    """Mailboxes named by email address (or alias); deleted and inactive ones keep their mail."""
    wanted = address.strip().lower()
    ids = session.scalars(
        select(Mailbox.id).where(
            Mailbox.organisation_id == actor.organisation_id,
            or_(func.lower(Mailbox.email_address) == wanted, func.lower(Mailbox.alias) == wanted),
        )
    ).all()
    if not ids:
        raise NotFound(f"no mailbox with address {address!r}", field="mailbox")
    return list(ids)


def _row_query() -> Select[Any]:
    """Every column a list row needs, joined in one statement."""
    tags = (
        select(func.aggregate_strings(ConversationTag.tag, TAG_SEPARATOR))
        .where(ConversationTag.conversation_id == Conversation.id)
        .scalar_subquery()
    )
    return (
        select(
            Conversation,
            Mailbox.email_address,
            Queue.name,
            Contact.email,
            Contact.name,
            _Assignee.email,
            tags,
        )
        .outerjoin(Mailbox, Mailbox.id == Conversation.mailbox_id)
        .outerjoin(Queue, Queue.id == Conversation.queue_id)
        .outerjoin(Contact, Contact.id == Conversation.contact_id)
        .outerjoin(_Assignee, _Assignee.id == Conversation.assignee_id)
    )


def _to_record(row: Any) -> ConversationRecord:
    conversation, mailbox, queue, contact, contact_name, assignee, tags = row
    return ConversationRecord(
        id=conversation.id,
        subject=conversation.subject,
        status=conversation.status,
        priority=conversation.priority,
        mailbox=mailbox,
        queue=queue,
        contact=contact,
        contact_name=contact_name or "",
        assignee=assignee,
        tags=tuple(sorted(tags.split(TAG_SEPARATOR))) if tags else (),
        message_count=conversation.message_count,
        previous_conversation_id=conversation.previous_conversation_id,
        created_at=conversation.created_at,
        last_message_at=conversation.last_message_at,
    )


def list_conversations(
    session: Session,
    actor: UserRecord,
    *,
    status: str | None = None,
    queue: str | None = None,
    mailbox: str | None = None,
    limit: int | None = 50,
    offset: int = 0,
) -> list[ConversationRecord]:
    """Newest first (last_message_at desc, id desc). status=None means every status."""
    if offset < 0 or (limit is not None and limit < 0):
        raise Invalid("limit and offset must not be negative", field="limit")
    conditions = _filters(session, actor, status=status, queue=queue, mailbox=mailbox)
    query = (
        _row_query()
        .where(*conditions)
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return [_to_record(row) for row in session.execute(query)]


def count_conversations(
    session: Session,
    actor: UserRecord,
    *,
    status: str | None = None,
    queue: str | None = None,
    mailbox: str | None = None,
) -> int:
    conditions = _filters(session, actor, status=status, queue=queue, mailbox=mailbox)
    query = select(func.count()).select_from(Conversation).where(*conditions)
    return session.scalar(query) or 0


def find_position(
    session: Session,
    actor: UserRecord,
    conversation_id: int,
    *,
    status: str | None = None,
    queue: str | None = None,
    mailbox: str | None = None,
) -> int | None:
    """Where a conversation stands in list_conversations' order, or None when it is not listed.

    Lets a list keep its cursor on the same conversation after new mail moves rows around,
    with one count instead of reading every page before it.
    """
    conditions = _filters(session, actor, status=status, queue=queue, mailbox=mailbox)
    anchor = session.execute(
        select(Conversation.last_message_at, Conversation.id).where(
            Conversation.id == conversation_id, *conditions
        )
    ).first()
    if anchor is None:
        return None
    last, ident = anchor
    newer = or_(
        Conversation.last_message_at > last,
        and_(Conversation.last_message_at == last, Conversation.id > ident),
    )
    query = select(func.count()).select_from(Conversation).where(newer, *conditions)
    return session.scalar(query) or 0


def can_see(session: Session, actor: UserRecord, conversation: Conversation) -> bool:
    """The same rule as the list filter, for one conversation already loaded."""
    query = select(true()).where(Conversation.id == conversation.id, _visible(actor))
    return session.scalar(query) is not None


def get_conversation(
    session: Session, actor: UserRecord, conversation_id: int
) -> ConversationDetail:
    """The thread, oldest message first. NotFound also when it exists but is not visible."""
    row = session.execute(
        _row_query().where(Conversation.id == conversation_id, _visible(actor))
    ).first()
    if row is None:
        raise NotFound(f"conversation {conversation_id} not found", field="conversation")
    messages = session.scalars(
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.received_at, Message.id)
    ).all()
    attachments = _attachments_by_message(session, [m.id for m in messages])
    sending = delivery_states(session, [m.id for m in messages if m.direction == "outbound"])
    return ConversationDetail(
        conversation=_to_record(row),
        messages=tuple(
            _message_record(m, attachments[m.id], sending.get(m.id, ("", ""))) for m in messages
        ),
    )


def _attachments_by_message(
    session: Session, message_ids: list[int]
) -> dict[int, list[AttachmentRecord]]:
    found: dict[int, list[AttachmentRecord]] = defaultdict(list)
    if not message_ids:
        return found
    rows = session.scalars(
        select(Attachment)
        .where(Attachment.message_id.in_(message_ids))
        .order_by(Attachment.message_id, Attachment.id)
    )
    for attachment in rows:
        found[attachment.message_id].append(
            AttachmentRecord(
                id=attachment.id,
                filename=attachment.filename,
                content_type=attachment.content_type,
                size=attachment.size,
                sha256=attachment.sha256,
                disposition=attachment.disposition,
            )
        )
    return found


def _message_record(
    message: Message, attachments: list[AttachmentRecord], delivery: tuple[str, str]
) -> MessageRecord:
    return MessageRecord(
        id=message.id,
        direction=message.direction,
        kind=message.kind,
        message_id=message.message_id_header,
        subject=message.subject,
        from_address=message.from_address,
        from_name=message.from_name,
        to=message.to_addresses,
        cc=message.cc_addresses,
        sent_at=message.sent_at,
        received_at=message.received_at,
        text_body=message.text_body,
        raw_size=message.raw_size,
        raw_sha256=message.raw_sha256,
        defects=tuple(str(d) for d in message.defects or ()),
        attachments=tuple(attachments),
        delivery=delivery[0],
        delivery_error=delivery[1],
    )
