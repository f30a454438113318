"""`tui-helpdesk message ...`: messages as stored, for admins (F76)."""

from __future__ import annotations

import click

from tui_helpdesk.cli.context import Cx, HelpdeskGroup, common, emit
from tui_helpdesk.cli.output import table
from tui_helpdesk.records import FailedMessageRecord, ReprocessRecord

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


@message.command("reprocess")
@click.argument("message_id", type=int, required=False)
@click.option(
    "--all-failed", is_flag=True, help="Every message stored with an error, oldest first."
)
@common
@pass_cx
def message_reprocess(cx: Cx, message_id: int | None, all_failed: bool) -> None:
    """Run a failed message's stored raw bytes through parsing, threading and routing again.

    The bytes are never lost: when processing fails again they stay stored with the new error.
    """
    from tui_helpdesk.services import reprocess

    if (message_id is None) == (not all_failed):
        raise click.UsageError("give a message id or --all-failed (not both)")
    with cx.session(write=True) as (session, actor):
        if all_failed:
            results = reprocess.reprocess_failed(session, cx.settings(), actor)
        else:
            assert message_id is not None
            results = [reprocess.reprocess(session, cx.settings(), actor, message_id)]
    emit(results, reprocessed_text)


def reprocessed_text(records: list[ReprocessRecord]) -> str:
    headers = ["message", "stored as", "conversation", "result"]
    rows = [
        (r.message_id, ", ".join(map(str, r.new_message_ids)),
         ", ".join(map(str, r.conversation_ids)), r.error or "ok")
        for r in records
    ]  # fmt: skip
    return table(headers, rows, empty="no failed messages")
