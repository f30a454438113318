"""Headless mode (F70, F73, F76): the SMTP ingest server, its group-commit writer, the outbox
sender and a health row.

`run_worker` is the `tui-helpdesk worker` process: it stops cleanly on SIGTERM/SIGINT (stop
accepting, let the writer commit what it holds so those senders get their 250, exit 0). Its
parsing and storing run in a store process of its own (smtp.process_writer), so the SMTP
sessions and the database work each get a core. `EmbeddedWorker` runs the same server in a
background thread of the TUI, with the writer as a thread (no extra process per TUI).
Both run the outbox sender (sender.py) in a thread of its own, so sending never waits on
ingest's event loop nor slows it, and the inbound auth checker (auth_checker.py, F75) in
threads of its own, which check SPF/DKIM/DMARC of stored mail after the commit, and (on
PostgreSQL) the search indexer (search_indexer.py), which fills new messages' search vectors.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import WorkerStatus
from tui_helpdesk.errors import ConfigError
from tui_helpdesk.services import ingest
from tui_helpdesk.smtp.handler import AliasCache, IngestHandler
from tui_helpdesk.smtp.limits import SessionLimits
from tui_helpdesk.smtp.process_writer import ProcessWriter
from tui_helpdesk.smtp.protocol import new_event_loop, start_server
from tui_helpdesk.smtp.store_process import StoreUnavailable
from tui_helpdesk.smtp.thread_writer import GroupCommitWriter
from tui_helpdesk.smtp.tls import ServerTLS
from tui_helpdesk.worker.auth_checker import AuthChecker, CheckerProcess
from tui_helpdesk.worker.control import WorkerControl
from tui_helpdesk.worker.logs import configure_logging
from tui_helpdesk.worker.search_indexer import SearchIndexer
from tui_helpdesk.worker.sender import OutboxSender
from tui_helpdesk.worker.store import open_store, smtp_store

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0  # each beat is a commit: on SQLite it wakes every open TUI
ALIAS_MAX_AGE_SECONDS = 0.5
START_TIMEOUT_SECONDS = 15.0
# The store process takes at most this many mails per transaction (or fewer, when
# smtp.batch_max_messages says so). Larger batches made 32 SMTP sessions move in bursts, all
# answered at once and all back at once: 2,000-2,200 msg/s with 32-64, 2,250-2,430 with 12-24.
STORE_BATCH_MAX = 16
AUTH_STOP_SECONDS = 2.0  # a check waiting on the DNS is left to its lease, not waited for


class RecentIntake:
    """This worker's mail accepted in the last minute and hour, from the running total it
    had at each heartbeat (nothing is counted on the SMTP path): the total now minus the
    total at the last beat that is at least a minute (an hour) old; a worker younger than
    that counts everything since it started."""

    WINDOWS = (60.0, 3600.0)

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._beats: deque[tuple[float, int]] = deque()  # (when, accepted total then)

    def recent(self, accepted: int) -> tuple[int, int]:
        now = self._clock()
        self._beats.append((now, accepted))
        longest = self.WINDOWS[-1]
        while len(self._beats) > 1 and now - self._beats[1][0] >= longest:
            self._beats.popleft()  # the next beat is old enough to be the hour's baseline
        minute, hour = (accepted - self._baseline(now - window) for window in self.WINDOWS)
        return minute, hour

    def _baseline(self, moment: float) -> int:
        """The total at the newest beat at or before `moment` (0: none is that old)."""
        found = 0
        for when, total in self._beats:
            if when > moment:
                break
            found = total
        return found


class WorkerRuntime:
    """One worker: the SMTP server, the writer and the heartbeat, on one event loop.

    With `store_process`, mail is parsed and stored in a separate process (ProcessWriter),
    else in a writer thread of this process (GroupCommitWriter).
    """

    def __init__(self, settings: Settings, db: Database, *, store_process: bool = False) -> None:
        self.settings = settings
        self.db = db
        batch_max = settings.smtp.batch_max_messages
        self.writer: GroupCommitWriter | ProcessWriter = (
            ProcessWriter(
                functools.partial(open_store, settings),
                batch_max=min(batch_max, STORE_BATCH_MAX),
            )
            if store_process
            else GroupCommitWriter(smtp_store(db, settings), batch_max=batch_max)
        )
        self.handler = IngestHandler(
            self.writer, AliasCache(self._load_aliases, max_age=ALIAS_MAX_AGE_SECONDS)
        )
        smtp = settings.smtp
        self.tls = ServerTLS(smtp.tls_certificate, smtp.tls_key)
        self.limits = (
            SessionLimits(
                total=smtp.max_sessions,
                per_client=smtp.max_sessions_per_client,
                idle_when_full=smtp.idle_timeout_when_full_seconds,
            )
            if smtp.max_sessions or smtp.max_sessions_per_client
            else None  # no caps at all: nothing counted
        )
        self.name = f"worker@{socket.gethostname()}:{os.getpid()}"
        self.heartbeat_seconds = HEARTBEAT_SECONDS
        self.on_beat: Callable[[], None] = lambda: None  # e.g. the systemd watchdog ping
        self.address = ""
        self.started_at = datetime.now(UTC)
        self.intake = RecentIntake()
        self.sender = OutboxSender(settings, name=self.name)
        # F75, after each commit: a process of its own at nice 19 beside the store process
        self.auth_checker: AuthChecker | CheckerProcess = (
            CheckerProcess(settings, name=self.name)
            if store_process
            else AuthChecker(settings, name=self.name)
        )
        self.search_indexer = SearchIndexer(settings)  # PostgreSQL: vectors after the commit

    def _load_aliases(self) -> frozenset[str]:
        with self.db.read() as session:
            return ingest.active_aliases(session)

    async def serve(self, stop: asyncio.Event, on_listening: Callable[[str, int], None]) -> None:
        """Run until `stop` is set, then shut down without losing a committed message's 250."""
        smtp = self.settings.smtp
        await self._start_writer()
        try:
            server = await start_server(
                self.handler,
                host=smtp.host,
                port=smtp.port,
                hostname=smtp.hostname,
                data_size_limit=smtp.max_message_size,
                timeout=smtp.idle_timeout_seconds,
                data_timeout=smtp.data_timeout_seconds,
                tls=self.tls,
                require_starttls=smtp.require_starttls,
                limits=self.limits,
            )
        except BaseException:
            await self._stop_writer(self.settings.smtp.drain_timeout_seconds)
            raise
        host, port = server.sockets[0].getsockname()[:2]
        self.address = f"{host}:{port}"
        self.sender.start()
        self.auth_checker.start()
        self.search_indexer.start()
        heartbeat = asyncio.ensure_future(self._heartbeat_loop())
        try:
            on_listening(host, port)
            await stop.wait()
        finally:
            await self._shutdown(server, heartbeat)

    def reload(self, fresh: Settings) -> None:
        """SIGHUP: load the STARTTLS certificate again; a broken one leaves the old serving."""
        smtp = fresh.smtp
        try:
            self.tls.reload(smtp.tls_certificate, smtp.tls_key)
        except ConfigError as error:
            log.error("STARTTLS certificate not reloaded, the old one stays: %s", error.message)
            return
        if smtp.tls_certificate:
            log.warning("STARTTLS certificate reloaded from %s", smtp.tls_certificate)

    async def _shutdown(self, server: asyncio.Server, heartbeat: asyncio.Future[None]) -> None:
        loop = asyncio.get_running_loop()
        server.close()
        drain = self.settings.smtp.drain_timeout_seconds
        sending = loop.run_in_executor(None, self.sender.stop, drain)
        checking = loop.run_in_executor(None, self.auth_checker.stop, AUTH_STOP_SECONDS)
        indexing = loop.run_in_executor(None, self.search_indexer.stop, AUTH_STOP_SECONDS)
        await self._stop_writer(drain)
        if not await self.handler.wait_idle(drain):
            log.warning("some SMTP sessions were still waiting at shutdown")
        heartbeat.cancel()
        await sending
        await checking
        await indexing
        await loop.run_in_executor(None, self._beat_safely)
        log.info("worker stopped: %d accepted, %d errors", *self._counts())
        if self.limits is not None and (self.limits.refused or self.limits.closed_idle):
            log.info("%d connections refused over the session caps, %d idle sessions closed to "
                     "make room", self.limits.refused, self.limits.closed_idle)  # fmt: skip

    async def _start_writer(self) -> None:
        if isinstance(self.writer, ProcessWriter):
            await self.writer.start()
        else:
            self.writer.start()

    async def _stop_writer(self, timeout: float) -> None:
        """Store what is queued (its senders get their 250), then stop the writer."""
        if isinstance(self.writer, ProcessWriter):
            await self.writer.aclose(timeout)
        else:
            await asyncio.get_running_loop().run_in_executor(None, self.writer.stop, timeout)

    def _counts(self) -> tuple[int, int]:
        return self.writer.stats.accepted, self.writer.stats.errors

    async def _heartbeat_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await loop.run_in_executor(None, self._beat_safely)
            self.on_beat()
            await asyncio.sleep(self.heartbeat_seconds)

    def _beat_safely(self) -> None:
        try:
            self.beat()
        except Exception as exc:  # a missed heartbeat must never stop the ingest
            log.warning("worker status not updated: %s", exc)

    def beat(self) -> None:
        """Upsert this worker's status row (F76): alive, last accepted, counts, last error."""
        stats = self.writer.stats
        now = datetime.now(UTC)
        with self.db.write() as session:
            row = session.get(WorkerStatus, self.name)
            if row is None:
                row = WorkerStatus(name=self.name, started_at=self.started_at)
                session.add(row)
            row.pid = os.getpid()
            row.smtp_address = self.address
            row.heartbeat_at = now
            row.last_accepted_at = stats.last_accepted_at
            row.accepted_count = stats.accepted
            row.accepted_last_minute, row.accepted_last_hour = self.intake.recent(stats.accepted)
            row.error_count = stats.errors
            row.last_error = stats.last_error


def run_worker(settings: Settings) -> int:
    """The blocking `tui-helpdesk worker`; returns the process exit code."""
    configure_logging(settings.worker.log_level)
    db = Database.from_settings(settings)
    try:
        if db.is_empty():
            log.error("the database is not initialised: run `tui-helpdesk init` first")
            return 1
        runtime = WorkerRuntime(settings, db, store_process=True)
        threading.Thread(target=_warm_start_caches, args=(settings, db), daemon=True,
                         name="start-cache").start()  # fmt: skip
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(_serve_until_signal(runtime))
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", settings.smtp.host, settings.smtp.port, exc)
        return 1
    except SQLAlchemyError as exc:
        log.error("cannot use the database: %s", exc)
        return 1
    except StoreUnavailable as exc:
        log.error("cannot store mail: %s", exc)
        return 1
    except ConfigError as exc:
        log.error("%s", exc.message)
        return 1
    finally:
        db.dispose()
    return 0


def _warm_start_caches(settings: Settings, db: Database) -> None:
    """The TUI start-up caches in this account's cache folder that an upgrade made stale,
    written again (services/prepared.py `refresh`): under systemd that is the helpdesk
    account, whose folder every agent's `ssh-session` uses, so after an upgrade and the
    worker's restart each agent's first start draws its rows from the cache."""
    from tui_helpdesk import start_cache
    from tui_helpdesk.services import prepared

    try:
        written = prepared.refresh(db, settings, start_cache.default_directory())
    except Exception as error:  # an extra: each TUI start writes its own anyway
        log.info("start-up caches not refreshed: %s", error)
        return
    if written:
        log.info("start-up caches refreshed for this version: %d", written)


async def _serve_until_signal(runtime: WorkerRuntime) -> None:
    """SIGTERM/SIGINT drain and stop, SIGHUP reloads; systemd hears of each (worker/control.py)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    control = WorkerControl(runtime.settings, on_reload=runtime.reload)

    def stopping() -> None:
        control.stopping()
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping)
    loop.add_signal_handler(signal.SIGHUP, control.reload)
    runtime.on_beat = control.alive
    runtime.heartbeat_seconds = control.heartbeat_seconds(HEARTBEAT_SECONDS)

    def announce(host: str, port: int) -> None:
        print(f"listening on {host}:{port}", file=sys.stderr, flush=True)
        control.ready(f"listening on {host}:{port}")

    await runtime.serve(stop, announce)


class EmbeddedWorker:
    """The worker in a background thread with its own event loop (the TUI's default)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._db: Database | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._address: tuple[str, int] | None = None
        self._error: BaseException | None = None

    def start(self) -> tuple[str, int]:
        """Start listening; returns the bound (host, port). Raises if it cannot listen."""
        if self._address is not None:
            return self._address
        self._db = Database.from_settings(self.settings)
        self._thread = threading.Thread(target=self._run, name="embedded-worker", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_SECONDS):
            raise RuntimeError("the embedded worker did not start in time")
        if self._error is not None or self._address is None:
            self._db.dispose()
            raise RuntimeError(f"the embedded worker could not start: {self._error}")
        return self._address

    def _run(self) -> None:
        loop = new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._stop = asyncio.Event()
            assert self._db is not None
            runtime = WorkerRuntime(self.settings, self._db)
            loop.run_until_complete(runtime.serve(self._stop, self._listening))
        except BaseException as exc:
            self._error = exc
            log.exception("embedded worker failed")
        finally:
            self._ready.set()
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def _listening(self, host: str, port: int) -> None:
        self._address = (host, port)
        self._ready.set()

    def stop(self) -> None:
        """Stop accepting, commit what is in flight, and wait for the thread to end."""
        if self._thread is None:
            return
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended on its own meanwhile
                loop.call_soon_threadsafe(stop.set)
        self._thread.join(self.settings.smtp.drain_timeout_seconds * 2)
        self._thread = None
        self._address = None
        if self._db is not None:
            self._db.dispose()
            self._db = None
