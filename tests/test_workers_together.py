"""Several workers on one database (F70, F72): rules that must hold across processes."""

from __future__ import annotations

import signal
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select
from test_ingest_support import build_mail, make_desk, send, start_worker_process
from test_ingest_support import deliver as deliver_mail

from tui_helpdesk.db.models import OutboxJob
from tui_helpdesk.services import assignment, autoresponder

SENDERS = [f"customer{n}@customer.test" for n in range(6)]
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
