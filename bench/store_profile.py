"""Where the worker's time goes, without the network: parse and store_batch in one process.

    python bench/store_profile.py [--messages 800] [--size 2048] [--batch 8] [--pg URL]
                                  [--cprofile 25] [--sql]

Prints milliseconds per message for parsing and for storing (batches of --batch, as the group
commit writer would form them at that many concurrent sessions), the SQL statements issued per
message grouped by their first words, and optionally the top functions by cProfile.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import re
import time
from collections import Counter
from datetime import UTC, datetime

from harness import on_each_backend, prepare_helpdesk, table, worker_env
from loadgen import make_message
from sqlalchemy import event

from tui_helpdesk.config import load_settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.mail.inbound import InboundMail
from tui_helpdesk.mail.parse import parse_message
from tui_helpdesk.worker.store import smtp_store


def statement_kind(sql: str) -> str:
    """A statement without literals and column lists: "SELECT … FROM messages WHERE …"."""
    sql = " ".join(sql.split())
    head = re.match(r"(\w+)", sql)
    verb = head.group(1).upper() if head else "?"
    table_match = re.search(r"\b(?:FROM|INTO|UPDATE)\s+(\w+)", sql, re.IGNORECASE)
    where = re.search(r"\bWHERE\s+(.{0,60})", sql, re.IGNORECASE)
    name = table_match.group(1) if table_match else ""
    return f"{verb} {name} {('WHERE ' + where.group(1)) if where else ''}".strip()


def mails(count: int, size: int, rcpt: str, run: str) -> list[InboundMail]:
    rng = random.Random(run)
    out = []
    for n in range(count):
        message = make_message(run, n, size, rcpt, rng)
        out.append(InboundMail(message.raw, message.mail_from, message.rcpts, datetime.now(UTC)))
    return out


def run(args: argparse.Namespace, db_url: str) -> None:
    rcpt = prepare_helpdesk(db_url)
    settings = load_settings(environ=worker_env(db_url))
    db = Database.from_settings(settings, pre_ping=False)  # as the store process opens it
    statements: Counter[str] = Counter()

    def _count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements[statement_kind(statement)] += 1

    if args.sql:  # the listener itself costs time: counted in a separate run from the timing
        event.listen(db.engine, "before_cursor_execute", _count)

    store = smtp_store(db, settings)  # as the worker's writer calls it (configuration kept)
    warm = mails(50, args.size, rcpt, "warm")
    store(warm)
    statements.clear()
    batch = mails(args.messages, args.size, rcpt, f"p{time.time_ns()}")

    started = time.perf_counter()
    for mail in batch:
        parse_message(mail.raw)
    parse_ms = 1000 * (time.perf_counter() - started) / len(batch)

    profiler = cProfile.Profile() if args.cprofile else None
    started, cpu = time.perf_counter(), time.thread_time()
    if profiler:
        profiler.enable()
    for i in range(0, len(batch), args.batch):
        store(batch[i : i + args.batch])
    if profiler:
        profiler.disable()
    store_ms = 1000 * (time.perf_counter() - started) / len(batch)
    cpu_ms = 1000 * (time.thread_time() - cpu) / len(batch)
    db.dispose()

    print(f"\n== {db.engine.dialect.name}: {len(batch)} messages of {args.size} B, "
          f"batches of {args.batch} ==")  # fmt: skip
    print(f"parse only: {parse_ms:.3f} ms/message")
    print(f"store_batch (parse + store + commit): {store_ms:.3f} ms/message wall, "
          f"{cpu_ms:.3f} ms CPU (= {1000 / store_ms:,.0f} messages/s on one core)")  # fmt: skip
    if args.sql:
        total = sum(statements.values())
        rows = [[f"{n / len(batch):.2f}", kind[:90]] for kind, n in statements.most_common()]
        print(f"SQL statements per message: {total / len(batch):.1f} (timing above includes "
              "the counting)")  # fmt: skip
        print(table(["per msg", "statement"], rows))
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
        stats.print_stats(r"tui_helpdesk", args.cprofile)
        if os.environ.get("STORE_PROFILE_TOTTIME"):
            stats.sort_stats("tottime").print_stats(args.cprofile)
        print(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=800)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--pg", help="also profile on this PostgreSQL URL (a fresh schema)")
    parser.add_argument("--cprofile", type=int, default=0, help="show the top N functions")
    parser.add_argument("--sql", action="store_true", help="count SQL statements per message")
    args = parser.parse_args(argv)
    on_each_backend(lambda url: run(args, url), pg=args.pg, prefix="hd-profile-")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
