"""Who sent each inbound message (F75), as stored by the checker (services/inbound_auth/):
records for a conversation's thread and `conversation show`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import MessageAuth
from tui_helpdesk.records import DkimSignatureRecord, MessageAuthStatusRecord


def auth_statuses(
    session: Session, message_ids: Sequence[int]
) -> dict[int, MessageAuthStatusRecord]:
    """message id → its check (the caller checked that the messages may be seen)."""
    if not message_ids:
        return {}
    rows = session.scalars(select(MessageAuth).where(MessageAuth.message_id.in_(message_ids)))
    return {row.message_id: status_record(row) for row in rows}


def status_record(row: MessageAuth) -> MessageAuthStatusRecord:
    details = row.details or {}
    signatures = tuple(
        DkimSignatureRecord(
            result=str(s.get("result", "")),
            domain=str(s.get("domain", "")),
            selector=str(s.get("selector", "")),
            explanation=str(s.get("explanation", "")),
        )
        for s in details.get("dkim", ())
        if isinstance(s, dict)
    )
    return MessageAuthStatusRecord(
        status=row.status,
        spf=row.spf,
        dkim=row.dkim,
        dmarc=row.dmarc,
        from_domain=row.from_domain,
        spf_domain=row.spf_domain,
        dkim_domains=tuple(d for d in row.dkim_domains.split(",") if d),
        signatures=signatures,
        explanation=row.explanation,
        warning=row.warning,
        warning_reason=row.warning_reason,
        ignored_headers=tuple(str(h) for h in details.get("ignored_headers", ())),
        attempts=row.attempts,
        checked_at=row.checked_at,
    )
