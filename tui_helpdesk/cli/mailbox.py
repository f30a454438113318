"""`tui-helpdesk mailbox ...` (F10-F15). Mailboxes are named by their email address."""

from __future__ import annotations

from typing import Any

import click

from tui_helpdesk.cli import output
from tui_helpdesk.cli.context import Cx, HelpdeskGroup, common, emit, wants_json
from tui_helpdesk.cli.output import key_values, record_pairs, table
from tui_helpdesk.cli.sending import sending_pairs, transport_summary, webhook_summary
from tui_helpdesk.errors import Invalid
from tui_helpdesk.records import MailboxRecord, to_jsonable

pass_cx = click.make_pass_decorator(Cx)
ADDRESS = click.argument("address")


def field_options(command: Any) -> Any:
    """The editable fields, shared by create and update (never the alias)."""
    for option in reversed([
        click.option("--display-name", help="Sender name, may use {{first_name}}/{{last_name}}."),
        click.option("--local-part", help="Lowercase part before the @."),
        click.option("--domain", help="One of the organisation's domains."),
        click.option("--timezone", help="IANA timezone (default: the organisation's)."),
        click.option("--language", help="Language tag (default: the organisation's)."),
        click.option("--description"),
        click.option("--department"),
        click.option("--responsible", metavar="EMAIL", help="The responsible user."),
    ]):  # fmt: skip
        command = option(command)
    return command


def mailbox_text(record: MailboxRecord) -> str:
    return key_values(record_pairs(record, skip=("organisation_id",)))


@click.group(cls=HelpdeskGroup)
@common
def mailbox() -> None:
    """Mailboxes: addresses, aliases, life cycle."""


@mailbox.command("create")
@field_options
@click.option("--org", "organisation", metavar="NAME", help="Organisation (if several exist).")
@common
@pass_cx
def mailbox_create(cx: Cx, organisation: str | None, **fields: str | None) -> None:
    """Create a mailbox; its alias is generated once and never changes."""

    from tui_helpdesk.services import mailboxes

    for required in ("display_name", "local_part", "domain"):
        if fields[required] is None:
            raise click.UsageError(f"missing option --{required.replace('_', '-')}")
    values = {k: v for k, v in fields.items() if v is not None}
    with cx.session(write=True) as (session, actor):
        record = mailboxes.create(
            session,
            cx.settings(),
            actor,
            organisation=organisation,
            **values,  # type: ignore[arg-type]
        )
    emit(record, mailbox_text)


@mailbox.command("list")
@click.option("--status", type=click.Choice(["active", "inactive"]))
@common
@pass_cx
def mailbox_list(cx: Cx, status: str | None) -> None:
    """Every mailbox not deleted."""

    from tui_helpdesk.services import mailboxes

    with cx.session() as (session, actor):
        records = mailboxes.list_mailboxes(session, actor, status=status)
    headers = ["address", "status", "display name", "alias", "queues"]
    emit(records, lambda rs: table(headers, [
        (r.email_address, r.status, r.display_name, r.alias, r.queues) for r in rs
    ]))  # fmt: skip


@mailbox.command("show")
@ADDRESS
@common
@pass_cx
def mailbox_show(cx: Cx, address: str) -> None:
    """Show a mailbox by its address (or alias)."""

    from tui_helpdesk.services import mailboxes

    with cx.session() as (session, actor):
        record = mailboxes.get(session, actor, address)
        sending = sending_pairs(session, actor, address)
    if wants_json():
        emit({**to_jsonable(record), **to_jsonable(sending)}, str)
        return
    lines = [("transport", transport_summary(sending["transport"])),
             ("webhook", webhook_summary(sending["webhook"]))] if sending else []  # fmt: skip
    output.echo(mailbox_text(record) + ("\n" + key_values(lines) if lines else ""))


@mailbox.command("update")
@ADDRESS
@field_options
@common
@pass_cx
def mailbox_update(cx: Cx, address: str, **fields: str | None) -> None:
    """Change any field but the alias; "" resets timezone/language/responsible."""

    from tui_helpdesk.services import mailboxes
    from tui_helpdesk.services.mailboxes import MailboxChanges

    if all(value is None for value in fields.values()):
        raise click.UsageError("nothing to change: give at least one option such as --display-name")
    with cx.session(write=True) as (session, actor):
        record = mailboxes.update(session, actor, address, MailboxChanges(**fields))
    emit(record, mailbox_text)


@mailbox.command("activate")
@ADDRESS
@common
@pass_cx
def mailbox_activate(cx: Cx, address: str) -> None:
    from tui_helpdesk.services import mailboxes

    with cx.session(write=True) as (session, actor):
        emit(mailboxes.activate(session, actor, address), mailbox_text)


@mailbox.command("deactivate")
@ADDRESS
@common
@pass_cx
def mailbox_deactivate(cx: Cx, address: str) -> None:
    """Keep the history, refuse new mail; refused while the default of a queue."""

    from tui_helpdesk.services import mailboxes

    with cx.session(write=True) as (session, actor):
        emit(mailboxes.deactivate(session, actor, address), mailbox_text)


@mailbox.command("delete")
@ADDRESS
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@common
@pass_cx
def mailbox_delete(cx: Cx, address: str, yes: bool) -> None:
    """Delete a mailbox linked to no queue. Cannot be undone; conversations stay readable."""

    from tui_helpdesk.services import mailboxes

    if not yes:
        if wants_json():
            raise Invalid("deleting cannot be undone: pass --yes to confirm", field="yes")
        click.confirm(f"Delete mailbox {address}? This cannot be undone", abort=True)
    with cx.session(write=True) as (session, actor):
        emit(mailboxes.delete(session, actor, address), mailbox_text)
