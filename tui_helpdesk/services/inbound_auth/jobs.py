"""The check of each inbound message as a durable job (F75), the outbox's way (services/outbox/).

Ingest queues one `message_auth` row per received mail in the transaction that stores it, with
what only the SMTP session knew (the client's address, its HELO, MAIL FROM); the 250 waits for
nothing more. A worker's checker (tui_helpdesk/auth_checker.py) then:

1. claims due rows under a lease (SKIP LOCKED on PostgreSQL, the write lock on SQLite), the
   attempt counted at the claim so a check that kills its worker still ends;
2. computes SPF, DKIM and DMARC outside any transaction (message.check_message);
3. stores the results and the warning (`record`). A result that is temperror anywhere (the DNS
   did not answer) is stored and tried again with a doubling wait, until
   `inbound_auth.max_attempts`; then it stays, saying it could not be checked.

A dead resolver therefore changes nothing but the results: mail is accepted, stored, listed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select, update
from sqlalchemy.orm import Session

from tui_helpdesk.config import Settings
from tui_helpdesk.db.models import Contact, Conversation, EmailDomain, Message, MessageAuth
from tui_helpdesk.records import MessageAuthRecord, to_jsonable
from tui_helpdesk.services import changes
from tui_helpdesk.services.inbound_auth.sender_warning import SenderVerdict, sender_warning

WAITING = ("queued", "retrying")
LEASE_SECONDS = 300.0
CONTACTS_MAX_AGE_SECONDS = 30.0
FRESH_SECONDS = 1.0
CHECK_COLUMNS = {
    "status": "queued", "attempts": 0, "claimed_by": "", "lease_until": None, "spf": "",
    "dkim": "", "dmarc": "", "from_domain": "", "spf_domain": "", "dkim_domains": "",
    "details": {}, "explanation": "", "warning": "none", "warning_reason": "",
    "checked_at": None,
}  # fmt: skip


def queued(
    message_id: int | None, peer_ip: str, helo: str, mail_from: str, received_at: datetime
) -> dict[str, Any]:
    """The row ingest inserts with a received mail (every column given: one executemany)."""
    return {
        **CHECK_COLUMNS, "message_id": message_id, "peer_ip": peer_ip[:64], "helo": helo,
        "mail_from": mail_from, "next_attempt_at": received_at,
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


def claim(session: Session, *, claimer: str, now: datetime, limit: int) -> list[AuthJob]:
    """Take up to `limit` due checks for `claimer` (oldest due first) until now + the lease."""
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
            lease_until=now + timedelta(seconds=LEASE_SECONDS),
            attempts=jobs.attempts + 1,
        )
    )
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
        .where(jobs.message_id.in_(ids))
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


class KnownSenders:
    """Each organisation's domains and known contacts, kept by a checker between checks (the
    lookalike rule compares a sender with every contact).

    Read again after CONTACTS_MAX_AGE_SECONDS, or after FRESH_SECONDS when a message arrived
    after the last read (a contact made just before it may be missing)."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[datetime, list[str], list[tuple[str, str, datetime]]]] = {}

    def of(
        self, session: Session, organisation_id: int, before: datetime, now: datetime
    ) -> tuple[list[str], dict[str, str]]:
        """(our domains, known contacts address → name): contacts made before `before`."""
        cached = self._cache.get(organisation_id)
        if cached is None or _stale(cached[0], before, now):
            domains = list(
                session.scalars(
                    select(EmailDomain.domain).where(EmailDomain.organisation_id == organisation_id)
                )
            )
            contacts = [
                (email, name, created)
                for email, name, created in session.execute(
                    select(Contact.email, Contact.name, Contact.created_at).where(
                        Contact.organisation_id == organisation_id
                    )
                )
            ]
            cached = (now, domains, contacts)
            self._cache[organisation_id] = cached
        _, domains, contacts = cached
        # the sender of this very mail became a contact when it was stored: not "known" then
        return domains, {email: name for email, name, created in contacts if created < before}


def _stale(loaded_at: datetime, before: datetime, now: datetime) -> bool:
    age = (now - loaded_at).total_seconds()
    return age > CONTACTS_MAX_AGE_SECONDS or (before >= loaded_at and age > FRESH_SECONDS)


def record(
    session: Session,
    settings: Settings,
    results: Mapping[int, tuple[AuthJob, MessageAuthRecord]],
    *,
    known: KnownSenders,
    claimer: str,
    now: datetime,
) -> None:
    """Store each check's results and warning; a temperror is tried again while attempts last."""
    for job, result in results.values():
        domains, contacts = known.of(session, job.organisation_id, job.received_at, now)
        verdict = sender_warning(result, job.from_name, domains, contacts)
        retry = needs_retry(result) and job.attempts < settings.inbound_auth.max_attempts
        values = _result_values(result, verdict)
        if retry:
            values["explanation"] += (
                f" (the DNS did not answer; checking again, attempt {job.attempts + 1} of "
                f"{settings.inbound_auth.max_attempts})"
            )
        session.execute(
            update(MessageAuth.__table__)
            .where(
                MessageAuth.__table__.c.message_id == job.message_id,
                MessageAuth.__table__.c.claimed_by == claimer,
            )
            .values(
                **values,
                status="retrying" if retry else "done",
                next_attempt_at=now + retry_wait(settings, job.attempts),
                lease_until=None,
                checked_at=now,
            )
        )
    if results:
        changes.notify(session)


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
