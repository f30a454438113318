"""Cleaning what mail says before it reaches a column (F40, F71): shared by every ingest step.

Every text of a mail is untrusted: these helpers turn it into what every database
accepts and what the rows of ingest expect (lowercased addresses, bounded lengths).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from tui_helpdesk.mail.inbound import InboundMail
from tui_helpdesk.mail.parsed import Address, ParsedMessage
from tui_helpdesk.services import contacts

UNREADABLE_SUBJECT = "(message could not be processed)"
MESSAGE_ID_MAX = 998
ADDRESS_MAX = 320
CONTENT_TYPE_MAX = 255


def clean_text(value: str | None, limit: int | None = None) -> str:
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


def message_id_of(parsed: ParsedMessage) -> str | None:
    value = clean_text(parsed.message_id, MESSAGE_ID_MAX)
    return value or None


def sender_of(parsed: ParsedMessage, mail: InboundMail) -> tuple[str, str]:
    """The sender's lowercased address and name: From, else the envelope sender."""
    if parsed.sender is not None and "@" in parsed.sender.address:
        return contacts.normalise_email(clean_text(parsed.sender.address)), clean_text(
            parsed.sender.name
        )
    if "@" in mail.mail_from:
        return contacts.normalise_email(clean_text(mail.mail_from)), ""
    return "", ""


def people_of(parsed: ParsedMessage, sender: str) -> list[str]:
    """Who took part: From, To and Cc, lowercased (F41 eligibility)."""
    people = [sender] if sender else []
    for address in (*parsed.to, *parsed.cc):
        email = contacts.normalise_email(clean_text(address.address))
        if "@" in email:
            people.append(email)
    return people


def format_addresses(addresses: Iterable[Address]) -> str:
    return ", ".join(_format_address(a) for a in addresses if a.address or a.name)


def _format_address(address: Address) -> str:
    name = clean_text(" ".join(address.name.split()))
    email = clean_text(address.address)
    if not name:
        return email
    if any(c in name for c in ',;<>"@()[]:'):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{email}>" if email else name


def aware_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return None
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
