"""The lists the sidebar offers and what each holds, with their counts (issue 9, point 1).

mine        open, assigned to the reader        unassigned  open, nobody assigned
open        every open one ("All open")         pending     every pending one
closed      every closed one                    all         every status (scripts)
queue       open ones of a queue                mailbox     open ones of a mailbox

Each is an equality filter that an index of conversations starts with, followed by the list
order, so a page is one short index range. A count reads the same index but stops after
COUNT_CAP rows (`more` says it stopped): a sidebar refreshes on every change, and "1,000+"
tells an agent as much as 91,403 while costing a small, bounded read whatever the table size
(bench/tui_data.py measures it next to exact counts; PostgreSQL also reads the table pages
that VACUUM has not marked all-visible, so exact counts of 100k rows cost 50-200 ms there).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Conversation, Mailbox, Queue, QueueMailbox, QueueMember
from tui_helpdesk.errors import Invalid, NotFound
from tui_helpdesk.records import ConversationView, UserRecord, ViewCount
from tui_helpdesk.services.conversations.fields import validate_status
from tui_helpdesk.services.conversations.visibility import visible

COUNT_CAP = 1000
FIXED = (
    ConversationView("mine", "Mine"),
    ConversationView("unassigned", "Unassigned"),
    ConversationView("open", "All open"),
    ConversationView("pending", "Pending"),
    ConversationView("closed", "Closed"),
)
KINDS = ("mine", "unassigned", "open", "pending", "closed", "all", "queue", "mailbox")
_STATUS_OF = {"mine": "open", "unassigned": "open", "open": "open", "pending": "pending",
              "closed": "closed", "queue": "open", "mailbox": "open"}  # fmt: skip


def conditions(actor: UserRecord, view: ConversationView) -> list[ColumnElement[bool]]:
    """What the view holds: the WHERE of its pages and count (the readers add visibility)."""
    if view.kind not in KINDS:
        raise Invalid(f"view must be one of {', '.join(KINDS)}, got {view.kind!r}", field="view")
    found: list[ColumnElement[bool]] = []
    status = _STATUS_OF.get(view.kind)
    if status is not None:
        found.append(Conversation.status == status)
    if view.kind == "mine":
        found.append(Conversation.assignee_id == actor.id)
    elif view.kind == "unassigned":
        found.append(Conversation.assignee_id.is_(None))
    elif view.kind == "queue":
        found.append(Conversation.queue_id == _required(view.queue_id, "queue_id"))
    elif view.kind == "mailbox":
        found.append(Conversation.mailbox_id == _required(view.mailbox_id, "mailbox_id"))
    return found


def _required(value: int | None, field: str) -> int:
    if value is None:
        raise Invalid(f"this view needs {field}", field=field)
    return value


def by_names(
    session: Session,
    actor: UserRecord,
    *,
    status: str | None = None,
    queue: str | None = None,
    mailbox: str | None = None,
) -> list[ColumnElement[bool]]:
    """Conditions for a list named the way scripts name things (CLI `conversation list`)."""
    found: list[ColumnElement[bool]] = []
    if status is not None:
        found.append(Conversation.status == validate_status(status))
    if queue is not None:
        found.append(Conversation.queue_id == queue_id(session, actor, queue))
    if mailbox is not None:
        found.append(Conversation.mailbox_id.in_(mailbox_ids(session, actor, mailbox)))
    return found


def queue_id(session: Session, actor: UserRecord, name: str) -> int:
    """A queue of the actor's organisation by name (case-insensitive)."""
    found = session.scalar(
        select(Queue.id).where(
            Queue.organisation_id == actor.organisation_id,
            func.lower(Queue.name) == name.strip().lower(),
        )
    )
    if found is None:
        raise NotFound(f"no queue named {name!r}", field="queue")
    return found


def mailbox_ids(session: Session, actor: UserRecord, address: str) -> list[int]:
    """Mailboxes named by email address or alias; deleted and inactive ones keep their mail."""
    wanted = address.strip().lower()
    ids = session.scalars(
        select(Mailbox.id).where(
            Mailbox.organisation_id == actor.organisation_id,
            (func.lower(Mailbox.email_address) == wanted) | (func.lower(Mailbox.alias) == wanted),
        )
    ).all()
    if not ids:
        raise NotFound(f"no mailbox with address {address!r}", field="mailbox")
    return list(ids)


def sidebar(session: Session, actor: UserRecord, *, cap: int = COUNT_CAP) -> list[ViewCount]:
    """The fixed views, then the queues and mailboxes the actor works in, each with its count."""
    views = [*FIXED, *_queue_views(session, actor), *_mailbox_views(session, actor)]
    return [count(session, actor, view, cap=cap) for view in views]


def _queue_views(session: Session, actor: UserRecord) -> list[ConversationView]:
    query = select(Queue.id, Queue.name).where(Queue.organisation_id == actor.organisation_id)
    if not actor.is_admin:
        query = query.where(Queue.id.in_(_member_queues(actor)))
    rows = session.execute(query.order_by(func.lower(Queue.name), Queue.id))
    return [ConversationView("queue", name, queue_id=ident) for ident, name in rows]


def _mailbox_views(session: Session, actor: UserRecord) -> list[ConversationView]:
    query = select(Mailbox.id, Mailbox.email_address).where(
        Mailbox.organisation_id == actor.organisation_id, Mailbox.deleted_at.is_(None)
    )
    if not actor.is_admin:
        linked = select(QueueMailbox.mailbox_id).where(
            QueueMailbox.queue_id.in_(_member_queues(actor))
        )
        query = query.where(Mailbox.id.in_(linked))
    rows = session.execute(query.order_by(Mailbox.email_address, Mailbox.id))
    return [ConversationView("mailbox", address, mailbox_id=ident) for ident, address in rows]


def _member_queues(actor: UserRecord):  # type: ignore[no-untyped-def]
    return select(QueueMember.queue_id).where(QueueMember.user_id == actor.id)


def count(
    session: Session, actor: UserRecord, view: ConversationView, *, cap: int | None = COUNT_CAP
) -> ViewCount:
    """How many conversations the view holds, reading at most cap + 1 index entries
    (cap None: all of them, for the rare caller that needs the exact number)."""
    if cap is not None and cap < 1:
        raise Invalid("cap must be at least 1", field="cap")
    where = [visible(actor), *conditions(actor, view)]
    if cap is None:
        found = session.scalar(select(func.count()).select_from(Conversation).where(*where))
        return ViewCount(view=view, count=found or 0)
    limited = select(Conversation.id).where(*where).limit(cap + 1).subquery()
    found = session.scalar(select(func.count()).select_from(limited)) or 0
    return ViewCount(view=view, count=min(found, cap), more=found > cap)
