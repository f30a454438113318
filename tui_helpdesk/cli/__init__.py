"""`tui-helpdesk`: the TUI when run bare, admin subcommands for scripting (F81).

Exit codes: 0 ok, 2 invalid input or usage, 3 not found, 4 conflict, 5 limit reached,
6 permission denied (from errors.HelpdeskError.exit_code).
"""

from __future__ import annotations

import click

from tui_helpdesk.cli import (
    admin,
    conversation,
    conversation_actions,
    database,
    inbound,
    keys,
    mailbox,
    mailbox_rules,
    message,
    queue,
    replies,
    routing,
    run,
    sending,
    ssh_session,
    stats,
    verification,
)
from tui_helpdesk.cli.context import Cx, HelpdeskGroup, common


@click.group(
    cls=HelpdeskGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--config", "config_path", metavar="PATH", type=click.Path(dir_okay=False),
    help="Config file (default: $TUI_HELPDESK_CONFIG).",
)  # fmt: skip
@click.option("--no-worker", is_flag=True, help="Do not run the SMTP worker inside the TUI.")
@common
@click.version_option(package_name="tui-helpdesk", prog_name="tui-helpdesk")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, no_worker: bool) -> None:
    """Shared-inbox email helpdesk in the terminal. Without a command: open the TUI."""
    if not isinstance(ctx.obj, Cx):  # ssh-session (and tests) hand in who is at the keyboard
        ctx.obj = Cx(config_path)
    if ctx.invoked_subcommand is None:
        ctx.exit(run.start_tui(ctx.obj, no_worker=no_worker))


for command in (
    admin.init, admin.org, admin.domain, admin.user, admin.audit_group,
    mailbox.mailbox, queue.queue, conversation.conversation, message.message, routing.rule,
    run.worker, database.db, keys.ssh, ssh_session.ssh_session, sending.outbox, stats.stats,
):  # fmt: skip
    cli.add_command(command)
for command in (keys.user_add_key, keys.user_keys, keys.user_remove_key, keys.user_whoami):
    admin.user.add_command(command)
for command in inbound.QUEUE_COMMANDS:
    queue.queue.add_command(command)
for command in (*inbound.MAILBOX_COMMANDS, *sending.MAILBOX_COMMANDS,
                *verification.MAILBOX_COMMANDS, *mailbox_rules.MAILBOX_COMMANDS):  # fmt: skip
    mailbox.mailbox.add_command(command)
for command in (*conversation_actions.ACTION_COMMANDS, *replies.REPLY_COMMANDS):
    conversation.conversation.add_command(command)


def main() -> None:
    cli(prog_name="tui-helpdesk")


__all__ = ["cli", "main"]
