"""F16 verification: a new mailbox is pending until the 6-digit code mailed to its address is
entered; only then may it send.

The code is stored only as a salted scrypt hash, and expires after
verification.code_valid_minutes. Wrong codes are counted across resends: after
verification.max_wrong_codes in a row, verifying and resending are locked for lock_minutes and
the count starts again. A 6-digit code offers a million tries; five per quarter hour while a
code lives half an hour leaves a guesser ten, so the lock, not the hash, is what protects it
(the hash keeps the code out of reach of whoever only reads the database).

A wrong code is a result, not an error: the service returns `verified=False` so that the
count of wrong tries commits; the caller (CLI, TUI) then reports it as invalid input.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from tui_helpdesk.config import Settings
from tui_helpdesk.db.models import Mailbox, MailboxVerification
from tui_helpdesk.errors import Conflict, Invalid, LimitReached
from tui_helpdesk.mail.compose import AUTO_GENERATED, Draft, Person, compose, new_message_id
from tui_helpdesk.records import UserRecord, VerificationRecord
from tui_helpdesk.services import changes, outbox
from tui_helpdesk.services.mailboxes.fields import sender
from tui_helpdesk.services.mailboxes.lookup import audit_change, load, to_record
from tui_helpdesk.services.permissions import require_admin

CODE_DIGITS = 6
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def hash_code(code: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(code.encode("ascii"), salt=salt, **SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def code_matches(code: str, stored: str) -> bool:
    salt = stored.split("$")[1]
    return hmac.compare_digest(hash_code(code, bytes.fromhex(salt)), stored)


def issue_code(session: Session, settings: Settings, mailbox: Mailbox, now: datetime) -> None:
    """A new code for the mailbox (the old one stops working), mailed to its own address."""
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    row = session.get(MailboxVerification, mailbox.id)
    if row is None:
        row = MailboxVerification(mailbox_id=mailbox.id, failed_attempts=0)
        session.add(row)
    minutes = settings.verification.code_valid_minutes
    row.code_hash, row.sent_at = hash_code(code), now
    row.expires_at = now + timedelta(minutes=minutes)
    address = mailbox.email_address
    draft = Draft(
        sender=sender(session, mailbox), to=(Person(address),),
        subject=f"Verification code for {address}",
        text=(f"Enter this code to verify {address} in the helpdesk:\n\n    {code}\n\n"
              f"With the command line: tui-helpdesk mailbox verify {address} {code}\n\n"
              f"The code is valid for {minutes} minutes. If nobody in your team is setting up "
              "this mailbox, ignore this mail.\n"),
        auto_submitted=AUTO_GENERATED,
    )  # fmt: skip
    raw = compose(draft, message_id=new_message_id(mailbox.email_address.split("@")[1]), now=now)
    outbox.enqueue(
        session, mailbox=mailbox, kind="verification", mail_from=address, rcpt_to=[address],
        raw=raw, not_before=now,
    )  # fmt: skip


def _record(
    mailbox: Mailbox, row: MailboxVerification | None, limit: int, message: str
) -> VerificationRecord:
    return VerificationRecord(
        mailbox=mailbox.email_address, verified=mailbox.verified_at is not None,
        verified_at=mailbox.verified_at,
        code_sent_at=row.sent_at if row else None, code_expires_at=row.expires_at if row else None,
        tries_left=limit - row.failed_attempts if row else limit,
        locked_until=row.locked_until if row else None, message=message,
    )  # fmt: skip


def _pending(session: Session, actor: UserRecord, address: str) -> Mailbox:
    mailbox = load(session, actor, address)
    if mailbox.verified_at is not None:
        raise Conflict(f"mailbox {mailbox.email_address} is verified already", field="address")
    if mailbox.status != "active":
        raise Conflict(
            f"mailbox {mailbox.email_address} is inactive: activate it first", field="address"
        )
    return mailbox


def _check_lock(row: MailboxVerification | None, now: datetime) -> None:
    if row is not None and row.locked_until is not None and now < row.locked_until:
        raise LimitReached(
            f"too many wrong codes: verification is locked until "
            f"{row.locked_until:%Y-%m-%d %H:%M} UTC",
            field="code",
        )


def verify(
    session: Session,
    settings: Settings,
    actor: UserRecord | None,
    address: str,
    code: str,
    *,
    now: datetime | None = None,
) -> VerificationRecord:
    """Verify with the code mailed to the address; a wrong code counts toward the lock."""
    actor = require_admin(actor)
    now = now or datetime.now(UTC)
    limit = settings.verification.max_wrong_codes
    mailbox = _pending(session, actor, address)
    row = session.get(MailboxVerification, mailbox.id, with_for_update=True)
    if row is None:
        raise Conflict(
            f"no code was sent to {mailbox.email_address}: `mailbox resend-code` sends one",
            field="code",
        )
    _check_lock(row, now)
    typed = "".join(code.split())
    if len(typed) != CODE_DIGITS or not typed.isascii() or not typed.isdigit():
        raise Invalid(f"the code has {CODE_DIGITS} digits, got {code!r}", field="code")
    if now >= row.expires_at:
        raise Conflict("the code has expired: `mailbox resend-code` mails a new one", field="code")
    if not code_matches(typed, row.code_hash):
        return _wrong(session, settings, actor, mailbox, row, now)
    before = to_record(session, mailbox)
    mailbox.verified_at = now
    session.delete(row)
    session.flush()
    audit_change(session, actor, "mailbox.verify", mailbox, before, to_record(session, mailbox))
    changes.notify(session)
    return _record(mailbox, None, limit, f"{mailbox.email_address} is verified: it may send")


def _wrong(
    session: Session,
    settings: Settings,
    actor: UserRecord,
    mailbox: Mailbox,
    row: MailboxVerification,
    now: datetime,
) -> VerificationRecord:
    limit = settings.verification.max_wrong_codes
    row.failed_attempts += 1
    message = f"wrong code ({limit - row.failed_attempts} tries left before a lock)"
    if row.failed_attempts >= limit:
        row.locked_until = now + timedelta(minutes=settings.verification.lock_minutes)
        row.failed_attempts = 0
        message = (f"wrong code, {limit} times: verification is locked until "
                   f"{row.locked_until:%Y-%m-%d %H:%M} UTC")  # fmt: skip
    session.flush()
    after = {"failed_attempts": row.failed_attempts, "locked_until": row.locked_until}
    audit_change(session, actor, "mailbox.verify_failed", mailbox, None, after)
    return _record(mailbox, row, limit, message)


def resend_code(
    session: Session,
    settings: Settings,
    actor: UserRecord | None,
    address: str,
    *,
    now: datetime | None = None,
) -> VerificationRecord:
    """Mail a new code (the old one stops working); not while locked, nor twice in a row
    within verification.resend_interval_seconds."""
    actor = require_admin(actor)
    now = now or datetime.now(UTC)
    mailbox = _pending(session, actor, address)
    row = session.get(MailboxVerification, mailbox.id, with_for_update=True)
    _check_lock(row, now)
    interval = timedelta(seconds=settings.verification.resend_interval_seconds)
    if row is not None and now < row.sent_at + interval:
        wait = int((row.sent_at + interval - now).total_seconds()) + 1
        raise LimitReached(f"a code was sent just now: wait {wait} s to send another", field="code")
    issue_code(session, settings, mailbox, now)
    session.flush()
    audit_change(session, actor, "mailbox.resend_code", mailbox, None, {"sent_at": now})
    row = session.get_one(MailboxVerification, mailbox.id)
    limit = settings.verification.max_wrong_codes
    return _record(mailbox, row, limit, f"a new code is on its way to {mailbox.email_address}")
