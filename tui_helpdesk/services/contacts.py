"""Contacts: the people who write to us (F40) and the addresses that bounced (F74).

A contact is keyed by (organisation, lowercased address), so the same person writing with a
different capitalisation is still one contact.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
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
    name = " ".join(name.split())[:NAME_MAX]
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
