"""The group-commit writer and the alias cache on their own (no database, no network).

What matters to a sender: his future resolves only after the store returned (the commit),
concurrent mails share one store call, a failed commit fails every mail of that batch, and
a stop stores what was already queued.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from tui_helpdesk.mail.inbound import InboundMail
from tui_helpdesk.smtp.batches import Accepted
from tui_helpdesk.smtp.handler import TEMPORARY_FAILURE, AliasCache, IngestHandler
from tui_helpdesk.smtp.thread_writer import GroupCommitWriter


def mail(n: int) -> InboundMail:
    return InboundMail(f"mail {n}\r\n".encode(), "a@b.test", ("x@y.test",), datetime.now(UTC))


class GatedStore:
    """A store that records its batches and can be held shut to let mail pile up."""

    def __init__(self) -> None:
        self.batches: list[list[bytes]] = []
        self.open = threading.Event()
        self.open.set()
        self.entered = threading.Event()

    def __call__(self, mails: Sequence[InboundMail]) -> list[Accepted | BaseException]:
        self.entered.set()
        self.open.wait(10)
        self.batches.append([m.raw for m in mails])
        return [
            ValueError("this one")
            if m.raw == b"mail 13\r\n"
            else Accepted(m.raw.split()[1].decode())
            for m in mails
        ]


async def test_concurrent_mail_is_committed_in_groups_and_answered_after_it() -> None:
    store = GatedStore()
    store.open.clear()
    writer = GroupCommitWriter(store, batch_max=5)
    writer.start()
    first = writer.submit(mail(0))
    await asyncio.to_thread(store.entered.wait, 10)  # the writer is inside the first store
    rest = [writer.submit(mail(n)) for n in range(1, 15)]
    await asyncio.sleep(0.05)
    assert not any(f.done() for f in [first, *rest])  # nothing answered before its commit
    store.open.set()
    results = await asyncio.gather(first, *rest, return_exceptions=True)
    writer.stop(5)
    assert [len(b) for b in store.batches] == [1, 5, 5, 4]
    assert [r.queue_id for r in results if isinstance(r, Accepted)] == [
        str(n) for n in range(15) if n != 13
    ]
    assert isinstance(results[13], ValueError)
    assert (writer.stats.accepted, writer.stats.errors, writer.stats.batches) == (14, 1, 4)


async def test_a_failed_commit_fails_the_whole_batch_and_the_writer_goes_on() -> None:
    calls = []

    def store(mails: Sequence[InboundMail]) -> list[Accepted | BaseException]:
        calls.append(len(mails))
        if len(calls) == 1:
            raise OSError("disk full")
        return [Accepted("ok") for _ in mails]

    writer = GroupCommitWriter(store)
    writer.start()
    with pytest.raises(OSError):
        await writer.submit(mail(1))
    assert (await writer.submit(mail(2))).queue_id == "ok"
    writer.stop(5)
    assert writer.stats.last_error == "OSError: disk full"


async def test_stop_stores_what_is_queued_and_refuses_the_rest() -> None:
    store = GatedStore()
    store.open.clear()
    writer = GroupCommitWriter(store, batch_max=2)
    writer.start()
    futures = [writer.submit(mail(n)) for n in range(5)]
    stopping = asyncio.ensure_future(asyncio.to_thread(writer.stop, 10))
    for _ in range(3000):  # until the stop has begun in its thread (30 s at most)
        if writer.closed:
            break
        await asyncio.sleep(0.01)
    with pytest.raises(RuntimeError):
        writer.submit(mail(9))
    store.open.set()
    await stopping
    assert [f.result().queue_id for f in futures] == ["0", "1", "2", "3", "4"]


async def test_alias_cache_reloads_when_stale_and_survives_a_failed_reload() -> None:
    now = [0.0]
    answers: list[object] = [["Support@In.Test"], RuntimeError("db down"), ["sales@in.test"]]
    loads = []

    def load() -> list[str]:
        loads.append(now[0])
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    cache = AliasCache(load, max_age=0.5, clock=lambda: now[0])
    assert await cache.accepts("support@in.test") and not await cache.accepts("sales@in.test")
    now[0] = 0.4
    assert await cache.accepts("SUPPORT@in.test") and len(loads) == 1  # still fresh
    now[0] = 0.6
    assert await cache.accepts("support@in.test")  # reload failed: the old set still answers
    now[0] = 0.7
    assert await cache.accepts("sales@in.test") and not await cache.accepts("support@in.test")
    assert loads == [0.0, 0.6, 0.7]


async def test_concurrent_rcpts_share_one_reload() -> None:
    loads = []

    def load() -> list[str]:
        loads.append(1)
        threading.Event().wait(0.05)
        return ["a@in.test"]

    cache = AliasCache(load)
    assert all(await asyncio.gather(*(cache.accepts("a@in.test") for _ in range(20))))
    assert loads == [1]


async def test_handler_answers_451_when_recipients_cannot_be_checked() -> None:
    def load() -> list[str]:
        raise RuntimeError("db down")

    writer = GroupCommitWriter(lambda mails: [Accepted("1") for _ in mails])
    handler = IngestHandler(writer, AliasCache(load))
    envelope = SimpleNamespace(rcpt_tos=[], rcpt_options=[])
    reply = await handler.handle_RCPT(None, None, envelope, "a@in.test", [])
    assert reply == TEMPORARY_FAILURE and envelope.rcpt_tos == []
    envelope.original_content, envelope.mail_from = b"x\r\n", "a@b.test"
    assert await handler.handle_DATA(None, None, envelope) == TEMPORARY_FAILURE  # not started
