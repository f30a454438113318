"""The texts a mailbox adds to what it sends: its signature (F18) and the notice closing a
conversation mails to the customer (F45). Admins set them; placeholders are checked when set,
so a typo shows then and not in a customer's inbox.

The signature goes on every mail a mailbox sends to customers (replies, forwards, new mail,
auto-replies, close notices; not the verification code nor the binding test, which go to the
mailbox itself). Its placeholders are the sending agent's and the mailbox's: {{first_name}},
{{last_name}}, {{agent_name}}, {{agent_email}}, {{mailbox_name}}, {{mailbox_address}}. The
close notice knows {{subject}}, {{conversation_id}} and {{agent_name}}.
"""

from __future__ import annotations

import html

from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Mailbox, User
from tui_helpdesk.errors import Invalid
from tui_helpdesk.mail.compose import fill, placeholders
from tui_helpdesk.records import CloseNoticeRecord, SignatureRecord, UserRecord
from tui_helpdesk.services import users
from tui_helpdesk.services.mailboxes.fields import display_name
from tui_helpdesk.services.mailboxes.lookup import audit_change, load
from tui_helpdesk.services.permissions import require_actor, require_admin

SIGNATURE_PLACEHOLDERS = (
    "first_name", "last_name", "agent_name", "agent_email", "mailbox_name", "mailbox_address",
)  # fmt: skip
NOTICE_PLACEHOLDERS = ("subject", "conversation_id", "agent_name")
TEXT_MAX = 20_000
HTML_MAX = 100_000
DEFAULT_CLOSE_NOTICE = (
    'Hello,\n\nwe have closed your request "{{subject}}" (#{{conversation_id}}). If there is '
    "anything else, just reply to this message and we will pick it up again.\n\n"
    "{{agent_name}}\n"
)


def _checked(value: str, *, field: str, known: tuple[str, ...], limit: int) -> str:
    value = value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8").strip()
    if len(value) > limit:
        raise Invalid(
            f"{field} must be at most {limit:,} characters, got {len(value):,}", field=field
        )
    for name in placeholders(value):
        if name not in known:
            raise Invalid(
                f"unknown placeholder {{{{{name}}}}} in {field}; use "
                + ", ".join(f"{{{{{k}}}}}" for k in known),
                field=field,
            )
    return value


def signature_values(
    session: Session, mailbox: Mailbox, agent: UserRecord | None
) -> dict[str, str]:
    """The values of the signature's placeholders: the sending agent's, or for automatic mail
    (no agent) the mailbox's responsible user's, else blank."""
    person = agent
    if person is None and mailbox.responsible_user_id is not None:
        user = session.get(User, mailbox.responsible_user_id)
        person = users.to_record(user) if user is not None else None
    values = {key: "" for key in SIGNATURE_PLACEHOLDERS}
    if person is not None:
        values |= {"first_name": person.first_name, "last_name": person.last_name,
                   "agent_name": person.name, "agent_email": person.email}  # fmt: skip
    return values | {"mailbox_name": display_name(session, mailbox),
                     "mailbox_address": mailbox.email_address}  # fmt: skip


def signature(session: Session, mailbox: Mailbox, agent: UserRecord | None) -> tuple[str, str]:
    """The mailbox's signature filled for `agent` (see signature_values), as text and HTML
    (the HTML one with the values escaped)."""
    values = signature_values(session, mailbox, agent)
    escaped = {key: html.escape(value) for key, value in values.items()}
    return fill(mailbox.signature_text, values), fill(mailbox.signature_html, escaped)


def get_signature(session: Session, actor: UserRecord | None, address: str) -> SignatureRecord:
    """Anyone may read it: agents see what their mail will carry."""
    actor = require_actor(actor)
    mailbox = load(session, actor, address)
    return SignatureRecord(mailbox.email_address, mailbox.signature_text, mailbox.signature_html)


def set_signature(
    session: Session, actor: UserRecord | None, address: str, *, text: str, html: str = ""
) -> SignatureRecord:
    """The signature as text, and optionally as HTML too ("" text and HTML: none)."""
    actor = require_admin(actor)
    mailbox = load(session, actor, address)
    text = _checked(text, field="signature_text", known=SIGNATURE_PLACEHOLDERS, limit=TEXT_MAX)
    html = _checked(html, field="signature_html", known=SIGNATURE_PLACEHOLDERS, limit=HTML_MAX)
    if html and not text:
        raise Invalid(
            "an HTML signature needs a text one too (mail always has a text part)",
            field="signature_text",
        )
    before = SignatureRecord(mailbox.email_address, mailbox.signature_text, mailbox.signature_html)
    mailbox.signature_text, mailbox.signature_html = text, html
    session.flush()
    after = SignatureRecord(mailbox.email_address, text, html)
    audit_change(session, actor, "mailbox.set_signature", mailbox, before, after)
    return after


def close_notice_of(mailbox: Mailbox) -> CloseNoticeRecord:
    custom = bool(mailbox.close_notice_text)
    return CloseNoticeRecord(
        mailbox=mailbox.email_address, enabled=bool(mailbox.close_notice_enabled),
        text=mailbox.close_notice_text if custom else DEFAULT_CLOSE_NOTICE, custom=custom,
    )  # fmt: skip


def get_close_notice(session: Session, actor: UserRecord | None, address: str) -> CloseNoticeRecord:
    actor = require_actor(actor)
    return close_notice_of(load(session, actor, address))


def set_close_notice(
    session: Session,
    actor: UserRecord | None,
    address: str,
    *,
    enabled: bool,
    text: str | None = None,
) -> CloseNoticeRecord:
    """On or off; `text` replaces the template ("" = the built-in one, None = keep it)."""
    actor = require_admin(actor)
    mailbox = load(session, actor, address)
    before = close_notice_of(mailbox)
    if text is not None:
        text = _checked(text, field="close_notice", known=NOTICE_PLACEHOLDERS, limit=TEXT_MAX)
        mailbox.close_notice_text = text
    mailbox.close_notice_enabled = enabled
    session.flush()
    after = close_notice_of(mailbox)
    audit_change(session, actor, "mailbox.set_close_notice", mailbox, before, after)
    return after
