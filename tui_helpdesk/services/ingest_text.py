"""Cleaning what mail says before it reaches a column (F40, F71).

Every text of a mail is untrusted: these helpers turn it into what every database
accepts and what the rows of ingest expect (lowercased addresses, bounded lengths).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from tui_helpdesk.mail.ingest import InboundMail
from tui_helpdesk.mail.parse import Address, ParsedMessage
from tui_helpdesk.services import contacts

UNREADABLE_SUBJECT = "(message could not be processed)"
MESSAGE_ID_MAX = 998
ADDRESS_MAX = 320
CONTENT_TYPE_MAX = 255


def _clean(value: str | None, limit: int | None = None) -> str:
    """Text every database accepts: no NUL (PostgreSQL refuses it), no lone surrogates."""
    if not value:
        return ""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value if limit is None else value[:limit]


def _message_id(parsed: ParsedMessage) -> str | None:
    value = _clean(parsed.message_id, MESSAGE_ID_MAX)
    return value or None


def _sender(parsed: ParsedMessage, mail: InboundMail) -> tuple[str, str]:
    """The sender's lowercased address and name: From, else the envelope sender."""
    if parsed.sender is not None and "@" in parsed.sender.address:
        return contacts.normalise_email(_clean(parsed.sender.address)), _clean(parsed.sender.name)
    if "@" in mail.mail_from:
        return contacts.normalise_email(_clean(mail.mail_from)), ""
    return "", ""


def _people(parsed: ParsedMessage, sender: str) -> list[str]:
    """Who took part: From, To and Cc, lowercased (F41 eligibility)."""
    people = [sender] if sender else []
    for address in (*parsed.to, *parsed.cc):
        email = contacts.normalise_email(_clean(address.address))
        if "@" in email:
            people.append(email)
    return people


def _format_addresses(addresses: Iterable[Address]) -> str:
    return ", ".join(_format_address(a) for a in addresses if a.address or a.name)


def _format_address(address: Address) -> str:
    name = _clean(" ".join(address.name.split()))
    email = _clean(address.address)
    if not name:
        return email
    if any(c in name for c in ',;<>"@()[]:'):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{email}>" if email else name


def _aware_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return None
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
