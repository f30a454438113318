"""Working hours (F33): schedule, holidays, timezone and DST, and the set_hours service."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from factories import add_queue, add_user, make_org
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tui_helpdesk.errors import Invalid, NotFound, PermissionDenied
from tui_helpdesk.services import audit, hours
from tui_helpdesk.services.vocabulary import DAYS

PARIS = ZoneInfo("Europe/Paris")
WEEKDAYS = {
    d: [["09:00", "12:00"], ["13:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")
}


@dataclass
class FakeQueue:
    hours_enabled: bool = True
    timezone: str | None = "Europe/Paris"
    schedule: dict[str, Any] = field(default_factory=lambda: dict(WEEKDAYS))
    holidays: list[Any] = field(default_factory=list)


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)


def test_disabled_hours_are_always_open() -> None:
    queue = FakeQueue(hours_enabled=False, schedule={})
    assert hours.is_within_hours(queue, paris(2026, 11, 22, 3, 0))  # a Sunday night
    assert hours.next_opening(queue, paris(2026, 11, 22, 3, 0)) == paris(2026, 11, 22, 3, 0)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (paris(2026, 11, 23, 8, 59), False),  # Monday, before opening
        (paris(2026, 11, 23, 9, 0), True),  # start is inclusive
        (paris(2026, 11, 23, 11, 59), True),
        (paris(2026, 11, 23, 12, 0), False),  # end is exclusive: lunch break
        (paris(2026, 11, 23, 13, 0), True),  # second interval of the day
        (paris(2026, 11, 23, 17, 0), False),
        (paris(2026, 11, 28, 10, 0), False),  # Saturday: no intervals
    ],
)
def test_weekly_schedule_with_several_intervals(moment: datetime, expected: bool) -> None:
    assert hours.is_within_hours(FakeQueue(), moment) is expected


def test_the_queue_timezone_decides_not_the_caller_zone() -> None:
    # 08:30 UTC on a winter Monday is 09:30 in Paris: open, although 08:30 < 09:00.
    now = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
    assert hours.is_within_hours(FakeQueue(), now)
    assert not hours.is_within_hours(FakeQueue(timezone="America/New_York"), now)


def test_interval_ending_at_midnight_and_continuing_next_day() -> None:
    night = FakeQueue(schedule={"fri": [["22:00", "24:00"]], "sat": [["00:00", "06:00"]]})
    assert hours.is_within_hours(night, paris(2026, 11, 27, 23, 59))
    assert hours.is_within_hours(night, paris(2026, 11, 28, 0, 0))
    assert hours.is_within_hours(night, paris(2026, 11, 28, 5, 59))
    assert not hours.is_within_hours(night, paris(2026, 11, 28, 6, 0))
    assert not hours.is_within_hours(night, paris(2026, 11, 27, 21, 59))


def test_holidays_are_dates_in_the_queue_timezone() -> None:
    queue = FakeQueue(holidays=["2026-12-25"])
    assert not hours.is_within_hours(queue, paris(2026, 12, 25, 10, 0))  # a Friday
    assert hours.is_within_hours(queue, paris(2026, 12, 24, 10, 0))
    # 23:30 UTC on Thursday the 24th is already 00:30 on Friday the 25th in Paris.
    late = datetime(2026, 12, 24, 23, 30, tzinfo=UTC)
    full_days = {"thu": [["00:00", "24:00"]], "fri": [["00:00", "24:00"]]}
    assert hours.is_within_hours(FakeQueue(schedule=full_days), late)
    assert not hours.is_within_hours(FakeQueue(schedule=full_days, holidays=["2026-12-25"]), late)
    evening = datetime(2026, 12, 24, 22, 30, tzinfo=UTC)  # Thursday 23:30 in Paris
    assert hours.is_within_hours(FakeQueue(schedule=full_days, holidays=["2026-12-25"]), evening)


def test_opening_hours_follow_the_wall_clock_across_dst() -> None:
    queue = FakeQueue(schedule={d: [["09:00", "17:00"]] for d in DAYS})
    # Paris: CET (UTC+1) until 2026-03-29 02:00, then CEST (UTC+2).
    assert hours.is_within_hours(queue, datetime(2026, 3, 28, 8, 0, tzinfo=UTC))  # 09:00 CET
    assert not hours.is_within_hours(queue, datetime(2026, 3, 29, 6, 59, tzinfo=UTC))  # 08:59
    assert hours.is_within_hours(queue, datetime(2026, 3, 29, 7, 0, tzinfo=UTC))  # 09:00 CEST
    assert not hours.is_within_hours(queue, datetime(2026, 3, 29, 15, 0, tzinfo=UTC))  # 17:00
    # and back in October (2026-10-25 03:00 CEST → 02:00 CET)
    assert not hours.is_within_hours(queue, datetime(2026, 10, 25, 7, 59, tzinfo=UTC))  # 08:59
    assert hours.is_within_hours(queue, datetime(2026, 10, 25, 8, 0, tzinfo=UTC))  # 09:00 CET


def test_interval_inside_the_spring_gap_opens_when_the_clock_jumps() -> None:
    # 02:00-02:59 does not exist on 2026-03-29 in Paris; a 02:30 opening means 03:00 CEST.
    queue = FakeQueue(schedule={"sun": [["02:30", "05:00"]]})
    before = datetime(2026, 3, 29, 0, 59, tzinfo=UTC)  # 01:59 CET
    assert not hours.is_within_hours(queue, before)
    opening = hours.next_opening(queue, before)
    assert opening == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert opening.astimezone(PARIS).strftime("%H:%M %Z") == "03:00 CEST"
    assert hours.is_within_hours(queue, opening)


def test_ambiguous_autumn_opening_takes_the_first_occurrence() -> None:
    queue = FakeQueue(schedule={"sun": [["02:30", "05:00"]]})
    opening = hours.next_opening(queue, datetime(2026, 10, 24, 12, 0, tzinfo=UTC))
    assert opening == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST, the first one


def test_next_opening_skips_lunch_weekends_and_holidays() -> None:
    queue = FakeQueue(holidays=["2026-12-25", "2026-12-28"])
    assert hours.next_opening(queue, paris(2026, 11, 23, 12, 15)) == paris(2026, 11, 23, 13, 0)
    assert hours.next_opening(queue, paris(2026, 11, 27, 18, 0)) == paris(2026, 11, 30, 9, 0)
    # Christmas Friday, weekend, then Monday 28th is a holiday too: Tuesday 29th 09:00
    assert hours.next_opening(queue, paris(2026, 12, 24, 17, 30)) == paris(2026, 12, 29, 9, 0)
    assert hours.next_opening(queue, paris(2026, 11, 23, 10, 0)) == paris(2026, 11, 23, 10, 0)
    assert hours.describe_opening(queue, paris(2026, 11, 27, 18, 0)) == (
        "Mon 2026-11-30 09:00 Europe/Paris"
    )


def test_a_schedule_without_any_interval_never_opens() -> None:
    queue = FakeQueue(schedule={})
    assert not hours.is_within_hours(queue, paris(2026, 11, 23, 10, 0))
    assert hours.next_opening(queue, paris(2026, 11, 23, 10, 0)) is None
    assert hours.describe_opening(queue, paris(2026, 11, 23, 10, 0)) == ""


def test_malformed_stored_data_means_closed_not_a_crash() -> None:
    queue = FakeQueue(schedule={"mon": [["9", "17"]], "tue": "x"}, timezone="Mars/Olympus")
    assert not hours.is_within_hours(queue, paris(2026, 11, 23, 10, 0))
    assert not hours.is_within_hours(queue, paris(2026, 11, 24, 10, 0))


def test_validate_schedule_normalises_and_rejects_with_clear_messages() -> None:
    assert hours.validate_schedule(
        {"mon": [["13:00", "17:00"], ["09:00", "12:00"]], "sun": [], "sat": [["22:00", "24:00"]]}
    ) == {"mon": [["09:00", "12:00"], ["13:00", "17:00"]], "sat": [["22:00", "24:00"]]}
    bad = [
        ({"monday": [["09:00", "17:00"]]}, "unknown day 'monday'"),
        ({"mon": [["17:00", "09:00"]]}, "must start before it ends"),
        ({"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}, "overlap at 11:00"),
        ({"mon": [["24:00", "24:00"]]}, "00:00-23:59"),
        ({"mon": [["9:00", "17:00"]]}, "HH:MM"),
        ({"mon": [["09:00", "24:01"]]}, "HH:MM"),
        ({"mon": [["09:00"]]}, "[start, end]"),
        ("mon 9-5", "expected"),
    ]
    for schedule, message in bad:
        with pytest.raises(Invalid) as caught:
            hours.validate_schedule(schedule)
        assert message in caught.value.message, (schedule, caught.value.message)


def test_validate_holidays_and_timezone() -> None:
    assert hours.validate_holidays(["2026-12-26", "2026-12-25", "2026-12-25"]) == [
        "2026-12-25",
        "2026-12-26",
    ]
    for bad in (["2026-13-01"], ["christmas"], [20261225], "2026-12-25"):
        with pytest.raises(Invalid):
            hours.validate_holidays(bad)
    assert hours.validate_timezone(" Europe/Paris ") == "Europe/Paris"
    for bad in ("Europe/Atlantis", "", "../../etc/passwd", None):
        with pytest.raises(Invalid, match="timezone"):
            hours.validate_timezone(bad)


# --- the service, on both backends -----------------------------------------------------------


def test_set_hours_validates_stores_and_audits(db, settings) -> None:  # type: ignore[no-untyped-def]
    org = make_org(db, timezone="Europe/Paris")
    queue = add_queue(db, settings, org.admin, "Support")
    with db.write() as session:
        record = hours.set_hours(
            session, org.admin, queue.id,
            enabled=True, schedule={"mon": [["09:00", "17:00"]]}, holidays=["2026-12-25"],
            outside_hours_enabled=True, outside_hours_subject="We are closed",
            outside_hours_body="Back {{next_opening}}.",
        )  # fmt: skip
    assert record.enabled and record.timezone == "Europe/Paris"  # taken from the organisation
    assert record.schedule["mon"] == [["09:00", "17:00"]] and record.schedule["tue"] == []
    assert record.holidays == ("2026-12-25",)
    with db.read() as session:
        assert hours.get_hours(session, org.admin, "Support") == record
        entries = audit.list_entries(session, org.admin, entity_type="queue")
    change = next(e for e in entries if e.action == "queue.hours.update")
    assert change.before["enabled"] is False and change.after["enabled"] is True
    assert change.after["schedule"]["mon"] == [["09:00", "17:00"]]


def test_set_hours_errors(db, settings) -> None:  # type: ignore[no-untyped-def]
    org = make_org(db)
    carol = add_user(db, org.admin, "carol@acme.test")
    queue = add_queue(db, settings, org.admin, "Support", members={"carol@acme.test": "agent"})
    attempts = [
        (org.admin, {"outside_hours_enabled": True, "outside_hours_body": "closed"},
         Invalid, "enable working hours first"),
        (org.admin, {"enabled": True, "outside_hours_enabled": True}, Invalid, "write the message"),
        (org.admin, {"timezone": "Paris"}, Invalid, "unknown timezone"),
        (org.admin, {"schedule": {"mon": [["18:00", "08:00"]]}}, Invalid, "start before it ends"),
        (carol, {"enabled": True}, PermissionDenied, "not an admin of this queue"),
    ]  # fmt: skip
    for actor, changes, error, message in attempts:
        with pytest.raises(error, match=message), db.write() as session:
            hours.set_hours(session, actor, queue.id, **changes)
    with pytest.raises(NotFound), db.write() as session:
        hours.set_hours(session, org.admin, queue.id + 100, enabled=True)
    with db.read() as session:
        assert hours.get_hours(session, carol, queue.id).enabled is False  # nothing was kept


# --- properties over any instant, across both DST changes -------------------------------------

SCHEDULES = [
    {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    {"sun": [["02:30", "03:30"]], "sat": [["00:00", "02:15"], ["22:00", "24:00"]]},
    {"wed": [["00:00", "24:00"]]},
]


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
    ),
    schedule=st.sampled_from(SCHEDULES),
    tz=st.sampled_from(["Europe/Paris", "America/New_York", "Australia/Lord_Howe"]),
)
def test_next_opening_is_the_first_open_instant(moment: datetime, schedule, tz: str) -> None:  # type: ignore[no-untyped-def]
    queue = FakeQueue(schedule=schedule, timezone=tz, holidays=["2026-12-25", "2026-07-04"])
    opening = hours.next_opening(queue, moment)
    assert opening is not None and opening >= moment
    assert hours.is_within_hours(queue, opening)
    if opening > moment:  # the second before it was still closed
        assert not hours.is_within_hours(queue, opening - timedelta(seconds=1))
        assert not hours.is_within_hours(queue, moment)
