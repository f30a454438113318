"""SVG snapshots of the inbox (issue 9, point 8): empty, busy with the sidebar, narrow 80x24
(the sidebar collapsed) and search results, at a fixed clock on a copy of the SQLite template.

Update after reviewing: pytest tests/test_tui_inbox_snapshot.py --snapshot-update
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from test_tui import conversation_list, loaded, wait_for
from test_tui_data import NOW, add_conversation, seed
from textual.pilot import Pilot
from textual.widgets import Input

from tui_helpdesk.config import load_settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import User
from tui_helpdesk.tui.app import HelpdeskApp, make_app

WIDE = (120, 36)
NARROW = (80, 24)
PRIORITIES = ("normal", "high", "low", "urgent", "normal")
TAGS = ((), ("billing",), ("vip", "billing"), (), ("outage",))


@pytest.fixture(autouse=True)
def frozen_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Input, "cursor_blink", False)


def _app(sqlite_template: Path, tmp_path: Path, fill: Callable[[Database], None], email: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "snapshot.sqlite3"
    shutil.copyfile(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    fill(db)
    db.dispose()
    settings = load_settings(environ={
        "TUI_HELPDESK_DATABASE_URL": f"sqlite:///{path}",
        "TUI_HELPDESK_TUI_KEYMAP_PATH": str(tmp_path / "no-keymap.toml"),
    })  # fmt: skip
    return make_app(settings, email, now=lambda: NOW)


def busy(db: Database) -> None:
    """The seed, then 30 more open conversations with priorities, tags and assignees."""
    ids = seed(db)
    assignees = (None, ids.users["bob"], None, ids.users["ada"], ids.users["dee"])
    with db.write() as session:
        for n in range(30):
            add_conversation(
                session, org_id=ids.org, mailbox_id=ids.mailboxes["support"],
                queue_id=ids.queues["Support"], subject=f"Order {1000 + n} has not arrived",
                sender=f"buyer{n}@shop.test", sender_name=f"Buyer {n}",
                at=NOW - timedelta(hours=2 + n * 7), tags=TAGS[n % 5],
                assignee_id=assignees[n % 5],
            ).priority = PRIORITIES[n % 5]  # fmt: skip


def empty(db: Database) -> None:
    ids = seed(db)
    with db.write() as session:
        session.add(User(organisation_id=ids.org, email="new@acme.test", name="New Agent"))


def _ready(app: HelpdeskApp) -> bool:
    sidebar = app.screen.query("#sidebar")
    return loaded(app) and bool(sidebar) and sidebar.first().option_count > 0  # type: ignore[attr-defined]


def _until(condition: Callable[[HelpdeskApp], bool], *keys: str):  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[object]) -> None:
        app = pilot.app
        assert isinstance(app, HelpdeskApp)
        await wait_for(pilot, lambda: _ready(app))
        if keys:
            await pilot.press(*keys)
        await wait_for(pilot, lambda: condition(app))
        await pilot.pause()

    return run_before


def test_inbox_empty(snap_compare, sqlite_template: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = _app(sqlite_template, tmp_path, empty, "new@acme.test")
    assert snap_compare(app, terminal_size=WIDE, run_before=_until(_ready))


def test_inbox_busy(snap_compare, sqlite_template: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """34 open conversations; two marked with space, the cursor on the third."""
    app = _app(sqlite_template, tmp_path, busy, "ada@acme.test")
    marked = _until(lambda a: len(conversation_list(a).marked) == 2, "down", "space", "space")
    assert snap_compare(app, terminal_size=WIDE, run_before=marked)


def test_inbox_narrow(snap_compare, sqlite_template: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = _app(sqlite_template, tmp_path, busy, "ada@acme.test")
    assert snap_compare(app, terminal_size=NARROW, run_before=_until(_ready))


def test_inbox_search_results(snap_compare, sqlite_template: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app = _app(sqlite_template, tmp_path, busy, "ada@acme.test")

    def found(a: HelpdeskApp) -> bool:
        listed = conversation_list(a)
        return a.screen.list_filter.query is not None and loaded(a) and listed.total == 12  # type: ignore[attr-defined]

    keys = ("slash", *"order tag:billing", "enter")
    assert snap_compare(app, terminal_size=WIDE, run_before=_until(found, *keys))
