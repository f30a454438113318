"""Test data for the conversation read side and the TUI, inserted with the ORM at fixed dates.

No tests here: test_conversations.py, test_changes.py and test_tui*.py import these builders.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import (
    Attachment,
    Blob,
    Contact,
    Conversation,
    ConversationTag,
    EmailDomain,
    Mailbox,
    Message,
    Organisation,
    Queue,
    QueueMailbox,
    QueueMember,
    User,
)
from tui_helpdesk.records import UserRecord
from tui_helpdesk.services import users

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Seed:
    """Ids of the seeded rows, by name."""

    org: int
    users: dict[str, int]
    mailboxes: dict[str, int]
    queues: dict[str, int]
    conversations: dict[str, int]


def _org(session: Session, name: str = "Acme") -> Organisation:
    org = Organisation(name=name, timezone="UTC", language="en")
    session.add(org)
    session.flush()
    return org


def _user(session: Session, org: Organisation, email: str, name: str, role: str) -> User:
    user = User(organisation_id=org.id, email=email, name=name, role=role)
    session.add(user)
    session.flush()
    return user


def _mailbox(session: Session, org: Organisation, domain: EmailDomain, local: str) -> Mailbox:
    mailbox = Mailbox(
        organisation_id=org.id,
        display_name=local.title(),
        local_part=local,
        domain_id=domain.id,
        email_address=f"{local}@{domain.domain}",
        alias=f"{local}-{org.id}x7q@in.helpdesk.localhost",
    )
    session.add(mailbox)
    session.flush()
    return mailbox


def _queue(
    session: Session, org: Organisation, name: str, mailbox: Mailbox, *members: User
) -> Queue:
    queue = Queue(organisation_id=org.id, name=name)
    session.add(queue)
    session.flush()
    session.add(QueueMailbox(queue_id=queue.id, mailbox_id=mailbox.id, is_default=True))
    for member in members:
        session.add(QueueMember(queue_id=queue.id, user_id=member.id, role="agent"))
    session.flush()
    return queue


def add_conversation(
    session: Session,
    *,
    org_id: int,
    mailbox_id: int | None,
    queue_id: int | None,
    subject: str,
    sender: str,
    sender_name: str = "",
    at: datetime = NOW,
    status: str = "open",
    assignee_id: int | None = None,
    body: str = "Hello,\nplease help.\n",
    tags: tuple[str, ...] = (),
) -> Conversation:
    """A conversation with one inbound message from `sender` (contact made on first use)."""
    contact = session.query(Contact).filter_by(organisation_id=org_id, email=sender).one_or_none()
    if contact is None:
        contact = Contact(organisation_id=org_id, email=sender, name=sender_name)
        session.add(contact)
        session.flush()
    conversation = Conversation(
        organisation_id=org_id,
        mailbox_id=mailbox_id,
        queue_id=queue_id,
        contact_id=contact.id,
        subject=subject,
        status=status,
        assignee_id=assignee_id,
        last_message_at=at,
        created_at=at,
        updated_at=at,
        message_count=1,
    )
    session.add(conversation)
    session.flush()
    session.add_all(ConversationTag(conversation_id=conversation.id, tag=t) for t in tags)
    add_message(
        session, conversation, subject=subject, sender=sender, name=sender_name, at=at, body=body
    )
    return conversation


def add_message(
    session: Session,
    conversation: Conversation,
    *,
    subject: str,
    sender: str,
    name: str = "",
    at: datetime = NOW,
    body: str = "",
    attachments: tuple[tuple[str, str, bytes], ...] = (),
) -> Message:
    raw = f"From: {sender}\r\nSubject: {subject}\r\n\r\n{body}".encode()
    message = Message(
        conversation_id=conversation.id,
        mailbox_id=conversation.mailbox_id,
        subject=subject,
        from_address=sender,
        from_name=name,
        to_addresses="support@acme.test",
        sent_at=at,
        received_at=at,
        text_body=body,
        raw=raw,
        raw_sha256=hashlib.sha256(raw).hexdigest(),
        raw_size=len(raw),
    )
    session.add(message)
    session.flush()
    for filename, content_type, data in attachments:
        digest = hashlib.sha256(data).hexdigest()
        if session.get(Blob, digest) is None:
            session.add(Blob(sha256=digest, size=len(data), data=data))
            session.flush()
        session.add(
            Attachment(
                message_id=message.id,
                filename=filename,
                content_type=content_type,
                size=len(data),
                sha256=digest,
            )
        )
    session.flush()
    return message


def seed(db: Database, now: datetime = NOW) -> Seed:
    """Acme: admin ada; agents bob (Support), dee (Sales), cy (no queue); five conversations."""
    with db.write() as session:
        org = _org(session)
        domain = EmailDomain(organisation_id=org.id, domain="acme.test")
        session.add(domain)
        session.flush()
        ada = _user(session, org, "ada@acme.test", "Ada Admin", "admin")
        bob = _user(session, org, "bob@acme.test", "Bob Agent", "agent")
        cy = _user(session, org, "cy@acme.test", "Cy Agent", "agent")
        dee = _user(session, org, "dee@acme.test", "Dee Agent", "agent")
        support = _mailbox(session, org, domain, "support")
        sales = _mailbox(session, org, domain, "sales")
        q_support = _queue(session, org, "Support", support, bob)
        q_sales = _queue(session, org, "Sales", sales, dee)

        def conv(
            subject: str,
            sender: str,
            minutes: int,
            mailbox: Mailbox,
            queue: Queue | None,
            **extra: object,
        ) -> int:
            return add_conversation(
                session,
                org_id=org.id,
                mailbox_id=mailbox.id,
                queue_id=queue.id if queue else None,
                subject=subject,
                sender=sender,
                at=now - timedelta(minutes=minutes),
                **extra,  # type: ignore[arg-type]
            ).id

        conversations = {
            "printer": conv(
                "Printer on fire",
                "carol@customer.test",
                5,
                support,
                q_support,
                sender_name="Carol Customer",
                tags=("urgent", "hardware"),
            ),
            "invoice": conv("Invoice 2026-11", "dan@customer.test", 90, sales, q_sales),
            "login": conv(
                "Cannot log in", "erin@customer.test", 60 * 26, support, None, assignee_id=cy.id
            ),
            "closed": conv(
                "Old question",
                "carol@customer.test",
                60 * 24 * 9,
                support,
                q_support,
                status="closed",
            ),
            "unrouted": conv("Hello?", "frank@customer.test", 3, sales, None),
        }
    return Seed(
        org=org.id,
        users={"ada": ada.id, "bob": bob.id, "cy": cy.id, "dee": dee.id},
        mailboxes={"support": support.id, "sales": sales.id},
        queues={"Support": q_support.id, "Sales": q_sales.id},
        conversations=conversations,
    )


def actor(db: Database, email: str) -> UserRecord:
    """The acting user as the services see it."""
    with db.read() as session:
        return users.to_record(session.query(User).filter_by(email=email).one())
