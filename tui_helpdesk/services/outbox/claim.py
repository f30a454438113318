"""Claiming due jobs (F73): a job is taken by one sender before it is sent.

A claim marks the job `sending` with the claimer's name and a lease, in one short
transaction: on PostgreSQL `SELECT … FOR UPDATE SKIP LOCKED` lets two workers claim side by
side without ever taking the same row; on SQLite the write transaction (BEGIN IMMEDIATE)
serialises claims. A job whose lease ran out (its worker died) is due again, and the next
claim takes it over. The attempt is counted at the claim, so a job that kills its worker
still comes to an end.

What the sender needs to send comes back with the claim: the bytes, the envelope, and where
to send it (the mailbox's own server or the platform relay; a webhook's URL and secret).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, case, exists, or_, select, union_all, update
from sqlalchemy.orm import Session

from tui_helpdesk.config import Settings
from tui_helpdesk.db.models import MailboxTransport, MailboxWebhook, OutboxJob

WAITING = ("queued", "retrying")


@dataclass(frozen=True)
class ClaimedJob:
    """One job as its sender sees it. Secrets stay out of every repr."""

    id: int
    kind: str
    conversation_id: int | None
    attempts: int  # this attempt included
    queued_at: datetime
    raw: bytes = field(repr=False)
    mail_from: str = ""
    rcpt_to: tuple[str, ...] = ()
    # SMTP jobs: the server to use
    host: str = ""
    port: int = 0
    security: str = "none"
    username: str = ""
    password: str = field(default="", repr=False)
    # webhook jobs
    url: str = ""
    event: str = ""
    delivery_id: str = ""
    secret: str = field(default="", repr=False)  # "" when the webhook was turned off

    @property
    def is_webhook(self) -> bool:
        return self.kind == "webhook"


def _due(now: datetime) -> ColumnElement[bool]:
    jobs = OutboxJob.__table__.c
    return or_(
        and_(jobs.status.in_(WAITING), jobs.next_attempt_at <= now),
        and_(jobs.status == "sending", jobs.lease_until < now),
    )


def any_due(session: Session, now: datetime) -> bool:
    """A read that takes no write lock: an idle sender asks this before it claims."""
    return bool(session.scalar(select(exists().where(_due(now)))))


def claim(
    session: Session,
    settings: Settings,
    *,
    claimer: str,
    now: datetime,
    limit: int,
) -> list[ClaimedJob]:
    """Take up to `limit` due jobs for `claimer` (oldest due first) until now + the lease."""
    jobs = OutboxJob.__table__.c
    if session.get_bind().dialect.name == "sqlite":
        ids = list(session.scalars(_oldest_due_sqlite(now, limit)))
    else:
        ids = list(
            session.scalars(
                select(jobs.id)
                .where(_due(now))
                .order_by(jobs.next_attempt_at, jobs.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
    if not ids:
        return []
    lease_until = now + timedelta(seconds=settings.outbox.lease_seconds)
    session.execute(
        update(OutboxJob.__table__)
        .where(jobs.id.in_(ids))
        .values(
            status="sending",
            claimed_by=claimer,
            lease_until=lease_until,
            last_attempt_at=now,
            attempts=jobs.attempts + 1,
        )
    )
    return _load(session, settings, ids)


def _oldest_due_sqlite(now: datetime, limit: int) -> Select[tuple[int]]:
    """The same jobs as _due's, oldest first, without sorting every due job: SQLite answers
    an OR of two statuses by collecting and sorting all of them at each claim (a backlog of
    100,000 sorted for every 50 claimed), but reads each status alone in the order of
    ix_outbox_jobs_due (status, next_attempt_at, id). So: the first `limit` of each, merged.
    (PostgreSQL keeps the plain query: it needs FOR UPDATE SKIP LOCKED, and its top-N sort
    does not hold the writers' lock.)"""
    jobs = OutboxJob.__table__.c
    waiting = [jobs.status == status for status in WAITING]
    branches = [
        select(jobs.id, jobs.next_attempt_at)
        .where(status, jobs.next_attempt_at <= now)
        .order_by(jobs.next_attempt_at, jobs.id)
        .limit(limit)
        .subquery()
        for status in waiting
    ]
    taken_over = (
        select(jobs.id, jobs.next_attempt_at)
        .where(jobs.status == "sending", jobs.lease_until < now)
        .order_by(jobs.next_attempt_at, jobs.id)
        .limit(limit)
        .subquery()
    )
    merged = union_all(*(select(b.c.id, b.c.next_attempt_at) for b in (*branches, taken_over)))
    due = merged.subquery()
    return select(due.c.id).order_by(due.c.next_attempt_at, due.c.id).limit(limit)


def _load(session: Session, settings: Settings, ids: Sequence[int]) -> list[ClaimedJob]:
    jobs = OutboxJob.__table__.c
    transports = MailboxTransport.__table__.c
    hooks = MailboxWebhook.__table__.c
    rows = session.execute(
        select(
            jobs.id,
            jobs.kind,
            jobs.conversation_id,
            jobs.attempts,
            jobs.queued_at,
            jobs.raw,
            jobs.mail_from,
            jobs.rcpt_to,
            jobs.url,
            jobs.event,
            jobs.delivery_id,
            transports.host,
            transports.port,
            transports.security,
            transports.username,
            transports.password,
            hooks.secret,
        )
        .outerjoin(MailboxTransport.__table__, transports.mailbox_id == jobs.mailbox_id)
        .outerjoin(MailboxWebhook.__table__, hooks.mailbox_id == jobs.mailbox_id)
        .where(jobs.id.in_(ids))
        .order_by(jobs.next_attempt_at, jobs.id)
    )
    relay = settings.outbound
    claimed = []
    for row in rows:
        own = row.host is not None
        claimed.append(
            ClaimedJob(
                id=row.id,
                kind=row.kind,
                conversation_id=row.conversation_id,
                attempts=row.attempts,
                queued_at=row.queued_at,
                raw=row.raw or b"",
                mail_from=row.mail_from,
                rcpt_to=tuple(row.rcpt_to or ()),
                host=row.host if own else relay.relay_host,
                port=row.port if own else relay.relay_port,
                security=row.security if own else relay.security,
                username=row.username if own else relay.username,
                password=row.password if own else relay.password,
                url=row.url,
                event=row.event,
                delivery_id=row.delivery_id,
                secret=row.secret or "",
            )
        )
    return claimed


def renew(
    session: Session, settings: Settings, *, claimer: str, ids: Sequence[int], now: datetime
) -> None:
    """Extend the lease of the jobs the claimer still holds, so nobody takes them over."""
    if not ids:
        return
    jobs = OutboxJob.__table__.c
    session.execute(
        update(OutboxJob.__table__)
        .where(jobs.id.in_(list(ids)), jobs.claimed_by == claimer, jobs.status == "sending")
        .values(lease_until=now + timedelta(seconds=settings.outbox.lease_seconds))
    )


def release(session: Session, *, claimer: str, ids: Sequence[int]) -> None:
    """Give back jobs claimed but never tried (a stopping worker), as if never claimed."""
    if not ids:
        return
    jobs = OutboxJob.__table__.c
    session.execute(
        update(OutboxJob.__table__)
        .where(jobs.id.in_(list(ids)), jobs.claimed_by == claimer, jobs.status == "sending")
        .values(
            status=case((jobs.attempts > 1, "retrying"), else_="queued"),
            lease_until=None,
            attempts=jobs.attempts - 1,
        )
    )
