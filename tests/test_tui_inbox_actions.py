"""Conversation actions from the inbox (issue 9, point 4), driven with keys (Pilot) on both
backends: each action, its picker or dialog, several marked rows at once, refusals and the
palette; and the `assignable` service behind the member picker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from test_tui import conversation_list, list_lines, loaded, wait_for
from test_tui_data import NOW, actor, seed
from textual.widgets import OptionList

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import AuditEntry, Conversation, ConversationTag, Message, User
from tui_helpdesk.services.conversations import actions
from tui_helpdesk.tui.app import HelpdeskApp, make_app
from tui_helpdesk.tui.modals.picker import PickerScreen
from tui_helpdesk.tui.modals.prompt import CloseScreen, PromptScreen

SIZE = (120, 30)
# "All open" for ada: Hello? (0), Printer on fire (1), Invoice 2026-11 (2), Cannot log in (3)


def inbox_settings(settings: Settings, tmp_path: Path, **tui: object) -> Settings:
    """Quick polls, small pages, and no keymap of whoever runs the tests."""
    values = {"refresh_interval_seconds": 0.05, "page_size": 10,
              "keymap_path": str(tmp_path / "no-keymap.toml"), **tui}  # fmt: skip
    return settings.replace(tui=values)


@pytest.fixture
def tui_settings(settings: Settings, tmp_path: Path) -> Settings:
    return inbox_settings(settings, tmp_path)


def build(settings: Settings, email: str = "ada@acme.test") -> HelpdeskApp:
    return make_app(settings, email, now=lambda: NOW)


def field(db: Database, conversation_id: int, name: str) -> Any:
    with db.read() as session:
        return getattr(session.get(Conversation, conversation_id), name)


def assignee(db: Database, conversation_id: int) -> str | None:
    with db.read() as session:
        ident = session.get_one(Conversation, conversation_id).assignee_id
        return session.get_one(User, ident).email if ident else None


def audit_actions(db: Database, conversation_id: int) -> list[str]:
    with db.read() as session:
        return list(session.scalars(
            select(AuditEntry.action).where(
                AuditEntry.entity_type == "conversation",
                AuditEntry.entity_id == str(conversation_id),
            ).order_by(AuditEntry.id)
        ))  # fmt: skip


async def start(pilot: Any, app: HelpdeskApp, row: int = 0) -> None:
    await wait_for(pilot, lambda: loaded(app))
    for _ in range(row):
        await pilot.press("down")
    await wait_for(pilot, lambda: conversation_list(app).cursor == row)


async def pick(pilot: Any, app: HelpdeskApp, typed: str) -> None:
    """In an open picker: wait for its choices, type to filter, take the first."""
    await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen) and app.screen.loaded)
    await pilot.press(*typed)
    await wait_for(pilot, lambda: app.screen.query_one(OptionList).option_count > 0)
    await pilot.press("enter")


async def test_assign_to_me_with_one_key(db: Database, tui_settings: Settings) -> None:
    ids = seed(db)
    printer = ids.conversations["printer"]
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot, app, row=1)
        await pilot.press("a")
        await wait_for(pilot, lambda: assignee(db, printer) == "ada@acme.test")
        await wait_for(pilot, lambda: " ada " in list_lines(app)[2])
    assert audit_actions(db, printer) == ["conversation.assign"]


async def test_assign_to_someone_picked_from_the_members(
    db: Database, tui_settings: Settings
) -> None:
    ids = seed(db)
    printer = ids.conversations["printer"]
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot, app, row=1)
        await pilot.press("A")
        await pick(pilot, app, "bob")
        await wait_for(pilot, lambda: assignee(db, printer) == "bob@acme.test")
        assert not isinstance(app.screen, PickerScreen)


async def test_transfer_to_a_queue_and_to_an_agent(db: Database, tui_settings: Settings) -> None:
    ids = seed(db)
    printer = ids.conversations["printer"]
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot, app, row=1)
        await pilot.press("t")
        await pick(pilot, app, "queue sales")
        await wait_for(pilot, lambda: field(db, printer, "queue_id") == ids.queues["Sales"])
        await wait_for(pilot, lambda: conversation_list(app).cursor_row.queue == "Sales")  # type: ignore[union-attr]
        await pilot.press("t")
        await pick(pilot, app, "dee@")
        await wait_for(pilot, lambda: assignee(db, printer) == "dee@acme.test")
    assert audit_actions(db, printer) == ["conversation.transfer", "conversation.transfer"]


async def test_pending_then_reopen_from_the_pending_view(
    db: Database, tui_settings: Settings
) -> None:
    ids = seed(db)
    printer = ids.conversations["printer"]
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot, app, row=1)
        await pilot.press("p")
        await wait_for(pilot, lambda: field(db, printer, "status") == "pending")
        listed = conversation_list(app)
        await wait_for(pilot, lambda: listed.total == 3)  # it left "All open"
        await pilot.press("v", "down", "enter")  # the sidebar: All open -> Pending
        await wait_for(pilot, lambda: app.screen.list_filter.view.kind == "pending")  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: listed.loaded and listed.total == 1)
        assert listed.cursor_row.id == printer  # type: ignore[union-attr]
        await pilot.press("o")
        await wait_for(pilot, lambda: field(db, printer, "status") == "open")
        await wait_for(pilot, lambda: listed.total == 0)
    assert audit_actions(db, printer) == ["conversation.pending", "conversation.reopen"]


async def test_close_with_a_note(db: Database, tui_settings: Settings) -> None:
    ids = seed(db)
    printer = ids.conversations["printer"]
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot, app, row=1)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CloseScreen))
        await pilot.press(*"toner replaced", "enter")
        await wait_for(pilot, lambda: field(db, printer, "status") == "closed")
        await wait_for(pilot, lambda: conversation_list(app).total == 3)
    with db.read() as session:
        notes = session.scalars(
            select(Message.text_body).where(
                Message.conversation_id == printer, Message.kind == "note"
            )
        ).all()
    assert [note.strip() for note in notes] == ["toner replaced"]
    assert audit_actions(db, printer) == ["conversation.close"]


async def test_escape_cancels_a_dialog_and_changes_nothing(
    db: Database, tui_settings: Settings
) -> None:
    ids = seed(db)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot, app, row=1)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CloseScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, CloseScreen))
        await pilot.press("exclamation_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))
        await pilot.press("escape")
        await pilot.pause()
    assert field(db, ids.conversations["printer"], "status") == "open"
    assert audit_actions(db, ids.conversations["printer"]) == []


async def test_priority_and_tags(db: Database, tui_settings: Settings) -> None:
    ids = seed(db)
    printer = ids.conversations["printer"]
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot, app, row=1)
        await pilot.press("exclamation_mark")
        await pick(pilot, app, "urg")
        await wait_for(pilot, lambda: field(db, printer, "priority") == "urgent")
        await pilot.press("number_sign")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press(*"billing -urgent", "enter")

        def tags() -> list[str]:
            with db.read() as session:
                return sorted(session.scalars(
                    select(ConversationTag.tag).where(ConversationTag.conversation_id == printer)
                ))  # fmt: skip

        await wait_for(pilot, lambda: tags() == ["billing", "hardware"])
        await wait_for(pilot, lambda: "billing" in str(app.screen.query_one("#preview").content))
    assert audit_actions(db, printer) == [
        "conversation.priority", "conversation.tag", "conversation.untag"
    ]  # fmt: skip


async def test_marked_rows_are_acted_on_together(db: Database, tui_settings: Settings) -> None:
    ids = seed(db)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot, app)
        await pilot.press("space", "space")  # marks Hello? and Printer on fire
        listed = conversation_list(app)
        assert listed.marked == {ids.conversations["unrouted"], ids.conversations["printer"]}
        assert "2 marked" in str(app.screen.query_one("#status-line").content)
        await pilot.press("p")
        await wait_for(pilot, lambda: listed.total == 2)
        assert not listed.marked
        for name in ("unrouted", "printer"):
            assert field(db, ids.conversations[name], "status") == "pending"
        assert field(db, ids.conversations["invoice"], "status") == "open"


async def test_a_refusal_shows_the_service_message(db: Database, tui_settings: Settings) -> None:
    ids = seed(db)
    app = build(tui_settings)
    shown: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        original = app.notify

        def notify(message: str, **kwargs: Any) -> None:
            shown.append(message)
            original(message, **kwargs)

        app.notify = notify  # type: ignore[method-assign]
        await start(pilot, app, row=1)
        await pilot.press("o")  # reopen an open conversation
        await wait_for(pilot, lambda: bool(shown))
    printer = ids.conversations["printer"]
    assert shown == [f"#{printer}: conversation {printer} is already open"]
    assert audit_actions(db, printer) == []


async def test_every_action_is_in_the_palette(db: Database, tui_settings: Settings) -> None:
    ids = seed(db)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot, app, row=1)
        names = {command.name for command in app.screen.commands()}  # type: ignore[attr-defined]
        assert {
            "conversation: assign to me", "conversation: assign to someone",
            "conversation: transfer", "conversation: set pending", "conversation: close",
            "conversation: reopen", "conversation: set priority", "conversation: edit tags",
            "conversation: mark", "conversation: open", "inbox: search",
        } <= names  # fmt: skip
        await pilot.press("ctrl+p")
        await pilot.press(*"conversation: set pending")
        await pilot.pause(0.3)
        await pilot.press("enter")
        printer = ids.conversations["printer"]
        await wait_for(pilot, lambda: field(db, printer, "status") == "pending")


def test_assignable_members_follow_the_assign_rules(db: Database) -> None:
    """Admins may assign anyone active; an agent only members of the conversation's queue."""
    ids = seed(db)
    printer, invoice = ids.conversations["printer"], ids.conversations["invoice"]
    with db.read() as session:
        as_admin = actions.assignable(session, actor(db, "ada@acme.test"), [printer])
        as_bob = actions.assignable(session, actor(db, "bob@acme.test"), [printer])
        both = actions.assignable(session, actor(db, "ada@acme.test"), [printer, invoice])
    assert [u.email for u in as_admin] == [
        "ada@acme.test", "bob@acme.test", "cy@acme.test", "dee@acme.test"
    ]  # fmt: skip
    assert [u.email for u in as_bob] == ["bob@acme.test"]
    assert len(both) == 4
