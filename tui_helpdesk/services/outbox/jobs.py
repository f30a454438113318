"""The outbox as people see it (F73, F81): the list of jobs, a failed job sent again, and the
delivery state each of our messages shows in its conversation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Mailbox, OutboxJob
from tui_helpdesk.errors import Conflict, Invalid, NotFound
from tui_helpdesk.records import OutboxJobRecord, UserRecord, to_jsonable
from tui_helpdesk.services import audit, changes
from tui_helpdesk.services.permissions import require_admin
from tui_helpdesk.services.vocabulary import OUTBOX_STATUSES

LIST_LIMIT = 100


def _record(job: OutboxJob, mailbox: str | None) -> OutboxJobRecord:
    return OutboxJobRecord(
        id=job.id, kind=job.kind, status=job.status, mailbox=mailbox,
        recipients=(job.url,) if job.kind == "webhook" else tuple(job.rcpt_to or ()),
        conversation_id=job.conversation_id, attempts=job.attempts,
        next_attempt_at=job.next_attempt_at, last_error=job.last_error,
        claimed_by=job.claimed_by, event=job.event, created_at=job.created_at,
        sent_at=job.sent_at,
    )  # fmt: skip


def list_jobs(
    session: Session,
    actor: UserRecord | None,
    *,
    status: str | None = None,
    limit: int | None = LIST_LIMIT,
) -> list[OutboxJobRecord]:
    """The organisation's jobs, newest first; admins only (recipients of every mailbox)."""
    actor = require_admin(actor)
    if status is not None and status not in OUTBOX_STATUSES:
        raise Invalid(
            f"status must be one of {', '.join(OUTBOX_STATUSES)}, got {status!r}", field="status"
        )
    query = (
        select(OutboxJob, Mailbox.email_address)
        .outerjoin(Mailbox, Mailbox.id == OutboxJob.mailbox_id)
        .where(OutboxJob.organisation_id == actor.organisation_id)
        .order_by(OutboxJob.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(OutboxJob.status == status)
    return [_record(job, address) for job, address in session.execute(query)]


def retry_job(
    session: Session, actor: UserRecord | None, job_id: int, *, now: datetime
) -> OutboxJobRecord:
    """A failed job queued again, with a fresh count of attempts and age (audited)."""
    actor = require_admin(actor)
    job = session.get(OutboxJob, job_id, with_for_update=True)
    if job is None or job.organisation_id != actor.organisation_id:
        raise NotFound(f"no outbox job {job_id}", field="id")
    mailbox = session.get(Mailbox, job.mailbox_id) if job.mailbox_id else None
    address = mailbox.email_address if mailbox else None
    if job.status != "failed":
        raise Conflict(
            f"outbox job {job_id} is {job.status}; only a failed job can be retried", field="id"
        )
    before = _record(job, address)
    job.status, job.attempts, job.last_error = "queued", 0, ""
    job.next_attempt_at = job.queued_at = now
    job.lease_until, job.claimed_by = None, ""
    session.flush()
    after = _record(job, address)
    audit.record(
        session, actor, "outbox.retry", "outbox_job", job.id,
        organisation_id=job.organisation_id, before=to_jsonable(before), after=to_jsonable(after),
    )  # fmt: skip
    changes.notify(session)
    return after


def delivery_states(session: Session, message_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """message id → (status, last error) of the newest job sending that message."""
    if not message_ids:
        return {}
    newest = (
        select(func.max(OutboxJob.id))
        .where(OutboxJob.message_id.in_(list(message_ids)))
        .group_by(OutboxJob.message_id)
    )
    rows = session.execute(
        select(OutboxJob.message_id, OutboxJob.status, OutboxJob.last_error).where(
            OutboxJob.id.in_(newest)
        )
    )
    return {message_id: (status, error) for message_id, status, error in rows}
