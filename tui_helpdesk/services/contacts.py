"""Contacts: the people who write to us (F40) and the addresses that bounced (F74).

A contact is keyed by (organisation, lowercased address), so the same person writing with a
different capitalisation is still one contact.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, String, any_, bindparam, select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Contact

EMAIL_MAX = 320
NAME_MAX = 255


def normalise_email(address: str) -> str:
    return address.strip().lower()[:EMAIL_MAX]


def find(session: Session, organisation_id: int, email: str) -> Contact | None:
    return session.scalars(
        select(Contact).where(
            Contact.organisation_id == organisation_id, Contact.email == normalise_email(email)
        )
    ).one_or_none()


def find_or_create(session: Session, organisation_id: int, email: str, name: str = "") -> Contact:
    """The contact for this address, made on first contact; a name is learnt once it is known."""
    contact = find(session, organisation_id, email)
    name = clean_name(name)
    if contact is None:
        contact = Contact(organisation_id=organisation_id, email=normalise_email(email), name=name)
        session.add(contact)
        session.flush()
    elif name and not contact.name:
        contact.name = name
    return contact


def flag_bounced(
    session: Session, organisation_id: int, email: str, *, reason: str, when: datetime
) -> Contact:
    """Mark an address as hard-bounced so later mail to it warns the agent (F74)."""
    contact = find_or_create(session, organisation_id, email)
    contact.bounced_at = when
    contact.bounce_reason = reason
    return contact


_KNOWN = select(Contact.email, Contact.id, Contact.name).where(
    Contact.organisation_id == bindparam("organisation_id"),
    Contact.email.in_(bindparam("emails", expanding=True)),
)


def known_ids(
    session: Session, organisation_id: int, emails: Iterable[str]
) -> dict[str, tuple[int, str]]:
    """(id, name) of the contacts among these lowercased addresses: one query for a batch."""
    wanted = list(dict.fromkeys(emails))
    if not wanted:
        return {}
    rows = session.connection().execute(
        _KNOWN, {"organisation_id": organisation_id, "emails": wanted}
    )
    return {email: (contact_id, name) for email, contact_id, name in rows}


_KNOWN_ANY = select(Contact.email, Contact.id, Contact.name).where(
    Contact.organisation_id == bindparam("organisation_id"),
    Contact.email == any_(bindparam("emails", type_=ARRAY(String))),
)


def known_ids_read(organisation_id: int, emails: Iterable[str]) -> tuple[Any, dict[str, Any]]:
    """known_ids as a statement and its parameters (PostgreSQL: one array parameter), for a
    caller that sends it along with other reads; its rows are (email, id, name)."""
    return _KNOWN_ANY, {"organisation_id": organisation_id, "emails": list(dict.fromkeys(emails))}


def new_row(organisation_id: int, email: str, name: str, when: datetime) -> dict[str, Any]:
    """The column values of a new contact, for a Core INSERT (one or many at once)."""
    return {
        "organisation_id": organisation_id,
        "email": normalise_email(email),
        "name": clean_name(name),
        "bounced_at": None,
        "bounce_reason": "",
        "created_at": when,
        "updated_at": when,
    }


def clean_name(name: str) -> str:
    return " ".join(name.split())[:NAME_MAX]


def learn_name(session: Session, contact_id: int, name: str) -> None:
    """Give a contact known only by address the name its mail now carries."""
    contact = session.get(Contact, contact_id)
    if contact is not None and not contact.name:
        contact.name = clean_name(name)
