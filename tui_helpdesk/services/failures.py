"""Mail that could not be processed (F71, F76): kept raw with its error, listed for the admin.

Ingest never drops a mail it answered 250 for; when parsing, threading, routing or answering it
fails or takes too long, the raw bytes are stored with the error in a conversation of their own.
This is where an admin finds them.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Mailbox, Message
from tui_helpdesk.errors import Invalid
from tui_helpdesk.records import FailedMessageRecord, UserRecord
from tui_helpdesk.services.permissions import require_admin

MAX_LIMIT = 10_000


def list_failed(
    session: Session, actor: UserRecord | None, *, limit: int = 100
) -> list[FailedMessageRecord]:
    """The organisation's messages stored with a processing error, newest first (admins)."""
    admin = require_admin(actor)
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be 1-{MAX_LIMIT}, got {limit}", field="limit")
    rows = session.execute(
        select(Message, Mailbox.email_address)
        .join(Mailbox, Mailbox.id == Message.mailbox_id)
        .where(Mailbox.organisation_id == admin.organisation_id, Message.processing_error != "")
        .order_by(Message.received_at.desc(), Message.id.desc())
        .limit(limit)
    ).all()
    return [
        FailedMessageRecord(
            id=message.id,
            conversation_id=message.conversation_id,
            mailbox=address,
            received_at=message.received_at,
            envelope_from=message.envelope_from,
            subject=message.subject,
            raw_size=message.raw_size,
            error=message.processing_error,
        )
        for message, address in rows
    ]
