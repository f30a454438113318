"""The inbound auth checker (F75): every worker checks SPF, DKIM and DMARC of the mail it and
the others stored, after the commit, off ingest's hot path.

A checker claims due checks (services.inbound_auth.jobs, under a lease), runs them outside any
transaction (every DNS lookup bounded by `dns.timeout_seconds`, `inbound_auth.concurrency` at
once), and stores the results in one short transaction. Stopping never waits for the DNS:
checks claimed but not run are given back, one running is left to its lease.

Two shapes:
- the TUI's embedded worker (and the tests) run `AuthChecker` threads in their own process;
- `tui-helpdesk worker` runs `CheckerProcess`: `python -m tui_helpdesk.worker.auth_checker`, one
  coordinator at normal priority that claims and records in batches of up to 100 (two short
  write transactions per batch), and an engine process at nice 19 that computes the checks.
  Measured with bench/ingest.py: the checks cost about as much CPU as storing the mail; in the
  SMTP process's threads they took the GIL from the sessions (half the messages per second),
  and a niced process that also wrote its own results held SQLite's write lock while the
  scheduler left it waiting. At nice 19 the engine gets only the CPU ingest leaves, and the
  transactions come from a process that is never starved.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import multiprocessing
import os
import pickle
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.records import MessageAuthRecord
from tui_helpdesk.services.inbound_auth import jobs
from tui_helpdesk.services.inbound_auth.message import check_message
from tui_helpdesk.worker.logs import configure_logging

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Engine = Callable[[Sequence[jobs.AuthJob]], list[MessageAuthRecord]]
THREAD_BATCH = 8  # checks one thread claims at once (the embedded worker's threads)
PROCESS_BATCH = 100  # checks the coordinator claims at once (the worker's checker process)
LOWEST_PRIORITY = 19
BURST_QUIET_SECONDS = 2.0  # the checker process waits while mail came in this recently
BURST_LONGEST_SECONDS = 60.0  # … unless a check waited this long already
LOOKUPS_PER_CHECK = 5  # SPF, a DKIM key or two, DMARC at the From and organisational domain


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
    """Checks due messages until stopped.

    Without an engine, `start` runs `inbound_auth.concurrency` threads that each claim a few
    checks and compute them one after the other. With one (the checker process), `start`
    runs one thread that claims `batch` checks at a time and hands them to the engine; with
    `pause` it yields to ingest: it waits while mail is coming in (a burst is checked after
    it, or once a check has waited a minute) and `poll_interval_seconds` after every batch,
    so its transactions never crowd ingest's commits."""

    def __init__(
        self,
        settings: Settings,
        *,
        name: str,
        clock: Clock = utc_now,
        engine: Engine | None = None,
        batch: int = THREAD_BATCH,
        pause: bool = False,
    ) -> None:
        self.settings = settings
        self.claimer = f"{name}/auth/{secrets.token_hex(3)}"
        self.clock = clock
        self.engine = engine
        self.batch = batch
        self.pause = pause
        # long enough for a batch whose every lookup times out (a dead resolver): a few
        # lookups per check, `concurrency` checks at once
        rounds = -(-batch // max(settings.inbound_auth.concurrency, 1))
        self.lease_seconds = max(
            jobs.LEASE_SECONDS, rounds * LOOKUPS_PER_CHECK * settings.dns.timeout_seconds * 2
        )
        self.db: Database | None = None
        self.checked = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._known = jobs.SenderIndexes()
        self._lock = threading.Lock()

    def start(self) -> None:
        count = self.settings.inbound_auth.concurrency
        if count < 1 or self._threads:
            return  # this worker checks nothing; another one does
        db = self.settings.database
        # like the outbox sender's: a lost result is only checked again, never lost
        self.db = Database(db.url, busy_timeout_ms=db.busy_timeout_ms, synchronous="NORMAL")
        self._stop.clear()
        for number in range(1 if self.engine else count):
            thread = threading.Thread(target=self._run, name=f"auth-checker-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def request_stop(self) -> None:
        """Claim nothing more (stop() then waits for the threads)."""
        self._stop.set()

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
                if self._stop.is_set():
                    return  # stopping: the engine was closed under the batch
                log.exception("inbound auth check failed; trying again")
                done = 0
            if not done or self.pause:
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
            if self.pause and jobs.mail_arriving(
                session, now, quiet=BURST_QUIET_SECONDS, longest=BURST_LONGEST_SECONDS
            ):
                return 0  # checked once the burst is over (or has lasted a minute)
        with db.write() as session:
            ids = jobs.claim(
                session, claimer=self.claimer, now=now, limit=self.batch,
                lease_seconds=self.lease_seconds,
            )  # fmt: skip
        try:
            with db.read() as session:
                claimed = jobs.load(session, claimer=self.claimer, ids=ids)
            results = self._check(claimed)
        except BaseException:
            with db.write() as session:  # none was checked: as if never claimed
                jobs.release(session, claimer=self.claimer, ids=ids)
            raise
        left = [message_id for message_id in ids if message_id not in results]
        with db.write() as session:
            with self._lock:  # SenderIndexes is shared by this worker's threads
                jobs.record(
                    session, self.settings, results, known=self._known,
                    claimer=self.claimer, now=self.clock(),
                )  # fmt: skip
            jobs.release(session, claimer=self.claimer, ids=left)
        self.checked += len(results)
        return len(results)

    def _check(
        self, claimed: Sequence[jobs.AuthJob]
    ) -> dict[int, tuple[jobs.AuthJob, MessageAuthRecord]]:
        if self.engine is not None and claimed:
            return {
                job.message_id: (job, result)
                for job, result in zip(claimed, self.engine(claimed), strict=True)
            }
        results = {}
        for job in claimed:
            if self._stop.is_set():
                break
            results[job.message_id] = (job, check(job, self.settings))
        return results


# --- the worker's checker process ------------------------------------------------------------


class CheckerProcess:
    """`python -m tui_helpdesk.worker.auth_checker NAME` beside the worker (`tui-helpdesk worker`).

    It reads the settings (pickled) from its stdin and checks until its stdin ends: when this
    worker stops it, or when the worker dies."""

    def __init__(self, settings: Settings, *, name: str) -> None:
        self.settings = settings
        self.name = name
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.settings.inbound_auth.concurrency < 1 or self._process is not None:
            return
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tui_helpdesk.worker.auth_checker", self.name],
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


class EngineProcess:
    """The checks computed in a child process at nice 19, `concurrency` at once (threads)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._connection: Any = None
        self._process: Any = None
        self._closed = False

    def __call__(self, claimed: Sequence[jobs.AuthJob]) -> list[MessageAuthRecord]:
        if self._closed:
            raise RuntimeError("the checker is stopping")
        if self._process is None or not self._process.is_alive():
            self._start()
        try:
            self._connection.send(list(claimed))
            results: list[MessageAuthRecord] = self._connection.recv()
        except (EOFError, OSError):
            self._kill()  # started again for the next batch
            raise
        return results

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, theirs = context.Pipe()
        self._process = context.Process(
            target=_engine_main, args=(theirs, self.settings), name="auth-engine", daemon=True
        )
        self._process.start()
        theirs.close()

    def close(self) -> None:
        self._closed = True
        self._kill()

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.join(5)


def _engine_main(connection: Any, settings: Settings) -> None:
    with contextlib.suppress(OSError):
        os.nice(LOWEST_PRIORITY)
    with ThreadPoolExecutor(settings.inbound_auth.concurrency) as pool:
        while True:
            try:
                claimed = connection.recv()
            except (EOFError, OSError, KeyboardInterrupt):
                return
            connection.send(list(pool.map(lambda job: check(job, settings), claimed)))


def main(name: str) -> None:
    """The checker process: the settings from stdin, checking until stdin ends."""
    settings: Settings = pickle.load(sys.stdin.buffer)
    configure_logging(settings.worker.log_level)
    engine = EngineProcess(settings)
    checker = AuthChecker(settings, name=name, engine=engine, batch=PROCESS_BATCH, pause=True)
    checker.start()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches the whole process group
        sys.stdin.buffer.read()
    checker.request_stop()
    engine.close()  # a batch waiting on the DNS ends now, and is given back
    checker.stop(1.0)


if __name__ == "__main__":  # run through the imported module, so the engine's spawn finds it
    from tui_helpdesk.worker import auth_checker

    auth_checker.main(sys.argv[1] if len(sys.argv) > 1 else "worker")
