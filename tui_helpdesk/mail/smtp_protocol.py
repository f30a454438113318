"""The ingest SMTP protocol: aiosmtpd's SMTP, minus the costs that make it slow and strict.

aiosmtpd does STARTTLS, AUTH, SIZE, SMTPUTF8 and timeouts for us, so we keep it. What we change,
each for a measured reason (issue 3, point 6):

- ``SMTP.__init__`` inspects the protocol class and the handler on every connection to build its
  command, hook and AUTH tables; we build them once per (class, handler) and bind per connection.
- MAIL/RCPT go through ``email._header_value_parser`` for every address; ordinary addresses
  (``<dot-atom@host.name>``) take a regular expression whose result is the same, and anything
  else still goes to aiosmtpd's parser.
- DATA awaited one ``readuntil`` per body line and refused lines over 1,000 octets. Real mail has
  20,000-character headers and 1 MB lines, and the issue says nothing but SIZE may reject a
  message, so we read whole chunks, find the end mark with ``bytes.find`` and undo the
  dot-stuffing in one pass. The bytes handed to the handler are exactly what aiosmtpd would hand
  over for the same input (and, for long lines, what the client meant).
- No per-line logging, and a fixed hostname (no ``socket.getfqdn()`` per connection).
- The inactivity timeout moves a deadline per command instead of replacing a timer.

Command lines keep aiosmtpd's limits and replies; tests/test_smtp_protocol.py sends the same
scripts to plain aiosmtpd and to this class and compares the replies.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import re
import ssl
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiosmtpd import _get_or_new_eventloop
from aiosmtpd.smtp import (
    ALLOWED_BEFORE_STARTTLS,
    BOGUS_LIMIT,
    CALL_LIMIT_DEFAULT,
    DATA_SIZE_DEFAULT,
    MISSING,
    SMTP,
    AuthCallbackType,
    AuthenticatorType,
    TLSSetupException,
    _AuthMechAttr,
    login_always_fail,
    syntax,
)
from aiosmtpd.smtp import __ident__ as AIOSMTPD_IDENT
from aiosmtpd.smtp import log as aiosmtpd_log

__all__ = ["END_OF_DATA", "HelpdeskSMTP", "new_event_loop", "start_server", "unstuff"]

log = logging.getLogger(__name__)

END_OF_DATA = b"\r\n.\r\n"
# How much DATA may sit in the stream buffer before asyncio pauses the socket. aiosmtpd's
# 1,001-byte line limit would pause and resume reading for every 2 KB of a message.
DATA_READ_WINDOW = 1 << 20

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


def unstuff(body: bytes) -> bytes:
    """Undo SMTP dot-stuffing (RFC 5321 4.5.2) of DATA received up to the end mark.

    ``body`` is everything after the 354 reply up to and including the CRLF before ".CRLF".
    aiosmtpd splits on CRLF and drops a leading dot of every line; this is the same in one pass.
    """
    if body.startswith(b"."):
        body = body[1:]
    return body.replace(b"\r\n.", b"\r\n")


@dataclass(frozen=True)
class _Tables:
    """What aiosmtpd's __init__ discovers by introspection, computed once per (class, handler)."""

    smtp_commands: dict[str, str]  # command → attribute name on the protocol
    builtin_auth: tuple[tuple[str, str], ...]  # (mechanism, attribute name on the protocol)
    handler_auth: tuple[tuple[str, Callable[..., Any]], ...]  # (mechanism, bound handler method)
    handle_hooks: dict[str, Callable[..., Any]]
    ehlo_hook_ver: str | None


class _BoundCommands(Mapping[str, Callable[..., Any]]):
    """aiosmtpd's command table, binding a method only when a client uses that command.

    aiosmtpd builds a dict of every bound smtp_* method per connection; most are never used.
    """

    __slots__ = ("_commands", "_protocol")

    def __init__(self, protocol: SMTP, commands: dict[str, str]) -> None:
        self._protocol = protocol
        self._commands = commands

    def __getitem__(self, command: str) -> Callable[..., Any]:
        return getattr(self._protocol, self._commands[command])

    def get(self, command: str, default: Any = None) -> Any:
        name = self._commands.get(command)
        return default if name is None else getattr(self._protocol, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._commands)

    def __len__(self) -> int:
        return len(self._commands)


def _auth_name(name: str, func: object) -> str:
    return getattr(func, "__auth_mechanism_name__", name.replace("auth_", "").replace("__", "-"))


def build_tables(cls: type[SMTP], handler: Any, exclude: Iterable[str] = ()) -> _Tables:
    """Introspect like SMTP.__init__ does, once; the result is shared by every connection."""
    excluded = set(exclude)
    builtin = tuple(
        (_auth_name(name, func), name)
        for name, func in inspect.getmembers(cls)
        if name.startswith("auth_") and callable(func)
    )
    handler_auth = tuple(
        (_auth_name(name, func), func)
        for name, func in inspect.getmembers(handler)
        if name.startswith("auth_")
    )
    hooks = {
        name.replace("handle_", ""): getattr(handler, name)
        for name in dir(handler)
        if name.startswith("handle_")
    }
    return _Tables(
        smtp_commands={
            name.replace("smtp_", ""): name for name in dir(cls) if name.startswith("smtp_")
        },
        builtin_auth=tuple((mech, name) for mech, name in builtin if mech not in excluded),
        handler_auth=tuple((mech, f) for mech, f in handler_auth if mech not in excluded),
        handle_hooks=hooks,
        ehlo_hook_ver=_ehlo_hook_version(hooks.get("EHLO")),
    )


def _ehlo_hook_version(hook: Callable[..., Any] | None) -> str | None:
    if hook is None:
        return None
    count = len(inspect.signature(hook).parameters)
    if count == 4:
        return "old"
    if count == 5:
        return "new"
    raise RuntimeError("Unsupported EHLO Hook")


class HelpdeskSMTP(SMTP):
    """aiosmtpd's SMTP with cached tables, fast ordinary addresses and a chunked DATA reader."""

    def __init__(  # mirrors SMTP.__init__ so every aiosmtpd option still works
        self,
        handler: Any,
        *,
        data_size_limit: int | None = DATA_SIZE_DEFAULT,
        enable_SMTPUTF8: bool = False,
        decode_data: bool = False,
        hostname: str | None = None,
        ident: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        require_starttls: bool = False,
        timeout: float = 300,
        auth_required: bool = False,
        auth_require_tls: bool = True,
        auth_exclude_mechanism: Iterable[str] | None = None,
        auth_callback: AuthCallbackType | None = None,
        command_call_limit: int | dict[str, int] | None = None,
        authenticator: AuthenticatorType | None = None,
        proxy_protocol_timeout: float | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        tables: _Tables | None = None,
    ) -> None:
        self.__ident__ = ident or AIOSMTPD_IDENT
        self.loop = loop if loop else _get_or_new_eventloop()
        asyncio.StreamReaderProtocol.__init__(
            self,
            asyncio.StreamReader(loop=self.loop, limit=self.line_length_limit),
            client_connected_cb=self._cb_client_connected,
            loop=self.loop,
        )
        self.event_handler = handler
        assert data_size_limit is None or isinstance(data_size_limit, int)
        self.data_size_limit = data_size_limit
        self.enable_SMTPUTF8 = enable_SMTPUTF8
        self._decode_data = decode_data
        # aiosmtpd keeps this dict on the class, shared by all sessions; ours is per session.
        self.command_size_limits = collections.defaultdict(lambda: SMTP.command_size_limit)
        self.hostname = hostname or _fqdn()
        self._init_tls(tls_context, require_starttls, auth_required, auth_require_tls)
        self._timeout_duration = timeout
        self._timeout_handle = None
        self._deadline = self._timer_at = 0.0  # see _reset_timeout
        self._tls_handshake_okay = True
        self._original_transport = None
        self.session = None
        self.envelope = None
        self.transport = None
        self._handler_coroutine = None
        self._proxy_timeout = _check_proxy_timeout(proxy_protocol_timeout)
        self._init_auth(authenticator, auth_callback, auth_required)
        tables = tables or build_tables(type(self), handler, auth_exclude_mechanism or ())
        self._bind_tables(tables)
        self._init_call_limit(command_call_limit)

    def _init_tls(
        self,
        tls_context: ssl.SSLContext | None,
        require_starttls: bool,
        auth_required: bool,
        auth_require_tls: bool,
    ) -> None:
        self.tls_context = tls_context
        if tls_context:
            if tls_context.verify_mode not in {ssl.CERT_NONE, ssl.CERT_OPTIONAL}:
                aiosmtpd_log.warning(
                    "tls_context.verify_mode not in {CERT_NONE, CERT_OPTIONAL}; "
                    "this might cause client connection problems"
                )
            elif tls_context.check_hostname:
                aiosmtpd_log.warning(
                    "tls_context.check_hostname == True; "
                    "this might cause client connection problems"
                )
        self.require_starttls = tls_context and require_starttls
        self._tls_protocol = None
        if not auth_require_tls and auth_required:
            warnings.warn(
                "Requiring AUTH while not requiring TLS can lead to security vulnerabilities!",
                stacklevel=3,
            )
            aiosmtpd_log.warning("auth_required == True but auth_require_tls == False")
        self._auth_require_tls = auth_require_tls

    def _init_auth(
        self,
        authenticator: AuthenticatorType | None,
        auth_callback: AuthCallbackType | None,
        auth_required: bool,
    ) -> None:
        if authenticator is not None:
            self._authenticator = authenticator
            self._auth_callback = None
        else:
            self._auth_callback = auth_callback or login_always_fail
            self._authenticator = None
        self._auth_required = auth_required

    def _bind_tables(self, tables: _Tables) -> None:
        """Per connection, only bind the cached names to this instance (a few getattr calls)."""
        # Same precedence as aiosmtpd: a handler's auth_X replaces the built-in mechanism X.
        auth = {
            mech: _AuthMechAttr(getattr(self, name), True) for mech, name in tables.builtin_auth
        }
        for mech, func in tables.handler_auth:
            auth[mech] = _AuthMechAttr(func, False)
        self._auth_methods = auth
        self._handle_hooks = tables.handle_hooks
        self._ehlo_hook_ver = tables.ehlo_hook_ver
        self._smtp_methods = _BoundCommands(self, tables.smtp_commands)

    def _init_call_limit(self, command_call_limit: int | dict[str, int] | None) -> None:
        if command_call_limit is None:
            self._enforce_call_limit = False
        elif isinstance(command_call_limit, int):
            self._enforce_call_limit = True
            self._call_limit_base = {}
            self._call_limit_default = command_call_limit
        elif isinstance(command_call_limit, dict):
            if not all(isinstance(v, int) for v in command_call_limit.values()):
                raise TypeError("All command_call_limit values must be int")
            self._enforce_call_limit = True
            self._call_limit_base = command_call_limit
            self._call_limit_default = command_call_limit.get("*", CALL_LIMIT_DEFAULT)
        else:
            raise TypeError("command_call_limit must be int or Dict[str, int]")

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
        """
        deadline = self.loop.time() + (duration or self._timeout_duration)
        self._deadline = deadline
        if self._timeout_handle is None or deadline < self._timer_at:
            if self._timeout_handle is not None:
                self._timeout_handle.cancel()
            self._arm(deadline)

    def _arm(self, when: float) -> None:
        self._timer_at = when
        self._timeout_handle = self.loop.call_at(when, self._timer_fired)

    def _timer_fired(self) -> None:
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

    # --- DATA ---------------------------------------------------------------------------------

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
        try:
            body = await self._read_data()
        except asyncio.CancelledError:
            self._writer.close()
            raise
        if body is None:
            await self.push("552 Error: Too much mail data")
            self._set_post_data_state()
            return
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


_FQDN: list[str] = []


def _fqdn() -> str:
    """socket.getfqdn() once per process, only when no hostname was configured."""
    if not _FQDN:
        import socket

        _FQDN.append(socket.getfqdn())
    return _FQDN[0]


def _check_proxy_timeout(value: float | None) -> float | None:
    if value is not None:
        if value <= 0:
            raise ValueError("proxy_protocol_timeout must be > 0")
        if value < 3.0:
            aiosmtpd_log.warning("proxy_protocol_timeout < 3.0")
    return value


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed (7-25% more messages per second), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def start_server(
    handler: Any,
    *,
    host: str,
    port: int,
    hostname: str,
    data_size_limit: int,
    loop: asyncio.AbstractEventLoop | None = None,
    timeout: float = 300,
    enable_smtputf8: bool = True,
    backlog: int = 512,
) -> asyncio.Server:
    """Listen on host:port (0 = an ephemeral port; read it from ``server.sockets``).

    The handler is aiosmtpd's: ``handle_RCPT``, ``handle_DATA`` (``envelope.original_content``
    holds the exact bytes after dot-unstuffing) and the other optional hooks.
    """
    loop = loop or asyncio.get_running_loop()
    tables = build_tables(HelpdeskSMTP, handler)

    def protocol() -> HelpdeskSMTP:
        return HelpdeskSMTP(
            handler,
            data_size_limit=data_size_limit,
            enable_SMTPUTF8=enable_smtputf8,
            hostname=hostname,
            timeout=timeout,
            loop=loop,
            tables=tables,
        )

    return await loop.create_server(protocol, host=host, port=port, backlog=backlog)
