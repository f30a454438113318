"""Internal notes (F42): text for colleagues kept in the thread, never sent to the customer.

A note is a message with direction `internal` and kind `note`, written by the acting user.
It counts as a message of the thread but not as mail: the conversation's last_message_at
(the list order and what makes it unread) stays that of the last mail.
"""

from __future__ import annotations

import hashlib

from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Conversation, Message, utcnow
from tui_helpdesk.errors import Invalid
from tui_helpdesk.records import UserRecord

NOTE_MAX = 100_000


def add_note(session: Session, actor: UserRecord, conversation: Conversation, text: str) -> int:
    """Add the note to the thread (the caller checked permission and audits); its message id."""
    body = _clean(text)
    if not body.strip():
        raise Invalid("a note needs some text", field="note")
    if len(body) > NOTE_MAX:
        raise Invalid(f"a note holds at most {NOTE_MAX:,} characters", field="note")
    note = Message(
        conversation_id=conversation.id,
        mailbox_id=conversation.mailbox_id,
        direction="internal",
        kind="note",
        subject="",
        from_address=actor.email,
        from_name=actor.name,
        received_at=utcnow(),
        text_body=body,
        raw=None,
        raw_sha256=hashlib.sha256(body.encode("utf-8")).hexdigest(),
        raw_size=0,
    )
    session.add(note)
    conversation.message_count += 1
    session.flush()
    return note.id


def _clean(text: str) -> str:
    """What every database stores: no NUL, no lone surrogates (from a terminal's bytes)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
