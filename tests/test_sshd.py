"""Agents over a real OpenSSH sshd (F3): the key decides who acts, no shell, removal is at once.

The test starts its own sshd on a free 127.0.0.1 port, with a throwaway host key and its own
sshd_config in a temporary folder; the system's sshd is never touched. sshd asks
`tui-helpdesk ssh authorized-keys %u %k %t` for the keys (AuthorizedKeysCommand). sshd runs
that command only from a root-owned path no one else may write, all the way up, so it is this
virtualenv's python (a link to the root-owned interpreter) with `--config`, as on a server,
not a wrapper script in the temporary folder (which lives under the world-writable /tmp).
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fcntl import ioctl
from pathlib import Path

import pytest
from test_cli import ADA, Cli

from tui_helpdesk import start_cache
from tui_helpdesk.cli.identity import os_login

SSHD = Path("/usr/sbin/sshd")
MakeKey = Callable[..., Path]


@dataclass
class Sshd:
    port: int
    config: Path  # the helpdesk's config file the AuthorizedKeysCommand and sessions read
    log: Path
    cache: Path  # the sessions' XDG_CACHE_HOME

    def ssh(self, key: Path, *command: str, tty: bool = False) -> list[str]:
        return [
            "ssh", "-F", "/dev/null", "-i", str(key.with_suffix("")), "-p", str(self.port),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
            *(["-tt"] if tty else ["-T"]), f"{os_login()}@127.0.0.1", *command,
        ]  # fmt: skip

    def run(self, key: Path, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.ssh(key, *command), capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _sshd_config(folder: Path, port: int, config: Path) -> Path:
    host_key = folder / "host_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)],
                   check=True)  # fmt: skip
    # The warm command server (tui_helpdesk.launch) stays off: tests leave no process behind.
    # sshd hands its commands none of our environment: the code under test (PYTHONPATH, when
    # it points elsewhere than the installed package) is named for them, and the sessions keep
    # their start-up cache in the test's folder, not in the account's home.
    code = [f"PYTHONPATH={os.environ['PYTHONPATH']}"] if os.environ.get("PYTHONPATH") else []
    command = (f"/usr/bin/env TUI_HELPDESK_CLI_SERVER=off {' '.join(code)} {sys.executable}"
               f" -m tui_helpdesk --config {config} ssh authorized-keys %u %k %t")  # fmt: skip
    session_environment = " ".join([f"XDG_CACHE_HOME={folder / 'cache'}", *code])
    path = folder / "sshd_config"
    path.write_text(
        "\n".join([
            f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
            f"PidFile {folder / 'sshd.pid'}", "UsePAM no", "StrictModes no",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes", "AuthorizedKeysFile none",
            f"AuthorizedKeysCommand {command}", f"AuthorizedKeysCommandUser {os_login()}",
            "PermitRootLogin prohibit-password", f"SetEnv {session_environment}",
            "LogLevel VERBOSE", "",
        ])
    )  # fmt: skip
    return path


def _wait_for_banner(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"sshd exited {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as probe:
                if probe.recv(64).startswith(b"SSH-2.0"):
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"sshd did not answer on {port}:\n{log.read_text()}")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    assert SSHD.exists(), (
        "OpenSSH's sshd is missing: apt-get install openssh-server openssh-client (.ci/run does)"
    )
    folder = tmp_path_factory.mktemp("sshd")
    config, port = folder / "helpdesk.toml", _free_port()
    sshd_config = _sshd_config(folder, port, config)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    log = folder / "sshd.log"
    checked = subprocess.run([str(SSHD), "-t", "-f", str(sshd_config)], capture_output=True)
    assert checked.returncode == 0, checked.stderr.decode()
    with log.open("wb") as sink:
        process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(sshd_config)],
                                   stdout=sink, stderr=sink)  # fmt: skip
    try:
        _wait_for_banner(port, process, log)
        yield Sshd(port, config, log, folder / "cache")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


@pytest.fixture
def desk(sshd: Sshd, sqlite_template: Path, tmp_path: Path) -> Cli:
    """Acme (admin ada, agent bob) in this test's database, named by the sshd's config file.

    One backend only: who a key is and what it may run does not depend on the database, and
    every login costs a Python start-up for sshd's AuthorizedKeysCommand.
    """
    path = tmp_path / "helpdesk.sqlite3"
    shutil.copyfile(sqlite_template, path)
    db_url = f"sqlite:///{path}"
    sshd.config.write_text(f"[database]\nurl = {json.dumps(db_url)}\n")
    run = Cli(db_url, TUI_HELPDESK_CONFIG=str(sshd.config))
    run("org", "create", "Acme", "--timezone", "UTC", "--language", "en")
    run("user", "add", "ada@acme.test", "--name", "Ada Lovelace", "--role", "admin")
    run("user", "add", "bob@acme.test", "--name", "Bob Builder", "--role", "agent", *ADA)
    return run


def test_a_command_over_ssh_runs_as_the_keys_user(sshd: Sshd, desk: Cli, make_key: MakeKey) -> None:
    bob_key = make_key()
    desk("user", "add-key", "bob@acme.test", str(bob_key), *ADA)
    whoami = sshd.run(bob_key, "user", "whoami", "--json")
    assert whoami.returncode == 0, (whoami.stderr, sshd.log.read_text()[-3000:])
    assert json.loads(whoami.stdout)["email"] == "bob@acme.test"
    listed = sshd.run(bob_key, "conversation", "list", "--json")
    assert (listed.returncode, json.loads(listed.stdout)) == (0, [])


def test_as_smuggling_shell_characters_and_owner_commands_are_refused(
    sshd: Sshd, desk: Cli, make_key: MakeKey
) -> None:
    bob_key = make_key()
    desk("user", "add-key", "bob@acme.test", str(bob_key), *ADA)
    for command, said in [
        (("user", "whoami", "--as", "ada@acme.test"), "--as"),
        (("user whoami; id",), "';'"),
        (("db", "backup", "/tmp/stolen.sqlite3"), "'db' is not one of"),
    ]:
        refused = sshd.run(bob_key, *command)
        assert refused.returncode == 6, (command, refused.stdout, refused.stderr)
        assert said in refused.stderr and refused.stdout == ""


def test_a_removed_key_or_deactivated_user_is_refused_at_once(
    sshd: Sshd, desk: Cli, make_key: MakeKey
) -> None:
    bob_key = make_key()
    key_id = desk.json("user", "add-key", "bob@acme.test", str(bob_key), *ADA)["id"]
    assert sshd.run(bob_key, "user", "whoami").returncode == 0
    desk("user", "deactivate", "bob@acme.test", *ADA)
    refused = sshd.run(bob_key, "user", "whoami")
    assert refused.returncode == 255 and "Permission denied (publickey)" in refused.stderr
    desk("user", "activate", "bob@acme.test", *ADA)
    assert sshd.run(bob_key, "user", "whoami").returncode == 0
    desk("user", "remove-key", "bob@acme.test", str(key_id), *ADA)
    refused = sshd.run(bob_key, "user", "whoami")
    assert refused.returncode == 255 and "Permission denied (publickey)" in refused.stderr
    assert sshd.run(make_key(), "user", "whoami").returncode == 255  # a key nobody registered


def test_the_tui_comes_up_as_the_keys_user_with_ssh_settings(
    sshd: Sshd, desk: Cli, make_key: MakeKey, tmp_path: Path
) -> None:
    bob_key = make_key()
    key_id = desk.json("user", "add-key", "bob@acme.test", str(bob_key), *ADA)["id"]
    cached = start_cache.cache_file(sshd.cache / "tui-helpdesk",
                                    f"sqlite:///{tmp_path / 'helpdesk.sqlite3'}",
                                    ("ssh_key", str(key_id)))  # fmt: skip
    # The identity line shows the address at once and the name once the TUI has connected.
    screen = _tui_session(sshd.ssh(bob_key, tty=True), until=b"Bob Builder", then=cached.exists)
    assert b"Bob Builder" in screen and b"bob@acme.test" in screen
    assert b"\x1b[38;5;" in screen and b"\x1b[38;2;" not in screen  # 256 colours over SSH
    # The first session wrote the start-up cache for the key; the next one starts from it.
    again = _tui_session(sshd.ssh(bob_key, tty=True), until=b"Bob Builder")
    assert b"bob@acme.test" in again


def _tui_session(
    command: list[str], *, until: bytes, then: Callable[[], bool] = lambda: True
) -> bytes:
    """Run `ssh -tt` in a 120x36 pseudo-terminal; read until `until` shows and `then()` holds,
    then press q."""
    leader, follower = pty.openpty()
    ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
    env = dict(os.environ, TERM="xterm-256color")
    env.pop("COLORTERM", None)
    process = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower,
                               env=env, start_new_session=True)  # fmt: skip
    os.close(follower)
    seen = b""
    try:
        seen = _read_until(leader, until, seen)
        deadline = time.monotonic() + 30
        while not then():
            assert time.monotonic() < deadline, "the session never got to the expected state"
            if select.select([leader], [], [], 0.1)[0]:
                seen += os.read(leader, 65536)
        os.write(leader, b"q")
        # Keep reading, as a terminal does: the app's last frames must not fill the pty's buffer
        # and block ssh (and the app) before it can exit.
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.2)[0]:
                try:
                    seen += os.read(leader, 65536)
                except OSError:
                    break
        assert process.wait(timeout=5) == 0, seen[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
    return seen


def _read_until(fd: int, wanted: bytes, seen: bytes) -> bytes:
    deadline = time.monotonic() + 60
    while wanted not in seen:
        assert time.monotonic() < deadline, f"{wanted!r} never showed:\n{seen[-3000:]!r}"
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # the session ended
                raise AssertionError(f"{wanted!r} never showed:\n{seen[-3000:]!r}") from None
    return seen
