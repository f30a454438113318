"""One copy of a mail for one mailbox, stored parsed, as a bounce, or raw (F40, F41, F71,
F74, F76): the steps thread → route → rows, then the automatic reply.

batch.py decides between the paths and owns the savepoints.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime

from tui_helpdesk.db.models import Conversation, Mailbox, Message
from tui_helpdesk.mail.inbound import InboundMail
from tui_helpdesk.mail.parsed import ParsedMessage
from tui_helpdesk.services import autoresponder, contacts, routing
from tui_helpdesk.services.ingest.clean import (
    UNREADABLE_SUBJECT,
    clean_text,
    message_id_of,
    people_of,
    sender_of,
)
from tui_helpdesk.services.ingest.prepare import Batch
from tui_helpdesk.services.ingest.route import new_conversation
from tui_helpdesk.services.ingest.rows import (
    ConversationRef,
    Delivery,
    PendingEvent,
    inbound_message,
)
from tui_helpdesk.services.ingest.thread import (
    bounced_conversation,
    contact_for,
    threaded_conversation,
)

# --- the parsed path -------------------------------------------------------------------------


def store_parsed(
    batch: Batch,
    mail: InboundMail,
    parsed: ParsedMessage,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
) -> Delivery:
    message_id = message_id_of(parsed)
    key = (mailbox.id, message_id or "", parsed.sha256)
    if message_id is not None and key in batch.stored:
        return batch.stored[key]
    sender, sender_name = sender_of(parsed, mail)
    bounced = bounced_conversation(batch, mailbox, parsed, sender)
    if bounced is not None:
        delivery = _store_bounce(batch, mail, parsed, mailbox, rcpts, bounced)
    else:
        delivery = _store_mail(batch, mail, parsed, mailbox, rcpts, sender, sender_name)
    if message_id is not None:
        batch.remember(batch.stored, key, dataclasses.replace(delivery, duplicate=True))
    return delivery


def _store_mail(
    batch: Batch,
    mail: InboundMail,
    parsed: ParsedMessage,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
    sender: str,
    sender_name: str,
) -> Delivery:
    contact = contact_for(batch, mailbox.organisation_id, sender, sender_name, mail)
    found = threaded_conversation(batch, mailbox, parsed, sender)
    batch.budget.check()
    conversation: ConversationRef
    if found is not None and found.status != "closed":
        conversation, queue = found, batch.queue(found.queue_id)
        _count_message(found, mail.received_at)
        if found.status == "pending":  # the customer answered: back to the agents
            found.status = "open"
    else:  # a new one is inserted already counting this message
        conversation, queue = new_conversation(
            batch, mail, parsed, mailbox, rcpts, contact, previous=found
        )
    message = inbound_message(mail, parsed, mailbox.id, rcpts, conversation, kind="mail")
    batch.pending.messages.append(message)
    target = batch.webhook(mailbox)
    if target is not None:  # told once the rows are written (rows.PendingRows.flush)
        batch.pending.events.append(
            PendingEvent(target, mailbox, message, created=conversation is not found)
        )
    batch.pending.participants.extend((conversation, p) for p in people_of(parsed, sender))
    batch.touch(mailbox, mail.received_at)
    batch.budget.check()
    choice = autoresponder.due_reply(batch.reply_setup(mailbox), queue, mail.received_at)
    if choice is not None:
        autoresponder.answer(
            batch.session, batch.settings, choice, mailbox=mailbox, queue=queue,
            conversation=batch.orm(conversation), envelope_from=message.values["envelope_from"],
            parsed=parsed, now=mail.received_at,
        )  # fmt: skip
    return Delivery(message, conversation)


def _count_message(conversation: Conversation, received_at: datetime) -> None:
    conversation.message_count = (conversation.message_count or 0) + 1
    if conversation.last_message_at is None or received_at > conversation.last_message_at:
        conversation.last_message_at = received_at


# --- bounces (F74) ---------------------------------------------------------------------------


def _store_bounce(
    batch: Batch,
    mail: InboundMail,
    parsed: ParsedMessage,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
    conversation: Conversation,
) -> Delivery:
    """File the bounce with the mail it returns and flag the address that failed.

    The bounce joins that conversation even when it is closed (it belongs to its history, it
    is no customer asking again) and never gets an auto-reply or a participant entry.
    """
    bounce = parsed.bounce
    assert bounce is not None
    failed = [r for r in bounce.failed_recipients if r]
    message = inbound_message(
        mail,
        parsed,
        mailbox.id,
        rcpts,
        conversation,
        kind="bounce",
        bounce_recipient=failed[0] if failed else "",
    )
    batch.pending.messages.append(message)
    if bounce.permanent:
        reason = clean_text(" ".join(p for p in (bounce.status, bounce.diagnostic) if p))
        for address in failed:
            contact = contacts.flag_bounced(
                batch.session,
                mailbox.organisation_id,
                address,
                reason=reason or "bounced",
                when=mail.received_at,
            )
            key = (mailbox.organisation_id, contact.email)
            batch.remember(batch.contacts, key, (contact.id, contact.name))
    _count_message(conversation, mail.received_at)
    batch.touch(mailbox, mail.received_at)
    return Delivery(message, conversation)


# --- the raw path (F71, F76) -----------------------------------------------------------------


def store_raw(
    batch: Batch,
    mail: InboundMail,
    parsed: ParsedMessage | None,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
    error: str,
) -> Delivery:
    """The bytes and the error in a new conversation of the mailbox: nothing else is trusted."""
    error = clean_text(error) or "unknown processing error"
    subject = clean_text(parsed.subject) if parsed is not None and parsed.subject else ""
    conversation = Conversation(
        organisation_id=mailbox.organisation_id,
        mailbox_id=mailbox.id,
        queue_id=routing.default_queue_id(batch.session, mailbox),
        subject=subject or UNREADABLE_SUBJECT,
        status="open",
        last_message_at=mail.received_at,
        message_count=1,
    )
    batch.session.add(conversation)
    batch.session.flush()
    message = Message(
        conversation_id=conversation.id,
        mailbox_id=mailbox.id,
        direction="inbound",
        kind="mail",
        message_id_header=message_id_of(parsed) if parsed is not None else None,
        subject=subject,
        envelope_from=clean_text(mail.mail_from),
        envelope_to=clean_text(", ".join(rcpts)),
        received_at=mail.received_at,
        raw=mail.raw,
        raw_sha256=hashlib.sha256(mail.raw).hexdigest(),
        raw_size=len(mail.raw),
        processing_error=error,
    )
    batch.session.add(message)
    batch.session.flush()
    batch.touch(mailbox, mail.received_at)
    return Delivery(message, conversation, processing_error=error)
