"""F2: the email domains an organisation's mailbox addresses may use."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import EmailDomain
from tui_helpdesk.errors import Conflict, Invalid
from tui_helpdesk.records import DomainRecord, UserRecord, to_jsonable
from tui_helpdesk.services import audit, organisations
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
