"""Composing the mail we send (F43, F18, RFC 5322, RFC 3834): pure, no database.

Every mail the helpdesk sends is built here - agents' replies, forwards and new mail,
auto-replies, close notices, verification codes and binding tests - so each one gets the same
headers: From `"Display Name" <mailbox address>`, a Message-ID on the mailbox's domain, Date,
In-Reply-To and a trimmed References chain when it answers something, our subject token once,
`Auto-Submitted` on automatic mail only, and multipart/alternative (a text part always) when
the body or the signature has HTML. What a person typed reaches here already checked
(addresses.py); derived text (a customer's subject) is made one safe line here.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from tui_helpdesk.mail.addresses import CONTROL, clean_line
from tui_helpdesk.mail.tokens import subject_token, without_tokens

MAX_SUBJECT = 255  # what a person may type
MAX_QUOTED_SUBJECT = 200  # of a customer's subject, in ours
MAX_REFERENCES = 20
MESSAGE_ID_MAX = 250
MAX_QUOTED_TEXT = 100_000
AUTO_REPLIED = "auto-replied"  # RFC 3834: an automatic answer to a message
AUTO_GENERATED = "auto-generated"  # RFC 3834: automatic, not an answer (notices, codes, tests)
LOOP_HEADER = "X-TUI-Helpdesk-Loop"  # on our automatic mail: never answered automatically
LEADS = re.compile(r"^\s*(?:(?:re|aw|sv|antw|fwd?|wg|tr)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)
PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@dataclass(frozen=True)
class Person:
    """An address (checked, or one we hold) and the name shown beside it."""

    address: str
    name: str = ""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Draft:
    """Everything a mail says; `compose` turns it into the bytes the outbox sends."""

    sender: Person
    to: tuple[Person, ...]
    subject: str
    text: str
    html: str = ""
    cc: tuple[Person, ...] = ()
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    auto_submitted: str = ""  # "", AUTO_REPLIED or AUTO_GENERATED (then the loop header too)
    headers: tuple[tuple[str, str], ...] = ()  # our own headers (a test token)
    attachments: tuple[Attachment, ...] = ()


def fill(template: str, values: dict[str, str]) -> str:
    """Replace the {{name}} placeholders we know; everything else stays as written."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def placeholders(template: str) -> list[str]:
    """The {{name}} placeholders a template uses, in order (to refuse unknown ones early)."""
    return [match.group(1) for match in PLACEHOLDER.finditer(template)]


# --- subject and thread ----------------------------------------------------------------------


def thread_subject(subject: str, *, prefix: str, conversation_id: int, lead: str = "") -> str:
    """`lead: subject [PREFIX#id]`: earlier Re:/Fwd: leads and every token of ours taken out,
    so the lead and the conversation's token each stand there once, whatever came before."""
    core = without_tokens(clean_line(subject, MAX_QUOTED_SUBJECT), prefix)
    if lead:
        core = LEADS.sub("", core)
    parts = (f"{lead}:" if lead else "", core, subject_token(prefix, conversation_id))
    return " ".join(part for part in parts if part)


def safe_message_ids(values: Sequence[str | None]) -> list[str]:
    """Message-IDs fit to repeat in our headers: printable ASCII, no space, bounded."""
    return [
        v for v in values
        if v and v.isascii() and v.isprintable() and " " not in v and len(v) <= MESSAGE_ID_MAX
    ]  # fmt: skip


def references_for(parent_id: str | None, parent_references: Sequence[str]) -> tuple[str, ...]:
    """The References of an answer to `parent_id`: its references and itself, repeats
    dropped, trimmed as RFC 5322 section 3.6.4 and RFC 5537 suggest when long: the first
    (the thread's root) and the newest ones stay."""
    parent = safe_message_ids([parent_id])
    earlier = [r for r in safe_message_ids(list(parent_references)) if r not in parent]
    chain = list(dict.fromkeys([*earlier, *parent]))
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return tuple(chain)


def new_message_id(domain: str) -> str:
    """An unguessable Message-ID on the mailbox's own domain."""
    return f"<{secrets.token_hex(16)}@{domain}>"


# --- bodies ----------------------------------------------------------------------------------


def text_as_html(text: str) -> str:
    return "<div>" + html.escape(text).replace("\n", "<br>\n") + "</div>"


def body_parts(
    text: str, *, html: str = "", signature_text: str = "", signature_html: str = "",
    quote: str = "",
) -> tuple[str, str]:  # fmt: skip
    """The text part and the HTML part ("" for none) of a mail: the body, the signature below
    a "-- " line (RFC 3676), then the quoted message. There is an HTML part only when the
    body or the signature has HTML; the parts that have none are converted for it."""
    signature = signature_text.strip()
    full = text.rstrip() + (f"\n\n-- \n{signature}" if signature else "")
    full += f"\n\n{quote.rstrip()}" if quote.strip() else ""
    if not (html or signature_html):
        return full + "\n", ""
    parts = [html or text_as_html(text.rstrip())]
    signature_part = signature_html or (text_as_html(signature) if signature else "")
    if signature_part:
        parts.append(f"<div>-- <br>\n{signature_part}</div>")
    if quote.strip():
        parts.append(f"<blockquote>{text_as_html(quote.rstrip())}</blockquote>")
    return full + "\n", "\n".join(parts)


def quoted(text: str, *, author: str, when: datetime | None) -> str:
    """The message answered, quoted below ours: "On <date>, <author> wrote:" and "> " lines."""
    lines = text[:MAX_QUOTED_TEXT].replace("\r\n", "\n").rstrip().split("\n")
    head = f"On {format_datetime(when)}, {author} wrote:" if when else f"{author} wrote:"
    return head + "\n" + "\n".join(f"> {line}" if line else ">" for line in lines) + "\n"


# --- the bytes -------------------------------------------------------------------------------


def compose(draft: Draft, *, message_id: str, now: datetime) -> bytes:
    """RFC 5322 bytes (CRLF) of the draft, as the outbox sends them."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = _address(draft.sender)
    msg["To"] = [_address(p) for p in draft.to]
    if draft.cc:
        msg["Cc"] = [_address(p) for p in draft.cc]
    _set_text(msg, "Subject", clean_line(draft.subject, 998))
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    parent = safe_message_ids([draft.in_reply_to])
    if parent:
        msg["In-Reply-To"] = parent[0]
    references = safe_message_ids(list(draft.references))
    if references:
        msg["References"] = " ".join(references)
    if draft.auto_submitted:
        msg["Auto-Submitted"] = draft.auto_submitted
        msg["X-Auto-Response-Suppress"] = "All"  # Exchange's own loop guard
        msg[LOOP_HEADER] = draft.sender.address
    for name, value in draft.headers:
        _set_text(msg, name, clean_line(value, 998))
    _set_body(msg, draft)
    return msg.as_bytes()


def _set_text(msg: EmailMessage, name: str, value: str) -> None:
    """A free-text header. Text that looks like an RFC 2047 encoded word ("=?utf-8?q?x?=")
    would be decoded by the reader (and by the email package itself when it is set as a
    plain value), so such a value goes out encoded as a whole: it reads back as written."""
    if "=?" in value:
        msg.set_raw(name, Header(value, "utf-8", header_name=name).encode())
    else:
        msg[name] = value


def _address(person: Person) -> Address:
    name = clean_line(person.name, 255) if person.name else ""
    return Address(display_name=name, addr_spec=person.address)


def _set_body(msg: EmailMessage, draft: Draft) -> None:
    text = _body_text(draft.text)
    msg.set_content(text)
    if draft.html:
        msg.add_alternative(_body_text(draft.html), subtype="html")
    for attachment in draft.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        if CONTROL.search(attachment.content_type) or not subtype:
            maintype, subtype = "application", "octet-stream"
        msg.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype,
            filename=clean_line(attachment.filename, 255) or "attachment",
        )  # fmt: skip
    for part in msg.iter_parts():  # add_alternative gives its part a MIME-Version of its own
        del part["MIME-Version"]


def _body_text(text: str) -> str:
    """Line ends as one newline (the generator writes CRLF); no NUL, no lone surrogate."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text if text.endswith("\n") else text + "\n"
