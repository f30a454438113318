"""Bytes → ParsedMessage. Pure, no database; never raises for any input.

Every accessor of the stdlib `email` package that can raise on broken mail is wrapped here,
so callers never need their own try/except around mail data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime


@dataclass(frozen=True)
class Address:
    name: str
    address: str


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes
    disposition: str
    content_id: str


@dataclass(frozen=True)
class BounceInfo:
    original_message_id: str | None
    failed_recipients: tuple[str, ...]
    status: str
    diagnostic: str
    permanent: bool


@dataclass(frozen=True)
class ParsedMessage:
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    sender: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    date: datetime | None
    date_header: str
    text_body: str
    html_body: str
    attachments: tuple[ParsedAttachment, ...]
    defects: tuple[str, ...]
    auto_submitted: str
    precedence: str
    has_list_headers: bool
    bounce: BounceInfo | None
    headers: tuple[tuple[str, str], ...]
    sha256: str
    size: int

    def header(self, name: str) -> str:
        """First value of a header, case-insensitive; "" when absent."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return ""


def normalise_message_id(value: str) -> str | None:
    """Return "<id@host>" with one pair of angle brackets, or None when nothing usable."""
    text = "".join(str(value or "").split())
    text = text.strip("<>")
    return f"<{text}>" if text else None


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse raw RFC 5322 bytes; simple first version (never raises)."""
    try:
        msg = BytesParser(policy=policy.compat32).parsebytes(raw)
        headers = tuple((k, str(v)) for k, v in msg.items())
    except Exception:
        msg, headers = None, ()

    def first(name: str) -> str:
        for k, v in headers:
            if k.lower() == name:
                return v
        return ""

    def addrs(name: str) -> tuple[Address, ...]:
        return tuple(Address(n, a) for n, a in getaddresses([first(name)]) if a)

    try:
        date = parsedate_to_datetime(first("date")) if first("date") else None
    except Exception:
        date = None
    body = ""
    if msg is not None:
        try:
            part = msg if not msg.is_multipart() else msg.get_payload(0)
            payload = part.get_payload(decode=True) or b""
            body = payload.decode("utf-8", errors="replace")
        except Exception:
            body = ""
    froms = addrs("from")
    return ParsedMessage(
        message_id=normalise_message_id(first("message-id")),
        in_reply_to=tuple(x for x in [normalise_message_id(first("in-reply-to"))] if x),
        references=(),
        subject=first("subject"),
        sender=froms[0] if froms else None,
        to=addrs("to"),
        cc=addrs("cc"),
        reply_to=addrs("reply-to"),
        date=date if date is not None and date.tzinfo is not None else None,
        date_header=first("date"),
        text_body=body,
        html_body="",
        attachments=(),
        defects=(),
        auto_submitted=first("auto-submitted").strip().lower(),
        precedence=first("precedence").strip().lower(),
        has_list_headers=any(k.lower().startswith("list-") for k, _ in headers),
        bounce=None,
        headers=headers,
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
    )
