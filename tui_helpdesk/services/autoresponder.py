"""Automatic replies without loops (F19, F33, F72, RFC 3834).

An inbound message may get one automatic answer: the mailbox's autoresponder when it is
enabled and `now` is inside one of its windows (mailbox timezone; no windows = always), else
the queue's outside-hours message when the queue is closed. It is never sent when the global
switch is off, when the message looks automated (Auto-Submitted other than "no", Precedence
bulk/list/junk, List-* headers, a bounce, MAILER-DAEMON-like or no-reply senders, an empty
return path), when it is our own mail (one of our mailbox addresses or aliases, the platform
domain, or our loop header), or when this sender already got one from this mailbox within
settings.mail.autoreply_period_hours (0 = no limit). Answering every inbound message, not only
new conversations, is deliberate: the period limit keeps it to one per sender, and a holiday
notice must reach someone who writes into an open conversation too.

The reply goes to the envelope sender (the Return-Path, RFC 3834 section 4), carries
Auto-Submitted: auto-replied and our loop header, and is stored as an outbound Message of the
conversation plus a queued OutboxJob (sending is the outbox's job) and an AutoReplyLog row.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from tui_helpdesk.config import Settings
from tui_helpdesk.db.models import (
    AutoReplyLog,
    Autoresponder,
    Conversation,
    Mailbox,
    Message,
    Organisation,
    OutboxJob,
    Queue,
    User,
)
from tui_helpdesk.errors import Invalid, NotFound
from tui_helpdesk.records import AutoresponderRecord, UserRecord
from tui_helpdesk.services import audit, mailboxes, permissions
from tui_helpdesk.services.hours import describe_opening, is_within_hours, zone

if TYPE_CHECKING:
    from tui_helpdesk.mail.parse import ParsedMessage

LOOP_HEADER = "X-TUI-Helpdesk-Loop"
SUPPRESSING_PRECEDENCE = frozenset({"bulk", "list", "junk", "auto_reply"})
AUTOMATED_LOCAL_PARTS = frozenset(
    {"mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply", "do-not-reply",
     "do_not_reply", "listserv", "majordomo", "bounce", "bounces"}
)  # fmt: skip
# Headers other autoresponders put on their own replies (Exchange, Postfix vacation, procmail).
AUTOREPLY_MARKERS = ("x-autoreply", "x-autorespond", "x-autoreply-from", "x-mail-autoreply")
MAX_SUBJECT = 255
MAX_BODY = 20_000
MAX_WINDOWS = 50
MAX_DELAY = 86_400
MAX_REFERENCES = 20
MAX_QUOTED_SUBJECT = 200
WINDOW_FORMAT = "%Y-%m-%dT%H:%M"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
UNSET: Any = object()  # marks an argument that was not given ("leave it as it is")


@dataclass(frozen=True)
class ReplyChoice:
    """Which automatic message to send, from which configuration."""

    kind: str  # autoresponder | outside_hours
    subject: str
    body: str
    delay_seconds: int


# --- deciding whether to answer (pure) -------------------------------------------------------


def return_address(envelope_from: str) -> str | None:
    """The envelope sender as an address we may write to, None for <> or garbage."""
    address = envelope_from.strip()
    if address.startswith("<") and address.endswith(">"):
        address = address[1:-1].strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain.strip(".") or len(address) > 320:
        return None
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in address):
        return None
    return f"{local}@{domain.lower()}"


def automated_local_part(address: str) -> bool:
    """MAILER-DAEMON, postmaster, no-reply and list robots (RFC 3834 section 2)."""
    local = address.rpartition("@")[0].lower()
    return (
        local in AUTOMATED_LOCAL_PARTS
        or local.startswith("owner-")
        or local.endswith("-request")
        or local.endswith("-bounces")
    )


def _header_suppression(parsed: ParsedMessage) -> str | None:
    if parsed.auto_submitted not in ("", "no"):
        return f"Auto-Submitted: {parsed.auto_submitted}"
    if parsed.precedence in SUPPRESSING_PRECEDENCE:
        return f"Precedence: {parsed.precedence}"
    if parsed.has_list_headers:
        return "mailing list (List-* header)"
    if parsed.bounce is not None or "multipart/report" in parsed.header("content-type").lower():
        return "delivery status notification"
    suppress = parsed.header("x-auto-response-suppress").lower()
    if any(word in suppress for word in ("all", "autoreply", "oof")):
        return f"X-Auto-Response-Suppress: {suppress}"
    if any(parsed.header(name) for name in AUTOREPLY_MARKERS):
        return "message is itself an automatic reply"
    if parsed.header(LOOP_HEADER):
        return "our own mail (loop header)"
    return None


def suppression_reason(
    parsed: ParsedMessage,
    envelope_from: str,
    *,
    own_addresses: frozenset[str],
    platform_domain: str,
) -> str | None:
    """Why this message must not be answered automatically, None when it may be."""
    target = return_address(envelope_from)
    if target is None:
        return "empty or unusable return path"
    sender = parsed.sender.address.lower() if parsed.sender else ""
    if not sender or "@" not in sender:
        return "sender address not parseable"
    reason = _header_suppression(parsed)
    if reason:
        return reason
    for address in (target.lower(), sender):
        if automated_local_part(address):
            return f"automated sender {address}"
        if address in own_addresses or address.rpartition("@")[2] == platform_domain.lower():
            return f"our own mail ({address})"
    return None


def in_windows(windows: list[Any], local_now: datetime) -> bool:
    """No windows = always; else `local_now` (naive wall time) inside one [start, end)."""
    if not windows:
        return True
    wall = local_now.replace(tzinfo=None)
    for window in windows:
        try:
            start = datetime.strptime(window["start"], WINDOW_FORMAT)
            end = datetime.strptime(window["end"], WINDOW_FORMAT)
        except (KeyError, TypeError, ValueError):
            continue  # a malformed stored window never matches and never breaks ingest
        if start <= wall < end:
            return True
    return False


def choose_reply(
    autoresponder: Autoresponder | None,
    mailbox_timezone: str | None,
    queue: Queue | None,
    now: datetime,
) -> ReplyChoice | None:
    """The mailbox autoresponder inside its windows, else the queue's outside-hours message."""
    active = autoresponder is not None and autoresponder.enabled and autoresponder.body.strip()
    local_now = now.astimezone(zone(mailbox_timezone))
    if active and autoresponder is not None and in_windows(autoresponder.windows or [], local_now):
        delay = max(0, min(autoresponder.delay_seconds, MAX_DELAY))
        return ReplyChoice("autoresponder", autoresponder.subject, autoresponder.body, delay)
    if (
        queue is not None
        and queue.outside_hours_enabled
        and queue.hours_enabled
        and queue.outside_hours_body.strip()
        and not is_within_hours(queue, now)
    ):
        return ReplyChoice(
            "outside_hours", queue.outside_hours_subject, queue.outside_hours_body, 0
        )
    return None


# --- building the reply (pure) ---------------------------------------------------------------


def clean_line(text: str, limit: int) -> str:
    """One header-safe line: control characters and line breaks removed, length bounded."""
    return " ".join(_CONTROL.sub(" ", text).split())[:limit]


def fill(template: str, values: dict[str, str]) -> str:
    """Replace {{name}} placeholders we know; everything else stays as written."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: values.get(m.group(1), m.group(0)), template)


def reply_subject(configured: str, original: str, token: str, values: dict[str, str]) -> str:
    """The configured subject (placeholders filled) or "Re: <original>", with our token."""
    subject = clean_line(fill(configured, values), MAX_SUBJECT) if configured.strip() else ""
    if not subject:
        quoted = clean_line(original, MAX_QUOTED_SUBJECT)
        subject = quoted if quoted.lower().startswith("re:") else f"Re: {quoted}".strip()
    return subject if token in subject else f"{subject} {token}"


def _message_ids(values: tuple[str, ...] | list[str]) -> list[str]:
    """Message-IDs safe to repeat in our headers (printable ASCII, one <...> each)."""
    return [
        v for v in values
        if v and v.isascii() and v.isprintable() and " " not in v and len(v) <= 250
    ]  # fmt: skip


def build_reply(
    *,
    from_name: str,
    from_address: str,
    to_address: str,
    subject: str,
    body: str,
    in_reply_to: str | None,
    references: tuple[str, ...],
    now: datetime,
) -> tuple[bytes, str]:
    """RFC 5322 bytes of the auto-reply and its Message-ID (on the mailbox's domain)."""
    utf8 = not (to_address.isascii() and from_address.isascii())
    msg = EmailMessage(policy=policy.SMTPUTF8 if utf8 else policy.SMTP)
    domain = from_address.rpartition("@")[2]
    message_id = make_msgid(idstring="autoreply", domain=domain)
    msg["From"] = Address(display_name=clean_line(from_name, 255), addr_spec=from_address)
    msg["To"] = to_address
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    parent = _message_ids([in_reply_to] if in_reply_to else [])
    if parent:
        msg["In-Reply-To"] = parent[0]
        chain = _message_ids([*references, parent[0]])
        msg["References"] = " ".join(dict.fromkeys(chain[-MAX_REFERENCES:]))
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    msg[LOOP_HEADER] = from_address
    msg.set_content(body)
    return msg.as_bytes(), message_id


# --- on_inbound ------------------------------------------------------------------------------


def _own_addresses(session: Session, addresses: set[str]) -> frozenset[str]:
    """Which of these addresses belong to any of our mailboxes (address or alias, any state)."""
    rows = session.execute(
        select(Mailbox.email_address, Mailbox.alias).where(
            or_(
                func.lower(Mailbox.email_address).in_(addresses),
                func.lower(Mailbox.alias).in_(addresses),
            )
        )
    )
    return frozenset(a.lower() for row in rows for a in row if a and a.lower() in addresses)


def recently_answered(
    session: Session, mailbox_id: int, recipient: str, now: datetime, period_hours: int
) -> bool:
    if period_hours <= 0:
        return False
    return (
        session.scalar(
            select(AutoReplyLog.id)
            .where(
                AutoReplyLog.mailbox_id == mailbox_id,
                AutoReplyLog.recipient == recipient,
                AutoReplyLog.sent_at > now - timedelta(hours=period_hours),
            )
            .limit(1)
        )
        is not None
    )


def mailbox_timezone(session: Session, mailbox: Mailbox) -> str:
    """The mailbox's zone, else its organisation's, else UTC."""
    if mailbox.timezone:
        return zone(mailbox.timezone).key
    organisation = session.get(Organisation, mailbox.organisation_id)
    return zone(organisation.timezone if organisation else None).key


def display_name(session: Session, mailbox: Mailbox) -> str:
    """The mailbox display name with {{first_name}}/{{last_name}} of its responsible user."""
    user = session.get(User, mailbox.responsible_user_id) if mailbox.responsible_user_id else None
    values = {"first_name": user.first_name, "last_name": user.last_name} if user else {}
    values = {"first_name": "", "last_name": ""} | values
    return clean_line(fill(mailbox.display_name, values), 255)


@dataclass(frozen=True)
class MailboxSetup:
    """A mailbox's automatic-reply configuration, read once per write transaction (batch)."""

    autoresponder: Autoresponder | None
    timezone: str | None  # only looked up when the autoresponder is enabled


def load_setup(session: Session, settings: Settings, mailbox: Mailbox) -> MailboxSetup | None:
    """None when automatic replies are switched off globally: nothing more to read."""
    if not settings.mail.autoresponders_enabled:
        return None
    row = session.get(Autoresponder, mailbox.id)
    active = row is not None and row.enabled
    return MailboxSetup(row, mailbox_timezone(session, mailbox) if active else None)


def due_reply(setup: MailboxSetup | None, queue: Queue | None, now: datetime) -> ReplyChoice | None:
    """The automatic message configured and due now (no query): the cheap first question."""
    if setup is None:
        return None
    return choose_reply(setup.autoresponder, setup.timezone, queue, now)


def on_inbound(
    session: Session,
    settings: Settings,
    *,
    mailbox: Mailbox,
    queue: Queue | None,
    conversation: Conversation,
    message: Message,
    parsed: ParsedMessage,
    now: datetime,
) -> OutboxJob | None:
    """Queue the automatic reply to one stored inbound message, if one is due (see module doc).

    The cheap question comes first (is any automatic message configured and due?), so mail to
    a mailbox without one costs a single primary-key lookup.
    """
    choice = due_reply(load_setup(session, settings, mailbox), queue, now)
    if choice is None:
        return None
    return answer(
        session, settings, choice, mailbox=mailbox, queue=queue, conversation=conversation,
        envelope_from=message.envelope_from or "", parsed=parsed, now=now,
    )  # fmt: skip


def answer(
    session: Session,
    settings: Settings,
    choice: ReplyChoice,
    *,
    mailbox: Mailbox,
    queue: Queue | None,
    conversation: Conversation,
    envelope_from: str,
    parsed: ParsedMessage,
    now: datetime,
) -> OutboxJob | None:
    """Send the due `choice` unless the message must not be answered (loops, RFC 3834, period)."""
    target = return_address(envelope_from)
    sender = parsed.sender.address.lower() if parsed.sender else ""
    candidates = {a for a in (target.lower() if target else "", sender) if a}
    reason = suppression_reason(
        parsed,
        envelope_from,
        own_addresses=_own_addresses(session, candidates),
        platform_domain=settings.mail.platform_domain,
    )
    if reason is not None or target is None:
        return None
    if recently_answered(
        session, mailbox.id, target.lower(), now, settings.mail.autoreply_period_hours
    ):
        return None
    return _queue_reply(
        session, settings, mailbox, queue, conversation, parsed, target, choice, now
    )


def _queue_reply(
    session: Session,
    settings: Settings,
    mailbox: Mailbox,
    queue: Queue | None,
    conversation: Conversation,
    parsed: ParsedMessage,
    target: str,
    choice: ReplyChoice,
    now: datetime,
) -> OutboxJob:
    token = f"[{settings.mail.subject_token_prefix}#{conversation.id}]"
    values = {
        "subject": clean_line(parsed.subject, MAX_QUOTED_SUBJECT),
        "conversation_id": str(conversation.id),
        "next_opening": describe_opening(queue, now) if queue is not None else "",
    }
    subject = reply_subject(choice.subject, parsed.subject, token, values)
    name = display_name(session, mailbox)
    body = fill(choice.body, values)
    raw, message_id = build_reply(
        from_name=name, from_address=mailbox.email_address, to_address=target, subject=subject,
        body=body, in_reply_to=parsed.message_id, references=parsed.references, now=now,
    )  # fmt: skip
    reply = _store_message(session, mailbox, conversation, parsed, raw, message_id, now)
    reply.subject, reply.from_name, reply.to_addresses, reply.envelope_to = (
        subject, name, target, target
    )  # fmt: skip
    reply.text_body = body
    job = OutboxJob(
        organisation_id=mailbox.organisation_id, mailbox_id=mailbox.id,
        conversation_id=conversation.id, message_id=reply.id, kind="auto_reply",
        status="queued", mail_from=mailbox.email_address, rcpt_to=[target], raw=raw,
        next_attempt_at=now + timedelta(seconds=choice.delay_seconds),
    )  # fmt: skip
    session.add(job)
    session.add(
        AutoReplyLog(mailbox_id=mailbox.id, recipient=target.lower(), kind=choice.kind, sent_at=now)
    )
    session.flush()
    return job


def _store_message(
    session: Session,
    mailbox: Mailbox,
    conversation: Conversation,
    parsed: ParsedMessage,
    raw: bytes,
    message_id: str,
    now: datetime,
) -> Message:
    references = _message_ids([*parsed.references, parsed.message_id or ""])
    reply = Message(
        conversation_id=conversation.id, mailbox_id=mailbox.id, direction="outbound",
        kind="auto_reply", message_id_header=message_id,
        in_reply_to=parsed.message_id if _message_ids([parsed.message_id or ""]) else "",
        references=" ".join(references[-MAX_REFERENCES:]),
        from_address=mailbox.email_address, envelope_from=mailbox.email_address,
        date_header=format_datetime(now), received_at=now, raw=raw,
        raw_sha256=hashlib.sha256(raw).hexdigest(), raw_size=len(raw),
        auto_submitted="auto-replied", defects=[],
    )  # fmt: skip
    session.add(reply)
    conversation.message_count = (conversation.message_count or 0) + 1
    if conversation.last_message_at is None or conversation.last_message_at < now:
        conversation.last_message_at = now
    session.flush()
    return reply


# --- admin service ---------------------------------------------------------------------------


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
    if one_line and _CONTROL.search(value):
        raise Invalid(f"{field}: must be one line without control characters", field=field)
    return value.strip() if one_line else value


VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "enabled": _check_enabled,
    "subject": lambda v: _text(v, "subject", MAX_SUBJECT, one_line=True),
    "body": lambda v: _text(v, "body", MAX_BODY, one_line=False),
    "windows": validate_windows,
    "delay_seconds": _check_delay,
}
