"""The check of each inbound message as a durable job (F75), the outbox's way (services/outbox/).

Ingest queues one `message_auth` row per received mail in the transaction that stores it, with
what only the SMTP session knew (the client's address, its HELO, MAIL FROM); the 250 waits for
nothing more. A worker's checker (tui_helpdesk/worker/auth_checker.py) then:

1. claims due rows under a lease (SKIP LOCKED on PostgreSQL, the write lock on SQLite), the
   attempt counted at the claim so a check that kills its worker still ends;
2. computes SPF, DKIM and DMARC outside any transaction (message.check_message);
3. stores the results and the warning (`record`). A result that is temperror anywhere (the DNS
   did not answer) is stored and tried again with a doubling wait, until
   `inbound_auth.max_attempts`; then it stays, saying it could not be checked.

A dead resolver therefore changes nothing but the results: mail is accepted, stored, listed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, exists, func, or_, select, update
from sqlalchemy.orm import Session

from tui_helpdesk.config import Settings
from tui_helpdesk.db.models import Contact, Conversation, EmailDomain, Message, MessageAuth
from tui_helpdesk.records import MessageAuthRecord, to_jsonable
from tui_helpdesk.services import changes
from tui_helpdesk.services.inbound_auth.sender_warning import (
    KnownSenders,
    SenderVerdict,
    known_senders,
    warning_for,
)

WAITING = ("queued", "retrying")
LEASE_SECONDS = 300.0
CONTACTS_MAX_AGE_SECONDS = 30.0


def queued(
    message_id: int | None, peer_ip: str, helo: str, mail_from: str, received_at: datetime
) -> dict[str, Any]:
    """The row ingest inserts with a received mail: the envelope only (the rest is defaults)."""
    return {
        "message_id": message_id, "peer_ip": peer_ip[:64], "helo": helo, "mail_from": mail_from,
        "next_attempt_at": received_at,
    }  # fmt: skip


@dataclass(frozen=True)
class AuthJob:
    """One claimed check: the stored bytes and the envelope as the SMTP session saw it."""

    message_id: int
    organisation_id: int
    attempts: int  # this attempt included
    received_at: datetime
    from_name: str
    peer_ip: str
    helo: str
    mail_from: str
    raw: bytes = field(repr=False)


def _due(now: datetime) -> ColumnElement[bool]:
    jobs = MessageAuth.__table__.c
    return or_(
        and_(jobs.status.in_(WAITING), jobs.next_attempt_at <= now),
        and_(jobs.status == "checking", jobs.lease_until < now),
    )


def any_due(session: Session, now: datetime) -> bool:
    """A read that takes no write lock: an idle checker asks this before it claims."""
    return bool(session.scalar(select(exists().where(_due(now)))))


def mail_arriving(session: Session, now: datetime, *, quiet: float, longest: float) -> bool:
    """Mail is coming in (a check was queued less than `quiet` seconds ago) and none has
    waited `longest` seconds yet: a checker that yields to ingest waits for the burst's end."""
    jobs = MessageAuth.__table__.c
    newest, oldest = session.execute(
        select(func.max(jobs.next_attempt_at), func.min(jobs.next_attempt_at)).where(
            jobs.status == "queued"
        )
    ).one()
    if newest is None or oldest is None:
        return False
    return bool(
        newest > now - timedelta(seconds=quiet) and oldest > now - timedelta(seconds=longest)
    )


def claim(
    session: Session,
    *,
    claimer: str,
    now: datetime,
    limit: int,
    lease_seconds: float = LEASE_SECONDS,
) -> list[int]:
    """Take up to `limit` due checks for `claimer` (oldest due first) until the lease ends.

    Only marks them: the write transaction stays as short as can be (on SQLite it holds the
    lock ingest commits with); `load` reads what the checks need afterwards."""
    jobs = MessageAuth.__table__.c
    ids = list(
        session.scalars(
            select(jobs.message_id)
            .where(_due(now))
            .order_by(jobs.next_attempt_at, jobs.message_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return []
    session.execute(
        update(MessageAuth.__table__)
        .where(jobs.message_id.in_(ids))
        .values(
            status="checking",
            claimed_by=claimer,
            lease_until=now + timedelta(seconds=lease_seconds),
            attempts=jobs.attempts + 1,
        )
    )
    return ids


def load(session: Session, *, claimer: str, ids: Sequence[int]) -> list[AuthJob]:
    """The claimed checks with their stored bytes and envelope (a read, after the claim)."""
    if not ids:
        return []
    jobs = MessageAuth.__table__.c
    rows = session.execute(
        select(
            jobs.message_id,
            Conversation.organisation_id,
            jobs.attempts,
            Message.received_at,
            Message.from_name,
            jobs.peer_ip,
            jobs.helo,
            jobs.mail_from,
            Message.raw,
        )
        .join(Message, Message.id == jobs.message_id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(jobs.message_id.in_(list(ids)), jobs.claimed_by == claimer)
        .order_by(jobs.next_attempt_at, jobs.message_id)
    )
    return [AuthJob(*row[:8], raw=row.raw or b"") for row in rows]


def release(session: Session, *, claimer: str, ids: Sequence[int]) -> None:
    """Give back checks claimed but never run (a stopping worker), as if never claimed."""
    if not ids:
        return
    jobs = MessageAuth.__table__.c
    session.execute(
        update(MessageAuth.__table__)
        .where(
            jobs.message_id.in_(list(ids)), jobs.claimed_by == claimer, jobs.status == "checking"
        )
        .values(status="queued", lease_until=None, attempts=jobs.attempts - 1)
    )


def needs_retry(result: MessageAuthRecord) -> bool:
    """The DNS failed somewhere: another attempt may change the verdict."""
    return "temperror" in (
        result.spf.result,
        result.dmarc.result,
        *(signature.result for signature in result.dkim),
    )


def retry_wait(settings: Settings, attempts: int) -> timedelta:
    """backoff_base_seconds before the 2nd check, doubled before each next one."""
    return timedelta(seconds=settings.inbound_auth.backoff_base_seconds * 2 ** max(attempts - 1, 0))


class SenderIndexes:
    """Each organisation's domains and contacts, indexed for the warning rules (one per
    checker). The index is read again after CONTACTS_MAX_AGE_SECONDS; the senders of each
    batch are read every time, so whether a sender is a known contact is never stale."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[datetime, KnownSenders]] = {}

    def of(
        self, session: Session, organisation_id: int, senders: Collection[str], now: datetime
    ) -> KnownSenders:
        cached = self._cache.get(organisation_id)
        if cached is None or abs((now - cached[0]).total_seconds()) > CONTACTS_MAX_AGE_SECONDS:
            domains = session.scalars(
                select(EmailDomain.domain).where(EmailDomain.organisation_id == organisation_id)
            )
            contacts = session.execute(
                select(Contact.email, Contact.name, Contact.created_at).where(
                    Contact.organisation_id == organisation_id
                )
            )
            cached = (now, known_senders(list(domains), [tuple(row) for row in contacts]))
            self._cache[organisation_id] = cached
        index = cached[1]
        fresh = {
            email.lower(): (name, created)
            for email, name, created in session.execute(
                select(Contact.email, Contact.name, Contact.created_at).where(
                    Contact.organisation_id == organisation_id, Contact.email.in_(list(senders))
                )
            )
        }
        if not fresh:
            return index
        return dataclasses.replace(index, contacts={**index.contacts, **fresh})


_BY_CLAIM = MessageAuth.__table__.c


def record(
    session: Session,
    settings: Settings,
    results: Mapping[int, tuple[AuthJob, MessageAuthRecord]],
    *,
    known: SenderIndexes,
    claimer: str,
    now: datetime,
) -> None:
    """Store each check's results and warning (one UPDATE for all); a temperror is tried
    again while attempts last."""
    if not results:
        return
    indexes: dict[int, KnownSenders] = {}
    for organisation_id in {job.organisation_id for job, _ in results.values()}:
        senders = {r.from_address.lower() for j, r in results.values()
                   if j.organisation_id == organisation_id and r.from_address}  # fmt: skip
        indexes[organisation_id] = known.of(session, organisation_id, senders, now)
    rows = []
    for job, result in results.values():
        verdict = warning_for(result, job.from_name, indexes[job.organisation_id], job.received_at)
        retry = needs_retry(result) and job.attempts < settings.inbound_auth.max_attempts
        values = _result_values(result, verdict)
        if retry:
            values["explanation"] += (
                f" (the DNS did not answer; checking again, attempt {job.attempts + 1} of "
                f"{settings.inbound_auth.max_attempts})"
            )
        rows.append({
            **values, "b_message_id": job.message_id, "b_claimer": claimer,
            "status": "retrying" if retry else "done",
            "next_attempt_at": now + retry_wait(settings, job.attempts),
            "lease_until": None, "checked_at": now,
        })  # fmt: skip
    session.execute(_UPDATE_RESULTS, rows)
    changes.notify(session)


_UPDATE_RESULTS = (
    update(MessageAuth.__table__)
    .where(_BY_CLAIM.message_id == bindparam("b_message_id"))
    .where(_BY_CLAIM.claimed_by == bindparam("b_claimer"))
)


def _result_values(result: MessageAuthRecord, verdict: SenderVerdict) -> dict[str, Any]:
    return {
        "spf": result.spf.result,
        "dkim": dkim_summary(result),
        "dmarc": result.dmarc.result,
        "from_domain": result.from_domain[:253],
        "spf_domain": result.spf.domain[:253],
        "dkim_domains": ",".join(dict.fromkeys(s.domain for s in result.dkim)),
        "details": to_jsonable(result),
        "explanation": explanation(result),
        "warning": verdict.level or "none",
        "warning_reason": "; ".join(verdict.reasons),
    }


def dkim_summary(result: MessageAuthRecord) -> str:
    """One word for every signature: pass when one passed, else the first failure's."""
    found = [signature.result for signature in result.dkim]
    if not found:
        return "none"
    for wanted in ("pass", "fail", "temperror", "permerror"):
        if wanted in found:
            return wanted
    return found[0]


def explanation(result: MessageAuthRecord) -> str:
    """What a person reads: the DMARC verdict (which names each step), then what was ignored."""
    parts = [result.dmarc.explanation or result.spf.explanation]
    parts += list(result.ignored_headers)
    return "; ".join(part for part in parts if part)
