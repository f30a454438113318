"""One conversation as a thread: its row and every stored message, oldest first (F46)."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Attachment, Message
from tui_helpdesk.records import (
    AttachmentRecord,
    ConversationDetail,
    MessageAuthStatusRecord,
    MessageRecord,
    UserRecord,
)
from tui_helpdesk.services.conversations import rows
from tui_helpdesk.services.conversations.sender_auth import auth_statuses
from tui_helpdesk.services.outbox import delivery_states


def get_conversation(
    session: Session, actor: UserRecord, conversation_id: int
) -> ConversationDetail:
    """The thread, oldest message first. NotFound also when it exists but is not visible."""
    conversation = rows.record_of(session, actor, conversation_id)
    messages = session.scalars(
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.received_at, Message.id)
    ).all()
    attachments = _attachments_by_message(session, [m.id for m in messages])
    sending = delivery_states(session, [m.id for m in messages if m.direction == "outbound"])
    checked = auth_statuses(session, [m.id for m in messages if m.direction == "inbound"])
    return ConversationDetail(
        conversation=conversation,
        messages=tuple(
            message_record(
                m, attachments[m.id], sending.get(m.id, ("", "")), auth=checked.get(m.id)
            )
            for m in messages
        ),
    )


def _attachments_by_message(
    session: Session, message_ids: list[int]
) -> dict[int, list[AttachmentRecord]]:
    found: dict[int, list[AttachmentRecord]] = defaultdict(list)
    if not message_ids:
        return found
    found_rows = session.scalars(
        select(Attachment)
        .where(Attachment.message_id.in_(message_ids))
        .order_by(Attachment.message_id, Attachment.id)
    )
    for attachment in found_rows:
        found[attachment.message_id].append(
            AttachmentRecord(
                id=attachment.id,
                filename=attachment.filename,
                content_type=attachment.content_type,
                size=attachment.size,
                sha256=attachment.sha256,
                disposition=attachment.disposition,
            )
        )
    return found


def message_record(
    message: Message,
    attachments: list[AttachmentRecord],
    delivery: tuple[str, str],
    *,
    auth: MessageAuthStatusRecord | None = None,
) -> MessageRecord:
    return MessageRecord(
        id=message.id,
        direction=message.direction,
        kind=message.kind,
        message_id=message.message_id_header,
        subject=message.subject,
        from_address=message.from_address,
        from_name=message.from_name,
        to=message.to_addresses,
        cc=message.cc_addresses,
        sent_at=message.sent_at,
        received_at=message.received_at,
        text_body=message.text_body,
        raw_size=message.raw_size,
        raw_sha256=message.raw_sha256,
        defects=tuple(str(d) for d in message.defects or ()),
        attachments=tuple(attachments),
        delivery=delivery[0],
        delivery_error=delivery[1],
        auth=auth,
    )
