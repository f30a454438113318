"""Shared builders for the sending tests (this module holds no tests): a capturing aiosmtpd
server on 127.0.0.1, a TLS HTTPS receiver, jobs queued through outbox.enqueue, a settable clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.server
import itertools
import json
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import trustme
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from sqlalchemy import select

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import OutboxJob
from tui_helpdesk.records import UserRecord
from tui_helpdesk.services import mailboxes, outbox
from tui_helpdesk.worker.sender import OutboxSender

_numbers = itertools.count(1)
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    login: str | None

    @property
    def message_id(self) -> str:
        for line in self.data.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                return line.split(b":", 1)[1].strip().decode()
        return ""


@dataclass
class CaptureServer:
    """aiosmtpd on an ephemeral 127.0.0.1 port in a thread of its own; keeps what it accepts.

    `answers` are replies given to DATA before any mail is accepted ("451 4.3.0 busy"),
    `pause` a wait per DATA (to catch a sender mid-batch), `tls`, `implicit_tls` and
    `logins` (user → password) turn on STARTTLS (required), SMTPS and AUTH. It offers
    PIPELINING, as Postfix does, so the sender writes MAIL, RCPT and DATA at once (aiosmtpd
    reads them in turn); `pipelining=False` makes the sender go command by command.
    """

    answers: list[str] = field(default_factory=list)
    pause: float = 0.0
    tls: ssl.SSLContext | None = None
    implicit_tls: bool = False
    logins: dict[str, str] | None = None
    pipelining: bool = True
    received: list[Received] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # what aiosmtpd does itself when there is no hook
        if not self.pipelining:
            return responses
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.pause:
            await asyncio.sleep(self.pause)
        with self._lock:
            if self.answers:
                return self.answers.pop(0)
            login = session.auth_data.login.decode() if session.auth_data else None
            self.received.append(Received(envelope.mail_from, tuple(envelope.rcpt_tos),
                                          envelope.original_content, login))  # fmt: skip
        return "250 2.0.0 OK captured"

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                      data: Any) -> AuthResult:  # fmt: skip
        good = isinstance(data, LoginPassword) and self.logins is not None and (
            self.logins.get(data.login.decode()) == data.password.decode())  # fmt: skip
        return AuthResult(success=good, handled=False, auth_data=data if good else None)

    def _protocol(self) -> SMTP:
        options: dict[str, Any] = {"hostname": "capture.test"}
        if self.tls is not None and not self.implicit_tls:
            options.update(tls_context=self.tls, require_starttls=True)
        if self.logins is not None:  # (aiosmtpd sees STARTTLS only; SMTPS is TLS all along)
            starttls = self.tls is not None and not self.implicit_tls
            options.update(authenticator=self._authenticate, auth_required=True,
                           auth_require_tls=starttls)  # fmt: skip
        return SMTP(self, **options)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        ssl_context = self.tls if self.implicit_tls else None
        server = loop.run_until_complete(
            loop.create_server(self._protocol, "127.0.0.1", 0, ssl=ssl_context)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()

    def __enter__(self) -> CaptureServer:
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def message_ids(self) -> Counter[str]:
        with self._lock:
            return Counter(r.message_id for r in self.received)


class Clock:
    """A clock the test moves by hand: the sender's `now`, never the wall's."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def wait_for(condition: Callable[[], Any], *, timeout: float = 60, what: str = "") -> Any:
    """Poll until `condition()` is truthy (returned) or fail after a generous timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or condition}")


def build_reply(number: int | None = None, *, size: int = 0) -> tuple[bytes, str]:
    """An outgoing message as exact CRLF bytes with a unique Message-ID."""
    n = number if number is not None else next(_numbers)
    message_id = f"<out{n}.{id(_numbers)}@acme.test>"
    filler = max(0, size - 330) // 72
    body = "Thanks, we are on it.\r\n" + ("y" * 70 + "\r\n") * filler
    lines = ["From: Support <support@acme.test>", "To: carol@customer.test",
             f"Subject: Re: Printer on fire [HD#{n}]", f"Message-ID: {message_id}",
             "Date: Tue, 01 Dec 2026 09:00:00 +0000", "MIME-Version: 1.0",
             "Content-Type: text/plain; charset=utf-8", ""]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n" + body).encode(), message_id


def queue_replies(
    db: Database, actor: UserRecord, address: str, count: int, *,
    rcpts: tuple[str, ...] = ("carol@customer.test",), not_before: datetime = T0, size: int = 0,
) -> list[tuple[int, str]]:  # fmt: skip
    """`count` jobs from the mailbox through outbox.enqueue; (job id, Message-ID) each."""
    made = []
    with db.write() as session:
        mailbox = mailboxes.load(session, actor, address)
        for _ in range(count):
            raw, message_id = build_reply(size=size)
            job = outbox.enqueue(
                session, mailbox=mailbox, kind="reply", mail_from=mailbox.email_address,
                rcpt_to=list(rcpts), raw=raw, not_before=not_before,
            )  # fmt: skip
            session.flush()
            made.append((job.id, message_id))
    return made


def jobs(db: Database) -> list[OutboxJob]:
    with db.read() as session:
        return list(session.scalars(select(OutboxJob).order_by(OutboxJob.id)))


def statuses(db: Database) -> Counter[str]:
    return Counter(job.status for job in jobs(db))


def sending_settings(settings: Settings, port: int, **outbox_values: Any) -> Settings:
    """Settings whose platform relay is the capture server on `port`; quick polling."""
    return settings.replace(
        outbound={"relay_host": "127.0.0.1", "relay_port": port},
        outbox={"poll_interval_seconds": 0.02, **outbox_values},
    )


@contextmanager
def running_sender(settings: Settings, **kwargs: Any) -> Iterator[OutboxSender]:
    sender = OutboxSender(settings, name="test-sender", **kwargs)
    sender.start()
    try:
        yield sender
    finally:
        sender.stop(10)


# --- TLS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalCA:
    """A CA made by trustme, its file for [outbound] ca_file, and a server context for
    127.0.0.1."""

    ca_file: str
    server_context: ssl.SSLContext


def make_ca(directory: Any) -> LocalCA:
    ca = trustme.CA()
    path = directory / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return LocalCA(str(path), context)


# --- a webhook receiver ------------------------------------------------------------------------


@dataclass
class WebhookReceiver:
    """An HTTPS server (stdlib http.server, TLS from the test CA) on 127.0.0.1 that checks
    each POST's signature with `secret` and keeps the good ones; `status` answers them."""

    context: ssl.SSLContext
    secret: str
    status: int = 204
    received: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0

    def __enter__(self) -> WebhookReceiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(
                    receiver.secret.encode(), body, hashlib.sha256).hexdigest()  # fmt: skip
                good = hmac.compare_digest(expected, self.headers["X-Helpdesk-Signature"] or "")
                if good:
                    receiver.received.append({
                        "body": json.loads(body), "delivery": self.headers["X-Helpdesk-Delivery"],
                        "event": self.headers["X-Helpdesk-Event"],
                    })  # fmt: skip
                else:
                    receiver.bad_signatures += 1
                self.send_response(receiver.status if good else 401)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = self.context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/hooks/helpdesk"
