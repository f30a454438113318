"""Assignment administration (F32): a queue's rule, fallback, sticky days, weights and slots.

Queue admins only; audited; a refused change leaves the queue and its members untouched.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Organisation, Queue, QueueMember, User
from tui_helpdesk.errors import Invalid, NotFound
from tui_helpdesk.records import AssignmentMemberRecord, AssignmentRecord, UserRecord
from tui_helpdesk.services import audit, permissions, queues
from tui_helpdesk.services.assignment.pickers import validate_slots
from tui_helpdesk.services.changes import notify as notify_change
from tui_helpdesk.services.hours import zone
from tui_helpdesk.services.unset import UNSET
from tui_helpdesk.services.vocabulary import ASSIGNMENT_RULES

MAX_STICKY_DAYS = 365
MAX_WEIGHT = 100


def assignment_record(session: Session, queue: Queue) -> AssignmentRecord:
    fallback = session.get(User, queue.fallback_user_id) if queue.fallback_user_id else None
    return AssignmentRecord(
        queue_id=queue.id,
        queue=queue.name,
        rule=queue.assignment_rule,
        fallback=fallback.email if fallback else None,
        sticky_days=queue.sticky_days,
        members=tuple(
            AssignmentMemberRecord(
                user_id=m.user_id,
                email=m.user.email,
                availability=m.user.availability,
                active=m.user.active,
                weight=m.weight,
                slots=tuple(dict(s) for s in m.slots or ()),
            )
            for m in sorted(queue.members, key=lambda m: m.user_id)
        ),
    )


def _audit_view(record: AssignmentRecord) -> dict[str, Any]:
    return {
        "rule": record.rule,
        "fallback": record.fallback,
        "sticky_days": record.sticky_days,
        "members": {m.email: {"weight": m.weight, "slots": list(m.slots)} for m in record.members},
    }


def _queue_for(session: Session, actor: UserRecord, queue: int | str) -> Queue:
    """A queue of the actor's organisation by id, or by name as the CLI gives it."""
    if isinstance(queue, str):
        return queues.load(session, actor, queue)
    row = session.get(Queue, queue)
    if row is None or row.organisation_id != actor.organisation_id:
        raise NotFound(f"no queue with id {queue}", field="queue")
    return row


def get_assignment(session: Session, actor: UserRecord, queue: int | str) -> AssignmentRecord:
    row = _queue_for(session, actor, queue)
    permissions.require_queue_member(session, actor, row.id)
    return assignment_record(session, row)


def set_assignment(
    session: Session,
    actor: UserRecord,
    queue: int | str,
    *,
    rule: str = UNSET,
    fallback: str | None = UNSET,
    sticky_days: int = UNSET,
    weights: dict[str, int] = UNSET,
    slots: dict[str, list[dict[str, Any]]] = UNSET,
) -> AssignmentRecord:
    """Change a queue's assignment set-up (queue admins only; audited).

    `fallback` is a user's email (None clears it); `weights` and `slots` map member emails to
    their percentage weight (0-100) or time slots. Arguments left out stay as they are.
    """
    queue = _queue_for(session, actor, queue)
    permissions.require_queue_admin(session, actor, queue.id)
    before = assignment_record(session, queue)
    changes: dict[str, Any] = {}
    if rule is not UNSET:
        changes["assignment_rule"] = _check_rule(rule)
    if fallback is not UNSET:
        changes["fallback_user_id"] = _fallback_id(session, queue, fallback)
    if sticky_days is not UNSET:
        changes["sticky_days"] = _check_sticky(sticky_days)
    new_weights = [
        (member, _check_weight(weight, email=member.user.email))
        for member, weight in _members_by_email(queue, weights, field="weights")
    ]
    new_slots = [
        (member, validate_slots(value, field=f"slots of {member.user.email}"))
        for member, value in _members_by_email(queue, slots, field="slots")
    ]
    if changes.get("assignment_rule", queue.assignment_rule) == "time" and not queue.timezone:
        organisation = session.get(Organisation, queue.organisation_id)
        changes["timezone"] = zone(organisation.timezone if organisation else None).key
    for key, value in changes.items():  # only now: a refused change leaves the queue untouched
        setattr(queue, key, value)
    for member, weight in new_weights:
        member.weight = weight
    for member, member_slots in new_slots:
        member.slots = member_slots
    session.flush()
    after = assignment_record(session, queue)
    if _audit_view(after) != _audit_view(before):
        audit.record(
            session,
            actor,
            "queue.assignment.update",
            "queue",
            queue.id,
            organisation_id=queue.organisation_id,
            before=_audit_view(before),
            after=_audit_view(after),
        )
        notify_change(session)
    return after


def _check_rule(rule: object) -> str:
    if rule not in ASSIGNMENT_RULES:
        raise Invalid(
            f"rule must be one of {', '.join(ASSIGNMENT_RULES)}, got {rule!r}", field="rule"
        )
    return str(rule)


def _check_sticky(days: object) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_STICKY_DAYS:
        raise Invalid(
            f"sticky_days must be a whole number from 0 (off) to {MAX_STICKY_DAYS}, got {days!r}",
            field="sticky_days",
        )
    return days


def _check_weight(weight: object, *, email: str) -> int:
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
        raise Invalid(
            f"weight of {email} must be a whole number from 0 to {MAX_WEIGHT}, got {weight!r}",
            field="weights",
        )
    return weight


def _fallback_id(session: Session, queue: Queue, email: object) -> int | None:
    if email is None or email == "":
        return None
    user = session.scalar(
        select(User).where(
            User.organisation_id == queue.organisation_id,
            func.lower(User.email) == str(email).strip().lower(),
        )
    )
    if user is None:
        raise NotFound(f"fallback: no user {email!r} in this organisation", field="fallback")
    if not user.active:
        raise Invalid(
            f"fallback: {user.email} is deactivated; choose an active user", field="fallback"
        )
    return user.id


_EMAIL = re.compile(r"^\S+@\S+$")


def _members_by_email(queue: Queue, values: object, *, field: str) -> list[tuple[QueueMember, Any]]:
    if values is UNSET:
        return []
    if not isinstance(values, dict):
        raise Invalid(f"{field}: expected a mapping of member email to value", field=field)
    by_email = {m.user.email.lower(): m for m in queue.members}
    pairs = []
    for email, value in values.items():
        member = by_email.get(str(email).strip().lower()) if _EMAIL.match(str(email)) else None
        if member is None:
            raise Invalid(
                f"{field}: {email!r} is not a member of queue {queue.name!r}", field=field
            )
        pairs.append((member, value))
    return pairs
