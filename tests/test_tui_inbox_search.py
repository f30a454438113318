"""Search from the inbox with `/` (issue 9, point 5): results in the same list, a preview with
the matching excerpt, escape back to the view, and a bad query answered with what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_tui import conversation_list, list_lines, loaded, static_text, wait_for
from test_tui_data import seed
from test_tui_inbox_actions import SIZE, build, inbox_settings
from textual.widgets import Input

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.errors import Invalid
from tui_helpdesk.services.search.query import parse


@pytest.fixture
def tui_settings(settings: Settings, tmp_path: Path) -> Settings:
    return inbox_settings(settings, tmp_path)


async def test_slash_searches_and_escape_returns(db: Database, tui_settings: Settings) -> None:
    ids = seed(db)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        listed = conversation_list(app)
        await pilot.press("slash")
        assert app.screen.query_one("#search", Input).has_focus
        await pilot.press(*"printer", "enter")
        await wait_for(pilot, lambda: loaded(app) and listed.total == 1)
        assert listed.cursor_row.id == ids.conversations["printer"]  # type: ignore[union-attr]
        assert list_lines(app)[1].startswith("Printer on fire")
        assert static_text(app, "#status-line").startswith("search: printer · 1 found")
        assert listed.has_focus
        await pilot.press("escape")
        await wait_for(pilot, lambda: loaded(app) and listed.total == 4)
        assert static_text(app, "#status-line").startswith("All open · 4 conversations")


async def test_filters_and_the_excerpt_of_the_match(db: Database, tui_settings: Settings) -> None:
    seed(db)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        listed = conversation_list(app)
        await pilot.press("slash", *"help status:closed", "enter")
        await wait_for(pilot, lambda: loaded(app) and listed.cursor_row is not None)
        assert listed.total == 1
        assert listed.cursor_row.subject == "Old question"  # type: ignore[union-attr]
        await wait_for(pilot, lambda: "match:" in static_text(app, "#preview"))
        assert "please help" in static_text(app, "#preview")


async def test_a_bad_query_says_what_is_wrong(db: Database, tui_settings: Settings) -> None:
    seed(db)
    with pytest.raises(Invalid) as refused:
        parse("colour:red")
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        await pilot.press("slash", *"colour:red", "enter")
        said = " ".join(refused.value.message.split())
        await wait_for(pilot, lambda: said in " ".join(static_text(app, "#search-error").split()))
        search = app.screen.query_one("#search", Input)
        assert search.has_focus and search.value == "colour:red"  # fix it where it was typed
        await pilot.press("escape")
        await wait_for(pilot, lambda: static_text(app, "#status-line").startswith("All open"))


async def test_results_page_on_as_the_cursor_goes_down(
    db: Database, tui_settings: Settings
) -> None:
    """page_size 10: 14 matches arrive as two pages (the second one asked for by the rows on
    screen); the count grows when it comes, and G reaches the last match."""
    from test_tui_data import add_conversation

    ids = seed(db)
    with db.write() as session:
        for n in range(14):
            add_conversation(session, org_id=ids.org, mailbox_id=ids.mailboxes["support"],
                             queue_id=ids.queues["Support"], subject=f"Toner {n}",
                             sender=f"t{n}@customer.test", body="the toner is empty")  # fmt: skip
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: loaded(app))
        listed = conversation_list(app)
        await pilot.press("slash", *"toner", "enter")
        await wait_for(pilot, lambda: loaded(app) and listed.total == 14)
        await pilot.press("G")
        await wait_for(pilot, lambda: listed.cursor == 13 and listed.cursor_row is not None)
        assert "14 found" in static_text(app, "#status-line")
