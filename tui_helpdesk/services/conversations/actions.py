"""What agents do to a conversation (F42, F44): assign, transfer, pending, close, reopen,
priority and tags. Each checks permission, validates, changes, audits before/after, notifies.

Who may act: today everyone who may see a conversation may act on it (global admins in their
organisation; agents and queue admins on conversations of their queues, of mailboxes linked
to their queues, or assigned to them); `may_act` is the one place to narrow that.
Whom to assign: admins may assign any active user of the organisation; everyone else a member
of the conversation's queue (or, for a conversation in no queue, of a queue linked to its
mailbox), so work goes to people who can see the queue.
Transfer to a queue hands the conversation over completely: the target queue's assignment
rule picks the new assignee (sticky routing included), and a `manual` queue leaves it
unassigned; the previous assignee keeps it only if that rule picks them again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from tui_helpdesk.config import Settings
from tui_helpdesk.db.models import (
    Conversation,
    ConversationTag,
    Mailbox,
    Queue,
    QueueMailbox,
    QueueMember,
    User,
    utcnow,
)
from tui_helpdesk.errors import Conflict, HelpdeskError, Invalid, NotFound, PermissionDenied
from tui_helpdesk.records import ActionResult, ConversationRecord, UserRecord
from tui_helpdesk.services import assignment, audit, changes, users, webhooks
from tui_helpdesk.services.conversations import rows, views
from tui_helpdesk.services.conversations.close_notice import queue_notice
from tui_helpdesk.services.conversations.fields import validate_priority, validate_tag
from tui_helpdesk.services.conversations.notes import add_note
from tui_helpdesk.services.conversations.visibility import load_visible, sees_mailbox
from tui_helpdesk.services.permissions import require_actor
from tui_helpdesk.services.vocabulary import AVAILABILITIES

NOBODY = ("none", "nobody", "")


def may_act(session: Session, actor: UserRecord | None, conversation_id: int) -> Conversation:
    """The conversation, locked for the change, if the actor may act on it."""
    actor = require_actor(actor)
    return load_visible(session, actor, conversation_id, for_update=True)


def _state(session: Session, conversation: Conversation) -> dict[str, Any]:
    """The fields an action changes, as the audit log keeps them (names, not ids)."""
    assignee = session.get(User, conversation.assignee_id) if conversation.assignee_id else None
    queue = session.get(Queue, conversation.queue_id) if conversation.queue_id else None
    return {
        "status": conversation.status,
        "priority": conversation.priority,
        "assignee": assignee.email if assignee else None,
        "queue": queue.name if queue else None,
        "tags": _tags(session, conversation.id),
    }


def _tags(session: Session, conversation_id: int) -> list[str]:
    return sorted(
        session.scalars(
            select(ConversationTag.tag).where(ConversationTag.conversation_id == conversation_id)
        )
    )


def _finish(
    session: Session,
    actor: UserRecord,
    conversation: Conversation,
    action: str,
    before: dict[str, Any],
) -> ConversationRecord:
    """Audit what changed (nothing changed: no entry), notify screens, return the new row."""
    session.flush()
    after = _state(session, conversation)
    changed = [key for key in after if after[key] != before[key]]
    if changed:
        audit.record(
            session, actor, f"conversation.{action}", "conversation", conversation.id,
            organisation_id=conversation.organisation_id,
            before={k: before[k] for k in changed}, after={k: after[k] for k in changed},
        )  # fmt: skip
        changes.notify(session)
    return rows.records_by_id(session, actor, [conversation.id])[conversation.id]


# -- assignment ------------------------------------------------------------------------------


def assign(
    session: Session, actor: UserRecord | None, conversation_id: int, user: str
) -> ConversationRecord:
    """Assign to a user by email, to the actor with "me", or to nobody with "none"."""
    conversation = may_act(session, actor, conversation_id)
    assert actor is not None
    before = _state(session, conversation)
    conversation.assignee_id = _assignee_id(session, actor, conversation, user)
    return _finish(session, actor, conversation, "assign", before)


def _assignee_id(
    session: Session, actor: UserRecord, conversation: Conversation, user: str
) -> int | None:
    wanted = user.strip().lower()
    if wanted in NOBODY:
        return None
    target = actor.email if wanted == "me" else wanted
    found = users.find(session, target)
    if found is None or found.organisation_id != actor.organisation_id:
        raise NotFound(f"no user with email {user!r}", field="user")
    if not found.active:
        raise Invalid(f"{found.email} is inactive and cannot be assigned", field="user")
    if not actor.is_admin and not _works_on(session, found.id, conversation):
        raise PermissionDenied(
            f"{found.email} is not a member of this conversation's queue; "
            "an admin may assign anyone",
            field="user",
        )
    mailbox_id = conversation.mailbox_id
    if mailbox_id is not None and not sees_mailbox(session, users.to_record(found), mailbox_id):
        raise PermissionDenied(
            f"{found.email} has no access to this conversation's private mailbox; grant it "
            "first (`mailbox set-private`)",
            field="user",
        )
    return found.id


def _works_on(session: Session, user_id: int, conversation: Conversation) -> bool:
    """Member of the conversation's queue, or (in no queue) of a queue of its mailbox."""
    if conversation.queue_id is not None:
        queues: Any = [conversation.queue_id]
    else:
        queues = select(QueueMailbox.queue_id).where(
            QueueMailbox.mailbox_id == conversation.mailbox_id
        )
    member = exists().where(QueueMember.user_id == user_id, QueueMember.queue_id.in_(queues))
    return bool(session.scalar(select(member)))


def assignable(
    session: Session, actor: UserRecord | None, conversation_ids: Sequence[int]
) -> list[UserRecord]:
    """Who the conversations may be assigned to (the users `assign` would accept for every
    one of them): available members first, then by name. For the pickers of the TUI."""
    actor = require_actor(actor)
    loaded = [load_visible(session, actor, ident) for ident in dict.fromkeys(conversation_ids)]
    places = {(c.queue_id, c.mailbox_id): c for c in loaded}
    found = session.scalars(
        select(User).where(User.organisation_id == actor.organisation_id, User.active.is_(True))
    ).all()
    chosen = []
    for user in found:
        record = users.to_record(user)
        if all(_may_take(session, actor, user, record, c) for c in places.values()):
            chosen.append(record)
    order = {name: n for n, name in enumerate(AVAILABILITIES)}
    return sorted(chosen, key=lambda u: (order.get(u.availability, 9), u.name.lower(), u.id))


def _may_take(
    session: Session, actor: UserRecord, user: User, record: UserRecord, conversation: Conversation
) -> bool:
    if not actor.is_admin and not _works_on(session, user.id, conversation):
        return False
    mailbox_id = conversation.mailbox_id
    return mailbox_id is None or sees_mailbox(session, record, mailbox_id)


def transfer(
    session: Session,
    actor: UserRecord | None,
    conversation_id: int,
    *,
    to_user: str | None = None,
    to_queue: str | None = None,
) -> ConversationRecord:
    """Hand over to another user (as assign) or another queue (its rule picks the assignee)."""
    if (to_user is None) == (to_queue is None):
        raise Invalid("transfer to a user or to a queue: give exactly one", field="to")
    conversation = may_act(session, actor, conversation_id)
    assert actor is not None
    before = _state(session, conversation)
    if to_user is not None:
        conversation.assignee_id = _assignee_id(session, actor, conversation, to_user)
    else:
        queue = session.get_one(Queue, views.queue_id(session, actor, to_queue or ""))
        if queue.id == conversation.queue_id:
            raise Conflict(f"the conversation is already in queue {queue.name!r}", field="queue")
        conversation.queue_id = queue.id
        conversation.assignee_id = assignment.choose_assignee(
            session, queue, contact_id=conversation.contact_id, now=utcnow()
        )
    return _finish(session, actor, conversation, "transfer", before)


# -- status ----------------------------------------------------------------------------------


def set_pending(
    session: Session, actor: UserRecord | None, conversation_id: int
) -> ConversationRecord:
    """Waiting on the customer: out of the open views until it is reopened or mail arrives."""
    return _set_status(session, actor, conversation_id, "pending", "pending")


def close(
    session: Session,
    actor: UserRecord | None,
    conversation_id: int,
    *,
    settings: Settings,
    note: str | None = None,
    notify: bool = True,
) -> ConversationRecord:
    """Closed; later mail from the customer opens a new conversation (F45). An optional
    internal note (never sent) says why; unless notify=False, the customer gets the mailbox's
    close notice (close_notice.py says when one is due)."""
    conversation = may_act(session, actor, conversation_id)
    assert actor is not None
    if conversation.status == "closed":
        raise Conflict(f"conversation {conversation_id} is already closed", field="status")
    before = _state(session, conversation)
    conversation.status = "closed"
    conversation.closed_at = now = utcnow()
    if note is not None and note.strip():
        add_note(session, actor, conversation, note)
    if notify:
        queue_notice(session, settings, actor, conversation, now)
    mailbox = session.get(Mailbox, conversation.mailbox_id) if conversation.mailbox_id else None
    if mailbox is not None:
        payload = {"conversation_id": conversation.id, "subject": conversation.subject,
                   "closed_by": actor.email}  # fmt: skip
        webhooks.emit(session, mailbox, "conversation.closed", payload, now=now)
    return _finish(session, actor, conversation, "close", before)


def reopen(session: Session, actor: UserRecord | None, conversation_id: int) -> ConversationRecord:
    return _set_status(session, actor, conversation_id, "open", "reopen")


def _set_status(
    session: Session, actor: UserRecord | None, conversation_id: int, status: str, action: str
) -> ConversationRecord:
    conversation = may_act(session, actor, conversation_id)
    assert actor is not None
    if conversation.status == status:
        raise Conflict(f"conversation {conversation_id} is already {status}", field="status")
    before = _state(session, conversation)
    conversation.status = status
    conversation.closed_at = None
    return _finish(session, actor, conversation, action, before)


# -- priority and tags -----------------------------------------------------------------------


def set_priority(
    session: Session, actor: UserRecord | None, conversation_id: int, priority: str
) -> ConversationRecord:
    priority = validate_priority(priority)
    conversation = may_act(session, actor, conversation_id)
    assert actor is not None
    before = _state(session, conversation)
    conversation.priority = priority
    return _finish(session, actor, conversation, "priority", before)


def add_tags(
    session: Session, actor: UserRecord | None, conversation_id: int, tags: Iterable[str]
) -> ConversationRecord:
    """Tags already there stay as they are; tags are stored lowercase."""
    wanted = _validated_tags(tags)
    conversation = may_act(session, actor, conversation_id)
    assert actor is not None
    before = _state(session, conversation)
    for tag in sorted(set(wanted) - set(before["tags"])):
        session.add(ConversationTag(conversation_id=conversation.id, tag=tag))
    return _finish(session, actor, conversation, "tag", before)


def remove_tags(
    session: Session, actor: UserRecord | None, conversation_id: int, tags: Iterable[str]
) -> ConversationRecord:
    """Tags the conversation does not have are ignored."""
    wanted = _validated_tags(tags)
    conversation = may_act(session, actor, conversation_id)
    assert actor is not None
    before = _state(session, conversation)
    session.execute(
        delete(ConversationTag).where(
            ConversationTag.conversation_id == conversation.id, ConversationTag.tag.in_(wanted)
        )
    )
    return _finish(session, actor, conversation, "untag", before)


def _validated_tags(tags: Iterable[str]) -> list[str]:
    found = list(dict.fromkeys(validate_tag(tag) for tag in tags))
    if not found:
        raise Invalid("give at least one tag", field="tag")
    return found


# -- several at once -------------------------------------------------------------------------


def for_each(
    session: Session,
    actor: UserRecord | None,
    conversation_ids: Sequence[int],
    action: Callable[..., ConversationRecord],
    **arguments: Any,
) -> list[ActionResult]:
    """Run one action on several conversations (the rows marked in a list), each on its own:
    a refused one is rolled back alone (a savepoint) and reported, the others go through."""
    results = []
    for ident in dict.fromkeys(conversation_ids):
        try:
            with session.begin_nested():
                record = action(session, actor, ident, **arguments)
        except HelpdeskError as error:
            results.append(ActionResult(ident, ok=False, error=error.kind, message=error.message))
        else:
            results.append(ActionResult(ident, ok=True, conversation=record))
    return results
