"""Jobs per second through the outbox sender, against a bare aiosmtplib loop (issue 8, point 10).

    python bench/outbox.py [--jobs 2000] [--size 2048] [--connections 1,4] [--repeat 2]
                           [--pg postgresql://...]

Each row queues `--jobs` replies of `--size` bytes through outbox.enqueue (the way every
service queues mail) and measures, in this process and run:
  ours   the worker's OutboxSender (claims under a lease, one reused SMTP connection per
         worker, group-committed results, duplicate bound kept) from start until every job
         is recorded as sent, with outbox.connections_per_destination = the row's value;
  bare   one aiosmtplib connection sending the same bytes in a loop, nothing recorded.
Beside jobs/s, each side's CPU time per job: on a busy machine jobs/s of the same code swings
by half from run to run, CPU time much less, and their ratio is the price of the outbox.
Both send to Postfix's smtp-sink when installed, else to a plain aiosmtpd that answers 250.
Target: ours/bare >= 0.8. Every run is bounded in count and time, and only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import aiosmtplib
from harness import HOST, Server, load_average, on_each_backend, start_baseline, start_sink, table
from sqlalchemy import func, select, update

from tui_helpdesk.config import load_settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import OutboxBody, OutboxJob
from tui_helpdesk.services import domains, mailboxes, organisations, outbox, users
from tui_helpdesk.smtp.protocol import new_event_loop
from tui_helpdesk.worker.sender import OutboxSender

SEND_BOUND_SECONDS = 300


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--size", type=int, default=2048, help="bytes per reply")
    parser.add_argument("--connections", default="1,4,8", help="connections_per_destination rows")
    parser.add_argument("--repeat", type=int, default=2, help="runs per cell, best one counts")
    parser.add_argument("--pg", help="also run against this PostgreSQL URL (a fresh schema)")
    return parser.parse_args()


def reply(number: int, size: int) -> bytes:
    head = ("From: Support <support@bench.test>\r\nTo: carol@customer.test\r\n"
            f"Subject: Re: Printer on fire [HD#{number}]\r\n"
            f"Message-ID: <r{number}.{time.time_ns()}@bench.test>\r\n"
            "Date: Mon, 30 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n")  # fmt: skip
    lines = max(1, (size - len(head)) // 72)
    return (head + ("Thanks for writing, we are looking into it right now, " + "." * 14 + "\r\n")
            * lines).encode()  # fmt: skip


def settings_for(db_url: str, sink_port: int, connections: int):  # type: ignore[no-untyped-def]
    return load_settings(environ={
        "TUI_HELPDESK_DATABASE_URL": db_url, "TUI_HELPDESK_OUTBOUND_RELAY_HOST": HOST,
        "TUI_HELPDESK_OUTBOUND_RELAY_PORT": str(sink_port),
        "TUI_HELPDESK_OUTBOX_CONNECTIONS_PER_DESTINATION": str(connections),
        "TUI_HELPDESK_OUTBOX_CONCURRENCY": str(max(8, connections)),
        "TUI_HELPDESK_SMTP_HOSTNAME": "helpdesk.bench.test",
    })  # fmt: skip


def prepare(db: Database) -> None:
    db.migrate()
    with db.write() as session:
        organisations.create(session, None, name="Bench Ltd", timezone="UTC", language="en")
        admin = users.add(session, None, email="ada@bench.test", name="Ada", role="admin")
        domains.add(session, admin, "bench.test")
        settings = load_settings(environ={})
        mailboxes.create(session, settings, admin, display_name="Support", local_part="support",
                         domain="bench.test", verified=True)  # fmt: skip


def queue(db: Database, count: int, size: int) -> float:
    """`count` replies through outbox.enqueue, in one transaction; returns the seconds taken."""
    from datetime import UTC, datetime

    start = time.perf_counter()
    with db.write() as session:
        admin = users.to_record(users.find(session, "ada@bench.test"))
        box = mailboxes.load(session, admin, "support@bench.test")
        for n in range(count):
            outbox.enqueue(session, mailbox=box, kind="reply", mail_from=box.email_address,
                           rcpt_to=["carol@customer.test"], raw=reply(n, size),
                           not_before=datetime.now(UTC))  # fmt: skip
    return time.perf_counter() - start


def sent_count(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).where(OutboxJob.status == "sent")) or 0


def run_ours(db: Database, settings, count: int) -> tuple[float, int, int]:  # type: ignore[no-untyped-def]
    """Seconds until every queued job is recorded as sent; connections opened; commits."""
    sender = OutboxSender(settings, name="bench")
    start = time.perf_counter()
    sender.start()
    try:
        deadline = start + SEND_BOUND_SECONDS
        while getattr(sender, "recorder", None) is None or sender.recorder.recorded < count:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"only {sent_count(db)} of {count} sent in time")
            time.sleep(0.005)  # no query: the counter of results committed
        elapsed = time.perf_counter() - start
        if sent_count(db) != count:
            raise RuntimeError(f"{count - sent_count(db)} jobs not sent")
    finally:
        sender.stop(30)
    return elapsed, sender.pool.opened, sender.recorder.commits


def run_bare(raws: list[bytes], port: int) -> float:
    """The same bytes over one aiosmtplib connection, in the sender's kind of event loop."""

    async def send_all() -> float:
        smtp = aiosmtplib.SMTP(hostname=HOST, port=port, local_hostname="helpdesk.bench.test",
                               start_tls=False)  # fmt: skip
        await smtp.connect()
        start = time.perf_counter()
        for raw in raws:
            await smtp.sendmail("support@bench.test", ["carol@customer.test"], raw)
        elapsed = time.perf_counter() - start
        await smtp.quit()
        return elapsed

    loop = new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(send_all(), SEND_BOUND_SECONDS))
    finally:
        loop.close()


def requeue(db: Database) -> None:
    """Every job queued again, for the next run on the same bytes."""
    from datetime import UTC, datetime

    with db.write() as session:
        session.execute(update(OutboxJob).values(status="queued", attempts=0, claimed_by="",
                                                 next_attempt_at=datetime.now(UTC)))  # fmt: skip


def measure(args: argparse.Namespace, sink: Server, label: str, rows: list[list[object]]):  # type: ignore[no-untyped-def]
    def run(db_url: str) -> None:
        db = Database(db_url)
        try:
            prepare(db)
            queued = queue(db, args.jobs, args.size)
            with db.read() as session:
                raws = list(session.scalars(select(OutboxBody.raw).order_by(OutboxBody.job_id)))
            backend = "sqlite" if db.is_sqlite else "postgresql"
            for connections in [int(c) for c in args.connections.split(",")]:
                settings = settings_for(db_url, sink.port, connections)
                best_ours, best_bare, opened, commits = 0.0, 0.0, 0, 0
                cpu_ours, cpu_bare = float("inf"), float("inf")
                for _ in range(args.repeat):
                    requeue(db)
                    cpu = time.process_time()
                    seconds, opened, commits = run_ours(db, settings, args.jobs)
                    cpu_ours = min(cpu_ours, time.process_time() - cpu)
                    best_ours = max(best_ours, args.jobs / seconds)
                    cpu = time.process_time()
                    best_bare = max(best_bare, args.jobs / run_bare(raws, sink.port))
                    cpu_bare = min(cpu_bare, time.process_time() - cpu)
                rows.append([backend, label, connections, args.jobs, round(args.jobs / queued),
                             round(best_ours), round(best_bare), f"{best_ours / best_bare:.2f}",
                             round(cpu_ours / args.jobs * 1e6), round(cpu_bare / args.jobs * 1e6),
                             f"{cpu_bare / cpu_ours:.2f}", opened, commits])  # fmt: skip
        finally:
            db.dispose()

    on_each_backend(run, pg=args.pg, prefix="hd-outbox-bench-")


def main() -> int:
    args = parse_args()
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="hd-outbox-logs-") as logs:
        sink = start_sink(Path(logs)) or start_baseline("aiosmtpd", Path(logs))
        label = "smtp-sink" if sink.name == "smtp-sink" else "aiosmtpd"
        try:
            measure(args, sink, label, rows)
        finally:
            sink.stop()
    headers = ["backend", "sink", "conns", "jobs", "queued/s", "ours/s", "bare/s", "ours/bare",
               "ours µs", "bare µs", "cpu b/o", "opened", "commits"]  # fmt: skip
    print(table(headers, rows))
    print(
        f"{args.size}-byte replies; µs = CPU time of this process per job (best run): what a "
        f"shared machine distorts least; cpu b/o = bare µs / ours µs; load average "
        f"{load_average()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
