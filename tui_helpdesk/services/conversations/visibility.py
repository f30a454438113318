"""Who may see a conversation: the one place the rule lives, for lists, search and actions.

A global admin sees every conversation of the organisation; an agent sees one when they are
its assignee, a member of its queue, or a member of any queue linked to its mailbox; an
inactive user sees nothing. Over all of that, a private mailbox's conversations are seen only
by the users granted access to it (F21), admins included (an admin grants themselves, and the
audit log says so): every list, count, search and action follows.

The private condition is `mailbox_id NOT IN (private mailboxes not granted to the reader)`:
a short uncorrelated subquery over the mailboxes, and a column every list index carries, so a
page still reads one index range.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, and_, false, or_, select, true
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import (
    Conversation,
    Mailbox,
    MailboxGrant,
    QueueMailbox,
    QueueMember,
)
from tui_helpdesk.errors import NotFound
from tui_helpdesk.records import UserRecord


def visible(actor: UserRecord) -> ColumnElement[bool]:
    """The SQL condition on Conversation for 'the actor may see this conversation'."""
    if not actor.active:
        return false()
    in_org = and_(Conversation.organisation_id == actor.organisation_id, _not_hidden(actor))
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


def hidden_mailboxes(actor: UserRecord) -> Select[tuple[int]]:
    """The ids of the private mailboxes the actor was not granted (F21)."""
    granted = select(MailboxGrant.mailbox_id).where(MailboxGrant.user_id == actor.id)
    return select(Mailbox.id).where(
        Mailbox.organisation_id == actor.organisation_id,
        Mailbox.private.is_(True),
        Mailbox.id.not_in(granted),
    )


def sees_mailbox(session: Session, actor: UserRecord, mailbox_id: int) -> bool:
    """False for a private mailbox the actor was not granted (F21)."""
    hidden = hidden_mailboxes(actor).where(Mailbox.id == mailbox_id)
    return session.scalar(select(true()).where(hidden.exists())) is None


def _not_hidden(actor: UserRecord) -> ColumnElement[bool]:
    hidden = hidden_mailboxes(actor)
    return or_(Conversation.mailbox_id.is_(None), Conversation.mailbox_id.not_in(hidden))


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
