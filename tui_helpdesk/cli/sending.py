"""How mail leaves (F17, F22, F73): a mailbox's transport and webhook (MAILBOX_COMMANDS, on
the `mailbox` group) and the `outbox` group (list, retry).

Secrets are read from a file or standard input, never from the command line (where `ps` and
the shell history would show them), and are printed back only masked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from tui_helpdesk.cli.context import Cx, HelpdeskGroup, common, emit
from tui_helpdesk.cli.inbound import read_text
from tui_helpdesk.cli.output import key_values, record_pairs, table
from tui_helpdesk.errors import Invalid
from tui_helpdesk.records import OutboxJobRecord, TransportRecord, UserRecord, WebhookRecord
from tui_helpdesk.services.vocabulary import OUTBOX_STATUSES, TRANSPORT_SECURITIES

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

pass_cx = click.make_pass_decorator(Cx)
ADDRESS = click.argument("address")
SECRET_FILE = click.Path(dir_okay=False, allow_dash=True)
DEFAULT_LIMIT = 50


def read_secret(path: str, *, field: str) -> str:
    """The first line of a file ("-" = standard input), without its line break."""
    lines = read_text(path, field=field).splitlines()
    if not lines or not lines[0]:
        raise Invalid(f"{field}: {path} holds no {field} on its first line", field=field)
    return lines[0]


def transport_summary(record: TransportRecord) -> str:
    if record.platform:
        return "platform relay ([outbound] in the config)"
    login = f", user {record.username}, password {record.password}" if record.username else ""
    return f"{record.host}:{record.port} {record.security}{login}"


def webhook_summary(record: WebhookRecord) -> str:
    return f"{record.url} (secret {record.secret})" if record.url else "off"


def sending_pairs(session: Session, actor: UserRecord | None, address: str) -> dict[str, Any]:
    """The transport and webhook of a mailbox for `mailbox show`: admins only, masked."""
    from tui_helpdesk.services import transports, webhooks

    if actor is None or not actor.is_admin:
        return {}
    return {
        "transport": transports.get_transport(session, actor, address),
        "webhook": webhooks.get_webhook(session, actor, address),
    }


# --- mailbox set-transport | set-webhook -----------------------------------------------------


@click.command("set-transport")
@ADDRESS
@click.option("--platform", is_flag=True, help="Send through the platform relay (the default).")
@click.option("--host", help="The mailbox's own SMTP server.")
@click.option("--port", type=click.IntRange(1, 65535), help="Its port (587, 465, 25 ...).")
@click.option("--security", type=click.Choice(TRANSPORT_SECURITIES),
              help="none, starttls (required, certificate checked) or tls (implicit).")  # fmt: skip
@click.option("--username", help="AUTH user name (needs --password-file).")
@click.option(
    "--password-file", type=SECRET_FILE, help="AUTH password: first line of F (- = stdin)."
)
@common
@pass_cx
def mailbox_set_transport(
    cx: Cx, address: str, platform: bool, host: str | None, port: int | None,
    security: str | None, username: str | None, password_file: str | None,
) -> None:  # fmt: skip
    """Send this mailbox's mail through the platform relay or its own server (F17)."""
    from tui_helpdesk.services import transports

    own = (host, port, security, username, password_file)
    if platform == any(value is not None for value in own) or (not platform and not host):
        raise click.UsageError("give either --platform or --host H --port P --security S")
    if not platform and (port is None or security is None):
        raise click.UsageError("--host needs --port and --security")
    password = read_secret(password_file, field="password") if password_file else ""
    with cx.session(write=True) as (session, actor):
        record = transports.set_transport(
            session, actor, address, platform=platform, host=host or "", port=port or 587,
            security=security or "starttls", username=username or "", password=password,
        )  # fmt: skip
    emit(record, lambda r: key_values(record_pairs(r)))


@click.command("set-webhook")
@ADDRESS
@click.option("--url", help="https:// URL that receives the events.")
@click.option(
    "--secret-file", type=SECRET_FILE, help="Signing secret: first line of F (- = stdin)."
)
@click.option("--off", is_flag=True, help="Turn the webhook off.")
@common
@pass_cx
def mailbox_set_webhook(
    cx: Cx, address: str, url: str | None, secret_file: str | None, off: bool
) -> None:
    """Tell an https URL about new conversations, new messages and closed ones (F22)."""
    from tui_helpdesk.services import webhooks

    if off == (url is not None or secret_file is not None):
        raise click.UsageError("give either --url URL [--secret-file F] or --off")
    secret = read_secret(secret_file, field="secret") if secret_file else None
    with cx.session(write=True) as (session, actor):
        record = webhooks.set_webhook(session, actor, address, url=url, secret=secret, off=off)
    emit(record, lambda r: key_values(record_pairs(r)))


MAILBOX_COMMANDS = (mailbox_set_transport, mailbox_set_webhook)


# --- outbox ----------------------------------------------------------------------------------


@click.group(cls=HelpdeskGroup)
@common
def outbox() -> None:
    """Outgoing mail and webhook deliveries (admins)."""


@outbox.command("list")
@click.option("--status", type=click.Choice(OUTBOX_STATUSES), help="Only jobs in this state.")
@click.option("--limit", type=click.IntRange(min=1), help=f"Rows (default {DEFAULT_LIMIT}).")
@click.option("--all", "show_all", is_flag=True, help="Show every row.")
@common
@pass_cx
def outbox_list(cx: Cx, status: str | None, limit: int | None, show_all: bool) -> None:
    """Newest first, with the server's last answer."""
    from tui_helpdesk.services import outbox as jobs

    if show_all and limit is not None:
        raise click.UsageError("give either --limit N or --all, not both")
    with cx.session() as (session, actor):
        records = jobs.list_jobs(
            session, actor, status=status, limit=None if show_all else (limit or DEFAULT_LIMIT)
        )
    emit(records, _jobs_text)


def _jobs_text(records: list[OutboxJobRecord]) -> str:
    headers = ["id", "kind", "status", "mailbox", "to", "conversation", "attempts", "next attempt",
               "last error"]  # fmt: skip
    return table(headers, [
        (r.id, r.event or r.kind, r.status, r.mailbox, r.recipients, r.conversation_id,
         r.attempts, r.next_attempt_at if r.status in ("queued", "retrying") else None,
         r.last_error)
        for r in records
    ], empty="No outbox jobs.")  # fmt: skip


@outbox.command("retry")
@click.argument("job_id", metavar="ID", type=int)
@common
@pass_cx
def outbox_retry(cx: Cx, job_id: int) -> None:
    """Queue a failed job again, with a fresh count of attempts."""
    from datetime import UTC, datetime

    from tui_helpdesk.services import outbox as jobs

    with cx.session(write=True) as (session, actor):
        record = jobs.retry_job(session, actor, job_id, now=datetime.now(UTC))
    emit(record, lambda r: key_values(record_pairs(r)))
