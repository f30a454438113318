"""Reprocessing mail stored with a processing error (F76): service and CLI, both backends."""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from test_ingest_support import (
    Desk,
    build_mail,
    deliver,
    make_desk,
    message_id_of,
)

from tui_helpdesk.cli import cli
from tui_helpdesk.db.models import AuditEntry, Conversation, Message, MessageAuth
from tui_helpdesk.errors import Conflict, NotFound, PermissionDenied
from tui_helpdesk.services import failures, reprocess, routing
from tui_helpdesk.services.ingest import batch as ingest_batch


@pytest.fixture
def desk(db, settings) -> Desk:  # type: ignore[no-untyped-def]
    return make_desk(db, settings)


def _broken_routing(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ValueError("routing exploded")

    monkeypatch.setattr(routing, "decide", broken)


def failed_mail(db, settings, desk, monkeypatch, **mail) -> tuple[bytes, int]:  # type: ignore[no-untyped-def]
    """A mail stored raw because routing failed; routing works again afterwards."""
    raw = build_mail(**mail)
    with monkeypatch.context() as patch:
        _broken_routing(patch)  # type: ignore[arg-type]
        result = deliver(db, settings, raw, desk.support.alias)
    assert result.processing_errors
    return raw, result.message_ids[0]


def test_reprocess_stores_the_mail_parsed_routed_and_audited(
    db, settings, desk, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    raw, failed_id = failed_mail(db, settings, desk, monkeypatch, subject="Printer on fire")
    with db.write() as session:
        result = reprocess.reprocess(session, settings, desk.org.admin, failed_id)
    assert result.error == "" and result.message_id == failed_id
    with db.read() as session:
        [message] = session.scalars(select(Message)).all()
        assert message.id == result.new_message_ids[0]
        assert message.raw == raw  # the bytes, byte for byte
        assert message.processing_error == ""
        assert message.message_id_header == message_id_of(raw)
        assert message.from_address == "carol@customer.test"
        conversation = session.get_one(Conversation, result.conversation_ids[0])
        assert conversation.queue_id == desk.support_queue.id
        assert session.scalar(select(func.count()).select_from(Conversation)) == 1
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "message.reprocess")
        ).one()
        assert entry.actor_label == "ada@acme.test" and entry.entity_id == str(failed_id)
        assert "routing exploded" in entry.before["error"]
        assert entry.after["message_ids"] == [message.id]
        assert failures.list_failed(session, desk.org.admin) == []


def test_a_reprocess_that_fails_again_keeps_the_bytes_with_the_new_error(
    db, settings, desk, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    raw, failed_id = failed_mail(db, settings, desk, monkeypatch)

    def crash(data: bytes):  # type: ignore[no-untyped-def]
        raise RuntimeError("parser bug")

    monkeypatch.setattr(ingest_batch, "parse_message", crash)
    with db.write() as session:
        result = reprocess.reprocess(session, settings, desk.org.admin, failed_id)
    assert "parser bug" in result.error
    with db.read() as session:
        [message] = session.scalars(select(Message)).all()
        assert message.raw == raw and "parser bug" in message.processing_error


def test_a_reprocess_that_breaks_rolls_back_and_loses_nothing(
    db, settings, desk, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    raw, failed_id = failed_mail(db, settings, desk, monkeypatch)

    def database_gone(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("connection lost")

    monkeypatch.setattr(reprocess, "store_inbound", database_gone)
    with pytest.raises(RuntimeError), db.write() as session:
        reprocess.reprocess(session, settings, desk.org.admin, failed_id)
    with db.read() as session:
        message = session.get_one(Message, failed_id)
        assert message.raw == raw and "routing exploded" in message.processing_error


def test_refusals_change_nothing(db, settings, desk, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _, failed_id = failed_mail(db, settings, desk, monkeypatch)
    good = deliver(db, settings, build_mail(subject="Fine"), desk.support.alias).message_ids[0]
    bob = dataclasses.replace(desk.org.admin, role="agent")
    with db.write() as session:
        with pytest.raises(NotFound):
            reprocess.reprocess(session, settings, desk.org.admin, 424242)
        with pytest.raises(Conflict, match="without error"):
            reprocess.reprocess(session, settings, desk.org.admin, good)
        with pytest.raises(PermissionDenied):
            reprocess.reprocess(session, settings, bob, failed_id)
    with db.read() as session:
        assert session.get(Message, failed_id) is not None
        assert session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "message.reprocess")) == 0  # fmt: skip


def test_reprocess_all_failed_from_the_cli(db, db_url, settings, desk, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ids = [failed_mail(db, settings, desk, monkeypatch, subject=f"Mail {n}")[1] for n in range(3)]
    env = {"TUI_HELPDESK_DATABASE_URL": db_url, "TUI_HELPDESK_SMTP_PORT": "0"}
    runner = CliRunner()
    one = runner.invoke(
        cli, ["message", "reprocess", str(ids[0]), "--as", "ada@acme.test", "--json"], env=env
    )
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout)[0]["message_id"] == ids[0]
    again = runner.invoke(cli, ["message", "reprocess", str(ids[0]), "--as", "ada@acme.test"],
                          env=env)  # fmt: skip
    assert again.exit_code == 3, again.output  # gone: it became a new message
    rest = runner.invoke(cli, ["message", "reprocess", "--all-failed", "--as", "ada@acme.test"],
                         env=env)  # fmt: skip
    assert rest.exit_code == 0, rest.output
    assert "Mail 1" not in rest.output and str(ids[1]) in rest.output
    neither = runner.invoke(cli, ["message", "reprocess", "--as", "ada@acme.test"], env=env)
    assert neither.exit_code == 2
    with db.read() as session:
        assert failures.list_failed(session, desk.org.admin) == []
        assert session.scalar(select(func.count()).select_from(Message)) == 3


def test_the_conversation_stays_when_an_agent_wrote_in_it(db, settings, desk, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tui_helpdesk.services.conversations import notes

    _, failed_id = failed_mail(db, settings, desk, monkeypatch)
    with db.read() as session:
        conversation_id = session.get_one(Message, failed_id).conversation_id
    with db.write() as session:
        notes.write_note(session, desk.org.admin, conversation_id, "looking into it")
    with db.write() as session:
        reprocess.reprocess(session, settings, desk.org.admin, failed_id)
    with db.read() as session:
        kept = session.get_one(Conversation, conversation_id)
        assert kept.message_count == 1
        assert session.scalar(select(func.count()).select_from(Conversation)) == 2


def test_the_sender_check_is_queued_again_for_the_same_client(
    db, settings, desk, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    _, failed_id = failed_mail(db, settings, desk, monkeypatch)
    with db.write() as session:
        session.merge(MessageAuth(message_id=failed_id, status="done", peer_ip="203.0.113.5",
                                  helo="mx.customer.test", warning="spoof"))  # fmt: skip
    with db.write() as session:
        result = reprocess.reprocess(session, settings, desk.org.admin, failed_id)
    with db.read() as session:
        [check] = session.scalars(select(MessageAuth)).all()
    assert check.message_id == result.new_message_ids[0]
    assert (check.status, check.peer_ip, check.helo) == (
        "queued",
        "203.0.113.5",
        "mx.customer.test",
    )
