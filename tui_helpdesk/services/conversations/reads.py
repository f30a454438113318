"""Per-user read marks: a row is unread for a user until they read it, and again when newer
mail arrives (its last_message_at passes the mark).

A read mark is the reader's own state, not a change to the conversation: any user who may see
a conversation may mark it, and no audit entry is written. Screens show unread marks, so
marking notifies them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tui_helpdesk.db.engine import dialect_insert
from tui_helpdesk.db.models import ConversationRead, Message, utcnow
from tui_helpdesk.records import ConversationRecord, UserRecord
from tui_helpdesk.services import changes
from tui_helpdesk.services.conversations import rows
from tui_helpdesk.services.conversations.visibility import load_visible
from tui_helpdesk.services.permissions import require_actor


def mark_read(
    session: Session, actor: UserRecord | None, conversation_id: int
) -> ConversationRecord:
    """Everything in the conversation up to its newest message counts as read by the actor."""
    actor = require_actor(actor)
    conversation = load_visible(session, actor, conversation_id)
    newest = session.scalar(
        select(func.max(Message.id)).where(Message.conversation_id == conversation.id)
    )
    values = {
        "user_id": actor.id,
        "conversation_id": conversation.id,
        "last_read_message_id": newest,
        "last_read_message_at": conversation.last_message_at,
        "read_at": utcnow(),
    }
    session.execute(_upsert(session, values))
    changes.notify(session)
    return rows.record_of(session, actor, conversation.id)


def _upsert(session: Session, values: dict[str, Any]) -> Any:
    insert = dialect_insert(session.get_bind().dialect.name)
    statement = insert(ConversationRead).values(**values)
    return statement.on_conflict_do_update(
        index_elements=["user_id", "conversation_id"],
        set_={k: statement.excluded[k] for k in values if k not in ("user_id", "conversation_id")},
    )


def mark_unread(
    session: Session, actor: UserRecord | None, conversation_id: int
) -> ConversationRecord:
    """Forget the actor's read mark: the row shows as unread to them again."""
    actor = require_actor(actor)
    conversation = load_visible(session, actor, conversation_id)
    session.execute(
        delete(ConversationRead).where(
            ConversationRead.user_id == actor.id,
            ConversationRead.conversation_id == conversation.id,
        )
    )
    changes.notify(session)
    return rows.record_of(session, actor, conversation.id)
