"""A small SMTP load generator: N concurrent sessions, a new connection per message.

Used when Postfix's smtp-source is not installed, and always where the benchmark must know which
message got which reply (crash.py, corpus.py). It is a plain asyncio.Protocol state machine (no
per-line coroutine), so on this machine it costs far less CPU than the servers it measures.

    python bench/loadgen.py --port 2525 --rcpt support@x --sessions 8 --messages 2000 --size 2048

prints one JSON object: sent, acked, refused, failed, seconds, rate, p50/p99 latency, codes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
    uvloop = None  # type: ignore[assignment]

HOST = "127.0.0.1"
WORDS = tuple(
    [
        "order",
        "invoice",
        "delivery",
        "refund",
        "account",
        "password",
        "login",
        "error",
        "screen",
        "payment",
        "card",
        "please",
        "thanks",
        "hello",
        "regards",
        "urgent",
        "ticket",
        "broken",
        "since",
        "yesterday",
        "again",
        "customer",
        "service",
        "billing",
        "address",
        "shipping",
        "package",
        "tracking",
        "number",
        "update",
        "cancel",
        "renew",
    ]
)


@dataclass(frozen=True)
class Outgoing:
    """One message: envelope and the raw bytes exactly as the server should store them."""

    key: str
    mail_from: str
    rcpts: tuple[str, ...]
    raw: bytes


@dataclass
class Outcome:
    """What the server answered at the end of DATA (or where the session stopped)."""

    key: str
    code: int  # the DATA reply code; 0 when the session ended before it (refused, reset)
    stage: str  # the step that got the last reply: greeting, ehlo, mail, rcpt, data, body
    reply: str
    seconds: float


def dot_stuff(raw: bytes) -> bytes:
    """The DATA payload for raw bytes: stuffed dots, a final CRLF if missing, the end mark."""
    payload = (b"." if raw.startswith(b".") else b"") + raw.replace(b"\r\n.", b"\r\n..")
    if not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    return payload + b".\r\n"


def as_sent(raw: bytes) -> bytes:
    """What a server that keeps bytes exactly stores for `raw` (SMTP ends DATA with CRLF)."""
    return raw if raw.endswith(b"\r\n") else raw + b"\r\n"


class SmtpExchange(asyncio.Protocol):
    """One message on one new connection: greeting, EHLO, MAIL, RCPT..., DATA, body, QUIT."""

    def __init__(self, message: Outgoing, helo: str = "loadgen.test") -> None:
        self.message = message
        # (the reply being waited for, the code it must have, what to send once it came)
        self.steps: list[tuple[str, int, bytes]] = [
            ("greeting", 220, f"EHLO {helo}\r\n".encode()),
            ("ehlo", 250, f"MAIL FROM:<{message.mail_from}>\r\n".encode()),
        ]
        stage = "mail"
        for rcpt in message.rcpts:
            self.steps.append((stage, 250, f"RCPT TO:<{rcpt}>\r\n".encode()))
            stage = "rcpt"
        self.steps.append(("rcpt", 250, b"DATA\r\n"))
        self.steps.append(("data", 354, dot_stuff(message.raw)))
        self.buffer = b""
        self.index = 0
        self.started = time.perf_counter()
        self.done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    @property
    def stage(self) -> str:
        """The reply now awaited; "body" once the message has been sent."""
        return self.steps[self.index][0] if self.index < len(self.steps) else "body"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while not self.done.done():
            end = self.buffer.find(b"\r\n")
            if end < 0:
                return
            line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            if line[3:4] != b"-":
                self.on_reply(line)

    def on_reply(self, line: bytes) -> None:
        code = int(line[:3]) if line[:3].isdigit() else 0
        if self.index == len(self.steps):
            self.finish(code, line)
            return
        _, expected, command = self.steps[self.index]
        if code != expected:
            self.finish(code, line)
            return
        self.index += 1
        assert self.transport is not None
        self.transport.write(command)

    def finish(self, code: int, line: bytes) -> None:
        reply = line.decode("utf-8", "replace")
        self.done.set_result(self.outcome(code, reply))
        if self.transport is not None:
            self.transport.write(b"QUIT\r\n")
            self.transport.close()

    def outcome(self, code: int, reply: str) -> Outcome:
        elapsed = time.perf_counter() - self.started
        return Outcome(self.message.key, code, self.stage, reply, elapsed)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(self.outcome(0, f"connection lost ({exc or 'closed'})"))


async def send(host: str, port: int, message: Outgoing, timeout: float = 60) -> Outcome:
    """Send one message on a new connection; never raises for network trouble."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    try:
        _, protocol = await asyncio.wait_for(
            loop.create_connection(lambda: SmtpExchange(message), host, port), timeout
        )
        return await asyncio.wait_for(protocol.done, timeout)
    except (OSError, TimeoutError) as error:
        return Outcome(message.key, 0, "connect", repr(error), time.perf_counter() - started)


@dataclass
class LoadResult:
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, object]:
        acked = [o for o in self.outcomes if o.stage == "body" and o.code == 250]
        latencies = sorted(o.seconds for o in acked) or [0.0]
        refused = sum(1 for o in self.outcomes if o.stage == "connect")
        return {
            "sent": sum(1 for o in self.outcomes if o.stage == "body"),
            "acked": len(acked),
            "refused": refused,
            "failed": len(self.outcomes) - len(acked) - refused,
            "seconds": round(self.seconds, 3),
            "rate": round(len(acked) / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
            "p99_ms": round(
                1000 * latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)], 2
            ),
            "codes": dict(Counter(f"{o.stage}:{o.code}" for o in self.outcomes)),
        }


async def run_load(
    host: str,
    port: int,
    messages: Iterator[Outgoing],
    *,
    sessions: int,
    deadline: float | None = None,
    stop_when_refused: bool = False,
    on_outcome: Callable[[Outcome], Awaitable[None] | None] | None = None,
) -> LoadResult:
    """`sessions` concurrent senders pull from one iterator until it ends (or the deadline)."""
    result = LoadResult()
    refused = asyncio.Event()

    async def session() -> None:
        for message in messages:
            if (deadline and time.monotonic() > deadline) or refused.is_set():
                return
            outcome = await send(host, port, message)
            result.outcomes.append(outcome)
            if on_outcome is not None:
                awaited = on_outcome(outcome)
                if awaited is not None:
                    await awaited
            if stop_when_refused and outcome.stage == "connect":
                refused.set()

    started = time.perf_counter()
    await asyncio.gather(*(session() for _ in range(sessions)))
    result.seconds = time.perf_counter() - started
    return result


def words(rng: random.Random, size: int) -> bytes:
    """Readable text lines of about 70 characters, `size` bytes in all."""
    out: list[str] = []
    total = 0
    while total < size:
        line = " ".join(rng.choice(WORDS) for _ in range(11)).capitalize() + "."
        out.append(line)
        total += len(line) + 2
    return ("\r\n".join(out) + "\r\n").encode()[:size]


def make_message(run: str, n: int, size: int, rcpt: str, rng: random.Random) -> Outgoing:
    """A customer's mail of about `size` bytes: text only up to 8 KB, then a PDF attachment.

    Every message is unique (Message-ID and X-Bench-Id carry run and sequence number), from one
    of 500 customers, so threading, contacts and duplicate detection do real work.
    """
    customer = n % 500
    key = f"{run}-{n}"
    head = (
        f"From: Customer {customer} <customer{customer}@customers.test>\r\n"
        f"To: Support <{rcpt}>\r\n"
        f"Subject: Order {100000 + n}: {' '.join(rng.choice(WORDS) for _ in range(4))}\r\n"
        f"Date: Sun, 22 Nov 2026 10:{n // 60 % 60:02d}:{n % 60:02d} +0000\r\n"
        f"Message-ID: <{key}@customers.test>\r\n"
        f"X-Bench-Id: {key}\r\n"
        "MIME-Version: 1.0\r\n"
    ).encode()
    if size <= 8192:
        head += b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        raw = head + words(rng, max(0, size - len(head)))
    else:
        raw = head + attachment_body(rng, size - len(head))
    return Outgoing(key, f"customer{customer}@customers.test", (rcpt,), raw)


def attachment_body(rng: random.Random, size: int) -> bytes:
    boundary = b"=_bench_boundary_0"
    text = words(rng, 1200).rstrip(b"\r\n") + b"\r\n"  # a delimiter starts a line
    part_head = (
        b"--" + boundary + b'\r\nContent-Type: application/pdf; name="scan.pdf"\r\n'
        b'Content-Disposition: attachment; filename="scan.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
    )
    overhead = len(text) + len(part_head) + 200
    payload = base64.encodebytes(rng.randbytes(max(0, (size - overhead) * 3 // 4)))
    payload = payload.replace(b"\n", b"\r\n")
    return (
        b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n'
        b"--" + boundary + b"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + text + part_head + payload + b"--" + boundary + b"--\r\n"
    )  # fmt: skip


def message_stream(run: str, size: int, rcpt: str, count: int | None) -> Iterator[Outgoing]:
    rng = random.Random(run)
    numbers = range(count) if count is not None else itertools.count()
    return (make_message(run, n, size, rcpt, rng) for n in numbers)


def new_loop() -> asyncio.AbstractEventLoop:
    return uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rcpt", required=True, help="recipient address (a mailbox alias)")
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--messages", type=int, help="how many (default: until --seconds)")
    parser.add_argument("--seconds", type=float, default=60.0, help="time bound")
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--run", default=f"r{os.getpid()}", help="id prefix of this run")
    parser.add_argument("--until-refused", action="store_true", help="stop when connect fails")
    parser.add_argument("--acked-out", help="append the key of every 250 to this file at once")
    args = parser.parse_args(argv)
    result = new_loop().run_until_complete(_main(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


async def _main(args: argparse.Namespace) -> dict[str, object]:
    stream = message_stream(args.run, args.size, args.rcpt, args.messages)
    acked = open(args.acked_out, "a", buffering=1) if args.acked_out else None  # noqa: SIM115

    def record(outcome: Outcome) -> None:
        if acked is not None and outcome.stage == "body" and outcome.code == 250:
            acked.write(outcome.key + "\n")

    try:
        result = await run_load(
            args.host,
            args.port,
            stream,
            sessions=args.sessions,
            deadline=time.monotonic() + args.seconds,
            stop_when_refused=args.until_refused,
            on_outcome=record,
        )
    finally:
        if acked is not None:
            acked.close()
    return result.summary()


if __name__ == "__main__":
    raise SystemExit(main())
