"""SSH keys of users and the authorized_keys sshd reads (F3, gitolite-style).

Services are imported inside the commands: the key parser brings in `cryptography`, which no
other command needs.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from tui_helpdesk.cli.context import Cx, HelpdeskGroup, common, emit, read_text
from tui_helpdesk.cli.identity import os_login
from tui_helpdesk.cli.output import key_values, record_pairs, table
from tui_helpdesk.records import UserKeyRecord, UserRecord

pass_cx = click.make_pass_decorator(Cx)


@click.command("add-key")
@click.argument("email")
@click.argument("keyfile", metavar="KEYFILE|-")
@common
@pass_cx
def user_add_key(cx: Cx, email: str, keyfile: str) -> None:
    """Register an OpenSSH public key (a .pub file, or - for standard input) for a user."""
    from tui_helpdesk.services import ssh_keys

    text = read_text(keyfile, field="key")
    with cx.session(write=True) as (session, actor):
        emit(ssh_keys.add(session, actor, email, text), _key_text)


@click.command("keys")
@click.argument("email")
@common
@pass_cx
def user_keys(cx: Cx, email: str) -> None:
    """A user's SSH keys (admins: anyone's; agents: their own)."""
    from tui_helpdesk.services import ssh_keys

    with cx.session() as (session, actor):
        records = ssh_keys.list_keys(session, actor, email)
    emit(records, lambda rs: table(["id", "type", "fingerprint", "comment", "added"], [
        (r.id, r.key_type, r.fingerprint, r.comment, r.created_at) for r in rs
    ]))  # fmt: skip


@click.command("remove-key")
@click.argument("email")
@click.argument("key_id", metavar="ID", type=int)
@common
@pass_cx
def user_remove_key(cx: Cx, email: str, key_id: int) -> None:
    """Remove a key; with AuthorizedKeysCommand it stops working at once."""
    from tui_helpdesk.services import ssh_keys

    with cx.session(write=True) as (session, actor):
        emit(ssh_keys.remove(session, actor, email, key_id), _key_text)


def _key_text(record: UserKeyRecord) -> str:
    return key_values(record_pairs(record, skip=("public_key", "user_active")))


@click.command("whoami")
@common
@pass_cx
def user_whoami(cx: Cx) -> None:
    """Who this command acts as (the OS login's user, --as, or the SSH key's user)."""
    with cx.session() as (_session, actor):
        assert actor is not None  # session() without bootstrap never yields None
    emit(actor, _user_text)


def _user_text(record: UserRecord) -> str:
    return key_values(record_pairs(record))


@click.group("ssh", cls=HelpdeskGroup)
def ssh() -> None:
    """SSH access for agents: one system account, one forced command per key."""


@ssh.command("authorized-keys")
@click.argument("account", required=False)
@click.argument("key_data", metavar="KEY", required=False)
@click.argument("key_type", metavar="TYPE", required=False)
@pass_cx
def authorized_keys(
    cx: Cx, account: str | None, key_data: str | None, key_type: str | None
) -> None:
    """Print authorized_keys lines; usable as sshd's `AuthorizedKeysCommand ... %u %k %t`.

    Given the account sshd logs in (%u), only the account running this command gets keys, so
    a global AuthorizedKeysCommand never opens another account. Given a key (%k, %t), only its
    line is printed. Keys of inactive users are never printed.
    """
    from tui_helpdesk.services import ssh_keys

    if account is not None and account != os_login(cx.uid):
        return
    with cx.database().read() as session:
        records = ssh_keys.login_keys(session, key_type=key_type, key_data=key_data)
    prefix = session_command(cx)
    for record in records:
        click.echo(authorized_keys_line(prefix, record))


def helpdesk_executable() -> list[str]:
    """This installation's command, by absolute path: sshd runs it without our PATH."""
    script = Path(sys.executable).parent / "tui-helpdesk"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "tui_helpdesk"]


def session_command(cx: Cx) -> list[str]:
    """`tui-helpdesk [--config PATH] ssh-session`: the session reads the same configuration."""
    source = cx.settings().source
    config = ["--config", str(Path(source).absolute())] if source else []
    return [*helpdesk_executable(), *config, "ssh-session"]


def authorized_keys_line(prefix: list[str], record: UserKeyRecord) -> str:
    """`command="…",restrict,pty KEY COMMENT`: no forwarding, no shell, a terminal for the TUI.

    Inside the quotes sshd reads `\\"` as a quote and leaves other backslashes alone; the
    command itself goes to the account's shell, so each word is shell-quoted.
    """
    words = [*prefix, "--key-id", str(record.id)]
    command = " ".join(shlex.quote(word) for word in words).replace('"', '\\"')
    return f'command="{command}",restrict,pty {record.public_key} {record.user_email}'
