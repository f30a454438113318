"""The command side of HelpdeskSMTP: replies, the inactivity timeout, the command loop, addresses.

Same replies as aiosmtpd, minus the per-line logging, one timer per connection instead of one
per command, and ordinary addresses parsed by a regular expression (issue 3, point 6).
"""

from __future__ import annotations

import asyncio
import collections
import re
import warnings
from typing import Any

from aiosmtpd.smtp import (
    ALLOWED_BEFORE_STARTTLS,
    BOGUS_LIMIT,
    MISSING,
    SMTP,
    TLSSetupException,
    syntax,
)
from aiosmtpd.smtp import log as aiosmtpd_log

# An ordinary address: <dot-atom@host.name> with ASCII letters, digits and hyphens in the host,
# optionally followed by one space and parameters. For these, email._header_value_parser returns
# the address text unchanged and the parameters without the separating space; anything else
# (quoted local parts, literals, comments, routes, <>, odd spacing, non-ASCII, "=?") goes to it.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ORDINARY_ADDRESS = re.compile(
    rf"<(?P<addr>{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>"
    r"(?:\Z| (?P<rest>[^\s(].*)\Z)",
    re.DOTALL,
)


class SMTPCommandLoop(SMTP):
    """aiosmtpd's command handling with its replies; HelpdeskSMTP.__init__ sets the state."""

    _deadline: float
    _timer_at: float
    active_at: float
    _proxy_timeout: float | None
    _enforce_call_limit: bool
    _call_limit_base: dict[str, int]
    _call_limit_default: int

    # --- replies -------------------------------------------------------------------------------

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname: str) -> None:
        """aiosmtpd's EHLO, its multi-line reply sent in one write instead of one per line."""
        if not hostname:
            await self.push("501 Syntax: EHLO hostname")
            return
        self._set_rset_state()
        assert self.session is not None
        self.session.extended_smtp = True
        response = self._ehlo_lines()
        if hasattr(self, "ehlo_hook"):
            warnings.warn(
                "Use handler.handle_EHLO() instead of .ehlo_hook()",
                DeprecationWarning,
                stacklevel=2,
            )
            await self.ehlo_hook()
        if self._ehlo_hook_ver is None:
            self.session.host_name = hostname
            response.append("250 HELP")
        elif self._ehlo_hook_ver == "old":
            await self._push_lines(response)
            response = [await self._call_handler_hook("EHLO", hostname)]
        else:
            response.append("250 HELP")
            response = await self._call_handler_hook("EHLO", hostname, response)
        await self._push_lines(response)

    def _ehlo_lines(self) -> list[str]:
        response = ["250-" + self.hostname]
        if self.data_size_limit:
            response.append(f"250-SIZE {self.data_size_limit}")
            self.command_size_limits["MAIL"] += 26
        if not self._decode_data:
            response.append("250-8BITMIME")
        if self.enable_SMTPUTF8:
            response.append("250-SMTPUTF8")
            self.command_size_limits["MAIL"] += 10
        if self.tls_context and not self._tls_protocol:
            response.append("250-STARTTLS")
        if not self._auth_require_tls or self._tls_protocol:
            response.append("250-AUTH " + " ".join(sorted(self._auth_methods.keys())))
        return response

    async def _push_lines(self, lines: list[str]) -> None:
        encoding = "utf-8" if self.enable_SMTPUTF8 else "ascii"
        self._writer.write(b"".join(line.encode(encoding) + b"\r\n" for line in lines))
        await self._writer.drain()

    async def push(self, status: str | bytes) -> None:
        """aiosmtpd's push without the per-reply debug log."""
        if isinstance(status, str):
            status = status.encode("utf-8" if self.enable_SMTPUTF8 else "ascii")
        self._writer.write(status + b"\r\n")
        await self._writer.drain()

    # --- the inactivity timeout ----------------------------------------------------------------

    def _reset_timeout(self, duration: float | None = None) -> None:
        """aiosmtpd's inactivity timeout, without a new timer for every command.

        A command only moves the deadline. The one timer, when it fires, closes the connection
        (aiosmtpd's _timeout_cb) if the deadline has not moved since it was set, and otherwise
        waits for the new one; a deadline earlier than the timer (a shorter duration) re-arms.
        Called with no duration, it is the idle timeout (waiting for a command); DATA passes
        its own. `active_at` tells the session limits how long a session has been silent.
        """
        now = self.loop.time()
        self.active_at = now
        deadline = now + (duration or self._timeout_duration)
        self._deadline = deadline
        if self._timeout_handle is None or deadline < self._timer_at:
            if self._timeout_handle is not None:
                self._timeout_handle.cancel()
            self._arm(deadline)

    def _arm(self, when: float) -> None:
        self._timer_at = when
        self._timeout_handle = self.loop.call_at(when, self._timer_fired)

    def _timer_fired(self) -> None:
        if self.transport is None:  # the session ended while the timer was armed
            return
        if self._deadline > self._timer_at:
            self._arm(self._deadline)
        else:
            self._timeout_cb()

    # --- the command loop ----------------------------------------------------------------------

    async def _handle_client(self) -> None:
        """aiosmtpd's command loop with the same replies, minus two log calls per line."""
        if self._proxy_timeout is not None and not await self._proxy_handshake():
            return
        await self.push(f"220 {self.hostname} {self.__ident__}")
        call_limit: dict[str, int] = (
            collections.defaultdict(lambda: self._call_limit_default, self._call_limit_base)
            if self._enforce_call_limit
            else {}
        )
        bogus = [BOGUS_LIMIT]
        while self.transport is not None:
            try:
                line = await self._read_command_line()
                if line is not None:
                    await self._run_command(line, call_limit, bogus)
            except (asyncio.CancelledError, ConnectionResetError):
                self._writer.close()
                raise
            except Exception as error:
                await self._reply_to_error(error)

    async def _proxy_handshake(self) -> bool:
        """The PROXY protocol prologue, exactly as aiosmtpd runs it."""
        from aiosmtpd.proxy_protocol import get_proxy

        assert self.session is not None
        self._reset_timeout(self._proxy_timeout)
        self.session.proxy_data = await get_proxy(self._reader)
        status: Any = False
        if self.session.proxy_data:
            status = await self._call_handler_hook("PROXY", self.session.proxy_data)
        if status is MISSING or not status:
            assert self.transport is not None
            self.transport.close()
            return False
        self._reset_timeout()
        return True

    async def _read_command_line(self) -> bytes | None:
        """One command line; a line over the limit is drained and answered 500, as aiosmtpd does."""
        try:
            return await self._reader.readuntil()
        except asyncio.LimitOverrunError as error:
            await self._reader.read(error.consumed)
            while True:
                try:
                    await self._reader.readuntil()
                    break
                except asyncio.LimitOverrunError as more:
                    await self._reader.read(more.consumed)
            await self.push("500 Command line too long")
            return None

    def _decode_command(self, line: bytes) -> tuple[str, str | None] | str:
        """(command, argument), or the error reply aiosmtpd gives for an undecodable line."""
        command_bytes, _, arg_bytes = line.partition(b" ")
        try:
            command = command_bytes.upper().decode("ascii")
        except UnicodeDecodeError:
            return "500 Error: bad syntax"
        if not arg_bytes:
            return command, None
        arg_bytes = arg_bytes.strip()
        if self.enable_SMTPUTF8:
            return command, str(arg_bytes, encoding="utf-8", errors="surrogateescape")
        try:
            return command, str(arg_bytes, encoding="ascii", errors="strict")
        except UnicodeDecodeError:
            return "500 Error: strict ASCII mode"

    def _refusal(self, line: bytes, command: str) -> str | None:
        """Size, TLS and STARTTLS checks aiosmtpd makes before looking the command up."""
        assert self.session is not None
        limit = (
            self.command_size_limits[command]
            if self.session.extended_smtp
            else self.command_size_limit
        )
        if len(line) > limit:
            return "500 Command line too long"
        if not self._tls_handshake_okay and command != "QUIT":
            return "554 Command refused due to lack of security"
        if (
            self.require_starttls
            and not self._tls_protocol
            and command not in ALLOWED_BEFORE_STARTTLS
        ):
            return "530 Must issue a STARTTLS command first"
        return None

    async def _run_command(self, line: bytes, call_limit: dict[str, int], bogus: list[int]) -> None:
        line = line.rstrip(b"\r\n")
        if not line:
            await self.push("500 Error: bad syntax")
            return
        decoded = self._decode_command(line)
        if isinstance(decoded, str):
            await self.push(decoded)
            return
        command, arg = decoded
        refusal = self._refusal(line, command)
        if refusal is not None:
            await self.push(refusal)
            return
        if self._enforce_call_limit and not await self._spend_call(command, call_limit):
            return
        method = self._smtp_methods.get(command)
        if method is None:
            await self._unrecognised(command, bogus)
            return
        self._reset_timeout()
        await method(arg)

    async def _spend_call(self, command: str, call_limit: dict[str, int]) -> bool:
        budget = call_limit[command]
        if budget < 1:
            await self.push(f"421 4.7.0 {command} sent too many times")
            assert self.transport is not None
            self.transport.close()
            return False
        call_limit[command] = budget - 1
        return True

    async def _unrecognised(self, command: str, bogus: list[int]) -> None:
        bogus[0] -= 1
        if bogus[0] < 1:
            await self.push("502 5.5.1 Too many unrecognized commands, goodbye.")
            assert self.transport is not None
            self.transport.close()
            return
        await self.push(f'500 Error: command "{command}" not recognized')

    async def _reply_to_error(self, error: Exception) -> None:
        """aiosmtpd's answer to an exception raised by a command or a handler hook."""
        status: str | None = None
        try:
            status = await self.handle_exception(error)
        except Exception as inner:
            try:
                peer = self.session.peer if self.session else None
                aiosmtpd_log.exception("%r Exception in handle_exception()", peer)
                status = f"500 Error: ({inner.__class__.__name__}) {inner}"
            except Exception:
                status = "500 Error: Cannot describe error"
        finally:
            if isinstance(error, TLSSetupException):
                assert self.transport is not None
                self.transport.close()
                self.connection_lost(error)
            else:
                await self.push(status)  # type: ignore[arg-type]

    # --- addresses ----------------------------------------------------------------------------

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """Ordinary <local@host> addresses by regex; everything else by aiosmtpd's parser."""
        match = _ORDINARY_ADDRESS.match(arg) if arg else None
        if match is None or "=?" in arg:  # "=?" may start an RFC 2047 word the parser decodes
            return super()._getaddr(arg)
        address = match.group("addr")
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, match.group("rest") or ""
