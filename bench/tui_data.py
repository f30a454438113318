"""The inbox's data layer on 100,000 conversations / 1,000,000 messages (issue 9, points 1, 5, 9).

    python bench/tui_data.py [--conversations 100000] [--messages 1000000] [--repeat 7]
                             [--pg postgresql://...] [--no-sqlite]

Seeds a helpdesk by bulk insert (bench/inbox_seed.py: before the search migration, which then
indexes the stored mail), then times what the TUI asks of the services, each the median of
--repeat runs after one warm-up, next to a baseline measured in the same run: a bare
`SELECT 1` round trip, or what the same screen cost before keyset paging (the OFFSET query,
full counts, the old change fingerprint). Data layer only: no Textual. SQLite runs on a
temporary file, PostgreSQL in a fresh schema dropped afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from harness import load_average, on_each_backend, table
from inbox_seed import Seeded, seed, word
from sqlalchemy import func, select, text

from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Conversation
from tui_helpdesk.records import ConversationView, UserRecord
from tui_helpdesk.services import changes, users
from tui_helpdesk.services.conversations import listing, rows, thread, views
from tui_helpdesk.services.conversations.visibility import visible
from tui_helpdesk.services.search.results import search

OPEN = ConversationView("open", "All open")
PAGE = 50
DEEP = 90_000
OLD_FINGERPRINT = (
    "SELECT (SELECT COALESCE(MAX(id), 0) FROM messages), (SELECT COUNT(*) FROM conversations),"
    " (SELECT MAX(updated_at) FROM conversations)"
)


def timed(run: Callable[[], Any], repeat: int) -> float:
    """Median milliseconds of `repeat` runs after one warm-up run."""
    run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


class Bench:
    """One backend's measurements: rows of (what, ms, baseline, baseline ms, note)."""

    def __init__(self, db: Database, seeded: Seeded, repeat: int) -> None:
        self.db, self.seeded, self.repeat = db, seeded, repeat
        self.rows: list[tuple[str, float, str, float, str]] = []
        with db.read() as session:
            self.admin = users.resolve_actor(session, email=seeded.admin, os_user=None)
            self.agent = users.resolve_actor(session, email=seeded.agent, os_user=None)

    def read(self, work: Callable[[Any], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with self.db.read() as session:
                return work(session)

        return run

    def add(self, what: str, work: Callable[[Any], Any], baseline: str,
            base: Callable[[Any], Any], note: str = "") -> None:  # fmt: skip
        ms = timed(self.read(work), self.repeat)
        self.rows.append((what, ms, baseline, timed(self.read(base), self.repeat), note))

    def select_one(self, session: Any) -> Any:
        return session.execute(text("SELECT 1")).scalar()

    def offset_page(self, who: UserRecord, offset: int) -> Callable[[Any], Any]:
        """The list query as it was: the same row query, OFFSET instead of a key."""

        def run(session: Any) -> Any:
            query = (
                rows.row_query(who).where(visible(who), Conversation.status == "open")
                .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
                .offset(offset).limit(PAGE)
            )  # fmt: skip
            return session.execute(query).all()

        return run


def lists(bench: Bench) -> None:
    admin, agent = bench.admin, bench.agent
    with bench.db.read() as session:
        total = views.count(session, admin, OPEN, cap=None).count
        deep = min(DEEP, total - 2 * PAGE)  # row 90,000 unless the list is shorter
        deep_key = listing.key_at(session, admin, OPEN, skip=deep - 1)
        middle_id = _middle(session, admin, total)
    bench.add("first page (All open)", lambda s: listing.first_page(s, admin, OPEN, limit=PAGE),
              "SELECT 1", bench.select_one, f"{total:,} open rows")  # fmt: skip
    bench.add(f"page at row {deep:,} (after its key)",
              lambda s: listing.page_after(s, admin, OPEN, deep_key, limit=PAGE),
              f"OFFSET {deep:,}", bench.offset_page(admin, deep))  # fmt: skip
    bench.add(f"page above row {deep:,} (before its key)",
              lambda s: listing.page_before(s, admin, OPEN, deep_key, limit=PAGE),
              f"OFFSET {deep - PAGE:,}", bench.offset_page(admin, deep - PAGE))  # fmt: skip
    bench.add("last page", lambda s: listing.last_page(s, admin, OPEN, limit=PAGE),
              f"OFFSET {total - PAGE:,}", bench.offset_page(admin, total - PAGE))  # fmt: skip
    bench.add("page containing a conversation", lambda s: listing.page_containing(
        s, admin, OPEN, middle_id, limit=PAGE), "position count + OFFSET",
        lambda s: _old_containing(s, bench, middle_id), "half way down")  # fmt: skip
    bench.add(f"key of row {deep:,} (scroll bar jump)",
              lambda s: listing.key_at(s, admin, OPEN, skip=deep - 1), "SELECT 1",
              bench.select_one, "walks index entries only")  # fmt: skip
    bench.add("first page as an agent", lambda s: listing.first_page(s, agent, OPEN, limit=PAGE),
              "SELECT 1", bench.select_one, "member of 1 queue of 5")  # fmt: skip


def _middle(session: Any, who: UserRecord, total: int) -> int:
    key = listing.key_at(session, who, OPEN, skip=total // 2)
    assert key is not None
    return key.id


def _old_containing(session: Any, bench: Bench, conversation_id: int) -> Any:
    """What the TUI did before: count the rows above, then read that page by OFFSET."""
    admin = bench.admin
    key = listing.key_of(session, admin, OPEN, conversation_id)
    assert key is not None
    above = session.scalar(
        select(func.count())
        .select_from(Conversation)
        .where(visible(admin), Conversation.status == "open", listing.newer_than(key))
    )
    return bench.offset_page(admin, max(0, above - PAGE // 2))(session)


def counts(bench: Bench) -> None:
    admin, agent = bench.admin, bench.agent
    with bench.db.read() as session:
        shown = views.sidebar(session, admin)
    exact = [c.view for c in shown]
    bench.add(f"sidebar: {len(shown)} view counts (capped {views.COUNT_CAP:,})",
              lambda s: views.sidebar(s, admin), "the same counts, exact",
              lambda s: [views.count(s, admin, v, cap=None) for v in exact])  # fmt: skip
    bench.add("sidebar as an agent", lambda s: views.sidebar(s, agent), "SELECT 1",
              bench.select_one)  # fmt: skip


def change_check(bench: Bench) -> None:
    db = bench.db
    watcher = changes.ChangeWatcher(db)
    try:
        with db.write() as session:  # a commit that changes nothing shown (a heartbeat)
            session.execute(text("UPDATE organisations SET language = language"))

        def poll(_session: Any) -> Any:
            return watcher.poll()

        if db.is_sqlite:
            raw = db.engine.raw_connection()
            try:
                old = raw.driver_connection

                def fingerprint(_session: Any) -> Any:
                    return old.execute(OLD_FINGERPRINT).fetchone()

                bench.add("change check (poll)", poll, "old fingerprint query", fingerprint,
                          "data_version + counter row")  # fmt: skip
            finally:
                raw.close()
        else:
            bench.add("change check (poll)", poll, "SELECT 1", bench.select_one, "LISTEN/NOTIFY")
    finally:
        watcher.close()


def searches(bench: Bench) -> None:
    admin = bench.admin
    queries = [
        (word(5000), "rare word (~0.08% of messages)"),
        (word(100), "medium word (~4%)"),
        (word(10), "common word (~32%)"),
        (f"{word(100)} {word(300)}", "two words in one message"),
        (f'"{word(1)} {word(2)}"', "phrase of two common words"),
        (f"{word(200)} status:pending", "word + filter"),
        (f"{word(50)} -{word(400)}", "word, negated word"),
        ("from:customer77@client77.example", "sender address"),
        ("tag:vip status:open", "filters only"),
    ]
    for query, what in queries:
        with bench.db.read() as session:
            hits = len(search(session, admin, query, limit=PAGE).hits)
        bench.add(f"search: {what}", lambda s, q=query: search(s, admin, q, limit=PAGE),
                  "SELECT 1", bench.select_one, f"{hits} hits: {query}")  # fmt: skip


def opening(bench: Bench) -> None:
    admin, long = bench.admin, bench.seeded.long_conversation
    with bench.db.read() as session:
        size = len(thread.get_conversation(session, admin, long).messages)
    bench.add(f"open a {size}-message conversation",
              lambda s: thread.get_conversation(s, admin, long), "SELECT 1",
              bench.select_one)  # fmt: skip


def run(url: str, args: argparse.Namespace) -> None:
    backend = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    print(f"[{backend}] seeding {args.conversations:,} conversations / {args.messages:,} "
          "messages…", file=sys.stderr)  # fmt: skip
    seeded = seed(url, conversations=args.conversations, messages=args.messages)
    db = Database(url)
    try:
        bench = Bench(db, seeded, args.repeat)
        for part in (lists, counts, change_check, searches, opening):
            part(bench)
        print(f"\n== {backend}: {seeded.conversations:,} conversations, "
              f"{seeded.messages:,} messages ==")  # fmt: skip
        print(f"seed by bulk insert {seeded.seconds:.1f} s; search migration (index of the "
              f"stored mail) {seeded.backfill_seconds:.1f} s")  # fmt: skip
        headers = ["data layer", "ms", "baseline", "baseline ms", "note"]
        print(table(headers, [(w, ms, b, bms, n) for w, ms, b, bms, n in bench.rows]))
    finally:
        db.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7, help="runs per figure (median)")
    parser.add_argument("--pg", help="also run against this PostgreSQL URL (a fresh schema)")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args(argv)
    if args.conversations < 1000 or args.messages < args.conversations + 49:
        parser.error("give at least 1,000 conversations and 49 messages more than that")
    started, load = time.perf_counter(), load_average()
    if args.no_sqlite:
        if not args.pg:
            parser.error("--no-sqlite needs --pg URL")
        from harness import pg_schema

        with pg_schema(args.pg) as url:
            run(url, args)
    else:
        on_each_backend(lambda url: run(url, args), pg=args.pg, prefix="hd-tui-data-")
    print(f"\n({time.perf_counter() - started:.0f} s in all; medians of {args.repeat} runs "
          f"after a warm-up; load average before {load}, after {load_average()})")  # fmt: skip


if __name__ == "__main__":
    main()
