"""`tui-helpdesk conversation assign|transfer|pending|close|reopen|tag|untag|priority ID …`.

The same services as the TUI's keys (F42, F44); each prints the conversation's row after the
change (JSON with --json) and exits with the service's error code when refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from tui_helpdesk.cli.context import Cx, common, emit
from tui_helpdesk.cli.output import key_values, record_pairs
from tui_helpdesk.records import ConversationRecord
from tui_helpdesk.services.vocabulary import PRIORITIES

pass_cx = click.make_pass_decorator(Cx)
ID = click.argument("conversation_id", metavar="ID", type=int)


def _act(cx: Cx, action: str, conversation_id: int, *args: Any, **kwargs: Any) -> None:
    from tui_helpdesk.services.conversations import actions

    run: Callable[..., ConversationRecord] = getattr(actions, action)
    with cx.session(write=True) as (session, actor):
        record = run(session, actor, conversation_id, *args, **kwargs)
    emit(record, lambda r: key_values(record_pairs(r)))


@click.command("assign")
@ID
@click.argument("user", metavar="EMAIL|me|none")
@common
@pass_cx
def assign(cx: Cx, conversation_id: int, user: str) -> None:
    """Assign to a user, to yourself (me) or to nobody (none)."""
    _act(cx, "assign", conversation_id, user)


@click.command("transfer")
@ID
@click.option("--to-user", metavar="EMAIL", help="Hand over to this user.")
@click.option("--to-queue", metavar="NAME", help="Move to this queue; its rule picks the assignee.")
@common
@pass_cx
def transfer(cx: Cx, conversation_id: int, to_user: str | None, to_queue: str | None) -> None:
    """Hand over to another agent or another queue (give one of the two)."""
    if (to_user is None) == (to_queue is None):
        raise click.UsageError("give either --to-user EMAIL or --to-queue NAME")
    _act(cx, "transfer", conversation_id, to_user=to_user, to_queue=to_queue)


@click.command("pending")
@ID
@common
@pass_cx
def pending(cx: Cx, conversation_id: int) -> None:
    """Waiting on the customer."""
    _act(cx, "set_pending", conversation_id)


@click.command("close")
@ID
@click.option("--note", metavar="TEXT", help="An internal note saying why (never sent).")
@click.option("--no-notify", is_flag=True, help="Do not mail the customer the close notice.")
@common
@pass_cx
def close(cx: Cx, conversation_id: int, note: str | None, no_notify: bool) -> None:
    """Close, mailing the customer the mailbox's close notice (when it has one on); later
    mail from the customer opens a new conversation."""
    _act(cx, "close", conversation_id, note=note, notify=not no_notify, settings=cx.settings())


@click.command("reopen")
@ID
@common
@pass_cx
def reopen(cx: Cx, conversation_id: int) -> None:
    """Open a pending or closed conversation again."""
    _act(cx, "reopen", conversation_id)


@click.command("tag")
@ID
@click.argument("tags", metavar="TAG...", nargs=-1, required=True)
@common
@pass_cx
def tag(cx: Cx, conversation_id: int, tags: tuple[str, ...]) -> None:
    """Add tags (stored lowercase; tags already there stay)."""
    _act(cx, "add_tags", conversation_id, tags)


@click.command("untag")
@ID
@click.argument("tags", metavar="TAG...", nargs=-1, required=True)
@common
@pass_cx
def untag(cx: Cx, conversation_id: int, tags: tuple[str, ...]) -> None:
    """Remove tags (ones the conversation does not have are ignored)."""
    _act(cx, "remove_tags", conversation_id, tags)


@click.command("priority")
@ID
@click.argument("priority", type=click.Choice(PRIORITIES))
@common
@pass_cx
def priority(cx: Cx, conversation_id: int, priority: str) -> None:
    """Set the priority: low, normal, high or urgent."""
    _act(cx, "set_priority", conversation_id, priority)


ACTION_COMMANDS = [assign, transfer, pending, close, reopen, tag, untag, priority]
