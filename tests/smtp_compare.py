"""Plain aiosmtpd and our HelpdeskSMTP side by side (this module holds no tests).

`compare` sends the same byte script to a plain aiosmtpd ``SMTP`` and to ``HelpdeskSMTP`` (both
on ephemeral 127.0.0.1 ports, same handler class and options) and asserts every reply and every
envelope the handler received are the same. A script step may upgrade the connection to TLS
with a certificate from a trustme CA the client checks.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import trustme
from aiosmtpd.smtp import SMTP, Envelope, Session

from tui_helpdesk.smtp.protocol import HelpdeskSMTP

HOST = "127.0.0.1"
HOSTNAME = "mx.helpdesk.test"
LIMIT = 10_000
CA = trustme.CA()
SERVER_CERT = CA.issue_cert(HOST, HOSTNAME)


def server_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    SERVER_CERT.configure_cert(context)
    return context


def client_context() -> ssl.SSLContext:
    """A client that checks the certificate: trusts only the test CA, checks the name."""
    context = ssl.create_default_context()
    CA.configure_trust(context)
    return context


@dataclass(frozen=True)
class StartTLS:
    """A script step: upgrade the connection to TLS (after the server's 220 to STARTTLS)."""


UPGRADE = StartTLS()
Step = tuple[bytes | StartTLS, int]


@dataclass
class Received:
    mail_from: str | None
    rcpt_tos: list[str]
    mail_options: list[str]
    rcpt_options: list[str]
    smtp_utf8: bool
    content: bytes | None
    tls: str | None  # the server-side session's TLS version, None in plain text


@dataclass
class RecordingHandler:
    """Answers like the ingest handler: 550 for unknown recipients, a custom 250 after DATA."""

    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("nobody@"):
            return f"550 5.1.1 <{address}>: no such mailbox"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                list(envelope.mail_options),
                list(envelope.rcpt_options),
                envelope.smtp_utf8,
                envelope.original_content,
                session.ssl["ssl_object"].version() if session.ssl else None,
            )
        )
        return f"250 2.0.0 OK queued as {len(self.received)}"


@dataclass
class Running:
    port: int
    handler: RecordingHandler
    server: asyncio.Server


ServerFactory = Callable[..., AsyncIterator[Running]]


async def serve(cls: type[SMTP], **options: Any) -> Running:
    handler = RecordingHandler()
    loop = asyncio.get_running_loop()
    kwargs = {"hostname": HOSTNAME, "data_size_limit": LIMIT, "enable_SMTPUTF8": True} | options
    server = await loop.create_server(lambda: cls(handler, loop=loop, **kwargs), host=HOST, port=0)
    return Running(server.sockets[0].getsockname()[1], handler, server)


async def read_reply(reader: asyncio.StreamReader) -> str:
    """One (possibly multi-line) reply, "<closed>" at EOF, "<silent>" if none comes."""
    lines: list[str] = []
    while True:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
        except TimeoutError:
            return "<silent>"
        if not line:
            return "\n".join([*lines, "<closed>"])
        text = line.decode("utf-8", "surrogateescape").rstrip("\r\n")
        lines.append(text)
        if len(text) < 4 or text[3] != "-":
            return "\n".join(lines)


async def play(port: int, script: list[Step]) -> list[str]:
    """Send each chunk, then read that many replies; the greeting is the first reply."""
    reader, writer = await asyncio.open_connection(HOST, port)
    replies = [await read_reply(reader)]
    for chunk, count in script:
        if isinstance(chunk, StartTLS):
            await writer.start_tls(client_context(), server_hostname=HOST)
        else:
            writer.write(chunk)
            await writer.drain()
        replies.extend([await read_reply(reader) for _ in range(count)])
    writer.close()
    return replies


async def compare(script: list[Step], **options: Any) -> tuple[list[str], Running]:
    """Play the script against both servers; assert identical replies and envelopes."""
    plain = await serve(SMTP, **options)
    ours = await serve(HelpdeskSMTP, **options)
    try:
        expected = await play(plain.port, script)
        actual = await play(ours.port, script)
    finally:
        plain.server.close()
        ours.server.close()
    assert actual == expected
    assert ours.handler.received == plain.handler.received
    return actual, ours


def envelope(mail_from: str = "<a@b.test>", rcpt: str = "<x@y.test>") -> list[Step]:
    return [
        (b"EHLO client.test\r\n", 1),
        (f"MAIL FROM:{mail_from}\r\n".encode(), 1),
        (f"RCPT TO:{rcpt}\r\n".encode(), 1),
    ]


def message(body: bytes) -> list[Step]:
    """DATA with the body sent exactly as given (the caller dot-stuffs and terminates it)."""
    return [*envelope(), (b"DATA\r\n", 1), (body, 1)]
