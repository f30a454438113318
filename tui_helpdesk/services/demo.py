"""`tui-helpdesk init --demo`: a realistic organisation to try the product on (F82).

Everything goes through the same services as real use — the rules, the audit log and the ingest
path (threading, routing, assignment, autoresponder) all apply, so the demo shows what the
product really does with mail.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlalchemy import select
from sqlalchemy.orm import Session

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Organisation, User
from tui_helpdesk.mail.inbound import InboundMail
from tui_helpdesk.records import UserRecord
from tui_helpdesk.services import (
    assignment,
    autoresponder,
    domains,
    ingest,
    mailboxes,
    organisations,
    queues,
    routing,
    users,
)

DOMAIN = "acme.test"
ADMIN = "ada@acme.test"
AGENTS = [
    ("grace@acme.test", "Grace Hopper", "available"),
    ("linus@acme.test", "Linus Torvalds", "away"),
    ("margaret@acme.test", "Margaret Hamilton", "available"),
]


@dataclass(frozen=True)
class DemoMail:
    """One customer message of the demo; `reply_to` is the index of the mail it answers."""

    to: str
    sender: str
    subject: str
    body: str
    hours_ago: float
    reply_to: int | None = None
    html: bool = False
    attachment: tuple[str, str, bytes] | None = None


REMITTANCE = b"ref,amount\n88123,1200.00\n88124,1200.00\n"

MAILS = [
    DemoMail("support", "Jane Doe <jane.doe@example.com>", "Cannot log in after password reset",
             "Hi,\n\nsince resetting my password yesterday the login page says 'invalid token'.\n"
             "I tried two browsers. Can you help?\n\nJane", 50),
    DemoMail("support", "Jane Doe <jane.doe@example.com>", "Re: Cannot log in after password reset",
             "Update: it works in a private window, so it may be a cookie.\nStill odd.\n\nJane",
             46, reply_to=0),
    DemoMail("billing", "Accounts Payable <ap@globex.example>", "Invoice 2026-1142 paid twice",
             "Hello,\n\nwe paid invoice 2026-1142 twice (bank refs 88123 and 88124).\n"
             "Please refund one payment or credit it to the next invoice.\n\nRegards,\nGlobex AP",
             30, attachment=("remittance.csv", "text/csv", REMITTANCE)),
    DemoMail("sales", "Müller GmbH <einkauf@mueller.example>",
             "Angebot für 25 Lizenzen – Rückfrage",
             "Guten Tag,\n\nkönnen Sie uns ein Angebot über 25 Lizenzen schicken?\n"
             "Wir brauchen es bis Freitag.\n\nMit freundlichen Grüßen\nJürgen Müller", 20),
    DemoMail("support", "Kenji Sato <kenji@example.jp>", "エクスポートが途中で止まります",
             "こんにちは。\nCSVエクスポートが50%で止まります。\nよろしくお願いします。\n佐藤", 9),
    DemoMail("support", "Status Bot <noreply@status.example>", "Weekly uptime report",
             "<html><body><h1>Uptime</h1><p>All systems <b>operational</b> this week.</p>"
             "<ul><li>API: 99.99%</li><li>Web: 100%</li></ul></body></html>", 6, html=True),
    DemoMail("support", "Tom Evans <tom@initech.example>",
             "Feature request: [bold]dark mode[/bold]",
             "Any plans for a dark mode? The subject has square brackets on purpose: they are\n"
             "shown literally, never read as markup.\n\nTom", 3),
    DemoMail("billing", "Priya Patel <priya@example.org>", "Change billing address",
             "Hi, we moved. New address:\nPatel Consulting\n12 High Street\nCambridge CB2 1TN\n\n"
             "Thanks, Priya", 1.5),
    DemoMail("support", "Jane Doe <jane.doe@example.com>", "Re: Cannot log in after password reset",
             "Clearing cookies fixed it. Thanks for the quick answer!\n\nJane", 0.4, reply_to=1),
    DemoMail("support", "Alex Kim <alex.kim@example.net>", "API returns 502 on /v2/orders",
             "Since 09:10 UTC every POST to /v2/orders returns 502 Bad Gateway.\n"
             "Request id: 7f3c9a. This blocks our checkout.\n\nAlex", 0.1),
]  # fmt: skip


def load_demo(db: Database, settings: Settings) -> bool:
    """Fill an empty database with the demo organisation; False (and nothing done) otherwise."""
    with db.read() as session:
        if session.scalar(select(Organisation.id).limit(1)) is not None:
            return False
    with db.write() as session:
        admin = _people(session)
        aliases = _mailboxes(session, settings, admin)
        _queues(session, settings, admin)
    now = datetime.now(UTC)
    message_ids: list[str] = []
    for mail in MAILS:
        raw, message_id = _compose(mail, message_ids, now)
        message_ids.append(message_id)
        inbound = InboundMail(
            raw=raw,
            mail_from=_address(mail.sender),
            rcpt_tos=(aliases[mail.to],),
            received_at=now - timedelta(hours=mail.hours_ago),
        )
        with db.write() as session:
            ingest.store_inbound(session, settings, inbound)
    return True


def _people(session: Session) -> UserRecord:
    organisations.create(session, None, name="Acme", timezone="Europe/Amsterdam", language="en")
    os_login = getpass.getuser()
    taken = session.scalar(select(User.id).where(User.os_user == os_login))
    mapped = os_login if taken is None else None
    admin = users.add(session, None, email=ADMIN, name="Ada Lovelace", role="admin", os_user=mapped)
    domains.add(session, admin, DOMAIN)
    for email, name, availability in AGENTS:
        users.add(session, admin, email=email, name=name, role="agent", availability=availability)
    return admin


def _mailboxes(session: Session, settings: Settings, admin: UserRecord) -> dict[str, str]:
    boxes = {
        "support": ("Acme Support", "Customer support", "grace@acme.test"),
        "billing": ("Acme Billing", "Invoices and payments", "margaret@acme.test"),
        "sales": ("{{first_name}} from Acme Sales", "Quotes and licences", "grace@acme.test"),
    }
    aliases = {}
    for local_part, (display_name, description, responsible) in boxes.items():
        record = mailboxes.create(
            session, settings, admin, display_name=display_name, local_part=local_part,
            domain=DOMAIN, description=description, responsible=responsible, verified=True,
        )  # fmt: skip
        aliases[local_part] = record.alias
    autoresponder.configure(
        session, admin, "support@acme.test", enabled=True,
        subject="We have your message",
        body="Thanks for writing to Acme Support. We answer within one working day.",
    )  # fmt: skip
    return aliases


def _queues(session: Session, settings: Settings, admin: UserRecord) -> None:
    queues.create(session, admin, name="Support", description="First-line support", colour="blue")
    queues.add_mailbox(session, settings, admin, "Support", "support@acme.test")
    for email, role in [
        ("grace@acme.test", "agent"),
        ("linus@acme.test", "agent"),
        ("margaret@acme.test", "admin"),
    ]:
        queues.add_member(session, admin, "Support", email, role)
    assignment.set_assignment(session, admin, "Support", rule="round_robin", sticky_days=30)
    queues.create(session, admin, name="Billing", description="Money matters", colour="green")
    for address in ("billing@acme.test", "sales@acme.test"):
        queues.add_mailbox(session, settings, admin, "Billing", address)
    queues.add_member(session, admin, "Billing", "margaret@acme.test", "agent")
    assignment.set_assignment(session, admin, "Billing", rule="least_busy")
    routing.create_rule(
        session, admin, name="Invoices go to Billing",
        conditions=[{"field": "subject", "op": "contains", "value": "invoice"}],
        queue="Billing", tag="invoice",
    )  # fmt: skip


def _address(header: str) -> str:
    return header.rsplit("<", 1)[-1].rstrip(">")


def _compose(mail: DemoMail, earlier: list[str], now: datetime) -> tuple[bytes, str]:
    message = EmailMessage()
    message["From"] = mail.sender
    message["To"] = f"{mail.to}@{DOMAIN}"
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(now - timedelta(hours=mail.hours_ago))
    message_id = make_msgid(domain=_address(mail.sender).split("@")[1])
    message["Message-ID"] = message_id
    if mail.reply_to is not None:
        message["In-Reply-To"] = earlier[mail.reply_to]
        message["References"] = " ".join(earlier[: mail.reply_to + 1])
    if mail.html:
        message.set_content(mail.body, subtype="html")
    else:
        message.set_content(mail.body)
    if mail.attachment:
        name, content_type, data = mail.attachment
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes(), message_id
