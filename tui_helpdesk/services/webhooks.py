"""Webhooks (F22): a mailbox's https URL hears of new conversations, new messages and closed
conversations.

An event is only queued, as an outbox job of kind "webhook", inside the transaction that made
it happen (ingest, close); the worker's sender POSTs it later with retries and backoff like
any mail, so a receiver that is down never slows or blocks ingest. The body is JSON; the
header X-Helpdesk-Signature is "sha256=" and the hex HMAC-SHA256 of the exact body bytes with
the mailbox's secret, and X-Helpdesk-Delivery an id fixed when the event was queued (the same
on every retry, for receivers to drop repeats).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Mailbox, MailboxWebhook, OutboxJob
from tui_helpdesk.errors import Invalid
from tui_helpdesk.records import UserRecord, WebhookRecord, to_jsonable
from tui_helpdesk.services import audit, mailboxes
from tui_helpdesk.services.outbox import enqueue
from tui_helpdesk.services.permissions import require_admin
from tui_helpdesk.services.transports import mask
from tui_helpdesk.services.vocabulary import WEBHOOK_EVENTS

URL_MAX = 2048
SECRET_MIN = 16
SECRET_MAX = 1024
SIGNATURE_HEADER = "X-Helpdesk-Signature"
DELIVERY_HEADER = "X-Helpdesk-Delivery"
EVENT_HEADER = "X-Helpdesk-Event"
UNSAFE = re.compile(r"[\x00-\x20\x7f]")


@dataclass(frozen=True)
class WebhookTarget:
    """A mailbox's webhook, as the code that emits events needs it."""

    url: str
    secret: str = field(repr=False)


def signature(secret: str, body: bytes) -> str:
    """The X-Helpdesk-Signature value for `body`: what a receiver recomputes and compares."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def validate_url(value: str) -> str:
    url = value.strip()
    if len(url) > URL_MAX or UNSAFE.search(url):
        raise Invalid(
            f"webhook URL must be at most {URL_MAX} characters without spaces or control "
            "characters",
            field="url",
        )
    parts = urlsplit(url)
    if parts.scheme.lower() != "https":
        raise Invalid(
            f"webhook URL must start with https:// (events carry customer data), got {url!r}",
            field="url",
        )
    if not parts.hostname:
        raise Invalid(f"webhook URL has no host: {url!r}", field="url")
    if parts.username or parts.password:
        raise Invalid(
            "webhook URL must not hold a user or password; the receiver checks the signature",
            field="url",
        )
    return url


def validate_secret(value: str) -> str:
    secret = value.strip()
    if not SECRET_MIN <= len(secret) <= SECRET_MAX or UNSAFE.search(secret.replace(" ", "")):
        raise Invalid(
            f"webhook secret must be {SECRET_MIN}-{SECRET_MAX} characters without control "
            "characters",
            field="secret",
        )
    return secret


def _record(mailbox: Mailbox, row: MailboxWebhook | None) -> WebhookRecord:
    if row is None:
        return WebhookRecord(mailbox=mailbox.email_address, url="", secret="", events=())
    return WebhookRecord(
        mailbox=mailbox.email_address, url=row.url, secret=mask(row.secret),
        events=WEBHOOK_EVENTS,
    )  # fmt: skip


def get_webhook(session: Session, actor: UserRecord | None, address: str) -> WebhookRecord:
    actor = require_admin(actor)
    mailbox = mailboxes.load(session, actor, address)
    return _record(mailbox, session.get(MailboxWebhook, mailbox.id))


def set_webhook(
    session: Session,
    actor: UserRecord | None,
    address: str,
    *,
    url: str | None = None,
    secret: str | None = None,
    off: bool = False,
) -> WebhookRecord:
    """Turn the webhook on (URL, and a secret unless one is kept), change it, or turn it off.
    Audited with the secret masked."""
    actor = require_admin(actor)
    mailbox = mailboxes.load(session, actor, address)
    row = session.get(MailboxWebhook, mailbox.id)
    before = _record(mailbox, row)
    if off:
        if row is not None:
            session.delete(row)
            row = None
    else:
        row = _changed(session, mailbox, row, url, secret)
    session.flush()
    after = _record(mailbox, row)
    audit.record(
        session, actor, "mailbox.set_webhook", "mailbox", mailbox.id,
        organisation_id=mailbox.organisation_id,
        before=to_jsonable(before), after=to_jsonable(after),
    )  # fmt: skip
    return after


def _changed(
    session: Session,
    mailbox: Mailbox,
    row: MailboxWebhook | None,
    url: str | None,
    secret: str | None,
) -> MailboxWebhook:
    if url is None and row is None:
        raise Invalid("give the webhook URL (https://...)", field="url")
    new_url = validate_url(url) if url is not None else None
    new_secret = validate_secret(secret) if secret is not None else None
    if row is None:
        if new_secret is None:
            raise Invalid(
                "give the webhook secret (--secret-file F, or - for stdin): receivers check "
                "each event's signature with it",
                field="secret",
            )
        row = MailboxWebhook(mailbox_id=mailbox.id)
        session.add(row)
    if new_url is not None:
        row.url = new_url
    if new_secret is not None:
        row.secret = new_secret
    return row


def target_of(session: Session, mailbox_id: int) -> WebhookTarget | None:
    row = session.get(MailboxWebhook, mailbox_id)
    return WebhookTarget(url=row.url, secret=row.secret) if row is not None else None


def emit(
    session: Session,
    mailbox: Mailbox,
    event: str,
    payload: dict[str, Any],
    *,
    target: WebhookTarget | None = None,
    now: datetime | None = None,
) -> OutboxJob | None:
    """Queue `event` for the mailbox's webhook, if it has one (else nothing happens).

    `payload` holds the event's ids, subject and sender; the event name, its delivery id, the
    mailbox and the time are added here. Pass `target` when already looked up.
    """
    if event not in WEBHOOK_EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    target = target or target_of(session, mailbox.id)
    if target is None:
        return None
    now = now or datetime.now(UTC)
    delivery_id = str(uuid.uuid4())
    body = {"event": event, "delivery_id": delivery_id, "time": now.isoformat(),
            "mailbox": mailbox.email_address, **to_jsonable(payload)}  # fmt: skip
    raw = json.dumps(body, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return enqueue(
        session, mailbox=mailbox, kind="webhook", mail_from="", rcpt_to=[], raw=raw,
        not_before=now, conversation_id=payload.get("conversation_id"), url=target.url,
        event=event, delivery_id=delivery_id,
    )  # fmt: skip
