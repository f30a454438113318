"""F2: the email domains an organisation's mailbox addresses may use."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import EmailDomain, Mailbox
from tui_helpdesk.errors import Conflict, Invalid, NotFound
from tui_helpdesk.records import DomainRecord, UserRecord, to_jsonable
from tui_helpdesk.services import audit, changes, organisations
from tui_helpdesk.services.permissions import require_actor, require_admin

LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def validate_hostname(value: str, *, field: str = "domain") -> str:
    """Lowercase ASCII hostname with at least two labels (IDNs as xn--... punycode)."""
    domain = value.strip().lower().removesuffix(".")
    if not domain:
        raise Invalid("domain must not be empty", field=field)
    if not domain.isascii():
        raise Invalid(
            f"domain {value!r} is not ASCII; write international names in punycode (xn--...)",
            field=field,
        )
    labels = domain.split(".")
    if len(domain) > 253 or len(labels) < 2 or not all(LABEL.match(x) for x in labels):
        raise Invalid(
            f"{value!r} is not a valid domain name (like example.com: letters, digits, "
            "hyphens, dots between labels)",
            field=field,
        )
    return domain


def to_record(domain: EmailDomain) -> DomainRecord:
    return DomainRecord(
        id=domain.id,
        organisation_id=domain.organisation_id,
        domain=domain.domain,
        created_at=domain.created_at,
    )


def add(
    session: Session, actor: UserRecord | None, domain: str, *, organisation: str | None = None
) -> DomainRecord:
    actor = require_admin(actor)
    org = organisations.resolve(session, actor, organisation)
    name = validate_hostname(domain)
    existing = session.scalar(select(EmailDomain).where(EmailDomain.domain == name))
    if existing is not None:
        where = "this" if existing.organisation_id == org.id else "another"
        raise Conflict(f"domain {name} is already added to {where} organisation", field="domain")
    row = EmailDomain(organisation_id=org.id, domain=name)
    session.add(row)
    session.flush()
    record = to_record(row)
    audit.record(
        session,
        actor,
        "domain.add",
        "domain",
        row.id,
        organisation_id=org.id,
        after=to_jsonable(record),
    )
    changes.notify(session)
    return record


def list_domains(session: Session, actor: UserRecord | None) -> list[DomainRecord]:
    actor = require_actor(actor)
    rows = session.scalars(
        select(EmailDomain)
        .where(EmailDomain.organisation_id == actor.organisation_id)
        .order_by(EmailDomain.domain)
    )
    return [to_record(row) for row in rows]


def find(session: Session, organisation_id: int, domain: str) -> EmailDomain | None:
    return session.scalar(
        select(EmailDomain).where(
            EmailDomain.organisation_id == organisation_id,
            EmailDomain.domain == domain.strip().lower().removesuffix("."),
        )
    )


def remove(session: Session, actor: UserRecord | None, domain: str) -> DomainRecord:
    """Remove a domain of the actor's organisation; refused while a mailbox (active, inactive
    or pending, not deleted) has an address in it: those mailboxes would lose their domain."""
    actor = require_admin(actor)
    name = validate_hostname(domain)
    row = find(session, actor.organisation_id, name)
    if row is None:
        raise NotFound(f"{name} is not a domain of your organisation", field="domain")
    used = session.scalar(
        select(func.count(Mailbox.id)).where(
            Mailbox.domain_id == row.id, Mailbox.deleted_at.is_(None)
        )
    )
    if used:
        raise Conflict(
            f"domain {name} is used by {used} mailbox{'' if used == 1 else 'es'}; "
            "delete them or move them to another domain first",
            field="domain",
        )
    record = to_record(row)
    deleted = session.scalars(select(Mailbox.id).where(Mailbox.domain_id == row.id)).first()
    if deleted is not None:
        raise Conflict(
            f"domain {name} is still referenced by deleted mailboxes (their conversations stay "
            "readable), so it cannot be removed",
            field="domain",
        )
    session.delete(row)
    session.flush()
    audit.record(
        session, actor, "domain.remove", "domain", record.id,
        organisation_id=record.organisation_id, before=to_jsonable(record),
    )  # fmt: skip
    changes.notify(session)
    return record
