"""F70 over the wire: a real ingest server on 127.0.0.1:0, a real smtplib client, a real database.

What a sender sees: 550 at RCPT for anything but an active mailbox alias, 250 only once the
message is committed (its bytes stored exactly), 451 when the database fails, 552 over SIZE.
"""

from __future__ import annotations

import asyncio
import hashlib
import smtplib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from factories import add_mailbox
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import undefer
from test_ingest_support import build_mail, make_desk, send

from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Conversation, Message
from tui_helpdesk.services import ingest, mailboxes
from tui_helpdesk.smtp.handler import AliasCache, IngestHandler
from tui_helpdesk.smtp.protocol import start_server
from tui_helpdesk.smtp.thread_writer import GroupCommitWriter
from tui_helpdesk.worker.runtime import EmbeddedWorker
from tui_helpdesk.worker.store import smtp_store

HOST = "127.0.0.1"


@pytest.fixture
def desk(db, settings):  # type: ignore[no-untyped-def]
    return make_desk(db, settings)


@pytest.fixture
def worker(settings, desk) -> Iterator[tuple[str, int]]:  # type: ignore[no-untyped-def]
    embedded = EmbeddedWorker(settings)
    address = embedded.start()
    yield address
    embedded.stop()


def _stored(db: Database) -> list[Message]:
    with db.read() as session:
        return list(
            session.scalars(select(Message).options(undefer(Message.raw)).order_by(Message.id))
        )


def _rcpt(address: tuple[str, int], rcpt: str) -> tuple[int, bytes]:
    with smtplib.SMTP(*address, timeout=10) as client:
        client.ehlo("client.test")
        client.mail("carol@customer.test")
        return client.rcpt(rcpt)


def test_rcpt_is_accepted_only_for_active_mailbox_aliases(db, settings, desk, worker) -> None:  # type: ignore[no-untyped-def]
    spare = add_mailbox(db, settings, desk.org.admin, "spare")
    with db.write() as session:
        mailboxes.deactivate(session, desk.org.admin, spare.email_address)
    _wait_for_rcpt(worker, spare.alias, 550)  # the alias cache renews (max age: 0.5 s)
    assert _rcpt(worker, desk.support.alias)[0] == 250
    assert _rcpt(worker, desk.support.alias.upper())[0] == 250
    for address in (spare.alias, "nobody@in.helpdesk.localhost", desk.support.email_address):
        code, reply = _rcpt(worker, address)
        assert (code, reply) == (550, f"5.1.1 <{address}>: no such mailbox".encode()), address


def _wait_for_rcpt(worker: tuple[str, int], alias: str, code: int) -> None:
    """RCPT answers `code` once the alias cache renewed (how soon: test_ingest_writer's clock)."""
    deadline = time.monotonic() + 30
    while (got := _rcpt(worker, alias)[0]) != code:
        assert time.monotonic() < deadline, f"RCPT {alias} still answers {got}"
        time.sleep(0.05)


def test_deactivating_a_mailbox_takes_effect_when_the_alias_cache_renews(
    db, settings, desk, worker
) -> None:  # type: ignore[no-untyped-def]
    extra = add_mailbox(db, settings, desk.org.admin, "extra")
    _wait_for_rcpt(worker, extra.alias, 250)  # a new mailbox is picked up too
    with db.write() as session:
        mailboxes.deactivate(session, desk.org.admin, extra.email_address)
    _wait_for_rcpt(worker, extra.alias, 550)


def test_after_250_the_exact_bytes_are_stored_in_a_new_conversation(db, desk, worker) -> None:  # type: ignore[no-untyped-def]
    sent = [build_mail(subject=f"Mail {n}") for n in range(3)]
    sent.append(build_mail(subject="dots", body=".\r\n..leading dots\r\n.\r\nend\r\n"))
    replies = [send(*worker, raw, [desk.support.alias]) for raw in sent]
    stored = _stored(db)
    assert [code for code, _ in replies] == [250] * 4
    assert [r for _, r in replies] == [f"2.0.0 OK queued as {m.id}".encode() for m in stored]
    assert [m.raw for m in stored] == sent
    assert [m.raw_sha256 for m in stored] == [hashlib.sha256(raw).hexdigest() for raw in sent]
    assert len({m.conversation_id for m in stored}) == 4
    with db.read() as session:
        subjects = session.scalars(select(Conversation.subject).order_by(Conversation.id)).all()
    assert subjects == ["Mail 0", "Mail 1", "Mail 2", "dots"]


def test_one_transaction_to_two_mailboxes(db, desk, worker) -> None:  # type: ignore[no-untyped-def]
    code, reply = send(*worker, build_mail(), [desk.support.alias, desk.sales.alias])
    stored = _stored(db)
    assert code == 250 and reply == f"2.0.0 OK queued as {stored[0].id},{stored[1].id}".encode()
    assert {m.mailbox_id for m in stored} == {desk.support.id, desk.sales.id}


def test_long_lines_are_accepted_and_kept_byte_for_byte(db, desk, worker) -> None:  # type: ignore[no-untyped-def]
    long_header = "X-Long: " + "h" * 20_000
    raw = build_mail(headers=[("X-Long", "h" * 20_000)], body="b" * 1_000_000 + "\r\nend\r\n")
    assert long_header.encode() in raw
    code, _ = send(*worker, raw, [desk.support.alias])
    assert code == 250
    [message] = _stored(db)
    assert message.raw == raw and message.raw_size == len(raw)


def test_size_limit_is_advertised_and_enforced(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    small = EmbeddedWorker(settings.replace(smtp={"max_message_size": 10_000}))
    address = small.start()
    try:
        big = build_mail(body="x" * 20_000 + "\r\n")
        with smtplib.SMTP(*address, timeout=10) as client:
            client.ehlo("client.test")
            assert client.esmtp_features["size"] == "10000"
            with pytest.raises(smtplib.SMTPSenderRefused) as declared:
                client.sendmail("carol@customer.test", [desk.support.alias], big)
            assert declared.value.smtp_code == 552
            client.rset()
            client.mail("carol@customer.test")  # no SIZE= given: refused after DATA instead
            client.rcpt(desk.support.alias)
            assert client.data(big)[0] == 552
        assert send(*address, build_mail(), [desk.support.alias])[0] == 250
    finally:
        small.stop()
    assert len(_stored(db)) == 1


class _ServerThread:
    """The ingest handler and writer on a loop in a thread, with a store the test controls."""

    def __init__(self, store, load_aliases) -> None:  # type: ignore[no-untyped-def]
        self.writer = GroupCommitWriter(store, batch_max=8)
        self.handler = IngestHandler(self.writer, AliasCache(load_aliases))
        self.loop = asyncio.new_event_loop()
        self.address: tuple[str, int] = ("", 0)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> tuple[str, int]:
        self.writer.start()
        self._thread.start()
        server = asyncio.run_coroutine_threadsafe(
            start_server(self.handler, host=HOST, port=0, hostname="mx.test",
                         data_size_limit=1_000_000), self.loop).result(10)  # fmt: skip
        self.server = server
        self.address = server.sockets[0].getsockname()[:2]
        return self.address

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.writer.stop(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def test_a_database_failure_answers_451_and_the_retry_is_stored(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    real = smtp_store(db, settings)
    failures = [OperationalError("COMMIT", {}, Exception("disk I/O error"))]

    def store(mails):  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop()
        return real(mails)

    def aliases() -> frozenset[str]:
        with db.read() as session:
            return ingest.active_aliases(session)

    raw = build_mail()
    with _ServerThread(store, aliases) as address:
        assert send(*address, raw, [desk.support.alias]) == (
            451, b"4.3.0 temporary failure, try again later")  # fmt: skip
        assert _stored(db) == []
        code, _ = send(*address, raw, [desk.support.alias])  # the sender's retry
    assert code == 250
    assert [m.raw for m in _stored(db)] == [raw]


def test_a_retry_after_a_lost_250_is_not_stored_twice(db, desk, worker) -> None:  # type: ignore[no-untyped-def]
    raw = build_mail()
    first = send(*worker, raw, [desk.support.alias])
    again = send(*worker, raw, [desk.support.alias])
    assert first == again and first[0] == 250
    assert len(_stored(db)) == 1


def test_concurrent_sessions_are_all_committed(db, desk, worker) -> None:  # type: ignore[no-untyped-def]
    mails = [build_mail(subject=f"Parallel {n}") for n in range(40)]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda raw: send(*worker, raw, [desk.support.alias])[0], mails))
    assert codes == [250] * 40
    with db.read() as session:
        stored = set(session.scalars(select(Message.raw_sha256)))
        conversations = session.scalar(select(func.count()).select_from(Conversation))
    assert stored == {hashlib.sha256(raw).hexdigest() for raw in mails}
    assert conversations == 40
