"""Autoresponder administration (F19): read and configure a mailbox's automatic reply.

Admins only, audited; a refused change creates and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Autoresponder, Mailbox
from tui_helpdesk.errors import Invalid, NotFound
from tui_helpdesk.mail.addresses import CONTROL
from tui_helpdesk.mail.compose import MAX_SUBJECT
from tui_helpdesk.records import AutoresponderRecord, UserRecord
from tui_helpdesk.services import audit, mailboxes, permissions
from tui_helpdesk.services.autoresponder.rules import MAX_DELAY, WINDOW_FORMAT, mailbox_timezone
from tui_helpdesk.services.unset import UNSET

MAX_BODY = 20_000
MAX_WINDOWS = 50


def validate_windows(raw: object) -> list[dict[str, str]]:
    """[{"start": "2026-12-24T00:00", "end": "2026-12-27T00:00"}] in mailbox local time."""
    if not isinstance(raw, (list, tuple)):
        raise Invalid('windows: expected a list of {"start", "end"} local times', field="windows")
    if len(raw) > MAX_WINDOWS:
        raise Invalid(f"windows: at most {MAX_WINDOWS}", field="windows")
    windows = [_validate_window(item, n) for n, item in enumerate(raw, start=1)]
    return sorted(windows, key=lambda w: w["start"])


def _validate_window(item: object, n: int) -> dict[str, str]:
    where = f"windows: window {n}"
    if not isinstance(item, dict):
        raise Invalid(f'{where}: expected {{"start", "end"}}, got {item!r}', field="windows")
    bounds = []
    for key in ("start", "end"):
        value = item.get(key)
        try:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is not None:
            raise Invalid(
                f"{where}: {key} must be a local date and time like 2026-12-24T09:00 "
                f"(no offset: the mailbox timezone applies), got {value!r}",
                field="windows",
            )
        bounds.append(moment.replace(second=0, microsecond=0))
    if bounds[0] >= bounds[1]:
        raise Invalid(f"{where}: start must be before end", field="windows")
    return {"start": bounds[0].strftime(WINDOW_FORMAT), "end": bounds[1].strftime(WINDOW_FORMAT)}


def to_record(session: Session, mailbox: Mailbox, row: Autoresponder | None) -> AutoresponderRecord:
    return AutoresponderRecord(
        mailbox=mailbox.email_address,
        enabled=bool(row and row.enabled),
        subject=row.subject if row else "",
        body=row.body if row else "",
        windows=tuple(dict(w) for w in (row.windows if row else []) or []),
        timezone=mailbox_timezone(session, mailbox),
        delay_seconds=row.delay_seconds if row else 0,
        updated_at=row.updated_at if row else mailbox.updated_at,
    )


def _audit_view(record: AutoresponderRecord) -> dict[str, Any]:
    return {
        "enabled": record.enabled,
        "subject": record.subject,
        "body": record.body,
        "windows": list(record.windows),
        "delay_seconds": record.delay_seconds,
    }


def get(session: Session, actor: UserRecord, mailbox_address: str) -> AutoresponderRecord:
    permissions.require_actor(actor)
    mailbox = mailboxes.load(session, actor, mailbox_address)
    return to_record(session, mailbox, session.get(Autoresponder, mailbox.id))


def configure(
    session: Session,
    actor: UserRecord,
    mailbox_address: str,
    *,
    enabled: bool = UNSET,
    subject: str = UNSET,
    body: str = UNSET,
    windows: list[dict[str, str]] = UNSET,
    delay_seconds: int = UNSET,
) -> AutoresponderRecord:
    """Set up a mailbox's autoresponder (admins only; audited). Left-out fields stay."""
    permissions.require_admin(actor)
    mailbox = mailboxes.load(session, actor, mailbox_address)
    if mailbox.deleted_at is not None:
        raise NotFound(f"no mailbox {mailbox_address!r}", field="address")
    row = session.get(Autoresponder, mailbox.id)
    before = to_record(session, mailbox, row)
    given = {
        "enabled": enabled, "subject": subject, "body": body, "windows": windows,
        "delay_seconds": delay_seconds,
    }  # fmt: skip
    changes = {key: VALIDATORS[key](value) for key, value in given.items() if value is not UNSET}
    if changes.get("enabled", before.enabled) and not changes.get("body", before.body).strip():
        raise Invalid(
            "body: write the text of the automatic reply before enabling it", field="body"
        )
    if row is None:  # only now: a refused change creates nothing
        row = Autoresponder(mailbox_id=mailbox.id, enabled=False, subject="", body="")
        row.windows, row.delay_seconds = [], 0
        session.add(row)
    for key, value in changes.items():
        setattr(row, key, value)
    session.flush()
    after = to_record(session, mailbox, row)
    if _audit_view(after) != _audit_view(before):
        audit.record(
            session, actor, "mailbox.autoresponder.update", "mailbox", mailbox.id,
            organisation_id=mailbox.organisation_id,
            before=_audit_view(before), after=_audit_view(after),
        )  # fmt: skip
    return after


def _check_enabled(value: object) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"enabled: expected true or false, got {value!r}", field="enabled")
    return value


def _check_delay(delay: object) -> int:
    if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= MAX_DELAY:
        raise Invalid(
            f"delay_seconds: a whole number from 0 to {MAX_DELAY} (one day), got {delay!r}",
            field="delay_seconds",
        )
    return delay


def _text(value: object, field: str, limit: int, *, one_line: bool) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{field}: expected text", field=field)
    if len(value) > limit:
        raise Invalid(f"{field}: at most {limit} characters, got {len(value)}", field=field)
    if one_line and CONTROL.search(value):
        raise Invalid(f"{field}: must be one line without control characters", field=field)
    return value.strip() if one_line else value


VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "enabled": _check_enabled,
    "subject": lambda v: _text(v, "subject", MAX_SUBJECT, one_line=True),
    "body": lambda v: _text(v, "body", MAX_BODY, one_line=False),
    "windows": validate_windows,
    "delay_seconds": _check_delay,
}
