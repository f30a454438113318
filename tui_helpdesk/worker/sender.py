"""The outbox sender (F73, F22): every worker sends the due outbox jobs, mail over SMTP and
webhook events over HTTPS, from a thread and event loop of its own, off ingest's hot path.

How a job moves: the feeder claims due jobs (services.outbox.claim, under a lease) and files
each in the lane of its destination (one relay or mailbox server, one webhook host). Lanes
have up to outbox.connections_per_destination workers, all lanes together up to
outbox.concurrency; a worker keeps its SMTP connection for the lane's next job. Results go
to the recorder, which commits them together once a worker needs one committed or every
worker has one waiting (group commit, see Recorder). On PostgreSQL it writes on an
asynchronous connection: while the server commits one message's result, the worker goes on
with the next message's MAIL and RCPT (see _Recording).

The duplicate bound: before a worker starts DATA (or the POST) of its next job, the result of
its previous one must be committed. So at any moment each worker has at most one job the
server may have taken but our database does not know as sent, and a crash resends at most
one message per worker that was sending (one per destination with the defaults).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.services import outbox, webhooks
from tui_helpdesk.services.outbox import ClaimedJob, JobResult
from tui_helpdesk.smtp.client import (
    ClientOptions,
    Connection,
    ConnectionPool,
    Destination,
    SendFailed,
    tls_context,
)
from tui_helpdesk.smtp.protocol import new_event_loop

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
RECORD_RETRY_SECONDS = (0.5, 1, 2, 5, 10, 30)
USER_AGENT = "tui-helpdesk"


def utc_now() -> datetime:
    return datetime.now(UTC)


def sender_database(settings: Settings) -> Database:
    """The sender's own engine, whose commits do not wait for the disk (SQLite
    synchronous=NORMAL, PostgreSQL synchronous_commit off). What it writes - claims, leases,
    results - is lost only in a crash of the machine or the database server, never of a
    worker, and then a job is merely sent again (at-least-once), never lost: the job itself
    was committed durably by the service that queued it. Its pooled connections are not
    pinged before use (a round trip per claim): a claim or renewal on a connection that
    turns out lost fails, is logged, and the next turn gets a new one."""
    db = settings.database
    return Database(db.url, busy_timeout_ms=db.busy_timeout_ms, synchronous="NORMAL",
                    pre_ping=False)  # fmt: skip


class Recorder:
    """Group commit of results: each added result's future resolves once its row committed.

    A commit waits until it is needed: until a worker waits for one of its results (`wait`),
    or every worker that could add a result has one waiting (`senders()` of them; each has at
    most one, by the duplicate bound). Until then the workers are still talking to their
    servers (MAIL, RCPT), and a commit made then would carry fewer results: measured with
    bench/outbox.py, no worker ever found its previous result uncommitted before DATA, so the
    commits were as many as the results allowed, and each costs the loop's time (all of a
    SQLite commit, the Python part of a PostgreSQL one).
    """

    def __init__(
        self,
        write: Callable[[list[JobResult]], Awaitable[None]],
        senders: Callable[[], int] = lambda: 1,
    ) -> None:
        self._write = write
        self._senders = senders
        self._pending: list[tuple[JobResult, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._wanted = False  # a worker waits for a result still pending
        self._stopping = False
        self.commits = 0
        self.recorded = 0  # results written so far

    def add(self, result: JobResult) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((result, future))
        self._wake.set()
        return future

    async def wait(self, future: asyncio.Future[None]) -> None:
        """Until the result behind `future` is committed; asks for that commit now, unless it
        is under way (PostgreSQL's are asynchronous: asking then would make the next commit
        go at once, with whatever few results came meanwhile)."""
        if any(pending is future for _, pending in self._pending):
            self._wanted = True
            self._wake.set()
        await asyncio.shield(future)

    async def run(self) -> None:
        """Commit until stopped and nothing is left to write."""
        while self._pending or not self._stopping:
            due = self._wanted or self._stopping or len(self._pending) >= self._senders()
            if not self._pending or not due:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch, self._pending, self._wanted = self._pending, [], False
            await self._commit(batch)

    def stop(self) -> None:
        """Write what is left, then end `run`."""
        self._stopping = True
        self._wake.set()

    async def _commit(self, batch: list[tuple[JobResult, asyncio.Future[None]]]) -> None:
        results = [result for result, _ in batch]
        for delay in (*RECORD_RETRY_SECONDS, None):
            try:
                await self._write(results)
                break
            except Exception as exc:  # the database is away: keep the results, try again
                if delay is None:
                    log.error("outbox results not recorded (%s); those jobs will be sent again "
                              "after their lease", exc)  # fmt: skip
                    break
                log.warning("recording outbox results failed (%s); again in %ss", exc, delay)
                await asyncio.sleep(delay)
        self.commits += 1
        self.recorded += len(batch)
        for _, future in batch:
            if not future.done():
                future.set_result(None)


async def _first(*waits: Any) -> None:
    """Wait until the first of the awaitables is done; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


@dataclass(eq=False)
class Lane:
    """The claimed jobs waiting for one destination, and how many workers serve it."""

    key: tuple[Any, ...]
    jobs: deque[ClaimedJob] = field(default_factory=deque)
    workers: int = 0


def destination_of(job: ClaimedJob) -> Destination:
    return Destination(job.host, job.port, job.security, job.username, job.password)


def lane_key(job: ClaimedJob) -> tuple[Any, ...]:
    if job.is_webhook:
        url = urlsplit(job.url)
        return ("https", url.hostname, url.port)
    return ("smtp", destination_of(job))


class OutboxSender:
    """Sends due jobs until stopped; `start`/`stop` run it in a thread of its own."""

    def __init__(
        self,
        settings: Settings,
        *,
        name: str,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.claimer = f"{name}/{secrets.token_hex(3)}"  # unique even if a pid comes back
        self.clock = clock
        self.rng = rng or random.Random()
        self.db: Database | None = None
        self._recording: _Recording | None = None  # where results are written
        self._http: httpx.AsyncClient | None = None  # made for the first webhook job
        self._backlog = False  # the last claim was full: more jobs are due
        self.sent = self.failed = 0
        self._lanes: dict[tuple[Any, ...], Lane] = {}
        self._held: set[int] = set()  # claimed, result not recorded yet
        self._workers: set[asyncio.Task[None]] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()

    # --- the thread -------------------------------------------------------------------------

    def start(self) -> None:
        self.db = sender_database(self.settings)
        self._thread = threading.Thread(target=self._run_thread, name="outbox-sender", daemon=True)
        self._thread.start()
        self._started.wait(10)

    def _run_thread(self) -> None:
        loop = new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self.run())
        except Exception:
            log.exception("the outbox sender stopped on an error")
        finally:
            self._started.set()
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def stop(self, timeout: float) -> None:
        """Finish the sends under way (up to `timeout`), give back the rest, record, close."""
        loop, stop, thread = self._loop, self._stop, self._thread
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended on its own meanwhile
                loop.call_soon_threadsafe(stop.set)
        thread.join(timeout + 5)
        self._thread = None
        if self.db is not None:
            self.db.dispose()

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        outbox_settings = self.settings.outbox
        self._stop = asyncio.Event()
        self._room = asyncio.Event()
        self.pool = ConnectionPool(
            ClientOptions(
                local_hostname=self.settings.smtp.hostname,
                timeout=outbox_settings.smtp_timeout_seconds,
                ca_file=self.settings.outbound.ca_file,
                idle_seconds=outbox_settings.idle_connection_seconds,
            )
        )
        self.recorder = Recorder(self._write_results, senders=lambda: len(self._workers))
        recording = asyncio.ensure_future(self.recorder.run())
        self._started.set()
        try:
            await self._feed()
        finally:
            await self._wind_down(recording)

    async def _feed(self) -> None:
        """Claim while there is room, renew leases, close idle connections; until stopped."""
        assert self._stop is not None
        batch = self.settings.outbox.batch_size
        renew_every = self.settings.outbox.lease_seconds / 3
        renewed = time.monotonic()
        while not self._stop.is_set():
            claimed = 0
            if len(self._held) <= batch // 2:
                claimed = await self._claim(batch - len(self._held))
            if time.monotonic() - renewed >= renew_every:
                try:
                    await self._db(self._renew, list(self._held))
                except Exception as exc:  # the database is away: the next turn tries again
                    log.warning("renewing the leases of outbox jobs failed: %s", exc)
                renewed = time.monotonic()
            await self.pool.close_idle()
            if claimed == 0 or len(self._held) > batch // 2:
                self._room.clear()
                idle = asyncio.sleep(self.settings.outbox.poll_interval_seconds)
                waits = [self._stop.wait(), idle]
                if claimed:
                    waits.append(self._room.wait())
                await _first(*waits)

    async def _claim(self, limit: int) -> int:
        try:
            jobs = await self._db(self._claim_jobs, limit)
        except Exception as exc:
            log.warning("claiming outbox jobs failed: %s", exc)
            return 0
        for job in jobs:
            self._held.add(job.id)
            key = lane_key(job)
            lane = self._lanes.get(key)
            if lane is None:
                lane = self._lanes[key] = Lane(key)
            lane.jobs.append(job)
        self._spawn()
        return len(jobs)

    def _spawn(self) -> None:
        """Start workers for lanes with waiting jobs, within both concurrency limits (not
        once stopping: what is left is given back)."""
        if self._stop is not None and self._stop.is_set():
            return
        per_lane = self.settings.outbox.connections_per_destination
        for lane in list(self._lanes.values()):
            while lane.jobs and lane.workers < min(per_lane, len(lane.jobs) + lane.workers):
                if len(self._workers) >= self.settings.outbox.concurrency:
                    return
                lane.workers += 1
                task = asyncio.ensure_future(self._work(lane))
                self._workers.add(task)
                task.add_done_callback(self._worker_done)
            if not lane.jobs and not lane.workers:
                del self._lanes[lane.key]

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        """A worker ended: its place is free for a lane with jobs. Only here, after it left
        `_workers`: workers that end in the same turn of the loop (one commit wakes them all)
        each found the others still counted, and none started the next, which left claimed
        jobs waiting with no worker (seen in bench/outbox.py at 8 connections)."""
        self._workers.discard(task)
        self._spawn()

    async def _work(self, lane: Lane) -> None:
        """Send the lane's jobs one after the other over one connection."""
        assert self._stop is not None
        connection: Connection | None = None
        previous: asyncio.Future[None] | None = None
        try:
            while lane.jobs and not self._stop.is_set():
                job = lane.jobs.popleft()
                guard = _Guard(self.recorder, previous)
                try:
                    if job.is_webhook:
                        result = await self._post(job, guard)
                    else:
                        result, connection = await self._send(job, connection, guard)
                except Exception as exc:  # a fault of ours: this job waits, the rest go on
                    log.exception("outbox job %d could not be sent", job.id)
                    if connection is not None:
                        await connection.close()
                        connection = None
                    result = JobResult(job, "temporary", f"{type(exc).__name__}: {exc}")
                previous = self._finished(result)
                if self._recording is not None and self._recording.asynchronous:
                    # The recorder sends its write before this worker's next MAIL: that
                    # commit, not the server, is what the next message's DATA waits for.
                    await asyncio.sleep(0)
        finally:
            if connection is not None:
                self.pool.release(connection)
            if previous is not None:  # the bound holds across this worker and the next
                await self.recorder.wait(previous)
            lane.workers -= 1  # its successor is started by _worker_done

    def _finished(self, result: JobResult) -> asyncio.Future[None]:
        if result.outcome == "sent":
            self.sent += 1
        else:
            level = logging.INFO if result.outcome == "temporary" else logging.WARNING
            log.log(level, "outbox job %d (%s) %s: %s", result.job.id, result.job.kind,
                    result.outcome, result.answer)  # fmt: skip
            self.failed += result.outcome == "permanent"
        future = self.recorder.add(result)
        future.add_done_callback(lambda _: self._recorded(result.job.id))
        return future

    def _recorded(self, job_id: int) -> None:
        self._held.discard(job_id)
        if len(self._held) <= self.settings.outbox.batch_size // 2:
            self._room.set()

    # --- one job ----------------------------------------------------------------------------

    async def _send(
        self, job: ClaimedJob, connection: Connection | None, guard: _Guard
    ) -> tuple[JobResult, Connection | None]:
        try:
            if connection is None:
                connection = await self.pool.acquire(destination_of(job))
            delivered = await connection.send(job.mail_from, job.rcpt_to, job.raw, guard.wait)
        except SendFailed as failed:
            if failed.connection_lost and connection is not None:
                await connection.close()
                connection = None
            outcome = "temporary" if failed.temporary else "permanent"
            return JobResult(job, outcome, failed.answer), connection
        refused = "; ".join(f"{r}: {answer}" for r, answer in delivered.refused.items())
        answer = f"not delivered to {refused}" if refused else ""
        return JobResult(job, "sent", answer, delivered.temporarily_refused), connection

    async def _post(self, job: ClaimedJob, guard: _Guard) -> JobResult:
        if not job.secret:
            return JobResult(job, "permanent", "the mailbox's webhook was turned off")
        headers = {
            "Content-Type": "application/json",
            webhooks.SIGNATURE_HEADER: webhooks.signature(job.secret, job.raw),
            webhooks.DELIVERY_HEADER: job.delivery_id,
            webhooks.EVENT_HEADER: job.event,
        }
        await guard.wait()
        try:
            response = await self._http_client().post(job.url, content=job.raw, headers=headers)
        except httpx.HTTPError as exc:
            return JobResult(job, "temporary", f"{type(exc).__name__}: {exc}")
        code = response.status_code
        answer = f"HTTP {code} {response.reason_phrase}: {' '.join(response.text[:200].split())}"
        if 200 <= code < 300:
            return JobResult(job, "sent")
        temporary = code in (408, 425, 429) or code >= 500
        return JobResult(job, "temporary" if temporary else "permanent", answer)

    def _http_client(self) -> httpx.AsyncClient:
        """Made when the first webhook is due, not at start: its TLS context and transport
        cost a tenth of a second, at every start of a worker that may send no webhook."""
        if self._http is None:
            self._http = httpx.AsyncClient(
                verify=tls_context(self.settings.outbound.ca_file),
                timeout=self.settings.outbox.webhook_timeout_seconds,
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT},
            )
        return self._http

    # --- the database -----------------------------------------------------------------------

    def _database(self) -> Database:
        if self.db is None:  # run() without start(): the tests drive the loop themselves
            self.db = sender_database(self.settings)
        return self.db

    async def _db(self, call: Callable[..., Any], *args: Any) -> Any:
        """The feeder's database work (claims, leases, giving jobs back), between sends.

        SQLite: on the loop's own thread. Measured (bench/outbox.py): handing it to a thread
        made the loop wait for the GIL behind SQLAlchemy's Python work, halving throughput;
        a short blocking transaction costs the sender less.

        PostgreSQL: on a thread, for two reasons. The work is mostly waiting for the
        server's replies, which the loop spends sending instead (bench/outbox.py, one
        connection: 1,733 and 1,657 jobs/s against 1,632 and 1,666). And the results are
        written by this loop (_Recording): a group of them is a transaction open across the
        loop's turns, holding its rows' locks, so a blocking statement on the loop's thread
        that waits for one of those locks (a lease renewal) would wait for ever.
        """
        if self._database().is_sqlite:
            return call(*args)
        return await asyncio.to_thread(call, *args)

    def _claim_jobs(self, limit: int) -> list[ClaimedJob]:
        """An idle sender reads first and takes the write lock only when a job is due; behind
        a backlog (the last claim was full) that read would only repeat the claim's work."""
        now = self.clock()
        if not self._backlog:
            with self._database().read() as session:
                if not outbox.any_due(session, now):
                    return []
        with self._database().write() as session:
            jobs = outbox.claim(session, self.settings, claimer=self.claimer, now=now, limit=limit)
        self._backlog = len(jobs) == limit
        return jobs

    async def _write_results(self, results: list[JobResult]) -> None:
        """On the sender's own connection in autocommit mode: a result follows every message,
        and a session per result cost more than the statements (bench/outbox.py)."""
        db = self._database()
        statements = outbox.result_statements(db.engine.dialect.name, self.settings, results,
                                              claimer=self.claimer, now=self.clock(),
                                              rng=self.rng)  # fmt: skip
        try:
            if self._recording is None:
                self._recording = await _Recording.open(db)
            await self._recording.run(statements)
        except BaseException:
            recording, self._recording = self._recording, None
            if recording is not None:  # a connection in an unknown state is not reused
                with contextlib.suppress(Exception):
                    await recording.close()
            raise

    def _renew(self, ids: list[int]) -> None:
        with self._database().write() as session:
            outbox.renew(session, self.settings, claimer=self.claimer, ids=ids, now=self.clock())

    def _release(self, ids: list[int]) -> None:
        with self._database().write() as session:
            outbox.release(session, claimer=self.claimer, ids=ids)

    async def _wind_down(self, recording: asyncio.Future[None]) -> None:
        """Let the sends under way finish, give back jobs never tried, record, close."""
        if self._workers:
            _, pending = await asyncio.wait(
                set(self._workers), timeout=self.settings.smtp.drain_timeout_seconds
            )
            for task in pending:  # their jobs stay claimed until the lease runs out
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        untried = [job.id for lane in self._lanes.values() for job in lane.jobs]
        self._lanes.clear()
        if untried:
            try:
                await self._db(self._release, untried)
            except Exception as exc:
                log.warning("could not give back %d claimed jobs (%s)", len(untried), exc)
        self.recorder.stop()
        await recording
        if self._recording is not None:
            await self._recording.close()
            self._recording = None
        await self.pool.close_idle(everything=True)
        if self._http is not None:
            await self._http.aclose()


class _Guard:
    """What a worker awaits before DATA: the commit of its previous result."""

    def __init__(self, recorder: Recorder, previous: asyncio.Future[None] | None) -> None:
        self.recorder = recorder
        self.previous = previous

    async def wait(self) -> None:
        if self.previous is not None:
            await self.recorder.wait(self.previous)


class _Recording:
    """The connection results are written on, the sender's own, in autocommit mode.

    SQLite: a connection of the pool's, taken out of it for good, written on from the loop's
    thread (a short blocking write, as OutboxSender._db says). PostgreSQL: a connection of
    its own driven through libpq (worker/libpq_results.py), so that while the server writes
    the result of one message the loop goes on with the next one's MAIL and RCPT; its
    commits, like the sender's engine's, do not wait for the disk (see sender_database)."""

    def __init__(self, sqlite: Any = None, libpq: Any = None) -> None:
        self.sqlite = sqlite
        self.libpq = libpq

    @property
    def asynchronous(self) -> bool:
        """Its writes leave the loop running while the server commits (PostgreSQL)."""
        return self.libpq is not None

    @classmethod
    async def open(cls, db: Database) -> _Recording:
        if db.is_sqlite:  # its connections are in autocommit mode already (db.engine)
            pooled = db.engine.raw_connection()
            dbapi = pooled.driver_connection
            pooled.detach()
            return cls(sqlite=dbapi)
        from tui_helpdesk.worker.libpq_results import LibpqResults

        args, kwargs = db.engine.dialect.create_connect_args(db.engine.url)
        return cls(libpq=await LibpqResults.open(*args, **kwargs))

    async def run(self, statements: list[tuple[str, list[dict[str, Any]]]]) -> None:
        """outbox.result_statements, in order (a failure leaves the connection to close(),
        which ends an open transaction without it)."""
        if self.libpq is not None:
            await self.libpq.run(statements)
            return
        for sql, rows in statements:
            if len(rows) > 1:
                self.sqlite.executemany(sql, rows)
            else:
                self.sqlite.execute(sql, *rows)

    async def close(self) -> None:
        if self.libpq is not None:
            await self.libpq.close()
        else:
            self.sqlite.close()
