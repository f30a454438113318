"""Reading the audit log (F61): filtered keyset pages for the screen, JSON lines for export.

The log grows without bound, so nothing here reads it whole: a page is the entries after a
known key (newest first, ties by id) in one index range; only a jump far from any known key
(a scroll bar dragged) skips rows with OFFSET from the nearest one. Export walks the range
in chronological keyset batches. Only global admins read the log (it holds every user's
details), as services.audit.list_entries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import AuditEntry
from tui_helpdesk.errors import Invalid
from tui_helpdesk.records import AuditFilter, AuditKey, AuditRecord, UserRecord, to_jsonable
from tui_helpdesk.services.audit import to_record
from tui_helpdesk.services.permissions import require_admin

MAX_PAGE = 1_000
EXPORT_BATCH = 1_000
FILTER_WORDS = ("actor", "subject", "since", "until")
_SUBJECT = re.compile(r"^[a-z_]{1,32}(:[^\s]{1,64})?$")


def parse_filter(text: str) -> AuditFilter:
    """`actor:ada subject:mailbox:3 since:2026-12-01 until:2026-12-06T12:00` → AuditFilter.

    A bare word is an actor. Dates are UTC (a date alone is its midnight)."""
    values: dict[str, str] = {}
    for word in text.split():
        name, sep, value = word.partition(":")
        if not sep:
            name, value = "actor", word
        name = name.lower()
        if name not in FILTER_WORDS:
            raise Invalid(
                f"unknown filter {name!r}: use {', '.join(w + ':' for w in FILTER_WORDS)}",
                field="filter",
            )
        if not value:
            raise Invalid(f"{name}: needs a value", field="filter")
        values[name] = value
    subject = values.get("subject", "").lower()
    if subject and not _SUBJECT.match(subject):
        raise Invalid(f"subject {subject!r}: give a kind or kind:id, as mailbox:3", field="filter")
    return AuditFilter(
        actor=values.get("actor", "").lower(),
        subject=subject,
        since=parse_time(values["since"], "since") if "since" in values else None,
        until=parse_time(values["until"], "until") if "until" in values else None,
    )


def parse_time(value: str, field: str) -> datetime:
    """An ISO date or date-time; naive values are UTC."""
    try:
        if len(value) == 10:
            parsed = datetime.combine(date.fromisoformat(value), time(0))
        else:
            parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(
            f"{field}: {value!r} is not a date (2026-12-01) or time (2026-12-01T09:30)",
            field=field,
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _filtered(actor: UserRecord, wanted: AuditFilter, query: Select[Any]) -> Select[Any]:
    query = query.where(
        (AuditEntry.organisation_id == actor.organisation_id) | AuditEntry.organisation_id.is_(None)
    )
    if wanted.actor:
        escaped = wanted.actor.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(func.lower(AuditEntry.actor_label).like(f"%{escaped}%", escape="\\"))
    if wanted.subject:
        kind, _, entity_id = wanted.subject.partition(":")
        query = query.where(AuditEntry.entity_type == kind)
        if entity_id:
            query = query.where(AuditEntry.entity_id == entity_id)
    if wanted.since is not None:
        query = query.where(AuditEntry.created_at >= wanted.since)
    if wanted.until is not None:
        query = query.where(AuditEntry.created_at < wanted.until)
    if wanted.since and wanted.until and wanted.until <= wanted.since:
        raise Invalid("until must be after since", field="until")
    return query


def count(session: Session, actor: UserRecord | None, wanted: AuditFilter) -> int:
    actor = require_admin(actor)
    return session.scalar(_filtered(actor, wanted, select(func.count(AuditEntry.id)))) or 0


def page(
    session: Session,
    actor: UserRecord | None,
    wanted: AuditFilter,
    *,
    after: AuditKey | None = None,
    skip: int = 0,
    limit: int = 100,
) -> list[AuditRecord]:
    """Entries newest first: those older than `after` (all when None), `skip` of them left
    out (a jump), at most `limit`."""
    actor = require_admin(actor)
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit must be 1-{MAX_PAGE}, got {limit}", field="limit")
    query = _filtered(actor, wanted, select(AuditEntry))
    if after is not None:
        query = query.where(
            tuple_(AuditEntry.created_at, AuditEntry.id) < tuple_(after.created_at, after.id)
        )
    query = query.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
    query = query.offset(max(0, skip)).limit(limit)
    return [to_record(entry) for entry in session.scalars(query)]


def key_of(record: AuditRecord) -> AuditKey:
    return AuditKey(created_at=record.created_at, id=record.id)


def export(
    session: Session,
    actor: UserRecord | None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """Every entry in [since, until), oldest first, as JSON-ready dicts (one per line)."""
    actor = require_admin(actor)
    wanted = AuditFilter(since=since, until=until)
    last: tuple[datetime, int] | None = None
    while True:
        query = _filtered(actor, wanted, select(AuditEntry))
        if last is not None:
            query = query.where(tuple_(AuditEntry.created_at, AuditEntry.id) > tuple_(*last))
        query = query.order_by(AuditEntry.created_at, AuditEntry.id).limit(EXPORT_BATCH)
        entries = list(session.scalars(query))
        for entry in entries:
            yield to_jsonable(to_record(entry))
        if len(entries) < EXPORT_BATCH:
            return
        last = (entries[-1].created_at, entries[-1].id)


def diff(record: AuditRecord) -> list[tuple[str, Any, Any]]:
    """(field, before, after) for each field that changed, was added or went away, in order;
    a side without the field (or without any state: a creation, a deletion) is None."""
    before, after = record.before or {}, record.after or {}
    fields = list(before) + [name for name in after if name not in before]
    return [
        (name, before.get(name), after.get(name))
        for name in fields
        if before.get(name) != after.get(name)
    ]
