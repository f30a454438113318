"""The stats screen (F60) on 100,000 conversations: the service's SQL and the screen's first
frame (issue 10, point 5: opens within 0.5 s).

    python bench/stats.py [--conversations 100000] [--messages 300000] [--repeat 5]
                          [--pg postgresql://...] [--no-sqlite]

Seeds a helpdesk by bulk insert (bench/inbox_seed.py; its closed conversations are given
their last message's time as closed_at), then times services.stats.stats (median of --repeat runs
after a warm-up) for the default 30-day period, a year, and an agent; and, headless at
120×36, the StatsScreen: from push_screen to its first frame, and to the numbers and chart
on screen. "Now" is an hour after the newest seeded conversation, so today and the period
hold data.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from harness import load_average, on_each_backend, table
from inbox_seed import seed
from sqlalchemy import func, select, text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui_helpdesk.config import load_settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Conversation
from tui_helpdesk.services import stats, users

BUDGET_MS = 500


def timed(run: Callable[[], Any], repeat: int) -> float:
    run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(url: str, args: argparse.Namespace) -> None:
    seeded = seed(url, conversations=args.conversations, messages=args.messages)
    db = Database(url)
    try:
        with db.write() as session:  # the seed leaves closed_at empty
            session.execute(
                text("UPDATE conversations SET closed_at = last_message_at WHERE status = 'closed'")
            )
        with db.read() as session:
            now = session.scalar(select(func.max(Conversation.created_at))) + timedelta(hours=1)
            admin = users.resolve_actor(session, email=seeded.admin, os_user=None)
            agent = users.resolve_actor(session, email=seeded.agent, os_user=None)

        def service(actor: Any, days: int) -> Callable[[], Any]:
            def run() -> Any:
                with db.read() as session:
                    return stats.stats(session, actor, now=now, days=days)

            return run

        rows: list[tuple[str, float, str]] = []
        found = service(admin, 30)()
        opened = sum(q.open for q in found.queues)
        received = sum(d.received for d in found.days)
        rows.append(("stats service, 30 days (admin)", timed(service(admin, 30), args.repeat),
                     f"{opened:,} open, {received:,} received in the period"))  # fmt: skip
        rows.append(("stats service, 366 days (admin)", timed(service(admin, 366), args.repeat),
                     "a year of medians and series"))  # fmt: skip
        rows.append(("stats service, 30 days (agent)", timed(service(agent, 30), args.repeat),
                     "member of 1 queue of 5"))  # fmt: skip
        first, shown, bare = asyncio.run(screen_times(url, seeded.admin, now, args.repeat))
        rows.append(("baseline: push a bare screen", bare, "a Static and a Footer: Textual alone"))
        rows.append(("screen: push to first frame", first, "headless, 120x36"))
        rows.append(("screen: push to numbers and chart", shown,
                     f"budget {BUDGET_MS} ms"))  # fmt: skip
    finally:
        db.dispose()
    backend = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    print(f"\n{backend}: {seeded.conversations:,} conversations, {seeded.messages:,} messages "
          f"(load {load_average()})")  # fmt: skip
    print(table(["what", "ms (median)", "note"], rows))


class BareScreen(Screen[None]):
    def compose(self) -> ComposeResult:
        yield Static("nothing")
        yield Footer()


async def screen_times(url: str, admin: str, now: Any, repeat: int) -> tuple[float, float, float]:
    from tui_helpdesk.tui.app import make_app
    from tui_helpdesk.tui.screens.admin.stats import StatsScreen

    settings = load_settings(environ={"TUI_HELPDESK_DATABASE_URL": url})
    app = make_app(settings, admin, now=lambda: now)
    firsts, shown = [], []
    async with app.run_test(size=(120, 36)) as pilot:
        for attempt in range(repeat + 1):
            screen = StatsScreen()
            started = time.perf_counter()
            await app.push_screen(screen)
            await pilot.pause()
            first = time.perf_counter() - started
            while screen.record is None:
                await pilot.pause(0.002)
            await pilot.pause()
            done = time.perf_counter() - started
            if attempt:  # the first one warms up imports and caches
                firsts.append(first * 1000)
                shown.append(done * 1000)
            app.pop_screen()
            await pilot.pause()
        bare = []
        for _ in range(repeat):
            started = time.perf_counter()
            await app.push_screen(BareScreen())
            await pilot.pause()
            bare.append((time.perf_counter() - started) * 1000)
            app.pop_screen()
            await pilot.pause()
    return statistics.median(firsts), statistics.median(shown), statistics.median(bare)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pg", help="PostgreSQL URL (a fresh schema is made and dropped)")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()

    def run(url: str) -> None:
        if url.startswith("sqlite") and args.no_sqlite:
            return
        measure(url, args)

    on_each_backend(run, pg=args.pg, prefix="tui-helpdesk-stats-")
    return 0


if __name__ == "__main__":
    sys.exit(main())
