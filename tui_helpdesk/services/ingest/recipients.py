"""Who may receive mail (F70): what RCPT TO accepts, before any mail is stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Mailbox


def _active_mailbox() -> list[Any]:
    return [Mailbox.status == "active", Mailbox.deleted_at.is_(None)]


def accepts_recipient(session: Session, address: str) -> bool:
    """True when the address is the alias of an active, not deleted mailbox (any case)."""
    found = session.scalar(
        select(Mailbox.id)
        .where(func.lower(Mailbox.alias) == address.strip().lower(), *_active_mailbox())
        .limit(1)
    )
    return found is not None


def active_aliases(session: Session) -> frozenset[str]:
    """Every address RCPT accepts, lowercased: what the SMTP handler caches."""
    aliases = session.scalars(select(Mailbox.alias).where(*_active_mailbox()))
    return frozenset(a.lower() for a in aliases)
