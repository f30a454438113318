"""Whether an inbound message may be answered automatically, and with what (F19, F33, F72).

Pure decisions (RFC 3834 suppression, the autoresponder's windows, outside-hours), plus the one
lookup they depend on: the wall clock of the mailbox (its zone, else its organisation's).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Autoresponder, Mailbox, Organisation, Queue
from tui_helpdesk.mail.compose import LOOP_HEADER
from tui_helpdesk.services.hours import is_within_hours, zone

if TYPE_CHECKING:
    from tui_helpdesk.mail.parsed import ParsedMessage

SUPPRESSING_PRECEDENCE = frozenset({"bulk", "list", "junk", "auto_reply"})
AUTOMATED_LOCAL_PARTS = frozenset(
    {"mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply", "do-not-reply",
     "do_not_reply", "listserv", "majordomo", "bounce", "bounces"}
)  # fmt: skip
# Headers other autoresponders put on their own replies (Exchange, Postfix vacation, procmail).
AUTOREPLY_MARKERS = ("x-autoreply", "x-autorespond", "x-autoreply-from", "x-mail-autoreply")
MAX_DELAY = 86_400
WINDOW_FORMAT = "%Y-%m-%dT%H:%M"


@dataclass(frozen=True)
class ReplyChoice:
    """Which automatic message to send, from which configuration."""

    kind: str  # autoresponder | outside_hours
    subject: str
    body: str
    delay_seconds: int


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


def mailbox_timezone(session: Session, mailbox: Mailbox) -> str:
    """The mailbox's zone, else its organisation's, else UTC."""
    if mailbox.timezone:
        return zone(mailbox.timezone).key
    organisation = session.get(Organisation, mailbox.organisation_id)
    return zone(organisation.timezone if organisation else None).key
