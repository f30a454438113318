"""Storing one copy of a mail for one mailbox: parsed, as a bounce, or raw (F40-F41,
F71, F74, F76).

Called by services/ingest.py, which decides between the paths and owns the savepoints.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime
from typing import Any

from tui_helpdesk.db.models import Conversation, Mailbox, Message, Queue
from tui_helpdesk.mail.ingest import InboundMail
from tui_helpdesk.mail.parse import ParsedMessage
from tui_helpdesk.services import autoresponder, contacts, routing, threading
from tui_helpdesk.services.ingest_batch import _Batch
from tui_helpdesk.services.ingest_rows import (
    _ConversationRef,
    _Delivery,
    _id,
    _NewContact,
    _NewConversation,
    _NewMessage,
)
from tui_helpdesk.services.ingest_text import (
    ADDRESS_MAX,
    MESSAGE_ID_MAX,
    UNREADABLE_SUBJECT,
    _aware_utc,
    _clean,
    _format_addresses,
    _message_id,
    _people,
    _sender,
)

# --- the parsed path -------------------------------------------------------------------------


def _store_parsed(
    batch: _Batch,
    mail: InboundMail,
    parsed: ParsedMessage,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
) -> _Delivery:
    message_id = _message_id(parsed)
    key = (mailbox.id, message_id or "", parsed.sha256)
    if message_id is not None and key in batch.stored:
        return batch.stored[key]
    sender, sender_name = _sender(parsed, mail)
    bounced = _bounced_conversation(batch, mailbox, parsed, sender)
    if bounced is not None:
        delivery = _store_bounce(batch, mail, parsed, mailbox, rcpts, bounced)
    else:
        delivery = _store_mail_message(batch, mail, parsed, mailbox, rcpts, sender, sender_name)
    if message_id is not None:
        batch.remember(batch.stored, key, dataclasses.replace(delivery, duplicate=True))
    return delivery


def _store_mail_message(
    batch: _Batch,
    mail: InboundMail,
    parsed: ParsedMessage,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
    sender: str,
    sender_name: str,
) -> _Delivery:
    contact = _contact(batch, mailbox.organisation_id, sender, sender_name, mail)
    conversation, queue, is_new = _conversation_for(
        batch, mail, parsed, mailbox, rcpts, sender, contact
    )
    message = _add_message(batch, mail, parsed, mailbox, rcpts, conversation, kind="mail")
    batch.pending.participants.extend((conversation, p) for p in _people(parsed, sender))
    batch.touch(mailbox, mail.received_at)
    if not is_new:  # a new one is inserted already counting this message
        assert isinstance(conversation, Conversation)
        _count_message(conversation, mail.received_at)
        if conversation.status == "pending":  # the customer answered: back to the agents
            conversation.status = "open"
    choice = autoresponder.due_reply(batch.reply_setup(mailbox), queue, mail.received_at)
    if choice is not None:
        autoresponder.answer(
            batch.session, batch.settings, choice, mailbox=mailbox, queue=queue,
            conversation=batch.orm(conversation), envelope_from=message.values["envelope_from"],
            parsed=parsed, now=mail.received_at,
        )  # fmt: skip
    return _Delivery(message, conversation)


def _contact(
    batch: _Batch, organisation_id: int, sender: str, name: str, mail: InboundMail
) -> int | _NewContact | None:
    """The sender's contact (F40): found in the batch's lookup, else a new one."""
    if not sender:
        return None
    key = (organisation_id, sender)
    known = batch.contacts.get(key)
    if known is None:
        new = _NewContact(contacts.new_row(organisation_id, sender, name, mail.received_at))
        batch.pending.contacts.append(new)
        batch.remember(batch.contacts, key, (new, name))
        return new
    contact, known_name = known
    if name and not known_name:
        if isinstance(contact, _NewContact) and contact.id is None:
            contact.values["name"] = contacts.clean_name(name)
        else:
            contacts.learn_name(batch.session, _id(contact), name)  # type: ignore[arg-type]
        batch.remember(batch.contacts, key, (contact, name))
    return contact


def _conversation_for(
    batch: _Batch,
    mail: InboundMail,
    parsed: ParsedMessage,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
    sender: str,
    contact: int | _NewContact | None,
) -> tuple[_ConversationRef, Queue | None, bool]:
    """The conversation threading finds (F41), else a new routed and assigned one (True)."""
    prefix = batch.settings.mail.subject_token_prefix
    found = None
    if threading.has_evidence(parsed, prefix):
        batch.flush()  # a reply may answer a mail of this very batch
        found = threading.find_conversation(
            batch.session, mailbox=mailbox, parsed=parsed, sender=sender, token_prefix=prefix
        )
    if found is not None and found.status != "closed":
        return found, batch.queue(found.queue_id), False
    decision = routing.decide(batch.routing(mailbox), mailbox, parsed, rcpts[0] if rcpts else "")
    queue = batch.queue(decision.queue_id)
    assignee = batch.assignee(queue, contact, mail.received_at) if queue is not None else None
    when = mail.received_at
    conversation = _NewConversation(
        {
            "organisation_id": mailbox.organisation_id,
            "mailbox_id": mailbox.id,
            "queue_id": decision.queue_id,
            "contact_id": _id(contact),
            "subject": _clean(parsed.subject),
            "status": "open",
            "priority": decision.priority or "normal",
            "assignee_id": assignee,
            "previous_conversation_id": found.id if found is not None else None,
            "last_message_at": when,
            "closed_at": None,
            "message_count": 1,
            "created_at": when,
            "updated_at": when,
        },
        contact if isinstance(contact, _NewContact) and contact.id is None else None,
    )
    batch.pending.conversations.append(conversation)
    batch.pending.tags.extend((conversation, t) for t in decision.tags)
    return conversation, queue, True


def _add_message(
    batch: _Batch,
    mail: InboundMail,
    parsed: ParsedMessage,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
    conversation: _ConversationRef,
    *,
    kind: str,
    bounce_recipient: str = "",
) -> _NewMessage:
    sender = parsed.sender
    values: dict[str, Any] = {
        "conversation_id": None,  # set on flush
        "mailbox_id": mailbox.id,
        "direction": "inbound",
        "kind": kind,
        "message_id_header": _message_id(parsed),
        "in_reply_to": _clean(" ".join(parsed.in_reply_to)),
        "references": _clean(" ".join(parsed.references)),
        "subject": _clean(parsed.subject),
        "from_address": _clean(sender.address if sender else "", ADDRESS_MAX),
        "from_name": _clean(sender.name if sender else ""),
        "to_addresses": _format_addresses(parsed.to),
        "cc_addresses": _format_addresses(parsed.cc),
        "envelope_from": _clean(mail.mail_from),
        "envelope_to": _clean(", ".join(rcpts)),
        "date_header": _clean(parsed.date_header),
        "sent_at": _aware_utc(parsed.date),
        "received_at": mail.received_at,
        "text_body": _clean(parsed.text_body),
        "html_body": _clean(parsed.html_body),
        "raw": mail.raw,
        "raw_sha256": parsed.sha256,
        "raw_size": len(mail.raw),
        "defects": [_clean(d) for d in parsed.defects],
        "auto_submitted": _clean(parsed.auto_submitted, 64),
        "bounce_recipient": _clean(bounce_recipient, ADDRESS_MAX),
        "processing_error": "",
    }
    message = _NewMessage(values, conversation, parsed.attachments)
    batch.pending.messages.append(message)
    return message


def _count_message(conversation: Conversation, received_at: datetime) -> None:
    conversation.message_count = (conversation.message_count or 0) + 1
    if conversation.last_message_at is None or received_at > conversation.last_message_at:
        conversation.last_message_at = received_at


# --- bounces (F74) ---------------------------------------------------------------------------


def _bounced_conversation(
    batch: _Batch, mailbox: Mailbox, parsed: ParsedMessage, sender: str
) -> Conversation | None:
    bounce = parsed.bounce
    if bounce is None or not bounce.original_message_id:
        return None
    batch.flush()  # the bounced mail, or a contact it flags, may be new in this batch
    original = bounce.original_message_id[:MESSAGE_ID_MAX]
    return threading.find_bounced_conversation(
        batch.session,
        mailbox=mailbox,
        original_message_id=original,
        people=[sender, *bounce.failed_recipients],
    )


def _store_bounce(
    batch: _Batch,
    mail: InboundMail,
    parsed: ParsedMessage,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
    conversation: Conversation,
) -> _Delivery:
    """File the bounce with the mail it returns and flag the address that failed.

    The bounce joins that conversation even when it is closed (it belongs to its history, it
    is no customer asking again) and never gets an auto-reply or a participant entry.
    """
    bounce = parsed.bounce
    assert bounce is not None
    failed = [r for r in bounce.failed_recipients if r]
    message = _add_message(
        batch,
        mail,
        parsed,
        mailbox,
        rcpts,
        conversation,
        kind="bounce",
        bounce_recipient=failed[0] if failed else "",
    )
    if bounce.permanent:
        reason = _clean(" ".join(p for p in (bounce.status, bounce.diagnostic) if p)) or "bounced"
        for address in failed:
            contact = contacts.flag_bounced(
                batch.session,
                mailbox.organisation_id,
                address,
                reason=reason,
                when=mail.received_at,
            )
            key = (mailbox.organisation_id, contact.email)
            batch.remember(batch.contacts, key, (contact.id, contact.name))
    _count_message(conversation, mail.received_at)
    batch.touch(mailbox, mail.received_at)
    return _Delivery(message, conversation)


# --- the raw path (F71, F76) -----------------------------------------------------------------


def _store_raw(
    batch: _Batch,
    mail: InboundMail,
    parsed: ParsedMessage | None,
    mailbox: Mailbox,
    rcpts: tuple[str, ...],
    error: str,
) -> _Delivery:
    """The bytes and the error in a new conversation of the mailbox: nothing else is trusted."""
    error = _clean(error) or "unknown processing error"
    subject = _clean(parsed.subject) if parsed is not None and parsed.subject else ""
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
        message_id_header=_message_id(parsed) if parsed is not None else None,
        subject=subject,
        envelope_from=_clean(mail.mail_from),
        envelope_to=_clean(", ".join(rcpts)),
        received_at=mail.received_at,
        raw=mail.raw,
        raw_sha256=hashlib.sha256(mail.raw).hexdigest(),
        raw_size=len(mail.raw),
        processing_error=error,
    )
    batch.session.add(message)
    batch.session.flush()
    batch.touch(mailbox, mail.received_at)
    return _Delivery(message, conversation, processing_error=error)
