"""Group commit in a thread beside the event loop (the embedded worker of the TUI)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tui_helpdesk.mail.inbound import InboundMail
from tui_helpdesk.smtp.batches import Accepted, StoreBatch, WriterStats, count_outcomes, settle

log = logging.getLogger("tui_helpdesk.smtp")


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

    @property
    def closed(self) -> bool:
        """True once stop() was called: from then on submit refuses mail."""
        return self._closed

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
        count_outcomes(self.stats, outcomes)


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
        settle(future, outcome)
