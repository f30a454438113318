"""What parsing a message produces: plain frozen values, so the parts of the parser can share
them without importing each other (re-exported by mail/parse.py, where callers import them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Address:
    name: str  # display name, decoded (RFC 2047), "" if none
    address: str  # "local@domain", domain lowercased, local part as written; "" if unparseable


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str  # never empty: generated from the type when the mail names none
    content_type: str
    data: bytes  # transfer-decoded bytes
    disposition: str  # "attachment" | "inline"
    content_id: str  # normalised "<cid>" or ""


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
