"""A session over time on HelpdeskSMTP: STARTTLS, the idle and DATA timeouts, AUTH.

Where aiosmtpd does the same, the same script goes to both and the replies are compared
(smtp_compare.compare), STARTTLS included: the script upgrades the connection with a trustme
certificate the client checks. A real client (smtplib, as a sending MTA uses it) negotiates
STARTTLS, and the server-side session is seen encrypted. Where we differ on purpose (the idle
timeout and the DATA timeout apart; DATA bounds a silence, not the whole message), our server
alone.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from smtp_compare import (
    HOST,
    HOSTNAME,
    SERVER_CERT,
    UPGRADE,
    Step,
    client_context,
    compare,
    envelope,
    message,
    play,
    read_reply,
    serve,
    server_context,
)

from tui_helpdesk.smtp.protocol import HelpdeskSMTP

SILENT_SCRIPTS = {
    "after ehlo": [(b"EHLO c\r\n", 1), (b"", 1)],
    "before ehlo": [(b"", 1)],
    "mid data": [*envelope(), (b"DATA\r\n", 1), (b"Subject: half a message\r\n", 0), (b"", 1)],
}


@pytest.mark.parametrize("script", SILENT_SCRIPTS.values(), ids=SILENT_SCRIPTS.keys())
async def test_a_silent_client_is_closed_after_the_timeout(script: list[Step]) -> None:
    replies, ours = await compare(script, timeout=0.2)
    assert replies[-1] == "<closed>" and ours.handler.received == []


async def test_idle_and_data_timeouts_are_separate() -> None:
    """A silence longer than the idle timeout is fine within DATA, not while a command is due."""
    running = await serve(HelpdeskSMTP, timeout=0.3, data_timeout=60)
    try:
        silent = await play(running.port, [(b"", 1)])
        reader, writer = await asyncio.open_connection(HOST, running.port)
        await read_reply(reader)
        for line in (b"EHLO c\r\n", b"MAIL FROM:<a@b.test>\r\n", b"RCPT TO:<x@y.test>\r\n"):
            writer.write(line)
            await read_reply(reader)
        writer.write(b"DATA\r\nSubject: slow\r\n")
        assert await read_reply(reader) == "354 End data with <CR><LF>.<CR><LF>"
        await asyncio.sleep(0.9)  # three idle timeouts of silence, well within data_timeout
        writer.write(b"\r\nbody\r\n.\r\n")
        assert await read_reply(reader) == "250 2.0.0 OK queued as 1"
        assert await read_reply(reader) == "<closed>"  # then the idle timeout applies again
        writer.close()
    finally:
        running.server.close()
    assert silent[0].startswith("220 ") and silent[1:] == ["<closed>"]


async def test_data_timeout_bounds_a_silence_not_the_whole_message() -> None:
    """aiosmtpd closes a DATA still running after `timeout`; we close one silent that long."""
    running = await serve(HelpdeskSMTP, timeout=60, data_timeout=1.0)
    try:
        reader, writer = await asyncio.open_connection(HOST, running.port)
        await read_reply(reader)
        writer.write(b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nDATA\r\n")
        assert [await read_reply(reader) for _ in range(4)][-1].startswith("354")
        for n in range(6):  # 1.5 s in all, never 1 s without a chunk (room: 0.75 s)
            await asyncio.sleep(0.25)
            writer.write(f"line {n}\r\n".encode())
        writer.write(b".\r\n")
        assert await read_reply(reader) == "250 2.0.0 OK queued as 1"
        writer.close()
    finally:
        running.server.close()
    assert running.handler.received[0].content == b"".join(
        f"line {n}\r\n".encode() for n in range(6)
    )


async def test_timeout_is_reset_by_each_command() -> None:
    running = await serve(HelpdeskSMTP, timeout=1.0)
    try:
        reader, writer = await asyncio.open_connection(HOST, running.port)
        await read_reply(reader)
        for _ in range(6):  # 1.5 s in all, but never 1 s without a command (room: 0.75 s)
            await asyncio.sleep(0.25)
            writer.write(b"NOOP\r\n")
            assert await read_reply(reader) == "250 OK"
        assert await read_reply(reader) == "<closed>"
        writer.close()
    finally:
        running.server.close()


def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any):
    ok = data.login == b"agent" and data.password == b"secret"
    return AuthResult(success=ok, handled=False)


AUTH_SCRIPT = [
    (b"EHLO c\r\n", 1),
    (b"AUTH PLAIN AGFnZW50AHdyb25n\r\n", 1),  # agent / wrong
    (b"AUTH LOGIN YWdlbnQ=\r\n", 1),  # agent, then the password challenge
    (b"c2VjcmV0\r\n", 1),  # secret
    (b"AUTH PLAIN AGFnZW50AHNlY3JldA==\r\n", 1),
    (b"MAIL FROM:<a@b.test>\r\n", 1),
]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_auth_replies_are_the_same() -> None:
    replies, _ = await compare(
        AUTH_SCRIPT, auth_require_tls=False, authenticator=authenticator, auth_required=True
    )
    assert "AUTH LOGIN PLAIN" in replies[1]
    assert [r[:3] for r in replies[2:]] == ["535", "334", "235", "503", "250"]


TLS_SCRIPTS = {
    "required before mail": [
        (b"EHLO c\r\n", 1),
        (b"MAIL FROM:<a@b.test>\r\n", 1),
        (b"HELP\r\n", 1),
        (b"NOOP\r\n", 1),
        (b"STARTTLS now\r\n", 1),
        (b"STARTTLS\r\n", 1),
        (UPGRADE, 0),
        (b"MAIL FROM:<a@b.test>\r\n", 1),  # the session starts again: EHLO first
        (b"EHLO c\r\n", 1),  # no STARTTLS offered twice
        *message(b"Subject: tls\r\n\r\nsecret\r\n.\r\n")[1:],
        (b"QUIT\r\n", 1),
    ],
    "offered, not required": [
        (b"HELP\r\n", 1),
        *envelope(),
        (b"STARTTLS\r\n", 1),
        (UPGRADE, 0),
        (b"EHLO c\r\n", 1),
        (b"DATA\r\n", 1),  # the transaction begun in plain text is gone
        (b"HELP\r\n", 1),
        *message(b"Subject: after\r\n\r\nx\r\n.\r\n")[1:],
    ],
}


@pytest.mark.parametrize("script", TLS_SCRIPTS.values(), ids=TLS_SCRIPTS.keys())
async def test_starttls_gets_the_same_replies_as_aiosmtpd(script: list[Step]) -> None:
    required = script is TLS_SCRIPTS["required before mail"]
    replies, ours = await compare(script, tls_context=server_context(), require_starttls=required)
    ehlo_replies = [reply for reply in replies if reply.startswith(f"250-{HOSTNAME}")]
    assert ["250-STARTTLS" in reply for reply in ehlo_replies] == [True, False]  # once, before
    assert [r.tls for r in ours.handler.received] == ["TLSv1.3"]
    assert ("530 Must issue a STARTTLS command first" in replies) == required


async def test_a_real_client_negotiates_starttls_and_the_mail_is_kept_byte_for_byte() -> None:
    running = await serve(HelpdeskSMTP, tls_context=server_context(), require_starttls=True)
    raw = b"Subject: tls\r\n\r\n..secret with a leading dot\r\n\xff\r\n"
    try:
        peer_cert, version = await asyncio.to_thread(send_over_starttls, running.port, raw)
    finally:
        running.server.close()
    assert ssl.DER_cert_to_PEM_cert(peer_cert).encode() == SERVER_CERT.cert_chain_pems[0].bytes()
    assert version == "TLSv1.3"
    [received] = running.handler.received
    assert received.content == raw and received.tls == "TLSv1.3"


def send_over_starttls(port: int, raw: bytes) -> tuple[bytes, str | None]:
    """smtplib as a sending MTA would: STARTTLS, the certificate checked against the test CA."""
    with smtplib.SMTP(HOST, port, timeout=10) as client:
        client.ehlo()
        code, _ = client.mail("a@b.test")
        assert code == 530  # STARTTLS required first
        client.starttls(context=client_context())
        client.sendmail("a@b.test", ["x@y.test"], raw)
        sock: Any = client.sock
        return sock.getpeercert(binary_form=True), sock.version()
