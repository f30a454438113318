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

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from tui_helpdesk.db.engine import read_together
from tui_helpdesk.db.models import Conversation, Queue, QueueMember, User
from tui_helpdesk.services.assignment.pickers import (
    Candidate,
    pick,
    stored_slots,
)

OPEN_STATUSES = ("open", "pending")


class Member(NamedTuple):
    """An eligible member of the queue: what the rules read of its queue_members row."""

    user_id: int
    weight: int
    slots: Any  # as stored (JSON); pickers.stored_slots reads it
    created_at: datetime


_LOCKED_POINTER = (
    select(Queue.last_assigned_user_id).where(Queue.id == bindparam("queue_id")).with_for_update()
)
_ELIGIBLE = (
    select(QueueMember.user_id, QueueMember.weight, QueueMember.slots, QueueMember.created_at)
    .join(User, User.id == QueueMember.user_id)
    .where(
        QueueMember.queue_id == bindparam("queue_id"),
        User.active.is_(True),
        User.availability == "available",
    )
    .order_by(QueueMember.user_id)
)


def locking_reads(queue_id: int) -> list[tuple[Any, dict[str, Any]]]:
    """Lock the queue row and read its rotation pointer, then read its eligible members (after
    the lock): statements for db.engine.read_together, so a caller can send them along with
    reads of its own; their rows go to QueueAssigner(locked=...)."""
    parameters = {"queue_id": queue_id}
    return [(_LOCKED_POINTER, parameters), (_ELIGIBLE, parameters)]


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


def _assigned_counts(session: Session, queue: Queue, members: Sequence[Member]) -> dict[int, int]:
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


def candidates_for(session: Session, queue: Queue, members: Sequence[Member]) -> list[Candidate]:
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
            slots=stored_slots(m.slots) if rule == "time" else (),
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
    lock) and its eligible members read once, in one round trip (`locking_reads`; a caller
    that sent them already passes their rows as `locked`). The rotation pointer is kept here
    and stored by `write` (one UPDATE, when the caller writes its rows). Choices that depend
    on earlier conversations (sticky routing, least_busy, percentage) still read them per
    choice: `reads_history` tells the caller to make its own pending rows visible first.
    """

    def __init__(
        self, session: Session, queue: Queue, locked: Sequence[Sequence[Any]] | None = None
    ) -> None:
        self.session = session
        self.queue = queue
        self._fixed: list[Candidate] | None = None  # candidates that need no counts
        if not self.locks(queue):
            # Nobody is ever picked: no lock, no members, no pointer (the cheap way out).
            self.last_user_id = self._written = queue.last_assigned_user_id
            self.members: list[Member] = []
            self._member_ids: set[int] = set()
            return
        pointer, members = locked or read_together(session, locking_reads(queue.id))
        self.last_user_id = self._written = pointer[0][0] if pointer else None
        set_committed_value(queue, "last_assigned_user_id", self.last_user_id)
        self.members = [Member(u, w, s, _utc(c)) for u, w, s, c in members]
        self._member_ids = {m.user_id for m in self.members}

    @staticmethod
    def locks(queue: Queue) -> bool:
        """False for a queue whose assignment never picks anybody (nothing to lock or read)."""
        return not (queue.assignment_rule == "manual" and queue.sticky_days <= 0)

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


def _utc(moment: datetime) -> datetime:
    """A stored time as UTCDateTime reads it (the driver's row may carry the session's zone)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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
