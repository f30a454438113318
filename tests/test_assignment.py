"""Assignment (F32): every strategy, sticky routing, fallback and edge cases, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from factories import add_queue, add_user, make_org
from sqlalchemy import event, select

from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Contact, Conversation, Queue, QueueMember
from tui_helpdesk.errors import Invalid, NotFound, PermissionDenied
from tui_helpdesk.services import assignment, audit, queues, users
from tui_helpdesk.services.assignment import pickers
from tui_helpdesk.services.assignment.pickers import Candidate, Slot

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday
AGENTS = ("bob@acme.test", "carol@acme.test", "dave@acme.test")


@pytest.fixture
def team(db: Database, settings):  # type: ignore[no-untyped-def]
    """Acme with agents bob < carol < dave (by id) in queue Support; returns (org, queue, ids)."""
    org = make_org(db, timezone="Europe/Paris")
    ids = {email: add_user(db, org.admin, email).id for email in AGENTS}
    queue = add_queue(
        db, settings, org.admin, "Support", members={email: "agent" for email in AGENTS}
    )
    return org, queue, ids


def configure(db: Database, org, queue_id: int, **changes) -> None:  # type: ignore[no-untyped-def]
    with db.write() as session:
        assignment.set_assignment(session, org.admin, queue_id, **changes)


def assign_new(
    db: Database, queue_id: int, *, now: datetime = NOW, contact_id: int | None = None
) -> int | None:
    """What ingest does: choose, then create the conversation with that assignee."""
    with db.write() as session:
        queue = session.get_one(Queue, queue_id)
        chosen = assignment.choose_assignee(session, queue, contact_id=contact_id, now=now)
        session.add(
            Conversation(
                organisation_id=queue.organisation_id, queue_id=queue_id, contact_id=contact_id,
                subject="help", assignee_id=chosen, created_at=now, last_message_at=now,
            )
        )  # fmt: skip
    return chosen


def set_availability(db: Database, org, email: str, availability: str) -> None:  # type: ignore[no-untyped-def]
    with db.write() as session:
        users.set_availability(session, org.admin, email, availability)


def names(ids: dict[str, int], picks: list[int | None]) -> list[str | None]:
    by_id = {v: k.split("@")[0] for k, v in ids.items()}
    return [by_id.get(p) if p is not None else None for p in picks]


# --- pure strategies -------------------------------------------------------------------------


def test_pure_round_robin_wraps_and_survives_a_missing_pointer() -> None:
    people = [Candidate(3), Candidate(7), Candidate(9)]
    assert pickers.pick_round_robin(people, None) == 3
    assert pickers.pick_round_robin(people, 3) == 7
    assert pickers.pick_round_robin(people, 9) == 3
    assert pickers.pick_round_robin(people, 8) == 9  # user 8 left the queue
    assert pickers.pick_round_robin(people, 42) == 3
    assert pickers.pick_round_robin([], 3) is None


def test_pure_least_busy_tie_breaks() -> None:
    early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    people = [
        Candidate(1, open_count=2),
        Candidate(2, open_count=1, last_assigned_at=late),
        Candidate(3, open_count=1, last_assigned_at=early),
    ]
    assert pickers.pick_least_busy(people) == 3  # equal load: waited longest
    people.append(Candidate(4, open_count=1))  # never assigned here: waited longest of all
    assert pickers.pick_least_busy(people) == 4
    assert pickers.pick_least_busy([Candidate(5, open_count=1), Candidate(4, open_count=1)]) == 4


def test_pure_time_slot_boundaries() -> None:
    slot = Slot(frozenset({"mon"}), 9 * 60, 13 * 60)
    paris = ZoneInfo("Europe/Paris")
    assert pickers.slot_covers(slot, datetime(2026, 11, 23, 9, 0, tzinfo=paris))
    assert pickers.slot_covers(slot, datetime(2026, 11, 23, 12, 59, tzinfo=paris))
    assert not pickers.slot_covers(slot, datetime(2026, 11, 23, 13, 0, tzinfo=paris))
    assert not pickers.slot_covers(slot, datetime(2026, 11, 24, 10, 0, tzinfo=paris))


# --- round robin -----------------------------------------------------------------------------


def test_round_robin_rotates_through_available_members(db, team) -> None:  # type: ignore[no-untyped-def]
    org, queue, ids = team
    configure(db, org, queue.id, rule="round_robin")
    picks = [assign_new(db, queue.id) for _ in range(5)]
    assert names(ids, picks) == ["bob", "carol", "dave", "bob", "carol"]
    set_availability(db, org, "dave@acme.test", "away")
    picks = [assign_new(db, queue.id) for _ in range(3)]
    assert names(ids, picks) == ["bob", "carol", "bob"]  # dave's turn is skipped


def test_round_robin_member_removed_mid_rotation(db, team) -> None:  # type: ignore[no-untyped-def]
    org, queue, ids = team
    configure(db, org, queue.id, rule="round_robin")
    assert names(ids, [assign_new(db, queue.id), assign_new(db, queue.id)]) == ["bob", "carol"]
    with db.write() as session:  # carol, who had the last turn, leaves the queue
        queues.remove_member(session, org.admin, "Support", "carol@acme.test")
    assert names(ids, [assign_new(db, queue.id), assign_new(db, queue.id)]) == ["dave", "bob"]
    assign_new(db, queue.id)  # dave
    with db.write() as session:  # the last one in id order leaves: wrap to the first
        queues.remove_member(session, org.admin, "Support", "dave@acme.test")
    assert names(ids, [assign_new(db, queue.id)]) == ["bob"]


def test_inactive_users_get_no_work(db, team) -> None:  # type: ignore[no-untyped-def]
    org, queue, ids = team
    configure(db, org, queue.id, rule="round_robin")
    with db.write() as session:
        users.set_active(session, org.admin, "bob@acme.test", False)
    assert names(ids, [assign_new(db, queue.id) for _ in range(3)]) == ["carol", "dave", "carol"]


# --- nobody available, fallback --------------------------------------------------------------


def test_nobody_available_without_fallback_leaves_it_unassigned(db, team) -> None:  # type: ignore[no-untyped-def]
    org, queue, _ids = team
    configure(db, org, queue.id, rule="round_robin")
    for email in AGENTS:
        set_availability(db, org, email, "offline" if email.startswith("b") else "away")
    assert assign_new(db, queue.id) is None


def test_fallback_gets_the_work_even_when_away_but_never_when_inactive(db, team) -> None:  # type: ignore[no-untyped-def]
    org, queue, ids = team
    fallback = add_user(db, org.admin, "erin@acme.test")  # not even a member
    configure(db, org, queue.id, rule="least_busy", fallback="erin@acme.test")
    for email in AGENTS:
        set_availability(db, org, email, "away")
    assert assign_new(db, queue.id) == fallback.id
    set_availability(db, org, "erin@acme.test", "away")
    assert assign_new(db, queue.id) == fallback.id  # documented choice: the safety net holds
    with db.write() as session:
        users.set_active(session, org.admin, "erin@acme.test", False)
    assert assign_new(db, queue.id) is None
    set_availability(db, org, "carol@acme.test", "available")
    assert assign_new(db, queue.id) == ids["carol@acme.test"]  # members first, of course


def test_manual_assigns_nobody_and_ignores_the_fallback(db, team) -> None:  # type: ignore[no-untyped-def]
    org, queue, _ids = team
    add_user(db, org.admin, "erin@acme.test")
    configure(db, org, queue.id, rule="manual", fallback="erin@acme.test")
    assert [assign_new(db, queue.id) for _ in range(3)] == [None, None, None]


def test_a_manual_queue_without_sticky_routing_reads_nothing(db, team) -> None:  # type: ignore[no-untyped-def]
    org, queue, ids = team
    configure(db, org, queue.id, rule="manual")
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    with db.write() as session:
        row = session.get_one(Queue, queue.id)
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            assigner = assignment.QueueAssigner(session, row)
            assert assigner.choose(None, NOW) is None
            assigner.write()
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
    assert statements == []
    contact = make_contact(db, org)  # with sticky routing, manual queues still stick
    configure(db, org, queue.id, sticky_days=7)
    served(db, org, contact, ids["carol@acme.test"], NOW - timedelta(days=1))
    assert assign_new(db, queue.id, contact_id=contact) == ids["carol@acme.test"]
    assert assign_new(db, queue.id) is None


def test_fallback_does_not_move_the_rotation(db, team) -> None:  # type: ignore[no-untyped-def]
    org, queue, ids = team
    add_user(db, org.admin, "erin@acme.test")
    configure(db, org, queue.id, rule="round_robin", fallback="erin@acme.test")
    assert names(ids, [assign_new(db, queue.id)]) == ["bob"]
    for email in AGENTS:
        set_availability(db, org, email, "away")
    assign_new(db, queue.id)  # erin
    for email in AGENTS:
        set_availability(db, org, email, "available")
    assert names(ids, [assign_new(db, queue.id)]) == ["carol"]


# --- least busy ------------------------------------------------------------------------------


def add_conversation(  # type: ignore[no-untyped-def]
    db: Database, org, assignee: int, status: str, *, queue_id: int | None = None
) -> None:
    created = NOW - timedelta(days=1)
    with db.write() as session:
        session.add(
            Conversation(
                organisation_id=org.organisation.id, queue_id=queue_id, assignee_id=assignee,
                status=status, created_at=created, last_message_at=created,
            )
        )  # fmt: skip


def test_least_busy_counts_open_and_pending_across_queues(db, settings, team) -> None:  # type: ignore[no-untyped-def]
    org, queue, ids = team
    other = add_queue(db, settings, org.admin, "Sales")
    bob, carol, dave = (ids[e] for e in AGENTS)
    add_conversation(db, org, bob, "open", queue_id=queue.id)
    add_conversation(db, org, carol, "pending", queue_id=other.id)  # other queues count too
    for _ in range(3):
        add_conversation(db, org, dave, "closed", queue_id=queue.id)  # closed ones do not
    configure(db, org, queue.id, rule="least_busy")
    assert assign_new(db, queue.id) == dave
    # now bob, carol and dave each have one: dave was just served, bob was served in this queue
    # a day ago, carol never here: carol waited longest
    assert assign_new(db, queue.id, now=NOW + timedelta(minutes=1)) == carol
    assert assign_new(db, queue.id, now=NOW + timedelta(minutes=2)) == bob


# --- percentage ------------------------------------------------------------------------------


def test_percentage_converges_to_the_weights(db, team) -> None:  # type: ignore[no-untyped-def]
    org, queue, ids = team
    weights = {"bob@acme.test": 50, "carol@acme.test": 30, "dave@acme.test": 20}
    configure(db, org, queue.id, rule="percentage", weights=weights)
    counts = dict.fromkeys(ids.values(), 0)
    start = datetime.now(UTC)  # after the members joined: shares count from the newest one
    for n in range(1, 101):
        chosen = assign_new(db, queue.id, now=start + timedelta(seconds=n))
        assert chosen is not None
        counts[chosen] += 1
        for email, weight in weights.items():  # every prefix stays within one of the ideal
            assert abs(counts[ids[email]] - weight * n / 100) < 1.0 + 1e-9, (n, counts)
    assert {e: counts[ids[e]] for e in weights} == weights


def test_percentage_weight_zero_and_away_members(db, team) -> None:  # type: ignore[no-untyped-def]
    org, queue, ids = team
    configure(
        db, org, queue.id, rule="percentage",
        weights={"bob@acme.test": 3, "carol@acme.test": 1, "dave@acme.test": 0},
    )  # fmt: skip
    start = datetime.now(UTC)
    picks = names(ids, [assign_new(db, queue.id, now=start) for _ in range(8)])
    assert picks.count("bob") == 6 and picks.count("carol") == 2 and "dave" not in picks
    set_availability(db, org, "bob@acme.test", "away")
    assert names(ids, [assign_new(db, queue.id, now=start) for _ in range(2)]) == ["carol"] * 2


# --- time ------------------------------------------------------------------------------------


def test_time_slots_at_the_boundary(db, team) -> None:  # type: ignore[no-untyped-def]
    org, queue, ids = team
    week = ["mon", "tue", "wed", "thu", "fri"]
    configure(
        db, org, queue.id, rule="time",
        slots={
            "bob@acme.test": [{"days": week, "start": "09:00", "end": "13:00"}],
            "carol@acme.test": [{"days": week, "start": "13:00", "end": "17:00"}],
            "dave@acme.test": [{"days": week, "start": "12:00", "end": "14:00"}],
        },
    )  # fmt: skip
    paris = ZoneInfo("Europe/Paris")  # the queue took the organisation's timezone

    def at(hour: int, minute: int) -> datetime:
        return datetime(2026, 11, 23, hour, minute, tzinfo=paris)

    assert names(ids, [assign_new(db, queue.id, now=at(8, 59))]) == [None]
    assert names(ids, [assign_new(db, queue.id, now=at(9, 0))]) == ["bob"]
    assert names(ids, [assign_new(db, queue.id, now=at(11, 0))]) == ["bob"]  # alone on duty
    # 12:59: bob and dave on duty, round robin after bob → dave, then bob
    assert names(ids, [assign_new(db, queue.id, now=at(12, 59))]) == ["dave"]
    assert names(ids, [assign_new(db, queue.id, now=at(12, 59))]) == ["bob"]
    # 13:00: bob's slot has ended; carol and dave on duty
    assert names(ids, [assign_new(db, queue.id, now=at(13, 0))]) == ["carol"]
    assert names(ids, [assign_new(db, queue.id, now=at(16, 59))]) == ["carol"]
    assert names(ids, [assign_new(db, queue.id, now=at(17, 0))]) == [None]


def test_time_slots_follow_the_wall_clock_across_dst(db, team) -> None:  # type: ignore[no-untyped-def]
    org, queue, ids = team
    configure(
        db, org, queue.id, rule="time",
        slots={"bob@acme.test": [{"days": ["sat", "sun"], "start": "09:00", "end": "10:00"}]},
    )  # fmt: skip
    # 08:30 UTC: Saturday 2026-03-28 is 09:30 CET (on duty); Sunday the 29th 10:30 CEST (not).
    assert assign_new(db, queue.id, now=datetime(2026, 3, 28, 8, 30, tzinfo=UTC)) == ids[AGENTS[0]]
    assert assign_new(db, queue.id, now=datetime(2026, 3, 29, 8, 30, tzinfo=UTC)) is None
    assert assign_new(db, queue.id, now=datetime(2026, 3, 29, 7, 30, tzinfo=UTC)) == ids[AGENTS[0]]


# --- sticky ----------------------------------------------------------------------------------


def make_contact(db: Database, org) -> int:  # type: ignore[no-untyped-def]
    with db.write() as session:
        contact = Contact(organisation_id=org.organisation.id, email="customer@example.test")
        session.add(contact)
        session.flush()
        return contact.id


def served(db: Database, org, contact_id: int, assignee: int, when: datetime) -> None:  # type: ignore[no-untyped-def]
    with db.write() as session:
        session.add(
            Conversation(
                organisation_id=org.organisation.id, contact_id=contact_id, assignee_id=assignee,
                status="closed", created_at=when, last_message_at=when,
            )
        )  # fmt: skip


def test_sticky_within_and_after_n_days(db, team) -> None:  # type: ignore[no-untyped-def]
    org, queue, ids = team
    contact = make_contact(db, org)
    configure(db, org, queue.id, rule="round_robin", sticky_days=7)
    served(db, org, contact, ids["dave@acme.test"], NOW - timedelta(days=8))
    served(db, org, contact, ids["carol@acme.test"], NOW - timedelta(days=6, hours=23))
    assert assign_new(db, queue.id, contact_id=contact, now=NOW) == ids["carol@acme.test"]
    # the sticky pick did not use a turn: the rotation still starts with bob
    assert names(ids, [assign_new(db, queue.id), assign_new(db, queue.id)]) == ["bob", "carol"]
    # within 7 days of carol's last conversation with them (made just now): carol again
    soon = NOW + timedelta(days=6, hours=23)
    assert assign_new(db, queue.id, contact_id=contact, now=soon) == ids["carol@acme.test"]
    # more than 7 days after that one: a stranger again, plain rotation after carol → dave
    later = soon + timedelta(days=7, minutes=1)
    assert assign_new(db, queue.id, contact_id=contact, now=later) == ids["dave@acme.test"]


def test_sticky_agent_away_falls_back_to_the_rule(db, team) -> None:  # type: ignore[no-untyped-def]
    org, queue, ids = team
    contact = make_contact(db, org)
    configure(db, org, queue.id, rule="round_robin", sticky_days=30)
    served(db, org, contact, ids["carol@acme.test"], NOW - timedelta(days=1))
    set_availability(db, org, "carol@acme.test", "away")
    assert assign_new(db, queue.id, contact_id=contact) == ids["bob@acme.test"]
    # the most recent *assigned* conversation is now bob's: sticky follows the latest agent
    set_availability(db, org, "carol@acme.test", "available")
    assert (
        assign_new(db, queue.id, contact_id=contact, now=NOW + timedelta(hours=1))
        == ids["bob@acme.test"]
    )


def test_sticky_off_and_sticky_agent_no_longer_member(db, team) -> None:  # type: ignore[no-untyped-def]
    org, queue, ids = team
    contact = make_contact(db, org)
    served(db, org, contact, ids["dave@acme.test"], NOW - timedelta(days=1))
    configure(db, org, queue.id, rule="round_robin", sticky_days=0)
    assert assign_new(db, queue.id, contact_id=contact) == ids["bob@acme.test"]
    configure(db, org, queue.id, sticky_days=30)
    with db.write() as session:
        queues.remove_member(session, org.admin, "Support", "bob@acme.test")
    # latest assigned conversation is bob's (just made), but bob left: plain round robin
    assert (
        assign_new(db, queue.id, contact_id=contact, now=NOW + timedelta(hours=1))
        == ids["carol@acme.test"]
    )


# --- the admin service -----------------------------------------------------------------------


def test_set_assignment_stores_audits_and_reads_back(db, team) -> None:  # type: ignore[no-untyped-def]
    org, queue, _ids = team
    slots = [{"days": ["tue", "mon"], "start": "09:00", "end": "24:00"}]
    with db.write() as session:
        record = assignment.set_assignment(
            session, org.admin, "Support", rule="time", fallback="BOB@acme.test", sticky_days=3,
            weights={"carol@acme.test": 70}, slots={"dave@acme.test": slots},
        )  # fmt: skip
    assert record.rule == "time" and record.fallback == "bob@acme.test" and record.sticky_days == 3
    members = {m.email: m for m in record.members}
    assert members["carol@acme.test"].weight == 70 and members["bob@acme.test"].weight == 1
    assert members["dave@acme.test"].slots == (
        {"days": ["mon", "tue"], "start": "09:00", "end": "24:00"},
    )
    with db.read() as session:
        assert assignment.get_assignment(session, org.admin, queue.id) == record
        assert session.get_one(Queue, queue.id).timezone == "Europe/Paris"
        entry = next(
            e for e in audit.list_entries(session, org.admin, entity_type="queue")
            if e.action == "queue.assignment.update"
        )  # fmt: skip
    assert entry.before["rule"] == "manual" and entry.after["rule"] == "time"
    assert entry.after["members"]["carol@acme.test"]["weight"] == 70
    with db.write() as session:
        assignment.set_assignment(session, org.admin, queue.id, fallback=None)
        assert assignment.get_assignment(session, org.admin, queue.id).fallback is None


def test_set_assignment_rejects_bad_input_with_clear_errors(db, team) -> None:  # type: ignore[no-untyped-def]
    org, queue, _ids = team
    add_user(db, org.admin, "erin@acme.test")
    with db.write() as session:
        users.set_active(session, org.admin, "erin@acme.test", False)
    attempts = [
        ({"rule": "random"}, Invalid, "rule must be one of"),
        ({"sticky_days": -1}, Invalid, "sticky_days"),
        ({"sticky_days": 366}, Invalid, "sticky_days"),
        ({"fallback": "nobody@acme.test"}, NotFound, "no user"),
        ({"fallback": "erin@acme.test"}, Invalid, "deactivated"),
        ({"weights": {"bob@acme.test": 101}}, Invalid, "weight of bob@acme.test"),
        ({"weights": {"erin@acme.test": 5}}, Invalid, "not a member of queue 'Support'"),
        ({"slots": {"bob@acme.test": [{"days": ["mon"], "start": "13:00", "end": "09:00"}]}},
         Invalid, "must start before it ends"),
        ({"slots": {"bob@acme.test": [{"days": ["funday"], "start": "09:00", "end": "10:00"}]}},
         Invalid, "days must be"),
    ]  # fmt: skip
    for changes, error, message in attempts:
        with pytest.raises(error, match=message), db.write() as session:
            assignment.set_assignment(session, org.admin, queue.id, **changes)
    with pytest.raises(NotFound), db.write() as session:
        assignment.set_assignment(session, org.admin, "Nope", rule="manual")


def test_set_assignment_permissions(db, team) -> None:  # type: ignore[no-untyped-def]
    org, queue, _ids = team
    with db.read() as session:
        bob = users.get(session, org.admin, "bob@acme.test")
    with pytest.raises(PermissionDenied), db.write() as session:
        assignment.set_assignment(session, bob, queue.id, rule="round_robin")
    with db.write() as session:
        queues.add_member(session, org.admin, "Support", "bob@acme.test", "admin")
    with db.write() as session:  # a queue admin may
        assert assignment.set_assignment(session, bob, queue.id, rule="round_robin").rule == (
            "round_robin"
        )
    with db.read() as session:
        member = session.scalar(select(QueueMember).where(QueueMember.user_id == bob.id))
        assert member is not None and member.role == "admin"
