"""Several workers on one database (F70, F72): rules that must hold across processes."""

from __future__ import annotations

import re
import signal
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from factories import add_user
from sqlalchemy import select
from test_ingest_support import build_mail, make_desk, send, start_worker_process
from test_ingest_support import deliver as deliver_mail

from tui_helpdesk.db.models import Contact, Conversation, Message, OutboxJob
from tui_helpdesk.services import assignment, autoresponder, queues

SENDERS = [f"customer{n}@customer.test" for n in range(6)]
CONVERSATIONS = 24  # per mailbox: support (round robin) and sales (least busy)
MAILS_EACH = 8


def test_two_workers_answer_each_sender_once(db, settings, db_url) -> None:  # type: ignore[no-untyped-def]
    """The same senders' mail reaching both workers at once: one auto-reply per sender."""
    desk = make_desk(db, settings)
    for sender in SENDERS:  # known customers: no new contact row to collide on
        deliver_mail(db, settings, build_mail(sender=sender), desk.support.alias, mail_from=sender)
    with db.write() as session:
        autoresponder.configure(
            session, desk.org.admin, desk.support.email_address, enabled=True, body="Got it."
        )
        # manual assignment takes no queue lock: nothing else serialises the two workers
        assignment.set_assignment(session, desk.org.admin, "Support", rule="manual", sticky_days=0)
    workers = [start_worker_process(db_url), start_worker_process(db_url)]
    mails = [(s, build_mail(sender=s, subject=f"question {i}")) for i in range(MAILS_EACH)
             for s in SENDERS]  # fmt: skip
    start = threading.Barrier(len(mails))

    def deliver(n: int) -> int:
        sender, raw = mails[n]
        start.wait(30)  # every session sends at the same moment
        _, address = workers[(n // len(SENDERS)) % 2]  # each sender's mail goes to both
        for _ in range(5):  # a 451 under contention is fine: the sender tries again, as MTAs do
            code = send(*address, raw, [desk.support.alias], mail_from=sender)[0]
            if code != 451:
                return code
        return code

    try:
        with ThreadPoolExecutor(len(mails)) as pool:
            codes = list(pool.map(deliver, range(len(mails))))
        assert codes == [250] * len(mails)
    finally:
        for process, _ in workers:
            process.send_signal(signal.SIGTERM)
        for process, _ in workers:
            process.wait(60)
    with db.read() as session:
        jobs = session.scalars(select(OutboxJob).where(OutboxJob.kind == "auto_reply")).all()
    answered = Counter(rcpt for job in jobs for rcpt in job.rcpt_to)
    assert answered == Counter(dict.fromkeys(SENDERS, 1))


def _message_id(raw: bytes) -> str:
    [found] = re.findall(rb"^Message-ID: (<[^>]+>)", raw, re.M)
    return found.decode()


def _send_until_stored(address: tuple[str, int], raw: bytes, rcpt: str, sender: str) -> int:
    for _ in range(5):  # a 451 under contention is fine: the sender tries again, as MTAs do
        code = send(*address, raw, [rcpt], mail_from=sender)[0]
        if code != 451:
            return code
    return code


def _race(workers, mails: list[tuple[bytes, str, str]]) -> None:  # type: ignore[no-untyped-def]
    """Every mail to BOTH workers at the same moment, as a retrying MTA's second MX would."""
    jobs = [(address, raw, rcpt, sender) for raw, rcpt, sender in mails
            for _, address in workers]  # fmt: skip
    start = threading.Barrier(8)

    def deliver(n: int) -> int:
        if n < 8:
            start.wait(30)
        return _send_until_stored(*jobs[n])

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(deliver, range(len(jobs)))) == {250}


def test_raced_copies_are_stored_once_threaded_and_assigned_once(db, settings, db_url) -> None:  # type: ignore[no-untyped-def]
    """The same mail reaching two workers at once is stored once; its reply, raced as well,
    joins its conversation; every conversation is assigned, and the rules share work evenly."""
    desk = make_desk(db, settings)
    add_user(db, desk.org.admin, "carol@acme.test")
    with db.write() as session:
        for queue, rule in (("Support", "round_robin"), ("Sales", "least_busy")):
            assignment.set_assignment(session, desk.org.admin, queue, rule=rule, sticky_days=0)

    with db.write() as session:
        queues.add_member(session, desk.org.admin, "Support", "carol@acme.test", "agent")
        for email in ("bob@acme.test", "carol@acme.test"):
            queues.add_member(session, desk.org.admin, "Sales", email, "agent")
    boxes = [desk.support.alias, desk.sales.alias]
    originals = [
        (build_mail(subject=f"Case {n}", sender=f"new{n}@customer.test"), boxes[n % 2],
         f"new{n}@customer.test")
        for n in range(2 * CONVERSATIONS)
    ]  # fmt: skip
    workers = [start_worker_process(db_url), start_worker_process(db_url)]
    try:
        _race(workers, originals)
        replies = [
            (build_mail(subject="Re: more", sender=sender, in_reply_to=_message_id(raw),
                        references=[_message_id(raw)]), rcpt, sender)
            for raw, rcpt, sender in originals
        ]  # fmt: skip
        _race(workers, replies)
    finally:
        for process, _ in workers:
            process.send_signal(signal.SIGTERM)
        for process, _ in workers:
            process.wait(60)
    with db.read() as session:
        conversations = session.scalars(select(Conversation)).all()
        messages = session.scalars(select(Message)).all()
        contacts = session.scalars(select(Contact.email)).all()
    assert len(conversations) == 2 * CONVERSATIONS
    assert len(messages) == 4 * CONVERSATIONS and all(not m.processing_error for m in messages)
    assert Counter(m.conversation_id for m in messages) == Counter({c.id: 2 for c in conversations})
    assert sorted(contacts) == sorted({sender for _, _, sender in originals})
    assert all(c.assignee_id is not None for c in conversations)
    for queue_id in (desk.support_queue.id, desk.sales_queue.id):
        shares = Counter(c.assignee_id for c in conversations if c.queue_id == queue_id)
        assert len(shares) == 2 and max(shares.values()) - min(shares.values()) <= 1, shares
