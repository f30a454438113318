"""F16 binding test: does mail to the mailbox's real address reach its alias?

`send_test` mails a marked test message to the mailbox's own address; the customer's
forwarding rule (Google Workspace, Microsoft 365) sends it on to the alias, and ingest hands it
to `test_returned` before anything else is done with it. A mail whose header names a test of
that very mailbox is recorded as the binding working, with the time, and is not made into a
conversation: it is our own test mail (its bytes stay in its outbox job), not a customer's.
A header naming no test of that mailbox (forged, or of another mailbox) changes nothing: the
mail is stored like any other. The token is random (128 bits) and never shown.

A forwarding rule that strips unknown headers leaves the test looking like customer mail: it
then arrives as a conversation of its own, its body saying what it is.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from tui_helpdesk.config import Settings
from tui_helpdesk.db.models import Mailbox, MailboxBindingTest
from tui_helpdesk.errors import Conflict
from tui_helpdesk.mail.compose import AUTO_GENERATED, Draft, Person, compose, new_message_id
from tui_helpdesk.mail.parsed import ParsedMessage
from tui_helpdesk.records import BindingTestRecord, UserRecord
from tui_helpdesk.services import outbox
from tui_helpdesk.services.mailboxes.fields import sender
from tui_helpdesk.services.mailboxes.lookup import audit_change, load
from tui_helpdesk.services.permissions import require_admin

TEST_HEADER = "X-Helpdesk-Binding-Test"
TOKEN_MAX = 64


def send_test(
    session: Session,
    settings: Settings,
    actor: UserRecord | None,
    address: str,
    *,
    now: datetime | None = None,
) -> BindingTestRecord:
    """Queue the test mail to the mailbox's own address (pending mailboxes too: it goes to no
    one else, and checking the forwarding first is how setting up goes)."""
    actor = require_admin(actor)
    now = now or datetime.now(UTC)
    mailbox = load(session, actor, address)
    if mailbox.status != "active":
        raise Conflict(
            f"mailbox {mailbox.email_address} is inactive: it receives nothing", field="address"
        )
    token = secrets.token_hex(16)
    test = MailboxBindingTest(mailbox_id=mailbox.id, token=token, sent_at=now)
    session.add(test)
    target = mailbox.email_address
    draft = Draft(
        sender=sender(session, mailbox), to=(Person(target),),
        subject=f"Helpdesk forwarding test for {target}",
        text=(f"This is a test from the helpdesk. If your forwarding rule sends mail for {target} "
              f"on to {mailbox.alias}, the helpdesk receives this copy and shows the mailbox as "
              f"receiving (`tui-helpdesk mailbox list`).\n\nTest token: {token}\n"),
        auto_submitted=AUTO_GENERATED, headers=((TEST_HEADER, token),),
    )  # fmt: skip
    raw = compose(draft, message_id=new_message_id(target.split("@")[1]), now=now)
    outbox.enqueue(
        session, mailbox=mailbox, kind="test", mail_from=target, rcpt_to=[target], raw=raw,
        not_before=now,
    )  # fmt: skip
    session.flush()
    audit_change(session, actor, "mailbox.test_email", mailbox, None, {"sent_at": now})
    return _record(mailbox, test)


def _record(mailbox: Mailbox, test: MailboxBindingTest) -> BindingTestRecord:
    return BindingTestRecord(
        mailbox=mailbox.email_address, sent_at=test.sent_at, returned_at=test.returned_at,
        binding_checked_at=mailbox.binding_checked_at,
    )  # fmt: skip


def test_returned(
    session: Session, mailbox: Mailbox, parsed: ParsedMessage, when: datetime
) -> bool:
    """True when `parsed` is a test mail of this mailbox come back (recorded now); ingest
    then stores nothing else for it. Mail without our header costs no query."""
    token = parsed.header(TEST_HEADER).strip()
    if not token or len(token) > TOKEN_MAX:
        return False
    tests = MailboxBindingTest.__table__.c
    found = session.execute(
        update(MailboxBindingTest.__table__)
        .where(tests.token == token, tests.mailbox_id == mailbox.id)
        .values(returned_at=when)
        .returning(tests.id)
    ).first()
    if found is None:
        return False
    boxes = Mailbox.__table__.c
    session.execute(
        update(Mailbox.__table__).where(boxes.id == mailbox.id).values(binding_checked_at=when)
    )
    return True
