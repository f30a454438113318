"""Automatic replies without loops (F19, F33, F72, RFC 3834).

- rules: when a reply is due and when it is suppressed (pure)
- replies: the reply queued for an inbound message, at most one per sender and period
  (composed by mail/compose.py, stored and queued by services/outgoing.py)
- admin: a mailbox's autoresponder settings
"""

from tui_helpdesk.services.autoresponder.admin import configure, get
from tui_helpdesk.services.autoresponder.replies import (
    MailboxSetup,
    answer,
    due_reply,
    load_setup,
    on_inbound,
)

__all__ = ["MailboxSetup", "answer", "configure", "due_reply", "get", "load_setup", "on_inbound"]
