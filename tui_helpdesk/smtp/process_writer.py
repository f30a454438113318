"""Group commit in a store process of its own: the event loop's side (ProcessWriter)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from tui_helpdesk.mail.inbound import InboundMail
from tui_helpdesk.mail.parse import parse_message
from tui_helpdesk.smtp.batches import Accepted, WriterStats, count_outcomes, settle
from tui_helpdesk.smtp.store_process import (
    StoreFactory,
    StoreProcess,
    StoreRefused,
    StoreUnavailable,
)

log = logging.getLogger("tui_helpdesk.smtp")

PARSE_IN_LOOP_MAX = 256 * 1024  # larger mail is parsed by the store process
PARSE_AHEAD = 2  # mails parsed on the event loop while they wait for the next batch


@dataclass(slots=True)
class _Waiting:
    mail: InboundMail
    future: asyncio.Future[Accepted]


class ProcessWriter:
    """Group commit in a store process: same promise as GroupCommitWriter, on the second core.

    Lives on the event loop (no thread): mail queues while the store process works on the
    previous batch, and goes over as the next batch as soon as that batch's outcomes are back,
    so the store process takes whatever piled up meanwhile. Each future resolves only after
    the store process committed its batch. If the process dies, its batch is answered 451
    (the senders retry; a copy that was committed after all is recognised as a duplicate)
    and a new process is started, at most one start per `restart_delay` seconds.
    """

    def __init__(
        self,
        factory: StoreFactory,
        *,
        batch_max: int = 64,
        start_timeout: float = 60.0,
        restart_delay: float = 1.0,
        parse_max: int = PARSE_IN_LOOP_MAX,
        parse_ahead: int = PARSE_AHEAD,
    ) -> None:
        self._factory = factory
        self._parse_max = parse_max
        self._parse_ahead = parse_ahead
        self._batch_max = max(1, batch_max)
        self._start_timeout = start_timeout
        self._restart_delay = restart_delay
        self._queue: deque[_Waiting] = deque()
        self._in_flight: list[_Waiting] = []
        self._process: StoreProcess | None = None
        self._reading: asyncio.Task[None] | None = None
        self._starting: asyncio.Task[bool] | None = None
        self._started_at = float("-inf")
        self._closed = False
        self._idle: asyncio.Event | None = None
        self._reaping: set[asyncio.Future[None]] = set()
        self.stats = WriterStats()

    async def start(self) -> None:
        """Start the store process; raises StoreUnavailable if it cannot start."""
        self._idle = asyncio.Event()
        self._idle.set()
        process = await self._spawn()
        self._attach(process)

    def submit(self, mail: InboundMail) -> asyncio.Future[Accepted]:
        """Queue a mail; the future resolves after its transaction is committed (or fails)."""
        if self._closed or self._idle is None:
            raise RuntimeError("the ingest writer is not running")
        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(self._parsed(mail), future))
        self._idle.clear()
        self._pump()
        return future

    async def aclose(self, timeout: float) -> None:
        """Refuse new mail, store what is queued, end the store process: all within `timeout`.

        Whatever the store process is doing, it is killed when the time is up; what it held
        was not committed, so those senders get 451 and retry.
        """
        self._closed = True
        deadline = time.monotonic() + timeout
        if self._idle is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout)
        if self._starting is not None:
            self._starting.cancel()
        left = [*self._in_flight, *self._queue]
        self._in_flight, self._queue = [], deque()
        self._fail(left, StoreUnavailable("the worker is stopping"))
        process, self._process = self._process, None
        if process is not None:
            await process.close(max(0.0, deadline - time.monotonic()))
        if self._reading is not None:
            await asyncio.gather(self._reading, return_exceptions=True)

    def _parsed(self, mail: InboundMail) -> InboundMail:
        """The mail with parse_message's result when this loop should parse it, else as is.

        Parsing here moves CPU work from the store process to this one. That pays while few
        mails wait for the next batch: the store process's batches are then small, and its
        per-batch time is what the waiting senders wait for. With many waiting, the batch
        amortises its cost and this loop, serving every SMTP session, is the one to spare
        (measured with 2 KB mail: parsing all here 1,940/s at 8 sessions and 2,520/s at 32;
        none here 1,780 and 3,000; the first two of a batch here 2,130 and 2,880). A large mail
        (whose parse could hold up the other sessions) is always parsed by the store process.
        """
        if mail.parsed is not None or len(mail.raw) > self._parse_max:
            return mail
        if len(self._queue) >= self._parse_ahead:
            return mail
        try:
            parsed = parse_message(mail.raw)
        except Exception:  # parse_message never raises; if it did, the store parses again
            log.exception("parse_message raised")
            return mail
        return InboundMail(mail.raw, mail.mail_from, mail.rcpt_tos, mail.received_at, parsed,
                           mail.peer_ip, mail.helo)  # fmt: skip

    # --- the loop's side -----------------------------------------------------------------------

    def _pump(self) -> None:
        """Send the next batch when the store process is free and there is mail."""
        if self._in_flight or not self._queue:
            return
        if self._process is None:
            self._restart_soon()
            return
        if not self._process.process.is_alive():  # gone, and its socket not read to the end yet
            self._lost(self._process, StoreUnavailable("the store process ended"))
            return
        batch = [self._queue.popleft() for _ in range(min(self._batch_max, len(self._queue)))]
        self._in_flight = batch
        try:
            self._process.send([w.mail for w in batch])
        except Exception as exc:  # a closed transport: the reader sees the end too
            log.error("could not hand a batch to the store process: %s", exc)

    def _attach(self, process: StoreProcess) -> None:
        self._process = process
        self._reading = asyncio.ensure_future(self._read_outcomes(process))
        self._pump()

    async def _read_outcomes(self, process: StoreProcess) -> None:
        try:
            while True:
                self._resolve(await process.read())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # EOF, a reset socket, a broken frame: the process is gone
            self._lost(process, exc)

    def _resolve(self, reply: Any) -> None:
        batch, self._in_flight = self._in_flight, []
        if isinstance(reply, list) and len(reply) == len(batch):
            outcomes: list[Any] = reply
        else:
            error = reply if isinstance(reply, BaseException) else StoreRefused(repr(reply))
            outcomes = [error] * len(batch)
        try:
            count_outcomes(self.stats, outcomes)
        except Exception:  # counters must never cost a sender his answer
            log.exception("ingest counters")
        for waiting, outcome in zip(batch, outcomes, strict=True):
            settle(waiting.future, outcome)
        self._pump()
        self._check_idle()

    def _lost(self, process: StoreProcess, exc: BaseException) -> None:
        if self._process is not process:
            return
        self._process = None
        code = process.process.exitcode
        log.error("the store process ended (exit code %s, %s); restarting it", code, exc)
        reaping = asyncio.ensure_future(process.close(1.0))  # reap it
        self._reaping.add(reaping)
        reaping.add_done_callback(self._reaping.discard)
        batch, self._in_flight = self._in_flight, []
        self._fail(batch, StoreUnavailable("the store process ended"))
        self._pump()
        self._check_idle()

    def _restart_soon(self) -> None:
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._restart())

    async def _restart(self) -> bool:
        try:
            wait = self._started_at + self._restart_delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            process = await self._spawn()
        except Exception as exc:
            log.error("the store process could not be started: %s", exc)
            queued = list(self._queue)
            self._queue.clear()
            self._fail(queued, exc if isinstance(exc, StoreUnavailable) else StoreUnavailable(exc))
            self._check_idle()
            return False
        finally:
            self._starting = None
        self._attach(process)
        return True

    async def _spawn(self) -> StoreProcess:
        self._started_at = time.monotonic()
        return await StoreProcess.start(self._factory, self._start_timeout)

    def _fail(self, waiting: list[_Waiting], error: BaseException) -> None:
        if waiting:
            count_outcomes(self.stats, [error] * len(waiting))
        for item in waiting:
            settle(item.future, error)

    def _check_idle(self) -> None:
        if self._idle is not None and not self._queue and not self._in_flight:
            self._idle.set()
