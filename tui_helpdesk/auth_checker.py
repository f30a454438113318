"""The inbound auth checker (F75): every worker checks SPF, DKIM and DMARC of the mail it and
the others stored, after the commit, off ingest's hot path.

`inbound_auth.concurrency` threads each claim a few due checks (services.inbound_auth.jobs,
under a lease), run them one after the other outside any transaction (every DNS lookup bounded
by `dns.timeout_seconds`), and store the results in one short transaction. Stopping never waits
for the DNS: checks claimed but not run are given back, one running is left to its lease.

`tui-helpdesk worker` runs the threads in a process of their own at the lowest CPU priority
(nice 19): a check costs about as much CPU as storing the mail, and in the SMTP process's
threads it took the GIL from the sessions (bench/ingest.py: half the messages per second).
At nice 19 the checks get the CPU ingest leaves. The TUI's embedded worker runs them as threads.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import pickle
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.records import MessageAuthRecord
from tui_helpdesk.services.inbound_auth import jobs
from tui_helpdesk.services.inbound_auth.message import check_message

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
CLAIM_BATCH = 8  # checks one thread claims at once: a short claim, a short write
LOWEST_PRIORITY = 19


def utc_now() -> datetime:
    return datetime.now(UTC)


def client_address(peer_ip: str) -> str:
    """The address SPF is asked about: an IPv4 client seen on an IPv6 socket as its IPv4."""
    try:
        address = ipaddress.ip_address(peer_ip)
    except ValueError:
        return peer_ip
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def check(job: jobs.AuthJob, settings: Settings) -> MessageAuthRecord:
    return check_message(job.raw, client_address(job.peer_ip), job.helo, job.mail_from, settings)


class AuthChecker:
    """Checks due messages until stopped; `start`/`stop` run it in threads of its own."""

    def __init__(self, settings: Settings, *, name: str, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.claimer = f"{name}/auth/{secrets.token_hex(3)}"
        self.clock = clock
        self.db: Database | None = None
        self.checked = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._known = jobs.KnownSenders()
        self._lock = threading.Lock()

    def start(self) -> None:
        count = self.settings.inbound_auth.concurrency
        if count < 1 or self._threads:
            return  # this worker checks nothing; another one does
        db = self.settings.database
        # like the outbox sender's: a lost result is only checked again, never lost
        self.db = Database(db.url, busy_timeout_ms=db.busy_timeout_ms, synchronous="NORMAL")
        self._stop.clear()
        for number in range(count):
            thread = threading.Thread(target=self._run, name=f"auth-checker-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float) -> None:
        """Stop claiming, give back what was not run; wait at most `timeout` for the threads."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        alive = any(thread.is_alive() for thread in self._threads)
        self._threads = []
        if self.db is not None and not alive:
            self.db.dispose()  # a thread still waiting on the DNS keeps the engine it uses

    def _run(self) -> None:
        poll = self.settings.inbound_auth.poll_interval_seconds
        while not self._stop.is_set():
            try:
                done = self.run_once()
            except Exception:
                log.exception("inbound auth check failed; trying again")
                done = 0
            if not done:
                self._stop.wait(poll)

    def _database(self) -> Database:
        if self.db is None:  # run_once() without start(): the tests drive it themselves
            self.db = Database.from_settings(self.settings)
        return self.db

    def run_once(self) -> int:
        """Claim, check and record one batch; returns how many were checked."""
        db = self._database()
        now = self.clock()
        with db.read() as session:
            if not jobs.any_due(session, now):
                return 0
        with db.write() as session:
            claimed = jobs.claim(session, claimer=self.claimer, now=now, limit=CLAIM_BATCH)
        results: dict[int, tuple[jobs.AuthJob, MessageAuthRecord]] = {}
        for job in claimed:
            if self._stop.is_set():
                break
            results[job.message_id] = (job, check(job, self.settings))
        left = [job.message_id for job in claimed if job.message_id not in results]
        with db.write() as session:
            with self._lock:  # KnownSenders is shared by this worker's threads
                jobs.record(
                    session, self.settings, results, known=self._known,
                    claimer=self.claimer, now=self.clock(),
                )  # fmt: skip
            jobs.release(session, claimer=self.claimer, ids=left)
        self.checked += len(results)
        return len(results)


class CheckerProcess:
    """The checker's threads in a child process at nice 19 (`tui-helpdesk worker`).

    `python -m tui_helpdesk.auth_checker NAME` reads the settings (pickled) from its stdin and
    checks until its stdin ends: when this worker stops it, or when the worker dies."""

    def __init__(self, settings: Settings, *, name: str) -> None:
        self.settings = settings
        self.name = name
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.settings.inbound_auth.concurrency < 1 or self._process is not None:
            return
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tui_helpdesk.auth_checker", self.name],
            stdin=subprocess.PIPE,
        )
        assert self._process.stdin is not None
        self._process.stdin.write(pickle.dumps(self.settings, protocol=pickle.HIGHEST_PROTOCOL))
        self._process.stdin.flush()

    def stop(self, timeout: float) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            process.stdin.close()
        try:
            process.wait(timeout + 1)
        except subprocess.TimeoutExpired:  # a check still waiting on the DNS: its lease
            process.kill()  # brings it back
            process.wait()


def main(name: str) -> None:
    """The checker process: nice 19, the settings from stdin, until stdin ends."""
    with contextlib.suppress(OSError):
        os.nice(LOWEST_PRIORITY)
    settings: Settings = pickle.load(sys.stdin.buffer)
    logging.basicConfig(
        level=settings.worker.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    checker = AuthChecker(settings, name=name)
    checker.start()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches the whole process group
        sys.stdin.buffer.read()
    checker.stop(1.0)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "worker")
