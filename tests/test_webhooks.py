"""Webhooks (F22): https only, signed JSON events queued by ingest and delivered by the sender
to a local TLS receiver; a receiver that is down is retried and never holds up ingest."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import undefer
from test_ingest_support import (
    BASE_TIME,
    build_mail,
    deliver,
    make_desk,
    message_id_of,
    only_conversation,
    send,
)
from test_outbox_support import (
    CaptureServer,
    Clock,
    WebhookReceiver,
    jobs,
    make_ca,
    running_sender,
    sending_settings,
    statuses,
    wait_for,
)

from tui_helpdesk.db.models import OutboxJob
from tui_helpdesk.errors import Invalid, PermissionDenied
from tui_helpdesk.services import audit, webhooks
from tui_helpdesk.worker.runtime import EmbeddedWorker

SECRET = "a-long-shared-secret-42"


def turn_on(db, desk, url: str, secret: str = SECRET):  # type: ignore[no-untyped-def]
    with db.write() as session:
        return webhooks.set_webhook(session, desk.org.admin, "support@acme.test", url=url,
                                    secret=secret)  # fmt: skip


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.acme.test/x", "must start with https://"),
        ("ftp://hooks.acme.test/x", "must start with https://"),
        ("https://user:pw@hooks.acme.test/x", "must not hold a user or password"),
        ("https:///nohost", "has no host"),
        ("https://hooks.acme.test/a b", "without spaces"),
    ],
)
def test_only_https_urls_are_taken(db, settings, url: str, message: str) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    with pytest.raises(Invalid, match=message) as info:
        turn_on(db, desk, url)
    assert info.value.field == "url"


def test_secret_rules_masking_audit_and_admins_only(db, settings) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    with db.write() as session, pytest.raises(Invalid, match="give the webhook secret"):
        webhooks.set_webhook(session, desk.org.admin, "support@acme.test", url="https://h.test/")
    with pytest.raises(Invalid, match="16-1024 characters"):
        turn_on(db, desk, "https://h.test/", secret="short")
    record = turn_on(db, desk, "https://h.test/")
    assert (record.url, record.secret) == ("https://h.test/", "****42")
    with db.write() as session:  # a new URL keeps the secret
        moved = webhooks.set_webhook(session, desk.org.admin, "support@acme.test",
                                     url="https://h2.test/")  # fmt: skip
        assert webhooks.target_of(session, desk.support.id).secret == SECRET
        from tui_helpdesk.services.users import find, to_record

        bob = to_record(find(session, "bob@acme.test"))
        with pytest.raises(PermissionDenied):
            webhooks.get_webhook(session, bob, "support@acme.test")
        entries = audit.list_entries(session, desk.org.admin, entity_type="mailbox")
    assert moved.url == "https://h2.test/"
    logged = json.dumps([(e.before, e.after) for e in entries if e.action == "mailbox.set_webhook"])
    assert SECRET not in logged and "****42" in logged


def test_ingest_queues_signed_events_that_reach_a_tls_receiver(db, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    ca = make_ca(tmp_path)
    with WebhookReceiver(ca.server_context, SECRET) as receiver:
        turn_on(db, desk, receiver.url)
        first = build_mail(subject="Printer on fire")
        conversation_id = only_conversation(deliver(db, settings, first, desk.support.alias))
        reply = build_mail(subject="Re: Printer on fire", in_reply_to=message_id_of(first))
        deliver(db, settings, reply, desk.support.alias)
        assert statuses(db) == {"queued": 3}  # only queued by ingest
        relay = sending_settings(settings, 9).replace(outbound={"ca_file": ca.ca_file})
        with running_sender(relay, clock=Clock()):
            wait_for(lambda: statuses(db) == {"sent": 3}, what="3 events delivered")
    assert receiver.bad_signatures == 0
    events = [
        (r["event"], r["body"]["event"], r["body"]["conversation_id"]) for r in receiver.received
    ]
    assert sorted(events) == sorted([
        ("conversation.created", "conversation.created", conversation_id),
        ("message.received", "message.received", conversation_id),
        ("message.received", "message.received", conversation_id),
    ])  # fmt: skip
    for got in receiver.received:
        body = got["body"]
        assert got["delivery"] == body["delivery_id"]
        assert body["mailbox"] == "support@acme.test" and body["from"] == "carol@customer.test"
        assert body["subject"] in ("Printer on fire", "Re: Printer on fire")
        assert body["message_id"] and body["time"]


def test_a_receiver_that_answers_4xx_fails_and_5xx_is_retried(db, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    ca = make_ca(tmp_path)
    with WebhookReceiver(ca.server_context, SECRET, status=503) as receiver:
        turn_on(db, desk, receiver.url)
        deliver(db, settings, build_mail(), desk.support.alias)
        relay = sending_settings(settings, 9).replace(outbound={"ca_file": ca.ca_file})
        clock = Clock(BASE_TIME + timedelta(hours=1))  # within the events' first day
        with running_sender(relay, clock=clock):
            wait_for(lambda: statuses(db) == {"retrying": 2}, what="two events retried")
        assert {j.last_error.split(":")[0] for j in jobs(db)} == {"HTTP 503 Service Unavailable"}
        receiver.status = 404
        clock.advance(hours=1)
        with running_sender(relay, clock=clock):
            wait_for(lambda: statuses(db) == {"failed": 2}, what="two events refused")


def test_a_receiver_that_is_down_never_holds_up_ingest(db, settings, db_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    ca = make_ca(tmp_path)
    with WebhookReceiver(ca.server_context, SECRET) as gone:
        url = gone.url  # closed when the block ends: nothing listens there any more
    turn_on(db, desk, url)
    with CaptureServer() as relay:
        worker = EmbeddedWorker(sending_settings(settings, relay.port).replace(
            outbound={"ca_file": ca.ca_file}))  # fmt: skip
        host, port = worker.start()
        try:
            codes = [send(host, port, build_mail(), [desk.support.alias])[0] for _ in range(5)]
            assert codes == [250] * 5
            wait_for(lambda: statuses(db) == {"retrying": 10}, what="every event retried")
        finally:
            worker.stop()
    assert all("ConnectError" in job.last_error for job in jobs(db))


def test_closing_a_conversation_queues_its_signed_event(db, settings) -> None:  # type: ignore[no-untyped-def]
    from tui_helpdesk.services.conversations import actions

    desk = make_desk(db, settings)
    turn_on(db, desk, "https://hooks.acme.test/hd")
    conversation_id = only_conversation(deliver(db, settings, build_mail(), desk.support.alias))
    with db.write() as session:
        actions.close(session, desk.org.admin, conversation_id, settings=settings)
    with db.read() as session:
        closed = session.scalars(
            select(OutboxJob).where(OutboxJob.event == "conversation.closed")
            .options(undefer(OutboxJob.raw))
        ).all()  # fmt: skip
    assert len(closed) == 1 and closed[0].url == "https://hooks.acme.test/hd"
    body = json.loads(closed[0].raw)
    assert (body["event"], body["conversation_id"], body["closed_by"]) == (
        "conversation.closed",
        conversation_id,
        "ada@acme.test",
    )
    assert body["mailbox"] == "support@acme.test" and body["delivery_id"] == closed[0].delivery_id
