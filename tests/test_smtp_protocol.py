"""HelpdeskSMTP behaves like aiosmtpd's SMTP on the wire, except that it accepts long lines.

Most tests send the same byte script to a plain aiosmtpd ``SMTP`` and to ``HelpdeskSMTP``
(smtp_compare.compare) and compare every reply and every envelope the handler received. The
others check what a sender sees from our server alone: the EHLO extensions, SIZE and 552, long
lines kept byte for byte; and the pure functions against aiosmtpd's own algorithms.
Sessions over time (STARTTLS, timeouts, AUTH) are in test_smtp_sessions.py.
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Callable
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st
from smtp_compare import (
    HOST,
    HOSTNAME,
    LIMIT,
    RecordingHandler,
    Step,
    compare,
    envelope,
    message,
    play,
    serve,
)

from tui_helpdesk.smtp.data import unstuff
from tui_helpdesk.smtp.protocol import HelpdeskSMTP, start_server


async def test_ehlo_advertises_size_8bitmime_smtputf8_and_a_fixed_hostname() -> None:
    replies, _ = await compare([(b"EHLO client.test\r\n", 1), (b"HELO client.test\r\n", 1)])
    assert replies[0].startswith(f"220 {HOSTNAME} ")
    assert replies[1].split("\n") == [
        f"250-{HOSTNAME}",
        f"250-SIZE {LIMIT}",
        "250-8BITMIME",
        "250-SMTPUTF8",
        "250 HELP",
    ]
    assert replies[2] == f"250 {HOSTNAME}"


COMMAND_SCRIPTS = {
    "helo needs hostname": [(b"HELO\r\n", 1), (b"EHLO\r\n", 1)],
    "mail before helo": [(b"MAIL FROM:<a@b.test>\r\n", 1)],
    "mail syntax": [
        (b"EHLO c\r\n", 1),
        (b"MAIL\r\n", 1),
        (b"MAIL FROM:\r\n", 1),
        (b"MAIL TO:<a@b.test>\r\n", 1),
        (b"MAIL FROM:<a@@b.test>\r\n", 1),
        (b"MAIL FROM:<a@b.test> SIZE=abc\r\n", 1),
        (b"MAIL FROM:<a@b.test> BODY=9BIT\r\n", 1),
        (b"MAIL FROM:<a@b.test> FOO=1\r\n", 1),
        (b"MAIL FROM:<a@b.test> SMTPUTF8=yes\r\n", 1),
        (b"MAIL FROM:<a@b.test> =x\r\n", 1),
    ],
    "mail params after helo": [(b"HELO c\r\n", 1), (b"MAIL FROM:<a@b.test> SIZE=10\r\n", 1)],
    "nested mail": [*envelope(), (b"MAIL FROM:<c@d.test>\r\n", 1)],
    "address forms": [
        (b"EHLO c\r\n", 1),
        (b"MAIL FROM:<>\r\n", 1),
        (b"RSET\r\n", 1),
        (b'MAIL FROM:<"quoted local"@b.test>\r\n', 1),
        (b"RSET\r\n", 1),
        (b"MAIL FROM:<@route.test:a@b.test>\r\n", 1),
        (b"RSET\r\n", 1),
        (b"MAIL FROM: <A.B+tag@Example.COM>  SIZE=5\r\n", 1),
        (b"RSET\r\n", 1),
        (b"MAIL FROM:a@b.test\r\n", 1),
        (b"RSET\r\n", 1),
        (b"MAIL FROM:<a@[127.0.0.1]>\r\n", 1),
        (b"RCPT TO:<=?utf-8?q?x?=@y.test>\r\n", 1),
        (b"RCPT TO:<a@b.test> (comment)\r\n", 1),
        (b"RCPT TO:<a@b.test>\tNOTIFY=NEVER\r\n", 1),
        (b"RCPT TO:<a@b.>\r\n", 1),
    ],
    "rcpt errors": [
        (b"EHLO c\r\n", 1),
        (b"RCPT TO:<x@y.test>\r\n", 1),
        (b"MAIL FROM:<a@b.test>\r\n", 1),
        (b"RCPT\r\n", 1),
        (b"RCPT FROM:<x@y.test>\r\n", 1),
        (b"RCPT TO:<x@@y.test>\r\n", 1),
        (b"RCPT TO:<x@y.test> NOTIFY=NEVER\r\n", 1),
        (b"RCPT TO:<nobody@y.test>\r\n", 1),
        (b"DATA\r\n", 1),
        (b"RCPT TO:<x@y.test>\r\n", 1),
        (b"DATA now\r\n", 1),
    ],
    "rset noop quit": [
        *envelope(),
        (b"RSET\r\n", 1),
        (b"RSET now\r\n", 1),
        (b"DATA\r\n", 1),
        (b"NOOP\r\n", 1),
        (b"NOOP anything\r\n", 1),
        (b"QUIT now\r\n", 1),
        (b"QUIT\r\n", 1),
    ],
    "help vrfy expn": [
        (b"EHLO c\r\n", 1),
        (b"HELP\r\n", 1),
        (b"HELP MAIL\r\n", 1),
        (b"HELP BOGUS\r\n", 1),
        (b"VRFY\r\n", 1),
        (b"VRFY <a@b.test>\r\n", 1),
        (b"VRFY <a@@b>\r\n", 1),
        (b"EXPN list\r\n", 1),
        (b"STARTTLS\r\n", 1),
        (b"AUTH PLAIN\r\n", 1),
    ],
    "bad lines": [
        (b"\r\n", 1),
        (b"\xff\xfe\r\n", 1),
        (b"EHLO c\r\n", 1),
        (b"MAIL FROM:<" + b"a" * 600 + b"@b.test>\r\n", 1),
        (b"NOOP " + b"x" * 2000 + b"\r\n", 1),
        (b"noop\r\n", 1),
        (b"ehlo lower.case\n", 1),
    ],
    "unknown commands close after five": [(b"BOGUS\r\n", 1) for _ in range(5)],
    "smtputf8 and 8bitmime": [
        (b"EHLO c\r\n", 1),
        ("MAIL FROM:<josé@exämple.test> SMTPUTF8 BODY=8BITMIME\r\n".encode(), 1),
        ("RCPT TO:<zoë@y.test>\r\n".encode(), 1),
        (b"DATA\r\n", 1),
        ("Subject: café\r\n\r\nnaïve \xe9 bytes\r\n.\r\n".encode("latin-1", "replace"), 1),
    ],
}


@pytest.mark.parametrize("script", COMMAND_SCRIPTS.values(), ids=COMMAND_SCRIPTS.keys())
async def test_commands_get_the_same_replies_as_aiosmtpd(script: list[Step]) -> None:
    replies, _ = await compare(script)
    assert len(replies) == 1 + sum(count for _, count in script)


async def test_syntax_errors_carry_aiosmtpd_codes() -> None:
    replies, _ = await compare(COMMAND_SCRIPTS["mail syntax"])
    codes = [reply[:3] for reply in replies[2:]]
    assert codes == ["501", "501", "501", "553", "501", "501", "555", "501", "501"]


BODIES = {
    "plain": b"Subject: hi\r\n\r\nhello\r\n.\r\n",
    "dot stuffed": b"Subject: dots\r\n\r\n..leading dot\r\n...two\r\n.\r\n",
    "first line stuffed": b"..first\r\nsecond\r\n.\r\n",
    "empty": b".\r\n",
    "only crlf": b"\r\n.\r\n",
    "bare lf and fake end": b"Subject: lf\n\nline\n.\nmore\n.\r\nstill body\r\n.\r\n",
    "smuggling attempt": b"a\r\n\n.\r\nMAIL FROM:<evil@x>\r\n.\n\r\n.\r\n",
    "bare cr": b"a\r.\r\nb\r\r\n.\r\n",
    "no final crlf before dot": b"abc.\r\ndef\r\n.\r\n",
    "8bit": "Subject: é\r\n\r\n€ ünïcödé \x00 nul\r\n.\r\n".encode(),
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
async def test_data_hands_over_the_same_bytes_as_aiosmtpd(body: bytes) -> None:
    replies, ours = await compare([*message(body), (b"QUIT\r\n", 1)])
    assert replies[-2].startswith("250 2.0.0 OK queued as 1")
    assert len(ours.handler.received) == 1


async def test_data_split_into_tiny_segments_is_the_same() -> None:
    """The end mark and the stuffed dots arrive split across reads."""
    body = b"..a\r\nb\r\n..c\r\n.\r\n"
    script = [*envelope(), (b"DATA\r\n", 1)]
    script += [(body[i : i + 1], 0) for i in range(len(body) - 1)] + [(body[-1:], 1)]
    await compare(script)


async def test_pipelined_messages_on_one_connection() -> None:
    one = b"MAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nDATA\r\n"
    script = [(b"EHLO c\r\n", 1)]
    for n in range(3):
        script.append((one + f"Subject: {n}\r\n\r\n..{n}\r\n.\r\n".encode(), 4))
    script.append((b"MAIL FROM:<a@b.test>\r\nRCPT TO:<x@y.test>\r\nRSET\r\nNOOP\r\nQUIT\r\n", 5))
    replies, ours = await compare(script)
    assert [r.content for r in ours.handler.received] == [
        f"Subject: {n}\r\n\r\n.{n}\r\n".encode() for n in range(3)
    ]
    assert replies[-1] == "221 Bye"


async def test_size_parameter_over_the_limit_is_refused_with_552() -> None:
    replies, _ = await compare(
        [(b"EHLO c\r\n", 1), (f"MAIL FROM:<a@b.test> SIZE={LIMIT + 1}\r\n".encode(), 1)]
    )
    assert replies[-1].startswith("552 ")


@pytest.mark.parametrize("size", [LIMIT - 2, LIMIT, LIMIT + 1, 5 * LIMIT])
async def test_data_over_the_limit_is_refused_with_552_after_the_end_mark(size: int) -> None:
    lines = (b"x" * 78 + b"\r\n") * (size // 80 + 1)
    body = lines[: size - 2] + b"\r\n.\r\n"
    assert len(body) == size + 3
    replies, ours = await compare([*message(body), (b"NOOP\r\n", 1)])
    accepted = size <= LIMIT
    assert replies[-2].startswith("250 " if accepted else "552 ")
    assert replies[-1] == "250 OK"  # the session goes on after a refused message
    assert len(ours.handler.received) == int(accepted)


async def test_lines_longer_than_1000_octets_are_kept_byte_for_byte() -> None:
    """aiosmtpd answers 500 to these; real mail has them, so we keep them exactly."""
    raw = (
        b"Subject: long\r\nX-Long: " + b"h" * 20_000 + b"\r\n\r\n"
        b".starts with a dot\r\n" + b"b" * 1_000_000 + b"\r\nend\r\n"
    )
    ours = await serve(HelpdeskSMTP, data_size_limit=2_000_000)
    plain = await serve(SMTP, data_size_limit=2_000_000)
    try:
        await asyncio.to_thread(send_with_smtplib, ours.port, raw)
        with pytest.raises(smtplib.SMTPDataError) as refused:
            await asyncio.to_thread(send_with_smtplib, plain.port, raw)
    finally:
        ours.server.close()
        plain.server.close()
    assert refused.value.smtp_code == 500
    assert ours.handler.received[0].content == raw


def send_with_smtplib(port: int, raw: bytes) -> None:
    with smtplib.SMTP(HOST, port, timeout=10) as client:
        client.sendmail("a@b.test", ["x@y.test"], raw)


async def test_start_server_binds_an_ephemeral_port_and_uses_the_handler() -> None:
    handler = RecordingHandler()
    server = await start_server(
        handler, host=HOST, port=0, hostname=HOSTNAME, data_size_limit=LIMIT
    )
    port = server.sockets[0].getsockname()[1]
    try:
        for n in range(2):  # the second connection reuses the cached tables
            await asyncio.to_thread(send_with_smtplib, port, f"Subject: {n}\r\n\r\nx".encode())
        replies = await play(port, [*envelope(rcpt="<nobody@y.test>"), (b"QUIT\r\n", 1)])
    finally:
        server.close()
    assert port > 0
    assert [r.content for r in handler.received] == [
        b"Subject: 0\r\n\r\nx\r\n",
        b"Subject: 1\r\n\r\nx\r\n",
    ]
    assert replies[0].startswith(f"220 {HOSTNAME} ")
    assert replies[3] == "550 5.1.1 <nobody@y.test>: no such mailbox"


# --- pure functions, checked against aiosmtpd's own algorithms ----------------------------------


def aiosmtpd_unstuff(body: bytes) -> bytes:
    """aiosmtpd's DATA loop on lines split at CRLF: drop one leading dot of each line."""
    lines = body.split(b"\r\n")
    return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)


@given(st.lists(st.sampled_from([b".", b"\r\n", b"\r", b"\n", b"a", b".."]), max_size=30))
@settings(max_examples=300, deadline=None)
def test_unstuff_matches_aiosmtpd_line_by_line(parts: list[bytes]) -> None:
    body = b"".join(parts) + b"\r\n"
    assert unstuff(body) == aiosmtpd_unstuff(body)


ADDRESS_PARTS = st.sampled_from(
    ["a", "B", "0", ".", "@", "<", ">", " ", "  ", "\t", '"', "(", ")", "[", "]", ":", ",", "-",
     "+", "=", "?", "é", "x.y", "=?utf-8?q?z?=", "SIZE=1", "b.test", "\\"]
)  # fmt: skip


@given(st.lists(ADDRESS_PARTS, max_size=12))
@settings(max_examples=1500, deadline=None)
def test_fast_address_parsing_matches_aiosmtpd(parts: list[str]) -> None:
    arg = "".join(parts).strip()
    for candidate in (arg, "<" + arg):
        assert outcome(PROTOCOL._getaddr, candidate) == outcome(
            lambda a: SMTP._getaddr(PROTOCOL, a), candidate
        )


def outcome(parse: Callable[[str], Any], arg: str) -> object:
    """The result, or the exception type: aiosmtpd's parser raises on some input ("<")."""
    try:
        return parse(arg)
    except Exception as error:
        return type(error)


@pytest.mark.parametrize(
    "arg",
    [
        "<a@b.test>",
        "<a.b-c+d@x-y.example.test> SIZE=10 BODY=8BITMIME",
        "<a@b> x",
        "<a!#$%&'*/^_`{|}~?=@b>",
    ],
)
def test_ordinary_addresses_take_the_fast_path(arg: str, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = SMTP._getaddr(PROTOCOL, arg)
    monkeypatch.setattr(SMTP, "_getaddr", lambda self, arg: pytest.fail("slow path used"))
    assert PROTOCOL._getaddr(arg) == expected


def make_protocol() -> HelpdeskSMTP:
    loop = asyncio.new_event_loop()
    try:
        return HelpdeskSMTP(RecordingHandler(), hostname=HOSTNAME, loop=loop)
    finally:
        loop.close()


PROTOCOL = make_protocol()
