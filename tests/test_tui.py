"""The TUI driven with keys (Pilot) on both backends: inbox, thread, cursor, refresh, escaping."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import insert
from test_tui_data import NOW, add_conversation, add_message, seed
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Conversation, User
from tui_helpdesk.services import changes
from tui_helpdesk.tui.app import HelpdeskApp, make_app
from tui_helpdesk.tui.modals.help import HelpScreen
from tui_helpdesk.tui.screens.conversation import ConversationScreen
from tui_helpdesk.tui.screens.inbox import InboxScreen
from tui_helpdesk.tui.widgets.conversation_list import ConversationList
from tui_helpdesk.tui.widgets.message_view import body_text
from tui_helpdesk.tui.widgets.thread_view import ThreadView

SIZE = (120, 30)


@pytest.fixture
def tui_settings(settings: Settings) -> Settings:
    return settings.replace(tui={"refresh_interval_seconds": 0.05, "page_size": 10})


def build(settings: Settings, email: str = "ada@acme.test", **kwargs: object) -> HelpdeskApp:
    return make_app(settings, email, now=lambda: NOW, **kwargs)  # type: ignore[arg-type]


async def wait_for(
    pilot: Pilot[object], condition: Callable[[], bool], seconds: float = 5.0
) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the screen did not reach the expected state in time")
        await pilot.pause(0.02)


def conversation_list(app: HelpdeskApp) -> ConversationList:
    return app.screen.query_one(ConversationList)


def list_lines(app: HelpdeskApp) -> list[str]:
    """What the list shows on screen, line by line (line 0 is the column header), without the
    mark column (marked, unread: two characters and a space)."""
    listed = conversation_list(app)
    height = listed.scrollable_content_region.height
    return [listed.render_line(y).text[3:].rstrip() for y in range(height)]


def loaded(app: HelpdeskApp) -> bool:
    listed = conversation_list(app)
    return listed.loaded and (listed.total == 0 or listed.cursor_row is not None)


def shown(widget: Widget) -> str:
    """The widget's lines as drawn on screen (trailing blanks removed)."""
    region = Region(0, 0, widget.region.width, widget.region.height)
    return "\n".join(strip.text.strip() for strip in widget.render_lines(region)).strip("\n")


def static_text(app: HelpdeskApp, selector: str) -> str:
    return shown(app.screen.query_one(selector, Static))


def thread_text(app: HelpdeskApp) -> str:
    """The thread's lines (every message, scrolled or not), without their indent."""
    threads = app.screen.query(ThreadView)
    lines = threads.first().lines_text().split("\n") if threads else []
    return "\n".join(line.strip() for line in lines)


def thread_messages(app: HelpdeskApp) -> int:
    threads = app.screen.query(ThreadView)
    return len(threads.first().messages) if threads else 0


async def test_inbox_shows_open_conversations_newest_first(db: Database, tui_settings) -> None:
    seed(db)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        lines = list_lines(app)
        assert lines[0].split() == [
            "Subject", "Contact", "Mailbox", "Assignee", "Status", "Prio", "Age"
        ]  # fmt: skip
        assert [line.split("  ")[0] for line in lines[1:5]] == [
            "Hello?",
            "Printer on fire",
            "Invoice 2026-11",
            "Cannot log in",
        ]
        assert lines[5] == ""  # the closed conversation is not in the inbox
        printer = lines[2]
        assert "Carol Customer" in printer and "support@acme." in printer
        assert printer.split()[-3:] == ["open", "normal", "5m"]
        assert lines[4].split()[-3:] == ["open", "normal", "1d"]
        assert "acting as Ada Admin <ada@acme.test> (admin)" in static_text(app, "#identity")
        assert static_text(app, "#status-line").startswith("All open · 4 conversations · updated")


async def test_an_agent_sees_only_their_conversations(db: Database, tui_settings) -> None:
    seed(db)
    app = build(tui_settings, "cy@acme.test")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        assert conversation_list(app).total == 1
        assert list_lines(app)[1].startswith("Cannot log in")


async def test_an_empty_inbox_says_so(db: Database, tui_settings) -> None:
    ids = seed(db)
    with db.write() as session:  # an agent in no queue, assigned nothing
        session.add(User(organisation_id=ids.org, email="new@acme.test", name="New Agent"))
    app = build(tui_settings, "new@acme.test")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        assert list_lines(app)[1] == "No conversations to show."
        assert static_text(app, "#status-line").startswith("All open · 0 conversations")


async def test_open_a_conversation_and_go_back(db: Database, tui_settings) -> None:
    ids = seed(db)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        await pilot.press("down", "enter")
        assert isinstance(app.screen, ConversationScreen)
        assert app.screen.conversation_id == ids.conversations["printer"]
        await wait_for(pilot, lambda: "please help" in thread_text(app))
        text = thread_text(app)
        assert "From: Carol Customer <carol@customer.test>" in text
        assert "Date: 2026-11-22 11:55 UTC" in text
        assert "Subject: Printer on fire" in text
        assert "Hello,\nplease help." in text
        assert "Printer on fire" in static_text(app, "#conversation-title")
        await pilot.press("escape")
        assert isinstance(app.screen, InboxScreen)
        assert conversation_list(app).cursor == 1


async def test_attachments_are_listed_with_name_type_and_size(db: Database, tui_settings) -> None:
    ids = seed(db)
    with db.write() as session:
        conversation = session.get(Conversation, ids.conversations["invoice"])
        add_message(
            session,
            conversation,  # type: ignore[arg-type]
            subject="Re: Invoice",
            sender="dan@customer.test",
            at=NOW - timedelta(minutes=80),
            body="Here it is.",
            attachments=(("invoice.pdf", "application/pdf", b"%PDF" * 700),),
        )
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        app.open_conversation(ids.conversations["invoice"])
        await wait_for(pilot, lambda: "invoice.pdf" in thread_text(app))
        assert "• invoice.pdf  application/pdf  2.7 KB" in thread_text(app)


async def test_cursor_keys_move_through_pages_read_on_demand(db: Database, tui_settings) -> None:
    ids = seed(db)
    with db.write() as session:
        for n in range(96):
            add_conversation(
                session,
                org_id=ids.org,
                mailbox_id=ids.mailboxes["support"],
                queue_id=ids.queues["Support"],
                subject=f"Bulk {n:03}",
                sender=f"c{n}@customer.test",
                at=NOW - timedelta(hours=2, minutes=n),
            )
    app = build(tui_settings)  # 100 open rows, pages of 10
    async with app.run_test(size=(100, 20)) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        listed = conversation_list(app)
        await wait_for(pilot, lambda: listed.total == 100)  # counted after the first rows
        assert len(listed._pages) < 10  # only what is on (or near) the screen was read
        await pilot.press("end")
        await wait_for(pilot, lambda: listed.cursor_row is not None)
        assert listed.cursor == 99
        assert listed.cursor_row.subject == "Cannot log in"  # type: ignore[union-attr]
        assert list_lines(app)[-1].startswith("Cannot log in")
        await pilot.press("home")
        assert listed.cursor == 0 and listed.scroll_y == 0
        await pilot.press("down", "down", "up")
        assert listed.cursor == 1
        await pilot.press("pagedown")
        assert listed.cursor == 1 + listed.visible_rows
        await wait_for(pilot, lambda: listed.cursor_row is not None)
        assert listed.cursor_row.subject == f"Bulk {listed.cursor - 3:03}"  # type: ignore[union-attr]
        await pilot.press("pageup", "pageup")
        assert listed.cursor == 0
        await pilot.press("up")
        assert listed.cursor == 0


async def test_refresh_on_change_keeps_the_cursor_on_its_conversation(
    db: Database, tui_settings
) -> None:
    ids = seed(db)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        await pilot.press("down", "down")
        listed = conversation_list(app)
        assert listed.cursor_row.subject == "Invoice 2026-11"  # type: ignore[union-attr]
        with db.write() as session:  # another connection, as the worker would
            add_conversation(
                session,
                org_id=ids.org,
                mailbox_id=ids.mailboxes["support"],
                queue_id=ids.queues["Support"],
                subject="Brand new",
                sender="new@customer.test",
                at=NOW,
            )
            changes.notify(session)  # what every writer does (NOTIFY on PostgreSQL)
        await wait_for(pilot, lambda: listed.total == 5, seconds=30)
        assert list_lines(app)[1].startswith("Brand new")
        assert listed.cursor == 3
        assert listed.cursor_row.subject == "Invoice 2026-11"  # type: ignore[union-attr]


@pytest.mark.both_backends  # live refresh: LISTEN/NOTIFY on PostgreSQL
async def test_the_open_conversation_shows_a_new_reply(db: Database, tui_settings) -> None:
    ids = seed(db)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        app.open_conversation(ids.conversations["printer"])
        await wait_for(pilot, lambda: thread_messages(app) == 1)
        with db.write() as session:
            conversation = session.get(Conversation, ids.conversations["printer"])
            add_message(
                session,
                conversation,  # type: ignore[arg-type]
                subject="Re: Printer on fire",
                sender="carol@customer.test",
                at=NOW,
                body="It is out now.",
            )
            changes.notify(session)
        await wait_for(pilot, lambda: "It is out now." in thread_text(app))
        assert thread_messages(app) == 2


async def test_mail_text_is_shown_literally_and_stripped_of_controls(
    db: Database, tui_settings
) -> None:
    ids = seed(db)
    hostile = "[bold red]x[/] \x1b[31mred\x1b[0m \x1b]0;owned\x07\u202etxt.exe"
    with db.write() as session:
        conversation = add_conversation(
            session,
            org_id=ids.org,
            mailbox_id=ids.mailboxes["support"],
            queue_id=ids.queues["Support"],
            subject=hostile,
            sender="evil@customer.test",
            sender_name="[i]Bank[/i]",
            at=NOW,
            body="Body [b]not bold[/b]\x1b[2J\x9b1m end",
        )
        hostile_id = conversation.id
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        listed = conversation_list(app)
        row = listed.render_line(1)
        assert row.text[3:].startswith("[bold red]x[/] red txt.e")
        assert "[i]Bank[/i]" in row.text
        assert "\x1b" not in row.text and "\u202e" not in row.text
        assert not any(
            seg.style and seg.style.color and seg.style.color.name == "red" for seg in row
        )
        await wait_for(pilot, lambda: "[bold red]x[/] red txt.exe" in static_text(app, "#preview"))
        app.open_conversation(hostile_id)
        await wait_for(pilot, lambda: "end" in thread_text(app))
        text = thread_text(app)
        assert "Body [b]not bold[/b] end" in text
        assert "\x1b" not in text and "\x9b" not in text
        messages = app.screen.query_one(ThreadView).messages
        assert all(not body_text(m, folded=False).spans for m in messages)


async def test_help_lists_the_keys_of_the_screen(db: Database, tui_settings) -> None:
    seed(db)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = {(key, action) for key, action, _ in app.screen.rows}
        assert {("r", "Refresh"), ("⏎", "Open"), ("q", "Quit"), ("?", "Help")} <= keys
        assert ("pgdn", "Page down") in keys
        await pilot.press("escape")
        assert isinstance(app.screen, InboxScreen)


async def test_every_binding_has_an_id_and_a_description(db: Database, tui_settings) -> None:
    seed(db)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        for node in (app, app.screen, conversation_list(app)):
            for binding in node.BINDINGS:
                assert binding.id and binding.description  # type: ignore[union-attr]
        app.open_conversation(1)
        await pilot.pause()
        for binding in app.screen.BINDINGS:
            assert binding.id and binding.description  # type: ignore[union-attr]


async def test_command_palette_opens_the_highlighted_conversation(
    db: Database, tui_settings
) -> None:
    ids = seed(db)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        await pilot.press("down", "down", "ctrl+p")
        await pilot.press(*"conversation: open")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationScreen))
        assert app.screen.conversation_id == ids.conversations["invoice"]


async def test_q_quits(db: Database, tui_settings) -> None:
    seed(db)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running
    assert app.return_code == 0


async def test_worker_line_tells_how_to_send_a_test(
    db: Database, tui_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(db)
    monkeypatch.setattr("shutil.which", lambda name: "/usr/bin/swaks")
    app = build(tui_settings, worker_address=("127.0.0.1", 2525))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "swaks" in static_text(app, "#worker-hint"))
        assert static_text(app, "#worker-hint") == (
            "Worker listening on 127.0.0.1:2525 — send a test: "
            "swaks --server 127.0.0.1:2525 --to sales-1x7q@in.helpdesk.localhost"
        )
    monkeypatch.setattr("shutil.which", lambda name: None)
    app = build(tui_settings, worker_address=("127.0.0.1", 2525))
    async with app.run_test(size=SIZE) as pilot:
        hint = app.screen.query_one("#worker-hint", Static)
        await wait_for(pilot, lambda: "python3" in str(hint.content))
        assert str(hint.content) == (
            'Worker listening on 127.0.0.1:2525 — send a test: python3 -c "import smtplib; '
            "smtplib.SMTP('127.0.0.1', 2525).sendmail('you@example.test', "
            "['sales-1x7q@in.helpdesk.localhost'], 'Subject: test\\n\\nHello')\""
        )


async def test_without_a_worker_there_is_no_worker_line(db: Database, tui_settings) -> None:
    seed(db)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        assert not app.screen.query("#worker-hint")


async def test_an_unknown_user_is_refused_and_the_app_ends(
    db: Database, tui_settings: Settings
) -> None:
    """The app connects after its first frame: an unknown user ends it, with the reason."""
    seed(db)
    app = make_app(tui_settings, "nobody@acme.test")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.return_code is not None)
    assert app.return_code == 3  # NotFound's exit code, as the CLI gives it
    assert app.refusal is not None and "no user with email" in app.refusal.message


async def test_a_large_inbox_reads_only_the_pages_it_shows(db: Database, settings) -> None:
    """20,000 open rows: the first screen and a jump to the end read a handful of pages."""
    ids = seed(db)
    rows = [
        {
            "organisation_id": ids.org,
            "mailbox_id": ids.mailboxes["support"],
            "queue_id": ids.queues["Support"],
            "subject": f"Bulk {n:05}",
            "status": "open",
            "last_message_at": NOW - timedelta(hours=3, seconds=n),
            "created_at": NOW,
            "updated_at": NOW,
        }
        for n in range(20_000)
    ]
    with db.write() as session:
        session.execute(insert(Conversation), rows)
    app = build(settings.replace(tui={"page_size": 100}))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app), seconds=20)
        listed = conversation_list(app)
        await wait_for(pilot, lambda: listed.total == 20_004)  # counted after the first rows
        await pilot.press("end")
        await wait_for(pilot, lambda: listed.cursor_row is not None, seconds=20)
        assert listed.cursor_row.subject == "Cannot log in"  # type: ignore[union-attr]
        assert list_lines(app)[-2].startswith("Bulk 19999")
        assert len(listed._pages) <= 4
        # The scroll bar keeps the position even when a move does not redraw it (its thumb
        # moves a fraction of a cell per page), and its thumb is drawn at the bottom.
        bar = listed.vertical_scrollbar
        assert bar.position == listed.scroll_y
        await pilot.press("pageup", "pageup")
        assert bar.position == listed.scroll_y < listed.max_scroll_y
        lines = [list(strip) for strip in bar.render_lines(Region(0, 0, *bar.size))]
        assert lines[-1] != lines[0] == lines[1]  # the track above, the thumb at the bottom


async def test_open_is_disabled_while_no_row_is_under_the_cursor(
    db: Database, tui_settings
) -> None:
    ids = seed(db)
    with db.write() as session:
        session.add(User(organisation_id=ids.org, email="new@acme.test", name="New Agent"))
    app = build(tui_settings, "new@acme.test")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        assert app.screen.active_bindings["enter"].enabled is False
        await pilot.press("enter")
        assert isinstance(app.screen, InboxScreen)


def test_the_first_frame_needs_no_database_layer() -> None:
    """The app and its inbox import neither SQLAlchemy nor the models (~0.45 s): they are
    imported in a worker thread after the first frame is drawn."""
    check = (
        "import sys, tui_helpdesk.tui.app\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] == 'sqlalchemy'\n"
        "          or m.startswith('tui_helpdesk.db')]\n"
        "print(loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
