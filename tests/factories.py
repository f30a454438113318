"""Test builders that go through the real services (so every rule and audit entry applies).

org = make_org(db)                                   # Acme, acme.test, admin ada@acme.test
bob = add_user(db, org.admin, "bob@acme.test")        # an agent
box = add_mailbox(db, settings, org.admin, "support") # support@acme.test, verified
q = add_queue(db, settings, org.admin, "Support", mailboxes=["support@acme.test"],
              members={"bob@acme.test": "agent"})
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.records import MailboxRecord, OrganisationRecord, QueueRecord, UserRecord
from tui_helpdesk.services import domains, mailboxes, organisations, queues, users


@dataclass(frozen=True)
class Org:
    organisation: OrganisationRecord
    admin: UserRecord
    domain: str


def make_org(
    db: Database,
    *,
    name: str = "Acme",
    domain: str = "acme.test",
    admin_email: str = "ada@acme.test",
    admin_name: str = "Ada Lovelace",
    timezone: str = "UTC",
    language: str = "en",
) -> Org:
    """An organisation with one domain and its first (bootstrap) admin."""
    with db.write() as session:
        org = organisations.create(session, None, name=name, timezone=timezone, language=language)
        admin = users.add(session, None, email=admin_email, name=admin_name, role="admin")
        domains.add(session, admin, domain)
    return Org(organisation=org, admin=admin, domain=domain)


def add_user(
    db: Database,
    actor: UserRecord,
    email: str,
    *,
    name: str | None = None,
    role: str = "agent",
    **fields: Any,
) -> UserRecord:
    name = name or email.split("@")[0].replace(".", " ").title()
    with db.write() as session:
        return users.add(session, actor, email=email, name=name, role=role, **fields)


def add_mailbox(
    db: Database,
    settings: Settings,
    actor: UserRecord,
    local_part: str,
    *,
    domain: str = "acme.test",
    display_name: str | None = None,
    verified: bool = True,
    **fields: Any,
) -> MailboxRecord:
    """Verified unless verified=False (then pending, with its code in a verification job)."""
    display_name = display_name or local_part.replace(".", " ").title()
    with db.write() as session:
        return mailboxes.create(
            session, settings, actor, display_name=display_name, local_part=local_part,
            domain=domain, verified=verified, **fields,
        )  # fmt: skip


def add_queue(
    db: Database,
    settings: Settings,
    actor: UserRecord,
    name: str,
    *,
    mailboxes: Iterable[str] = (),
    members: Mapping[str, str] | None = None,
    **fields: Any,
) -> QueueRecord:
    """A queue linking the given mailbox addresses (first = default) and members (email→role)."""
    with db.write() as session:
        record = queues.create(session, actor, name=name, **fields)
        for address in mailboxes:
            record = queues.add_mailbox(session, settings, actor, name, address)
        for email, role in (members or {}).items():
            record = queues.add_member(session, actor, name, email, role)
    return record
