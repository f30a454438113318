"""SVG snapshots of the inbox and a thread (pytest-textual-snapshot), at a fixed size and clock.

The data lives in a copy of the migrated SQLite template (snapshots do not depend on the
backend, and one baseline per screen is enough); ages are computed from the fixed NOW.
Update after reviewing the report: pytest tests/test_tui_snapshot.py --snapshot-update
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from test_tui import conversation_list, loaded, thread_text, wait_for
from test_tui_data import NOW, seed
from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from tui_helpdesk.config import load_settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.tui.app import HelpdeskApp, make_app
from tui_helpdesk.tui.screens.conversation import ConversationScreen

SIZE = (120, 32)


@pytest.fixture(autouse=True)
def frozen_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    """A blinking cursor would make two screenshots of the same state differ."""
    monkeypatch.setattr(Input, "cursor_blink", False)
    monkeypatch.setattr(TextArea, "cursor_blink", False)


@pytest.fixture
def snapshot_app(sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    path = tmp_path / "snapshot.sqlite3"
    shutil.copyfile(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    seed(db)
    db.dispose()
    monkeypatch.setattr("shutil.which", lambda name: None)  # the same hint on every machine
    settings = load_settings(environ={"TUI_HELPDESK_DATABASE_URL": f"sqlite:///{path}"})
    return make_app(settings, "ada@acme.test", worker_address=("127.0.0.1", 2525), now=lambda: NOW)


def _until(condition: Callable[[HelpdeskApp], bool]):  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[object]) -> None:
        app = pilot.app
        assert isinstance(app, HelpdeskApp)
        await wait_for(pilot, lambda: condition(app))
        await pilot.pause()

    return run_before


def _inbox_ready(app: HelpdeskApp) -> bool:
    hint = app.screen.query("#worker-hint")
    return loaded(app) and bool(hint) and "python3" in str(hint.first().content)


def test_inbox_snapshot(snap_compare, snapshot_app: HelpdeskApp) -> None:  # type: ignore[no-untyped-def]
    """The inbox as ada sees it: four open conversations, newest first, the first highlighted."""
    assert snap_compare(snapshot_app, terminal_size=SIZE, run_before=_until(_inbox_ready))


def test_conversation_snapshot(snap_compare, snapshot_app: HelpdeskApp) -> None:  # type: ignore[no-untyped-def]
    """The second conversation ("Printer on fire") opened with down, enter."""

    async def open_second(pilot: Pilot[object]) -> None:
        app = pilot.app
        assert isinstance(app, HelpdeskApp)
        await wait_for(pilot, lambda: _inbox_ready(app))
        await pilot.press("down")
        await wait_for(pilot, lambda: conversation_list(app).cursor == 1)
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: (
                isinstance(app.screen, ConversationScreen) and "please help" in thread_text(app)
            ),
        )
        await pilot.pause()

    assert snap_compare(snapshot_app, terminal_size=SIZE, run_before=open_second)
