"""The warm command server behind `tui-helpdesk` (tui_helpdesk.launch and tui_helpdesk.warm).

Real processes: the launcher as an admin's script runs it, the server it starts in the
background, a demo database on SQLite. A command run by the server must be indistinguishable
from one run in-process: output, exit status, standard input, working directory, signals.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui_helpdesk import launch, warm
from tui_helpdesk.code_state import code_fingerprint

CLI = [sys.executable, "-m", "tui_helpdesk"]
AS = ["--as", "ada@acme.test"]


def _socket_path(env: dict[str, str]) -> Path:
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        path = launch.socket_path()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert path is not None
    return Path(path)


def _wait_for_server(path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.exists():
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(str(path))
                except OSError:
                    pass
                else:
                    return
        time.sleep(0.05)
    raise AssertionError(f"no command server came up on {path}")


def _server_pids(path: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                words = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"tui_helpdesk.warm" in words and str(path).encode() in words:
                pids.append(int(entry.name))
    return pids


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(word) for word in text.split()]


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    folder = tmp_path_factory.mktemp("warm")
    runtime = folder / "runtime"
    runtime.mkdir(mode=0o700)
    env = dict(os.environ)
    env.update({
        "TUI_HELPDESK_DATABASE_URL": f"sqlite:///{folder / 'helpdesk.sqlite3'}",
        "XDG_RUNTIME_DIR": str(runtime), "TUI_HELPDESK_CLI_SERVER": "on",
    })  # fmt: skip
    env.pop("TUI_HELPDESK_CONFIG", None)
    subprocess.run([*CLI, "init", "--demo"], env=env, check=True, capture_output=True)
    path = _socket_path(env)
    yield env, path
    warm.stop(str(path))
    for pid in _server_pids(path):  # whatever a failed test left running
        os.kill(pid, signal.SIGTERM)


def _run(env: dict[str, str], *argv: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *argv], env=env, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload, no-any-return]


def test_a_command_runs_the_same_in_the_server_as_in_process(
    desk: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, path = desk
    cold_env = dict(env, TUI_HELPDESK_CLI_SERVER="off")
    (tmp_path / "relative.toml").write_text(
        f'[database]\nurl = "{env["TUI_HELPDESK_DATABASE_URL"]}"\n'
    )
    commands = [
        ["conversation", "list", "--json", *AS],
        ["conversation", "show", "99999", *AS],  # not found: exit 3 and a message on stderr
        ["--config", "relative.toml", "mailbox", "list", *AS],  # the client's working folder
        ["mailbox", "create", "--display-name", "x", *AS],  # a usage error: exit 2
        ["--help"],
    ]
    cold = [_run(cold_env, *argv, cwd=tmp_path) for argv in commands]
    assert not path.exists()  # off means off: no server started

    _run(env, "mailbox", "list", *AS)  # runs here, starts the server
    _wait_for_server(path)
    assert len(_server_pids(path)) == 1
    hot = [_run(env, *argv, cwd=tmp_path) for argv in commands]
    for argv, one, other in zip(commands, cold, hot, strict=True):
        assert (other.returncode, other.stdout, other.stderr) == (
            one.returncode, one.stdout, one.stderr), argv  # fmt: skip
    assert [done.returncode for done in hot] == [0, 3, 0, 2, 0]
    assert "conversation 99999 not found" in hot[1].stderr

    key = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                          str(tmp_path / "id")], check=False)  # fmt: skip
    if key.returncode == 0:  # the public key comes through the server on standard input
        public = (tmp_path / "id.pub").read_text()
        added = _run(env, "user", "add-key", "ada@acme.test", "-", "--json", *AS, input=public)
        assert added.returncode == 0, added.stderr
        listed = _run(env, "user", "keys", "ada@acme.test", *AS)
        assert public.split()[1][:20] in listed.stdout or "ed25519" in listed.stdout.lower()
    served = warm.stop(str(path))
    assert served is not None and served >= len(commands)
    deadline = time.monotonic() + 10
    while _server_pids(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _server_pids(path) and not path.exists()


def test_ctrl_c_and_a_dead_client_reach_the_command(desk: tuple[dict[str, str], Path]) -> None:
    env, path = desk
    _run(env, "mailbox", "list", *AS)
    _wait_for_server(path)
    (server,) = _server_pids(path)

    def blocked() -> subprocess.Popen[str]:
        """A command that waits on standard input, which the test keeps open."""
        process = subprocess.Popen(
            [*CLI, "user", "add-key", "ada@acme.test", "-", *AS], env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while not _children(server) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _children(server), "the server did not fork the command"
        return process

    process = blocked()
    process.send_signal(signal.SIGINT)  # Ctrl-C at the client
    _, err = process.communicate(timeout=20)
    assert process.returncode not in (0, None)
    assert "Aborted" in err or "KeyboardInterrupt" in err, (process.returncode, err)
    assert not _children(server)

    process = blocked()
    (child,) = _children(server)
    process.kill()  # the client dies: its command must not run on alone
    process.wait()
    deadline = time.monotonic() + 20
    while _children(server) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert child not in _children(server)
    process.stdin.close()  # type: ignore[union-attr]


def test_the_server_notices_changed_code(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    module = tmp_path / "pkg" / "a.py"
    module.write_text("x = 1\n")
    before = code_fingerprint([str(tmp_path)])
    assert code_fingerprint([str(tmp_path)]) == before
    module.write_text("x = 22\n")
    assert code_fingerprint([str(tmp_path)]) != before
    after = code_fingerprint([str(tmp_path)])
    (tmp_path / "pkg" / "b.py").write_text("")
    assert code_fingerprint([str(tmp_path)]) != after
    added = code_fingerprint([str(tmp_path)])
    (tmp_path / "pkg" / "__pycache__").mkdir()  # Python's first import of the package
    (tmp_path / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"")
    assert code_fingerprint([str(tmp_path)]) == added
    (tmp_path / "pkg" / "b.py").unlink()
    assert code_fingerprint([str(tmp_path)]) == after


def test_which_command_lines_go_to_the_server() -> None:
    assert launch.subcommand(["--as", "worker", "conversation", "list"]) == "conversation"
    assert launch.subcommand(["--config", "x.toml", "--json"]) is None
    assert launch.subcommand([]) is None
    saved = os.environ.get(launch.SWITCH)
    try:
        os.environ[launch.SWITCH] = "on"
        assert launch.wants_server(["mailbox", "list"])
        assert not launch.wants_server([])  # the TUI
        assert not launch.wants_server(["--no-worker"])
        assert launch.wants_server(["--help"])  # help and the version start no TUI
        assert not launch.wants_server(["worker"])
        assert not launch.wants_server(["ssh-session", "--key-id", "1"])
        assert not launch.wants_server(["db", "upgrade"])
        os.environ[launch.SWITCH] = "off"
        assert not launch.wants_server(["mailbox", "list"])
    finally:
        if saved is None:
            os.environ.pop(launch.SWITCH, None)
        else:
            os.environ[launch.SWITCH] = saved


def test_a_shared_runtime_folder_is_not_used(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    (shared / "tui-helpdesk").mkdir(parents=True)
    (shared / "tui-helpdesk").chmod(0o777)
    saved = os.environ.get("XDG_RUNTIME_DIR")
    try:
        os.environ["XDG_RUNTIME_DIR"] = str(shared)
        assert launch.socket_path() is None
    finally:
        if saved is None:
            os.environ.pop("XDG_RUNTIME_DIR", None)
        else:
            os.environ["XDG_RUNTIME_DIR"] = saved


def test_the_launcher_loads_only_the_standard_library() -> None:
    code = "import sys, tui_helpdesk.launch; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()  # fmt: skip
    heavy = {"click", "sqlalchemy", "textual", "alembic", "aiosmtpd", "tui_helpdesk.cli"}
    assert not heavy & set(loaded)


def test_a_stopping_server_leaves_a_newer_servers_socket_alone(tmp_path: Path) -> None:
    """A server that saw changed code stops taking work while its children finish; a new
    server may bind the same path meanwhile, and must keep its socket and get the lock."""
    path = str(tmp_path / "cli.sock")
    old = warm.bind(path)
    assert old is not None
    assert warm.bind(path) is None  # the lock: one server per path
    server = warm.Server(path, old, (code_fingerprint([str(tmp_path)]), 0))
    os.unlink(path)  # as a newer server does before it binds
    with socket.socket(socket.AF_UNIX) as newer:
        newer.bind(path)
        server.close_listener()  # the old one stops: the newer socket stays
        assert Path(path).exists()
        server.close_listener()  # twice is fine
        again = warm.bind(path)  # and the lock is free again
        assert again is not None
        again.listener.close()
        os.close(again.lock)
