"""Working hours of a queue (F33): weekly schedule, holidays and timezone, correct across DST.

Open or closed is decided on the wall clock of the queue's timezone, so "09:00-17:00" means
09:00-17:00 local time on both sides of a DST change. The pure functions take plain values
(schedule dict, holiday list, timezone name) so the rules are testable without a database;
`is_within_hours` and `next_opening` read them from a Queue, and `set_hours` is the admin
service that validates and stores them.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Organisation, Queue
from tui_helpdesk.errors import Invalid, NotFound
from tui_helpdesk.records import QueueHoursRecord, UserRecord
from tui_helpdesk.services import audit, organisations, permissions, queues
from tui_helpdesk.services.changes import notify as notify_change
from tui_helpdesk.services.unset import UNSET
from tui_helpdesk.services.vocabulary import DAYS

MAX_INTERVALS_PER_DAY = 12
MAX_HOLIDAYS = 400
MAX_SUBJECT = 255
MAX_BODY = 20_000
_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_END_OF_DAY = 24 * 60  # minutes; "24:00" is allowed as the end of an interval
# Looking this far ahead for the next opening covers a whole year of holidays plus a week.
_SEARCH_DAYS = 380


class HoursLike(Protocol):
    """What the hour rules read from a queue (a Queue row or any object with these fields)."""

    hours_enabled: bool
    timezone: str | None
    schedule: dict[str, Any]
    holidays: list[Any]


Interval = tuple[int, int]  # minutes since local midnight, [start, end)


# --- validation ------------------------------------------------------------------------------


def parse_clock(value: object, *, field: str, allow_24: bool = False) -> int:
    """ "HH:MM" → minutes since midnight; "24:00" only where it ends a day."""
    match = _CLOCK.match(value) if isinstance(value, str) else None
    minutes = int(match.group(1)) * 60 + int(match.group(2)) if match else -1
    if not match or minutes > _END_OF_DAY or (minutes == _END_OF_DAY and not allow_24):
        allowed = "00:00-24:00" if allow_24 else "00:00-23:59"
        raise Invalid(f"{field}: time must be HH:MM ({allowed}), got {value!r}", field=field)
    return minutes


def format_clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def validate_timezone(name: object, *, field: str = "timezone") -> str:
    """An IANA zone name that zoneinfo knows, e.g. "Europe/Paris" (the organisations rule)."""
    if not isinstance(name, str) or not name.strip():
        raise Invalid(f"{field}: give an IANA timezone such as Europe/Paris", field=field)
    return organisations.validate_timezone(name, field=field)


def validate_intervals(raw: object, *, field: str) -> list[Interval]:
    """[["09:00", "12:00"], ["13:00", "17:00"]] → sorted, non-overlapping minute intervals."""
    if not isinstance(raw, (list, tuple)):
        raise Invalid(f"{field}: expected a list of [start, end] pairs", field=field)
    if len(raw) > MAX_INTERVALS_PER_DAY:
        raise Invalid(f"{field}: at most {MAX_INTERVALS_PER_DAY} intervals a day", field=field)
    intervals: list[Interval] = []
    for pair in raw:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise Invalid(f"{field}: each interval is [start, end], got {pair!r}", field=field)
        start = parse_clock(pair[0], field=field)
        end = parse_clock(pair[1], field=field, allow_24=True)
        if start >= end:
            raise Invalid(
                f"{field}: interval {pair[0]}-{pair[1]} must start before it ends "
                "(split a night shift at 24:00 and continue at 00:00 the next day)",
                field=field,
            )
        intervals.append((start, end))
    intervals.sort()
    for (_, prev_end), (start, _) in itertools.pairwise(intervals):
        if start < prev_end:
            raise Invalid(f"{field}: intervals overlap at {format_clock(start)}", field=field)
    return intervals


def validate_schedule(schedule: object) -> dict[str, list[list[str]]]:
    """Check a weekly schedule and return it normalised (sorted intervals, known days only)."""
    if not isinstance(schedule, dict):
        raise Invalid('schedule: expected {"mon": [["09:00", "17:00"]], ...}', field="schedule")
    unknown = sorted(str(k) for k in schedule if k not in DAYS)
    if unknown:
        raise Invalid(
            f"schedule: unknown day {unknown[0]!r} (use {', '.join(DAYS)})", field="schedule"
        )
    normalised: dict[str, list[list[str]]] = {}
    for day in DAYS:
        intervals = validate_intervals(schedule.get(day) or [], field=f"schedule.{day}")
        if intervals:
            normalised[day] = [[format_clock(s), format_clock(e)] for s, e in intervals]
    return normalised


def validate_holidays(holidays: object) -> list[str]:
    """ISO dates ("2026-12-25"), deduplicated and sorted."""
    if not isinstance(holidays, (list, tuple)):
        raise Invalid('holidays: expected a list of dates such as "2026-12-25"', field="holidays")
    if len(holidays) > MAX_HOLIDAYS:
        raise Invalid(f"holidays: at most {MAX_HOLIDAYS} dates", field="holidays")
    days: set[str] = set()
    for value in holidays:
        try:
            days.add(date.fromisoformat(value).isoformat())
        except (TypeError, ValueError):
            raise Invalid(
                f"holidays: {value!r} is not a date like 2026-12-25", field="holidays"
            ) from None
    return sorted(days)


# --- the rules -------------------------------------------------------------------------------


def zone(name: str | None) -> ZoneInfo:
    """The queue's zone; a missing or unknown name means UTC rather than an ingest failure."""
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _day_intervals(schedule: dict[str, Any], day: date) -> list[Interval]:
    """Stored intervals of that weekday; malformed stored data counts as closed, never raises."""
    try:
        return validate_intervals(schedule.get(DAYS[day.weekday()]) or [], field="schedule")
    except Invalid:
        return []


def _holiday_set(holidays: Iterable[Any]) -> set[str]:
    return {h for h in holidays if isinstance(h, str)}


def open_at(
    schedule: dict[str, Any], holidays: Sequence[Any], tz_name: str | None, now: datetime
) -> bool:
    """True when `now` falls inside an interval of its local weekday and that day is no holiday."""
    local = now.astimezone(zone(tz_name))
    if local.date().isoformat() in _holiday_set(holidays):
        return False
    minute = local.hour * 60 + local.minute
    return any(start <= minute < end for start, end in _day_intervals(schedule, local.date()))


def is_within_hours(queue: HoursLike, now: datetime) -> bool:
    """Open right now? A queue without working hours is always open."""
    if not queue.hours_enabled:
        return True
    return open_at(queue.schedule or {}, queue.holidays or [], queue.timezone, now)


def local_instant(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    """The first instant at which the wall clock of `tz` shows `minutes` on `day` or later.

    Ambiguous times (autumn) take their first occurrence; times in a spring-forward gap map to
    the end of the gap, which is when such a wall time is first reached or passed.
    """
    wall = datetime.combine(day, time()) + timedelta(minutes=minutes)
    early = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if early.astimezone(tz).replace(tzinfo=None) == wall:
        return early
    late = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)  # gap: the transition is in between
    low, high = min(early, late), max(early, late)
    while high - low > timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(tz).replace(tzinfo=None) >= wall:
            high = mid
        else:
            low = mid
    return high.replace(microsecond=0)


def next_opening_at(
    schedule: dict[str, Any], holidays: Sequence[Any], tz_name: str | None, now: datetime
) -> datetime | None:
    """The first instant at or after `now` when the queue is open (UTC), None if it never is."""
    if open_at(schedule, holidays, tz_name, now):
        return now
    tz = zone(tz_name)
    skip = _holiday_set(holidays)
    first_day = now.astimezone(tz).date()
    for offset in range(_SEARCH_DAYS):
        day = first_day + timedelta(days=offset)
        if day.isoformat() in skip:
            continue
        for start, _end in _day_intervals(schedule, day):
            opening = local_instant(day, start, tz)
            if opening > now:
                return opening
    return None


def next_opening(queue: HoursLike, now: datetime) -> datetime | None:
    """When the queue opens next (for the outside-hours message); `now` when it is open."""
    if not queue.hours_enabled:
        return now
    return next_opening_at(queue.schedule or {}, queue.holidays or [], queue.timezone, now)


def describe_opening(queue: HoursLike, now: datetime) -> str:
    """ "Mon 2026-12-28 09:00 Europe/Paris" for messages; "" when no opening is scheduled."""
    opening = next_opening(queue, now)
    if opening is None:
        return ""
    tz = zone(queue.timezone)
    return f"{opening.astimezone(tz):%a %Y-%m-%d %H:%M} {tz.key}"


# --- admin service ---------------------------------------------------------------------------


def hours_record(queue: Queue) -> QueueHoursRecord:
    return QueueHoursRecord(
        queue_id=queue.id,
        queue=queue.name,
        enabled=queue.hours_enabled,
        timezone=queue.timezone or "UTC",
        schedule={day: [list(p) for p in queue.schedule.get(day, [])] for day in DAYS},
        holidays=tuple(queue.holidays or ()),
        outside_hours_enabled=queue.outside_hours_enabled,
        outside_hours_subject=queue.outside_hours_subject,
        outside_hours_body=queue.outside_hours_body,
    )


def _audit_view(record: QueueHoursRecord) -> dict[str, Any]:
    return {
        "enabled": record.enabled,
        "timezone": record.timezone,
        "schedule": record.schedule,
        "holidays": list(record.holidays),
        "outside_hours_enabled": record.outside_hours_enabled,
        "outside_hours_subject": record.outside_hours_subject,
        "outside_hours_body": record.outside_hours_body,
    }


def _queue_for(session: Session, actor: UserRecord, queue: int | str) -> Queue:
    """A queue of the actor's organisation by id, or by name as the CLI gives it."""
    if isinstance(queue, str):
        return queues.load(session, actor, queue)
    row = session.get(Queue, queue)
    if row is None or row.organisation_id != actor.organisation_id:
        raise NotFound(f"no queue with id {queue}", field="queue")
    return row


def _check_text(value: object, *, field: str, limit: int, one_line: bool = False) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{field}: expected text", field=field)
    if len(value) > limit:
        raise Invalid(f"{field}: at most {limit} characters, got {len(value)}", field=field)
    if one_line and any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise Invalid(f"{field}: must be one line without control characters", field=field)
    return value.strip() if one_line else value


def get_hours(session: Session, actor: UserRecord, queue: int | str) -> QueueHoursRecord:
    row = _queue_for(session, actor, queue)
    permissions.require_queue_member(session, actor, row.id)
    return hours_record(row)


def set_hours(
    session: Session,
    actor: UserRecord,
    queue: int | str,
    *,
    enabled: bool = UNSET,
    timezone: str = UNSET,
    schedule: dict[str, Any] = UNSET,
    holidays: list[str] = UNSET,
    outside_hours_enabled: bool = UNSET,
    outside_hours_subject: str = UNSET,
    outside_hours_body: str = UNSET,
) -> QueueHoursRecord:
    """Change a queue's working hours and outside-hours message (queue admins only; audited).

    Arguments left out stay as they are. A queue without a timezone takes its organisation's
    when hours are first enabled, so "09:00" never silently means UTC.
    """
    queue = _queue_for(session, actor, queue)
    permissions.require_queue_admin(session, actor, queue.id)
    before = hours_record(queue)
    given = {
        "hours_enabled": enabled, "timezone": timezone, "schedule": schedule,
        "holidays": holidays, "outside_hours_enabled": outside_hours_enabled,
        "outside_hours_subject": outside_hours_subject, "outside_hours_body": outside_hours_body,
    }  # fmt: skip
    changes = {key: VALIDATORS[key](value) for key, value in given.items() if value is not UNSET}
    proposed = {key: changes.get(key, getattr(queue, key)) for key in VALIDATORS}
    if proposed["hours_enabled"] and not proposed["timezone"]:
        organisation = session.get(Organisation, queue.organisation_id)
        changes["timezone"] = zone(organisation.timezone if organisation else None).key
    _check_outside_hours_complete(proposed)
    for key, value in changes.items():  # only now: a refused change leaves the queue untouched
        setattr(queue, key, value)
    session.flush()
    after = hours_record(queue)
    if after != before:
        audit.record(
            session, actor, "queue.hours.update", "queue", queue.id,
            organisation_id=queue.organisation_id,
            before=_audit_view(before), after=_audit_view(after),
        )  # fmt: skip
        notify_change(session)
    return after


def _check_bool(value: object, *, field: str) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{field}: expected true or false, got {value!r}", field=field)
    return value


VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "hours_enabled": lambda v: _check_bool(v, field="enabled"),
    "timezone": validate_timezone,
    "schedule": validate_schedule,
    "holidays": validate_holidays,
    "outside_hours_enabled": lambda v: _check_bool(v, field="outside_hours_enabled"),
    "outside_hours_subject": lambda v: _check_text(
        v, field="outside_hours_subject", limit=MAX_SUBJECT, one_line=True
    ),
    "outside_hours_body": lambda v: _check_text(v, field="outside_hours_body", limit=MAX_BODY),
}


def _check_outside_hours_complete(proposed: dict[str, Any]) -> None:
    """An enabled outside-hours message needs a body and working hours to be outside of."""
    if not proposed["outside_hours_enabled"]:
        return
    if not proposed["outside_hours_body"].strip():
        raise Invalid(
            "outside_hours_body: write the message to send outside working hours",
            field="outside_hours_body",
        )
    if not proposed["hours_enabled"]:
        raise Invalid(
            "outside_hours_enabled: enable working hours first (the message is sent outside them)",
            field="outside_hours_enabled",
        )
