"""Bytes the TUI writes to a real terminal (issue 11, point 3): what an agent over a slow SSH
link pays for idling, a page down and a live update.

    python bench/tui_bytes.py [--url DATABASE_URL] [--as EMAIL] [--idle SECONDS]

Starts `tui-helpdesk --no-worker` in a pseudo-terminal of 120x36 (TERM=xterm-256color, with
SSH_CONNECTION set so the SSH settings of [tui] apply, as for an agent's `ssh-session`), on
a demo database made for the run unless --url is given, and counts the bytes it writes:

  first frame     from start until the screen has been quiet for a second
  idle            over --idle seconds with nothing happening (the change poll keeps running)
  page down       one PageDown key, until quiet
  live update     another process tags the conversation under the cursor (a real change the
                  TUI is told of), until quiet: one row and the counts, not the whole screen

Prints a table; "share of a full frame" compares each figure with the first frame.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

COLUMNS, LINES = 120, 36
QUIET = 1.0  # seconds without output that mean "drawn"
ADMIN = "ada@acme.test"
CLI = [sys.executable, "-m", "tui_helpdesk"]


class Terminal:
    """The TUI in a pseudo-terminal; reads everything it writes, counting bytes."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the TUI, with the pty as its terminal
            os.execvpe(argv[0], argv, env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
        self.total = 0

    def read_until_quiet(
        self, quiet: float = QUIET, limit: float = 60, *, first_byte: bool = False
    ) -> int:
        """Bytes written until `quiet` seconds pass without any (after the first byte, with
        `first_byte`); returns their count."""
        counted, started, last = 0, time.monotonic(), time.monotonic()
        self.last_output = b""
        while time.monotonic() - last < quiet or (first_byte and not counted):
            if time.monotonic() - started > limit:
                raise RuntimeError("the TUI never went quiet")
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    break
                counted += len(chunk)
                self.last_output += chunk
                last = time.monotonic()
        self.total += counted
        return counted

    def read_for(self, seconds: float) -> int:
        counted, deadline = 0, time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.05))
            if ready:
                counted += len(os.read(self.fd, 65536))
        self.total += counted
        return counted

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.send(b"q")
            self.read_for(1.0)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        os.waitpid(self.pid, 0)


def cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run([*CLI, *args], env=env, check=True, capture_output=True, text=True).stdout


def newest_open_conversation(env: dict[str, str], actor: str) -> str:
    import json

    rows = json.loads(cli(env, "conversation", "list", "--json", "--as", actor))
    items = rows["conversations"] if isinstance(rows, dict) else rows
    return str(items[0]["id"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="database URL (default: a demo database made for the run)")
    parser.add_argument("--as", dest="actor", default=ADMIN)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idling measured")
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="hd-tui-bytes-"))
    env = {
        **os.environ,
        "TUI_HELPDESK_DATABASE_URL": args.url or f"sqlite:///{scratch / 'demo.sqlite3'}",
        "TUI_HELPDESK_TUI_KEYMAP_PATH": str(scratch / "no-keymap.toml"),
        "TERM": "xterm-256color",
        "COLUMNS": str(COLUMNS),
        "LINES": str(LINES),
        "SSH_CONNECTION": "192.0.2.1 50000 192.0.2.2 22",
    }
    if not args.url:
        cli(env, "init", "--demo")
    conversation = newest_open_conversation(env, args.actor)

    app = os.environ.get("TUI_BYTES_APP")  # a wrapper script, for tracing what repaints
    command = [sys.executable, app] if app else CLI
    terminal = Terminal([*command, "--no-worker", "--as", args.actor], env)
    try:
        first = terminal.read_until_quiet(first_byte=True)
        idle = terminal.read_for(args.idle)
        terminal.send(b"\x1b[6~")  # PageDown
        page_down = terminal.read_until_quiet(0.5)
        terminal.send(b"\x1b[5~")  # PageUp: back to the top, where the tagged row is
        terminal.read_until_quiet(0.5)
        if os.environ.get("TUI_BYTES_MARK"):
            Path(os.environ["TUI_BYTES_MARK"]).touch()
        cli(env, "conversation", "tag", conversation, "bench-live", "--as", args.actor)
        live = terminal.read_until_quiet(0.5, first_byte=True)
        if os.environ.get("TUI_BYTES_DEBUG"):
            sys.stderr.write(repr(terminal.last_output) + "\n")
    finally:
        terminal.close()

    rows = [
        ("first frame", first, ""),
        (f"idle, {args.idle:g} s", idle, f"{idle / args.idle:,.0f} B/s"),
        ("page down", page_down, ""),
        ("live update (a tag added elsewhere)", live, ""),
    ]
    print(f"TUI in a {COLUMNS}x{LINES} pseudo-terminal, TERM=xterm-256color, SSH settings")
    print(f"{'what':<38} {'bytes':>9} {'share of a full frame':>22}  note")
    print(f"{'-' * 38} {'-' * 9} {'-' * 22}  ----")
    for name, count, note in rows:
        share = f"{count / first:.1%}" if first else "-"
        print(f"{name:<38} {count:>9,} {share:>22}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
