"""F41 threading: replies join their conversation, strangers and look-alike subjects never do."""

from __future__ import annotations

import pytest
from test_ingest_support import (
    build_mail,
    conversation,
    deliver,
    make_desk,
    message_id_of,
    messages_in,
    only_conversation,
)

from tui_helpdesk.db.models import (
    Conversation,
    ConversationParticipant,
    EmailDomain,
    Mailbox,
    Message,
    Organisation,
)
from tui_helpdesk.mail.tokens import subject_token, token_ids
from tui_helpdesk.services.threading import reference_chain


@pytest.fixture
def desk(db, settings):  # type: ignore[no-untyped-def]
    return make_desk(db, settings)


def _first(db, settings, desk, **kwargs):  # type: ignore[no-untyped-def]
    raw = build_mail(**kwargs)
    return raw, only_conversation(deliver(db, settings, raw, desk.support.alias))


def _set_status(db, conversation_id: int, status: str) -> None:  # type: ignore[no-untyped-def]
    with db.write() as session:
        session.get(Conversation, conversation_id).status = status


def test_token_parsing_is_exact_about_the_prefix() -> None:
    assert token_ids("Re: [HD#12] Printer", "HD") == [12]
    assert token_ids("[HD#3] and [HD#4] and [HD#3]", "HD") == [3, 4]
    for subject in ("[HDX#3] x", "[PAGOS-MESI] x", "[XHD#3]", "HD#3", "[HD#]", "[hd#3]", "[HD #3]"):
        assert token_ids(subject, "HD") == [], subject
    assert token_ids("[PAGOS-MESI#7]", "PAGOS-MESI") == [7]
    assert subject_token("HD", 42) == "[HD#42]"


def test_in_reply_to_joins_the_conversation(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    raw, convo = _first(db, settings, desk)
    reply = build_mail(subject="Re: Printer on fire", in_reply_to=message_id_of(raw))
    assert only_conversation(deliver(db, settings, reply, desk.support.alias)) == convo
    assert conversation(db, convo).message_count == 2


def test_references_chain_is_searched_newest_first(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    old_raw, old = _first(db, settings, desk, subject="Old")
    new_raw, new = _first(db, settings, desk, subject="New")
    refs = [message_id_of(old_raw), "<unknown@elsewhere>", message_id_of(new_raw), "<gone@x>"]
    reply = build_mail(subject="Re: both", in_reply_to="<also-unknown@x>", references=refs)
    assert only_conversation(deliver(db, settings, reply, desk.support.alias)) == new
    only_old = build_mail(subject="Re", references=[message_id_of(old_raw), "<unknown@x>"])
    assert only_conversation(deliver(db, settings, only_old, desk.support.alias)) == old


def test_replies_to_our_own_outgoing_message_join(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    _, convo = _first(db, settings, desk)
    with db.write() as session:
        session.add(Message(conversation_id=convo, mailbox_id=desk.support.id, direction="outbound",
                            message_id_header="<reply1@helpdesk.acme.test>", raw=b"x",
                            raw_sha256="0" * 64))  # fmt: skip
    reply = build_mail(subject="Re: Re: Printer", in_reply_to="<reply1@helpdesk.acme.test>")
    assert only_conversation(deliver(db, settings, reply, desk.support.alias)) == convo


def test_subject_token_joins_and_subject_text_alone_never_does(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    _, convo = _first(db, settings, desk)
    tokened = build_mail(subject=f"Re: [HD#{convo}] Printer on fire")
    assert only_conversation(deliver(db, settings, tokened, desk.support.alias)) == convo
    same_subject = build_mail(subject="Printer on fire")
    assert only_conversation(deliver(db, settings, same_subject, desk.support.alias)) != convo
    for subject in (f"[HDX#{convo}] Printer", f"[PAGOS-MESI] #{convo}", f"Re: HD#{convo}"):
        result = deliver(db, settings, build_mail(subject=subject), desk.support.alias)
        assert only_conversation(result) != convo, subject


def test_the_token_prefix_comes_from_the_settings(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    _, convo = _first(db, settings, desk)
    custom = settings.replace(mail={"subject_token_prefix": "ACME-T"})
    plain = deliver(db, custom, build_mail(subject=f"Re: [HD#{convo}]"), desk.support.alias)
    assert only_conversation(plain) != convo
    tokened = deliver(db, custom, build_mail(subject=f"Re: [ACME-T#{convo}]"), desk.support.alias)
    assert only_conversation(tokened) == convo


def test_a_stranger_is_never_merged_into_another_mailboxs_thread(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    raw, convo = _first(db, settings, desk)
    stranger = "Mallory <mallory@evil.test>"
    by_reference = build_mail(sender=stranger, to="sales@acme.test", in_reply_to=message_id_of(raw))
    by_token = build_mail(sender=stranger, to="sales@acme.test", subject=f"[HD#{convo}] hi")
    for mail in (by_reference, by_token):
        result = deliver(db, settings, mail, desk.sales.alias, mail_from="mallory@evil.test")
        assert only_conversation(result) != convo
        assert conversation(db, only_conversation(result)).mailbox_id == desk.sales.id
    assert conversation(db, convo).message_count == 1


def test_a_participant_threads_across_mailboxes(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    raw, convo = _first(db, settings, desk, cc="Dan <dan@customer.test>")
    for sender in ("carol@customer.test", "Dan <DAN@customer.test>"):
        reply = build_mail(sender=sender, to="sales@acme.test", in_reply_to=message_id_of(raw))
        assert only_conversation(deliver(db, settings, reply, desk.sales.alias)) == convo
    with db.read() as session:
        people = set(
            session.scalars(
                ConversationParticipant.__table__.select()
                .with_only_columns(ConversationParticipant.email)
                .where(ConversationParticipant.conversation_id == convo)
            )
        )
    assert {"carol@customer.test", "dan@customer.test", "sales@acme.test"} <= people


def test_mail_to_the_same_mailbox_threads_whoever_sends_it(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    raw, convo = _first(db, settings, desk)
    colleague = build_mail(sender="erin@customer.test", in_reply_to=message_id_of(raw))
    assert only_conversation(deliver(db, settings, colleague, desk.support.alias)) == convo


def test_another_organisation_is_never_matched(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    raw, convo = _first(db, settings, desk)
    with db.write() as session:  # a second tenant, made directly: services act in one org
        globex = Organisation(name="Globex")
        session.add(globex)
        session.flush()
        domain = EmailDomain(organisation_id=globex.id, domain="globex.test")
        session.add(domain)
        session.flush()
        box = Mailbox(organisation_id=globex.id, display_name="Help", local_part="help",
                      domain_id=domain.id, email_address="help@globex.test",
                      alias="globexhelp@in.helpdesk.localhost")  # fmt: skip
        session.add(box)
    for mail in (build_mail(in_reply_to=message_id_of(raw)), build_mail(subject=f"[HD#{convo}]")):
        result = deliver(db, settings, mail, box.alias)
        assert conversation(db, only_conversation(result)).organisation_id == globex.id


def test_a_reply_to_a_closed_conversation_opens_a_new_linked_one(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    raw, convo = _first(db, settings, desk)
    _set_status(db, convo, "closed")
    reply = build_mail(subject="Re: Printer on fire", in_reply_to=message_id_of(raw))
    successor = only_conversation(deliver(db, settings, reply, desk.support.alias))
    assert successor != convo
    assert conversation(db, successor).previous_conversation_id == convo
    assert conversation(db, successor).status == "open"
    assert conversation(db, convo).message_count == 1
    # A second answer to the same closed thread joins that new conversation, not a third one.
    again = build_mail(subject=f"Re: [HD#{convo}]", references=[message_id_of(raw)])
    assert only_conversation(deliver(db, settings, again, desk.support.alias)) == successor
    assert [m.subject for m in messages_in(db, successor)] == [
        "Re: Printer on fire",
        f"Re: [HD#{convo}]",
    ]


def test_a_reply_to_a_pending_conversation_reopens_it(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    raw, convo = _first(db, settings, desk)
    _set_status(db, convo, "pending")
    deliver(db, settings, build_mail(in_reply_to=message_id_of(raw)), desk.support.alias)
    assert conversation(db, convo).status == "open"


def test_reference_chain_order() -> None:
    from tui_helpdesk.mail.parse import parse_message

    raw = build_mail(in_reply_to="<c@x>", references=["<a@x>", "<b@x>", "<c@x>"])
    assert reference_chain(parse_message(raw)) == ["<c@x>", "<b@x>", "<a@x>"]
