"""`python -m tui_helpdesk.tui.screenshots DIR`: SVG screenshots of the app on demo data (F83).

Builds a throw-away SQLite database, fills it with services.demo.load_demo (mail goes through
the real ingest path), drives the app headless with keys and saves inbox.svg (with
the sidebar), conversation.svg, help.svg, search.svg (results of a search), the admin screens
(queues.svg, team.svg, mailboxes.svg, mailbox-created.svg) and inbox-narrow.svg (80x24: the
sidebar collapsed). The worker line shows the address
`make run` listens on.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

from tui_helpdesk.config import Settings, load_settings
from tui_helpdesk.services.demo import ADMIN, load_demo
from tui_helpdesk.services.session import open_database
from tui_helpdesk.tui.app import HelpdeskApp, make_app
from tui_helpdesk.tui.modals.help import HelpScreen
from tui_helpdesk.tui.screens.composer import ComposerScreen
from tui_helpdesk.tui.screens.conversation import ConversationScreen
from tui_helpdesk.tui.widgets.conversation_list import ConversationList
from tui_helpdesk.tui.widgets.thread_view import ThreadView

SIZE = (120, 34)
NARROW = (80, 24)
SEARCH = "password status:open"
WORKER_ADDRESS = ("127.0.0.1", 2525)
# The thread worth showing: several messages from one customer.
THREAD_SUBJECT = "Cannot log in after password reset"
COMPOSER_TEXT = "Hello,\n\nthe reset link was sent again; it works for 30 minutes.\n"


async def _until(pilot: Pilot[object], condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("the app did not reach the state to capture")
        await pilot.pause(0.05)
    await pilot.pause(0.2)


def _row_index(listed: ConversationList, subject: str) -> int:
    for index in range(listed.total):
        row = listed.row_at(index)
        if row is not None and row.subject == subject:
            return index
    return 0


async def capture(app: HelpdeskApp, directory: Path) -> list[Path]:
    written: list[Path] = []
    async with app.run_test(size=SIZE) as pilot:
        listed = app.screen.query_one(ConversationList)
        await _until(pilot, lambda: listed.loaded and listed.cursor_row is not None)
        await _until(pilot, lambda: "Worker" in str(app.screen.query_one("#worker-hint").content))
        written.append(Path(app.save_screenshot("inbox.svg", str(directory))))
        for _ in range(_row_index(listed, THREAD_SUBJECT)):
            await pilot.press("down")
        await pilot.press("enter")
        await _until(
            pilot,
            lambda: (
                isinstance(app.screen, ConversationScreen)
                and len(app.screen.query_one(ThreadView).messages) > 1
            ),
        )
        written.append(Path(app.save_screenshot("conversation.svg", str(directory))))
        await pilot.press("r")
        await _until(
            pilot,
            lambda: isinstance(app.screen, ComposerScreen) and app.screen.context is not None,
        )
        app.screen.query_one("#composer-body").load_text(COMPOSER_TEXT)  # type: ignore[attr-defined]
        await pilot.pause()
        written.append(Path(app.save_screenshot("conversation-composer.svg", str(directory))))
        await pilot.press("ctrl+g", "y", "escape", "question_mark")
        await _until(pilot, lambda: isinstance(app.screen, HelpScreen))
        written.append(Path(app.save_screenshot("help.svg", str(directory))))
        await pilot.press("escape", "slash", *SEARCH, "enter")
        await _until(pilot, lambda: listed.loaded and listed.cursor_row is not None)
        written.append(Path(app.save_screenshot("search.svg", str(directory))))
        await pilot.press("escape")
        await _until(pilot, lambda: app.screen.list_filter.query is None and listed.loaded)  # type: ignore[attr-defined]
        # Admin (F2): the Queues screen on its Members tab, then the Team.
        await pilot.press("escape", "f2")
        await _until(pilot, lambda: bool(getattr(app.screen, "shown", None)))
        for key in ("queues", "team"):
            await pilot.press("home", *["down"] * app.screen.shown.index(key), "enter")  # type: ignore[attr-defined]
            await _until(pilot, lambda: getattr(app.screen, "view", None) is not None)
            if key == "queues":  # Support: the queue with the most members
                await pilot.press("down", "2")
                await _until(pilot, lambda: len(app.screen.query_one("#queue-members").rows) > 1)  # type: ignore[attr-defined]
            written.append(Path(app.save_screenshot(f"{key}.svg", str(directory))))
            await pilot.press("escape")
            await _until(pilot, lambda: bool(getattr(app.screen, "shown", None)))
        await pilot.press("escape")  # the menu, back to the inbox
        written += await _admin_scenes(app, pilot, directory)
        written.extend(await capture_mailboxes(app, pilot, directory))
    return written


async def _admin_scenes(app: HelpdeskApp, pilot: Pilot[object], directory: Path) -> list[Path]:
    """stats.svg, audit.svg and workers.svg (issue 10, points 5-7), each opened on the inbox."""
    from tui_helpdesk.tui.screens.admin.audit import AuditScreen
    from tui_helpdesk.tui.screens.admin.stats import StatsScreen
    from tui_helpdesk.tui.screens.admin.workers import WorkersScreen
    from tui_helpdesk.tui.widgets.audit_list import AuditList

    written = []
    scenes = [
        ("stats.svg", StatsScreen, lambda s: s.shown),
        ("audit.svg", AuditScreen, lambda s: s.query_one(AuditList).cursor_row is not None),
        ("workers.svg", WorkersScreen, lambda s: s.shown),
    ]
    for name, make, ready in scenes:
        screen = make()
        await app.push_screen(screen)
        await _until(pilot, lambda screen=screen, ready=ready: ready(screen))
        written.append(Path(app.save_screenshot(name, str(directory))))
        app.pop_screen()
        await pilot.pause()
    return written


async def capture_mailboxes(app: HelpdeskApp, pilot: Pilot[object], directory: Path) -> list[Path]:
    """mailboxes.svg (the list), mailbox-created.svg (the alias and forwarding steps)."""
    from textual.widgets import Input

    from tui_helpdesk.tui.screens.admin.mailbox_alias import MailboxAliasScreen
    from tui_helpdesk.tui.screens.admin.mailboxes import MailboxesScreen

    listing = MailboxesScreen()
    await app.push_screen(listing)
    await _until(pilot, lambda: listing.loaded)
    shots = [Path(app.save_screenshot("mailboxes.svg", str(directory)))]
    await pilot.press("n")
    await _until(pilot, lambda: bool(app.screen.query("#field-local_part")))
    for name, value in (("display_name", "Acme Partners"), ("local_part", "partners")):
        app.screen.query_one(f"#field-{name}", Input).value = value
    await pilot.press("ctrl+s")
    await _until(pilot, lambda: isinstance(app.screen, MailboxAliasScreen))
    shots.append(Path(app.save_screenshot("mailbox-created.svg", str(directory))))
    return shots


async def capture_narrow(app: HelpdeskApp, directory: Path) -> list[Path]:
    async with app.run_test(size=NARROW) as pilot:
        listed = app.screen.query_one(ConversationList)
        await _until(pilot, lambda: listed.loaded and listed.cursor_row is not None)
        return [Path(app.save_screenshot("inbox-narrow.svg", str(directory)))]


def demo_settings(directory: Path) -> Settings:
    url = f"sqlite:///{directory / 'demo.sqlite3'}"
    # No keymap of whoever runs it: the screenshots show the default keys.
    keymap = str(directory / "no-keymap.toml")
    return load_settings(
        environ={"TUI_HELPDESK_DATABASE_URL": url, "TUI_HELPDESK_TUI_KEYMAP_PATH": keymap}
    )


def write_screenshots(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tui-helpdesk-shots-") as scratch:
        settings = demo_settings(Path(scratch))
        db = open_database(settings)
        try:
            db.migrate()
            load_demo(db, settings)
        finally:
            db.dispose()
        app = make_app(settings, ADMIN, worker_address=WORKER_ADDRESS)
        written = asyncio.run(capture(app, directory))
        narrow = make_app(settings, ADMIN, worker_address=WORKER_ADDRESS)
        return written + asyncio.run(capture_narrow(narrow, directory))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tui_helpdesk.tui.screenshots DIR", file=sys.stderr)
        return 2
    for path in write_screenshots(Path(args[0])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
