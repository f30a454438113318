"""What our mail in a conversation is made of (F43, F18, F45): the mailbox it leaves from, the
message it answers, the thread headers, the customer's address.

Shared by the agent's mail (replies.py) and the close notice (close_notice.py); the signature
comes from services.mailboxes.signature.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Conversation, Mailbox, Message
from tui_helpdesk.errors import Conflict, Invalid
from tui_helpdesk.mail.addresses import parse_address
from tui_helpdesk.mail.compose import Person, quoted, references_for, safe_message_ids

MAX_BODY = 1_000_000


def body_text(value: str, *, field: str = "body", required: bool = True) -> str:
    """A person's body text as every database stores it; required ones must say something."""
    text = value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if required and not text.strip():
        raise Invalid(f"the {field} is empty: write something to send", field=field)
    if len(text) > MAX_BODY:
        raise Invalid(f"the {field} holds at most {MAX_BODY:,} characters", field=field)
    return text


def sending_mailbox(session: Session, conversation: Conversation) -> Mailbox:
    mailbox = session.get(Mailbox, conversation.mailbox_id) if conversation.mailbox_id else None
    if mailbox is None:
        raise Conflict(
            f"conversation {conversation.id} belongs to no mailbox to send from", field="mailbox"
        )
    return mailbox


def parent_of(session: Session, conversation: Conversation) -> Message | None:
    """The message an answer answers: the newest mail from the customer, else (a conversation
    we started) the newest mail of ours."""
    for direction in ("inbound", "outbound"):
        found = session.scalar(
            select(Message)
            .where(
                Message.conversation_id == conversation.id,
                Message.direction == direction,
                Message.kind == "mail",
                Message.processing_error == "",
            )
            .order_by(Message.received_at.desc(), Message.id.desc())
            .limit(1)
        )
        if found is not None:
            return found
    return None


def thread_headers(parent: Message | None) -> tuple[str, tuple[str, ...]]:
    """In-Reply-To and References of an answer to `parent` (nothing when there is none)."""
    if parent is None:
        return "", ()
    parent_id = (safe_message_ids([parent.message_id_header]) or [""])[0]
    if not parent_id:
        return "", ()
    return parent_id, references_for(parent_id, parent.references.split())


def quote_of(parent: Message) -> str:
    author = parent.from_name or parent.from_address or "you"
    when: datetime | None = parent.sent_at or parent.received_at
    return quoted(parent.text_body, author=author, when=when)


def customer(address: str, name: str = "") -> Person:
    """An address we hold from mail, checked as strictly as a typed one before we write to it."""
    try:
        return Person(parse_address(address, field="to"), name)
    except Invalid as error:
        raise Invalid(
            f"cannot write to the customer's address: {error.message}", field="to"
        ) from None
