"""The per-user command server behind `tui-helpdesk` (see `tui_helpdesk.launch`).

    python -m tui_helpdesk.warm SOCKET        serve (started by the launcher)
    python -m tui_helpdesk.warm --stop SOCKET stop the server on SOCKET

One process per user, Python, installed package and PYTHONPATH. It binds its socket first
(clients that come while it loads wait in the backlog), holds a lock beside it (so a second
server exits at once), then imports the CLI, every service, both database drivers and the
mapped models, and waits. For each command line it forks: the child takes the client's
standard streams, environment, working directory and umask and runs the click command; the
parent reports the child's pid (for Ctrl-C) and then its exit status. Only the user who runs
the server may connect (SO_PEERCRED). Nothing is read from the database or the config
before a fork, so every command sees the files as they are when it runs.

It exits after `launch.IDLE_SECONDS` without a command, and as soon as a file of the installed
package or of site-packages changes (the client is told to run the command itself).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from tui_helpdesk.code_state import CodeState, code_state
from tui_helpdesk.launch import FORWARDED_SIGNALS, HEADER, IDLE_SECONDS

MAX_REQUEST = 8 * 1024 * 1024
PRELOAD = (
    "tui_helpdesk.services",
    "tui_helpdesk.db",
    "tui_helpdesk.mail",
    "tui_helpdesk.cli",
)


def preload() -> None:
    """Import what commands import, and configure the mappers, so a child starts warm."""
    import importlib
    import pkgutil

    for name in PRELOAD:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, f"{name}."):
            if ".migrations" in info.name:
                continue
            with contextlib.suppress(Exception):
                importlib.import_module(info.name)
    for driver in ("sqlite3", "psycopg", "sqlalchemy.dialects.sqlite.pysqlite",
                   "sqlalchemy.dialects.postgresql.psycopg"):  # fmt: skip
        with contextlib.suppress(Exception):
            importlib.import_module(driver)
    from sqlalchemy.orm import configure_mappers

    configure_mappers()
    warm_statements()


def warm_statements() -> None:
    """Compile one statement of each kind per table for both dialects, without a database.

    SQLAlchemy builds its cache-key and compiler dispatchers per construct on first use
    (~0.1 s in a command); done here, every child inherits them.
    """
    from sqlalchemy import delete, func, insert, select, text, update
    from sqlalchemy.dialects import postgresql, sqlite

    from tui_helpdesk.db.models import Base

    statements: list[Any] = [text("SELECT 1")]
    for mapper in Base.registry.mappers:
        model, table = mapper.class_, mapper.local_table
        key = next(iter(table.primary_key.columns))
        statements += [
            select(model).where(key == 1).order_by(key.desc()).limit(10).offset(1),
            select(func.count()).select_from(table).where(key.in_([1, 2])),
            insert(table).values({key.name: 1}),
            update(table).where(key == 1).values({key.name: 2}),
            delete(table).where(key == 1),
        ]
    for statement in statements:
        with contextlib.suppress(Exception):
            statement._generate_cache_key()
            for dialect in (sqlite.dialect(), postgresql.dialect()):
                statement.compile(dialect=dialect)


@dataclass
class Running:
    conn: socket.socket
    pid: int
    pidfd: int


@dataclass
class Server:
    path: str
    bound: Bound
    code: CodeState  # as it was when the server started
    selector: selectors.DefaultSelector = field(default_factory=selectors.DefaultSelector)
    running: dict[int, Running] = field(default_factory=dict)
    last_work: float = field(default_factory=time.monotonic)
    stopping: bool = False
    served: int = 0

    @property
    def listener(self) -> socket.socket:
        return self.bound.listener

    def stale(self) -> bool:
        return code_state() != self.code

    def serve(self) -> None:
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        while not self.stopping or self.running:
            idle = not self.running and time.monotonic() - self.last_work > IDLE_SECONDS
            if idle:
                break
            for key, _events in self.selector.select(timeout=30):
                if key.data == "accept":
                    self.accept()
                else:
                    self.finished(key.data)
        self.close_listener()

    def close_listener(self) -> None:
        """Take no more work: the socket file goes (unless a newer server's is there by now),
        and the lock is released, so a new server can start while our children finish."""
        if self.stopping:
            return
        self.stopping = True
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.listener)
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self.bound.inode:
                os.unlink(self.path)
        self.listener.close()
        os.close(self.bound.lock)

    def accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        self.last_work = time.monotonic()
        conn.setblocking(True)
        conn.settimeout(5)
        try:
            self.handle(conn)
        except Exception:
            traceback.print_exc()
            conn.close()

    def handle(self, conn: socket.socket) -> None:
        credentials = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", credentials)
        if uid != os.getuid():
            conn.close()
            return
        body, fds = receive(conn)
        if body is None:
            for fd in fds:
                os.close(fd)
            conn.close()
            return
        message = json.loads(body.decode("utf-8", "surrogateescape"))
        if message.get("stop"):
            for fd in fds:
                os.close(fd)
            reply(conn, {"stopped": True, "served": self.served})
            conn.close()
            self.close_listener()
            return
        if len(fds) != 3 or self.stale():
            for fd in fds:
                os.close(fd)
            if len(fds) == 3:  # the installed code changed: stop taking work
                self.close_listener()
            reply(conn, {"stale": True})
            conn.close()
            return
        # Signals the client forwards stay pending (not ignored, as in the server) until the
        # child has set its own handlers.
        signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
        pid = os.fork()
        if pid == 0:  # the child never returns
            self.forget_all()
            run_child(conn, fds, message)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
        self.served += 1
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(pid)
        running = Running(conn, pid, pidfd)
        self.running[pidfd] = running
        reply(conn, {"pid": pid})
        conn.settimeout(None)
        self.selector.register(pidfd, selectors.EVENT_READ, running)
        self.selector.register(conn, selectors.EVENT_READ, running)

    def forget_all(self) -> None:
        """In a child: close the server's sockets, so only the server holds them."""
        for running in self.running.values():
            running.conn.close()
            os.close(running.pidfd)
        self.selector.close()
        self.listener.close()
        if not self.stopping:
            os.close(self.bound.lock)

    def finished(self, running: Running) -> None:
        """The child exited, or its client went away (then the child is told to stop)."""
        if running.pidfd not in self.running:
            return
        reaped, status = os.waitpid(running.pid, os.WNOHANG)
        if reaped == 0:  # the client hung up first
            with contextlib.suppress(ProcessLookupError):
                os.kill(running.pid, signal.SIGTERM)
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(running.conn)
            return
        for source in (running.pidfd, running.conn):
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(source)
        self.running.pop(running.pidfd, None)
        os.close(running.pidfd)
        with contextlib.suppress(OSError):
            reply(running.conn, {"status": os.waitstatus_to_exitcode(status) % 256})
        running.conn.close()
        self.last_work = time.monotonic()


def receive(conn: socket.socket) -> tuple[bytes | None, list[int]]:
    try:
        data, fds, _flags, _address = socket.recv_fds(conn, 65536, 3)
    except OSError:
        return None, []
    buffer = bytearray(data)
    while len(buffer) < HEADER.size:
        chunk = conn.recv(65536)
        if not chunk:
            return None, fds
        buffer += chunk
    (size,) = HEADER.unpack_from(buffer)
    if size > MAX_REQUEST:
        return None, fds
    while len(buffer) < HEADER.size + size:
        chunk = conn.recv(65536)
        if not chunk:
            return None, fds
        buffer += chunk
    return bytes(buffer[HEADER.size : HEADER.size + size]), fds


def reply(conn: socket.socket, message: dict[str, object]) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def text_stream(fd: int, mode: str, errors: str, *, line_buffered: bool) -> Any:
    """A text stream on one of the client's descriptors, as Python sets up its own."""
    buffering = 1 if line_buffered else -1
    return open(fd, mode, buffering, "utf-8", errors, closefd=False)


def run_child(conn: socket.socket, fds: list[int], message: dict[str, object]) -> None:
    """In the forked child: become the client's command, run it, exit with its status."""
    status = 1
    try:
        conn.close()
        for number in FORWARDED_SIGNALS:
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin = text_stream(0, "r", "surrogateescape", line_buffered=False)
        sys.stdout = text_stream(1, "w", "strict", line_buffered=os.isatty(1))
        sys.stderr = text_stream(2, "w", "backslashreplace", line_buffered=True)
        os.environ.clear()
        os.environ.update(message["env"])  # type: ignore[arg-type]
        time.tzset()
        os.chdir(str(message["cwd"]))
        os.umask(int(message["umask"]))  # type: ignore[call-overload]
        import random

        random.seed()
        argv = [str(word) for word in message["argv"]]  # type: ignore[attr-defined]
        sys.argv = ["tui-helpdesk", *argv]
        from tui_helpdesk.cli import cli

        try:
            # Ctrl-C from now on: the client's streams are in place to say "Aborted!".
            signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
            cli.main(args=argv, prog_name="tui-helpdesk", standalone_mode=True)
            status = 0
        except SystemExit as done:
            status = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
            if isinstance(done.code, str):
                print(done.code, file=sys.stderr)
        except KeyboardInterrupt:  # before click took over: as click would say it
            print("Aborted!", file=sys.stderr)
            status = 130
        except BaseException:
            traceback.print_exc()
            status = 1
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            import atexit

            atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                stream.flush()
        os._exit(status)


def stop(path: str) -> int | None:
    """Ask the server on `path` to stop: how many commands it ran, or None when none answers."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        body = json.dumps({"stop": True}).encode()
        socket.send_fds(conn, [HEADER.pack(len(body)) + body], [])
        answer = json.loads(conn.recv(4096) or b"{}")
    except (OSError, ValueError):
        return None
    else:
        return int(answer["served"]) if "served" in answer else None
    finally:
        conn.close()


@dataclass(frozen=True)
class Bound:
    listener: socket.socket
    lock: int  # the descriptor holding the lock beside the socket, while we take work
    inode: int  # of our socket file: a newer server's file at the same path is not ours


def bind(path: str) -> Bound | None:
    """Listen on `path`, or None when another server holds it."""
    lock = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        return None
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)
    try:
        listener.bind(path)
    finally:
        os.umask(old)
    listener.listen(128)
    return Bound(listener, lock, os.stat(path).st_ino)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--stop":
        served = stop(argv[1])
        if served is None:
            print(f"no command server on {argv[1]}", file=sys.stderr)
            return 1
        print(f"stopped after {served} commands")
        return 0
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    path = argv[0]
    bound = bind(path)
    if bound is None:
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    server = Server(path, bound, code_state())
    try:
        preload()
        gc.collect()
        gc.freeze()  # children then do not copy every page the collector touches
        server.serve()
    finally:
        server.close_listener()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
