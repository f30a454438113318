"""Finding mailboxes by address and what they look like outside the services (F10-F16).

A mailbox is named by its email address (as in the reference mailbox API). Several rows may
share an address (one active or pending, others inactive or deleted); lookups prefer the
active one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import (
    EmailDomain,
    Mailbox,
    MailboxGrant,
    MailboxSender,
    Organisation,
    Queue,
    QueueMailbox,
    User,
)
from tui_helpdesk.errors import Invalid, NotFound
from tui_helpdesk.records import MailboxRecord, UserRecord, to_jsonable
from tui_helpdesk.services import audit
from tui_helpdesk.services.permissions import require_actor
from tui_helpdesk.services.vocabulary import MAILBOX_STATUSES

SILENT_AFTER = timedelta(hours=24)  # F16: warn when nothing arrived for this long


def status_of(mailbox: Mailbox) -> str:
    """deleted, inactive, pending (active, not verified yet) or active."""
    if mailbox.deleted_at is not None:
        return "deleted"
    if mailbox.status == "active" and mailbox.verified_at is None:
        return "pending"
    return mailbox.status


def is_silent(mailbox: Mailbox, now: datetime) -> bool:
    """An active mailbox that received nothing for SILENT_AFTER (counted from its creation
    when it never received anything): its forwarding rule may be broken."""
    if mailbox.status != "active" or mailbox.deleted_at is not None:
        return False
    since = mailbox.last_inbound_at or mailbox.created_at
    return since is not None and now - since > SILENT_AFTER


def _emails(session: Session, table: Any, mailbox_id: int) -> tuple[str, ...]:
    return tuple(
        session.scalars(
            select(User.email)
            .join(table, table.user_id == User.id)
            .where(table.mailbox_id == mailbox_id)
            .order_by(User.email)
        )
    )


def to_record(session: Session, mailbox: Mailbox) -> MailboxRecord:
    org = session.get_one(Organisation, mailbox.organisation_id)
    domain = session.get_one(EmailDomain, mailbox.domain_id)
    responsible = (
        session.get_one(User, mailbox.responsible_user_id).email
        if mailbox.responsible_user_id
        else None
    )
    queue_names = session.scalars(
        select(Queue.name)
        .join(QueueMailbox, QueueMailbox.queue_id == Queue.id)
        .where(QueueMailbox.mailbox_id == mailbox.id)
        .order_by(Queue.name)
    ).all()
    return MailboxRecord(
        id=mailbox.id, organisation_id=mailbox.organisation_id,
        email_address=mailbox.email_address, alias=mailbox.alias,
        display_name=mailbox.display_name, local_part=mailbox.local_part, domain=domain.domain,
        timezone=mailbox.timezone or org.timezone, language=mailbox.language or org.language,
        description=mailbox.description, department=mailbox.department,
        responsible_user=responsible, status=status_of(mailbox), queues=tuple(queue_names),
        created_at=mailbox.created_at, updated_at=mailbox.updated_at,
        last_inbound_at=mailbox.last_inbound_at, verified_at=mailbox.verified_at,
        binding_checked_at=mailbox.binding_checked_at,
        silent=is_silent(mailbox, datetime.now(UTC)), private=bool(mailbox.private),
        granted=_emails(session, MailboxGrant, mailbox.id) if mailbox.private else (),
        senders=_emails(session, MailboxSender, mailbox.id),
        signature=bool(mailbox.signature_text or mailbox.signature_html),
        close_notice=bool(mailbox.close_notice_enabled),
    )  # fmt: skip


def audit_change(
    session: Session,
    actor: UserRecord | None,
    action: str,
    mailbox: Mailbox,
    before: object | None,
    after: object | None,
) -> None:
    """Audit a change of the mailbox; before/after are records or plain dicts."""
    audit.record(
        session, actor, action, "mailbox", mailbox.id,
        organisation_id=mailbox.organisation_id,
        before=to_jsonable(before) if before else None,
        after=to_jsonable(after) if after else None,
    )  # fmt: skip


def find(session: Session, organisation_id: int, address: str) -> Mailbox | None:
    """By address, alias, or a bare local part when it names one mailbox; deleted ones never."""
    name = address.strip().lower()
    query = select(Mailbox).where(
        Mailbox.organisation_id == organisation_id, Mailbox.deleted_at.is_(None)
    )
    if "@" in name:
        query = query.where((Mailbox.email_address == name) | (Mailbox.alias == name))
    else:
        query = query.where(Mailbox.local_part == name)
    rows = session.scalars(query.order_by(Mailbox.id.desc())).all()
    active = [row for row in rows if row.status == "active"]
    if "@" not in name and len({row.email_address for row in rows}) > 1:
        return None
    return (active or rows or [None])[0]


def load(session: Session, actor: UserRecord, address: str) -> Mailbox:
    mailbox = find(session, actor.organisation_id, address)
    if mailbox is None:
        hint = "" if "@" in address else " (give the full address)"
        raise NotFound(f"no mailbox {address!r}{hint}", field="address")
    return mailbox


def get(session: Session, actor: UserRecord | None, address: str) -> MailboxRecord:
    actor = require_actor(actor)
    return to_record(session, load(session, actor, address))


def list_mailboxes(
    session: Session, actor: UserRecord | None, *, status: str | None = None
) -> list[MailboxRecord]:
    """Every mailbox not deleted, by address; `status` filters active / pending / inactive."""
    actor = require_actor(actor)
    query = select(Mailbox).where(
        Mailbox.organisation_id == actor.organisation_id, Mailbox.deleted_at.is_(None)
    )
    if status == "inactive":
        query = query.where(Mailbox.status == "inactive")
    elif status in ("active", "pending"):
        verified = Mailbox.verified_at.is_not(None)
        query = query.where(
            Mailbox.status == "active", verified if status == "active" else ~verified
        )
    elif status is not None:
        raise Invalid(
            f"status must be one of {', '.join(MAILBOX_STATUSES)}, got {status!r}", field="status"
        )
    rows = session.scalars(query.order_by(Mailbox.email_address, Mailbox.id))
    return [to_record(session, row) for row in rows]
