"""`tui-helpdesk conversation reply|forward|compose` (F43, F81): the agent's mail, queued in the
outbox for the worker to send; `reply --note` writes an internal note instead (never sent).

Bodies come from a UTF-8 file or standard input (`-`), never the command line. Every address
is given on its own (`--to a@x --to b@y`); a list, a name or a line break in an address or
the subject is refused (exit 2).
"""

from __future__ import annotations

from typing import Any

import click

from tui_helpdesk.cli.context import Cx, common, emit, read_text
from tui_helpdesk.cli.output import key_values
from tui_helpdesk.records import SentRecord

pass_cx = click.make_pass_decorator(Cx)
ID = click.argument("conversation_id", metavar="ID", type=int)
BODY_FILE = click.Path(dir_okay=False, allow_dash=True)
CC = click.option("--cc", "cc", multiple=True, metavar="ADDRESS", help="Copy to (repeatable).")


def sent_text(record: SentRecord) -> str:
    message = record.message
    return key_values([
        ("conversation", record.conversation_id), ("kind", f"{message.direction} {message.kind}"),
        ("message id", message.message_id), ("from", message.from_address), ("to", message.to),
        ("cc", message.cc), ("subject", message.subject), ("delivery", message.delivery),
        ("outbox job", record.outbox_job_id),
    ])  # fmt: skip


def _run(cx: Cx, service: str, *args: Any, **kwargs: Any) -> None:
    from tui_helpdesk.services.conversations import replies

    with cx.session(write=True) as (session, actor):
        record = getattr(replies, service)(session, cx.settings(), actor, *args, **kwargs)
    emit(record, sent_text)


@click.command("reply")
@ID
@click.option("--body-file", type=BODY_FILE, required=True, help="The text (- = stdin).")
@CC
@click.option("--all", "reply_all", is_flag=True, help="Copy everyone else in the thread.")
@click.option("--no-quote", is_flag=True, help="Leave out the quoted message.")
@click.option("--note", is_flag=True, help="An internal note for colleagues, never sent.")
@click.option("--confirm-spoof", is_flag=True,
              help="Reply even though the sender may be forged (F75).")  # fmt: skip
@common
@pass_cx
def reply(
    cx: Cx, conversation_id: int, body_file: str, cc: tuple[str, ...], reply_all: bool,
    no_quote: bool, note: bool, confirm_spoof: bool,
) -> None:  # fmt: skip
    """Answer the customer from the conversation's mailbox (signature and quote added)."""
    body = read_text(body_file, field="body")
    if note:
        if cc or reply_all or no_quote:
            raise click.UsageError("--note is never sent: --cc, --all and --no-quote do not apply")
        from tui_helpdesk.services.conversations import notes

        with cx.session(write=True) as (session, actor):
            record = notes.write_note(session, actor, conversation_id, body)
        emit(record, sent_text)
        return
    _run(cx, "reply", conversation_id, body, cc=cc, reply_all=reply_all, quote=not no_quote,
         confirm_spoof=confirm_spoof)  # fmt: skip


@click.command("forward")
@ID
@click.option("--to", "to", multiple=True, required=True, metavar="ADDRESS",
              help="Send to (repeatable).")  # fmt: skip
@CC
@click.option("--body-file", type=BODY_FILE, help="A few words above it (- = stdin).")
@click.option("--message", "message_id", type=int, metavar="MESSAGE_ID",
              help="Which message (default: the customer's newest).")  # fmt: skip
@common
@pass_cx
def forward(
    cx: Cx, conversation_id: int, to: tuple[str, ...], cc: tuple[str, ...],
    body_file: str | None, message_id: int | None,
) -> None:  # fmt: skip
    """Forward a message with its attachments; the answer threads back here."""
    body = read_text(body_file, field="body") if body_file else ""
    _run(cx, "forward", conversation_id, to=to, cc=cc, body=body, message_id=message_id)


@click.command("compose")
@click.option("--mailbox", metavar="ADDRESS", help="Send from this mailbox.")
@click.option("--queue", metavar="NAME", help="The new conversation's queue; its default "
              "mailbox sends unless --mailbox is given.")  # fmt: skip
@click.option("--to", "to", multiple=True, required=True, metavar="ADDRESS",
              help="Send to (repeatable).")  # fmt: skip
@CC
@click.option("--subject", required=True)
@click.option("--body-file", type=BODY_FILE, required=True, help="The text (- = stdin).")
@common
@pass_cx
def compose(
    cx: Cx, mailbox: str | None, queue: str | None, to: tuple[str, ...], cc: tuple[str, ...],
    subject: str, body_file: str,
) -> None:  # fmt: skip
    """New mail in a new conversation, assigned to you."""
    if mailbox is None and queue is None:
        raise click.UsageError("give --mailbox ADDRESS or --queue NAME (its default mailbox)")
    body = read_text(body_file, field="body")
    from tui_helpdesk.services.conversations import replies

    with cx.session(write=True) as (session, actor):
        record = replies.compose(
            session, cx.settings(), actor, to=to, cc=cc, subject=subject, body=body,
            mailbox=mailbox, queue=queue,
        )  # fmt: skip
    emit(record, sent_text)


REPLY_COMMANDS = (reply, forward, compose)
