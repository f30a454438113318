"""The outbox sender's results on PostgreSQL, written with libpq itself (psycopg.pq).

With one connection per destination a worker may not end the next message's DATA before the
previous result is committed (the duplicate bound, worker/sender.py), so that commit's round
trip is paid by every message. psycopg's asynchronous `execute` cost ~120 µs of Python per
statement (its wait registers and drops the socket with the event loop at every call), more
than the server's work; here the statements are prepared once, sent with
PQsendQueryPrepared, and their replies read by one reader callback that stays registered:
~35 µs (a loop of the sender's UPDATE on the bench's outbox_jobs: 155 µs a round trip
instead of 230).

The connection is psycopg's (connecting, authentication and TLS stay psycopg's), in autocommit
mode, used for nothing else. Parameters are sent as text; statements come in psycopg's
`%(name)s` style (services.outbox.result_statements) and are numbered here.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any

import psycopg
from psycopg import pq

NAMED = re.compile(r"%\((\w+)\)s")
DONE = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)


def numbered(sql: str) -> tuple[bytes, tuple[str, ...]]:
    """`%(name)s` parameters as libpq's $1, $2…, and the names in their order."""
    names: list[str] = []

    def number(found: re.Match[str]) -> str:
        if found.group(1) not in names:
            names.append(found.group(1))
        return f"${names.index(found.group(1)) + 1}"

    return NAMED.sub(number, sql).replace("%%", "%").encode(), tuple(names)


def as_text(value: Any) -> bytes | None:
    """A parameter in PostgreSQL's text input form (NUL, which text cannot hold, replaced)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return b"t" if value else b"f"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.isoformat().encode()
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd").encode()
    raise TypeError(f"no text form for {type(value).__name__}")


class LibpqResults:
    """Runs result statements on one psycopg connection's libpq handle; `close` when done."""

    def __init__(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self.connection = connection
        self.pgconn = connection.pgconn
        self.pgconn.nonblocking = 1
        self.loop = asyncio.get_running_loop()
        self.prepared: dict[str, tuple[bytes, tuple[str, ...]]] = {}
        self.waiter: asyncio.Future[None] | None = None
        self.failure: Exception | None = None
        self.socket = self.pgconn.socket
        self.loop.add_reader(self.socket, self._readable)

    @classmethod
    async def open(cls, *args: Any, **kwargs: Any) -> LibpqResults:
        connection = await psycopg.AsyncConnection.connect(*args, **kwargs, autocommit=True)
        try:
            await connection.execute("SET synchronous_commit TO off")
        except BaseException:
            await connection.close()
            raise
        return cls(connection)

    async def run(self, statements: list[tuple[str, list[dict[str, Any]]]]) -> None:
        """Each statement once per row (bare statements once), in order."""
        for sql, rows in statements:
            if not rows:
                await self._command(self.pgconn.send_query, sql.encode())
                continue
            name, names = await self._prepared(sql)
            for row in rows:
                values = [as_text(row[key]) for key in names]
                await self._command(self.pgconn.send_query_prepared, name, values)

    async def _prepared(self, sql: str) -> tuple[bytes, tuple[str, ...]]:
        known = self.prepared.get(sql)
        if known is None:
            text, names = numbered(sql)
            name = f"hd_result_{len(self.prepared)}".encode()
            await self._command(self.pgconn.send_prepare, name, text)
            known = self.prepared[sql] = (name, names)
        return known

    async def _command(self, send: Any, *args: Any) -> None:
        """Send one command (`send(*args)`, a PQsend… call) and read its results; raise what
        the server refused."""
        pgconn = self.pgconn
        if self.failure is not None:
            raise self.failure
        send(*args)
        while pgconn.flush():  # the rest of the command once the socket takes it
            await self._wait(writable=True)
        results = []
        while True:
            if pgconn.is_busy():
                await self._wait()
                continue
            result = pgconn.get_result()
            if result is None:
                break
            results.append(result)
        for result in results:
            if result.status not in DONE:
                message = result.error_message.decode("utf-8", "replace").strip()
                raise psycopg.DatabaseError(message or f"{result.status.name} from the server")

    async def _wait(self, *, writable: bool = False) -> None:
        if self.failure is not None:
            raise self.failure
        self.waiter = self.loop.create_future()
        if writable:
            self.loop.add_writer(self.socket, self._wake)
        try:
            await self.waiter
        finally:
            self.waiter = None
            if writable:
                self.loop.remove_writer(self.socket)
        if self.failure is not None:
            raise self.failure

    def _readable(self) -> None:
        try:
            self.pgconn.consume_input()
        except psycopg.Error as exc:  # the connection is gone: every wait ends with it
            self.failure = exc
            self.loop.remove_reader(self.socket)
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def close(self) -> None:
        self.loop.remove_reader(self.socket)
        await self.connection.close()
