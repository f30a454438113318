"""`tui-helpdesk mailbox verify|resend-code|test-email` (F16): a new mailbox is pending until
the code mailed to its address is entered; a test mail checks the forwarding rule to the alias.

On the `mailbox` group (MAILBOX_COMMANDS). A wrong code exits 2 after the try is counted.
"""

from __future__ import annotations

import click

from tui_helpdesk.cli.context import Cx, common, emit
from tui_helpdesk.cli.output import key_values, record_pairs
from tui_helpdesk.errors import Invalid

pass_cx = click.make_pass_decorator(Cx)
ADDRESS = click.argument("address")


@click.command("verify")
@ADDRESS
@click.argument("code")
@common
@pass_cx
def mailbox_verify(cx: Cx, address: str, code: str) -> None:
    """Enter the 6-digit code mailed to the mailbox's address; then it may send."""
    from tui_helpdesk.services import mailboxes

    with cx.session(write=True) as (session, actor):
        record = mailboxes.verify(session, cx.settings(), actor, address, code)
    if not record.verified:  # the wrong try is committed: now say so
        raise Invalid(record.message, field="code")
    emit(record, lambda r: key_values(record_pairs(r)))


@click.command("resend-code")
@ADDRESS
@common
@pass_cx
def mailbox_resend_code(cx: Cx, address: str) -> None:
    """Mail a new code to a pending mailbox (the old one stops working)."""
    from tui_helpdesk.services import mailboxes

    with cx.session(write=True) as (session, actor):
        record = mailboxes.resend_code(session, cx.settings(), actor, address)
    emit(record, lambda r: key_values(record_pairs(r)))


@click.command("test-email")
@ADDRESS
@common
@pass_cx
def mailbox_test_email(cx: Cx, address: str) -> None:
    """Mail a marked test to the mailbox's address; when the forwarding rule brings it to the
    alias, `mailbox list` shows the binding as working."""
    from tui_helpdesk.services import mailboxes

    with cx.session(write=True) as (session, actor):
        record = mailboxes.send_test(session, cx.settings(), actor, address)
    emit(record, lambda r: key_values(record_pairs(r)))


MAILBOX_COMMANDS = (mailbox_verify, mailbox_resend_code, mailbox_test_email)
