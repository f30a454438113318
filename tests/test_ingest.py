"""store_inbound (F40, F41 duplicates, F71, F74, F76): what an agent finds after a 250."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from factories import add_mailbox
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from test_ingest_support import (
    build_mail,
    conversation,
    deliver,
    dsn,
    inbound,
    make_desk,
    message_id_of,
    messages_in,
    only_conversation,
)

from tui_helpdesk.db.models import (
    Attachment,
    Blob,
    Contact,
    ConversationParticipant,
    Mailbox,
    Message,
)
from tui_helpdesk.mail.parse import parse_message
from tui_helpdesk.mail.parsed import BounceInfo, ParsedAttachment
from tui_helpdesk.services import ingest, mailboxes, routing
from tui_helpdesk.services.ingest import batch as ingest_batch
from tui_helpdesk.services.ingest import deliver as ingest_deliver
from tui_helpdesk.services.ingest.clean import MESSAGE_ID_MAX, UNREADABLE_SUBJECT


@pytest.fixture
def desk(db, settings):  # type: ignore[no-untyped-def]
    return make_desk(db, settings)


def test_accepts_only_aliases_of_active_mailboxes(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    spare = add_mailbox(db, settings, desk.org.admin, "spare")
    gone = add_mailbox(db, settings, desk.org.admin, "gone")
    with db.write() as session:
        mailboxes.deactivate(session, desk.org.admin, spare.email_address)
        mailboxes.delete(session, desk.org.admin, gone.email_address)
    with db.read() as session:
        assert ingest.accepts_recipient(session, desk.support.alias)
        assert ingest.accepts_recipient(session, desk.support.alias.upper())
        assert not ingest.accepts_recipient(session, "nobody@" + desk.support.alias.split("@")[1])
        assert not ingest.accepts_recipient(session, spare.alias)
        assert not ingest.accepts_recipient(session, gone.alias)
        aliases = ingest.active_aliases(session)
    assert aliases == {desk.support.alias.lower(), desk.sales.alias.lower()}


def test_message_is_stored_with_raw_bytes_parsed_fields_and_a_new_conversation(
    db, settings, desk
) -> None:  # type: ignore[no-untyped-def]
    raw = build_mail(cc="Dan <dan@customer.test>")
    result = deliver(db, settings, raw, desk.support.alias)
    assert not result.duplicate and len(result.message_ids) == 1
    with db.read() as session:
        message = session.get(Message, result.message_ids[0])
        assert message.raw == raw
        assert message.raw_sha256 == hashlib.sha256(raw).hexdigest() and message.raw_size == len(
            raw
        )
        assert message.subject == "Printer on fire"
        assert (message.from_address, message.from_name) == (
            "carol@customer.test",
            "Carol Customer",
        )
        assert "the printer is on fire" in message.text_body
        assert message.envelope_from == "carol@customer.test"
        assert message.envelope_to == desk.support.alias
        assert message.message_id_header == message_id_of(raw)
        assert (message.direction, message.kind, message.processing_error) == (
            "inbound",
            "mail",
            "",
        )
        contact = session.scalars(select(Contact)).one()
        people = set(session.scalars(select(ConversationParticipant.email)))
        box = session.get(Mailbox, desk.support.id)
    convo = conversation(db, only_conversation(result))
    assert (convo.subject, convo.status, convo.mailbox_id) == (
        "Printer on fire",
        "open",
        desk.support.id,
    )
    assert convo.queue_id == desk.support_queue.id
    assert convo.message_count == 1 and convo.last_message_at == message.received_at
    assert convo.contact_id == contact.id
    assert (contact.email, contact.name) == ("carol@customer.test", "Carol Customer")
    assert people == {"carol@customer.test", "support@acme.test", "dan@customer.test"}
    assert box.last_inbound_at == message.received_at


def test_each_new_mail_is_its_own_conversation_and_the_contact_is_reused(
    db, settings, desk
) -> None:  # type: ignore[no-untyped-def]
    first = deliver(db, settings, build_mail(), desk.support.alias)
    second = deliver(db, settings, build_mail(sender="CAROL@Customer.TEST"), desk.support.alias)
    assert only_conversation(first) != only_conversation(second)
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 1
    assert (
        conversation(db, only_conversation(second)).contact_id
        == conversation(db, only_conversation(first)).contact_id
    )


def test_one_message_per_receiving_mailbox(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    raw = build_mail()
    rcpts = [desk.support.alias, desk.sales.alias, desk.support.alias.upper()]
    result = deliver(db, settings, raw, rcpts)
    assert len(result.message_ids) == 2 and len(set(result.conversation_ids)) == 2
    boxes = {conversation(db, c).mailbox_id for c in result.conversation_ids}
    assert boxes == {desk.support.id, desk.sales.id}


def test_duplicate_delivery_is_stored_once(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    raw = build_mail()
    first = deliver(db, settings, raw, desk.support.alias)
    again = deliver(db, settings, raw, desk.support.alias)
    assert again.duplicate and again.message_ids == first.message_ids
    assert again.conversation_ids == first.conversation_ids
    assert len(messages_in(db, only_conversation(first))) == 1
    assert conversation(db, only_conversation(first)).message_count == 1
    elsewhere = deliver(db, settings, raw, desk.sales.alias)  # another mailbox keeps its copy
    assert not elsewhere.duplicate and elsewhere.message_ids != first.message_ids


def test_reused_message_id_with_other_content_is_a_new_message(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    first = deliver(db, settings, build_mail(message_id="<same@customer.test>"), desk.support.alias)
    other = build_mail(message_id="<same@customer.test>", body="Something else entirely.\r\n")
    second = deliver(db, settings, other, desk.support.alias)
    assert not second.duplicate and second.message_ids != first.message_ids
    with db.read() as session:
        stored = session.scalars(select(Message.raw).where(Message.id == second.message_ids[0]))
        assert stored.one() == other


def test_attachments_are_stored_content_addressed(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    raw = build_mail()
    pdf = ParsedAttachment("invoice.pdf", "application/pdf", b"%PDF-1.7 fake", "attachment", "")
    logo = ParsedAttachment("logo.png", "image/png", b"\x89PNG fake", "inline", "<logo@x>")
    parsed = dataclasses.replace(parse_message(raw), attachments=(pdf, logo, pdf))
    with db.write() as session:
        first = ingest.store_inbound(session, settings, inbound(raw, desk.support.alias), parsed)
    parsed2 = dataclasses.replace(parse_message(build_mail()), attachments=(pdf,))
    with db.write() as session:
        ingest.store_inbound(session, settings, inbound(build_mail(), desk.support.alias), parsed2)
    with db.read() as session:
        blobs = {b.sha256: b.size for b in session.scalars(select(Blob))}
        rows = session.scalars(
            select(Attachment)
            .where(Attachment.message_id == first.message_ids[0])
            .order_by(Attachment.id)
        ).all()
        data = session.scalar(select(Blob.data).where(Blob.sha256 == rows[1].sha256))
    assert blobs == {hashlib.sha256(pdf.data).hexdigest(): len(pdf.data),
                     hashlib.sha256(logo.data).hexdigest(): len(logo.data)}  # fmt: skip
    assert [(a.filename, a.content_type, a.size, a.disposition) for a in rows] == [
        ("invoice.pdf", "application/pdf", len(pdf.data), "attachment"),
        ("logo.png", "image/png", len(logo.data), "inline"),
        ("invoice.pdf", "application/pdf", len(pdf.data), "attachment"),
    ]
    assert rows[1].content_id == "<logo@x>" and data == logo.data


def _bounce_of(
    original_id: str, failed: str, *, permanent: bool = True
) -> tuple[bytes, BounceInfo]:
    raw = build_mail(
        sender="Mail Delivery System <MAILER-DAEMON@mx.customer.test>",
        subject="Undelivered Mail Returned to Sender",
    )
    status = "5.1.1" if permanent else "4.4.1"
    info = BounceInfo(original_id, (failed,), status, "550 5.1.1 user unknown", permanent)
    return raw, info


def test_bounce_attaches_to_its_conversation_and_flags_the_recipient(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    original = build_mail()
    first = deliver(db, settings, original, desk.support.alias)
    raw, info = _bounce_of(message_id_of(original), "carol@customer.test")
    parsed = dataclasses.replace(parse_message(raw), bounce=info)
    with db.write() as session:
        result = ingest.store_inbound(
            session, settings, inbound(raw, desk.support.alias, mail_from=""), parsed
        )
    assert result.conversation_ids == first.conversation_ids
    bounce = messages_in(db, only_conversation(first))[-1]
    assert (bounce.kind, bounce.bounce_recipient) == ("bounce", "carol@customer.test")
    with db.read() as session:
        carol = session.scalars(select(Contact).where(Contact.email == "carol@customer.test")).one()
        daemon = session.scalars(select(Contact).where(Contact.email.like("mailer-daemon%"))).all()
    assert carol.bounced_at == bounce.received_at and "5.1.1" in carol.bounce_reason
    assert daemon == []
    assert conversation(db, only_conversation(first)).message_count == 2


def test_a_delayed_notice_attaches_without_flagging(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    original = build_mail()
    first = deliver(db, settings, original, desk.support.alias)
    raw, info = _bounce_of(message_id_of(original), "carol@customer.test", permanent=False)
    parsed = dataclasses.replace(parse_message(raw), bounce=info)
    with db.write() as session:
        result = ingest.store_inbound(session, settings, inbound(raw, desk.support.alias), parsed)
        carol = session.scalars(select(Contact).where(Contact.email == "carol@customer.test")).one()
        assert carol.bounced_at is None
    assert result.conversation_ids == first.conversation_ids


def test_bounce_of_an_unknown_message_is_ordinary_mail(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    deliver(db, settings, build_mail(), desk.support.alias)
    raw, info = _bounce_of("<never-sent@acme.test>", "carol@customer.test")
    parsed = dataclasses.replace(parse_message(raw), bounce=info)
    with db.write() as session:
        result = ingest.store_inbound(session, settings, inbound(raw, desk.support.alias), parsed)
        carol = session.scalars(select(Contact).where(Contact.email == "carol@customer.test")).one()
        assert carol.bounced_at is None
    stored = messages_in(db, only_conversation(result))
    assert [m.kind for m in stored] == ["mail"]
    assert (
        conversation(db, only_conversation(result)).subject == "Undelivered Mail Returned to Sender"
    )


def test_real_dsn_bytes_attach_to_the_bounced_conversation(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    original = build_mail()
    first = deliver(db, settings, original, desk.support.alias)
    report = dsn(message_id_of(original), "carol@customer.test")
    result = deliver(db, settings, report, desk.support.alias, mail_from="")
    assert result.conversation_ids == first.conversation_ids
    assert messages_in(db, only_conversation(first))[-1].kind == "bounce"


def test_a_failure_after_parsing_keeps_the_raw_message_with_its_error(
    db, settings, desk, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ValueError("routing exploded")

    monkeypatch.setattr(routing, "decide", broken)
    raw = build_mail()
    result = deliver(db, settings, raw, desk.support.alias)
    assert "routing exploded" in result.processing_errors[0]
    [message] = messages_in(db, only_conversation(result))
    assert message.raw == raw and "routing exploded" in message.processing_error
    assert message.message_id_header == message_id_of(raw)
    convo = conversation(db, only_conversation(result))
    assert convo.mailbox_id == desk.support.id and convo.subject == "Printer on fire"
    assert convo.queue_id == desk.support_queue.id
    with db.read() as session:  # the failed attempt left nothing half-stored behind
        assert session.scalar(select(func.count()).select_from(Message)) == 1


def test_a_parser_crash_keeps_the_raw_message(db, settings, desk, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def crash(raw: bytes):  # type: ignore[no-untyped-def]
        raise RuntimeError("parser bug")

    monkeypatch.setattr(ingest_batch, "parse_message", crash)
    raw = b"\x00\xff garbage \r\n"
    result = deliver(db, settings, raw, desk.support.alias)
    [message] = messages_in(db, only_conversation(result))
    assert message.raw == raw and "parser bug" in message.processing_error
    assert conversation(db, only_conversation(result)).subject == UNREADABLE_SUBJECT


def test_text_no_database_accepts_is_cleaned_not_refused(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    raw = build_mail()
    parsed = dataclasses.replace(
        parse_message(raw),
        subject="nul\x00 and \udcff surrogate",
        text_body="body\x00",
        defects=("bad\x00",),
        message_id="<" + "x" * 2000 + "@y>",
    )
    with db.write() as session:
        result = ingest.store_inbound(session, settings, inbound(raw, desk.support.alias), parsed)
    [message] = messages_in(db, only_conversation(result))
    assert message.processing_error == ""
    assert message.subject == "nul and ? surrogate" and message.text_body == "body"
    assert len(message.message_id_header) == MESSAGE_ID_MAX


def test_store_batch_commits_the_rest_when_one_mail_hits_a_database_error(
    db, settings, desk, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    poison = build_mail(subject="poison")

    def poisoned(store):  # type: ignore[no-untyped-def]
        def flaky(batch, mail, *args):  # type: ignore[no-untyped-def]
            if mail.raw == poison:  # a foreign-key violation: a database error of this mail
                batch.session.add(Message(conversation_id=999_999, raw=b"", raw_sha256="x"))
                batch.session.flush()
            return store(batch, mail, *args)

        return flaky

    for name in ("store_parsed", "store_raw"):  # both the parsed and the raw attempt fail
        monkeypatch.setattr(ingest_deliver, name, poisoned(getattr(ingest_deliver, name)))
    mails = [inbound(build_mail(), desk.support.alias), inbound(poison, desk.support.alias),
             inbound(build_mail(), desk.sales.alias)]  # fmt: skip
    results = ingest.store_batch(db, settings, mails)
    assert isinstance(results[1], IntegrityError)
    assert [len(r.message_ids) for r in (results[0], results[2])] == [1, 1]
    with db.read() as session:
        subjects = session.scalars(select(Message.subject)).all()
    assert sorted(subjects) == ["Printer on fire", "Printer on fire"]


@hsettings(max_examples=40, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(raw=st.one_of(st.binary(max_size=2000), st.builds(
    lambda head, tail: build_mail()[:head] + tail,
    st.integers(0, 400), st.binary(max_size=300))))  # fmt: skip
def test_any_bytes_are_stored_exactly(db, settings, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    with db.read() as session:
        alias = session.scalars(
            select(Mailbox.alias).where(Mailbox.local_part == "support")
        ).first()
    if alias is None:
        alias = make_desk(db, settings).support.alias
    result = deliver(db, settings, raw, alias)
    assert len(result.message_ids) == 1
    with db.read() as session:
        stored = session.get(Message, result.message_ids[0])
        assert stored.raw == raw and stored.raw_sha256 == hashlib.sha256(raw).hexdigest()
