"""The inbox's keyboard (issue 9, points 1 and 6): j/k/g/G, `?` lists every binding, a user
keymap file overrides keys by binding id, the sidebar at 80x24, counts and rows patched live."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_tui import conversation_list, loaded, static_text, wait_for
from test_tui_data import NOW, add_conversation, seed
from test_tui_inbox_actions import build, inbox_settings

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Organisation, User
from tui_helpdesk.services import changes
from tui_helpdesk.tui.actions import ACTIONS
from tui_helpdesk.tui.keymap import load_keymap
from tui_helpdesk.tui.modals.help import HelpScreen
from tui_helpdesk.tui.modals.prompt import CloseScreen
from tui_helpdesk.tui.screens.inbox import InboxScreen
from tui_helpdesk.tui.widgets.sidebar import ViewSidebar

SIZE = (120, 30)


@pytest.fixture
def tui_settings(settings: Settings, tmp_path: Path) -> Settings:
    return inbox_settings(settings, tmp_path)


async def test_vi_keys_move_the_cursor(db: Database, tui_settings: Settings) -> None:
    seed(db)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        listed = conversation_list(app)
        await pilot.press("j", "j")
        assert listed.cursor == 2
        await pilot.press("k")
        assert listed.cursor == 1
        await pilot.press("G")
        assert listed.cursor == 3
        await pilot.press("g")
        assert listed.cursor == 0


async def test_help_lists_every_binding_of_the_inbox(db: Database, tui_settings: Settings) -> None:
    seed(db)
    app = build(tui_settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        rows = {action: key for key, action, _ in app.screen.rows}  # type: ignore[attr-defined]
        for spec in ACTIONS:
            assert spec.description in rows, spec
        assert rows["Down"] == "↓ j" and rows["Search"] == "/" and rows["Mark"] == "space"
        assert {"Views", "Open", "Refresh", "Back", "Help", "Quit"} <= set(rows)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, InboxScreen))


def test_a_keymap_file_is_read_by_binding_id(tmp_path: Path) -> None:
    path = tmp_path / "keymap.toml"
    path.write_text('[keys]\n"inbox.close" = "x"\n"list.down" = ["n", "down"]\n"bad" = 3\n')
    keymap, problems = load_keymap(path)
    assert keymap == {"inbox.close": "x", "list.down": "n,down"}
    assert problems == [f'{path}: bad: keys must be a string like "x" or "j,down"']
    assert load_keymap(tmp_path / "missing.toml") == ({}, [])
    (tmp_path / "broken.toml").write_text("[keys\n")
    assert load_keymap(tmp_path / "broken.toml")[1][0].startswith(f"{tmp_path}/broken.toml: ")


async def test_the_keymap_overrides_keys(db: Database, settings: Settings, tmp_path: Path) -> None:
    seed(db)
    path = tmp_path / "keymap.toml"
    path.write_text('"inbox.close" = "x"\n"list.down" = "n"\n')
    app = build(inbox_settings(settings, tmp_path, keymap_path=str(path)))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        listed = conversation_list(app)
        await pilot.press("n")
        assert listed.cursor == 1
        await pilot.press("c")  # no longer close
        await pilot.pause()
        assert isinstance(app.screen, InboxScreen)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, CloseScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, InboxScreen))
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        rows = {action: key for key, action, _ in app.screen.rows}  # type: ignore[attr-defined]
        assert rows["Close"] == "x" and rows["Down"] == "n"


async def test_the_sidebar_chooses_the_view(db: Database, tui_settings: Settings) -> None:
    seed(db)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        sidebar = app.screen.query_one(ViewSidebar)
        await wait_for(pilot, lambda: sidebar.option_count > 0)
        labels = [sidebar.get_option_at_index(n).prompt.plain.split()  # type: ignore[union-attr]
                  for n in range(sidebar.option_count)]  # fmt: skip
        assert labels == [
            ["Mine", "0"], ["Unassigned", "3"], ["All", "open", "4"], ["Pending", "0"],
            ["Closed", "1"], ["Queues"], ["Sales", "1"], ["Support", "1"], ["Mailboxes"],
            ["sales@acme.test", "2"], ["support@acme.test", "2"],
        ]  # fmt: skip
        await pilot.press("v")
        assert sidebar.has_focus
        await pilot.press("down", "down", "enter")  # All open -> Closed
        listed = conversation_list(app)
        await wait_for(pilot, lambda: listed.loaded and listed.total == 1)
        assert listed.cursor_row.subject == "Old question"  # type: ignore[union-attr]
        assert listed.has_focus
        assert static_text(app, "#status-line").startswith("Closed · 1 conversation")


async def test_at_80x24_the_sidebar_collapses(db: Database, tui_settings: Settings) -> None:
    seed(db)
    app = build(tui_settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        sidebar = app.screen.query_one(ViewSidebar)
        assert not sidebar.display
        await pilot.press("v")
        assert sidebar.display and sidebar.has_focus
        await pilot.press("escape")
        assert not sidebar.display and conversation_list(app).has_focus


@pytest.mark.both_backends  # live refresh: LISTEN/NOTIFY on PostgreSQL
async def test_live_changes_patch_counts_and_keep_the_cursor(
    db: Database, tui_settings: Settings
) -> None:
    ids = seed(db)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        await wait_for(pilot, lambda: app.poller.polls > 0)
        listed = conversation_list(app)
        sidebar = app.screen.query_one(ViewSidebar)
        await wait_for(pilot, lambda: "open-0" in sidebar.counts)
        await pilot.press("j", "j")  # on Invoice 2026-11
        with db.write() as session:
            add_conversation(session, org_id=ids.org, mailbox_id=ids.mailboxes["support"],
                             queue_id=ids.queues["Support"], subject="Brand new",
                             sender="new@customer.test", at=NOW)  # fmt: skip
            changes.notify(session)
        await wait_for(pilot, lambda: sidebar.counts["open-0"].count == 5, seconds=30)
        await wait_for(pilot, lambda: listed.total == 5)
        assert listed.cursor_row.subject == "Invoice 2026-11"  # type: ignore[union-attr]
        assert listed.cursor == 3


@pytest.mark.parametrize(
    ("email", "shown"), [("ada@acme.test", "12:55 CET"), ("bob@acme.test", "06:55 EST")]
)
async def test_times_are_shown_in_the_readers_timezone(
    db: Database, tui_settings: Settings, email: str, shown: str
) -> None:
    """The organisation's zone by default (ada); a user's own zone wins (bob)."""
    ids = seed(db)
    with db.write() as session:
        session.get_one(Organisation, ids.org).timezone = "Europe/Berlin"
        session.get_one(User, ids.users["bob"]).timezone = "America/New_York"
    app = build(tui_settings, email)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        while conversation_list(app).cursor_row.subject != "Printer on fire":  # type: ignore[union-attr]
            await pilot.press("j")
        await wait_for(pilot, lambda: "Printer on fire" in static_text(app, "#preview"))
        assert f"last 2026-11-22 {shown}" in static_text(app, "#preview")
