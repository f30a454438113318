"""Nothing can hold the store (issue 6, F71, F76): a mail over its processing budget is kept
raw with "processing took too long", the rest of its batch and later mail are stored as usual,
and SIGTERM stops the worker within its drain timeout whatever the store process is doing.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from test_ingest_support import (
    build_mail,
    busy_store_process,
    inbound,
    make_desk,
    messages_in,
    send,
    start_worker_process,
    wait_until_dead,
)

from tui_helpdesk.db.models import Conversation, Message
from tui_helpdesk.services import failures, ingest, routing
from tui_helpdesk.services.ingest.budget import TOO_LONG

DRAIN = 2.0  # the worker's drain timeout in the SIGTERM test
WORST = "a[ab]{990}c"  # RE2 accepts it (program of ~1,000 instructions): ~1 s per 64 KB of a/b


def _slow_for(subject: str, seconds: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deliberately slow routing step for mail with this subject (the injected test build)."""
    real = routing.decide

    def decide(setup, mailbox, parsed, recipient):  # type: ignore[no-untyped-def]
        if parsed.subject == subject:
            time.sleep(seconds)
        return real(setup, mailbox, parsed, recipient)

    monkeypatch.setattr(routing, "decide", decide)


def _check_batch(db, desk, results, slow_raw: bytes) -> None:  # type: ignore[no-untyped-def]
    assert all(isinstance(r, ingest.StoredMail) for r in results)
    assert [r.processing_errors for r in results] == [(), (TOO_LONG,), ()]
    [slow] = messages_in(db, results[1].conversation_ids[0])
    assert slow.raw == slow_raw and slow.processing_error == TOO_LONG
    with db.read() as session:
        conversations = [session.get_one(Conversation, r.conversation_ids[0]) for r in results]
    assert len({c.id for c in conversations}) == 3  # the slow one in a conversation of its own
    assert conversations[1].subject == "slow"
    assert [c.queue_id for c in conversations] == [desk.support_queue.id] * 3
    with db.read() as session:
        [failed] = failures.list_failed(session, desk.org.admin)
    assert (failed.id, failed.error) == (slow.id, TOO_LONG)


def test_a_mail_over_its_budget_is_interrupted_and_kept_raw(db, settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    settings = settings.replace(smtp={"processing_budget_seconds": 0.3})
    _slow_for("slow", 600, monkeypatch)  # far beyond the budget: only an interrupt ends it
    raws = [build_mail(subject="first"), build_mail(subject="slow"), build_mail(subject="last")]
    results = ingest.store_batch(db, settings, [inbound(r, desk.support.alias) for r in raws])
    _check_batch(db, desk, results, raws[1])


def test_in_a_thread_the_steps_check_the_budget(db, settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The TUI's embedded worker stores in a thread, where no timer signal reaches."""
    desk = make_desk(db, settings)
    settings = settings.replace(smtp={"processing_budget_seconds": 0.2})
    _slow_for("slow", 1.0, monkeypatch)
    raws = [build_mail(subject="first"), build_mail(subject="slow"), build_mail(subject="last")]
    results: list[object] = []
    thread = threading.Thread(target=lambda: results.extend(
        ingest.store_batch(db, settings, [inbound(r, desk.support.alias) for r in raws])
    ))  # fmt: skip
    thread.start()
    thread.join(120)
    _check_batch(db, desk, results, raws[1])


def _worst_rules(db, desk, count: int) -> None:  # type: ignore[no-untyped-def]
    with db.write() as session:
        for n in range(count):
            routing.create_rule(
                session, desk.org.admin, name=f"worst {n}", match="all", queue="Sales",
                conditions=[{"field": "body", "op": "matches", "value": WORST}],
            )  # fmt: skip


def _hostile_mail(subject: str) -> bytes:
    """70,000 letters a and b on one line once decoded (quoted-printable soft line breaks)."""
    letters = random.Random(11)
    text = "".join(letters.choice("ab") for _ in range(70_000))
    body = "=\r\n".join(text[i : i + 75] for i in range(0, len(text), 75)) + "\r\n"
    return build_mail(
        subject=subject, body=body,
        headers=[("MIME-Version", "1.0"), ("Content-Type", "text/plain; charset=us-ascii"),
                 ("Content-Transfer-Encoding", "quoted-printable")],
    )  # fmt: skip


def test_end_to_end_the_worst_pattern_re2_accepts_cannot_hold_the_worker(  # type: ignore[no-untyped-def]
    db, settings, db_url, tmp_path: Path
) -> None:
    desk = make_desk(db, settings)
    _worst_rules(db, desk, 3)
    process, address = start_worker_process(
        db_url, TUI_HELPDESK_SMTP_PROCESSING_BUDGET_SECONDS="0.5"
    )
    try:
        hostile = _hostile_mail("hostile")
        assert send(*address, hostile, [desk.support.alias])[0] == 250  # stored, raw
        normal = build_mail(subject="after it")
        assert send(*address, normal, [desk.support.alias])[0] == 250
        with db.read() as session:
            rows = {m.raw: m for m in session.scalars(select(Message))}
        assert rows[hostile].processing_error == TOO_LONG
        assert rows[normal].processing_error == ""
        with db.read() as session:
            later = session.get_one(Conversation, rows[normal].conversation_id)
            assert later.queue_id == desk.support_queue.id  # routed: no rule matched
            [failed] = failures.list_failed(session, desk.org.admin)
        assert failed.id == rows[hostile].id
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sigterm_stops_the_worker_while_the_store_is_busy(db, settings, db_url) -> None:  # type: ignore[no-untyped-def]
    """A budget far away and ~100 s of matching ahead: SIGTERM still ends the worker, within
    its drain timeout, and the mail it was storing is not committed (its sender retries)."""
    desk = make_desk(db, settings)
    _worst_rules(db, desk, 100)
    process, address = start_worker_process(
        db_url,
        TUI_HELPDESK_SMTP_PROCESSING_BUDGET_SECONDS="3600",
        TUI_HELPDESK_SMTP_DRAIN_TIMEOUT_SECONDS=str(DRAIN),
    )
    replies: list[object] = []

    def sender() -> None:
        try:
            replies.append(send(*address, _hostile_mail("busy"), [desk.support.alias])[0])
        except Exception as exc:  # the session may be closed by the stopping worker
            replies.append(exc)

    client = threading.Thread(target=sender)
    try:
        client.start()
        store = busy_store_process(process.pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=DRAIN + 30) == 0  # far less than the matching ahead
        client.join(30)
        assert replies and replies[0] != 250
        wait_until_dead(store)  # killed, not left running with its transaction
        with db.read() as session:
            assert session.scalars(select(Message)).all() == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
