"""What a mailbox's own fields may hold (F10), and the name its mail is sent under."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Mailbox, User
from tui_helpdesk.errors import Invalid
from tui_helpdesk.mail.addresses import clean_line
from tui_helpdesk.mail.compose import Person, fill
from tui_helpdesk.services import domains, organisations

ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
DOT_ATOM = re.compile(rf"^{ATEXT}(\.{ATEXT})*$")
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
PLACEHOLDERS = ("first_name", "last_name")


def validate_display_name(value: str) -> str:
    """1-255 characters; {{first_name}} / {{last_name}} of the responsible user may be used."""
    value = organisations.validate_name(value, what="display name", field="display_name")
    for found in PLACEHOLDER.findall(value):
        if found not in PLACEHOLDERS:
            raise Invalid(
                f"unknown placeholder {{{{{found}}}}} in display name; "
                "use {{first_name}} or {{last_name}}",
                field="display_name",
            )
    return value


def validate_local_part(value: str) -> str:
    """Lowercase RFC 5321 dot-atom of at most 64 characters."""
    if not value:
        raise Invalid("local part is required (the part before the @)", field="local_part")
    if value != value.lower():
        raise Invalid(f"local part must be lowercase: {value!r}", field="local_part")
    if len(value) > 64:
        raise Invalid(
            f"local part must be at most 64 characters, got {len(value)}", field="local_part"
        )
    if not DOT_ATOM.match(value):
        raise Invalid(
            f"local part {value!r} is not a valid dot-atom: use letters, digits and "
            "!#$%&'*+/=?^_`{|}~- with single dots between them",
            field="local_part",
        )
    return value


def check_field(field: str, value: str) -> str:
    """Check one field of the mailbox form as it is typed, without the database: the same
    validators create and update run (F10), so the message beside the field is the one saving
    would give. What needs the database (the domain is the organisation's, the responsible
    user exists, the address is free) is checked on save."""
    if field == "display_name":
        return validate_display_name(value)
    if field == "local_part":
        return validate_local_part(value)
    if field == "domain":
        return domains.validate_hostname(value)
    if field in ("timezone", "language") and value.strip():
        check = organisations.validate_timezone if field == "timezone" else (
            organisations.validate_language)  # fmt: skip
        return check(value, field=field)
    return value.strip()


def display_name(session: Session, mailbox: Mailbox) -> str:
    """The display name with {{first_name}}/{{last_name}} of its responsible user (F10)."""
    user = session.get(User, mailbox.responsible_user_id) if mailbox.responsible_user_id else None
    values = {"first_name": user.first_name, "last_name": user.last_name} if user else {}
    values = {"first_name": "", "last_name": ""} | values
    return clean_line(fill(mailbox.display_name, values), 255)


def sender(session: Session, mailbox: Mailbox) -> Person:
    """Who the mailbox's mail is from (F43): `"Display Name" <mailbox address>`."""
    return Person(address=mailbox.email_address, name=display_name(session, mailbox))
