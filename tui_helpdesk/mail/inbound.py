"""A received mail as the SMTP server hands it on: the exact DATA bytes and the envelope.

The store keeps these bytes byte for byte (F46, F71); everything else is derived from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tui_helpdesk.mail.parsed import ParsedMessage


@dataclass(frozen=True, slots=True)
class InboundMail:
    """One SMTP transaction as received: the exact DATA bytes and the envelope.

    `parsed` is parse_message(raw) when the writer parsed it already (ProcessWriter does, on
    the event loop's core), else None and the store parses.
    """

    raw: bytes
    mail_from: str
    rcpt_tos: tuple[str, ...]
    received_at: datetime
    parsed: ParsedMessage | None = None
    # the SMTP session (F75 checks SPF for them later): the client's address and HELO name
    peer_ip: str = ""
    helo: str = ""
