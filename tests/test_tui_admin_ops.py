"""The admin screens of issue 10 points 5-7 driven with keys: stats, audit log, workers.

Pilot tests run on both backends; snapshots (120×36 and 80×24) on a copy of the migrated
SQLite template, at a fixed clock, with the audit entries and heartbeats at fixed times.
Update after reviewing: pytest tests/test_tui_admin_ops.py --snapshot-update
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from test_ingest_support import build_mail, deliver
from test_stats import NOW, make_stats_desk
from test_tui import shown, wait_for
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from tui_helpdesk.config import Settings, load_settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import AuditEntry, Conversation, Mailbox, Message, WorkerStatus
from tui_helpdesk.services import routing
from tui_helpdesk.tui.app import HelpdeskApp, make_app
from tui_helpdesk.tui.screens.admin import audit as audit_screen
from tui_helpdesk.tui.screens.admin import stats as stats_screen
from tui_helpdesk.tui.screens.admin import workers as workers_screen
from tui_helpdesk.tui.screens.admin.audit import AuditScreen
from tui_helpdesk.tui.screens.admin.stats import StatsScreen
from tui_helpdesk.tui.screens.admin.workers import WorkersScreen
from tui_helpdesk.tui.widgets.audit_list import AuditList

BIG, SMALL = (120, 36), (80, 24)


def seed_admin(db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The stats desk, two failed mails, two workers (one down), audit entries a minute apart.
    Returns the failed message ids."""
    make_stats_desk(db, settings)
    with db.read() as session:
        alias = session.scalar(select(Mailbox.alias).where(Mailbox.local_part == "support"))
    failed = []
    with monkeypatch.context() as patch:

        def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise ValueError("routing exploded")

        patch.setattr(routing, "decide", broken)
        for n, subject in enumerate(("Invoice [b]overdue[/b]", "Printer on fire")):
            raw = build_mail(subject=subject, message_id=f"<failed-{n}@customer.test>")
            at = NOW - timedelta(minutes=30 - n)
            stored = deliver(db, settings, raw, alias, at=at)
            failed.append(stored.message_ids[0])
            made = Conversation.id == stored.conversation_ids[0]
            with db.write() as session:  # stored raw: created at the wall clock's time
                session.execute(update(Conversation).where(made).values(created_at=at))
    with db.write() as session:
        session.add_all([
            WorkerStatus(name="mx1", pid=4242, smtp_address="0.0.0.0:25", started_at=NOW -
                         timedelta(days=2), heartbeat_at=NOW - timedelta(seconds=3),
                         last_accepted_at=NOW - timedelta(minutes=29), accepted_count=1520,
                         accepted_last_minute=4, accepted_last_hour=61,
                         error_count=2, last_error="routing exploded"),
            WorkerStatus(name="mx2", pid=77, smtp_address="10.0.0.2:2525", started_at=NOW -
                         timedelta(days=9), heartbeat_at=NOW - timedelta(minutes=12),
                         accepted_count=88, error_count=0, last_error=""),
        ])  # fmt: skip
        ids = session.scalars(select(AuditEntry.id).order_by(AuditEntry.id)).all()
        for position, entry_id in enumerate(ids):
            at = NOW - timedelta(minutes=len(ids) - position)
            session.execute(
                update(AuditEntry).where(AuditEntry.id == entry_id).values(created_at=at)
            )
    return failed


def build(settings: Settings, email: str = "ada@acme.test") -> HelpdeskApp:
    settings = settings.replace(tui={"refresh_interval_seconds": 0.05, "page_size": 10})
    return make_app(settings, email, now=lambda: NOW)


def text_of(app: HelpdeskApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def static_rows(app: HelpdeskApp, selector: str) -> list[list[str]]:
    """A Static's lines as drawn, split into words."""
    return [line.split() for line in shown(app.screen.query_one(selector, Static)).splitlines()]


def table_rows(app: HelpdeskApp, selector: str) -> list[list[str]]:
    table = app.screen.query_one(selector, DataTable)
    return [[str(cell) for cell in table.get_row_at(n)] for n in range(table.row_count)]


@pytest.fixture
def seeded(db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    return seed_admin(db, settings, monkeypatch)


# --- stats ----------------------------------------------------------------------------------


async def test_stats_show_queues_agents_and_the_chart(settings, seeded) -> None:  # type: ignore[no-untyped-def]
    app = build(settings)
    async with app.run_test(size=BIG) as pilot:
        await app.push_screen(StatsScreen())
        screen = app.screen
        assert isinstance(screen, StatsScreen)
        await wait_for(pilot, lambda: screen.record is not None)
        await pilot.pause()
        rows = {row[0]: row for row in static_rows(app, "#stats-queues")}
        # Support: 3 open + the 2 failed mails stored raw in its queue today
        assert rows["Support"][1:] == ["5", "3", "3", "1", "25m", "5.0d"]
        assert rows["Queue"] == ["Queue", "Open", "Unassigned", "In", "today", "Done", "today",
                                 "1st", "reply", "Resolution"]  # fmt: skip
        [bob] = [row for row in static_rows(app, "#stats-agents") if "<bob@acme.test>" in row]
        assert bob == ["Bob", "Agent", "<bob@acme.test>", "1", "30m"]
        assert "received and resolved per day" in text_of(app, "#stats-chart-heading")
        await pilot.press("escape")
        assert not isinstance(app.screen, StatsScreen)


async def test_an_agent_sees_the_stats_of_their_queues(db, settings, seeded) -> None:  # type: ignore[no-untyped-def]
    app = build(settings, "bob@acme.test")
    async with app.run_test(size=BIG) as pilot:
        await app.push_screen(StatsScreen())
        await wait_for(pilot, lambda: app.screen.record is not None)  # type: ignore[attr-defined]
        assert [row[0] for row in static_rows(app, "#stats-queues")] == ["Queue", "Support"]


# --- audit ----------------------------------------------------------------------------------


async def test_audit_filter_by_subject_then_a_refusal_then_clear(settings, seeded) -> None:  # type: ignore[no-untyped-def]
    app = build(settings)
    async with app.run_test(size=BIG) as pilot:
        await app.push_screen(AuditScreen())
        entries = app.screen.query_one(AuditList)
        await wait_for(pilot, lambda: entries.loaded)
        everything = entries.total
        assert everything > 10
        assert entries.cursor_row is not None and entries.cursor_row.action == "queue.member.add"
        await wait_for(pilot, lambda: "queue.member.add" in text_of(app, "#audit-detail"))
        await pilot.press("slash")
        assert app.screen.query_one("#audit-filter", Input).has_focus
        await pilot.press(*"subject:mailbox", "enter")
        await wait_for(pilot, lambda: entries.total == 2)
        assert {entries.row_at(n).entity_type for n in range(2)} == {"mailbox"}  # type: ignore[union-attr]
        assert "filter subject:mailbox" in text_of(app, "#audit-status")
        assert entries.has_focus
        await pilot.press("slash", *" since:tomorrow", "enter")
        await wait_for(pilot, lambda: "is not a date" in text_of(app, "#audit-status"))
        assert entries.total == 2  # bad input changes nothing
        await pilot.press("escape")
        assert entries.has_focus
        app.screen.clear_filter()  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: entries.total == everything)
        await pilot.press("escape")
        assert not isinstance(app.screen, AuditScreen)


async def test_audit_detail_shows_the_diff(settings, seeded) -> None:  # type: ignore[no-untyped-def]
    app = build(settings)
    async with app.run_test(size=BIG) as pilot:
        await app.push_screen(AuditScreen())
        entries = app.screen.query_one(AuditList)
        await wait_for(pilot, lambda: entries.loaded)
        await pilot.press("slash", *"subject:user", "enter")
        await wait_for(pilot, lambda: entries.loaded and entries.total == 3)
        await pilot.press("end")
        await wait_for(pilot, lambda: "(bootstrap)" in text_of(app, "#audit-detail"))
        detail = text_of(app, "#audit-detail")
        assert "(bootstrap)" in detail and "user.create" in detail
        assert "email=ada@acme.test" in detail


async def test_audit_reads_pages_as_the_cursor_goes(
    db: Database, settings, seeded, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(audit_screen, "PAGE_SIZE", 10)
    with db.read() as session:
        total = session.scalar(select(func.count(AuditEntry.id)))
        oldest = session.scalar(select(AuditEntry.id).order_by(AuditEntry.created_at).limit(1))
    app = build(settings)
    async with app.run_test(size=SMALL) as pilot:
        await app.push_screen(AuditScreen())
        entries = app.screen.query_one(AuditList)
        entries.page_size = 10
        await wait_for(pilot, lambda: entries.loaded)
        assert entries.total == total
        await pilot.press("end")
        await wait_for(pilot, lambda: entries.cursor_row is not None)
        assert entries.cursor_row.id == oldest  # type: ignore[union-attr]
        for _ in range(12):
            await pilot.press("up")
        await wait_for(pilot, lambda: entries.cursor_row is not None)
        seen = [entries.row_at(n) for n in range(total)]
        known = [e for e in seen if e is not None]
        assert len({e.id for e in known}) == len(known)  # no entry twice


async def test_an_agent_is_refused_the_audit_log(db, settings, seeded) -> None:  # type: ignore[no-untyped-def]
    app = build(settings, "bob@acme.test")
    async with app.run_test(size=BIG) as pilot:
        await app.push_screen(AuditScreen())
        await wait_for(pilot, lambda: "only an admin" in text_of(app, "#audit-status"))


# --- workers --------------------------------------------------------------------------------


async def test_workers_show_state_intake_and_failed_mail(settings, seeded) -> None:  # type: ignore[no-untyped-def]
    app = build(settings)
    async with app.run_test(size=BIG) as pilot:
        await app.push_screen(WorkersScreen())
        await wait_for(pilot, lambda: app.screen.record is not None)  # type: ignore[attr-defined]
        workers = table_rows(app, "#workers-list")
        assert [(w[0], w[1], w[2]) for w in workers] == [
            ("mx1 (pid 4242)", "0.0.0.0:25", "up"), ("mx2 (pid 77)", "10.0.0.2:2525", "DOWN"),
        ]  # fmt: skip
        assert (workers[0][4], workers[0][5], workers[0][6]) == ("4", "61", "1,520")  # per worker
        intake = text_of(app, "#workers-intake")
        assert "0 in the last minute, 3 in the last hour" in intake
        failed = table_rows(app, "#workers-failed")
        assert [row[0] for row in failed] == [str(seeded[1]), str(seeded[0])]
        assert failed[1][4] == "Invoice [b]overdue[/b]"  # literal, never markup
        assert "routing exploded" in failed[0][5]


async def test_reprocess_from_the_screen(db: Database, settings, seeded) -> None:  # type: ignore[no-untyped-def]
    app = build(settings)
    async with app.run_test(size=BIG) as pilot:
        await app.push_screen(WorkersScreen())
        screen = app.screen
        assert isinstance(screen, WorkersScreen)
        await wait_for(pilot, lambda: screen.record is not None)
        await pilot.press("p")
        await wait_for(pilot, lambda: len(table_rows(app, "#workers-failed")) == 1)
        assert [row[0] for row in table_rows(app, "#workers-failed")] == [str(seeded[0])]
        notes = [n.message for n in app._notifications]
        assert any(f"Message {seeded[1]} stored in conversation" in note for note in notes)
    with db.read() as session:
        failed = session.scalar(select(func.count()).select_from(Message).where(
            Message.processing_error != ""))  # fmt: skip
        done = session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "message.reprocess"))  # fmt: skip
    assert (failed, done) == (1, 1)


async def test_no_worker_at_all_is_said_plainly(db: Database, settings, seeded) -> None:  # type: ignore[no-untyped-def]
    with db.write() as session:
        session.execute(WorkerStatus.__table__.delete())
    app = build(settings)
    async with app.run_test(size=SMALL) as pilot:
        await app.push_screen(WorkersScreen())
        await wait_for(pilot, lambda: app.screen.shown)  # type: ignore[attr-defined]
        assert "No worker has reported" in text_of(app, "#workers-none")
        assert not app.screen.query_one("#workers-list", DataTable).display


async def test_an_agent_is_refused_the_worker_status(settings, seeded) -> None:  # type: ignore[no-untyped-def]
    app = build(settings, "bob@acme.test")
    async with app.run_test(size=BIG) as pilot:
        await app.push_screen(WorkersScreen())
        await wait_for(pilot, lambda: "only an admin" in text_of(app, "#workers-status"))
        await pilot.press("p")  # nothing highlighted: nothing happens
        assert "only an admin" in text_of(app, "#workers-status")


# --- the menu's door, keys and palette ---------------------------------------------------


async def test_palette_commands_open_each_screen_and_bindings_carry_ids(settings, seeded) -> None:  # type: ignore[no-untyped-def]
    app = build(settings)
    async with app.run_test(size=BIG) as pilot:
        for module, kind in ((stats_screen, StatsScreen), (audit_screen, AuditScreen),
                             (workers_screen, WorkersScreen)):  # fmt: skip
            [command] = module.palette_commands(app)
            assert command.name.startswith("admin: ")
            command.run()
            await wait_for(pilot, lambda kind=kind: isinstance(app.screen, kind))
            for binding in app.screen.BINDINGS:
                assert binding.id and binding.description  # type: ignore[union-attr]
            assert app.screen.commands()  # type: ignore[attr-defined]
            await pilot.press("escape")
        for binding in AuditList.BINDINGS:
            assert binding.id and binding.description  # type: ignore[union-attr]


async def test_reprocess_through_the_palette(settings, seeded) -> None:  # type: ignore[no-untyped-def]
    app = build(settings)
    async with app.run_test(size=BIG) as pilot:
        await app.push_screen(WorkersScreen())
        await wait_for(pilot, lambda: app.screen.record is not None)  # type: ignore[attr-defined]
        await pilot.press("ctrl+p", *"message: reprocess")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(table_rows(app, "#workers-failed")) == 1)


# --- snapshots ------------------------------------------------------------------------------


@pytest.fixture
def snapshot_app(sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(Input, "cursor_blink", False)
    path = tmp_path / "snapshot.sqlite3"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    settings = load_settings(environ={"TUI_HELPDESK_DATABASE_URL": url})
    db = Database(url)
    seed_admin(db, settings, monkeypatch)
    with db.write() as session:  # the highlighted entry: its diff holds no wall-clock time
        session.add(AuditEntry(
            organisation_id=1, actor_id=1, actor_label="ada@acme.test", action="mailbox.update",
            entity_type="mailbox", entity_id="1", created_at=NOW,
            before={"display_name": "Support", "private": False, "signature_text": ""},
            after={"display_name": "Customer Support", "private": True,
                   "signature_text": "Acme support, [b]24/7[/b]"},
        ))  # fmt: skip
    db.dispose()
    return build(settings)


def _open(screen: Callable[[], object], ready: Callable[[HelpdeskApp], bool]):  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[object]) -> None:
        app = pilot.app
        assert isinstance(app, HelpdeskApp)
        await app.push_screen(screen())  # type: ignore[arg-type]
        await wait_for(pilot, lambda: ready(app))
        await pilot.pause(0.2)

    return run_before


def _stats_ready(app: HelpdeskApp) -> bool:
    return getattr(app.screen, "shown", False)


def _audit_ready(app: HelpdeskApp) -> bool:
    entries = app.screen.query(AuditList)
    return bool(entries) and entries.first().cursor_row is not None


@pytest.mark.parametrize("size", [BIG, SMALL], ids=["120x36", "80x24"])
def test_stats_snapshot(snap_compare, snapshot_app, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(snapshot_app, terminal_size=size,
                        run_before=_open(StatsScreen, _stats_ready))  # fmt: skip


@pytest.mark.parametrize("size", [BIG, SMALL], ids=["120x36", "80x24"])
def test_audit_snapshot(snap_compare, snapshot_app, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(snapshot_app, terminal_size=size,
                        run_before=_open(AuditScreen, _audit_ready))  # fmt: skip


@pytest.mark.parametrize("size", [BIG, SMALL], ids=["120x36", "80x24"])
def test_workers_snapshot(snap_compare, snapshot_app, size) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(snapshot_app, terminal_size=size,
                        run_before=_open(WorkersScreen, _stats_ready))  # fmt: skip


async def test_a_change_reloads_the_log_at_the_top_and_is_offered_further_down(
    db: Database, settings, seeded
) -> None:  # type: ignore[no-untyped-def]
    from test_tui_data import actor

    from tui_helpdesk.services.conversations import actions

    admin = actor(db, "ada@acme.test")
    with db.read() as session:
        conversation_id = session.scalar(select(Conversation.id).order_by(Conversation.id))
    app = build(settings)
    async with app.run_test(size=BIG) as pilot:
        await app.push_screen(AuditScreen())
        entries = app.screen.query_one(AuditList)
        await wait_for(pilot, lambda: entries.loaded)
        total = entries.total
        with db.write() as session:
            actions.assign(session, admin, conversation_id, "bob@acme.test")
        await wait_for(pilot, lambda: entries.total == total + 1)  # at the top: read again
        assert entries.cursor_row.action == "conversation.assign"  # type: ignore[union-attr]
        await pilot.press("down", "down")
        with db.write() as session:
            actions.assign(session, admin, conversation_id, "none")
        await wait_for(pilot, lambda: "the log changed" in text_of(app, "#audit-status"))
        assert entries.total == total + 1 and entries.cursor == 2  # the rows stayed put
        await pilot.press("r")
        await wait_for(pilot, lambda: entries.total == total + 2)
