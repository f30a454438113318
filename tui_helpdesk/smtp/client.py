"""The SMTP client side (F17, F73): connections to a relay or a mailbox's own server, kept open
and reused for the next message to the same destination.

No services and no database here: the sender hands over a Destination and the exact bytes of
a message, and gets back what the server answered. aiosmtplib speaks the protocol; this module
chooses TLS, AUTH and the MAIL options, sorts answers into temporary and permanent, and keeps
idle connections.

Between two messages on one connection nothing is sent: a finished DATA ends the transaction
and the next MAIL starts a new one (RFC 5321 3.3). RSET is sent after a failed transaction
(so its envelope is gone) and before reusing a connection that sat idle in the pool, which
also proves the server still listens, as Postfix does with its cached connections.

A server that offers PIPELINING (RFC 2920; Postfix and most MTAs do) gets MAIL, every RCPT
and DATA in one write, and the message after its 354: two round trips instead of three plus
one per recipient, as Postfix's own client sends. aiosmtplib reads one reply per command it
wrote itself, so for such a transaction the connection's transport is lent to a small reader
of ours (_Replies) and given back after the last reply; connecting, TLS, AUTH, RSET and QUIT
stay aiosmtplib's. Measured with bench/outbox.py against Postfix's smtp-sink: a pipelined
transaction costs a third of aiosmtplib's `sendmail` in CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiosmtplib
from aiosmtplib.email import quote_address

log = logging.getLogger(__name__)

SECURITIES = ("none", "starttls", "tls")
LINE_ENDINGS = re.compile(rb"\r\n|\n|\r(?!\n)")
LEADING_PERIOD = re.compile(rb"(?m)^\.")
# An addr-spec with nothing to parse: what every envelope address the outbox queues looks like.
PLAIN_ADDRESS = re.compile(r'[^\s\x00-\x1f\x7f<>()\[\]\\,;:@"]+@[^\s\x00-\x1f\x7f<>()\[\]\\,;:@"]+')
CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
REPLY_LINES_MAX = 512  # lines of one reply; a server sending more is broken
REPLY_BYTES_MAX = 64 * 1024  # bytes waiting without a line end


@dataclass(frozen=True)
class Destination:
    """Where a message goes: host, port, TLS mode and optional AUTH. Equal ones share
    connections. The password never appears in a repr (logs, tracebacks)."""

    host: str
    port: int
    security: str = "none"
    username: str = ""
    password: str = field(default="", repr=False)

    def __str__(self) -> str:
        return f"{self.host}:{self.port} ({self.security})"


@dataclass(frozen=True)
class ClientOptions:
    local_hostname: str  # said in EHLO
    timeout: float  # per command
    ca_file: str = ""  # trusted CAs for TLS; "" = the system's
    idle_seconds: float = 5.0  # how long an unused connection is kept


@dataclass(frozen=True)
class Delivered:
    """The server took the message for at least one recipient."""

    answer: str  # its reply to the end of DATA
    refused: dict[str, str]  # recipients refused (address → answer)
    temporarily_refused: tuple[str, ...]  # those of them refused with 4xx: worth another try


class SendFailed(Exception):
    """Nothing was delivered. `answer` is what the server said (or what went wrong);
    `temporary` says whether trying later may work; `connection_lost` that the connection
    cannot be used again."""

    def __init__(self, answer: str, *, temporary: bool, connection_lost: bool) -> None:
        super().__init__(answer)
        self.answer = answer
        self.temporary = temporary
        self.connection_lost = connection_lost


def tls_context(ca_file: str) -> ssl.SSLContext:
    """Certificates are always checked: against `ca_file` when given, else the system's."""
    return ssl.create_default_context(cafile=ca_file or None)


def answer_of(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}".strip()


def envelope_address(address: str, encoding: str) -> bytes:
    """`<address>` as MAIL and RCPT carry it. The outbox's addresses are plain addr-specs
    (checked when the mail was made), quoted at once; anything else the way aiosmtplib's own
    `mail`/`rcpt` quote it. A control character is never sent (command injection)."""
    if PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>".encode(encoding)
    encoded = quote_address(address).encode(encoding)
    if CONTROL.search(address.encode(encoding, "surrogateescape")) or CONTROL.search(encoded):
        raise SendFailed(f"refused to send to {address!r}: a control character",
                         temporary=False, connection_lost=False)  # fmt: skip
    return encoded


def data_body(raw: bytes) -> bytes:
    """What follows a 354: CRLF line ends, each line's leading period doubled, the final dot
    (RFC 5321 4.5.2), as aiosmtplib's `data` sends it."""
    crlf = raw.count(b"\r\n")  # mail we made has CRLF line ends only: no rewriting then
    body = raw if raw.count(b"\r") == crlf == raw.count(b"\n") else LINE_ENDINGS.sub(b"\r\n", raw)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    if body.startswith(b".") or b"\n." in body:
        body = LEADING_PERIOD.sub(b"..", body)
    return body + b".\r\n"


Reply = tuple[int, str]
Outcome = tuple[aiosmtplib.SMTPResponse, dict[str, Reply]]  # the end of DATA, refused rcpts


@dataclass(frozen=True)
class _Transaction:
    """One message as Connection.send was given it, with its MAIL encoding and options."""

    mail_from: str
    rcpt_to: Sequence[str]
    raw: bytes
    before_data: Callable[[], Awaitable[None]] | None
    encoding: str
    options: list[str]


def _envelope_refusal(
    mail: Reply, refused: dict[str, Reply], recipients: int, data: Reply
) -> aiosmtplib.SMTPResponseException | None:
    """Why a pipelined envelope cannot carry the message (None: it can), as _stepwise would
    have raised it: the sender refused, every recipient refused, or DATA refused."""
    if mail[0] != 250:
        return aiosmtplib.SMTPSenderRefused(mail[0], mail[1], "")
    if refused and len(refused) == recipients:
        code = min(code for code, _ in refused.values())  # a 4xx among them: try later
        answers = "; ".join(f"{r}: {answer_of(c, t)}" for r, (c, t) in refused.items())
        return aiosmtplib.SMTPResponseException(code, f"every recipient refused ({answers})")
    if data[0] != 354:
        return aiosmtplib.SMTPDataError(data[0], data[1])
    return None


class _Replies(asyncio.Protocol):
    """Reads the replies to a pipelined group, in order, while it holds the transport of an
    aiosmtplib connection (Connection._lent). Losing the connection is passed on to
    aiosmtplib's protocol, which owns the connection, and so is flow control."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner
        self.buffer = bytearray()
        self.lines: list[bytes] = []  # of the reply being read
        self.replies: deque[Reply] = deque()
        self.failure: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None

    async def next(self) -> Reply:
        while not self.replies:
            if self.failure is not None:
                raise self.failure
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        return self.replies.popleft()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            self._split()
        except aiosmtplib.SMTPException as exc:
            self._fail(exc)
        self._wake()

    def _split(self) -> None:
        buffer = self.buffer
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line = bytes(buffer[start : end + 1])
            start = end + 1
            code, more = line[:3], line[3:4] == b"-"
            if not code.isdigit() or line[3:4] not in (b" ", b"-", b"\r", b"\n"):
                raise aiosmtplib.SMTPException(f"malformed reply line {line[:80]!r}")
            self.lines.append(line[4:].strip(b" \t\r\n"))
            if len(self.lines) > REPLY_LINES_MAX:
                raise aiosmtplib.SMTPException("reply too long")
            if not more:
                text = b"\n".join(self.lines).decode("utf-8", "surrogateescape")
                self.replies.append((int(code), text))
                self.lines = []
        del buffer[:start]
        if len(buffer) > REPLY_BYTES_MAX:
            raise aiosmtplib.SMTPException("reply line too long")

    def _fail(self, exc: Exception) -> None:
        if self.failure is None:
            self.failure = exc

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def eof_received(self) -> bool | None:
        self._fail(aiosmtplib.SMTPServerDisconnected("the server closed the connection"))
        self._wake()
        return self.owner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(aiosmtplib.SMTPServerDisconnected(f"Connection lost ({exc})" if exc
                                                     else "Connection lost"))  # fmt: skip
        self._wake()
        self.owner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.owner.pause_writing()

    def resume_writing(self) -> None:
        self.owner.resume_writing()


class Connection:
    """One open SMTP session; messages go over it one after the other."""

    def __init__(self, smtp: aiosmtplib.SMTP, destination: Destination) -> None:
        self.smtp = smtp
        self.destination = destination
        self.idle_since = time.monotonic()
        self.pipelining = smtp.supports_extension("pipelining")

    async def send(
        self,
        mail_from: str,
        rcpt_to: Sequence[str],
        raw: bytes,
        before_data: Callable[[], Awaitable[None]] | None = None,
    ) -> Delivered:
        """One transaction. `before_data` is awaited after the recipients were accepted and
        before the message's last line (the end of DATA), the moment from which the server
        may take the message."""
        encoding, options = self._mail_options(mail_from, rcpt_to, raw)
        transaction = self._pipelined if self.pipelining else self._stepwise
        try:
            response, refused = await transaction(
                _Transaction(mail_from, rcpt_to, raw, before_data, encoding, options)
            )
        except aiosmtplib.SMTPResponseException as exc:
            lost = exc.code == 421
            if not lost:
                await self._reset_quietly()
            raise SendFailed(
                answer_of(exc.code, exc.message), temporary=400 <= exc.code < 500,
                connection_lost=lost,
            ) from None  # fmt: skip
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SendFailed(_describe(exc), temporary=True, connection_lost=True) from None
        except BaseException:  # before_data failed or we were cancelled: leave no envelope
            await self._reset_quietly()
            raise
        return Delivered(
            answer=answer_of(response.code, response.message),
            refused={rcpt: answer_of(code, text) for rcpt, (code, text) in refused.items()},
            temporarily_refused=tuple(r for r, (code, _) in refused.items() if code < 500),
        )

    async def _stepwise(self, t: _Transaction) -> Outcome:
        """Command by command, each waiting for its reply (a server without PIPELINING)."""
        smtp = self.smtp
        await smtp.mail(t.mail_from, options=t.options, encoding=t.encoding)
        refused = await self._recipients(t.rcpt_to, t.encoding)
        if t.before_data is not None:
            await t.before_data()
        return await smtp.data(t.raw), refused

    async def _pipelined(self, t: _Transaction) -> Outcome:
        """MAIL, RCPT… and DATA in one write; after the 354 (and `before_data`) the message
        (RFC 2920). A refusal of the envelope is raised once every reply of the group was read
        (the connection stays in step); anything else that goes wrong closes the connection,
        which also drops a message whose end the server never saw."""
        rcpt_to, before_data = t.rcpt_to, t.before_data
        mail = [b"MAIL FROM:" + envelope_address(t.mail_from, t.encoding),
                *(option.encode("ascii") for option in t.options)]  # fmt: skip
        group = [b" ".join(mail)]
        group += [b"RCPT TO:" + envelope_address(rcpt, t.encoding) for rcpt in rcpt_to]
        group.append(b"DATA")
        body = data_body(t.raw)
        timeout = self.smtp.timeout
        refusal: aiosmtplib.SMTPResponseException | None = None
        code, text = 0, ""
        try:
            with self._lent() as (transport, replies):
                async with asyncio.timeout(timeout):
                    transport.write(b"\r\n".join(group) + b"\r\n")
                    mail_reply = await replies.next()
                    rcpt_replies = [await replies.next() for _ in rcpt_to]
                    data_reply = await replies.next()
                refused = {rcpt: reply for rcpt, reply in zip(rcpt_to, rcpt_replies, strict=True)
                           if reply[0] not in (250, 251)}  # fmt: skip
                refusal = _envelope_refusal(mail_reply, refused, len(rcpt_to), data_reply)
                if refusal is not None:
                    if data_reply[0] == 354:  # taken anyway: end it empty (RFC 2920 3.1)
                        async with asyncio.timeout(timeout):
                            transport.write(b".\r\n")
                            await replies.next()
                else:
                    if before_data is not None:
                        await before_data()
                    async with asyncio.timeout(timeout):
                        transport.write(body)
                        code, text = await replies.next()
        except BaseException:
            self.smtp.close()
            raise
        if refusal is not None:
            raise refusal
        if code != 250:
            raise aiosmtplib.SMTPResponseException(code, text)
        return aiosmtplib.SMTPResponse(code, text), refused

    @contextlib.contextmanager
    def _lent(self) -> Iterator[tuple[asyncio.WriteTransport, _Replies]]:
        """The connection's transport, its replies read by _Replies until given back."""
        protocol = self.smtp.protocol
        transport = protocol.transport if protocol is not None else None
        if transport is None or transport.is_closing():
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        owner = transport.get_protocol()
        replies = _Replies(owner)
        transport.set_protocol(replies)
        try:
            yield transport, replies
        finally:
            transport.set_protocol(owner)

    def _mail_options(
        self, mail_from: str, rcpt_to: Sequence[str], raw: bytes
    ) -> tuple[str, list[str]]:
        smtp = self.smtp
        options = [f"SIZE={len(raw)}"] if smtp.supports_extension("size") else []
        if not raw.isascii() and smtp.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        if all(a.isascii() for a in (mail_from, *rcpt_to)):
            return "ascii", options
        if not smtp.supports_extension("smtputf8"):
            raise SendFailed(
                f"{self.destination.host} does not support SMTPUTF8, needed for an address "
                "that is not ASCII",
                temporary=False, connection_lost=False,
            )  # fmt: skip
        return "utf-8", [*options, "SMTPUTF8"]

    async def _recipients(self, rcpt_to: Sequence[str], encoding: str) -> dict[str, tuple]:
        """RCPT for each; refusals are collected. All refused: the transaction fails."""
        refused: dict[str, tuple[int, str]] = {}
        for rcpt in rcpt_to:
            try:
                await self.smtp.rcpt(rcpt, encoding=encoding)
            except aiosmtplib.SMTPRecipientRefused as exc:
                refused[rcpt] = (exc.code, exc.message)
        if refused and len(refused) == len(rcpt_to):
            code = min(code for code, _ in refused.values())  # a 4xx among them: try later
            answers = "; ".join(f"{r}: {answer_of(c, t)}" for r, (c, t) in refused.items())
            raise aiosmtplib.SMTPResponseException(code, f"every recipient refused ({answers})")
        return refused

    async def _reset_quietly(self) -> None:
        try:
            await self.smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            self.smtp.close()

    async def check(self) -> bool:
        """RSET on a connection taken from the pool: True when it still works."""
        try:
            await self.smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            self.smtp.close()
            return False
        return True

    async def close(self) -> None:
        """QUIT politely; a server that is gone already is fine too."""
        try:
            if self.smtp.is_connected:
                await self.smtp.quit()
        except (aiosmtplib.SMTPException, OSError):
            self.smtp.close()


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {text}"
    return text


async def connect(destination: Destination, options: ClientOptions) -> Connection:
    """Connect, greet, secure (STARTTLS / implicit TLS) and log in, as the destination says."""
    security = destination.security
    if security not in SECURITIES:
        raise SendFailed(f"unknown security {security!r}", temporary=False, connection_lost=True)
    context = tls_context(options.ca_file) if security != "none" else None
    smtp = aiosmtplib.SMTP(
        hostname=destination.host, port=destination.port, local_hostname=options.local_hostname,
        timeout=options.timeout, use_tls=security == "tls", start_tls=security == "starttls",
        tls_context=context, username=destination.username or None,
        password=destination.password or None if destination.username else None,
    )  # fmt: skip
    try:
        await smtp.connect()
        if smtp.is_ehlo_or_helo_needed:
            await smtp.ehlo()
    except aiosmtplib.SMTPResponseException as exc:
        smtp.close()
        failed = f"{destination}: {answer_of(exc.code, exc.message)}"
        raise SendFailed(failed, temporary=exc.code < 500, connection_lost=True) from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        smtp.close()
        failed = f"{destination}: {_describe(exc)}"
        raise SendFailed(failed, temporary=True, connection_lost=True) from None
    return Connection(smtp, destination)


class ConnectionPool:
    """Idle connections by destination, for the next message; closed after options.idle_seconds."""

    def __init__(self, options: ClientOptions) -> None:
        self.options = options
        self._idle: dict[Destination, list[Connection]] = {}
        self.opened = 0  # connections made so far (the bench reports it)

    async def acquire(self, destination: Destination) -> Connection:
        idle = self._idle.get(destination, [])
        while idle:
            connection = idle.pop()
            if await connection.check():
                return connection
        self.opened += 1
        return await connect(destination, self.options)

    def release(self, connection: Connection) -> None:
        if connection.smtp.is_connected:
            connection.idle_since = time.monotonic()
            self._idle.setdefault(connection.destination, []).append(connection)

    async def close_idle(self, *, everything: bool = False) -> None:
        """QUIT the connections idle longer than allowed (all of them with everything=True)."""
        limit = time.monotonic() - self.options.idle_seconds
        closing = []
        for destination, connections in list(self._idle.items()):
            keep = [c for c in connections if not everything and c.idle_since > limit]
            closing += [c for c in connections if c not in keep]
            if keep:
                self._idle[destination] = keep
            else:
                del self._idle[destination]
        if closing:
            await asyncio.gather(*(c.close() for c in closing))
