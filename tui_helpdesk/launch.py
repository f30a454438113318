"""The `tui-helpdesk` command: run a CLI command in a warm process when one is up (F81).

Importing the CLI (click, SQLAlchemy, the models, the services) costs most of a command's
time, and an admin's scripts call the CLI hundreds of times. So, as Mercurial's `chg` does,
a command line is handed to a per-user command server (`tui_helpdesk.warm`) that has
everything imported: it forks a child that runs the command with this process's arguments,
environment, working directory, umask and standard streams (passed as file descriptors), and
this process exits with the child's status. Signals (Ctrl-C) are forwarded to the child.

When no server is up, the command runs here as usual and a server is started in the
background for the next one; it exits after `IDLE_SECONDS` without work, or as soon as the
installed code changes. The TUI, the worker, `ssh-session`, `init` and `db` always run here.
`TUI_HELPDESK_CLI_SERVER=off` turns the server off.

This module imports the standard library only, and little of it: it is all a warm command
loads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import struct
import sys

SWITCH = "TUI_HELPDESK_CLI_SERVER"
IDLE_SECONDS = 900
# Subcommands that always run in this process: the TUI and the worker are long-lived and own
# the terminal or signals; ssh-session starts the TUI; init and db migrate or copy databases.
IN_PROCESS = frozenset({"worker", "ssh-session", "init", "db"})
ROOT_OPTIONS_WITH_VALUE = frozenset({"--config", "--as"})
HEADER = struct.Struct("!I")
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def package_dir() -> str:
    return os.path.dirname(os.path.abspath(__file__))


def socket_path() -> str | None:
    """This user's socket for this Python, this installed package and this PYTHONPATH.

    In $XDG_RUNTIME_DIR when set, else /tmp/tui-helpdesk-UID; None when that folder is not
    private to this user (then no server is used).
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = (
        os.path.join(runtime, "tui-helpdesk")
        if runtime
        else os.path.join("/tmp", f"tui-helpdesk-{os.getuid()}")
    )
    try:
        os.makedirs(base, mode=0o700, exist_ok=True)
        status = os.lstat(base)
    except OSError:
        return None
    if status.st_uid != os.getuid() or status.st_mode & 0o077 or not os.path.isdir(base):
        return None
    key = "\0".join((sys.executable, package_dir(), os.environ.get("PYTHONPATH", "")))
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return os.path.join(base, f"cli-{digest}.sock")


def subcommand(argv: list[str]) -> str | None:
    """The first word that is not a root option or an option's value."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in ROOT_OPTIONS_WITH_VALUE:
            skip = True
        elif word == "--":
            return None
        elif not word.startswith("-"):
            return word
    return None


def wants_server(argv: list[str]) -> bool:
    if os.environ.get(SWITCH, "on").strip().lower() in {"off", "0", "no", "false"}:
        return False
    command = subcommand(argv)
    if command is None:  # the TUI, unless only help or the version is asked for
        return any(word in {"--help", "-h", "--version"} for word in argv)
    return command not in IN_PROCESS


def request(argv: list[str]) -> bytes:
    umask = os.umask(0)
    os.umask(umask)
    body = json.dumps(
        {"argv": argv, "env": dict(os.environ), "cwd": os.getcwd(), "umask": umask},
        ensure_ascii=False,
    ).encode("utf-8", "surrogateescape")
    return HEADER.pack(len(body)) + body


def read_line(conn: socket.socket, pending: bytearray) -> dict[str, object] | None:
    while b"\n" not in pending:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        pending += chunk
    line, _, rest = bytes(pending).partition(b"\n")
    pending[:] = rest
    return json.loads(line)


def run_on_server(path: str, argv: list[str]) -> int | None:
    """The command's exit status from the server, or None when it must run here."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        socket.send_fds(conn, [request(argv)], [0, 1, 2])
    except OSError:
        conn.close()
        return None
    pending = bytearray()
    child: int | None = None
    early: list[int] = []  # signals that came before the child's pid

    def forward(signum: int, _frame: object) -> None:
        if child is None:
            early.append(signum)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    previous = {number: signal.signal(number, forward) for number in FORWARDED_SIGNALS}
    status: int | None = None
    try:
        while True:
            try:
                message = read_line(conn, pending)
            except InterruptedError:
                continue
            except OSError:
                message = None
            if message is None:  # the server went away
                status = None if child is None else 1
                break
            if "pid" in message:
                child = int(message["pid"])  # type: ignore[call-overload]
                for signum in early:
                    forward(signum, None)
                early.clear()
            elif "stale" in message:
                break
            elif "status" in message:
                status = int(message["status"])  # type: ignore[call-overload]
                break
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        conn.close()
    for signum in early:  # the command runs here after all: it gets them itself
        signal.raise_signal(signum)
    return status


def start_server(path: str) -> None:
    """Start a command server in the background (its own session, no terminal)."""
    import subprocess

    with contextlib.suppress(OSError):
        subprocess.Popen(
            [sys.executable, "-m", "tui_helpdesk.warm", path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )


def main() -> None:
    argv = sys.argv[1:]
    path = socket_path() if wants_server(argv) else None
    if path is not None:
        status = run_on_server(path, argv)
        if status is not None:
            sys.stdout.flush()
            raise SystemExit(status)
        start_server(path)
    from tui_helpdesk.cli import main as cli_main

    cli_main()
