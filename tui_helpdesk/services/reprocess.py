"""F76: a message stored raw with a processing error, processed again (after a fix, say).

The stored bytes go through the ingest pipeline once more (services/ingest: parsing,
threading, routing, assignment) for the mailbox they were stored in, in the caller's
transaction: the failed row and its own conversation are removed and the mail stored
anew, so a failure anywhere rolls everything back and the raw bytes are never lost. When
processing fails again, ingest keeps the raw bytes with the new error, as on arrival.

Every reprocess is audited (action message.reprocess) and announced to open screens.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, undefer

from tui_helpdesk.config import Settings
from tui_helpdesk.db.models import (
    Attachment,
    Conversation,
    ConversationParticipant,
    ConversationRead,
    ConversationTag,
    Mailbox,
    Message,
    MessageAuth,
    OutboxJob,
)
from tui_helpdesk.errors import Conflict, HelpdeskError, NotFound
from tui_helpdesk.mail.inbound import InboundMail
from tui_helpdesk.records import ReprocessRecord, UserRecord
from tui_helpdesk.services import audit, changes
from tui_helpdesk.services.ingest import store_inbound
from tui_helpdesk.services.permissions import require_admin

MAX_ALL = 10_000


def reprocess(
    session: Session, settings: Settings, actor: UserRecord | None, message_id: int
) -> ReprocessRecord:
    """Run the stored raw bytes of a failed message through ingest again (admins)."""
    admin = require_admin(actor)
    found = session.execute(
        select(Message, Mailbox)
        .join(Mailbox, Mailbox.id == Message.mailbox_id)
        .where(Message.id == message_id, Mailbox.organisation_id == admin.organisation_id)
        .options(undefer(Message.raw))
    ).first()
    if found is None:
        raise NotFound(f"no message {message_id}", field="message")
    message, mailbox = found
    if not message.processing_error:
        raise Conflict(
            f"message {message_id} was processed without error: nothing to reprocess",
            field="message",
        )
    if not message.raw:
        raise Conflict(f"message {message_id} has no raw bytes to process", field="message")
    before = {"error": message.processing_error, "conversation_id": message.conversation_id}
    # the SMTP client, when a sender check was queued for it (F75): checked again with it
    client = session.execute(
        select(MessageAuth.peer_ip, MessageAuth.helo).where(MessageAuth.message_id == message_id)
    ).first()
    mail = InboundMail(
        raw=bytes(message.raw),
        mail_from=message.envelope_from,
        rcpt_tos=(mailbox.alias,),
        received_at=message.received_at,
        peer_ip=client[0] if client else "",
        helo=client[1] if client else "",
    )
    _remove(session, message)
    stored = store_inbound(session, settings, mail)
    if not stored.message_ids:
        raise Conflict(f"mailbox {mailbox.email_address} stored nothing", field="message")
    result = ReprocessRecord(
        message_id=message_id,
        new_message_ids=stored.message_ids,
        conversation_ids=stored.conversation_ids,
        error="; ".join(stored.processing_errors),
    )
    audit.record(
        session, admin, "message.reprocess", "message", message_id,
        organisation_id=admin.organisation_id, before=before,
        after={"message_ids": list(result.new_message_ids),
               "conversation_ids": list(result.conversation_ids), "error": result.error},
    )  # fmt: skip
    changes.notify(session)
    return result


def reprocess_failed(
    session: Session, settings: Settings, actor: UserRecord | None, *, limit: int = MAX_ALL
) -> list[ReprocessRecord]:
    """Every failed message of the organisation, oldest first, each in its own savepoint."""
    admin = require_admin(actor)
    ids = list(
        session.scalars(
            select(Message.id)
            .join(Mailbox, Mailbox.id == Message.mailbox_id)
            .where(Mailbox.organisation_id == admin.organisation_id, Message.processing_error != "")
            .order_by(Message.received_at, Message.id)
            .limit(limit)
        )
    )
    results = []
    for message_id in ids:
        try:
            with session.begin_nested():
                results.append(reprocess(session, settings, admin, message_id))
        except HelpdeskError as error:
            results.append(ReprocessRecord(message_id, (), (), f"refused: {error.message}"))
    return results


def _remove(session: Session, message: Message) -> None:
    """The failed row, and its conversation when it holds nothing else."""
    conversation_id = message.conversation_id
    session.execute(
        update(OutboxJob).where(OutboxJob.message_id == message.id).values(message_id=None)
    )
    session.execute(delete(Attachment).where(Attachment.message_id == message.id))
    session.execute(delete(MessageAuth).where(MessageAuth.message_id == message.id))
    session.delete(message)
    session.flush()
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        return
    others = session.scalar(
        select(func.count(Message.id)).where(Message.conversation_id == conversation_id)
    )
    referenced = session.scalar(
        select(func.count(OutboxJob.id)).where(OutboxJob.conversation_id == conversation_id)
    ) or session.scalar(
        select(func.count(Conversation.id)).where(
            Conversation.previous_conversation_id == conversation_id
        )
    )
    if others or referenced:
        conversation.message_count = max(0, (conversation.message_count or 1) - 1)
        return
    for table in (ConversationTag, ConversationRead, ConversationParticipant):
        session.execute(delete(table).where(table.conversation_id == conversation_id))
    session.delete(conversation)
    session.flush()
