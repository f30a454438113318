"""F76: the health of the mail workers, as the database knows it (so a worker in another
process or on another host shows too): their status rows, mail accepted lately, the outbox,
and the mail stored with a processing error.

A worker writes its row every few seconds (worker/runtime.py, HEARTBEAT_SECONDS); a row whose
heartbeat is older than STALE_SECONDS belongs to a worker that is down (stopped, crashed or
cut off from the database). Each row carries the worker's own mail accepted in the last
minute and hour (as of its last heartbeat); the overview's totals count the inbound mail of
the organisation stored in that time, whichever worker took it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Mailbox, Message, OutboxJob, WorkerStatus
from tui_helpdesk.records import UserRecord, WorkerOverviewRecord, WorkerRecord
from tui_helpdesk.services import failures
from tui_helpdesk.services.permissions import require_admin

STALE_SECONDS = 30.0  # six missed beats of 5 s
RECENT_ERRORS = 5
FAILED_SHOWN = 200


def overview(
    session: Session, actor: UserRecord | None, *, now: datetime | None = None
) -> WorkerOverviewRecord:
    """Workers (newest heartbeat first), recent intake, the outbox, the failed mail (admins)."""
    admin = require_admin(actor)
    now = now or datetime.now(UTC)
    workers = tuple(
        _worker(row, now)
        for row in session.scalars(
            select(WorkerStatus).order_by(WorkerStatus.heartbeat_at.desc(), WorkerStatus.name)
        )
    )
    org = admin.organisation_id

    def accepted_since(moment: datetime) -> int:
        query = (
            select(func.count(Message.id))
            .join(Mailbox, Mailbox.id == Message.mailbox_id)
            .where(
                Mailbox.organisation_id == org,
                Message.direction == "inbound",
                Message.received_at >= moment,
            )
        )
        return session.scalar(query) or 0

    outbox = _pairs(
        session.execute(
            select(OutboxJob.status, func.count(OutboxJob.id))
            .where(OutboxJob.organisation_id == org, OutboxJob.status.in_(("queued", "failed",
                                                                             "retrying")))
            .group_by(OutboxJob.status)
        )
    )  # fmt: skip
    errors = session.scalars(
        select(OutboxJob.last_error)
        .where(
            OutboxJob.organisation_id == org,
            OutboxJob.status.in_(("failed", "retrying")),
            OutboxJob.last_error != "",
        )
        .order_by(OutboxJob.updated_at.desc(), OutboxJob.id.desc())
        .limit(RECENT_ERRORS)
    )
    return WorkerOverviewRecord(
        workers=workers,
        accepted_last_minute=accepted_since(now - timedelta(minutes=1)),
        accepted_last_hour=accepted_since(now - timedelta(hours=1)),
        outbox_queued=outbox.get("queued", 0) + outbox.get("retrying", 0),
        outbox_failed=outbox.get("failed", 0),
        outbox_errors=tuple(errors),
        failed_messages=tuple(failures.list_failed(session, admin, limit=FAILED_SHOWN)),
    )


def _worker(row: WorkerStatus, now: datetime) -> WorkerRecord:
    age = max(0.0, (now - row.heartbeat_at).total_seconds())
    return WorkerRecord(
        name=row.name,
        pid=row.pid,
        address=row.smtp_address,
        started_at=row.started_at,
        heartbeat_at=row.heartbeat_at,
        heartbeat_age_seconds=age,
        up=age <= STALE_SECONDS,
        accepted_total=row.accepted_count,
        accepted_last_minute=row.accepted_last_minute,
        accepted_last_hour=row.accepted_last_hour,
        errors_total=row.error_count,
        last_accepted_at=row.last_accepted_at,
        last_error=row.last_error,
    )


def _pairs(rows: Any) -> dict[Any, int]:
    """{key: count} from (key, count) rows (a Result has keys(), so dict() would misread it)."""
    return {key: count for key, count in rows}
