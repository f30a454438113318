"""Opening a 50-message conversation in the TUI: time to the first frame of the thread.

A temporary SQLite helpdesk (the demo data) gets one conversation of 50 messages, each ~15
lines written, ~15 lines of quoted history and a signature. Headless at 120×36, the app opens
it REPEAT times; each time is from `open_conversation` until the thread is loaded and the
screen has gone idle (mounted, laid out, drawn). Prints the median, and the database read on
its own. Run: .venv/bin/python bench/conversation_open.py
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from tui_helpdesk.config import load_settings
from tui_helpdesk.db.models import Conversation, Message, User
from tui_helpdesk.services.demo import load_demo
from tui_helpdesk.services.session import open_database
from tui_helpdesk.tui.app import make_app

REPEAT = 7
MESSAGES = 50
SIZE = (120, 36)
LINE = "The printer on the second floor still shows error 0x42 after the restart we tried."


def body(n: int) -> str:
    written = "\n".join(f"{n}: {LINE}" for _ in range(15))
    quoted = "\n".join(f"> {LINE}" for _ in range(15))
    return f"{written}\n\nOn Sun, 22 Nov 2026, Support wrote:\n{quoted}\n\n-- \nCarol\nCustomer Ltd"


def seed(directory: Path) -> tuple[object, str, int]:
    url = f"sqlite:///{directory / 'bench.sqlite3'}"
    settings = load_settings(environ={"TUI_HELPDESK_DATABASE_URL": url})
    db = open_database(settings)
    db.migrate()
    load_demo(db, settings)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    with db.write() as session:
        admin = session.scalars(select(User).where(User.role == "admin")).first()
        conversation = session.scalars(select(Conversation).order_by(Conversation.id)).first()
        assert admin is not None and conversation is not None
        existing = conversation.message_count
        for n in range(MESSAGES - existing):
            text = body(n)
            session.add(Message(
                conversation_id=conversation.id, mailbox_id=conversation.mailbox_id,
                subject="Re: printer", from_address="carol@customer.test", from_name="Carol",
                to_addresses="support@acme.test", received_at=start + timedelta(hours=n),
                sent_at=start + timedelta(hours=n), text_body=text, raw=text.encode(),
                raw_sha256=hashlib.sha256(text.encode()).hexdigest(), raw_size=len(text),
            ))  # fmt: skip
        conversation.message_count = MESSAGES
        email, cid = admin.email, conversation.id
    db.dispose()
    return settings, email, cid


class BareScreen(Screen[None]):
    """The floor: a screen of one line pushed and drawn, in the same app and run."""

    def compose(self) -> ComposeResult:
        yield Static("bare")

    def on_mount(self) -> None:
        self.detail = True


async def measure(settings: object, email: str, cid: int) -> dict[str, tuple[float, float]]:
    """name → (median wall ms, median ms of CPU on the event loop's thread) to idle."""
    app = make_app(settings, email)  # type: ignore[arg-type]
    found: dict[str, tuple[float, float]] = {}
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)
        for name, opening in (("bare screen", lambda: app.push_screen(BareScreen())),
                              ("conversation", lambda: app.open_conversation(cid))):  # fmt: skip
            walls, cpus = [], []
            for _ in range(REPEAT):
                wall, cpu = time.perf_counter(), time.thread_time()
                opening()
                while getattr(app.screen_stack[-1], "detail", None) is None:
                    await asyncio.sleep(0)
                await pilot.pause()
                walls.append(time.perf_counter() - wall)
                cpus.append(time.thread_time() - cpu)
                app.pop_screen()
                await pilot.pause()
            found[name] = (statistics.median(walls) * 1000, statistics.median(cpus) * 1000)
        reads = []
        for _ in range(REPEAT):
            started = time.perf_counter()
            app.data.conversation(cid)
            reads.append(time.perf_counter() - started)
        found["database read"] = (statistics.median(reads) * 1000, 0.0)
    return found


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="tui-helpdesk-bench-") as scratch:
        settings, email, cid = seed(Path(scratch))
        found = asyncio.run(measure(settings, email, cid))
    print(
        f"opening a {MESSAGES}-message conversation, headless {SIZE[0]}x{SIZE[1]}, SQLite, "
        f"median of {REPEAT}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"  {'':<15} {'wall ms':>8} {'loop CPU ms':>12}")
    for name, (wall, cpu) in found.items():
        print(f"  {name:<15} {wall:8.1f} {cpu:12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
