"""store_batch (the writer's fast path) against store_inbound one mail at a time, both backends.

store_batch keeps a batch's new rows in memory and writes them table by table, flushing early
only before a query that could see them; when anything fails it stores the batch again with a
savepoint per copy. Whatever the path, the database must end up exactly as if each mail had
been stored in its own transaction: these tests store the same mails both ways (threading into
a mail of the same batch, duplicates, routing, sticky assignment, two mailboxes, an auto-reply,
a name learnt, a bounce, replies to a closed conversation, undecodable bytes) and compare.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from factories import add_mailbox, add_queue, add_user, make_org
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session, undefer
from test_ingest_support import BASE_TIME, build_mail, dsn, inbound, message_id_of

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import (
    AutoReplyLog,
    Base,
    Contact,
    Conversation,
    ConversationParticipant,
    ConversationTag,
    Mailbox,
    Message,
    OutboxJob,
    Queue,
    User,
)
from tui_helpdesk.mail.inbound import InboundMail
from tui_helpdesk.services import assignment, audit, autoresponder, ingest, routing, users
from tui_helpdesk.services.ingest import deliver
from tui_helpdesk.worker.store import smtp_store

SUPPORT = "support@acme.test"
SALES = "sales@acme.test"


def _wipe(db: Database) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if db.is_sqlite:
            for name in tables:
                conn.execute(text(f'DELETE FROM "{name}"'))
        else:
            names = ", ".join(f'"{n}"' for n in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


def _setup(db: Database, settings: Settings) -> dict[str, str]:
    """Acme: support (round robin over bob and dan, sticky 30 days), sales (autoresponder),
    and a rule sending "urgent" subjects to Sales with priority urgent and tag vip."""
    org = make_org(db)
    for email in ("bob@acme.test", "dan@acme.test"):
        add_user(db, org.admin, email)
    support = add_mailbox(db, settings, org.admin, "support")
    sales = add_mailbox(db, settings, org.admin, "sales")
    add_queue(db, settings, org.admin, "Support", mailboxes=[support.email_address],
              members={"bob@acme.test": "agent", "dan@acme.test": "agent"})  # fmt: skip
    add_queue(db, settings, org.admin, "Sales", mailboxes=[sales.email_address])
    with db.write() as session:
        assignment.set_assignment(session, org.admin, "Support", rule="round_robin", sticky_days=30)
        autoresponder.configure(session, org.admin, SALES, enabled=True, body="Got it.")
        routing.create_rule(
            session, org.admin, name="urgent", match="any",
            conditions=[{"field": "subject", "op": "contains", "value": "urgent"}],
            queue="Sales", priority="urgent", tag="vip",
        )  # fmt: skip
    return {"support": support.alias, "sales": sales.alias}


def _mails(db: Database, settings: Settings, alias: dict[str, str]) -> list[InboundMail]:
    """The scenario; a conversation answered before the batch is closed first."""
    old = build_mail(subject="Old question", message_id="<old@customer.test>")
    ingest.store_batch(db, settings, [inbound(old, alias["support"], at=BASE_TIME)])
    with db.write() as session:
        for conversation in session.scalars(select(Conversation)):
            conversation.status = "closed"
    first = build_mail(sender="carol@customer.test", message_id="<first@customer.test>")
    raws: list[tuple[bytes, tuple[str, ...], str]] = [
        (first, (alias["support"],), "carol@customer.test"),
        (build_mail(subject="Another thing", message_id="<another@customer.test>"),
         (alias["support"],), "carol@customer.test"),
        (build_mail(subject="Re: Printer on fire", message_id="<second@customer.test>",
                    in_reply_to="<first@customer.test>",
                    references=["<first@customer.test>"]), (alias["support"],), "carol@c.test"),
        (first, (alias["support"],), "carol@customer.test"),  # the same delivery again
        (build_mail(sender="Dave <dave@other.test>", subject="URGENT: invoice",
                    message_id="<dave@other.test>"),
         (alias["support"],), "dave@other.test"),
        (build_mail(sender="Erin <erin@other.test>", subject="Both of you",
                    message_id="<erin@other.test>"),
         (alias["support"], alias["sales"]), "erin@other.test"),
        (build_mail(subject="Re: Old question", in_reply_to="<old@customer.test>",
                    message_id="<old-re1@customer.test>"),
         (alias["support"],), "carol@customer.test"),
        (build_mail(subject="Re: Old question again", references=["<old@customer.test>"],
                    message_id="<old-re2@customer.test>"),
         (alias["support"],), "carol@customer.test"),
        (dsn("<first@customer.test>", "carol@customer.test"), (alias["support"],), ""),
        (build_mail(sender="frank@new.test", subject="Hello", message_id="<f1@new.test>"),
         (alias["support"],), "frank@new.test"),
        (build_mail(sender="Frank <frank@new.test>", subject="Hello again",
                    message_id="<f2@new.test>"), (alias["support"],), "frank@new.test"),
        (b"\xff\xfe not mail at all \x00\r\n", (alias["sales"],), "x@y.test"),
    ]  # fmt: skip
    return [
        inbound(raw, rcpts, mail_from=sender, at=BASE_TIME + timedelta(minutes=n + 1))
        for n, (raw, rcpts, sender) in enumerate(raws)
    ]


def _snapshot(db: Database) -> dict[str, Any]:
    """The database without ids: rows named by what they hold."""
    with db.read() as session:
        messages = session.scalars(select(Message).options(undefer(Message.raw))).all()
        names = _message_names(messages)
        return {
            "messages": sorted(_message_view(m, names) for m in messages),
            "conversations": sorted(_conversation_views(session, names)),
            "contacts": sorted(
                (c.email, c.name, c.bounced_at, c.bounce_reason)
                for c in session.scalars(select(Contact))
            ),
            "outbox": sorted(
                (j.kind, j.status, tuple(j.rcpt_to), names[j.conversation_id])
                for j in session.scalars(select(OutboxJob))
            ),
            "replies": sorted((r.recipient, r.kind) for r in session.scalars(select(AutoReplyLog))),
            "queues": sorted(
                (q.name, _email(session, q.last_assigned_user_id))
                for q in session.scalars(select(Queue))
            ),
            "mailboxes": sorted(
                (m.local_part, m.last_inbound_at) for m in session.scalars(select(Mailbox))
            ),
        }


def _message_names(messages: Any) -> dict[int, str]:
    """A conversation is named by the sorted contents of its inbound messages."""
    by_conversation: dict[int, list[str]] = {}
    for m in messages:
        if m.direction == "inbound":
            by_conversation.setdefault(m.conversation_id, []).append(
                f"{m.mailbox_id}:{m.raw_sha256}"
            )
    return {cid: "|".join(sorted(keys)) for cid, keys in by_conversation.items()}


def _message_view(m: Message, names: dict[int, str]) -> tuple[Any, ...]:
    """A message; the conversation id in our subject token becomes the conversation's name
    (PostgreSQL does not give back the ids of a rolled-back attempt)."""
    inbound_only = m.direction == "inbound"
    subject = re.sub(r"\[HD#(\d+)\]", lambda t: f"[{names[int(t.group(1))]}]", m.subject)
    return (
        names[m.conversation_id], m.direction, m.kind, m.mailbox_id, subject,
        m.message_id_header if inbound_only else "", m.raw if inbound_only else b"",
        m.envelope_from, bool(m.envelope_to), m.received_at if inbound_only else None,
        m.text_body, m.bounce_recipient, m.processing_error != "", tuple(m.defects or ()),
    )  # fmt: skip


def _conversation_views(session: Session, names: dict[int, str]) -> list[tuple[Any, ...]]:
    views = []
    for c in session.scalars(select(Conversation)):
        tags = session.scalars(
            select(ConversationTag.tag).where(ConversationTag.conversation_id == c.id)
        ).all()
        people = session.scalars(
            select(ConversationParticipant.email).where(
                ConversationParticipant.conversation_id == c.id
            )
        ).all()
        contact = session.get(Contact, c.contact_id) if c.contact_id else None
        queue = session.get(Queue, c.queue_id) if c.queue_id else None
        views.append((
            names[c.id], c.subject, c.status, c.priority, queue.name if queue else None,
            _email(session, c.assignee_id), contact.email if contact else None,
            names.get(c.previous_conversation_id or 0), c.message_count,
            c.last_message_at,
            tuple(sorted(tags)), tuple(sorted(people)),
        ))  # fmt: skip
    return views


def _email(session: Session, user_id: int | None) -> str | None:
    user = session.get(User, user_id) if user_id else None
    return user.email if user else None


def _run(
    db: Database, settings: Settings, store: Callable[[list[InboundMail]], None]
) -> dict[str, Any]:
    _wipe(db)
    alias = _setup(db, settings)
    store(_mails(db, settings, alias))
    return _snapshot(db)


def _one_by_one(db: Database, settings: Settings) -> Callable[[list[InboundMail]], None]:
    def store(mails: list[InboundMail]) -> None:
        for mail in mails:
            with db.write() as session:
                ingest.store_inbound(session, settings, mail)

    return store


def test_a_batch_ends_as_one_transaction_per_mail_would(db, settings) -> None:  # type: ignore[no-untyped-def]
    expected = _run(db, settings, _one_by_one(db, settings))
    results: list[Any] = []
    got = _run(db, settings, lambda mails: results.extend(ingest.store_batch(db, settings, mails)))
    assert got == expected
    assert all(isinstance(r, ingest.StoredMail) for r in results)
    assert results[3].duplicate and results[3].message_ids == results[0].message_ids
    assert results[2].conversation_ids == results[0].conversation_ids  # a reply in the batch
    assert results[6].conversation_ids == results[7].conversation_ids  # one successor
    assert results[8].conversation_ids == results[0].conversation_ids  # the bounce
    with db.read() as session:
        assert {m.id for m in session.scalars(select(Message))} >= {
            i for r in results for i in r.message_ids
        }
    # what the scenario is meant to exercise really happened
    assert len(expected["outbox"]) == 1
    assert any(view[3] == "urgent" and view[10] == ("vip",) for view in expected["conversations"])
    for sender in ("carol@customer.test", "frank@new.test"):  # sticky routing held
        sticky = [v for v in expected["conversations"] if v[6] == sender and v[5]]
        assert len({v[5] for v in sticky}) == 1 and len(sticky) >= 2


def test_batches_with_kept_configuration_end_the_same_on_the_fast_path(  # type: ignore[no-untyped-def]
    db, settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The writer's later batches start from what the earlier ones kept (configuration, and
    on PostgreSQL the queues to lock with the first reads); the result is still that of one
    transaction per mail, and no batch needed the careful second attempt."""
    expected = _run(db, settings, _one_by_one(db, settings))
    store = ingest.batch_store(db, settings)

    def in_threes(mails: list[InboundMail]) -> None:
        for start in range(0, len(mails), 3):
            store(mails[start : start + 3])

    got = _run(db, settings, in_threes)
    assert got == expected
    assert "storing each on its own" not in caplog.text


def test_a_failed_fast_attempt_is_stored_again_with_the_same_result(  # type: ignore[no-untyped-def]
    db, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _run(db, settings, _one_by_one(db, settings))
    real = deliver.store_parsed
    attempts: list[bool] = []

    def fails_once_in_the_fast_path(batch, mail, *args):  # type: ignore[no-untyped-def]
        attempts.append(batch.careful)
        if not batch.careful and b"Erin" in mail.raw:
            raise ValueError("only in the fast attempt")
        return real(batch, mail, *args)

    monkeypatch.setattr(deliver, "store_parsed", fails_once_in_the_fast_path)
    results: list[Any] = []
    got = _run(db, settings, lambda mails: results.extend(ingest.store_batch(db, settings, mails)))
    assert got == expected
    assert False in attempts and True in attempts
    assert not any(r.processing_errors for r in results if isinstance(r, ingest.StoredMail))


def test_message_ids_of_a_batch_are_its_rows(db, settings) -> None:  # type: ignore[no-untyped-def]
    alias = _setup(db, settings)
    mails = [inbound(build_mail(subject=f"n{n}"), alias["support"]) for n in range(5)]
    results = ingest.store_batch(db, settings, mails)
    with db.read() as session:
        for mail, result in zip(mails, results, strict=True):
            assert isinstance(result, ingest.StoredMail)
            [message_id] = result.message_ids
            stored = session.get_one(Message, message_id)
            assert stored.raw_sha256 == hashlib.sha256(mail.raw).hexdigest()
            assert stored.conversation_id == result.conversation_ids[0]
            assert message_id_of(mail.raw) == stored.message_id_header


def test_the_writer_sees_configuration_changes_at_once(db, settings) -> None:  # type: ignore[no-untyped-def]
    """The writer keeps configuration between batches but never a stale one."""
    alias = _setup(db, settings)
    store = smtp_store(db, settings)
    admin = users_admin(db)

    def conversation_of(subject: str, sender: str) -> Conversation:
        [accepted] = store([inbound(build_mail(subject=subject, sender=sender), alias["support"])])
        assert not isinstance(accepted, BaseException)
        with db.read() as session:
            message = session.get_one(Message, int(accepted.queue_id))
            return session.get_one(Conversation, message.conversation_id)

    first = conversation_of("Hello", "a@x.test")
    assert first.assignee_id is not None
    with db.write() as session:  # a change through the writer's own engine
        routing.create_rule(
            session, admin, name="refunds", match="any",
            conditions=[{"field": "subject", "op": "contains", "value": "refund"}],
            queue="Sales", priority="high",
        )  # fmt: skip
    second = conversation_of("A refund please", "b@x.test")
    assert (second.priority, _queue_name(db, second)) == ("high", "Sales")
    other = Database(db.url)  # and one through another connection
    try:
        with other.write() as session:
            for email in ("bob@acme.test", "dan@acme.test"):
                users.set_availability(session, admin, email, "away")
    finally:
        other.dispose()
    assert conversation_of("Hi", "c@x.test").assignee_id is None
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        conversation_of("Hi again", "d@x.test")
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    reread = any("FROM routing_rules" in s for s in statements)
    # nothing changed: the writer kept the rules (SQLite: data_version, else config_version)
    assert not reread


def users_admin(db: Database) -> Any:
    with db.read() as session:
        admin = session.scalars(select(User).where(User.email == "ada@acme.test")).one()
        return users.to_record(admin)


def _queue_name(db: Database, conversation: Conversation) -> str | None:
    with db.read() as session:
        queue = session.get(Queue, conversation.queue_id) if conversation.queue_id else None
        return queue.name if queue else None


@pytest.mark.postgresql_only
def test_a_connection_lost_while_pooled_costs_no_mail(db, settings) -> None:  # type: ignore[no-untyped-def]
    """The store process's engine does not ping a pooled connection before a batch: a batch
    that finds its connection dead is stored again on a new one, once, and answered 250."""
    alias = _setup(db, settings)
    store_db = Database(db.url, pre_ping=False)
    try:
        store = smtp_store(store_db, settings)
        store([inbound(build_mail(subject="first"), alias["support"])])
        with store_db.engine.connect() as connection:  # the pooled connection the next uses
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with db.engine.begin() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        mail = inbound(build_mail(subject="second"), alias["support"])
        [accepted] = store([mail])
        assert not isinstance(accepted, BaseException), accepted
    finally:
        store_db.dispose()
    with db.read() as session:
        stored = session.scalars(select(Message).where(Message.subject == "second")).all()
        assert [m.id for m in stored] == [int(accepted.queue_id)]


@pytest.mark.postgresql_only
def test_ids_taken_ahead_are_the_new_rows_ids(db, settings) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL takes ids for a batch's likely new rows with its first reads: new mail from
    new senders uses exactly those, so the ids run on without gaps, also when a configuration
    change makes a batch send its first reads twice (message and conversation ids)."""
    alias = _setup(db, settings)
    store = ingest.batch_store(db, settings)

    def batch(name: str) -> None:
        store([inbound(build_mail(subject=f"{name} {n}", sender=f"{name}{n}@new.test"),
                       alias["support"]) for n in range(4)])  # fmt: skip

    def ids(model: Any) -> list[int]:
        with db.read() as session:
            found = sorted(session.scalars(select(model.id)))
        assert found == list(range(found[0], found[0] + len(found))), model
        return found

    batch("a")
    batch("b")
    assert [len(ids(model)) for model in (Message, Conversation, Contact)] == [8, 8, 8]
    with db.write() as session:
        audit.bump_config_version(session)
    batch("c")
    assert [len(ids(model)) for model in (Message, Conversation)] == [12, 12]
