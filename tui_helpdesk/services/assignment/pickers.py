"""The assignment strategies (F32) as pure functions over `Candidate` values, and member slots.

No database: every strategy is testable on plain values. See tui_helpdesk.services.assignment
for the order of decisions (sticky routing, the rule, the fallback).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tui_helpdesk.errors import Invalid
from tui_helpdesk.services.hours import format_clock, parse_clock, zone
from tui_helpdesk.services.vocabulary import DAYS

MAX_SLOTS = 28


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


def stored_slots(raw: object) -> tuple[Slot, ...]:
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
