"""The agent's mail (F43): reply, forward, and new mail from a mailbox. The CLI's `conversation
reply|forward|compose` and the TUI's composer call these.

Each checks that the actor may act on the conversation (or, for new mail, works in a queue of
the mailbox), that the mailbox may send (active, verified: F16) and that the actor may send
from it (F20); validates what the person typed (every address one plain address, no control
character in a header value: Invalid naming the field, exit 2); composes the mail
(mail/compose.py: our token once, In-Reply-To and References, signature, quoted history);
stores it in the conversation as our own message and queues it (services/outgoing.py); audits;
and returns a SentRecord. Nothing is sent here: the worker's sender does that.

A reply goes to the sender of the customer's newest mail (to ours, in a conversation we
started); reply_all adds everyone else who took part, except our own mailboxes. A closed
conversation takes no reply (reopen it first): the customer's answer would open a new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import getaddresses

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from tui_helpdesk.config import Settings
from tui_helpdesk.db.models import (
    Attachment,
    Blob,
    Conversation,
    ConversationParticipant,
    Mailbox,
    Message,
    QueueMailbox,
    QueueMember,
)
from tui_helpdesk.errors import Conflict, Invalid, NotFound, PermissionDenied
from tui_helpdesk.mail import compose as mail
from tui_helpdesk.mail.addresses import one_line, parse_addresses
from tui_helpdesk.mail.compose import Draft, Person
from tui_helpdesk.records import SentRecord, UserRecord
from tui_helpdesk.services import audit, changes, contacts, mailboxes, outgoing
from tui_helpdesk.services.conversations import reads, sender_auth, views
from tui_helpdesk.services.conversations.drafting import (
    body_text,
    customer,
    parent_of,
    quote_of,
    sending_mailbox,
    thread_headers,
)
from tui_helpdesk.services.conversations.thread import message_record
from tui_helpdesk.services.conversations.visibility import load_visible, sees_mailbox
from tui_helpdesk.services.permissions import require_actor

MAX_RECIPIENTS = 50
AUDIT_ACTIONS = {"reply": "conversation.reply", "forward": "conversation.forward",
                 "new": "conversation.compose"}  # fmt: skip


def reply(
    session: Session,
    settings: Settings,
    actor: UserRecord | None,
    conversation_id: int,
    body: str,
    *,
    cc: Sequence[str] = (),
    reply_all: bool = False,
    html: str = "",
    quote: bool = True,
    now: datetime | None = None,
    confirm_spoof: bool = False,
) -> SentRecord:
    """Answer the conversation's customer from its mailbox; when a message of it may be forged
    (F75), only with confirm_spoof (else Conflict, field confirm_spoof, naming why)."""
    actor = require_actor(actor)
    body, html = body_text(body), body_text(html, field="html", required=False)
    typed_cc = parse_addresses(cc, field="cc")
    conversation = _open_conversation(session, actor, conversation_id)
    sender_auth.require_confirmed(session, conversation_id, confirmed=confirm_spoof)
    mailbox = sending_mailbox(session, conversation)
    mailboxes.require_sending(session, actor, mailbox)
    parent = parent_of(session, conversation)
    if parent is None:
        raise Conflict(f"conversation {conversation_id} holds no mail to reply to", field="id")
    to = _answer_to(parent)
    copies = [Person(a) for a in typed_cc]
    if reply_all:
        copies += _everyone_else(session, conversation, mailbox, to)
    in_reply_to, references = thread_headers(parent)
    draft = _draft(
        session, settings, actor, mailbox, conversation, to=to, cc=copies, lead="Re",
        body=body, html=html, quote=quote_of(parent) if quote else "",
        in_reply_to=in_reply_to, references=references,
    )  # fmt: skip
    return _send(session, actor, mailbox, conversation, draft, "reply", now)


def forward(
    session: Session,
    settings: Settings,
    actor: UserRecord | None,
    conversation_id: int,
    *,
    to: Sequence[str],
    cc: Sequence[str] = (),
    body: str = "",
    message_id: int | None = None,
    now: datetime | None = None,
) -> SentRecord:
    """Send a message of the conversation (by default the customer's newest mail), with its
    attachments, to someone else; their answer threads back here."""
    actor = require_actor(actor)
    body = body_text(body, required=False)
    recipients, copies = _typed(to, cc)
    conversation = _open_conversation(session, actor, conversation_id)
    mailbox = sending_mailbox(session, conversation)
    mailboxes.require_sending(session, actor, mailbox)
    original = _forwarded(session, conversation, message_id)
    draft = _draft(
        session, settings, actor, mailbox, conversation, to=recipients, cc=copies, lead="Fwd",
        body=body, quote=_forwarded_text(original), subject=original.subject or None,
        attachments=_attachments(session, original.id),
    )  # fmt: skip
    return _send(session, actor, mailbox, conversation, draft, "forward", now)


def compose(
    session: Session,
    settings: Settings,
    actor: UserRecord | None,
    *,
    to: Sequence[str],
    subject: str,
    body: str,
    mailbox: str | None = None,
    queue: str | None = None,
    cc: Sequence[str] = (),
    html: str = "",
    now: datetime | None = None,
) -> SentRecord:
    """New mail in a new conversation, from `mailbox` or else the default mailbox of `queue`
    (F43); the conversation is the actor's, open, in that queue (else the mailbox's first)."""
    actor = require_actor(actor)
    now = now or datetime.now(UTC)
    subject = one_line(subject, field="subject", limit=mail.MAX_SUBJECT)
    if not subject:
        raise Invalid("the subject is empty: new mail needs one", field="subject")
    body, html = body_text(body), body_text(html, field="html", required=False)
    recipients, copies = _typed(to, cc)
    box, queue_id = _composing_mailbox(session, actor, mailbox, queue)
    _may_compose(session, actor, box)
    mailboxes.require_sending(session, actor, box)
    conversation = _new_conversation(session, actor, box, queue_id, recipients[0].address,
                                     subject, now)  # fmt: skip
    draft = _draft(
        session, settings, actor, box, conversation, to=recipients, cc=copies, lead="",
        body=body, html=html,
    )  # fmt: skip
    return _send(session, actor, box, conversation, draft, "new", now)


# --- the conversation, the mailbox, the people --------------------------------------------------


def _open_conversation(session: Session, actor: UserRecord, conversation_id: int) -> Conversation:
    conversation = load_visible(session, actor, conversation_id, for_update=True)
    if conversation.status == "closed":
        raise Conflict(
            f"conversation {conversation_id} is closed: reopen it to answer here",
            field="status",
        )
    return conversation


def _typed(to: Sequence[str], cc: Sequence[str]) -> tuple[list[Person], list[Person]]:
    recipients = [Person(a) for a in parse_addresses(to, field="to")]
    copies = [Person(a) for a in parse_addresses(cc, field="cc")]
    if not recipients:
        raise Invalid("give at least one address to send to", field="to")
    if len(recipients) + len(copies) > MAX_RECIPIENTS:
        raise Invalid(f"at most {MAX_RECIPIENTS} recipients per mail", field="to")
    return recipients, copies


def _answer_to(parent: Message) -> list[Person]:
    if parent.direction == "inbound":
        return [customer(parent.from_address, parent.from_name)]
    return [customer(address, name) for name, address in getaddresses([parent.to_addresses])]


def _everyone_else(
    session: Session, conversation: Conversation, mailbox: Mailbox, to: list[Person]
) -> list[Person]:
    """Everyone who took part, but the To and our own addresses (mailboxes and aliases)."""
    skip = {p.address.lower() for p in to}
    people = session.scalars(
        select(ConversationParticipant.email)
        .where(ConversationParticipant.conversation_id == conversation.id)
        .order_by(ConversationParticipant.email)
    ).all()
    rows = session.execute(
        select(Mailbox.email_address, Mailbox.alias).where(
            Mailbox.organisation_id == mailbox.organisation_id
        )
    )
    ours = {address.lower() for row in rows for address in row}
    found = []
    for email in people:
        if email in skip or email in ours:
            continue
        try:
            found.append(customer(email))
        except Invalid:
            continue  # an address from mail we cannot write to stays out of the copies
    return found


def _composing_mailbox(
    session: Session, actor: UserRecord, mailbox: str | None, queue: str | None
) -> tuple[Mailbox, int | None]:
    queue_id = views.queue_id(session, actor, queue) if queue is not None else None
    if mailbox is not None:
        return mailboxes.load(session, actor, mailbox), queue_id
    if queue_id is None:
        raise Invalid("give the mailbox to send from, or a queue (its default mailbox)",
                      field="mailbox")  # fmt: skip
    found = session.scalar(
        select(Mailbox)
        .join(QueueMailbox, QueueMailbox.mailbox_id == Mailbox.id)
        .where(QueueMailbox.queue_id == queue_id, QueueMailbox.is_default.is_(True))
    )
    if found is None:
        raise NotFound(f"queue {queue!r} has no default mailbox to send from", field="queue")
    return found, queue_id


def _may_compose(session: Session, actor: UserRecord, mailbox: Mailbox) -> None:
    """Admins, and members of a queue the mailbox is linked to; for a private mailbox only
    those granted access (F21), who would see the conversation."""
    if not sees_mailbox(session, actor, mailbox.id):
        raise PermissionDenied(
            f"{mailbox.email_address} is private and {actor.email} has no access to it",
            field="mailbox",
        )
    if actor.is_admin:
        return
    member = session.scalar(
        select(QueueMember.queue_id)
        .join(QueueMailbox, QueueMailbox.queue_id == QueueMember.queue_id)
        .where(QueueMember.user_id == actor.id, QueueMailbox.mailbox_id == mailbox.id)
        .limit(1)
    )
    if member is None:
        raise PermissionDenied(
            f"{actor.email} works in no queue of {mailbox.email_address}, so may not write "
            "new mail from it",
            field="mailbox",
        )


def _new_conversation(
    session: Session, actor: UserRecord, mailbox: Mailbox, queue_id: int | None,
    address: str, subject: str, now: datetime,
) -> Conversation:  # fmt: skip
    contact = contacts.find_or_create(session, mailbox.organisation_id, address)
    conversation = Conversation(
        organisation_id=mailbox.organisation_id, mailbox_id=mailbox.id,
        queue_id=queue_id if queue_id is not None else _first_queue(session, mailbox),
        contact_id=contact.id, subject=subject, status="open", priority="normal",
        assignee_id=actor.id, last_message_at=now, message_count=0,
    )  # fmt: skip
    session.add(conversation)
    session.flush()
    return conversation


def _first_queue(session: Session, mailbox: Mailbox) -> int | None:
    """The queue unrouted mail to the mailbox goes to (as routing.default_queue_id; routing
    reads the conversations' vocabulary, so this package cannot ask it)."""
    return session.scalar(
        select(QueueMailbox.queue_id)
        .where(QueueMailbox.mailbox_id == mailbox.id)
        .order_by(QueueMailbox.position, QueueMailbox.queue_id)
        .limit(1)
    )


# --- the mail --------------------------------------------------------------------------------


def _draft(
    session: Session, settings: Settings, actor: UserRecord, mailbox: Mailbox,
    conversation: Conversation, *, to: list[Person], cc: list[Person], lead: str, body: str,
    html: str = "", quote: str = "", subject: str | None = None, in_reply_to: str = "",
    references: tuple[str, ...] = (), attachments: tuple[mail.Attachment, ...] = (),
) -> Draft:  # fmt: skip
    signature_text, signature_html = mailboxes.signature(session, mailbox, actor)
    text, html = mail.body_parts(body, html=html, signature_text=signature_text,
                                 signature_html=signature_html, quote=quote)  # fmt: skip
    subject = mail.thread_subject(
        subject if subject is not None else conversation.subject,
        prefix=settings.mail.subject_token_prefix,
        conversation_id=conversation.id,
        lead=lead,
    )
    copies: dict[str, Person] = {}
    for person in cc:  # the first of each address (a typed one before the thread's)
        if all(person.address.lower() != t.address.lower() for t in to):
            copies.setdefault(person.address.lower(), person)
    return Draft(
        sender=mailboxes.sender(session, mailbox), to=tuple(to), cc=tuple(copies.values()),
        subject=subject,
        text=text, html=html, in_reply_to=in_reply_to, references=references,
        attachments=attachments,
    )  # fmt: skip


def _send(
    session: Session, actor: UserRecord, mailbox: Mailbox, conversation: Conversation,
    draft: Draft, job_kind: str, now: datetime | None,
) -> SentRecord:  # fmt: skip
    now = now or datetime.now(UTC)
    sent = outgoing.send_in_conversation(
        session, mailbox=mailbox, conversation=conversation, draft=draft, kind="mail",
        job_kind=job_kind, now=now,
    )  # fmt: skip
    audit.record(
        session, actor, AUDIT_ACTIONS[job_kind], "conversation", conversation.id,
        organisation_id=conversation.organisation_id,
        after={"message_id": sent.message.message_id_header, "subject": draft.subject,
               "to": [p.address for p in draft.to], "cc": [p.address for p in draft.cc]},
    )  # fmt: skip
    reads.mark_read(session, actor, conversation.id)  # the writer has read what they answer
    changes.notify(session)
    record = message_record(sent.message, [], (sent.job.status, ""))
    return SentRecord(conversation.id, record, sent.job.id)


# --- forwarding ------------------------------------------------------------------------------


def _forwarded(session: Session, conversation: Conversation, message_id: int | None) -> Message:
    if message_id is None:
        found = parent_of(session, conversation)
    else:
        found = session.scalar(
            select(Message).where(
                Message.id == message_id, Message.conversation_id == conversation.id,
                Message.direction != "internal",
            )
        )  # fmt: skip
    if found is None:
        what = f"no message {message_id} in" if message_id else "no mail to forward in"
        raise NotFound(f"{what} conversation {conversation.id}", field="message")
    return found


def _forwarded_text(original: Message) -> str:
    head = [("From", f"{original.from_name} <{original.from_address}>".strip()),
            ("Date", original.date_header), ("Subject", original.subject),
            ("To", original.to_addresses), ("Cc", original.cc_addresses)]  # fmt: skip
    lines = [f"{name}: {value}" for name, value in head if value and value != "<>"]
    return "---------- Forwarded message ----------\n" + "\n".join(lines) + "\n\n" + (
        original.text_body)  # fmt: skip


def _attachments(session: Session, message_id: int) -> tuple[mail.Attachment, ...]:
    rows = session.execute(
        select(Attachment.filename, Attachment.content_type, Blob)
        .join(Blob, Blob.sha256 == Attachment.sha256)
        .where(Attachment.message_id == message_id)
        .order_by(Attachment.id)
        .options(undefer(Blob.data))
    )
    return tuple(mail.Attachment(name, kind, blob.data) for name, kind, blob in rows)
