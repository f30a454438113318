"""What became of each attempt (F73): sent, tried again later, or failed for good.

A temporary failure (4xx, a connection or TLS error, HTTP 5xx) waits
min(backoff_max, backoff_base · 2^(attempt-1)) seconds, of which a random half ("equal
jitter", so many jobs failing at once do not come back at once). The job gives up as failed
at outbox.max_attempts attempts, or once outbox.max_age_hours have passed since it was queued.
A permanent failure (5xx, HTTP 4xx) fails it at once. The server's answer is kept in
last_error, where the conversation shows it.

Every update is conditional on the claim: a sender whose lease was taken over (it seemed
dead) cannot overwrite what the new claimer recorded.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, bindparam, update
from sqlalchemy.orm import Session

from tui_helpdesk.config import OutboxSettings, Settings
from tui_helpdesk.db.models import Conversation, OutboxJob
from tui_helpdesk.services import changes
from tui_helpdesk.services.outbox.claim import ClaimedJob

OUTCOMES = ("sent", "temporary", "permanent")
ANSWER_MAX = 2000  # characters of a server's answer kept


@dataclass(frozen=True)
class JobResult:
    job: ClaimedJob
    outcome: str  # sent | temporary | permanent
    answer: str = ""  # what the server said (or what went wrong)
    retry_rcpts: tuple[str, ...] = ()  # sent, but these recipients were refused with 4xx


def backoff_seconds(attempts: int, outbox: OutboxSettings, rng: random.Random) -> float:
    """The wait before the next attempt after `attempts` attempts (see module docstring)."""
    ceiling = min(outbox.backoff_max_seconds, outbox.backoff_base_seconds * 2 ** (attempts - 1))
    return ceiling / 2 + rng.random() * ceiling / 2


def _gives_up(job: ClaimedJob, outbox: OutboxSettings, now: datetime) -> str | None:
    if job.attempts >= outbox.max_attempts:
        return f"gave up after {job.attempts} attempts"
    if now - job.queued_at >= timedelta(hours=outbox.max_age_hours):
        return f"gave up after {outbox.max_age_hours:g} hours"
    return None


def _values(
    result: JobResult, outbox: OutboxSettings, now: datetime, rng: random.Random
) -> dict[str, Any]:
    answer = " ".join(result.answer.split())[:ANSWER_MAX]
    values = {"b_id": result.job.id, "b_status": "sent", "b_next": now, "b_error": answer,
              "b_sent": now}  # fmt: skip
    if result.outcome == "sent" and not result.retry_rcpts:
        return values
    if result.outcome == "sent":
        values["b_error"] = f"will try again for {', '.join(result.retry_rcpts)}: {answer}"
    values["b_sent"] = None
    gave_up = _gives_up(result.job, outbox, now)
    if result.outcome == "permanent" or gave_up:
        values["b_status"] = "failed"
        values["b_error"] = f"{gave_up}: {answer}" if gave_up and result.outcome != "permanent" \
            else answer  # fmt: skip
        return values
    values["b_status"] = "retrying"
    values["b_next"] = now + timedelta(seconds=backoff_seconds(result.job.attempts, outbox, rng))
    return values


_JOBS = OutboxJob.__table__.c
_RECORD = (
    update(OutboxJob.__table__)
    .where(
        _JOBS.id == bindparam("b_id"),
        _JOBS.claimed_by == bindparam("b_claimer"),
        _JOBS.status == "sending",
    )
    .values(
        status=bindparam("b_status"),
        next_attempt_at=bindparam("b_next"),
        last_error=bindparam("b_error"),
        sent_at=bindparam("b_sent"),
        lease_until=None,
    )
)
_NARROW = (
    update(OutboxJob.__table__)
    .where(_JOBS.id == bindparam("b_id"), _JOBS.claimed_by == bindparam("b_claimer"))
    .values(rcpt_to=bindparam("b_rcpts", type_=JSON))
)


def record(
    session: Session,
    settings: Settings,
    results: Sequence[JobResult],
    *,
    claimer: str,
    now: datetime,
    rng: random.Random | None = None,
) -> None:
    """Write the outcome of every result in one transaction (the sender's group commit)."""
    if not results:
        return
    rng = rng or random.Random()
    rows = [{**_values(r, settings.outbox, now, rng), "b_claimer": claimer} for r in results]
    narrowed = [
        {"b_id": r.job.id, "b_claimer": claimer, "b_rcpts": list(r.retry_rcpts)}
        for r in results
        if r.outcome == "sent" and r.retry_rcpts
    ]
    if narrowed:  # before the status leaves `sending`; conditional on the claim all the same
        session.execute(_NARROW, narrowed)
    session.execute(_RECORD, rows)
    conversations = {r.job.conversation_id for r in results} - {None}
    if conversations:  # what the conversation shows changed: open screens reload it
        session.execute(
            update(Conversation.__table__)
            .where(Conversation.__table__.c.id.in_(conversations))
            .values(updated_at=now)
        )
        changes.notify(session)
