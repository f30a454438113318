"""How a mailbox sends (F17): through the platform relay (`[outbound]` in the config), or
through its own server with host, port, none / STARTTLS / implicit TLS and optional AUTH.

The password is stored as given (the database is inside the trust boundary, F3) and leaves
the services only towards the server it is for (outbox.claim). Records, the audit log and
every printout carry it masked.
"""

from __future__ import annotations

import ipaddress
import re

from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Mailbox, MailboxTransport
from tui_helpdesk.errors import Invalid
from tui_helpdesk.records import TransportRecord, UserRecord, to_jsonable
from tui_helpdesk.services import audit, mailboxes
from tui_helpdesk.services.permissions import require_admin
from tui_helpdesk.services.vocabulary import TRANSPORT_SECURITIES

LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){LABEL}(\.{LABEL})*$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
USERNAME_MAX = 255
PASSWORD_MAX = 1024


def mask(secret: str) -> str:
    """ "" stays ""; anything else is "****" and, when long enough to spare them, its last
    two characters, so an admin can tell which one is set without reading it."""
    if not secret:
        return ""
    return "****" + (secret[-2:] if len(secret) >= 8 else "")


def validate_host(value: str) -> str:
    host = value.strip().lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    if not HOSTNAME.match(host):
        raise Invalid(f"host must be a host name or an IP address, got {value!r}", field="host")
    return host


def validate_port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise Invalid(f"port must be 1-65535, got {value}", field="port")
    return value


def validate_security(value: str) -> str:
    if value not in TRANSPORT_SECURITIES:
        raise Invalid(
            f"security must be one of {', '.join(TRANSPORT_SECURITIES)}, got {value!r}",
            field="security",
        )
    return value


def _credentials(username: str, password: str) -> tuple[str, str]:
    if bool(username) != bool(password):
        raise Invalid(
            "AUTH needs both a username and a password (or neither)",
            field="password" if username else "username",
        )
    if len(username) > USERNAME_MAX or CONTROL.search(username):
        raise Invalid(
            f"username must be at most {USERNAME_MAX} characters, without line breaks or "
            "control characters",
            field="username",
        )
    if len(password) > PASSWORD_MAX or CONTROL.search(password):
        raise Invalid(
            f"password must be at most {PASSWORD_MAX} characters, without line breaks or "
            "control characters",
            field="password",
        )
    return username, password


def _record(mailbox: Mailbox, row: MailboxTransport | None) -> TransportRecord:
    if row is None:
        return TransportRecord(
            mailbox=mailbox.email_address, platform=True, host="", port=None, security="",
            username="", password="",
        )  # fmt: skip
    return TransportRecord(
        mailbox=mailbox.email_address, platform=False, host=row.host, port=row.port,
        security=row.security, username=row.username, password=mask(row.password),
    )  # fmt: skip


def get_transport(session: Session, actor: UserRecord | None, address: str) -> TransportRecord:
    actor = require_admin(actor)
    mailbox = mailboxes.load(session, actor, address)
    return _record(mailbox, session.get(MailboxTransport, mailbox.id))


def set_transport(
    session: Session,
    actor: UserRecord | None,
    address: str,
    *,
    platform: bool = False,
    host: str = "",
    port: int = 587,
    security: str = "starttls",
    username: str = "",
    password: str = "",
) -> TransportRecord:
    """The platform relay (platform=True) or the mailbox's own server; audited, masked."""
    actor = require_admin(actor)
    mailbox = mailboxes.load(session, actor, address)
    row = session.get(MailboxTransport, mailbox.id)
    before = _record(mailbox, row)
    if platform:
        if row is not None:
            session.delete(row)
    else:
        values = {
            "host": validate_host(host), "port": validate_port(port),
            "security": validate_security(security),
        }  # fmt: skip
        values["username"], values["password"] = _credentials(username.strip(), password)
        if row is None:
            row = MailboxTransport(mailbox_id=mailbox.id)
            session.add(row)
        for key, value in values.items():
            setattr(row, key, value)
    session.flush()
    after = _record(mailbox, None if platform else row)
    audit.record(
        session, actor, "mailbox.set_transport", "mailbox", mailbox.id,
        organisation_id=mailbox.organisation_id,
        before=to_jsonable(before), after=to_jsonable(after),
    )  # fmt: skip
    return after
