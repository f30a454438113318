"""Stats (F60): per queue, per agent and per day numbers from SQL, on both backends."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from factories import add_mailbox, add_queue, add_user, make_org
from sqlalchemy import select
from test_tui_data import add_conversation

from tui_helpdesk.cli import cli
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Conversation, Message, MessageAuth, Organisation
from tui_helpdesk.errors import Invalid
from tui_helpdesk.records import UserRecord
from tui_helpdesk.services import stats

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Desk:
    admin: UserRecord
    bob: UserRecord
    dee: UserRecord
    support: int
    sales: int


def reply(db: Database, conversation_id: int, after: timedelta, kind: str = "mail") -> None:
    """An outbound message `after` the conversation was created."""
    with db.write() as session:
        conversation = session.get_one(Conversation, conversation_id)
        at = conversation.created_at + after
        session.add(
            Message(
                conversation_id=conversation.id, mailbox_id=conversation.mailbox_id,
                direction="outbound", kind=kind, subject="Re", received_at=at, raw=b"x",
                raw_sha256="0" * 64, raw_size=1,
            )
        )  # fmt: skip


def flag(db: Database, conversation_id: int, warning: str) -> None:
    """The sender check's verdict on the conversation's first (inbound) message."""
    with db.write() as session:
        first = session.scalars(
            select(Message.id)
            .where(Message.conversation_id == conversation_id)
            .order_by(Message.id)
        ).first()
        session.add(MessageAuth(message_id=first, status="done", warning=warning))


def conversation(
    db: Database, org: int, mailbox: int, queue: int | None, age: timedelta, **extra: object
) -> int:
    closed_at = extra.pop("closed_at", None)
    with db.write() as session:
        made = add_conversation(
            session, org_id=org, mailbox_id=mailbox, queue_id=queue, subject="Help",
            sender="carol@customer.test", at=NOW - age, **extra,  # type: ignore[arg-type]
        )  # fmt: skip
        made.closed_at = closed_at  # type: ignore[assignment]
        return made.id


@pytest.fixture
def desk(db: Database, settings) -> Desk:  # type: ignore[no-untyped-def]
    return make_stats_desk(db, settings)


def make_stats_desk(db: Database, settings) -> Desk:  # type: ignore[no-untyped-def]
    """Acme with Support (four answered conversations), Sales (one old) and one in no queue."""
    org = make_org(db)
    admin = org.admin
    bob = add_user(db, admin, "bob@acme.test", name="Bob Agent")
    dee = add_user(db, admin, "dee@acme.test", name="Dee Agent")
    box = add_mailbox(db, settings, admin, "support")
    add_mailbox(db, settings, admin, "sales")
    support = add_queue(db, settings, admin, "Support", mailboxes=["support@acme.test"],
                        members={"bob@acme.test": "agent"})  # fmt: skip
    sales = add_queue(db, settings, admin, "Sales", mailboxes=["sales@acme.test"],
                      members={"dee@acme.test": "agent"})  # fmt: skip
    o, m = org.organisation.id, box.id
    c1 = conversation(db, o, m, support.id, timedelta(hours=2))
    reply(db, c1, timedelta(minutes=1), kind="auto_reply")  # not an answer
    reply(db, c1, timedelta(minutes=10))
    reply(db, c1, timedelta(minutes=50))  # only the first answer counts
    c2 = conversation(db, o, m, support.id, timedelta(days=3), assignee_id=bob.id)
    reply(db, c2, timedelta(minutes=30))
    c3 = conversation(db, o, m, support.id, timedelta(days=5), assignee_id=bob.id,
                      status="closed", closed_at=NOW - timedelta(hours=1))  # fmt: skip
    reply(db, c3, timedelta(minutes=20))
    c6 = conversation(db, o, m, support.id, timedelta(days=1), assignee_id=bob.id)
    reply(db, c6, timedelta(minutes=40))
    old = conversation(db, o, m, sales.id, timedelta(days=40), assignee_id=dee.id,
                       status="closed", closed_at=NOW - timedelta(days=35))  # fmt: skip
    reply(db, old, timedelta(minutes=5))
    conversation(db, o, m, None, timedelta(minutes=50))  # in no queue
    flag(db, c1, "spoof")
    flag(db, c2, "lookalike")  # a lookalike domain is not spoofing
    flag(db, old, "spoof")  # before the period
    return Desk(admin, bob, dee, support.id, sales.id)


def test_per_queue_numbers_and_medians(db: Database, desk: Desk) -> None:
    with db.read() as session:
        found = stats.stats(session, desk.admin, now=NOW)
    by_name = {q.queue: q for q in found.queues}
    assert [q.queue for q in found.queues] == ["Sales", "Support", stats.NO_QUEUE]
    support = by_name["Support"]
    assert (support.open, support.unassigned) == (3, 1)
    assert (support.received_today, support.resolved_today) == (1, 1)
    # answers after 10, 30, 20 and 40 minutes: an even count, the mean of the middle two
    assert support.median_first_response == pytest.approx(25 * 60, abs=1)
    assert support.median_resolution == pytest.approx((5 * 24 - 1) * 3600, abs=1)
    sales = by_name["Sales"]  # its only conversation is older than the period
    assert (sales.open, sales.median_first_response, sales.median_resolution) == (0, None, None)
    none = by_name[stats.NO_QUEUE]
    assert (none.open, none.unassigned, none.received_today) == (1, 1, 1)


def test_an_odd_group_takes_its_middle_row(db: Database, desk: Desk) -> None:
    with db.read() as session:
        found = stats.stats(session, desk.admin, now=NOW, days=4)  # c3 (5 days) left out
    [support] = [q for q in found.queues if q.queue == "Support"]
    assert support.median_first_response == pytest.approx(30 * 60, abs=1)  # 10, 30, 40


def test_per_agent_and_per_day(db: Database, desk: Desk) -> None:
    with db.read() as session:
        found = stats.stats(session, desk.admin, now=NOW)
    agents = {a.email: a for a in found.agents}
    assert agents["bob@acme.test"].handled == 1
    assert agents["bob@acme.test"].median_first_response == pytest.approx(30 * 60, abs=1)
    assert agents["dee@acme.test"].handled == 0  # closed before the period
    assert agents["dee@acme.test"].median_first_response is None
    assert len(found.days) == 30
    assert found.days[-1].day == "2026-12-06" and found.days[0].day == "2026-11-07"
    assert (found.days[-1].received, found.days[-1].resolved) == (2, 1)
    by_day = {d.day: d for d in found.days}
    assert by_day["2026-12-05"].received == 1 and by_day["2026-12-01"].received == 1
    assert sum(d.received for d in found.days) == 5


def test_the_day_follows_the_organisation_zone(db: Database, desk: Desk) -> None:
    with db.write() as session:
        session.get_one(Organisation, desk.admin.organisation_id).timezone = "Pacific/Kiritimati"
    with db.read() as session:
        found = stats.stats(session, desk.admin, now=NOW)
    # 12:00 UTC is 02:00 on the 7th at UTC+14: the local day began at 10:00 UTC
    assert found.timezone == "Pacific/Kiritimati" and found.days[-1].day == "2026-12-07"
    support = next(q for q in found.queues if q.queue == "Support")
    assert support.received_today == 1  # c1, two hours ago, is after local midnight


def test_possible_spoofing_per_mailbox_in_the_period(db: Database, desk: Desk) -> None:
    with db.read() as session:
        assert stats.stats(session, desk.admin, now=NOW).spoofing == (("support@acme.test", 1),)
        assert stats.stats(session, desk.dee, now=NOW).spoofing == ()  # not in her queue
        assert stats.stats(session, desk.admin, now=NOW, days=60).spoofing == (
            ("support@acme.test", 2),
        )


def test_who_may_view_the_stats(db: Database, desk: Desk, settings) -> None:  # type: ignore[no-untyped-def]
    loner = add_user(db, desk.admin, "cy@acme.test")
    with db.read() as session:
        assert stats.may_view(session, desk.admin) and stats.may_view(session, desk.bob)
        assert not stats.may_view(session, loner)


def test_an_agent_sees_their_queues_and_themselves(db: Database, desk: Desk) -> None:
    with db.read() as session:
        found = stats.stats(session, desk.bob, now=NOW)
    assert [q.queue for q in found.queues] == ["Support"]
    assert [a.email for a in found.agents] == ["bob@acme.test"]


def test_bad_period_is_refused(db: Database, desk: Desk) -> None:
    with db.read() as session, pytest.raises(Invalid, match="days"):
        stats.stats(session, desk.admin, now=NOW, days=0)


def test_stats_json_on_the_cli(db_url: str, desk: Desk) -> None:
    env = {"TUI_HELPDESK_DATABASE_URL": db_url, "TUI_HELPDESK_SMTP_PORT": "0"}
    result = CliRunner().invoke(cli, ["stats", "--json", "--as", "ada@acme.test"], env=env)
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert {q["queue"] for q in found["queues"]} == {"Support", "Sales", stats.NO_QUEUE}
    assert len(found["days"]) == 30 and found["period_days"] == 30
    text = CliRunner().invoke(cli, ["stats", "--as", "ada@acme.test"], env=env)
    assert text.exit_code == 0 and "MEDIAN FIRST RESPONSE" in text.stdout


def test_duration_reads_well() -> None:
    assert [stats.duration(s) for s in (None, 42, 600, 5400, 200_000)] == [
        "-", "42s", "10m", "1.5h", "2.3d",
    ]  # fmt: skip


def test_the_queries_do_not_grow_with_the_conversations(db: Database, desk: Desk) -> None:
    """SQL aggregates only: as many statements for 6 conversations as for 66."""
    from sqlalchemy import event

    def statements() -> int:
        seen: list[str] = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            with db.read() as session:
                stats.stats(session, desk.admin, now=NOW)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len(seen)

    few = statements()
    for n in range(60):
        made = conversation(db, desk.admin.organisation_id, 1, desk.support, timedelta(hours=n))
        reply(db, made, timedelta(minutes=n + 1))
    assert statements() == few
