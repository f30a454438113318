"""The SMTP client's pipelined transaction (RFC 2920), against scripted servers on 127.0.0.1.

A scripted server answers exactly as the test says, in the segments the test chooses (all
replies of a group in one write, as Postfix does, or one byte at a time), and keeps every byte
it read; the sending tests run the same client against aiosmtpd and Postfix's smtp-sink.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import given
from hypothesis import strategies as st

from tui_helpdesk.smtp.client import (
    ClientOptions,
    Connection,
    Destination,
    SendFailed,
    connect,
    data_body,
    envelope_address,
)

EHLO = b"250-scripted.test\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250 8BITMIME\r\n"


@dataclass
class Script:
    """Replies to the envelope group (MAIL, RCPT…, DATA) and to the end of the message."""

    group: list[bytes]
    final: bytes = b"250 2.0.0 queued as 42\r\n"
    dribble: bool = False  # send replies a byte at a time
    close_after_group: bool = False
    read: bytearray = field(default_factory=bytearray)  # everything after EHLO


async def _say(writer: asyncio.StreamWriter, data: bytes, dribble: bool) -> None:
    for piece in [data[i : i + 1] for i in range(len(data))] if dribble else [data]:
        writer.write(piece)
        await writer.drain()


@asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[int]:
    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"220 scripted.test ESMTP\r\n")
            await reader.readuntil(b"\r\n")  # EHLO
            writer.write(EHLO)
            while True:
                line = await reader.readuntil(b"\r\n")
                script.read += line
                if line.startswith((b"RSET", b"QUIT")):
                    writer.write(b"221 bye\r\n" if line.startswith(b"QUIT") else b"250 ok\r\n")
                    await writer.drain()
                    if line.startswith(b"QUIT"):
                        return
                    continue
                if not line.startswith(b"DATA"):
                    continue
                if script.close_after_group:
                    writer.close()
                    return
                await _say(writer, b"".join(script.group), script.dribble)
                if not script.group[-1].startswith(b"354"):
                    continue
                while (body_line := await reader.readuntil(b"\r\n")) != b".\r\n":
                    script.read += body_line
                script.read += body_line
                await _say(writer, script.final, script.dribble)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def _connection(port: int) -> Connection:
    connection = await connect(Destination("127.0.0.1", port), ClientOptions("hd.test", 5))
    assert connection.pipelining
    return connection


OK = [b"250 2.1.0 sender ok\r\n", b"250 2.1.5 rcpt ok\r\n", b"354 go ahead\r\n"]
MESSAGE = b"Subject: hello\r\n\r\n.starts with a dot\r\nplain\r\n.\r\n..two\r\n"


@pytest.mark.parametrize("dribble", [False, True], ids=["one-segment", "byte-by-byte"])
async def test_the_envelope_goes_in_one_write_and_the_message_after_354(dribble: bool) -> None:
    script = Script(group=OK, dribble=dribble)
    async with scripted(script) as port:
        connection = await _connection(port)
        waited: list[bytes] = []

        async def before_data() -> None:  # the server has the envelope, not the message
            waited.append(bytes(script.read))

        done = await connection.send("support@acme.test", ["carol@customer.test"], MESSAGE,
                                     before_data)  # fmt: skip
        await connection.close()
    group = b"MAIL FROM:<support@acme.test> SIZE=%d\r\nRCPT TO:<carol@customer.test>\r\nDATA\r\n"
    assert waited == [group % len(MESSAGE)]
    assert done.answer == "250 2.0.0 queued as 42" and done.refused == {}
    stuffed = b"Subject: hello\r\n\r\n..starts with a dot\r\nplain\r\n..\r\n...two\r\n.\r\n"
    assert bytes(script.read) == waited[0] + stuffed + b"QUIT\r\n"


async def test_messages_follow_one_another_on_the_connection() -> None:
    script = Script(group=OK)
    async with scripted(script) as port:
        connection = await _connection(port)
        for n in range(3):
            done = await connection.send("a@acme.test", ["b@customer.test"], b"n: %d\r\n" % n)
            assert done.answer.startswith("250")
        await connection.close()
    assert script.read.count(b"MAIL FROM:") == 3 and b"RSET" not in script.read


async def test_a_multiline_reply_is_one_reply() -> None:
    group = [b"250-first\r\n250 second\r\n", OK[1], OK[2]]
    script = Script(group=group, final=b"250-accepted\r\n250 queued\r\n")
    async with scripted(script) as port:
        connection = await _connection(port)
        done = await connection.send("a@acme.test", ["b@customer.test"], b"x\r\n")
    assert done.answer == "250 accepted queued"


async def test_one_refused_recipient_of_two_still_gets_the_message() -> None:
    group = [OK[0], b"550 5.1.1 no such user\r\n", OK[1], OK[2]]
    script = Script(group=group)
    async with scripted(script) as port:
        connection = await _connection(port)
        done = await connection.send("a@acme.test", ["gone@x.test", "b@x.test"], b"x\r\n")
    assert done.refused == {"gone@x.test": "550 5.1.1 no such user"}
    assert done.temporarily_refused == ()
    assert script.read.endswith(b"x\r\n.\r\n")


async def test_every_recipient_refused_ends_a_354_empty_and_fails() -> None:
    """RFC 2920 3.1: a server may start DATA although no recipient was taken; the client
    then ends it at once (a lone dot), and the message itself is never sent."""
    group = [OK[0], b"450 4.2.0 mailbox busy\r\n", b"354 go ahead anyway\r\n"]
    script = Script(group=group, final=b"554 5.5.1 no valid recipients\r\n")
    async with scripted(script) as port:
        connection = await _connection(port)
        with pytest.raises(SendFailed) as failed:
            await connection.send("a@acme.test", ["b@x.test"], b"secret body\r\n")
        assert connection.smtp.is_connected  # still in step: the next message may follow
        await connection.close()
    assert failed.value.temporary and not failed.value.connection_lost
    assert "every recipient refused" in failed.value.answer and "450" in failed.value.answer
    assert b"secret body" not in script.read
    assert b"DATA\r\n.\r\nRSET\r\n" in script.read


@pytest.mark.parametrize(
    ("group", "temporary"),
    [
        ([b"451 4.3.0 try later\r\n", b"503 5.5.1 no sender\r\n", b"503 5.5.1 no rcpt\r\n"], True),
        ([OK[0], OK[1], b"554 5.3.4 too big\r\n"], False),
    ],
    ids=["sender-refused", "data-refused"],
)
async def test_a_refused_envelope_fails_and_resets(group: list[bytes], temporary: bool) -> None:
    script = Script(group=group)
    async with scripted(script) as port:
        connection = await _connection(port)
        with pytest.raises(SendFailed) as failed:
            await connection.send("a@acme.test", ["b@x.test"], b"body\r\n")
        await connection.close()
    assert failed.value.temporary is temporary and not failed.value.connection_lost
    assert failed.value.answer == b" ".join(group[0 if temporary else 2].split()).decode()
    assert script.read.endswith(b"RSET\r\nQUIT\r\n") and b"body" not in script.read


async def test_a_refusal_after_the_message_is_the_servers_answer() -> None:
    script = Script(group=OK, final=b"452 4.3.1 out of space\r\n")
    async with scripted(script) as port:
        connection = await _connection(port)
        with pytest.raises(SendFailed) as failed:
            await connection.send("a@acme.test", ["b@x.test"], b"body\r\n")
    assert failed.value.answer == "452 4.3.1 out of space" and failed.value.temporary


async def test_when_before_data_fails_the_message_is_never_ended() -> None:
    """The duplicate bound waits before the end of DATA; if that wait fails, the connection is
    dropped mid-DATA, so the server discards the transaction (RFC 5321 4.1.1.4)."""
    script = Script(group=OK)
    async with scripted(script) as port:
        connection = await _connection(port)

        async def before_data() -> None:
            raise RuntimeError("the database is away")

        with pytest.raises(RuntimeError):
            await connection.send("a@acme.test", ["b@x.test"], b"body\r\n", before_data)
        assert not connection.smtp.is_connected
        await asyncio.sleep(0.05)
    assert b"body" not in script.read and not script.read.endswith(b".\r\n")


async def test_a_server_that_hangs_up_mid_group_is_a_lost_connection() -> None:
    script = Script(group=OK, close_after_group=True)
    async with scripted(script) as port:
        connection = await _connection(port)
        with pytest.raises(SendFailed) as failed:
            await connection.send("a@acme.test", ["b@x.test"], b"body\r\n")
    assert failed.value.temporary and failed.value.connection_lost
    assert not connection.smtp.is_connected


async def test_a_server_that_never_answers_times_out() -> None:
    script = Script(group=[])  # reads the group, says nothing

    async with scripted(script) as port:
        connection = await connect(Destination("127.0.0.1", port), ClientOptions("hd.test", 0.3))
        with pytest.raises(SendFailed) as failed:
            await connection.send("a@acme.test", ["b@x.test"], b"body\r\n")
    assert failed.value.temporary and failed.value.connection_lost


def test_envelope_addresses_are_quoted_as_aiosmtplib_quotes_them() -> None:
    assert envelope_address("carol@customer.test", "ascii") == b"<carol@customer.test>"
    assert envelope_address("Carol <carol@customer.test>", "ascii") == b"<carol@customer.test>"
    assert envelope_address("jürgen@beispiel.test", "utf-8") == "<jürgen@beispiel.test>".encode()
    for smuggled in ("a@b.test>\r\nRCPT TO:<evil@x.test", "a\x00@b.test"):
        with pytest.raises(SendFailed):
            envelope_address(smuggled, "ascii")


@given(
    st.binary(max_size=300)
    | st.lists(st.sampled_from([b".", b"\r", b"\n", b"a", b"\r\n"])).map(b"".join)
)
def test_the_body_is_what_aiosmtplib_data_sends(raw: bytes) -> None:
    expected = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(raw)) + b".\r\n"
    assert data_body(raw) == expected
