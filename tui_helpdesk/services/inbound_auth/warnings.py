"""The warnings as people see them (F75): which messages of a conversation were flagged and why,
the confirmation a reply to one needs, and the flagged messages per mailbox.

The checker (inbound_auth.checker) stores each message's warning in `message_auth`; everything
here only reads it, through the one visibility rule of conversations.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Conversation, Message, MessageAuth
from tui_helpdesk.errors import Conflict, NotFound
from tui_helpdesk.records import SenderWarningRecord, UserRecord
from tui_helpdesk.services.conversations.visibility import can_see, visible
from tui_helpdesk.services.permissions import require_actor

LEVELS = ("spoof", "lookalike")  # strongest first
FLAGGED = MessageAuth.warning.in_(LEVELS)


def conversation_warnings(
    session: Session, actor: UserRecord | None, conversation_id: int
) -> list[SenderWarningRecord]:
    """The flagged messages of a conversation, oldest first; NotFound when it is hidden."""
    actor = require_actor(actor)
    if not can_see(session, actor, conversation_id):
        raise NotFound(f"conversation {conversation_id} not found", field="conversation")
    rows = session.execute(
        select(MessageAuth.message_id, MessageAuth.warning, MessageAuth.warning_reason)
        .join(Message, Message.id == MessageAuth.message_id)
        .where(Message.conversation_id == conversation_id, FLAGGED)
        .order_by(Message.received_at, Message.id)
    )
    return [SenderWarningRecord(message_id, level, reason) for message_id, level, reason in rows]


def strongest(warnings: list[SenderWarningRecord]) -> SenderWarningRecord | None:
    """The warning a banner leads with: possible spoofing before a lookalike, newest first."""
    for level in LEVELS:
        found = [w for w in warnings if w.level == level]
        if found:
            return found[-1]
    return None


def confirm_reply(
    session: Session, actor: UserRecord | None, conversation_id: int, *, confirmed: bool
) -> None:
    """A reply to a conversation with a possibly spoofed message needs the agent's yes.

    Raises Conflict naming why when it was not confirmed; a lookalike alone asks nothing (the
    banner shows it). Called by every door that sends a reply (composer, CLI)."""
    if confirmed:
        return
    found = strongest(conversation_warnings(session, actor, conversation_id))
    if found is not None and found.level == "spoof":
        raise Conflict(
            f"conversation {conversation_id} may answer a spoofed sender: {found.reason}; "
            "confirm to reply anyway",
            field="confirm_spoof",
        )


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
