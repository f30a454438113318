"""aiosmtpd's per-connection introspection (commands, AUTH mechanisms, handler hooks), once.

``SMTP.__init__`` builds these tables on every connection; build_tables builds them once per
(class, handler) and HelpdeskSMTP only binds them per connection.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP


@dataclass(frozen=True)
class Tables:
    """What aiosmtpd's __init__ discovers by introspection, computed once per (class, handler)."""

    smtp_commands: dict[str, str]  # command → attribute name on the protocol
    builtin_auth: tuple[tuple[str, str], ...]  # (mechanism, attribute name on the protocol)
    handler_auth: tuple[tuple[str, Callable[..., Any]], ...]  # (mechanism, bound handler method)
    handle_hooks: dict[str, Callable[..., Any]]
    ehlo_hook_ver: str | None


class BoundCommands(Mapping[str, Callable[..., Any]]):
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


def build_tables(cls: type[SMTP], handler: Any, exclude: Iterable[str] = ()) -> Tables:
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
    return Tables(
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
