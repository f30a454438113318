"""F16 on both backends: a new mailbox is pending until the mailed code is entered (hashed,
expiring, locked after wrong tries), receives from the start, sends nothing meanwhile; the
binding test comes back through the alias; silent mailboxes are flagged; existing databases
come out of the migration verified."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from factories import add_mailbox, add_queue, make_org
from sqlalchemy import select, update
from sqlalchemy.orm import undefer
from test_ingest_support import build_mail, deliver, messages_in, only_conversation

from tui_helpdesk.db.engine import alembic_config
from tui_helpdesk.db.models import (
    Conversation,
    Mailbox,
    MailboxVerification,
    OutboxJob,
)
from tui_helpdesk.errors import Conflict, Invalid, LimitReached
from tui_helpdesk.services import audit, autoresponder, ingest, mailboxes

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def org(db):  # type: ignore[no-untyped-def]
    return make_org(db)


def create(db, settings, org, local_part: str = "support", now: datetime = T0):  # type: ignore[no-untyped-def]
    with db.write() as session:
        return mailboxes.create(session, settings, org.admin, display_name="Support",
                                local_part=local_part, domain="acme.test", now=now)  # fmt: skip


def jobs(db, kind: str) -> list[OutboxJob]:  # type: ignore[no-untyped-def]
    with db.read() as session:
        return list(session.scalars(
            select(OutboxJob).where(OutboxJob.kind == kind).order_by(OutboxJob.id)
            .options(undefer(OutboxJob.raw))))  # fmt: skip


def code_in(job: OutboxJob) -> str:
    found = re.search(rb"\n    (\d{6})\r\n", job.raw)
    assert found is not None, job.raw
    return found.group(1).decode()


def run(db, service, *args, **kwargs):  # type: ignore[no-untyped-def]
    with db.write() as session:
        return service(session, *args, **kwargs)


def test_a_new_mailbox_is_pending_receives_and_is_verified_by_its_code(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    box = create(db, settings, org)
    assert (box.status, box.verified_at) == ("pending", None)
    [job] = jobs(db, "verification")
    code = code_in(job)
    assert (job.rcpt_to, job.mail_from, job.status) == (
        ["support@acme.test"], "support@acme.test", "queued",
    )  # fmt: skip
    assert b"Auto-Submitted: auto-generated" in job.raw
    with db.read() as session:
        stored = session.get_one(MailboxVerification, box.id)
        assert code not in stored.code_hash and stored.code_hash.startswith("scrypt$")
        assert ingest.accepts_recipient(session, box.alias)  # receives from the start
    convo = only_conversation(deliver(db, settings, build_mail(), box.alias))
    assert len(messages_in(db, convo)) == 1
    wrong = "000000" if code != "000000" else "111111"
    tried = run(db, mailboxes.verify, settings, org.admin, box.email_address, wrong, now=T0)
    assert (tried.verified, tried.tries_left) == (False, 4) and "wrong code" in tried.message
    with db.read() as session:  # the wrong try was committed
        assert session.get_one(MailboxVerification, box.id).failed_attempts == 1
    with pytest.raises(Invalid, match="6 digits"):
        run(db, mailboxes.verify, settings, org.admin, box.email_address, "12 34", now=T0)
    done = run(db, mailboxes.verify, settings, org.admin, box.email_address, f" {code} ", now=T0)
    assert done.verified and done.verified_at == T0
    with db.read() as session:
        assert mailboxes.get(session, org.admin, box.email_address).status == "active"
        assert session.get(MailboxVerification, box.id) is None
        actions = [e.action for e in audit.list_entries(session, org.admin, entity_type="mailbox")]
    assert actions[:3] == ["mailbox.verify", "mailbox.verify_failed", "mailbox.create"]
    with pytest.raises(Conflict, match="verified already"):
        run(db, mailboxes.verify, settings, org.admin, box.email_address, code, now=T0)


def test_wrong_codes_lock_verification_and_codes_expire(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    strict = settings.replace(verification={"max_wrong_codes": 2, "lock_minutes": 10})
    box = create(db, strict, org)
    code = code_in(jobs(db, "verification")[0])
    wrong = "000000" if code != "000000" else "111111"
    run(db, mailboxes.verify, strict, org.admin, box.email_address, wrong, now=T0)
    locked = run(db, mailboxes.verify, strict, org.admin, box.email_address, wrong, now=T0)
    assert not locked.verified and locked.locked_until == T0 + timedelta(minutes=10)
    assert "locked until 2026-12-01 09:10 UTC" in locked.message
    for service, args in ((mailboxes.verify, (code,)), (mailboxes.resend_code, ())):
        with pytest.raises(LimitReached, match="locked until"):
            run(db, service, strict, org.admin, box.email_address, *args,
                now=T0 + timedelta(minutes=9))  # fmt: skip
    later = T0 + timedelta(minutes=11)  # the lock is over, the code still valid
    assert run(db, mailboxes.verify, strict, org.admin, box.email_address, code, now=later).verified

    other = create(db, strict, org, "sales")
    old = code_in(jobs(db, "verification")[-1])
    expired = T0 + timedelta(minutes=31)
    with pytest.raises(Conflict, match="expired"):
        run(db, mailboxes.verify, strict, org.admin, other.email_address, old, now=expired)
    sent = run(db, mailboxes.resend_code, strict, org.admin, other.email_address, now=expired)
    assert sent.code_expires_at == expired + timedelta(minutes=30)
    with pytest.raises(LimitReached, match="wait"):
        run(db, mailboxes.resend_code, strict, org.admin, other.email_address, now=expired)
    new = code_in(jobs(db, "verification")[-1])
    if new != old:  # the old code stopped working
        assert not run(db, mailboxes.verify, strict, org.admin, other.email_address, old,
                       now=expired).verified  # fmt: skip
    assert run(db, mailboxes.verify, strict, org.admin, other.email_address, new,
               now=expired).verified  # fmt: skip


def test_a_pending_mailbox_is_a_mailbox_for_every_other_rule(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    small = settings.replace(limits={"mailboxes_per_organisation": 2})
    create(db, small, org)
    with pytest.raises(Conflict, match="active or pending mailbox with address support@acme"):
        create(db, small, org)
    create(db, small, org, "sales")
    with pytest.raises(LimitReached):
        create(db, small, org, "billing")
    assert run(db, mailboxes.deactivate, org.admin, "sales@acme.test").status == "inactive"
    assert run(db, mailboxes.activate, org.admin, "sales@acme.test").status == "pending"
    assert run(db, mailboxes.delete, org.admin, "sales@acme.test").status == "deleted"
    with db.read() as session:
        statuses = [m.status for m in mailboxes.list_mailboxes(session, org.admin)]
    assert statuses == ["pending"]


def test_a_pending_mailbox_sends_no_automatic_reply(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    box = create(db, settings, org)
    run(db, autoresponder.configure, org.admin, box.email_address, enabled=True, body="Away")
    deliver(db, settings, build_mail(), box.alias)
    assert jobs(db, "auto_reply") == []
    code = code_in(jobs(db, "verification")[0])
    run(db, mailboxes.verify, settings, org.admin, box.email_address, code, now=T0)
    deliver(db, settings, build_mail(sender="dan@customer.test"), box.alias)
    assert len(jobs(db, "auto_reply")) == 1


def test_the_binding_test_comes_back_through_the_alias(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    box = create(db, settings, org)  # pending: the forwarding is checked before the code
    sales = add_mailbox(db, settings, org.admin, "sales")
    sent = run(db, mailboxes.send_test, settings, org.admin, box.email_address, now=T0)
    assert (sent.returned_at, sent.binding_checked_at) == (None, None)
    [job] = jobs(db, "test")
    token = re.search(rb"X-Helpdesk-Binding-Test: (\w+)", job.raw).group(1).decode()  # type: ignore[union-attr]
    assert (
        job.rcpt_to == ["support@acme.test"] and token.encode() in job.raw.split(b"\r\n\r\n", 1)[1]
    )
    # the same test at another mailbox's alias, or a made-up token: ordinary mail
    assert deliver(db, settings, job.raw, sales.alias).conversation_ids
    forged = build_mail(headers=[("X-Helpdesk-Binding-Test", "0" * 32)])
    assert deliver(db, settings, forged, box.alias).conversation_ids
    back = T0 + timedelta(minutes=2)
    result = deliver(db, settings, job.raw, box.alias, at=back, mail_from="support@acme.test")
    assert result.conversation_ids == () and result.message_ids == ()
    with db.read() as session:
        record = mailboxes.get(session, org.admin, box.email_address)
        subjects = session.scalars(
            select(Conversation.subject).where(Conversation.mailbox_id == box.id)
        ).all()
    assert record.binding_checked_at == back and record.last_inbound_at == back
    assert "Helpdesk forwarding test for support@acme.test" not in subjects


def test_list_flags_a_mailbox_that_received_nothing_for_a_day(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    box = add_mailbox(db, settings, org.admin, "support")
    add_mailbox(db, settings, org.admin, "sales")
    with db.write() as session:
        session.execute(update(Mailbox).values(created_at=datetime.now(UTC) - timedelta(days=2)))
    deliver(db, settings, build_mail(), box.alias, at=datetime.now(UTC) - timedelta(hours=1))
    with db.read() as session:
        found = {m.local_part: m.silent for m in mailboxes.list_mailboxes(session, org.admin)}
    assert found == {"sales": True, "support": False}


def test_the_migration_verifies_the_mailboxes_there_are(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    create(db, settings, org)
    add_queue(db, settings, org.admin, "Support", mailboxes=["support@acme.test"])
    config = alembic_config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "20261130_search")
    db.migrate()
    with db.read() as session:
        record = mailboxes.get(session, org.admin, "support@acme.test")
    assert record.status == "active" and record.verified_at == record.created_at
