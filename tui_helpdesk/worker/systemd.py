"""sd_notify(3) with the standard library: tell systemd we are ready, reloading, stopping, alive.

A `Type=notify` unit starts its dependants only after READY=1, so mail is never pointed at a
worker that is not listening yet; WATCHDOG=1 on each heartbeat lets systemd restart a worker
whose event loop or database hangs (WatchdogSec=). Outside systemd (no NOTIFY_SOCKET) every
call does nothing.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send `state` ("READY=1", "STOPPING=1", …) to $NOTIFY_SOCKET; False when there is none."""
    address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return False
    if address[0] == "@":  # Linux abstract namespace
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(state.encode("utf-8"))
    return True


def reloading_state() -> str:
    """RELOADING=1 with the CLOCK_MONOTONIC stamp systemd 253+ expects."""
    return f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"


def watchdog_seconds(environ: Mapping[str, str] | None = None) -> float | None:
    """The watchdog interval systemd expects pings within, when it is meant for this process."""
    environ = os.environ if environ is None else environ
    pid = environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1_000_000 if usec > 0 else None
