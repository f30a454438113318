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
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiosmtplib

log = logging.getLogger(__name__)

SECURITIES = ("none", "starttls", "tls")


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


class Connection:
    """One open SMTP session; messages go over it one after the other."""

    def __init__(self, smtp: aiosmtplib.SMTP, destination: Destination) -> None:
        self.smtp = smtp
        self.destination = destination
        self.idle_since = time.monotonic()

    async def send(
        self,
        mail_from: str,
        rcpt_to: Sequence[str],
        raw: bytes,
        before_data: Callable[[], Awaitable[None]] | None = None,
    ) -> Delivered:
        """One transaction. `before_data` is awaited after the recipients were accepted and
        before DATA, the moment from which the server may take the message."""
        smtp = self.smtp
        encoding, options = self._mail_options(mail_from, rcpt_to, raw)
        try:
            await smtp.mail(mail_from, options=options, encoding=encoding)
            refused = await self._recipients(rcpt_to, encoding)
            if before_data is not None:
                await before_data()
            response = await smtp.data(raw)
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
