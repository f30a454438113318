"""The SMTP side of ingest: an aiosmtpd handler and the group-commit writer (F70, F76).

No database here: the writer is given a `store` callable that stores a whole batch in one
transaction, and the handler a `load_aliases` callable. That keeps the protocol path testable
on its own and the layering clean (mail never imports db or services).

Why group commit: a durable commit (fsync) per message would cap throughput at the disk's
flush rate. One writer thread takes everything queued, commits it at once, and only then lets
each session answer 250; concurrent sessions share the cost of one commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

TEMPORARY_FAILURE = "451 4.3.0 temporary failure, try again later"


@dataclass(frozen=True, slots=True)
class InboundMail:
    """One SMTP transaction as received: the exact DATA bytes and the envelope."""

    raw: bytes
    mail_from: str
    rcpt_tos: tuple[str, ...]
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Accepted:
    """What the store says about one mail of a committed batch."""

    queue_id: str
    processing_error: str = ""


# store(batch) stores every mail of the batch in ONE transaction and commits it. It returns one
# entry per mail: Accepted, or the exception that kept that mail out (answered 451). Raising
# means the commit failed and the whole batch is answered 451.
StoreBatch = Callable[[Sequence[InboundMail]], Sequence["Accepted | BaseException"]]


@dataclass
class WriterStats:
    """Counters for the worker-status row (F76); written by the writer thread only."""

    accepted: int = 0
    errors: int = 0
    batches: int = 0
    last_accepted_at: datetime | None = None
    last_error: str = ""


@dataclass(slots=True)
class _Pending:
    mail: InboundMail
    future: asyncio.Future[Accepted]
    loop: asyncio.AbstractEventLoop


class GroupCommitWriter:
    """One thread that stores queued mail in batches and resolves each sender's future."""

    def __init__(self, store: StoreBatch, *, batch_max: int = 64, name: str = "ingest-writer"):
        self._store = store
        self._batch_max = max(1, batch_max)
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._closed = False
        self.stats = WriterStats()

    def start(self) -> None:
        self._thread.start()

    def submit(self, mail: InboundMail) -> asyncio.Future[Accepted]:
        """Queue a mail; the future resolves after its transaction is committed (or fails)."""
        if self._closed or not self._thread.is_alive():
            raise RuntimeError("the ingest writer is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Accepted] = loop.create_future()
        self._queue.put(_Pending(mail, future, loop))
        return future

    def stop(self, timeout: float | None = None) -> None:
        """Refuse new mail, store everything already queued, then end the thread."""
        self._closed = True
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stopping = self._fill(batch)
            self._process(batch)
            if stopping:
                return

    def _fill(self, batch: list[_Pending]) -> bool:
        """Take whatever else is queued, up to the batch size; True when the stop mark came."""
        while len(batch) < self._batch_max:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is None:
                self._drain_after_stop(batch)
                return True
            batch.append(item)
        return False

    def _drain_after_stop(self, batch: list[_Pending]) -> None:
        # Anything queued behind the stop mark was submitted before `_closed` was seen.
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                batch.append(item)

    def _process(self, batch: list[_Pending]) -> None:
        try:
            outcomes: Sequence[Accepted | BaseException] = self._store([p.mail for p in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"store returned {len(outcomes)} results for {len(batch)}")
        except Exception as exc:  # the commit failed: every sender retries
            log.error("ingest batch of %d not stored: %s", len(batch), exc)
            outcomes = [exc] * len(batch)
        try:
            self._count(outcomes)
        except Exception:  # counters must never cost a sender his answer
            log.exception("ingest counters")
        _resolve(batch, outcomes)

    def _count(self, outcomes: Sequence[Accepted | BaseException]) -> None:
        stats = self.stats
        stats.batches += 1
        for outcome in outcomes:
            if isinstance(outcome, Accepted):
                stats.accepted += 1
                stats.last_accepted_at = datetime.now(UTC)
                if outcome.processing_error:
                    stats.errors += 1
                    stats.last_error = outcome.processing_error
            else:
                stats.errors += 1
                stats.last_error = f"{type(outcome).__name__}: {outcome}"


def _resolve(batch: list[_Pending], outcomes: Sequence[Accepted | BaseException]) -> None:
    """Hand the results back to each event loop with one thread-safe call per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Accepted], Any]]] = {}
    for pending, outcome in zip(batch, outcomes, strict=True):
        by_loop.setdefault(pending.loop, []).append((pending.future, outcome))
    for loop, pairs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: its sessions are gone
            loop.call_soon_threadsafe(_set_results, pairs)


def _set_results(pairs: list[tuple[asyncio.Future[Accepted], Any]]) -> None:
    for future, outcome in pairs:
        if future.done():  # the session went away while we were committing
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


class AliasCache:
    """The set of accepted recipient addresses, reloaded when older than `max_age` seconds.

    RCPT is answered from memory; a reload runs off the event loop and concurrent RCPTs share
    it, so deactivating a mailbox takes effect within `max_age` without a query per RCPT.
    """

    def __init__(
        self,
        load: Callable[[], Collection[str]],
        *,
        max_age: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._max_age = max_age
        self._clock = clock
        self._aliases: frozenset[str] | None = None
        self._loaded_at = float("-inf")
        self._reload: asyncio.Future[None] | None = None

    async def accepts(self, address: str) -> bool:
        """True for a known address; raises when the set was never loaded and cannot be."""
        if self._clock() - self._loaded_at > self._max_age:
            await self._refresh()
        assert self._aliases is not None
        return address.lower() in self._aliases

    async def _refresh(self) -> None:
        if self._reload is None:
            self._reload = asyncio.ensure_future(self._do_refresh())
        reload = self._reload
        try:
            await asyncio.shield(reload)
        finally:
            if reload.done() and self._reload is reload:
                self._reload = None

    async def _do_refresh(self) -> None:
        loop = asyncio.get_running_loop()
        started = self._clock()
        try:
            aliases = await loop.run_in_executor(None, self._load)
        except Exception as exc:
            if self._aliases is None:
                raise
            log.warning("could not reload mailbox aliases, using the previous set: %s", exc)
            return
        self._aliases = frozenset(a.lower() for a in aliases)
        self._loaded_at = started


class IngestHandler:
    """aiosmtpd handler: RCPT decides from the alias cache, DATA waits for the commit."""

    def __init__(self, writer: GroupCommitWriter, aliases: AliasCache) -> None:
        self._writer = writer
        self._aliases = aliases
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        try:
            accepted = await self._aliases.accepts(address)
        except Exception as exc:
            log.error("recipient check failed: %s", exc)
            return TEMPORARY_FAILURE
        if not accepted:
            return f"550 5.1.1 <{address}>: no such mailbox"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content
        if raw is None:
            content = envelope.content
            raw = (
                content
                if isinstance(content, bytes)
                else content.encode("utf-8", "surrogateescape")
            )
        mail = InboundMail(
            raw=bytes(raw),
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            received_at=datetime.now(UTC),
        )
        self._in_flight += 1
        self._idle.clear()
        try:
            accepted = await self._writer.submit(mail)
        except Exception:
            return TEMPORARY_FAILURE
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()
        return f"250 2.0.0 OK queued as {accepted.queue_id}"

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no DATA is waiting for its commit (used by a clean shutdown)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True
