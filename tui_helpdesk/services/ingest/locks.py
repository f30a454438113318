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
from typing import Any

from sqlalchemy import text

from tui_helpdesk.mail.parsed import ParsedMessage
from tui_helpdesk.services.ingest.clean import message_id_of

REFERENCES_LOCKED = 20  # the newest ancestors of a reply: the ones that can be in flight
# one statement for all keys, taken in the order given (sorted: see the module docstring)
_LOCK = text(
    "SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS BIGINT[])) WITH ORDINALITY"
    " AS t(k, n) ORDER BY n"
)


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


def statement(keys: Iterable[int]) -> tuple[Any, dict[str, Any]] | None:
    """The statement and parameters that lock every key until the transaction ends
    (PostgreSQL; None: no key), sent with the batch's first reads (db.engine.read_together)."""
    ordered = sorted(set(keys))
    return (_LOCK, {"keys": ordered}) if ordered else None
