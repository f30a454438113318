"""Who sent each inbound message (F75), as stored by the checker (services/inbound_auth/):
records for a conversation's thread and `conversation show`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Message, MessageAuth
from tui_helpdesk.errors import Conflict
from tui_helpdesk.records import DkimSignatureRecord, MessageAuthStatusRecord, SenderWarningRecord

LEVELS = ("spoof", "lookalike")  # strongest first


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


def flagged_messages(session: Session, conversation_id: int) -> list[SenderWarningRecord]:
    """The flagged messages of a conversation, oldest first (the caller checked visibility)."""
    rows = session.execute(
        select(MessageAuth.message_id, MessageAuth.warning, MessageAuth.warning_reason)
        .join(Message, Message.id == MessageAuth.message_id)
        .where(Message.conversation_id == conversation_id, MessageAuth.warning.in_(LEVELS))
        .order_by(Message.received_at, Message.id)
    )
    return [SenderWarningRecord(message_id, level, reason) for message_id, level, reason in rows]


def strongest(warnings: Sequence[SenderWarningRecord]) -> SenderWarningRecord | None:
    """The warning a banner leads with: possible spoofing before a lookalike, newest first."""
    for level in LEVELS:
        found = [w for w in warnings if w.level == level]
        if found:
            return found[-1]
    return None


def require_confirmed(session: Session, conversation_id: int, *, confirmed: bool) -> None:
    """A reply to a conversation holding a possibly spoofed message needs the agent's yes.

    Raises Conflict (field confirm_spoof) naming why, unless confirmed; a lookalike alone asks
    nothing (the banner shows it). Every door that sends a reply passes what the agent said."""
    if confirmed:
        return
    found = strongest(flagged_messages(session, conversation_id))
    if found is not None and found.level == "spoof":
        raise Conflict(
            f"conversation {conversation_id}: the sender may be forged ({found.reason}); "
            "confirm to reply anyway",
            field="confirm_spoof",
        )
