"""Shared pieces of the benchmarks: processes, a helpdesk to deliver to, load, tables.

Everything listens on and connects to 127.0.0.1 only, every run is bounded in count and time,
and every process started here is stopped here (by its own pid).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy import create_engine, text

from tui_helpdesk.config import load_settings
from tui_helpdesk.db.engine import Database, normalise_url

BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable
HOST = "127.0.0.1"
LISTENING = re.compile(r"listening on ([\d.]+):(\d+)")


@dataclass
class Server:
    """A server process we started, its port, and where its stderr goes."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def cpu_seconds(self) -> float:
        """User + system CPU time so far of the process and its live child processes (all
        threads; the worker stores mail in a child process), from /proc."""
        pids = [self.process.pid, *child_pids(self.process.pid)]
        return sum(process_cpu_seconds(pid) for pid in pids)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no cleanup, no flushing."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


def _copy_stream(stream: IO[bytes], log: IO[bytes], found: list[int], ready: threading.Event):
    for line in iter(stream.readline, b""):
        log.write(line)
        log.flush()
        match = LISTENING.search(line.decode("utf-8", "replace"))
        if match and not ready.is_set():
            found.append(int(match.group(2)))
            ready.set()
    ready.set()
    log.close()


def start_listening(
    name: str, argv: Sequence[str], env: dict[str, str], log_dir: Path, timeout: float = 60
) -> Server:
    """Start a process that prints "listening on HOST:PORT" to stderr; wait for that line."""
    log_path = log_dir / f"{name}.log"
    process = subprocess.Popen(
        list(argv), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    found: list[int] = []
    ready = threading.Event()
    assert process.stderr is not None
    log = open(log_path, "ab")  # noqa: SIM115 - closed by the copying thread
    threading.Thread(
        target=_copy_stream, args=(process.stderr, log, found, ready), daemon=True
    ).start()
    if not ready.wait(timeout) or not found:
        process.kill()
        process.wait(10)
        tail = log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{name} did not start listening:\n{tail}")
    return Server(name, process, found[0], log_path)


def process_cpu_seconds(pid: int) -> float:
    """CPU time is what a busy, shared machine does not distort much (unlike msg/s)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def postgres_cpu_seconds() -> float:
    """User + system CPU time so far of every PostgreSQL server process on this machine (the
    backends serving the worker, and the writers and checkpointer behind them), from /proc."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm == "postgres":
            total += process_cpu_seconds(int(entry.name))
    return total


def load_cpu_seconds() -> float:
    """CPU time of this process's finished child processes: the load generators, each run
    to its end by subprocess.run."""
    times = os.times()
    return times.children_user + times.children_system


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {HOST}:{port}")


# --- the helpdesk under test --------------------------------------------------------------------


def worker_env(db_url: str, synchronous: str = "FULL") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUI_HELPDESK_")}
    env.update(
        TUI_HELPDESK_DATABASE_URL=db_url,
        TUI_HELPDESK_DATABASE_SQLITE_SYNCHRONOUS=synchronous,
        TUI_HELPDESK_SMTP_HOST=HOST,
        TUI_HELPDESK_SMTP_PORT="0",
        TUI_HELPDESK_SMTP_HOSTNAME="mx.bench.test",
    )
    return env


def prepare_helpdesk(db_url: str) -> str:
    """A demo-like helpdesk, made through the services: returns the support mailbox's alias.

    One organisation and domain, an admin and three available agents, a "support" mailbox in a
    round-robin queue: so every message is threaded, routed and assigned as in production.
    """
    from tui_helpdesk.services import assignment, domains, mailboxes, organisations, queues, users

    settings = load_settings(environ=worker_env(db_url))
    db = Database.from_settings(settings)
    try:
        db.migrate()
        with db.write() as session:
            organisations.create(session, None, name="Bench Ltd", timezone="UTC", language="en")
            admin = users.add(session, None, email="ada@bench.test", name="Ada", role="admin")
            domains.add(session, admin, "bench.test")
            for name in ("bob", "cy", "di"):
                users.add(session, admin, email=f"{name}@bench.test", name=name.title())
            box = mailboxes.create(
                session, settings, admin, display_name="Support", local_part="support",
                domain="bench.test", verified=True,
            )  # fmt: skip
            queues.create(session, admin, name="Support")
            queues.add_mailbox(session, settings, admin, "Support", box.email_address)
            for name in ("bob", "cy", "di"):
                queues.add_member(session, admin, "Support", f"{name}@bench.test", "agent")
            assignment.set_assignment(session, admin, "Support", rule="round_robin")
        return box.alias
    finally:
        db.dispose()


def start_worker(
    db_url: str,
    log_dir: Path,
    name: str = "worker",
    synchronous: str = "FULL",
    **settings: str,
) -> Server:
    """The real `python -m tui_helpdesk worker` process on an ephemeral port.

    `settings` are more TUI_HELPDESK_* variables, e.g. TUI_HELPDESK_SMTP_MAX_SESSIONS="0".
    """
    argv = [PYTHON, "-m", "tui_helpdesk", "worker", "--smtp-host", HOST, "--smtp-port", "0"]
    return start_listening(name, argv, worker_env(db_url, synchronous) | settings, log_dir)


def start_baseline(kind: str, log_dir: Path) -> Server:
    return start_listening(
        kind, [PYTHON, str(BENCH / "baseline.py"), kind], dict(os.environ), log_dir
    )


def start_sink(log_dir: Path) -> Server | None:
    """Postfix's smtp-sink, when installed: the C reference point."""
    sink = shutil.which("smtp-sink") or (
        "/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None
    )
    if sink is None:
        return None
    port = free_port()
    argv = [sink, *(["-u", "nobody"] if os.geteuid() == 0 else []), f"{HOST}:{port}", "512"]
    log_path = log_dir / "smtp-sink.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    wait_for_port(port)
    return Server("smtp-sink", process, port, log_path)


def smtp_source_path() -> str | None:
    found = shutil.which("smtp-source")
    if found is None and Path("/usr/sbin/smtp-source").exists():
        found = "/usr/sbin/smtp-source"
    return found


# --- load -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """What one load run achieved."""

    acked: int
    seconds: float
    failed: int
    detail: str = ""

    @property
    def rate(self) -> float:
        return self.acked / self.seconds if self.seconds else 0.0


def smtp_source_load(
    port: int, *, sessions: int, messages: int, size: int, rcpt: str, timeout: float
) -> Load:
    """Postfix's C load generator: a new connection per message, unique Message-Id each."""
    argv = [
        smtp_source_path() or "smtp-source", "-s", str(sessions), "-m", str(messages),
        "-l", str(size), "-f", "customer@customers.test", "-t", rcpt, "-M", "loadgen.test",
        "-S", "Order problem", f"{HOST}:{port}",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip()[-300:]
        return Load(0, seconds, messages, detail)
    return Load(messages, seconds, 0)


def python_load(
    port: int, *, sessions: int, messages: int, size: int, rcpt: str, timeout: float, run: str
) -> Load:
    """bench/loadgen.py in its own process (realistic, unique messages)."""
    argv = [
        PYTHON, str(BENCH / "loadgen.py"), "--port", str(port), "--rcpt", rcpt,
        "--sessions", str(sessions), "--messages", str(messages), "--size", str(size),
        "--seconds", str(timeout), "--run", run,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, timeout=timeout + 30, check=False)
    if done.returncode != 0:
        return Load(0, 0.0, messages, done.stderr.decode(errors="replace")[-300:])
    summary = json.loads(done.stdout)
    return Load(
        int(summary["acked"]), float(summary["seconds"]), int(summary["failed"]),
        json.dumps(summary["codes"]) if summary["failed"] else "",
    )  # fmt: skip


# --- output ---------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table, numbers right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [all(_is_number(r[i]) for r in rows) if rows else False for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(list(headers)), rule, *(line(r) for r in cells)])


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 10 else f"{value:,.0f}"
    return str(value)


def _is_number(value: object) -> bool:
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and (value in {"-", ""} or value.replace(".", "", 1).isdigit())


@contextlib.contextmanager
def pg_schema(url: str) -> Iterator[str]:
    """A fresh schema on the given server, dropped afterwards."""
    base = normalise_url(url)
    schema = f"hd_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def on_each_backend(run: Callable[[str], None], *, pg: str | None, prefix: str) -> None:
    """Run on a temporary SQLite file, then (when a URL is given) on a fresh PostgreSQL schema."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        run(f"sqlite:///{Path(tmp) / 'helpdesk.sqlite3'}")
    if pg:
        with pg_schema(pg) as url:
            run(url)
