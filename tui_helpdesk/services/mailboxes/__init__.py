"""Mailboxes (F10-F21): the addresses the helpdesk receives for and sends from.

- fields: what a mailbox's fields may hold; the name its mail is sent under
- lookup: finding a mailbox by address; the record the CLI and TUI see
- lifecycle: create (pending), update, activate, deactivate, delete; limit and unique address
- verification: the code mailed to a new mailbox's address (F16)
- binding: the test mail that checks the forwarding rule to the alias (F16)
- access: who may send from it (F20) and who sees a private mailbox (F21)
- texts: its signature (F18) and close notice (F45)
"""

from tui_helpdesk.services.mailboxes.access import require_sending, set_private, set_senders
from tui_helpdesk.services.mailboxes.binding import send_test, test_returned
from tui_helpdesk.services.mailboxes.fields import (
    check_field,
    display_name,
    sender,
    validate_display_name,
    validate_local_part,
)
from tui_helpdesk.services.mailboxes.lifecycle import (
    MailboxChanges,
    activate,
    create,
    deactivate,
    delete,
    new_alias,
    update,
)
from tui_helpdesk.services.mailboxes.lookup import find, get, list_mailboxes, load, to_record
from tui_helpdesk.services.mailboxes.texts import (
    close_notice_of,
    get_close_notice,
    get_signature,
    set_close_notice,
    set_signature,
    signature,
)
from tui_helpdesk.services.mailboxes.verification import resend_code, verify

__all__ = [
    "MailboxChanges",
    "activate",
    "check_field",
    "close_notice_of",
    "create",
    "deactivate",
    "delete",
    "display_name",
    "find",
    "get",
    "get_close_notice",
    "get_signature",
    "list_mailboxes",
    "load",
    "new_alias",
    "require_sending",
    "resend_code",
    "send_test",
    "sender",
    "set_close_notice",
    "set_private",
    "set_senders",
    "set_signature",
    "signature",
    "test_returned",
    "to_record",
    "update",
    "validate_display_name",
    "validate_local_part",
    "verify",
]
