"""`tui-helpdesk conversation list|show|search`: the read side, for scripts (F81)."""

from __future__ import annotations

from typing import Any

import click

from tui_helpdesk.cli.context import Cx, HelpdeskGroup, common, emit
from tui_helpdesk.cli.output import fmt, key_values, record_pairs, table
from tui_helpdesk.records import (
    ConversationDetail,
    ConversationRecord,
    MessageRecord,
    SearchPage,
    to_jsonable,
)
from tui_helpdesk.services.vocabulary import CONVERSATION_STATUSES
from tui_helpdesk.terminal_text import clean

pass_cx = click.make_pass_decorator(Cx)
DEFAULT_LIMIT = 50


@click.group(cls=HelpdeskGroup)
@common
def conversation() -> None:
    """Conversations you may see."""


@conversation.command("list")
@click.option("--status", type=click.Choice(CONVERSATION_STATUSES),
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
    from tui_helpdesk.services.conversations import listing

    with cx.session() as (session, actor):
        records = listing.list_conversations(
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


@conversation.command("search")
@click.argument("query")
@click.option("--limit", type=click.IntRange(min=1, max=1000), default=DEFAULT_LIMIT,
              show_default=True, help="Hits to show (the first page).")  # fmt: skip
@common
@pass_cx
def conversation_search(cx: Cx, query: str, limit: int) -> None:
    """Find conversations: words, "phrases", from: to: status: queue: mailbox: assignee:
    tag: before: after: has:attachment auth:fail|spoof|lookalike|pass, and -negation (see the
    README)."""
    from tui_helpdesk.services.search.results import search

    with cx.session() as (session, actor):
        page = search(session, actor, query, limit=limit)
    emit(page, _search_text)


def _search_text(page: SearchPage) -> str:
    headers = ["id", "status", "subject", "contact", "assignee", "last message", "found"]
    found = table(headers, [
        (h.conversation.id, h.conversation.status, h.conversation.subject,
         h.conversation.contact, h.conversation.assignee, h.conversation.last_message_at,
         h.snippet) for h in page.hits
    ], empty="Nothing found.")  # fmt: skip
    return found + ("\n(more: raise --limit)" if page.next is not None else "")


@conversation.command("show")
@click.argument("conversation_id", metavar="ID", type=int)
@common
@pass_cx
def conversation_show(cx: Cx, conversation_id: int) -> None:
    """One conversation with every stored message, oldest first."""
    from tui_helpdesk.services.conversations import thread

    with cx.session() as (session, actor):
        detail = thread.get_conversation(session, actor, conversation_id)  # type: ignore[arg-type]
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
        *([("delivery", _delivery(message))] if message.delivery else []),
        *_sender_check(message),
        ("attachments", [f"{a.filename} ({a.content_type}, {a.size} bytes)"
                         for a in message.attachments]),
    ])  # fmt: skip
    body = clean(message.text_body).rstrip()
    return f"--- message {number} ({fmt(message.id)}) ---\n{head}\n\n{body}"


def _sender_check(message: MessageRecord) -> list[tuple[str, str]]:
    """F75: who really sent it, and the warning when there is one."""
    auth = message.auth
    if auth is None:
        return []
    if auth.status in ("queued", "checking") and not auth.checked_at:
        return [("sender check", "not checked yet")]
    found = [("sender check", f"SPF {auth.spf}, DKIM {auth.dkim}, DMARC {auth.dmarc}"),
             ("explanation", auth.explanation)]  # fmt: skip
    if auth.warning != "none":
        found.append(("warning", f"{auth.warning}: {auth.warning_reason}"))
    return found


def _delivery(message: MessageRecord) -> str:
    """queued / sending / retrying / sent / failed, with the server's last answer (F73)."""
    if message.delivery_error:
        return f"{message.delivery}: {message.delivery_error}"
    return message.delivery
