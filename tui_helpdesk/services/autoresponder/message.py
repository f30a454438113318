"""Building the automatic reply (RFC 3834): header-safe subject, placeholders, MIME bytes.

Pure: no database. The reply carries Auto-Submitted: auto-replied and our loop header so that
neither we nor other robots answer it again.
"""

from __future__ import annotations

import re
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from tui_helpdesk.services.autoresponder.rules import LOOP_HEADER

MAX_SUBJECT = 255
MAX_REFERENCES = 20
MAX_QUOTED_SUBJECT = 200
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")  # never in a header line


def clean_line(text: str, limit: int) -> str:
    """One header-safe line: control characters and line breaks removed, length bounded."""
    return " ".join(CONTROL.sub(" ", text).split())[:limit]


def fill(template: str, values: dict[str, str]) -> str:
    """Replace {{name}} placeholders we know; everything else stays as written."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: values.get(m.group(1), m.group(0)), template)


def reply_subject(configured: str, original: str, token: str, values: dict[str, str]) -> str:
    """The configured subject (placeholders filled) or "Re: <original>", with our token."""
    subject = clean_line(fill(configured, values), MAX_SUBJECT) if configured.strip() else ""
    if not subject:
        quoted = clean_line(original, MAX_QUOTED_SUBJECT)
        subject = quoted if quoted.lower().startswith("re:") else f"Re: {quoted}".strip()
    return subject if token in subject else f"{subject} {token}"


def safe_message_ids(values: tuple[str, ...] | list[str]) -> list[str]:
    """Message-IDs safe to repeat in our headers (printable ASCII, one <...> each)."""
    return [
        v for v in values
        if v and v.isascii() and v.isprintable() and " " not in v and len(v) <= 250
    ]  # fmt: skip


def build_reply(
    *,
    from_name: str,
    from_address: str,
    to_address: str,
    subject: str,
    body: str,
    in_reply_to: str | None,
    references: tuple[str, ...],
    now: datetime,
) -> tuple[bytes, str]:
    """RFC 5322 bytes of the auto-reply and its Message-ID (on the mailbox's domain)."""
    utf8 = not (to_address.isascii() and from_address.isascii())
    msg = EmailMessage(policy=policy.SMTPUTF8 if utf8 else policy.SMTP)
    domain = from_address.rpartition("@")[2]
    message_id = make_msgid(idstring="autoreply", domain=domain)
    msg["From"] = Address(display_name=clean_line(from_name, 255), addr_spec=from_address)
    msg["To"] = to_address
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    parent = safe_message_ids([in_reply_to] if in_reply_to else [])
    if parent:
        msg["In-Reply-To"] = parent[0]
        chain = safe_message_ids([*references, parent[0]])
        msg["References"] = " ".join(dict.fromkeys(chain[-MAX_REFERENCES:]))
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    msg[LOOP_HEADER] = from_address
    msg.set_content(body)
    return msg.as_bytes(), message_id
