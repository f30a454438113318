"""Search filters → conditions on conversations; names resolved in the searcher's organisation.

A name that does not exist is an error naming the filter ("queue: no queue named 'Suport'"),
not an empty result, so a typo is seen at once. Negation keeps rows whose column is empty:
-assignee:me finds the unassigned ones too.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, exists, not_, or_, select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Attachment, Conversation, ConversationTag, Message, MessageAuth
from tui_helpdesk.errors import HelpdeskError, Invalid
from tui_helpdesk.records import UserRecord
from tui_helpdesk.services import users
from tui_helpdesk.services.conversations import views
from tui_helpdesk.services.hours import local_instant
from tui_helpdesk.services.search.query import Filter, parse_date


def conditions(
    session: Session, actor: UserRecord, filters: tuple[Filter, ...], timezone: str
) -> list[ColumnElement[bool]]:
    found = []
    for item in filters:
        try:
            condition = _condition(session, actor, item, timezone)
        except HelpdeskError as error:
            if isinstance(error, Invalid) and error.message.startswith(f"{item.name}:"):
                raise
            raise Invalid(f"{item.name}: {error.message}", field="query") from None
        found.append(_negated(condition, item) if item.negated else condition)
    return found


def _condition(
    session: Session, actor: UserRecord, item: Filter, timezone: str
) -> ColumnElement[bool]:
    value = item.value
    if item.name == "status":
        return Conversation.status == value
    if item.name == "queue":
        return Conversation.queue_id == views.queue_id(session, actor, value)
    if item.name == "mailbox":
        return Conversation.mailbox_id.in_(views.mailbox_ids(session, actor, value))
    if item.name == "assignee":
        return _assignee(session, actor, value)
    if item.name == "tag":
        tagged = select(ConversationTag.conversation_id).where(ConversationTag.tag == value)
        return Conversation.id.in_(tagged)
    if item.name == "has":  # correlated: checked for the rows a page looks at
        return exists(
            select(Message.id)
            .join(Attachment, Attachment.message_id == Message.id)
            .where(
                Message.conversation_id == Conversation.id, Attachment.disposition == "attachment"
            )
        )
    if item.name == "auth":  # F75, correlated like has:
        return exists(
            select(Message.id)
            .join(MessageAuth, MessageAuth.message_id == Message.id)
            .where(Message.conversation_id == Conversation.id, _auth(value))
        )
    day = parse_date(item.name, value)
    boundary = _midnight(day, timezone)
    return (
        Conversation.last_message_at < boundary
        if item.name == "before"
        else Conversation.last_message_at >= boundary
    )


def _auth(value: str) -> ColumnElement[bool]:
    """auth:fail|spoof|lookalike|pass on one message's stored check (query.AUTH)."""
    if value == "fail":
        return or_(
            MessageAuth.dmarc.in_(("fail", "permerror")),
            MessageAuth.spf == "fail",
            MessageAuth.dkim == "fail",
        )
    if value == "pass":
        return MessageAuth.dmarc == "pass"
    return MessageAuth.warning == value


def _assignee(session: Session, actor: UserRecord, value: str) -> ColumnElement[bool]:
    wanted = value.lower()
    if wanted == "none":
        return Conversation.assignee_id.is_(None)
    if wanted == "me":
        return Conversation.assignee_id == actor.id
    user = users.find(session, wanted)
    if user is None or user.organisation_id != actor.organisation_id:
        raise Invalid(f"assignee: no user with email {value!r}", field="query")
    return Conversation.assignee_id == user.id


def _negated(condition: ColumnElement[bool], item: Filter) -> ColumnElement[bool]:
    """NOT, keeping the rows where a nullable column is empty (SQL's NULL would drop them)."""
    column = {"queue": Conversation.queue_id, "assignee": Conversation.assignee_id,
              "mailbox": Conversation.mailbox_id}.get(item.name)  # fmt: skip
    if column is None or (item.name == "assignee" and item.value.lower() == "none"):
        return not_(condition)
    return or_(column.is_(None), not_(condition))


def _midnight(day: date, timezone: str) -> datetime:
    """The first instant of `day` on the searcher's wall clock (DST gaps included)."""
    return local_instant(day, 0, ZoneInfo(timezone))
