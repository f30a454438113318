"""Real `tui-helpdesk worker` processes sending one outbox (F73): two workers never send a job
twice, and a worker killed mid-batch leaves at most one duplicate behind (see README,
"Sending")."""

from __future__ import annotations

import signal
from datetime import UTC, datetime

from test_ingest_support import make_desk, start_worker_process
from test_outbox_support import CaptureServer, queue_replies, statuses, wait_for

from tui_helpdesk.db.engine import Database

NOW = datetime.now(UTC)  # the workers run on the real clock


def _worker(db_url: str, port: int, **extra: str):  # type: ignore[no-untyped-def]
    process, _ = start_worker_process(
        db_url, TUI_HELPDESK_OUTBOUND_RELAY_HOST="127.0.0.1",
        TUI_HELPDESK_OUTBOUND_RELAY_PORT=str(port),
        TUI_HELPDESK_OUTBOX_POLL_INTERVAL_SECONDS="0.05", TUI_HELPDESK_OUTBOX_BATCH_SIZE="20",
        **extra,
    )  # fmt: skip
    return process


def _stop(*processes) -> None:  # type: ignore[no-untyped-def]
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(60)


def test_two_workers_deliver_each_of_200_jobs_once(db: Database, settings, db_url) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    with CaptureServer(pause=0.005) as server:
        workers = [_worker(db_url, server.port), _worker(db_url, server.port)]
        try:  # queued in one commit once both listen, so both find work
            made = queue_replies(db, desk.org.admin, "support@acme.test", 200, not_before=NOW)
            wait_for(lambda: statuses(db) == {"sent": 200}, timeout=120, what="200 jobs sent")
        finally:
            _stop(*workers)
    assert server.message_ids() == {message_id: 1 for _, message_id in made}
    with db.read() as session:
        from sqlalchemy import text

        senders = session.execute(text("SELECT DISTINCT claimed_by FROM outbox_jobs")).all()
    assert len(senders) == 2  # both took part


def test_a_worker_killed_mid_batch_leaves_at_most_one_duplicate_per_kill(
    db: Database, settings, db_url
) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    made = queue_replies(db, desk.org.admin, "support@acme.test", 150, not_before=NOW)
    lease = {"TUI_HELPDESK_OUTBOX_LEASE_SECONDS": "2"}  # the dead worker's claim runs out fast
    kills = 0
    with CaptureServer(pause=0.01) as server:
        for reached in (30, 80):
            worker = _worker(db_url, server.port, **lease)
            wait_for(lambda n=reached: len(server.received) >= n, timeout=120, what="progress")
            worker.send_signal(signal.SIGKILL)
            worker.wait(30)
            kills += 1
        last = _worker(db_url, server.port, **lease)
        try:
            wait_for(lambda: statuses(db) == {"sent": 150}, timeout=120, what="every job sent")
        finally:
            _stop(last)
    delivered = server.message_ids()
    assert set(delivered) == {message_id for _, message_id in made}
    duplicates = sum(count - 1 for count in delivered.values())
    assert duplicates <= kills, delivered.most_common(3)
