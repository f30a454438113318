"""The aiosmtpd handler and the alias cache it answers RCPT from."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from tui_helpdesk.mail.inbound import InboundMail
from tui_helpdesk.smtp.batches import Writer

log = logging.getLogger("tui_helpdesk.smtp")

TEMPORARY_FAILURE = "451 4.3.0 temporary failure, try again later"


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

    def __init__(self, writer: Writer, aliases: AliasCache) -> None:
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
            peer_ip=_peer_ip(session),
            helo=getattr(session, "host_name", None) or "",
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


def _peer_ip(session: Any) -> str:
    """The client's address as SPF needs it ("" when the transport named none)."""
    peer = getattr(session, "peer", None)
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""
