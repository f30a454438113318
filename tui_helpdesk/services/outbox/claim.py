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
from functools import cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Row,
    Select,
    and_,
    bindparam,
    case,
    exists,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningUpdate

from tui_helpdesk.config import Settings
from tui_helpdesk.db.models import (
    Mailbox,
    MailboxTransport,
    MailboxWebhook,
    OutboxBody,
    OutboxJob,
)

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


def _due(now: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
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
    """Take up to `limit` due jobs for `claimer` (oldest due first) until now + the lease.

    One statement picks, marks and returns the jobs, a second reads where their mailboxes
    send, a third their bytes (kept apart in outbox_bodies, so that marking a job rewrites a
    small row): a sender claims between messages, on its loop's thread, so what a claim
    costs is paid by every job (bench/outbox.py)."""
    lease_until = now + timedelta(seconds=settings.outbox.lease_seconds)
    statement = _claim_statement(session.get_bind().dialect.name)
    params = {"now": now, "limit": limit, "claimer": claimer, "lease_until": lease_until}
    rows = session.execute(statement, params).all()
    if not rows:
        return []
    rows.sort(key=lambda row: (row.next_attempt_at, row.id))  # RETURNING keeps no order
    servers = _servers(session, {row.mailbox_id for row in rows})
    bodies = _bodies(session, [row.id for row in rows])
    return [_claimed(row, bodies.get(row.id), servers.get(row.mailbox_id), settings)
            for row in rows]  # fmt: skip


@cache
def _claim_statement(dialect: str) -> ReturningUpdate[Any]:
    """UPDATE … RETURNING of the oldest due jobs, built once: its parameters are bound at
    each claim (now, limit, claimer, lease_until)."""
    jobs = OutboxJob.__table__.c
    now = bindparam("now", type_=jobs.next_attempt_at.type)
    limit = bindparam("limit", type_=Integer())
    if dialect == "sqlite":
        picked = _oldest_due_sqlite(now, limit)
    else:
        picked = (
            select(jobs.id)
            .where(_due(now))
            .order_by(jobs.next_attempt_at, jobs.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    return (
        update(OutboxJob.__table__)
        .where(jobs.id.in_(picked.scalar_subquery()))
        .values(
            status="sending",
            claimed_by=bindparam("claimer"),
            lease_until=bindparam("lease_until", type_=jobs.lease_until.type),
            last_attempt_at=now,
            attempts=jobs.attempts + 1,
        )
        .returning(*_CLAIMED)
    )


def _oldest_due_sqlite(
    now: BindParameter[datetime], limit: BindParameter[int]
) -> Select[tuple[int]]:
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


_JOBS = OutboxJob.__table__.c
_CLAIMED = (
    _JOBS.id, _JOBS.kind, _JOBS.conversation_id, _JOBS.attempts, _JOBS.queued_at,
    _JOBS.next_attempt_at, _JOBS.mail_from, _JOBS.rcpt_to, _JOBS.url, _JOBS.event,
    _JOBS.delivery_id, _JOBS.mailbox_id,
)  # fmt: skip


def _servers(session: Session, mailbox_ids: set[int | None]) -> dict[int, Row[Any]]:
    """mailbox id → its own SMTP server (host None: the relay) and its webhook's secret."""
    transports = MailboxTransport.__table__.c
    hooks = MailboxWebhook.__table__.c
    mailboxes = Mailbox.__table__.c
    rows = session.execute(
        select(
            mailboxes.id,
            transports.host,
            transports.port,
            transports.security,
            transports.username,
            transports.password,
            hooks.secret,
        )
        .outerjoin(MailboxTransport.__table__, transports.mailbox_id == mailboxes.id)
        .outerjoin(MailboxWebhook.__table__, hooks.mailbox_id == mailboxes.id)
        .where(mailboxes.id.in_([i for i in mailbox_ids if i is not None]))
    )
    return {row.id: row for row in rows.all()}


def _bodies(session: Session, ids: list[int]) -> dict[int, bytes]:
    bodies = OutboxBody.__table__.c
    found = session.execute(select(bodies.job_id, bodies.raw).where(bodies.job_id.in_(ids)))
    return dict(found.all())


def _claimed(
    job: Row[Any], raw: bytes | None, server: Row[Any] | None, settings: Settings
) -> ClaimedJob:
    own = server is not None and server.host is not None
    relay = settings.outbound
    return ClaimedJob(
        id=job.id,
        kind=job.kind,
        conversation_id=job.conversation_id,
        attempts=job.attempts,
        queued_at=job.queued_at,
        raw=raw or b"",
        mail_from=job.mail_from,
        rcpt_to=tuple(job.rcpt_to or ()),
        host=server.host if own else relay.relay_host,
        port=server.port if own else relay.relay_port,
        security=server.security if own else relay.security,
        username=server.username if own else relay.username,
        password=server.password if own else relay.password,
        url=job.url,
        event=job.event,
        delivery_id=job.delivery_id,
        secret=(server.secret if server is not None else None) or "",
    )


def renew(
    session: Session, settings: Settings, *, claimer: str, ids: Sequence[int], now: datetime
) -> None:
    """Extend the lease of the jobs the claimer still holds, so nobody takes them over.

    On PostgreSQL rows locked by someone else are left alone (SKIP LOCKED): the one writer
    that locks a held job is the claimer's own sender recording its result, which ends the
    lease anyway, and waiting for it could deadlock with that group of results (they lock
    their rows in another order)."""
    if not ids:
        return
    jobs = OutboxJob.__table__.c
    held = and_(jobs.id.in_(list(ids)), jobs.claimed_by == claimer, jobs.status == "sending")
    if session.get_bind().dialect.name != "sqlite":
        held = jobs.id.in_(select(jobs.id).where(held).with_for_update(skip_locked=True))
    session.execute(
        update(OutboxJob.__table__)
        .where(held)
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
