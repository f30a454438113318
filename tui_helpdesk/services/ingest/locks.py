"""What two workers on one PostgreSQL must not decide at once (issue 11, F41, F40).

The same mail can reach two workers at the same moment (a sender's MTA retrying on the second
MX while the first is still committing), a reply can arrive while its original is being
stored by the other worker, and a new customer's first mails can land on both. Reading "is it
stored? is there a contact?" and then inserting would let both workers insert. So before it
reads, a batch takes a transaction-scoped advisory lock for every Message-ID it stores or
refers to and for every contact it may create; a second worker wanting the same key waits for
the first one's commit and then reads what it wrote. Keys are taken in sorted order, so two
batches never wait on each other's keys. SQLite needs none of this: its writers take turns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

from tui_helpdesk.mail.parsed import ParsedMessage
from tui_helpdesk.services.ingest.clean import message_id_of

REFERENCES_LOCKED = 20  # the newest ancestors of a reply: the ones that can be in flight
_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def key(*parts: object) -> int:
    """A signed 64-bit lock key for a subject (a collision only makes two mails take turns)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def message_keys(parsed: ParsedMessage) -> list[int]:
    """The mail's own Message-ID and those it answers."""
    own = message_id_of(parsed)
    answered = [*parsed.in_reply_to, *parsed.references[-REFERENCES_LOCKED:]]
    return [key("message", i) for i in ([own] if own else []) + answered if i]


def contact_key(organisation_id: int, email: str) -> int:
    return key("contact", organisation_id, email)


def take(session: Session, keys: Iterable[int]) -> None:
    """Lock every key until the transaction ends (PostgreSQL; a no-op elsewhere)."""
    ordered = sorted(set(keys))
    if ordered and session.connection().dialect.name == "postgresql":
        session.connection().execute(_LOCK, [{"key": k} for k in ordered])
