"""The inbound auth checker (F75): every worker checks SPF, DKIM and DMARC of the mail it and
the others stored, after the commit, from daemon threads of its own, off ingest's hot path.

`inbound_auth.concurrency` threads each claim a few due checks (services.inbound_auth.jobs,
under a lease), run them one after the other outside any transaction (every DNS lookup bounded
by `dns.timeout_seconds`), and store the results in one short transaction. Stopping never waits
for the DNS: checks claimed but not run are given back, one running is left to its lease.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
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
