"""The DATA reader: whole chunks, the end mark found with ``bytes.find``, one unstuffing pass.

aiosmtpd awaited one ``readuntil`` per body line and refused lines over 1,000 octets; real mail
has 20,000-character headers and 1 MB lines, and only SIZE may reject a message (issue 3).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, syntax

END_OF_DATA = b"\r\n.\r\n"
# How much DATA may sit in the stream buffer before asyncio pauses the socket. aiosmtpd's
# 1,001-byte line limit would pause and resume reading for every 2 KB of a message.
DATA_READ_WINDOW = 1 << 20


def unstuff(body: bytes) -> bytes:
    """Undo SMTP dot-stuffing (RFC 5321 4.5.2) of DATA received up to the end mark.

    ``body`` is everything after the 354 reply up to and including the CRLF before ".CRLF".
    aiosmtpd splits on CRLF and drops a leading dot of every line; this is the same in one pass.
    """
    if body.startswith(b"."):
        body = body[1:]
    return body.replace(b"\r\n.", b"\r\n")


class SMTPDataReader(SMTP):
    """The DATA command of HelpdeskSMTP: any line length; 552 only above the SIZE limit."""

    receiving: bool
    _data_timeout: float

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """DATA read in chunks; any line length; 552 only above the SIZE limit."""
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        self.receiving = True  # from here to the reply, never closed to make room
        try:
            await self._receive()
        finally:
            self.receiving = False
        self._reset_timeout()  # waiting for a command again

    async def _receive(self) -> None:
        self._reset_timeout(self._data_timeout)
        try:
            body = await self._read_data()
        except asyncio.CancelledError:
            self._writer.close()
            raise
        if body is None:
            await self.push("552 Error: Too much mail data")
            self._set_post_data_state()
            return
        self._reset_timeout(self._data_timeout)  # the commit gets as long as a silence
        await self._deliver(unstuff(body))

    async def _deliver(self, original_content: bytes) -> None:
        assert self.envelope is not None
        content: str | bytes = original_content
        if self._decode_data:
            if self.enable_SMTPUTF8:
                content = original_content.decode("utf-8", errors="surrogateescape")
            else:
                try:
                    content = original_content.decode("ascii", errors="strict")
                except UnicodeDecodeError:
                    await self.push("500 Error: strict ASCII mode")
                    return
        self.envelope.content = content
        self.envelope.original_content = original_content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def _read_data(self) -> bytes | None:
        """Everything up to and including the CRLF before ".CRLF"; None when over the SIZE limit.

        Works on the StreamReader's buffer (as aiosmtpd itself does for STARTTLS), so what
        follows the end mark - pipelined commands - stays there for the command loop.
        """
        reader: Any = self._reader
        saved_limit = reader._limit
        reader._limit = max(saved_limit, DATA_READ_WINDOW)
        try:
            return await self._scan_data(reader)
        finally:
            reader._limit = saved_limit

    async def _scan_data(self, reader: Any) -> bytes | None:
        buffer: bytearray = reader._buffer
        limit = self.data_size_limit
        dropped = 0  # bytes discarded once the message is known to be too large
        offset = 0  # where to resume looking for the end mark
        while True:
            if dropped == 0 and len(buffer) >= 3 and buffer.startswith(b".\r\n"):
                del buffer[:3]  # the empty message: ".\r\n" right after the 354
                return b""
            if len(buffer) >= 3 or dropped:
                end = buffer.find(END_OF_DATA, offset)
                if end >= 0:
                    with memoryview(buffer) as view:  # one copy, not two, of a large message
                        body = bytes(view[: end + 2])
                    del buffer[: end + 5]
                    too_much = limit and dropped + len(body) > limit
                    return None if too_much or dropped else body
                offset = max(0, len(buffer) - 4)
                if limit and len(buffer) > limit + 4:
                    dropped += offset  # keep only a possible partial end mark
                    del buffer[:offset]
                    offset = 0
            await self._wait_for_data(reader)

    async def _wait_for_data(self, reader: Any) -> None:
        if reader._exception is not None:
            raise reader._exception
        if reader._eof or self.transport is None:
            raise ConnectionResetError("connection closed during DATA")
        await reader._wait_for_data("readuntil")
        self._reset_timeout(self._data_timeout)  # data_timeout bounds a silence, not all of DATA
