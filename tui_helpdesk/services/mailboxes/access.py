"""Who may send from a mailbox (F16, F20) and who sees a private mailbox's conversations (F21).

Sending needs a mailbox that is active and verified, and, when the mailbox lists its senders,
an actor on that list (admins included: the list is the mailbox's rule, and an admin who
must send from it adds themselves, audited). A private mailbox's conversations are seen only
by the users granted access, admins included; the rule itself is applied where every list,
count, search and action reads it: services/conversations/visibility.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Mailbox, MailboxGrant, MailboxSender, utcnow
from tui_helpdesk.errors import Conflict, Invalid, NotFound, PermissionDenied
from tui_helpdesk.records import MailboxRecord, UserRecord
from tui_helpdesk.services import changes, users
from tui_helpdesk.services.mailboxes.lookup import audit_change, load, status_of, to_record
from tui_helpdesk.services.permissions import require_admin


def require_sending(session: Session, actor: UserRecord, mailbox: Mailbox) -> None:
    """Refuse unless the mailbox may send (active, verified) and the actor may send from it."""
    status = status_of(mailbox)
    if status == "pending":
        raise Conflict(
            f"mailbox {mailbox.email_address} is pending: it sends once verified with the code "
            "mailed to it (`mailbox verify ADDRESS CODE`, `mailbox resend-code ADDRESS`)",
            field="mailbox",
        )
    if status != "active":
        raise Conflict(
            f"mailbox {mailbox.email_address} is {status}: it sends nothing", field="mailbox"
        )
    listed = select(MailboxSender.user_id).where(MailboxSender.mailbox_id == mailbox.id)
    if session.scalar(select(exists(listed))) and not session.scalar(
        select(exists(listed.where(MailboxSender.user_id == actor.id)))
    ):
        raise PermissionDenied(
            f"only the listed senders may send from {mailbox.email_address}, and "
            f"{actor.email} is not one of them",
            field="mailbox",
        )


def _user_ids(session: Session, actor: UserRecord, emails: Sequence[str], field: str) -> list[int]:
    found = []
    for email in dict.fromkeys(e.strip().lower() for e in emails):
        user = users.find(session, email)
        if user is None or user.organisation_id != actor.organisation_id:
            raise NotFound(f"no user with email {email!r}", field=field)
        found.append(user.id)
    return found


def _replace(session: Session, table: type, mailbox: Mailbox, user_ids: list[int]) -> None:
    session.execute(delete(table).where(table.mailbox_id == mailbox.id))  # type: ignore[attr-defined]
    session.add_all(table(mailbox_id=mailbox.id, user_id=u) for u in user_ids)


def set_senders(
    session: Session, actor: UserRecord | None, address: str, emails: Sequence[str] | None
) -> MailboxRecord:
    """Only these users may send from the mailbox (F20); None: anyone who may reply."""
    actor = require_admin(actor)
    mailbox = load(session, actor, address)
    if emails is not None and not emails:
        raise Invalid("list at least one sender, or let anyone send", field="senders")
    ids = _user_ids(session, actor, emails or (), "senders")
    before = to_record(session, mailbox)
    _replace(session, MailboxSender, mailbox, ids)
    return _changed(session, actor, "mailbox.set_senders", mailbox, before)


def set_private(
    session: Session, actor: UserRecord | None, address: str, *, grant: Sequence[str] | None
) -> MailboxRecord:
    """Private, its conversations seen only by `grant` (F21); None: public again."""
    actor = require_admin(actor)
    mailbox = load(session, actor, address)
    if grant is not None and not grant:
        raise Invalid("grant at least one user access, or make the mailbox public", field="grant")
    ids = _user_ids(session, actor, grant or (), "grant")
    before = to_record(session, mailbox)
    mailbox.private = grant is not None
    _replace(session, MailboxGrant, mailbox, ids)
    return _changed(session, actor, "mailbox.set_private", mailbox, before)


def _changed(
    session: Session, actor: UserRecord, action: str, mailbox: Mailbox, before: MailboxRecord
) -> MailboxRecord:
    mailbox.updated_at = utcnow()  # on SQLite the row's trigger tells open screens
    session.flush()
    after = to_record(session, mailbox)
    audit_change(session, actor, action, mailbox, before, after)
    changes.notify(session)  # lists depend on who may see what
    return after
