"""SVG snapshots of the conversation screen: a thread with a failed send, every message open
(folded and unfolded), the composer, and both at 80×24. Update after reviewing the report:
pytest tests/test_tui_conversation_snapshot.py --snapshot-update
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from test_tui import wait_for
from test_tui_data import NOW
from textual.pilot import Pilot
from textual.widgets import Input, TextArea
from tui_conversation_support import flag, seed_thread

from tui_helpdesk.config import load_settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.tui.app import HelpdeskApp, make_app
from tui_helpdesk.tui.screens.composer import ComposerScreen
from tui_helpdesk.tui.screens.conversation import ConversationScreen
from tui_helpdesk.tui.widgets.thread_view import ThreadView

WIDE, NARROW = (120, 36), (80, 24)


@pytest.fixture(autouse=True)
def frozen_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Input, "cursor_blink", False)
    monkeypatch.setattr(TextArea, "cursor_blink", False)


@pytest.fixture
def snapshot_app(sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    path = tmp_path / "snapshot.sqlite3"
    shutil.copyfile(sqlite_template, path)
    settings = load_settings(environ={"TUI_HELPDESK_DATABASE_URL": f"sqlite:///{path}"})
    db = Database(f"sqlite:///{path}")
    thread = seed_thread(db, settings)
    db.dispose()
    monkeypatch.setattr("shutil.which", lambda name: None)
    app = make_app(settings, "ada@acme.test", worker_address=("127.0.0.1", 2525), now=lambda: NOW)
    app.snapshot_conversation = thread.conversation_id  # type: ignore[attr-defined]
    app.snapshot_flag = lambda level, reason: _flag(
        path, thread.attachment_message_id, level, reason
    )  # type: ignore[attr-defined]
    return app


def _flag(path: Path, message_id: int, level: str, reason: str) -> None:
    db = Database(f"sqlite:///{path}")
    flag(db, message_id, level, reason)
    db.dispose()


def opened(keys: Sequence[str] = (), *, composer: str = ""):  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[object]) -> None:
        app = pilot.app
        assert isinstance(app, HelpdeskApp)
        await wait_for(pilot, lambda: len(app.screen_stack) > 1)
        app.open_conversation(app.snapshot_conversation)  # type: ignore[attr-defined]
        await wait_for(
            pilot,
            lambda: (
                isinstance(app.screen, ConversationScreen)
                and bool(app.screen.query(ThreadView))
                and len(app.screen.query_one(ThreadView).messages) == 6
            ),
        )
        await pilot.press(*keys)
        if composer:
            await pilot.press("r")
            await wait_for(pilot, lambda: isinstance(app.screen, ComposerScreen))
            signature = app.screen.query_one("#composer-signature")
            await wait_for(pilot, lambda: "Ada Admin" in str(signature.content))
            app.screen.query_one("#composer-body", TextArea).load_text(composer)
        await pilot.pause()

    return run_before


REPLY = "Dear Carol,\n\nthe technician is on the way; they will call you first.\n"


def test_thread_with_a_failed_send(snap_compare, snapshot_app) -> None:  # type: ignore[no-untyped-def]
    """Opening: older messages closed to a line, the newest open, the failed send in red."""
    assert snap_compare(snapshot_app, terminal_size=WIDE, run_before=opened())


def test_thread_all_open_quotes_folded(snap_compare, snapshot_app) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(snapshot_app, terminal_size=WIDE, run_before=opened(["E", "g", "j"]))


def test_thread_all_open_quotes_shown(snap_compare, snapshot_app) -> None:  # type: ignore[no-untyped-def]
    run_before = opened(["E", "z", "g", "j", "j"])
    assert snap_compare(snapshot_app, terminal_size=WIDE, run_before=run_before)


def test_composer_open(snap_compare, snapshot_app) -> None:  # type: ignore[no-untyped-def]
    run_before = opened(composer=REPLY)
    assert snap_compare(snapshot_app, terminal_size=WIDE, run_before=run_before)


def test_thread_narrow(snap_compare, snapshot_app) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(snapshot_app, terminal_size=NARROW, run_before=opened())


def test_composer_narrow(snap_compare, snapshot_app) -> None:  # type: ignore[no-untyped-def]
    run_before = opened(composer=REPLY)
    assert snap_compare(snapshot_app, terminal_size=NARROW, run_before=run_before)


SPOOF = "From: carol@customer.test fails DMARC: no aligned pass (customer.test publishes p=reject)"


def test_thread_with_a_spoof_banner(snap_compare, snapshot_app) -> None:  # type: ignore[no-untyped-def]
    snapshot_app.snapshot_flag("spoof", SPOOF)
    assert snap_compare(snapshot_app, terminal_size=WIDE, run_before=opened(["k", "k"]))


def test_thread_with_a_lookalike_banner_narrow(snap_compare, snapshot_app) -> None:  # type: ignore[no-untyped-def]
    snapshot_app.snapshot_flag("lookalike", "Carol Customer wrote before from carol@customer.test")
    assert snap_compare(snapshot_app, terminal_size=NARROW, run_before=opened())


def test_composer_confirms_a_reply_to_a_spoof(snap_compare, snapshot_app) -> None:  # type: ignore[no-untyped-def]
    snapshot_app.snapshot_flag("spoof", SPOOF)

    async def run_before(pilot: Pilot[object]) -> None:
        await opened(composer=REPLY)(pilot)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: pilot.app.screen.id == "confirm")
        await pilot.pause()

    assert snap_compare(snapshot_app, terminal_size=WIDE, run_before=run_before)
