"""`tui-helpdesk queue ...` (F30-F31). Queues are named by name, mailboxes by address."""

from __future__ import annotations

import click

from tui_helpdesk.cli.context import Cx, HelpdeskGroup, common, emit
from tui_helpdesk.cli.output import key_values, table
from tui_helpdesk.records import QueueRecord
from tui_helpdesk.services.vocabulary import MEMBER_ROLES

pass_cx = click.make_pass_decorator(Cx)


def queue_text(record: QueueRecord) -> str:
    head = key_values([
        ("name", record.name), ("description", record.description), ("colour", record.colour),
        ("assignment rule", record.assignment_rule), ("default mailbox", record.default_mailbox),
        ("created at", record.created_at), ("updated at", record.updated_at),
    ])  # fmt: skip
    boxes = table(["mailbox", "status", "default", "alias"], [
        (m.email_address, m.status, m.is_default, m.alias) for m in record.mailboxes
    ])  # fmt: skip
    members = table(["member", "name", "role", "availability"], [
        (m.email, m.name, m.role, m.availability) for m in record.members
    ])  # fmt: skip
    return f"{head}\n\nMailboxes\n{boxes}\n\nMembers\n{members}"


@click.group(cls=HelpdeskGroup)
@common
def queue() -> None:
    """Distribution queues: linked mailboxes, default, members."""


@queue.command("create")
@click.argument("name")
@click.option("--description", default="")
@click.option("--colour", default="", help="Hex colour like #3366ff or a name like teal.")
@click.option("--org", "organisation", metavar="NAME", help="Organisation (if several exist).")
@common
@pass_cx
def queue_create(
    cx: Cx, name: str, description: str, colour: str, organisation: str | None
) -> None:
    from tui_helpdesk.services import queues

    with cx.session(write=True) as (session, actor):
        record = queues.create(
            session, actor, name=name, description=description, colour=colour,
            organisation=organisation,
        )  # fmt: skip
    emit(record, queue_text)


@queue.command("list")
@common
@pass_cx
def queue_list(cx: Cx) -> None:
    from tui_helpdesk.services import queues

    with cx.session() as (session, actor):
        records = queues.list_queues(session, actor)
    headers = ["name", "default mailbox", "mailboxes", "members", "colour"]
    emit(records, lambda rs: table(headers, [
        (r.name, r.default_mailbox, len(r.mailboxes), len(r.members), r.colour) for r in rs
    ]))  # fmt: skip


@queue.command("show")
@click.argument("name")
@common
@pass_cx
def queue_show(cx: Cx, name: str) -> None:
    from tui_helpdesk.services import queues

    with cx.session() as (session, actor):
        emit(queues.get(session, actor, name), queue_text)


@queue.command("add-mailbox")
@click.argument("name", metavar="QUEUE")
@click.argument("address")
@common
@pass_cx
def queue_add_mailbox(cx: Cx, name: str, address: str) -> None:
    """Link a mailbox (at most 20); the first linked becomes the default."""

    from tui_helpdesk.services import queues

    with cx.session(write=True) as (session, actor):
        emit(queues.add_mailbox(session, cx.settings(), actor, name, address), queue_text)


@queue.command("remove-mailbox")
@click.argument("name", metavar="QUEUE")
@click.argument("address")
@common
@pass_cx
def queue_remove_mailbox(cx: Cx, name: str, address: str) -> None:
    """Unlink a mailbox; if it was the default, the next linked one becomes default."""

    from tui_helpdesk.services import queues

    with cx.session(write=True) as (session, actor):
        emit(queues.remove_mailbox(session, actor, name, address), queue_text)


@queue.command("set-default")
@click.argument("name", metavar="QUEUE")
@click.argument("address")
@common
@pass_cx
def queue_set_default(cx: Cx, name: str, address: str) -> None:
    """Make a linked, active mailbox the queue's sender."""

    from tui_helpdesk.services import queues

    with cx.session(write=True) as (session, actor):
        emit(queues.set_default(session, actor, name, address), queue_text)


@queue.command("add-member")
@click.argument("name", metavar="QUEUE")
@click.argument("email")
@click.option("--role", type=click.Choice(MEMBER_ROLES), default="agent", show_default=True)
@common
@pass_cx
def queue_add_member(cx: Cx, name: str, email: str, role: str) -> None:
    """Add a member, or change the role of one."""

    from tui_helpdesk.services import queues

    with cx.session(write=True) as (session, actor):
        emit(queues.add_member(session, actor, name, email, role), queue_text)


@queue.command("remove-member")
@click.argument("name", metavar="QUEUE")
@click.argument("email")
@common
@pass_cx
def queue_remove_member(cx: Cx, name: str, email: str) -> None:
    from tui_helpdesk.services import queues

    with cx.session(write=True) as (session, actor):
        emit(queues.remove_member(session, actor, name, email), queue_text)
