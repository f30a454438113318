"""`tui-helpdesk conversation list|show`: the read side, for scripts (F81)."""

from __future__ import annotations

from typing import Any

import click

from tui_helpdesk.cli.context import Cx, HelpdeskGroup, common, emit
from tui_helpdesk.cli.output import fmt, key_values, record_pairs, table
from tui_helpdesk.records import ConversationDetail, ConversationRecord, MessageRecord, to_jsonable
from tui_helpdesk.terminal_text import clean

pass_cx = click.make_pass_decorator(Cx)
DEFAULT_LIMIT = 50


@click.group(cls=HelpdeskGroup)
@common
def conversation() -> None:
    """Conversations you may see."""


@conversation.command("list")
@click.option("--status", type=click.Choice(["open", "pending", "closed"]),
              help="Only this status (default: every status).")  # fmt: skip
@click.option("--queue", metavar="NAME")
@click.option("--mailbox", metavar="ADDRESS")
@click.option(
    "--limit", type=click.IntRange(min=1), help=f"Rows to show (default {DEFAULT_LIMIT})."
)
@click.option("--all", "show_all", is_flag=True, help="Show every row.")
@common
@pass_cx
def conversation_list(
    cx: Cx, status: str | None, queue: str | None, mailbox: str | None,
    limit: int | None, show_all: bool,
) -> None:  # fmt: skip
    """Newest first."""
    if show_all and limit is not None:
        raise click.UsageError("give either --limit N or --all, not both")
    from tui_helpdesk.services import conversations

    with cx.session() as (session, actor):
        records = conversations.list_conversations(
            session, actor,  # type: ignore[arg-type]
            status=status, queue=queue, mailbox=mailbox,
            limit=None if show_all else (limit or DEFAULT_LIMIT),
        )  # fmt: skip
    emit(records, _list_text)


def _list_text(records: list[ConversationRecord]) -> str:
    headers = ["id", "status", "subject", "contact", "mailbox", "queue", "assignee", "last message"]
    return table(headers, [
        (r.id, r.status, r.subject, r.contact, r.mailbox, r.queue, r.assignee, r.last_message_at)
        for r in records
    ], empty="No conversations.")  # fmt: skip


@conversation.command("show")
@click.argument("conversation_id", metavar="ID", type=int)
@common
@pass_cx
def conversation_show(cx: Cx, conversation_id: int) -> None:
    """One conversation with every stored message, oldest first."""
    from tui_helpdesk.services import conversations

    with cx.session() as (session, actor):
        detail = conversations.get_conversation(session, actor, conversation_id)  # type: ignore[arg-type]
    emit(_flat(detail), lambda _: _show_text(detail))


def _flat(detail: ConversationDetail) -> dict[str, Any]:
    """The conversation's fields with its `messages` list beside them."""
    return {**to_jsonable(detail.conversation), "messages": to_jsonable(detail.messages)}


def _show_text(detail: ConversationDetail) -> str:
    parts = [key_values(record_pairs(detail.conversation))]
    for number, message in enumerate(detail.messages, start=1):
        parts.append(_message_text(number, message))
    return "\n\n".join(parts)


def _message_text(number: int, message: MessageRecord) -> str:
    sender = (
        f"{message.from_name} <{message.from_address}>"
        if message.from_name
        else (message.from_address)
    )
    head = key_values([
        ("from", sender), ("to", message.to), ("cc", message.cc), ("subject", message.subject),
        ("received", message.received_at), ("kind", f"{message.direction} {message.kind}"),
        ("attachments", [f"{a.filename} ({a.content_type}, {a.size} bytes)"
                         for a in message.attachments]),
    ])  # fmt: skip
    body = clean(message.text_body).rstrip()
    return f"--- message {number} ({fmt(message.id)}) ---\n{head}\n\n{body}"
