"""One list row per conversation: every column a row shows, read in a single statement.

The names of mailbox, queue, contact and assignee come by join; the tags by a correlated
aggregate (a few index probes per row); `unread` from the reader's own read mark. Only the
rows of one page are ever joined, so the cost of a page does not grow with the list.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from tui_helpdesk.db.models import (
    Contact,
    Conversation,
    ConversationRead,
    ConversationTag,
    Mailbox,
    Message,
    MessageAuth,
    Queue,
    User,
)
from tui_helpdesk.errors import NotFound
from tui_helpdesk.records import ConversationRecord, UserRecord
from tui_helpdesk.services.conversations.visibility import visible

TAG_SEPARATOR = "\x1f"

_Assignee = aliased(User, name="assignee")


def unread(actor: UserRecord) -> Any:
    """True when the actor has no read mark, or newer mail arrived after it."""
    return or_(
        ConversationRead.last_read_message_at.is_(None),
        ConversationRead.last_read_message_at < Conversation.last_message_at,
    )


@functools.lru_cache(maxsize=64)
def row_query(actor: UserRecord) -> Select[Any]:
    """Every column a list row needs, for rows read by `actor` (whose read marks count).

    Built once per reader (a statement is immutable; callers add to copies): building one
    costs more than running it for a page.
    """
    tags = (
        select(func.aggregate_strings(ConversationTag.tag, TAG_SEPARATOR))
        .where(ConversationTag.conversation_id == Conversation.id)
        .scalar_subquery()
    )
    flagged = (  # F75: "spoof" sorts after "lookalike", so max() is the strongest warning
        select(func.max(MessageAuth.warning))
        .join(Message, Message.id == MessageAuth.message_id)
        .where(
            Message.conversation_id == Conversation.id,
            MessageAuth.warning.in_(("spoof", "lookalike")),
        )
        .scalar_subquery()
    )
    return (
        select(
            Conversation.id,
            Conversation.subject,
            Conversation.status,
            Conversation.priority,
            Conversation.message_count,
            Conversation.previous_conversation_id,
            Conversation.created_at,
            Conversation.last_message_at,
            Mailbox.email_address,
            Queue.name,
            Contact.email,
            Contact.name,
            _Assignee.email,
            tags,
            unread(actor),
            flagged,
        )
        .outerjoin(Mailbox, Mailbox.id == Conversation.mailbox_id)
        .outerjoin(Queue, Queue.id == Conversation.queue_id)
        .outerjoin(Contact, Contact.id == Conversation.contact_id)
        .outerjoin(_Assignee, _Assignee.id == Conversation.assignee_id)
        .outerjoin(
            ConversationRead,
            and_(
                ConversationRead.conversation_id == Conversation.id,
                ConversationRead.user_id == actor.id,
            ),
        )
    )


def to_record(row: Any) -> ConversationRecord:
    (ident, subject, status, priority, message_count, previous, created_at, last_message_at,
     mailbox, queue, contact, contact_name, assignee, tags, is_unread, flagged) = row  # fmt: skip
    return ConversationRecord(
        id=ident,
        subject=subject,
        status=status,
        priority=priority,
        mailbox=mailbox,
        queue=queue,
        contact=contact,
        contact_name=contact_name or "",
        assignee=assignee,
        tags=tuple(sorted(tags.split(TAG_SEPARATOR))) if tags else (),
        message_count=message_count,
        previous_conversation_id=previous,
        created_at=created_at,
        last_message_at=last_message_at,
        unread=bool(is_unread),
        flagged=flagged or "",
    )


def record_of(session: Session, actor: UserRecord, conversation_id: int) -> ConversationRecord:
    """One conversation's row as the actor sees it; NotFound when hidden from them."""
    row = session.execute(
        row_query(actor).where(Conversation.id == conversation_id, visible(actor))
    ).first()
    if row is None:
        raise NotFound(f"conversation {conversation_id} not found", field="conversation")
    return to_record(row)


def records_by_id(
    session: Session, actor: UserRecord, ids: list[int]
) -> dict[int, ConversationRecord]:
    """Rows of several conversations in one statement (the caller checked visibility)."""
    if not ids:
        return {}
    rows = session.execute(row_query(actor).where(Conversation.id.in_(ids)))
    return {record.id: record for record in map(to_record, rows)}
