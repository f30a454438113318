"""Bare SMTP servers whose handler answers 250 at once: what the worker is measured against.

    python bench/baseline.py aiosmtpd   # plain aiosmtpd SMTP, asyncio loop (the issue's "bare")
    python bench/baseline.py helpdesk   # our HelpdeskSMTP + uvloop, same do-nothing handler

Each prints "listening on 127.0.0.1:PORT" to stderr, then serves until SIGTERM/SIGINT. The
second one shows what the protocol work alone is worth, without parsing or the database.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from tui_helpdesk.smtp.protocol import new_event_loop, start_server

HOSTNAME = "bare.bench.test"
SIZE_LIMIT = 50 * 1024 * 1024


class AcceptEverything:
    """Answers 250 to every recipient and message without looking at it."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 2.0.0 OK"


async def start_plain_aiosmtpd(handler: Any, host: str, port: int) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(handler, hostname=HOSTNAME, data_size_limit=SIZE_LIMIT, loop=loop),
        host=host,
        port=port,
        backlog=512,
    )


async def serve(kind: str, host: str, port: int) -> None:
    handler = AcceptEverything()
    if kind == "aiosmtpd":
        server = await start_plain_aiosmtpd(handler, host, port)
    else:
        server = await start_server(
            handler, host=host, port=port, hostname=HOSTNAME, data_size_limit=SIZE_LIMIT
        )
    bound = server.sockets[0].getsockname()
    print(f"listening on {bound[0]}:{bound[1]}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["aiosmtpd", "helpdesk"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    loop = asyncio.new_event_loop() if args.kind == "aiosmtpd" else new_event_loop()
    loop.run_until_complete(serve(args.kind, args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
