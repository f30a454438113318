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

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy.orm import Session

from tui_helpdesk.config import OutboxSettings, Settings
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


# The sender writes a result after every message it sends (the duplicate bound, see
# tui_helpdesk/worker/sender.py), so these run on the DBAPI connection itself: SQLAlchemy's work per
# statement cost twice the statement (bench/outbox.py). Named parameters, in each driver's style.
_RECORD_SQL = (
    "UPDATE outbox_jobs SET status = {p}b_status{s}, next_attempt_at = {p}b_next{s},"
    " last_error = {p}b_error{s}, sent_at = {p}b_sent{s}, lease_until = NULL"
    " WHERE id = {p}b_id{s} AND claimed_by = {p}b_claimer{s} AND status = 'sending'"
)
# PostgreSQL, one result of a conversation: the NOTIFY open screens wait for, in the same
# statement (and so the same transaction) as the result.
_RECORD_NOTIFY_SQL = (
    "WITH recorded AS (" + _RECORD_SQL + " RETURNING id)"
    " SELECT pg_notify({p}b_channel{s}, current_schema()) FROM recorded"
)
_NOTIFY_SQL = "SELECT pg_notify({p}b_channel{s}, current_schema())"
_NARROW_SQL = (
    "UPDATE outbox_jobs SET rcpt_to = {json} WHERE id = {p}b_id{s} AND claimed_by = {p}b_claimer{s}"
)
_BEGIN = {"sqlite": "BEGIN IMMEDIATE", "postgresql": "BEGIN"}
_STYLES = {
    "sqlite": (":", "", ":b_rcpts"),
    "postgresql": ("%(", ")s", "CAST(%(b_rcpts)s AS json)"),
}


@cache
def _sql(template: str, dialect: str) -> str:
    prefix, suffix, json_rcpts = _STYLES[dialect]
    return template.format(p=prefix, s=suffix, json=json_rcpts)


def _stored_time(value: datetime | None, dialect: str) -> datetime | str | None:
    """A time as the UTCDateTime column stores it (SQLite: naive UTC text, SQLAlchemy's form)."""
    if value is None or dialect != "sqlite":
        return value
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def record(
    session: Session,
    settings: Settings,
    results: Sequence[JobResult],
    *,
    claimer: str,
    now: datetime,
    rng: random.Random | None = None,
) -> None:
    """Write the outcome of every result in the session's transaction."""
    if not results:
        return
    connection = session.connection()
    dialect = connection.dialect.name
    rows, narrowed = _rows(dialect, settings, results, claimer=claimer, now=now, rng=rng)
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        _execute(cursor, dialect, rows, narrowed)
    finally:
        cursor.close()
    if any(r.job.conversation_id is not None for r in results):
        changes.notify(session)


Statement = tuple[str, list[dict[str, Any]]]  # SQL in the driver's style, and its rows


def result_statements(
    dialect: str,
    settings: Settings,
    results: Sequence[JobResult],
    *,
    claimer: str,
    now: datetime,
    rng: random.Random | None = None,
) -> list[Statement]:
    """What records every result on a DBAPI connection in autocommit mode (the sender's group
    commit), in order: each statement with the rows to run it for (none: run it once, bare).

    A result alone is one statement, its own transaction: what a sender with one connection
    per destination writes after every message, one round trip instead of BEGIN, the UPDATE
    and COMMIT. Several go in one transaction. Open screens are told when a conversation's view
    changed: on PostgreSQL by a NOTIFY in the same transaction (on SQLite the change counter's
    trigger is)."""
    if not results:
        return []
    rows, narrowed = _rows(dialect, settings, results, claimer=claimer, now=now, rng=rng)
    notify = dialect == "postgresql" and any(r.job.conversation_id is not None for r in results)
    channel = {"b_channel": changes.CHANNEL}
    if len(rows) == 1 and not narrowed:
        if notify:
            return [(_sql(_RECORD_NOTIFY_SQL, dialect), [{**rows[0], **channel}])]
        return [(_sql(_RECORD_SQL, dialect), rows)]
    statements: list[Statement] = [(_BEGIN[dialect], [])]
    if narrowed:  # before the status leaves `sending`; conditional on the claim all the same
        statements.append((_sql(_NARROW_SQL, dialect), narrowed))
    statements.append((_sql(_RECORD_SQL, dialect), rows))
    if notify:
        statements.append((_sql(_NOTIFY_SQL, dialect), [channel]))
    return [*statements, ("COMMIT", [])]


def _rows(
    dialect: str,
    settings: Settings,
    results: Sequence[JobResult],
    *,
    claimer: str,
    now: datetime,
    rng: random.Random | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The parameters of _RECORD_SQL for each result, and of _NARROW_SQL for those sent to
    some recipients only."""
    rng = rng or random.Random()
    stored = {now: _stored_time(now, dialect), None: None}  # most results are sent now
    rows = []
    for result in results:
        values = _values(result, settings.outbox, now, rng)
        for key in ("b_next", "b_sent"):
            if values[key] not in stored:
                stored[values[key]] = _stored_time(values[key], dialect)
            values[key] = stored[values[key]]
        values["b_claimer"] = claimer
        rows.append(values)
    narrowed = [
        {"b_id": r.job.id, "b_claimer": claimer, "b_rcpts": json.dumps(list(r.retry_rcpts))}
        for r in results
        if r.outcome == "sent" and r.retry_rcpts
    ]
    return rows, narrowed


def _execute(
    cursor: Any, dialect: str, rows: list[dict[str, Any]], narrowed: list[dict[str, Any]]
) -> None:
    if narrowed:  # before the status leaves `sending`; conditional on the claim all the same
        cursor.executemany(_sql(_NARROW_SQL, dialect), narrowed)
    cursor.executemany(_sql(_RECORD_SQL, dialect), rows)
