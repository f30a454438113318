"""Who gets a new conversation (F32): the queue's assignment rule, sticky routing, fallback.

Only members whose user is active and `available` receive work. Order of decisions:

1. Sticky routing (queue.sticky_days > 0): the assignee of the contact's most recent assigned
   conversation whose last message is within N days, if that agent is still an eligible member
   of this queue. Sticky applies under every rule, `manual` included: an admin who turned it on
   wants returning customers to reach their agent.
2. The rule: `round_robin` (next member after the last one assigned, by user id; the pointer
   survives that member leaving), `least_busy` (fewest open + pending conversations across all
   queues, then longest since their last assignment in this queue, then lowest id), `manual`
   (nobody), `percentage` (smooth weighted round robin: the member furthest below their weight
   share of this queue's assignments since the newest eligible member joined, so a newcomer is
   not flooded to "catch up"), `time` (members whose slots cover `now` in the queue timezone,
   then round robin among them).
3. Nobody eligible: the fallback user when that user is active, *even when away or offline*
   (the Zammad-style safety net: work must never be left without an owner; the fallback is a
   named person who accepted that role). `manual` queues never use the fallback.

Only a pick made by the rule moves the rotation pointer (queue.last_assigned_user_id); sticky
and fallback picks leave it, so they do not skip anybody's turn. Pure pickers work on
`Candidate` values so every strategy is testable without a database.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from tui_helpdesk.db.models import Conversation, Organisation, Queue, QueueMember, User
from tui_helpdesk.errors import Invalid, NotFound
from tui_helpdesk.records import AssignmentMemberRecord, AssignmentRecord, UserRecord
from tui_helpdesk.services import audit, permissions, queues
from tui_helpdesk.services.hours import DAYS, format_clock, parse_clock, zone

RULES = ("round_robin", "least_busy", "manual", "percentage", "time")
OPEN_STATUSES = ("open", "pending")
MAX_STICKY_DAYS = 365
MAX_WEIGHT = 100
MAX_SLOTS = 28
UNSET: Any = object()  # marks an argument that was not given ("leave it as it is")


@dataclass(frozen=True)
class Slot:
    days: frozenset[str]
    start: int  # minutes since local midnight, inclusive
    end: int  # exclusive; 1440 for "24:00"


@dataclass(frozen=True)
class Candidate:
    """An eligible member and the numbers the strategies compare."""

    user_id: int
    weight: int = 1
    slots: tuple[Slot, ...] = ()
    open_count: int = 0
    assigned_count: int = 0
    last_assigned_at: datetime | None = None


# --- pure strategies -------------------------------------------------------------------------


def pick_round_robin(candidates: Sequence[Candidate], last_user_id: int | None) -> int | None:
    """The next user id after the last one assigned, wrapping; works if that user has left."""
    ids = sorted(c.user_id for c in candidates)
    if not ids:
        return None
    if last_user_id is None:
        return ids[0]
    return next((i for i in ids if i > last_user_id), ids[0])


def pick_least_busy(candidates: Sequence[Candidate]) -> int | None:
    """Fewest open conversations; then the one who waited longest for work; then lowest id."""
    if not candidates:
        return None
    never = datetime.min.replace(tzinfo=None)

    def key(c: Candidate) -> tuple[int, datetime, int]:
        waited = c.last_assigned_at.replace(tzinfo=None) if c.last_assigned_at else never
        return (c.open_count, waited, c.user_id)

    return min(candidates, key=key).user_id


def pick_percentage(candidates: Sequence[Candidate]) -> int | None:
    """Smooth weighted round robin from counts: the member furthest below their weight share.

    After this pick there will be T + 1 assignments; member i "should" then have
    w_i / W * (T + 1). The largest shortfall wins (ties: larger weight, then lower id), which
    keeps every prefix of the sequence within one assignment of the weights.
    """
    weighted = [c for c in candidates if c.weight > 0]
    if not weighted:
        return None
    total_weight = sum(c.weight for c in weighted)
    upcoming = sum(c.assigned_count for c in weighted) + 1

    def key(c: Candidate) -> tuple[float, int, int]:
        shortfall = c.weight * upcoming / total_weight - c.assigned_count
        return (-shortfall, -c.weight, c.user_id)

    return min(weighted, key=key).user_id


def slot_covers(slot: Slot, local: datetime) -> bool:
    minute = local.hour * 60 + local.minute
    return DAYS[local.weekday()] in slot.days and slot.start <= minute < slot.end


def pick_time(
    candidates: Sequence[Candidate], last_user_id: int | None, now: datetime, tz_name: str | None
) -> int | None:
    """Round robin among the members whose slots cover `now` on the queue's wall clock."""
    local = now.astimezone(zone(tz_name))
    on_duty = [c for c in candidates if any(slot_covers(s, local) for s in c.slots)]
    return pick_round_robin(on_duty, last_user_id)


def pick(
    rule: str,
    candidates: Sequence[Candidate],
    *,
    last_user_id: int | None,
    now: datetime,
    tz_name: str | None,
) -> int | None:
    """The rule's choice among eligible candidates, None when it picks nobody."""
    if rule == "round_robin":
        return pick_round_robin(candidates, last_user_id)
    if rule == "least_busy":
        return pick_least_busy(candidates)
    if rule == "percentage":
        return pick_percentage(candidates)
    if rule == "time":
        return pick_time(candidates, last_user_id, now, tz_name)
    return None  # manual, or an unknown stored value: leave it to a person


# --- slots -----------------------------------------------------------------------------------


def validate_slots(raw: object, *, field: str = "slots") -> list[dict[str, Any]]:
    """[{"days": ["mon", "tue"], "start": "09:00", "end": "13:00"}] checked and normalised."""
    if not isinstance(raw, (list, tuple)):
        raise Invalid(f"{field}: expected a list of {{days, start, end}} slots", field=field)
    if len(raw) > MAX_SLOTS:
        raise Invalid(f"{field}: at most {MAX_SLOTS} slots", field=field)
    return [_validate_slot(item, field=field) for item in raw]


def _validate_slot(item: object, *, field: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise Invalid(f"{field}: each slot is {{days, start, end}}, got {item!r}", field=field)
    days = item.get("days")
    if not isinstance(days, (list, tuple)) or not days or any(d not in DAYS for d in days):
        raise Invalid(f"{field}: days must be a non-empty list of {', '.join(DAYS)}", field=field)
    start = parse_clock(item.get("start"), field=field)
    end = parse_clock(item.get("end"), field=field, allow_24=True)
    if start >= end:
        raise Invalid(
            f"{field}: slot {item.get('start')}-{item.get('end')} must start before it ends "
            "(split a night shift at 24:00)",
            field=field,
        )
    ordered = [d for d in DAYS if d in days]
    return {"days": ordered, "start": format_clock(start), "end": format_clock(end)}


def _stored_slots(raw: object) -> tuple[Slot, ...]:
    """Slots as stored; anything malformed counts as no slot rather than failing ingest."""
    try:
        slots = validate_slots(raw)
    except Invalid:
        return ()
    return tuple(
        Slot(frozenset(s["days"]), parse_clock(s["start"], field="slots"),
             parse_clock(s["end"], field="slots", allow_24=True))
        for s in slots
    )  # fmt: skip


# --- choose_assignee -------------------------------------------------------------------------


def _eligible(session: Session, queue: Queue) -> list[QueueMember]:
    return list(
        session.scalars(
            select(QueueMember)
            .join(User, User.id == QueueMember.user_id)
            .where(
                QueueMember.queue_id == queue.id,
                User.active.is_(True),
                User.availability == "available",
            )
            .order_by(QueueMember.user_id)
        )
    )


def sticky_agent(
    session: Session, queue: Queue, contact_id: int | None, now: datetime
) -> int | None:
    """The assignee of the contact's latest assigned conversation within sticky_days."""
    if not contact_id or queue.sticky_days <= 0:
        return None
    return session.scalar(
        select(Conversation.assignee_id)
        .where(
            Conversation.organisation_id == queue.organisation_id,
            Conversation.contact_id == contact_id,
            Conversation.assignee_id.is_not(None),
            Conversation.last_message_at >= now - timedelta(days=queue.sticky_days),
        )
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(1)
    )


def _open_counts(session: Session, user_ids: list[int]) -> dict[int, int]:
    rows = session.execute(
        select(Conversation.assignee_id, func.count())
        .where(Conversation.assignee_id.in_(user_ids), Conversation.status.in_(OPEN_STATUSES))
        .group_by(Conversation.assignee_id)
    )
    return {user_id: count for user_id, count in rows}


def _last_assigned(session: Session, queue: Queue, user_ids: list[int]) -> dict[int, datetime]:
    rows = session.execute(
        select(Conversation.assignee_id, func.max(Conversation.created_at))
        .where(Conversation.queue_id == queue.id, Conversation.assignee_id.in_(user_ids))
        .group_by(Conversation.assignee_id)
    )
    return {user_id: when for user_id, when in rows}


def _assigned_counts(session: Session, queue: Queue, members: list[QueueMember]) -> dict[int, int]:
    since = max(m.created_at for m in members)
    rows = session.execute(
        select(Conversation.assignee_id, func.count())
        .where(
            Conversation.queue_id == queue.id,
            Conversation.assignee_id.in_([m.user_id for m in members]),
            Conversation.created_at >= since,
        )
        .group_by(Conversation.assignee_id)
    )
    return {user_id: count for user_id, count in rows}


def candidates_for(session: Session, queue: Queue, members: list[QueueMember]) -> list[Candidate]:
    """Eligible members with only the numbers the queue's rule needs (few queries)."""
    ids = [m.user_id for m in members]
    rule = queue.assignment_rule
    open_counts = _open_counts(session, ids) if rule == "least_busy" and ids else {}
    last = _last_assigned(session, queue, ids) if rule == "least_busy" and ids else {}
    counts = _assigned_counts(session, queue, members) if rule == "percentage" and ids else {}
    return [
        Candidate(
            user_id=m.user_id,
            weight=m.weight,
            slots=_stored_slots(m.slots) if rule == "time" else (),
            open_count=open_counts.get(m.user_id, 0),
            assigned_count=counts.get(m.user_id, 0),
            last_assigned_at=last.get(m.user_id),
        )
        for m in members
    ]


def _fallback(session: Session, queue: Queue) -> int | None:
    if queue.assignment_rule == "manual" or queue.fallback_user_id is None:
        return None
    user = session.get(User, queue.fallback_user_id)
    return user.id if user is not None and user.active else None


_COUNTING = ("least_busy", "percentage")
_POINTER = (
    Queue.__table__.update()
    .where(Queue.__table__.c.id == bindparam("queue_id"))
    .values(last_assigned_user_id=bindparam("user_id"))
)  # rules whose candidates carry conversation counts


class QueueAssigner:
    """One queue's assignment for one write transaction, which may create many conversations.

    The queue row is locked (FOR UPDATE on PostgreSQL; SQLite's writer already holds the write
    lock) and its eligible members read once. The rotation pointer is kept here and stored by
    `write` (one UPDATE, when the caller writes its rows). Choices that depend on earlier
    conversations (sticky routing, least_busy, percentage) still read them per choice:
    `reads_history` tells the caller to make its own pending rows visible first.
    """

    def __init__(self, session: Session, queue: Queue) -> None:
        self.session = session
        self.queue = queue
        self._fixed: list[Candidate] | None = None  # candidates that need no counts
        if queue.assignment_rule == "manual" and queue.sticky_days <= 0:
            # Nobody is ever picked: no lock, no members, no pointer (the cheap way out).
            self.last_user_id = self._written = queue.last_assigned_user_id
            self.members: list[QueueMember] = []
            self._member_ids: set[int] = set()
            return
        session.refresh(queue, ["last_assigned_user_id"], with_for_update=True)
        self.last_user_id = self._written = queue.last_assigned_user_id
        self.members = _eligible(session, queue)
        self._member_ids = {m.user_id for m in self.members}

    def bind(self, session: Session) -> None:
        """Reuse this assigner (members, candidates, pointer) in the next transaction.

        Only for a caller that knows nobody else changed the queue or its members meanwhile
        (ingest on SQLite: PRAGMA data_version unchanged).
        """
        self.session = session

    def reads_history(self, has_contact: bool) -> bool:
        """True when `choose` will query conversations (sticky routing or a counting rule)."""
        sticky = has_contact and self.queue.sticky_days > 0
        return sticky or self.queue.assignment_rule in _COUNTING

    def choose(self, contact_id: int | None, now: datetime) -> int | None:
        """The assignee of one new conversation; moves the rotation pointer on a rule pick."""
        queue = self.queue
        sticky = sticky_agent(self.session, queue, contact_id, now)
        if sticky is not None and sticky in self._member_ids:
            return sticky
        chosen = pick(
            queue.assignment_rule,
            self._candidates(),
            last_user_id=self.last_user_id,
            now=now,
            tz_name=queue.timezone,
        )
        if chosen is not None:
            self.last_user_id = chosen
            return chosen
        return _fallback(self.session, queue)

    def write(self) -> None:
        """Store the rotation pointer if it moved since it was read or last written."""
        if self.last_user_id == self._written:
            return
        self.session.connection().execute(
            _POINTER, {"queue_id": self.queue.id, "user_id": self.last_user_id}
        )
        self._written = self.last_user_id
        set_committed_value(self.queue, "last_assigned_user_id", self.last_user_id)

    def _candidates(self) -> list[Candidate]:
        if self.queue.assignment_rule in _COUNTING:
            return candidates_for(self.session, self.queue, self.members)
        if self._fixed is None:
            self._fixed = candidates_for(self.session, self.queue, self.members)
        return self._fixed


def choose_assignee(
    session: Session, queue: Queue, *, contact_id: int | None, now: datetime
) -> int | None:
    """Pick the assignee of a new conversation in `queue`; updates the rotation pointer.

    Call inside the write transaction that creates the conversation. The queue row is
    re-read FOR UPDATE (PostgreSQL) so concurrent ingest transactions rotate correctly.
    """
    assigner = QueueAssigner(session, queue)
    chosen = assigner.choose(contact_id, now)
    assigner.write()
    return chosen


# --- admin service ---------------------------------------------------------------------------


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
    return after


def _check_rule(rule: object) -> str:
    if rule not in RULES:
        raise Invalid(f"rule must be one of {', '.join(RULES)}, got {rule!r}", field="rule")
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
