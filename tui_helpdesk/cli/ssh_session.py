"""`ssh-session --key-id N`: what sshd runs for every agent key (the authorized_keys command=).

The key decides who acts. Without a command (`ssh -t helpdesk@host`) the TUI starts as the
key's user; with one (`ssh helpdesk@host conversation list --json`) that one CLI command runs
as the key's user. No shell ever runs: SSH_ORIGINAL_COMMAND is split like a shell would split
it (shlex) and handed to the CLI, and refused when it

- holds a character a shell would act on (`; & | < > ( ) $ \\` backslash * ? [ ] { } ~ ! #`,
  control characters), because the sender expects something we will never do;
- names `--as` anywhere (the key decides) or starts with an option (`--config`, …);
- is not one of the agents' subcommands below. `init`, `db`, `worker`, `ssh`, `ssh-session` and
  the TUI's own options belong to the helpdesk account on the server, not to a key; file paths
  are refused too (give text on standard input, `-`), see context.read_text.
"""

from __future__ import annotations

import os
import re
import shlex
import sys

import click

from tui_helpdesk.cli import run
from tui_helpdesk.cli.context import Cx
from tui_helpdesk.errors import PermissionDenied

# The subcommands an agent's key may run; the services still check every permission.
REMOTE_COMMANDS = (
    "conversation", "message", "mailbox", "queue", "rule", "user", "org", "domain", "audit",
    "stats",
)  # fmt: skip
SHELL_CHARACTERS = re.compile(r"[;&|<>()$`\\*?\[\]{}~!#\x00-\x1f\x7f]")


def remote_argv(command: str) -> list[str]:
    """SSH_ORIGINAL_COMMAND → CLI arguments, or PermissionDenied saying what is refused."""
    found = SHELL_CHARACTERS.search(command)
    if found:
        raise PermissionDenied(
            f"refused over SSH: {found.group()!r} — no shell runs here; quote words with ' or \"",
            field="command",
        )
    try:
        argv = shlex.split(command)
    except ValueError as error:
        raise PermissionDenied(f"refused over SSH: {error}", field="command") from None
    if any(word == "--as" or word.startswith("--as=") for word in argv):
        raise PermissionDenied(
            "refused over SSH: --as (your key decides who you are)", field="command"
        )
    if argv and argv[0] not in REMOTE_COMMANDS:
        raise PermissionDenied(
            f"refused over SSH: {argv[0]!r} is not one of {', '.join(REMOTE_COMMANDS)}",
            field="command",
        )
    return argv


@click.command("ssh-session")
@click.option("--key-id", type=int, required=True, help="The key sshd authenticated.")
@click.pass_context
def ssh_session(ctx: click.Context, key_id: int) -> None:
    """Run by sshd for each agent key: the TUI, or one CLI command, as the key's user."""
    outer = ctx.find_object(Cx)
    cx = Cx(outer.config_path if outer else None, ssh_key_id=key_id)
    argv = remote_argv(os.environ.get("SSH_ORIGINAL_COMMAND", ""))
    if not argv:
        ctx.exit(_tui(cx))
    _key_user(cx)
    root = ctx.find_root().command
    try:
        root.main(args=argv, prog_name="tui-helpdesk", obj=cx)
    except SystemExit as done:
        ctx.exit(done.code if isinstance(done.code, int) else 1)


def _key_user(cx: Cx) -> None:
    """Refuse a removed key or an inactive user (PermissionDenied) before anything runs."""
    with cx.session() as (_session, actor):
        assert actor is not None


def _tui(cx: Cx) -> int:
    """The TUI as the key's user. The key is resolved in the app's connecting thread, as every
    TUI start resolves who acts (a removed key or an inactive user ends the app with the same
    message and exit code), so the start-up cache can draw the first rows before the database
    layer is imported; the cache finds the user by the key, and not at all for a removed key
    or an inactive user."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        _key_user(cx)  # a refused key hears that first, as with a command
        raise click.ClickException("the helpdesk needs a terminal: connect with `ssh -t`")
    return run.start_tui(cx, no_worker=True, ssh=True)
