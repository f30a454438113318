"""F61: every configuration change leaves a row saying who did what, with before and after."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tui_helpdesk.db.engine import dialect_insert
from tui_helpdesk.db.models import AuditEntry, ConfigVersion
from tui_helpdesk.records import AuditRecord, UserRecord, to_jsonable
from tui_helpdesk.services.permissions import require_admin

BOOTSTRAP_LABEL = "(bootstrap)"
# Audited changes that are not configuration: work on conversations and outgoing mail.
NOT_CONFIGURATION = frozenset({"conversation", "message", "outbox_job"})


def bump_config_version(session: Session) -> None:
    """Tell workers that keep configuration between ingest batches to read it again.

    An upsert, so the counter is there even in a database whose row went missing.
    """
    dialect = session.get_bind().dialect.name
    insert = dialect_insert(dialect)(ConfigVersion)
    session.execute(
        insert.values(id=1, version=1).on_conflict_do_update(
            index_elements=[ConfigVersion.id], set_={"version": ConfigVersion.version + 1}
        )
    )


def config_version(session: Session) -> int:
    return session.scalar(select(ConfigVersion.version).where(ConfigVersion.id == 1)) or 0


def record(
    session: Session,
    actor: UserRecord | None,
    action: str,
    entity_type: str,
    entity_id: object,
    *,
    organisation_id: int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Add the entry to the caller's unit of work, so it commits (or not) with the change.

    A change to the configuration also bumps config_version (see bump_config_version).
    """
    if entity_type not in NOT_CONFIGURATION:
        bump_config_version(session)
    session.add(
        AuditEntry(
            organisation_id=organisation_id,
            actor_id=actor.id if actor else None,
            actor_label=actor.email if actor else BOOTSTRAP_LABEL,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            before=to_jsonable(before) if before is not None else None,
            after=to_jsonable(after) if after is not None else None,
        )
    )


def list_entries(
    session: Session,
    actor: UserRecord | None,
    *,
    entity_type: str | None = None,
    limit: int | None = 100,
) -> list[AuditRecord]:
    """Newest first. Only global admins read the log: it holds every user's details."""
    actor = require_admin(actor)
    query = select(AuditEntry).where(
        (AuditEntry.organisation_id == actor.organisation_id) | AuditEntry.organisation_id.is_(None)
    )
    if entity_type:
        query = query.where(AuditEntry.entity_type == entity_type)
    query = query.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [to_record(entry) for entry in session.scalars(query)]


def to_record(entry: AuditEntry) -> AuditRecord:
    return AuditRecord(
        id=entry.id,
        actor=entry.actor_label,
        action=entry.action,
        entity_type=entry.entity_type,
        entity_id=entry.entity_id,
        before=entry.before,
        after=entry.after,
        created_at=entry.created_at,
    )
