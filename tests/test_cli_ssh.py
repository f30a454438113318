"""SSH keys on the command line and what `ssh-session` lets a key run (F3, gitolite-style)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest
from test_cli import ADA, Cli
from test_ssh_keys import MakeKey

from tui_helpdesk.cli.identity import os_login
from tui_helpdesk.cli.ssh_session import remote_argv
from tui_helpdesk.errors import PermissionDenied


@pytest.fixture
def desk(db_url: str, tmp_path: Path) -> Cli:
    """Acme with admin ada and agent bob, through a config file (as sshd's commands get it)."""
    config = tmp_path / "helpdesk.toml"
    config.write_text(f"[database]\nurl = {json.dumps(db_url)}\n[smtp]\nport = 0\n")
    run = Cli(db_url, TUI_HELPDESK_CONFIG=str(config))
    run("init")
    run("org", "create", "Acme", "--timezone", "UTC", "--language", "en")
    run("user", "add", "ada@acme.test", "--name", "Ada Lovelace", "--role", "admin")
    run("user", "add", "bob@acme.test", "--name", "Bob", "--role", "agent", *ADA)
    run("domain", "add", "acme.test", *ADA)
    return run


def test_keys_are_added_listed_printed_for_sshd_and_removed(
    desk: Cli, make_key: MakeKey, tmp_path: Path
) -> None:
    public = make_key()
    added = desk.json("user", "add-key", "bob@acme.test", str(public), *ADA)
    from_stdin = desk.json("user", "add-key", "bob@acme.test", "-", *ADA,
                           input=make_key().read_text())  # fmt: skip
    desk("user", "add-key", "bob@acme.test", str(public), *ADA, code=4)  # the same key again
    assert "options" in desk("user", "add-key", "bob@acme.test", "-", *ADA, code=2,
                             input=f"restrict {public.read_text()}").stderr  # fmt: skip
    keys = desk.json("user", "keys", "bob@acme.test", *ADA)
    assert [k["id"] for k in keys] == [added["id"], from_stdin["id"]]
    lines = desk("ssh", "authorized-keys").stdout.splitlines()
    executable = str(Path(sys.executable).parent / "tui-helpdesk")
    config = str(tmp_path / "helpdesk.toml")
    command = f"{executable} --config {config} ssh-session --key-id {added['id']}"
    public_key = " ".join(public.read_text().split()[:2])
    assert lines[0] == f'command="{command}",restrict,pty {public_key} bob@acme.test'
    key_type, data = public_key.split()
    me = os_login()
    assert desk("ssh", "authorized-keys", me, data, key_type).stdout.splitlines() == lines[:1]
    assert desk("ssh", "authorized-keys", "someone-else", data, key_type).stdout == ""
    desk("user", "remove-key", "bob@acme.test", str(added["id"]), *ADA)
    assert desk("ssh", "authorized-keys", me, data, key_type).stdout == ""
    desk("user", "deactivate", "bob@acme.test", *ADA)
    assert desk("ssh", "authorized-keys").stdout == ""


def test_an_authorized_keys_command_with_odd_characters_stays_one_word(
    desk: Cli, make_key: MakeKey, tmp_path: Path, db_url: str
) -> None:
    odd = tmp_path / 'it\'s "odd" \\ dir'
    odd.mkdir()
    config = odd / "helpdesk.toml"
    config.write_text(f"[database]\nurl = {json.dumps(db_url)}\n")
    desk("user", "add-key", "bob@acme.test", str(make_key()), *ADA)
    line = Cli(db_url, TUI_HELPDESK_CONFIG=str(config))("ssh", "authorized-keys").stdout
    quoted = line.split('command="', 1)[1].split('",restrict,pty ', 1)[0]
    assert shlex.split(quoted.replace('\\"', '"'))[1:3] == ["--config", str(config)]


def session(desk: Cli, key_id: int, command: str, *, code: int = 0, input: str | None = None):  # type: ignore[no-untyped-def]
    desk.env["SSH_ORIGINAL_COMMAND"] = command
    try:
        return desk("ssh-session", "--key-id", str(key_id), code=code, input=input)
    finally:
        del desk.env["SSH_ORIGINAL_COMMAND"]


def test_a_command_over_ssh_runs_as_the_keys_user(desk: Cli, make_key: MakeKey) -> None:
    key = desk.json("user", "add-key", "bob@acme.test", str(make_key()), *ADA)
    whoami = json.loads(session(desk, key["id"], "user whoami --json").stdout)
    assert whoami["email"] == "bob@acme.test"
    assert json.loads(session(desk, key["id"], "conversation list --json").stdout) == []
    denied = session(desk, key["id"], "mailbox create --display-name S --local-part s "
                     "--domain acme.test", code=6)  # fmt: skip
    assert "bob@acme.test is an agent" in denied.stderr
    quoted = session(desk, key["id"], "user show 'bob@acme.test' --json")
    assert json.loads(quoted.stdout)["name"] == "Bob"


@pytest.mark.parametrize(
    ("command", "said"),
    [
        ("user whoami --as ada@acme.test", "--as"),
        ("user whoami --as=ada@acme.test", "--as"),
        ("--as ada@acme.test user whoami", "--as"),
        ("user whoami; id", "';'"),
        ("user whoami && id", "'&'"),
        ("user whoami | cat", "'|'"),
        ("user whoami $(id)", "'$'"),
        ("user whoami `id`", "'`'"),
        ("user whoami > /tmp/x", "'>'"),
        ("user whoami\nid", "'\\n'"),
        ("user show 'bob", "quotation"),
        ("--config /tmp/x.toml user whoami", "'--config' is not one of"),
        ("sh -c id", "'sh' is not one of"),
        ("db backup x.sqlite3", "'db' is not one of"),
        ("init", "'init' is not one of"),
        ("worker", "'worker' is not one of"),
        ("ssh authorized-keys", "'ssh' is not one of"),
        ("ssh-session --key-id 1", "'ssh-session' is not one of"),
        ("internal-sftp", "'internal-sftp' is not one of"),
    ],
)
def test_what_a_key_may_not_run(command: str, said: str) -> None:
    with pytest.raises(PermissionDenied) as caught:
        remote_argv(command)
    assert said in caught.value.message and caught.value.field == "command"


def test_refusals_exit_6_and_files_are_read_from_stdin_only(desk: Cli, make_key: MakeKey) -> None:
    ada_key = desk.json("user", "add-key", "ada@acme.test", str(make_key()), *ADA)["id"]
    refused = session(desk, ada_key, "user whoami --as bob@acme.test", code=6)
    assert "--as" in refused.stderr
    path_read = session(desk, ada_key, f"user add-key bob@acme.test {make_key()}", code=6)
    assert "over SSH give the text on standard input" in path_read.stderr
    added = session(
        desk, ada_key, "user add-key bob@acme.test - --json", input=make_key().read_text()
    )
    assert json.loads(added.stdout)["user_email"] == "bob@acme.test"


def test_a_removed_key_or_inactive_user_gets_nothing(desk: Cli, make_key: MakeKey) -> None:
    key = desk.json("user", "add-key", "bob@acme.test", str(make_key()), *ADA)["id"]
    desk("user", "deactivate", "bob@acme.test", *ADA)
    assert "inactive" in session(desk, key, "user whoami", code=6).stderr
    assert "inactive" in session(desk, key, "", code=6).stderr  # not even the TUI
    desk("user", "activate", "bob@acme.test", *ADA)
    desk("user", "remove-key", "bob@acme.test", str(key), *ADA)
    assert "not registered" in session(desk, key, "user whoami", code=6).stderr


def test_the_tui_over_ssh_needs_a_terminal(desk: Cli, make_key: MakeKey) -> None:
    key = desk.json("user", "add-key", "bob@acme.test", str(make_key()), *ADA)["id"]
    assert "ssh -t" in session(desk, key, "", code=1).stderr
