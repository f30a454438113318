"""How many SMTP sessions may be open: overall and per client address (issue 11, point 4).

A worker that faces the internet on port 25 meets clients that connect and say nothing, or
open hundreds of connections at once. Without a cap they hold sockets, memory and file
descriptors until the idle timeout; with only a cap, they hold every slot and a real sender
gets nothing but 421. So:

- per client address (IPv4 address, IPv6 /64: one host owns a whole /64) at most
  `per_client` sessions; the next one from there gets ``421 4.7.0 too many connections`` and
  is closed. Other addresses are not affected.
- overall at most `total` sessions. When they are all taken, a new client takes the place of
  the session that has waited for a command the longest, if it has waited at least
  `idle_when_full` seconds (Postfix's "stress" timeout does the same job: 10 s instead of 300
  when the server is full); that session gets ``421 4.4.2 … idle too long`` and is closed.
  Sessions in the middle of DATA or waiting for their commit are never closed this way. If no
  session has waited that long, the new client gets the 421 and its MTA retries later.

0 means no cap. Checking costs two dict operations per connection; only a full server scans
its sessions for the longest idle one.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Protocol

TOO_MANY = b"421 4.7.0 too many connections\r\n"
TOO_MANY_FROM_CLIENT = b"421 4.7.0 too many connections from your address\r\n"


class LimitedSession(Protocol):
    """What the limits need of a session (HelpdeskSMTP is one)."""

    active_at: float  # loop time of its last command or DATA chunk
    receiving: bool  # in DATA or waiting for its commit: never closed to make room

    def close_idle(self) -> None:
        """Say 421 and close (the limits have already forgotten the session)."""


def client_key(peer: Any) -> str:
    """The address a cap counts: the IPv4 address, or the /64 of an IPv6 address."""
    if not isinstance(peer, tuple) or not peer:
        return str(peer)
    host = peer[0]
    if ":" not in host:
        return host
    try:
        return str(ipaddress.IPv6Network(f"{host.partition('%')[0]}/64", strict=False))
    except ValueError:
        return host


class SessionLimits:
    """The open sessions of one listener; admit() on connect, release() when it ends."""

    def __init__(self, *, total: int, per_client: int, idle_when_full: float) -> None:
        self.total = total
        self.per_client = per_client
        self.idle_when_full = idle_when_full
        self._open: dict[LimitedSession, str] = {}
        self._per_client: dict[str, int] = {}
        self.refused = 0
        self.closed_idle = 0

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, session: LimitedSession, peer: Any, now: float) -> bytes | None:
        """None when the session may go on, else the 421 line to send before closing it."""
        key = client_key(peer)
        count = self._per_client.get(key, 0)
        if self.per_client and count >= self.per_client:
            self.refused += 1
            return TOO_MANY_FROM_CLIENT
        if self.total and len(self._open) >= self.total and not self._make_room(now):
            self.refused += 1
            return TOO_MANY
        self._open[session] = key
        self._per_client[key] = count + 1
        return None

    def release(self, session: LimitedSession) -> None:
        """The session ended (or was closed to make room); calling it twice is harmless."""
        key = self._open.pop(session, None)
        if key is None:
            return
        left = self._per_client[key] - 1
        if left:
            self._per_client[key] = left
        else:
            del self._per_client[key]

    def _make_room(self, now: float) -> bool:
        """Close the session idle the longest, if it has been idle for idle_when_full."""
        waiting = [session for session in self._open if not session.receiving]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda session: session.active_at)
        if now - oldest.active_at < self.idle_when_full:
            return False
        self.release(oldest)
        self.closed_idle += 1
        oldest.close_idle()
        return True
