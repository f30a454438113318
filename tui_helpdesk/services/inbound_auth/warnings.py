"""The warnings as people see them (F75): which messages of a conversation were flagged and why,
the confirmation a reply to one needs, and the flagged messages per mailbox.

The checker (inbound_auth.checker) stores each message's warning in `message_auth`; everything
here only reads it, through the one visibility rule of conversations.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Conversation, Message, MessageAuth
from tui_helpdesk.errors import NotFound
from tui_helpdesk.records import SenderWarningRecord, UserRecord
from tui_helpdesk.services.conversations import sender_auth
from tui_helpdesk.services.conversations.visibility import can_see, visible
from tui_helpdesk.services.permissions import require_actor

LEVELS = sender_auth.LEVELS  # strongest first
strongest = sender_auth.strongest


def conversation_warnings(
    session: Session, actor: UserRecord | None, conversation_id: int
) -> list[SenderWarningRecord]:
    """The flagged messages of a conversation, oldest first; NotFound when it is hidden."""
    actor = require_actor(actor)
    if not can_see(session, actor, conversation_id):
        raise NotFound(f"conversation {conversation_id} not found", field="conversation")
    return sender_auth.flagged_messages(session, conversation_id)


def confirm_reply(
    session: Session, actor: UserRecord | None, conversation_id: int, *, confirmed: bool
) -> None:
    """Conflict (field confirm_spoof) when replying needs the agent's yes and it was not given:
    the conversation holds a possibly spoofed message. The reply service checks the same."""
    conversation_warnings(session, actor, conversation_id)  # visibility first
    sender_auth.require_confirmed(session, conversation_id, confirmed=confirmed)


def flagged_counts(
    session: Session, actor: UserRecord | None, *, levels: tuple[str, ...] = LEVELS
) -> dict[int, int]:
    """mailbox id → flagged inbound messages in the conversations the actor may see."""
    actor = require_actor(actor)
    rows = session.execute(
        select(Message.mailbox_id, func.count())
        .select_from(MessageAuth)
        .join(Message, Message.id == MessageAuth.message_id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(MessageAuth.warning.in_(levels), Message.mailbox_id.is_not(None), visible(actor))
        .group_by(Message.mailbox_id)
    )
    return {mailbox_id: count for mailbox_id, count in rows}
