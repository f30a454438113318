"""How cheap storing inbound mail can be: the same rows written set-wise, per batch.

    python bench/store_floor.py [--messages 1600] [--size 2048] [--batch 8] [--pg URL]

NOT the product's ingest path (services/ingest.py is): a measuring stick for it. For each batch
it does what store_batch does for new mail from known customers - parse, duplicate check,
contact upsert, new conversation (queue and assignee from configuration read once), message with
raw bytes, participants, mailbox touch, one durable commit - but with one statement per table
per batch (Core executemany / INSERT ... RETURNING) instead of ORM objects and a query per
message. Compare its ms/message with bench/store_profile.py on the same settings.
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
from datetime import UTC, datetime

from harness import on_each_backend, prepare_helpdesk, worker_env
from loadgen import make_message
from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from tui_helpdesk.config import load_settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import (
    Contact,
    Conversation,
    ConversationParticipant,
    Mailbox,
    Message,
    QueueMailbox,
    QueueMember,
)
from tui_helpdesk.mail.parse import parse_message


def configuration(db: Database, alias: str) -> tuple[Mailbox, int, list[int]]:
    """Mailbox, its default queue and the queue's members: read once, as a cache would."""
    with db.read() as session:
        mailbox = session.scalars(select(Mailbox).where(Mailbox.alias == alias)).one()
        queue_id = session.scalars(
            select(QueueMailbox.queue_id).where(QueueMailbox.mailbox_id == mailbox.id)
        ).first()
        members = list(
            session.scalars(select(QueueMember.user_id).where(QueueMember.queue_id == queue_id))
        )
    return mailbox, queue_id, members


def store_set_wise(db, mailbox, queue_id, assignees, raws, received_at):  # type: ignore[no-untyped-def]
    parsed = [parse_message(raw) for raw in raws]
    upsert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    with db.write() as session:
        ids = [p.message_id for p in parsed if p.message_id]
        seen = set(
            session.execute(
                select(Message.message_id_header, Message.raw_sha256).where(
                    Message.mailbox_id == mailbox.id, Message.message_id_header.in_(ids)
                )
            ).all()
        )
        fresh = [(raw, p) for raw, p in zip(raws, parsed, strict=True)
                 if (p.message_id, p.sha256) not in seen]  # fmt: skip
        people = {p.sender.address.lower(): p.sender.name for _, p in fresh if p.sender}
        session.execute(
            upsert(Contact).on_conflict_do_nothing(),
            [{"organisation_id": mailbox.organisation_id, "email": e, "name": n}
             for e, n in people.items()],
        )  # fmt: skip
        contact_ids = dict(
            session.execute(
                select(Contact.email, Contact.id).where(
                    Contact.organisation_id == mailbox.organisation_id,
                    Contact.email.in_(list(people)),
                )
            ).all()
        )
        conversation_ids = session.scalars(
            insert(Conversation).returning(Conversation.id, sort_by_parameter_order=True),
            [
                {
                    "organisation_id": mailbox.organisation_id, "mailbox_id": mailbox.id,
                    "queue_id": queue_id,
                    "contact_id": contact_ids.get(p.sender.address.lower()) if p.sender else None,
                    "subject": p.subject, "status": "open", "priority": "normal",
                    "assignee_id": next(assignees), "last_message_at": received_at,
                    "message_count": 1,
                }
                for _, p in fresh
            ],
        ).all()  # fmt: skip
        session.execute(
            insert(Message),
            [
                {
                    "conversation_id": cid, "mailbox_id": mailbox.id, "direction": "inbound",
                    "kind": "mail", "message_id_header": p.message_id,
                    "in_reply_to": " ".join(p.in_reply_to), "references": " ".join(p.references),
                    "subject": p.subject,
                    "from_address": p.sender.address if p.sender else "",
                    "from_name": p.sender.name if p.sender else "",
                    "to_addresses": ", ".join(a.address for a in p.to),
                    "cc_addresses": ", ".join(a.address for a in p.cc),
                    "envelope_from": "customer@customers.test", "envelope_to": mailbox.alias,
                    "date_header": p.date_header, "sent_at": p.date, "received_at": received_at,
                    "text_body": p.text_body, "html_body": p.html_body, "raw": raw,
                    "raw_sha256": p.sha256, "raw_size": len(raw), "defects": list(p.defects),
                    "auto_submitted": p.auto_submitted, "bounce_recipient": "",
                    "processing_error": "",
                }
                for cid, (raw, p) in zip(conversation_ids, fresh, strict=True)
            ],
        )  # fmt: skip
        session.execute(
            upsert(ConversationParticipant).on_conflict_do_nothing(),
            [{"conversation_id": cid, "email": a.address.lower()}
             for cid, (_, p) in zip(conversation_ids, fresh, strict=True)
             for a in (p.sender, *p.to, *p.cc) if a is not None and "@" in a.address],
        )  # fmt: skip
        session.execute(
            update(Mailbox).where(Mailbox.id == mailbox.id).values(last_inbound_at=received_at)
        )


def run(args: argparse.Namespace, db_url: str) -> None:
    alias = prepare_helpdesk(db_url)
    settings = load_settings(environ=worker_env(db_url))
    db = Database.from_settings(settings)
    mailbox, queue_id, members = configuration(db, alias)
    assignees = itertools.cycle(members)
    rng = random.Random(args.size)
    run_id = f"f{time.time_ns()}"
    raws = [make_message(run_id, n, args.size, alias, rng).raw for n in range(args.messages)]
    store_set_wise(db, mailbox, queue_id, assignees, raws[:8], datetime.now(UTC))  # warm up
    wall, cpu = time.perf_counter(), time.thread_time()
    for i in range(8, len(raws), args.batch):
        batch = raws[i : i + args.batch]
        store_set_wise(db, mailbox, queue_id, assignees, batch, datetime.now(UTC))
    n = len(raws) - 8
    wall_ms = 1000 * (time.perf_counter() - wall) / n
    cpu_ms = 1000 * (time.thread_time() - cpu) / n
    db.dispose()
    print(f"{db.engine.dialect.name}: {n} messages of {args.size} B in batches of {args.batch}: "
          f"{wall_ms:.3f} ms/message wall, {cpu_ms:.3f} ms CPU "
          f"(= {1000 / wall_ms:,.0f} messages/s on one core)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1600)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--pg", help="also on this PostgreSQL URL (a fresh schema)")
    args = parser.parse_args(argv)
    on_each_backend(lambda url: run(args, url), pg=args.pg, prefix="hd-floor-")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
