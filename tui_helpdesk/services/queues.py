"""F30-F31: queues link up to 20 mailboxes (exactly one default) and have members with roles.

Global admins manage every queue; a queue admin manages that queue's mailbox links, default
and members; agents read.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tui_helpdesk.config import Settings
from tui_helpdesk.db.models import Queue, QueueMailbox, QueueMember
from tui_helpdesk.errors import Conflict, Invalid, LimitReached, NotFound
from tui_helpdesk.records import (
    QueueMailboxRecord,
    QueueMemberRecord,
    QueueRecord,
    UserRecord,
    to_jsonable,
)
from tui_helpdesk.services import audit, changes, mailboxes, organisations, users
from tui_helpdesk.services.permissions import require_actor, require_admin, require_queue_admin
from tui_helpdesk.services.unset import UNSET
from tui_helpdesk.services.vocabulary import MEMBER_ROLES

COLOUR = re.compile(r"^(#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6}|[a-z]+)$")


def validate_colour(value: str) -> str:
    value = value.strip()
    if value and not COLOUR.match(value):
        raise Invalid(
            f"colour must be a hex colour like #3366ff or a colour name like teal, got {value!r}",
            field="colour",
        )
    return value


def to_record(queue: Queue) -> QueueRecord:
    links = [
        QueueMailboxRecord(
            mailbox_id=link.mailbox_id,
            email_address=link.mailbox.email_address,
            alias=link.mailbox.alias,
            status=link.mailbox.status,
            is_default=link.is_default,
        )
        for link in queue.mailbox_links
    ]
    members = [
        QueueMemberRecord(
            user_id=member.user_id,
            email=member.user.email,
            name=member.user.name,
            role=member.role,
            availability=member.user.availability,
        )
        for member in sorted(queue.members, key=lambda m: m.user.email)
    ]
    default = next((link.email_address for link in links if link.is_default), None)
    return QueueRecord(
        id=queue.id,
        organisation_id=queue.organisation_id,
        name=queue.name,
        description=queue.description,
        colour=queue.colour,
        assignment_rule=queue.assignment_rule,
        default_mailbox=default,
        mailboxes=tuple(links),
        members=tuple(members),
        created_at=queue.created_at,
        updated_at=queue.updated_at,
    )


def _audit(session: Session, actor: UserRecord | None, action: str, queue: Queue,
           before: QueueRecord | None, after: QueueRecord) -> None:  # fmt: skip
    audit.record(
        session, actor, action, "queue", queue.id,
        organisation_id=queue.organisation_id,
        before=to_jsonable(before) if before else None,
        after=to_jsonable(after),
    )  # fmt: skip


def find(session: Session, organisation_id: int, name: str) -> Queue | None:
    return session.scalar(
        select(Queue).where(
            Queue.organisation_id == organisation_id,
            func.lower(Queue.name) == name.strip().lower(),
        )
    )


def load(session: Session, actor: UserRecord, name: str, *, lock: bool = False) -> Queue:
    queue = find(session, actor.organisation_id, name)
    if queue is None:
        raise NotFound(f"no queue named {name!r}", field="queue")
    if lock:  # serialise changes to one queue's links so the limit and the default hold
        session.scalars(select(Queue.id).where(Queue.id == queue.id).with_for_update()).one()
        session.refresh(queue)
    return queue


def create(
    session: Session,
    actor: UserRecord | None,
    *,
    name: str,
    description: str = "",
    colour: str = "",
    organisation: str | None = None,
) -> QueueRecord:
    actor = require_admin(actor)
    org = organisations.resolve(session, actor, organisation)
    name = organisations.validate_name(name, what="queue name")
    if find(session, org.id, name) is not None:
        raise Conflict(f"a queue named {name!r} already exists", field="name")
    queue = Queue(
        organisation_id=org.id,
        name=name,
        description=description.strip(),
        colour=validate_colour(colour),
    )
    session.add(queue)
    session.flush()
    record = to_record(queue)
    _audit(session, actor, "queue.create", queue, None, record)
    return record


def list_queues(session: Session, actor: UserRecord | None) -> list[QueueRecord]:
    actor = require_actor(actor)
    rows = session.scalars(
        select(Queue)
        .where(Queue.organisation_id == actor.organisation_id)
        .order_by(func.lower(Queue.name))
    )
    return [to_record(queue) for queue in rows]


def get(session: Session, actor: UserRecord | None, name: str) -> QueueRecord:
    actor = require_actor(actor)
    return to_record(load(session, actor, name))


def managed(session: Session, actor: UserRecord | None) -> list[QueueRecord]:
    """The queues the actor may change: every one for a global admin, else those where they
    are a queue admin (F31). What an admin screen offers to edit."""
    actor = require_actor(actor)
    query = select(Queue).where(Queue.organisation_id == actor.organisation_id)
    if not actor.is_admin:
        query = query.join(QueueMember, QueueMember.queue_id == Queue.id).where(
            QueueMember.user_id == actor.id, QueueMember.role == "admin"
        )
    return [to_record(queue) for queue in session.scalars(query.order_by(func.lower(Queue.name)))]


def update(
    session: Session,
    actor: UserRecord | None,
    queue_name: str,
    *,
    name: str = UNSET,
    description: str = UNSET,
    colour: str = UNSET,
) -> QueueRecord:
    """Rename a queue or change its description or colour (queue admins; audited).
    Arguments left out stay as they are; a refused change leaves the queue untouched."""
    actor, queue = _admin_queue(session, actor, queue_name)
    values: dict[str, str] = {}
    if name is not UNSET:
        values["name"] = organisations.validate_name(name, what="queue name")
        other = find(session, queue.organisation_id, values["name"])
        if other is not None and other.id != queue.id:
            raise Conflict(f"a queue named {values['name']!r} already exists", field="name")
    if description is not UNSET:
        values["description"] = description.strip()
    if colour is not UNSET:
        values["colour"] = validate_colour(colour)
    before = to_record(queue)
    for key, value in values.items():
        setattr(queue, key, value)
    if not values or all(getattr(before, k) == v for k, v in values.items()):
        return before
    return _changed(session, actor, "queue.update", queue, before)


def _admin_queue(session: Session, actor: UserRecord | None, name: str) -> tuple[UserRecord, Queue]:
    actor = require_actor(actor)
    queue = load(session, actor, name, lock=True)
    return require_queue_admin(session, actor, queue.id), queue


def _linked(queue: Queue, address: str) -> QueueMailbox | None:
    name = address.strip().lower()
    for link in queue.mailbox_links:
        box = link.mailbox
        if name in (box.email_address, box.alias) or ("@" not in name and box.local_part == name):
            return link
    return None


def add_mailbox(
    session: Session, settings: Settings, actor: UserRecord | None, queue_name: str, address: str
) -> QueueRecord:
    """Link an active mailbox; the first one linked becomes the default (F30)."""
    actor, queue = _admin_queue(session, actor, queue_name)
    mailbox = mailboxes.load(session, actor, address)
    if mailbox.status != "active":
        raise Conflict(
            f"mailbox {mailbox.email_address} is inactive; activate it before linking it",
            field="address",
        )
    if any(link.mailbox_id == mailbox.id for link in queue.mailbox_links):
        raise Conflict(
            f"mailbox {mailbox.email_address} is already linked to queue {queue.name!r}",
            field="address",
        )
    limit = settings.limits.mailboxes_per_queue
    if len(queue.mailbox_links) >= limit:
        raise LimitReached(
            f"queue {queue.name!r} already links {limit} mailboxes (the limit); "
            "remove one before adding another",
            field="address",
        )
    before = to_record(queue)
    position = max((link.position for link in queue.mailbox_links), default=-1) + 1
    queue.mailbox_links.append(
        QueueMailbox(mailbox=mailbox, is_default=not queue.mailbox_links, position=position)
    )
    return _changed(session, actor, "queue.mailbox.add", queue, before)


def _changed(session: Session, actor: UserRecord, action: str, queue: Queue,
             before: QueueRecord) -> QueueRecord:  # fmt: skip
    session.flush()
    after = to_record(queue)
    _audit(session, actor, action, queue, before, after)
    changes.notify(session)
    return after


def _require_link(queue: Queue, address: str) -> QueueMailbox:
    link = _linked(queue, address)
    if link is None:
        raise Conflict(
            f"mailbox {address!r} is not linked to queue {queue.name!r}; add it first",
            field="address",
        )
    return link


def remove_mailbox(
    session: Session, actor: UserRecord | None, queue_name: str, address: str
) -> QueueRecord:
    """Unlink; when it was the default, the next linked (active first) one takes over."""
    actor, queue = _admin_queue(session, actor, queue_name)
    link = _require_link(queue, address)
    before = to_record(queue)
    queue.mailbox_links.remove(link)
    if link.is_default and queue.mailbox_links:
        rest = queue.mailbox_links
        successor = next((x for x in rest if x.mailbox.status == "active"), rest[0])
        session.flush()  # the old default row goes first
        successor.is_default = True
    return _changed(session, actor, "queue.mailbox.remove", queue, before)


def set_default(
    session: Session, actor: UserRecord | None, queue_name: str, address: str
) -> QueueRecord:
    """The default is the queue's sender: it must be linked and active."""
    actor, queue = _admin_queue(session, actor, queue_name)
    link = _require_link(queue, address)
    if link.is_default:
        return to_record(queue)
    if link.mailbox.status != "active":
        raise Conflict(
            f"mailbox {link.mailbox.email_address} is inactive and cannot be the default",
            field="address",
        )
    before = to_record(queue)
    for other in queue.mailbox_links:
        other.is_default = other is link
    return _changed(session, actor, "queue.default.set", queue, before)


def add_member(
    session: Session, actor: UserRecord | None, queue_name: str, email: str, role: str = "agent"
) -> QueueRecord:
    """Add a member, or change the role of one already there."""
    actor, queue = _admin_queue(session, actor, queue_name)
    if role not in MEMBER_ROLES:
        raise Invalid(f"role must be agent or admin; got {role!r}", field="role")
    user = users.find(session, email)
    if user is None or user.organisation_id != queue.organisation_id:
        raise NotFound(f"no user with email {email!r}", field="email")
    if not user.active:
        raise Conflict(f"user {user.email} is inactive; activate them first", field="email")
    member = next((m for m in queue.members if m.user_id == user.id), None)
    if member is not None and member.role == role:
        return to_record(queue)
    before = to_record(queue)
    if member is None:
        queue.members.append(QueueMember(user=user, role=role))
        action = "queue.member.add"
    else:
        member.role = role
        action = "queue.member.update"
    return _changed(session, actor, action, queue, before)


def remove_member(
    session: Session, actor: UserRecord | None, queue_name: str, email: str
) -> QueueRecord:
    actor, queue = _admin_queue(session, actor, queue_name)
    normalised = email.strip().lower()
    member = next((m for m in queue.members if m.user.email == normalised), None)
    if member is None:
        raise NotFound(f"{email} is not a member of queue {queue.name!r}", field="email")
    before = to_record(queue)
    queue.members.remove(member)
    return _changed(session, actor, "queue.member.remove", queue, before)
