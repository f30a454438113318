"""`tui-helpdesk message ...`: messages as stored, for admins (F76)."""

from __future__ import annotations

import click

from tui_helpdesk.cli.context import Cx, HelpdeskGroup, common, emit
from tui_helpdesk.cli.output import table
from tui_helpdesk.records import FailedMessageRecord

pass_cx = click.make_pass_decorator(Cx)


@click.group(cls=HelpdeskGroup)
@common
def message() -> None:
    """Messages as received (admins)."""


@message.command("failed")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@common
@pass_cx
def message_failed(cx: Cx, limit: int) -> None:
    """Messages kept raw because processing them failed, newest first, with their error."""
    from tui_helpdesk.services import failures

    with cx.session() as (session, actor):
        emit(failures.list_failed(session, actor, limit=limit), failed_text)


def failed_text(records: list[FailedMessageRecord]) -> str:
    headers = ["id", "conversation", "mailbox", "received", "from", "subject", "error"]
    rows = [
        (r.id, r.conversation_id, r.mailbox, r.received_at, r.envelope_from, r.subject, r.error)
        for r in records
    ]
    return table(headers, rows, empty="no failed messages")
