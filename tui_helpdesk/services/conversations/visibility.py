"""Who may see a conversation: the one place the rule lives, for lists, search and actions.

A global admin sees every conversation of the organisation; an agent sees one when they are
its assignee, a member of its queue, or a member of any queue linked to its mailbox; an
inactive user sees nothing. Private mailboxes (issue 8) add their condition here, and every
list, count, search and action follows.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Conversation, QueueMailbox, QueueMember
from tui_helpdesk.errors import NotFound
from tui_helpdesk.records import UserRecord


def visible(actor: UserRecord) -> ColumnElement[bool]:
    """The SQL condition on Conversation for 'the actor may see this conversation'."""
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


def can_see(session: Session, actor: UserRecord, conversation_id: int) -> bool:
    query = select(true()).where(Conversation.id == conversation_id, visible(actor))
    return session.scalar(query) is not None


def load_visible(
    session: Session, actor: UserRecord, conversation_id: int, *, for_update: bool = False
) -> Conversation:
    """The conversation, if the actor may see it; NotFound also when it exists but is hidden
    (so nobody learns which ids exist). for_update locks the row on PostgreSQL."""
    query = select(Conversation).where(Conversation.id == conversation_id, visible(actor))
    if for_update:
        query = query.with_for_update()
    found = session.scalar(query)
    if found is None:
        raise NotFound(f"conversation {conversation_id} not found", field="conversation")
    return found
