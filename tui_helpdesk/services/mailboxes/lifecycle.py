"""F10-F16: a mailbox's life cycle: created pending with its unguessable alias (and a
verification code on its way), edited, deactivated and activated, deleted; the limit per
organisation and the unique address hold throughout.

A pending mailbox is a mailbox for every rule here: it counts toward the limit, its address is
unique against active and pending ones (both are `status = 'active'` in the table, see the
model), and it can be deactivated and deleted.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tui_helpdesk.config import Settings
from tui_helpdesk.db.models import EmailDomain, Mailbox, Organisation, Queue, QueueMailbox
from tui_helpdesk.errors import Conflict, Invalid, LimitReached, NotFound
from tui_helpdesk.records import MailboxRecord, UserRecord, to_jsonable
from tui_helpdesk.services import domains, organisations, users
from tui_helpdesk.services.changes import notify
from tui_helpdesk.services.mailboxes.fields import validate_display_name, validate_local_part
from tui_helpdesk.services.mailboxes.lookup import audit_change, load, to_record
from tui_helpdesk.services.mailboxes.verification import issue_code
from tui_helpdesk.services.permissions import require_admin

ALIAS_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
ALIAS_LENGTH = 10  # 50 random bits


@dataclass(frozen=True)
class MailboxChanges:
    """Fields an update may change; None leaves a field alone. The alias is not among them."""

    display_name: str | None = None
    local_part: str | None = None
    domain: str | None = None
    timezone: str | None = None  # "" → the organisation's
    language: str | None = None  # "" → the organisation's
    description: str | None = None
    department: str | None = None
    responsible: str | None = None  # a user's email; "" → nobody


def _domain(session: Session, org: Organisation, name: str) -> EmailDomain:
    row = domains.find(session, org.id, name)
    if row is None:
        raise Invalid(
            f"domain {name!r} is not one of the organisation's domains; "
            f"add it with `tui-helpdesk domain add {name.strip().lower()}`",
            field="domain",
        )
    return row


def _responsible(session: Session, org: Organisation, email: str | None) -> int | None:
    if not email:
        return None
    user = users.find(session, email)
    if user is None or user.organisation_id != org.id:
        raise NotFound(f"no user with email {email!r} to be responsible", field="responsible")
    return user.id


def _optional(value: str | None, check, field: str) -> str | None:  # type: ignore[no-untyped-def]
    return check(value, field=field) if value else None


def new_alias(session: Session, settings: Settings) -> str:
    """Random, unguessable, unique; retried on the (astronomically rare) collision."""
    for _ in range(20):
        local = "".join(secrets.choice(ALIAS_ALPHABET) for _ in range(ALIAS_LENGTH))
        alias = f"{local}@{settings.mail.platform_domain}"
        taken = session.scalar(
            select(Mailbox.id).where((Mailbox.alias == alias) | (Mailbox.email_address == alias))
        )
        if taken is None:
            return alias
    raise Conflict("could not generate a unique alias; try again", field="alias")


def _active_with_address(
    session: Session, address: str, *, other_than: int | None
) -> Mailbox | None:
    query = select(Mailbox).where(
        Mailbox.email_address == address,
        Mailbox.status == "active",
        Mailbox.deleted_at.is_(None),
    )
    if other_than is not None:
        query = query.where(Mailbox.id != other_than)
    return session.scalar(query)


def _check_address_free(session: Session, address: str, *, other_than: int | None = None) -> None:
    if _active_with_address(session, address, other_than=other_than) is not None:
        raise Conflict(
            f"an active or pending mailbox with address {address} already exists", field="address"
        )


def _flush_address(session: Session, address: str) -> None:
    """Flush; a concurrent writer that took the address first becomes a Conflict, not a crash."""
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(
            f"an active or pending mailbox with address {address} already exists", field="address"
        ) from None


def _check_limit(session: Session, settings: Settings, org: Organisation) -> None:
    """Every mailbox not deleted counts, active or not (F12)."""
    limit = settings.limits.mailboxes_per_organisation
    count = session.scalar(
        select(func.count(Mailbox.id)).where(
            Mailbox.organisation_id == org.id, Mailbox.deleted_at.is_(None)
        )
    )
    if (count or 0) >= limit:
        raise LimitReached(
            f"the organisation already has {count} mailboxes (limit {limit}); "
            "delete one before creating another",
            field="mailbox",
        )


def _lock_organisation(session: Session, org_id: int) -> Organisation:
    """Serialise mailbox creation per organisation so the limit holds under concurrency."""
    return session.scalars(
        select(Organisation).where(Organisation.id == org_id).with_for_update()
    ).one()


def create(
    session: Session,
    settings: Settings,
    actor: UserRecord | None,
    *,
    display_name: str,
    local_part: str,
    domain: str,
    timezone: str | None = None,
    language: str | None = None,
    description: str = "",
    department: str = "",
    responsible: str | None = None,
    organisation: str | None = None,
    verified: bool = False,
    now: datetime | None = None,
) -> MailboxRecord:
    """A new mailbox, pending until the code mailed to its address is entered (F16).

    `verified=True` makes it verified at once, without a code: for demo and bench data, whose
    addresses receive nothing. The CLI and the TUI always create pending mailboxes.
    """
    actor = require_admin(actor)
    now = now or datetime.now(UTC)
    org = _lock_organisation(session, organisations.resolve(session, actor, organisation).id)
    display_name = validate_display_name(display_name)
    local_part = validate_local_part(local_part)
    domain_row = _domain(session, org, domain)
    mailbox = Mailbox(
        organisation_id=org.id,
        display_name=display_name,
        local_part=local_part,
        domain_id=domain_row.id,
        email_address=f"{local_part}@{domain_row.domain}",
        timezone=_optional(timezone, organisations.validate_timezone, "timezone"),
        language=_optional(language, organisations.validate_language, "language"),
        description=description.strip(),
        department=department.strip(),
        responsible_user_id=_responsible(session, org, responsible),
        status="active",
        verified_at=now if verified else None,
    )
    _check_address_free(session, mailbox.email_address)
    _check_limit(session, settings, org)
    mailbox.alias = new_alias(session, settings)
    session.add(mailbox)
    _flush_address(session, mailbox.email_address)
    if not verified:
        issue_code(session, settings, mailbox, now)
    record = to_record(session, mailbox)
    audit_change(session, actor, "mailbox.create", mailbox, None, record)
    notify(session)  # open screens reload
    return record


def update(
    session: Session, actor: UserRecord | None, address: str, changes: MailboxChanges
) -> MailboxRecord:
    """Any field but the alias, under the same rules as create (F13).

    Every value is checked before the row is touched, so a refused update changes nothing.
    """
    actor = require_admin(actor)
    mailbox = load(session, actor, address)
    org = session.get_one(Organisation, mailbox.organisation_id)
    values = _validated(session, org, mailbox, changes)
    if mailbox.status == "active":
        _check_address_free(session, values["email_address"], other_than=mailbox.id)
    before = to_record(session, mailbox)
    for key, value in values.items():
        setattr(mailbox, key, value)
    _flush_address(session, mailbox.email_address)
    after = to_record(session, mailbox)
    if _comparable(after) != _comparable(before):
        audit_change(session, actor, "mailbox.update", mailbox, before, after)
        notify(session)  # open screens reload
    return after


def _comparable(record: MailboxRecord) -> dict[str, object]:
    values = to_jsonable(record)
    values.pop("updated_at")
    return values


def _validated(
    session: Session, org: Organisation, mailbox: Mailbox, changes: MailboxChanges
) -> dict[str, object]:
    """The new column values, every one checked; fields left as None keep their value."""
    local_part = mailbox.local_part
    domain = session.get_one(EmailDomain, mailbox.domain_id)
    values: dict[str, object] = {}
    if changes.display_name is not None:
        values["display_name"] = validate_display_name(changes.display_name)
    if changes.local_part is not None:
        local_part = values["local_part"] = validate_local_part(changes.local_part)
    if changes.domain is not None:
        domain = _domain(session, org, changes.domain)
        values["domain_id"] = domain.id
    values["email_address"] = f"{local_part}@{domain.domain}"
    if changes.timezone is not None:
        values["timezone"] = _optional(
            changes.timezone, organisations.validate_timezone, "timezone"
        )
    if changes.language is not None:
        values["language"] = _optional(
            changes.language, organisations.validate_language, "language"
        )
    if changes.description is not None:
        values["description"] = changes.description.strip()
    if changes.department is not None:
        values["department"] = changes.department.strip()
    if changes.responsible is not None:
        values["responsible_user_id"] = _responsible(session, org, changes.responsible)
    return values


def _linked_queues(session: Session, mailbox: Mailbox, *, default_only: bool) -> list[str]:
    query = (
        select(Queue.name)
        .join(QueueMailbox, QueueMailbox.queue_id == Queue.id)
        .where(QueueMailbox.mailbox_id == mailbox.id)
        .order_by(Queue.name)
    )
    if default_only:
        query = query.where(QueueMailbox.is_default.is_(True))
    return list(session.scalars(query))


def activate(session: Session, actor: UserRecord | None, address: str) -> MailboxRecord:
    actor = require_admin(actor)
    mailbox = load(session, actor, address)
    if mailbox.status == "active":
        return to_record(session, mailbox)
    _check_address_free(session, mailbox.email_address, other_than=mailbox.id)
    return _set_status(session, actor, mailbox, "active")


def deactivate(session: Session, actor: UserRecord | None, address: str) -> MailboxRecord:
    """Refused while the mailbox sends for a queue (its default): pick another default first."""
    actor = require_admin(actor)
    mailbox = load(session, actor, address)
    if mailbox.status != "active":
        return to_record(session, mailbox)
    defaults = _linked_queues(session, mailbox, default_only=True)
    if defaults:
        raise Conflict(
            f"mailbox {mailbox.email_address} is the default mailbox of queue "
            f"{', '.join(repr(q) for q in defaults)}; set another default there first",
            field="address",
        )
    return _set_status(session, actor, mailbox, "inactive")


def _set_status(
    session: Session, actor: UserRecord, mailbox: Mailbox, status: str
) -> MailboxRecord:
    before = to_record(session, mailbox)
    mailbox.status = status
    _flush_address(session, mailbox.email_address)
    after = to_record(session, mailbox)
    action = f"mailbox.{'activate' if status == 'active' else 'deactivate'}"
    audit_change(session, actor, action, mailbox, before, after)
    notify(session)  # open screens reload
    return after


def delete(session: Session, actor: UserRecord | None, address: str) -> MailboxRecord:
    """Soft delete: conversations keep pointing at the row; refused while linked to a queue."""
    actor = require_admin(actor)
    mailbox = load(session, actor, address)
    linked = _linked_queues(session, mailbox, default_only=False)
    if linked:
        raise Conflict(
            f"mailbox {mailbox.email_address} is linked to queue "
            f"{', '.join(repr(q) for q in linked)}; remove it from there first",
            field="address",
        )
    before = to_record(session, mailbox)
    mailbox.deleted_at = datetime.now(UTC)
    session.flush()
    after = to_record(session, mailbox)
    audit_change(session, actor, "mailbox.delete", mailbox, before, after)
    notify(session)  # open screens reload
    return after
