"""ProcessWriter: group commit in a store process of its own (no database, no network).

What a sender sees is the same as with the writer thread: his future resolves only after the
store returned (committed) in the other process, concurrent mails share one store call, an
error of one mail or of the whole batch reaches exactly those senders, and a stop stores what
was already queued. Beyond that: a store process that dies costs its batch a 451 and is
started again, and small mail arrives at the store already parsed.

The stores below run in the spawned process, so they are module-level functions.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from tui_helpdesk.mail.inbound import InboundMail
from tui_helpdesk.smtp.batches import Accepted, StoreBatch
from tui_helpdesk.smtp.process_writer import ProcessWriter
from tui_helpdesk.smtp.store_process import StoreRefused, StoreUnavailable


def mail(raw: bytes) -> InboundMail:
    return InboundMail(raw, "a@b.test", ("x@y.test",), datetime.now(UTC))


def _describing_store(mails: Sequence[InboundMail]) -> list[Accepted | BaseException]:
    """Accepted(queue_id="<pid> <batch size> <parsed?> <raw>"), with a few mails that misbehave."""
    outcomes: list[Accepted | BaseException] = []
    for m in mails:
        if m.raw == b"die\r\n":
            os._exit(3)  # a crash in the middle of a batch: nothing is answered
        if m.raw == b"fail batch\r\n":
            raise RuntimeError("commit failed: disk full")
        if m.raw == b"refuse\r\n":
            outcomes.append(ValueError("not this one"))
            continue
        if m.raw.startswith(b"slow"):
            time.sleep(0.3)
        parsed = "parsed" if m.parsed is not None else "raw"
        outcomes.append(Accepted(f"{os.getpid()} {len(mails)} {parsed} {m.raw.decode().strip()}"))
    return outcomes


def describing_store() -> StoreBatch:
    return _describing_store


def broken_store(reason: str) -> StoreBatch:
    raise RuntimeError(reason)


async def test_mail_is_stored_in_the_store_process_in_batches_after_it_parsed() -> None:
    writer = ProcessWriter(describing_store, batch_max=4, parse_max=100, parse_ahead=3)
    await writer.start()
    try:
        # The batch of `first` is in flight as soon as it is submitted: the rest queue behind.
        first = writer.submit(mail(b"slow first\r\n"))
        waiting = [writer.submit(mail(f"m{n}\r\n".encode())) for n in range(2)]
        big = writer.submit(mail(b"x" * 200 + b"\r\n"))  # over parse_max
        waiting += [writer.submit(mail(f"m{n}\r\n".encode())) for n in range(2, 6)]
        results = [await f for f in [first, *waiting[:2], big, *waiting[2:]]]
    finally:
        await writer.aclose(10)
    pids = {r.queue_id.split()[0] for r in results}
    assert pids != {str(os.getpid())} and len(pids) == 1  # another process stored them
    sizes = [int(r.queue_id.split()[1]) for r in results]
    assert sizes == [1, 4, 4, 4, 4, 3, 3, 3]  # what queued meanwhile went over in batches
    # parsed here: while fewer than parse_ahead mails waited, and not over parse_max
    assert [r.queue_id.split()[2] for r in results] == ["parsed"] * 3 + ["raw"] * 5
    assert (writer.stats.accepted, writer.stats.errors, writer.stats.batches) == (8, 0, 3)


async def test_errors_reach_exactly_their_senders() -> None:
    writer = ProcessWriter(describing_store)
    await writer.start()
    try:
        refused = writer.submit(mail(b"refuse\r\n"))
        fine = writer.submit(mail(b"fine\r\n"))
        assert isinstance((await asyncio.gather(refused, return_exceptions=True))[0], StoreRefused)
        assert (await fine).queue_id.endswith("fine")
        busy = writer.submit(mail(b"slow\r\n"))  # the next two wait, and go as one batch
        batch = [writer.submit(mail(b"fail batch\r\n")), writer.submit(mail(b"innocent\r\n"))]
        await busy
        outcomes = await asyncio.gather(*batch, return_exceptions=True)
        assert all(isinstance(o, StoreRefused) and "disk full" in str(o) for o in outcomes)
        assert (await writer.submit(mail(b"after\r\n"))).queue_id.endswith("after")
    finally:
        await writer.aclose(10)
    assert "disk full" in writer.stats.last_error


async def test_a_dead_store_process_costs_its_batch_a_451_and_is_started_again() -> None:
    writer = ProcessWriter(describing_store, restart_delay=0.2)
    await writer.start()
    try:
        before = await writer.submit(mail(b"before\r\n"))
        with pytest.raises(StoreUnavailable):
            await writer.submit(mail(b"die\r\n"))
        after = await asyncio.wait_for(writer.submit(mail(b"after\r\n")), 60)
    finally:
        await writer.aclose(10)
    assert before.queue_id.split()[0] != after.queue_id.split()[0]  # a new process
    assert after.queue_id.endswith("after")


async def test_a_store_that_cannot_start_is_reported() -> None:
    writer = ProcessWriter(functools.partial(broken_store, "no database"))
    with pytest.raises(StoreUnavailable, match="no database"):
        await writer.start()


async def test_stop_stores_what_is_queued_and_refuses_the_rest() -> None:
    writer = ProcessWriter(describing_store, batch_max=2)
    await writer.start()
    futures = [writer.submit(mail(f"q{n}\r\n".encode())) for n in range(5)]
    closing = asyncio.ensure_future(writer.aclose(10))
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        writer.submit(mail(b"too late\r\n"))
    await closing
    assert [f.result().queue_id.split()[-1] for f in futures] == ["q0", "q1", "q2", "q3", "q4"]
