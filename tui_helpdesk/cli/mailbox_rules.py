"""A mailbox's rules for what it sends and who sees it: `mailbox set-senders` (F20),
`set-private` (F21), `signature` / `set-signature` (F18), `close-notice` /
`set-close-notice` (F45). On the `mailbox` group (MAILBOX_COMMANDS); admins change them.
"""

from __future__ import annotations

import click

from tui_helpdesk.cli.context import Cx, common, emit, read_text
from tui_helpdesk.cli.output import key_values, record_pairs
from tui_helpdesk.cli.verification import ADDRESS

pass_cx = click.make_pass_decorator(Cx)
TEXT_FILE = click.Path(dir_okay=False, allow_dash=True)


def _pairs(record: object) -> str:
    return key_values(record_pairs(record))


def _mailbox_text(record: object) -> str:
    fields = ("email_address", "status", "private", "granted", "senders", "signature",
              "close_notice")  # fmt: skip
    return key_values([(f.replace("_", " "), getattr(record, f)) for f in fields])


@click.command("set-senders")
@ADDRESS
@click.argument("emails", metavar="EMAIL...", nargs=-1)
@click.option("--anyone", is_flag=True, help="Lift the restriction: whoever may reply sends.")
@common
@pass_cx
def mailbox_set_senders(cx: Cx, address: str, emails: tuple[str, ...], anyone: bool) -> None:
    """Only these users may send from the mailbox (admins too)."""
    from tui_helpdesk.services import mailboxes

    if anyone == bool(emails):
        raise click.UsageError("give the users who may send (EMAIL...), or --anyone")
    with cx.session(write=True) as (session, actor):
        record = mailboxes.set_senders(session, actor, address, None if anyone else emails)
    emit(record, _mailbox_text)


@click.command("set-private")
@ADDRESS
@click.option("--grant", "grant", multiple=True, metavar="EMAIL",
              help="A user who sees its conversations (repeatable, replaces).")  # fmt: skip
@click.option("--public", is_flag=True, help="Everyone who works on it sees them again.")
@common
@pass_cx
def mailbox_set_private(cx: Cx, address: str, grant: tuple[str, ...], public: bool) -> None:
    """Make the mailbox private: its conversations are seen only by the granted users (admins
    included), in lists, counts, search and show alike."""
    from tui_helpdesk.services import mailboxes

    if public == bool(grant):
        raise click.UsageError("give --grant EMAIL (one or more), or --public")
    with cx.session(write=True) as (session, actor):
        record = mailboxes.set_private(session, actor, address, grant=None if public else grant)
    emit(record, _mailbox_text)


@click.command("signature")
@ADDRESS
@common
@pass_cx
def mailbox_signature(cx: Cx, address: str) -> None:
    """The signature as set, placeholders unfilled."""
    from tui_helpdesk.services import mailboxes

    with cx.session() as (session, actor):
        emit(mailboxes.get_signature(session, actor, address), _pairs)


@click.command("set-signature")
@ADDRESS
@click.option("--text-file", type=TEXT_FILE, required=True, help="Text signature (- = stdin).")
@click.option("--html-file", type=TEXT_FILE, help="HTML signature too (- = stdin).")
@common
@pass_cx
def mailbox_set_signature(cx: Cx, address: str, text_file: str, html_file: str | None) -> None:
    """Append a signature to the mailbox's mail; {{first_name}} {{last_name}} {{agent_name}}
    {{agent_email}} {{mailbox_name}} {{mailbox_address}} are filled in. An empty file
    removes it."""
    from tui_helpdesk.services import mailboxes

    if text_file == "-" and html_file == "-":
        raise click.UsageError("only one of --text-file and --html-file can read stdin")
    text = read_text(text_file, field="signature_text")
    html = read_text(html_file, field="signature_html") if html_file else ""
    with cx.session(write=True) as (session, actor):
        emit(mailboxes.set_signature(session, actor, address, text=text, html=html), _pairs)


@click.command("close-notice")
@ADDRESS
@common
@pass_cx
def mailbox_close_notice(cx: Cx, address: str) -> None:
    """Whether closing a conversation mails the customer, and the text."""
    from tui_helpdesk.services import mailboxes

    with cx.session() as (session, actor):
        emit(mailboxes.get_close_notice(session, actor, address), _pairs)


@click.command("set-close-notice")
@ADDRESS
@click.option("--text-file", type=TEXT_FILE, help="The notice ({{subject}} "
              "{{conversation_id}} {{agent_name}}; - = stdin); turns it on.")  # fmt: skip
@click.option("--default", "use_default", is_flag=True, help="On, with the built-in text.")
@click.option("--off", is_flag=True, help="Closing mails nothing.")
@common
@pass_cx
def mailbox_set_close_notice(
    cx: Cx, address: str, text_file: str | None, use_default: bool, off: bool
) -> None:
    """What closing a conversation of this mailbox mails to the customer."""
    from tui_helpdesk.services import mailboxes

    if sum((text_file is not None, use_default, off)) != 1:
        raise click.UsageError("give one of --text-file F, --default or --off")
    text = "" if use_default else None
    if text_file is not None:
        text = read_text(text_file, field="close_notice")
    with cx.session(write=True) as (session, actor):
        record = mailboxes.set_close_notice(session, actor, address, enabled=not off, text=text)
    emit(record, _pairs)


MAILBOX_COMMANDS = (
    mailbox_set_senders, mailbox_set_private, mailbox_signature, mailbox_set_signature,
    mailbox_close_notice, mailbox_set_close_notice,
)  # fmt: skip
