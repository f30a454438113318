"""The store process: its entry point, the framed socket protocol, and the loop's handle on it.

Errors cross the process boundary as text (StoreRefused), and a process that could not start
says so in its first frame (StoreUnavailable) instead of "ready".
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import pickle
import signal
import socket
import struct
from collections.abc import Callable, Sequence
from typing import Any

from tui_helpdesk.mail.inbound import InboundMail
from tui_helpdesk.smtp.batches import Accepted, StoreBatch

log = logging.getLogger("tui_helpdesk.smtp")


# In the store process: build the store (open the database) and return it. Must pickle, so a
# module-level function or a functools.partial of one.
StoreFactory = Callable[[], StoreBatch]

KILL_WAIT_SECONDS = 5.0  # for the kernel to end a killed store process
_FRAME = struct.Struct("!Q")  # length of the pickle that follows
_READY = "ready"


class StoreUnavailable(RuntimeError):
    """The store process ended, or could not start: the senders it held get 451 and retry."""


class StoreRefused(RuntimeError):
    """A mail (or a whole batch) the store kept out, with its error as text.

    Errors cross the process boundary as text: not every database exception pickles.
    """


def _write_frame(sock: socket.socket, message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_FRAME.pack(len(data)))
    sock.sendall(data)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(min(size - len(chunks), 1 << 20))
        if not chunk:
            raise EOFError("the worker closed the connection")
        chunks += chunk
    return bytes(chunks)


def _read_frame(sock: socket.socket) -> Any:
    (size,) = _FRAME.unpack(_read_exactly(sock, _FRAME.size))
    return pickle.loads(_read_exactly(sock, size))


def store_process_main(sock: socket.socket, factory: StoreFactory) -> None:
    """The store process: batches in, outcomes out, until the worker closes the socket.

    It ignores SIGINT (a Ctrl-C reaches the whole process group; the worker decides when it
    ends) and ends when the socket closes, also when the worker was killed.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with sock:
        try:
            store = factory()
        except Exception as exc:
            log.exception("the store process could not start")
            _write_frame(sock, StoreUnavailable(f"store not started: {type(exc).__name__}: {exc}"))
            return
        try:
            _write_frame(sock, _READY)
            while True:
                _write_frame(sock, _store_for_worker(store, _read_frame(sock)))
        except (EOFError, OSError):
            return  # the worker is gone: nobody is waiting for an answer


def _store_for_worker(store: StoreBatch, mails: Sequence[InboundMail]) -> object:
    """One outcome per mail (Accepted or StoreRefused), or one StoreRefused for the batch."""
    try:
        outcomes = store(mails)
        if len(outcomes) != len(mails):
            raise RuntimeError(f"store returned {len(outcomes)} results for {len(mails)}")
    except Exception as exc:  # the commit failed: every sender retries
        log.error("ingest batch of %d not stored: %s", len(mails), exc)
        return StoreRefused(f"{type(exc).__name__}: {exc}")
    return [
        o if isinstance(o, Accepted) else StoreRefused(f"{type(o).__name__}: {o}") for o in outcomes
    ]


class StoreProcess:
    """One running store process and the event loop's end of its socket."""

    def __init__(
        self,
        process: multiprocessing.process.BaseProcess,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.process = process
        self.reader = reader
        self.writer = writer

    @classmethod
    async def start(cls, factory: StoreFactory, timeout: float) -> StoreProcess:
        ours, theirs = socket.socketpair()
        context = multiprocessing.get_context("spawn")  # no fork of a threaded event loop
        process = context.Process(
            target=store_process_main, args=(theirs, factory), name="ingest-store", daemon=True
        )
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, process.start)
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        child = cls(process, reader, writer)
        try:
            first = await asyncio.wait_for(child.read(), timeout)
        except (TimeoutError, EOFError, OSError, asyncio.IncompleteReadError) as exc:
            await child.close(1.0)
            raise StoreUnavailable(f"the store process did not start: {exc!r}") from None
        if first != _READY:
            await child.close(1.0)
            raise first if isinstance(first, StoreUnavailable) else StoreUnavailable(str(first))
        return child

    def send(self, mails: list[InboundMail]) -> None:
        data = pickle.dumps(mails, protocol=pickle.HIGHEST_PROTOCOL)
        self.writer.write(_FRAME.pack(len(data)))
        self.writer.write(data)

    async def read(self) -> Any:
        (size,) = _FRAME.unpack(await self.reader.readexactly(_FRAME.size))
        return pickle.loads(await self.reader.readexactly(size))

    async def close(self, timeout: float) -> None:
        """Close the socket (the process ends at its next read), wait up to `timeout` for it
        to exit, then kill it: it may be busy with a batch that will not be committed."""
        self.writer.close()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.process.join, timeout)
        if self.process.is_alive():
            log.warning("the store process did not end in %.1f s; killing it", timeout)
            self.process.kill()
            await loop.run_in_executor(None, self.process.join, KILL_WAIT_SECONDS)
