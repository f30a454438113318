"""The agent's mail as services (F43, F18, F20): reply, forward, new mail and notes; what is
stored, what is queued, who may send, and that the customer's answer threads back."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest
from factories import add_user
from sqlalchemy import select
from sqlalchemy.orm import undefer
from test_ingest_support import (
    build_mail,
    deliver,
    make_desk,
    message_id_of,
    messages_in,
    only_conversation,
)

from tui_helpdesk.db.models import Conversation, ConversationParticipant, OutboxJob
from tui_helpdesk.errors import Conflict, Invalid, NotFound, PermissionDenied
from tui_helpdesk.services import audit, autoresponder, mailboxes, users
from tui_helpdesk.services.conversations import notes, replies, thread


@pytest.fixture
def desk(db, settings):  # type: ignore[no-untyped-def]
    return make_desk(db, settings)


def customer_writes(db, settings, desk, **mail) -> tuple[int, bytes]:  # type: ignore[no-untyped-def]
    raw = build_mail(**mail)
    return only_conversation(deliver(db, settings, raw, desk.support.alias)), raw


def job_of(db, job_id: int) -> OutboxJob:  # type: ignore[no-untyped-def]
    with db.read() as session:
        return session.scalars(
            select(OutboxJob).where(OutboxJob.id == job_id).options(undefer(OutboxJob.raw))
        ).one()


def headers_of(raw: bytes):  # type: ignore[no-untyped-def]
    return BytesParser(policy=policy.default).parsebytes(raw)


def run(db, service, *args, **kwargs):  # type: ignore[no-untyped-def]
    with db.write() as session:
        return service(session, *args, **kwargs)


def test_a_reply_is_composed_stored_queued_and_answered_into_the_thread(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    bob = add_user(db, desk.org.admin, "bobby@acme.test", first_name="Bob", last_name="Smith")
    run(
        db,
        mailboxes.update,
        desk.org.admin,
        "support@acme.test",
        mailboxes.MailboxChanges(display_name="{{first_name}} at Acme", responsible=bob.email),
    )
    run(db, mailboxes.set_signature, desk.org.admin, "support@acme.test",
        text="{{agent_name}}, {{mailbox_name}}", html="<b>{{agent_name}}</b>")  # fmt: skip
    first = build_mail(subject="Printer on fire", references=["<root@customer.test>"])
    convo = only_conversation(deliver(db, settings, first, desk.support.alias))
    sent = run(db, replies.reply, settings, desk.org.admin, convo, "We are on it.\n")
    job = job_of(db, sent.outbox_job_id)
    mail = headers_of(job.raw)
    assert (job.kind, job.status, job.rcpt_to, job.mail_from) == (
        "reply", "queued", ["carol@customer.test"], "support@acme.test",
    )  # fmt: skip
    assert str(mail["From"]) == "Bob at Acme <support@acme.test>"
    assert str(mail["To"]) == "Carol Customer <carol@customer.test>"
    assert mail["Subject"] == f"Re: Printer on fire [HD#{convo}]"
    assert mail["In-Reply-To"] == message_id_of(first)
    assert mail["References"].split() == ["<root@customer.test>", message_id_of(first)]
    assert mail["Message-ID"].endswith("@acme.test>") and mail["Auto-Submitted"] is None
    text, html = (p.get_content().replace("\r\n", "\n") for p in mail.iter_parts())
    assert text.startswith("We are on it.\n\n-- \nAda Lovelace, Bob at Acme\n\nOn Mon, 23 Nov")
    assert "> the printer is on fire." in text and "<b>Ada Lovelace</b>" in html
    stored = messages_in(db, convo)[-1]
    assert (stored.direction, stored.kind, stored.message_id_header, stored.raw) == (
        "outbound", "mail", mail["Message-ID"], job.raw,
    )  # fmt: skip
    assert sent.message.delivery == "queued" and sent.message.id == stored.id
    answer = build_mail(subject="Re: Printer on fire", in_reply_to=mail["Message-ID"],
                        references=[mail["Message-ID"]])  # fmt: skip
    assert only_conversation(deliver(db, settings, answer, desk.support.alias)) == convo
    with db.read() as session:
        entry = audit.list_entries(session, desk.org.admin, entity_type="conversation")[0]
    assert entry.action == "conversation.reply" and entry.after["to"] == ["carol@customer.test"]


def test_reply_all_and_cc(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    convo, _ = customer_writes(
        db, settings, desk, to="support@acme.test, dan@customer.test",
        cc="Eve <eve@customer.test>, sales@acme.test",
    )  # fmt: skip
    sent = run(db, replies.reply, settings, desk.org.admin, convo, "Hi all", reply_all=True,
               cc=["boss@customer.test", "EVE@customer.test"])  # fmt: skip
    mail = headers_of(job_of(db, sent.outbox_job_id).raw)
    assert [a.addr_spec for a in mail["Cc"].addresses] == [
        "boss@customer.test", "EVE@customer.test", "dan@customer.test",
    ]  # fmt: skip
    with db.read() as session:
        people = set(session.scalars(select(ConversationParticipant.email).where(
            ConversationParticipant.conversation_id == convo)))  # fmt: skip
    assert "boss@customer.test" in people  # whom we wrote to may answer into the thread


@pytest.mark.parametrize(
    ("kwargs", "field", "says"),
    [
        ({"cc": ["a@x.test, b@x.test"]}, "cc", "one address per entry"),
        ({"cc": ["a@x.test\r\nBcc: eve@x.test"]}, "cc", "one line"),
        ({"body": "   \n"}, "body", "empty"),
    ],
)
def test_a_bad_reply_names_the_field_and_changes_nothing(
    db, settings, desk, kwargs, field, says
) -> None:  # type: ignore[no-untyped-def]
    convo, _ = customer_writes(db, settings, desk)
    kwargs = dict(kwargs)  # the parameters are shared by both backends' runs
    body = kwargs.pop("body", "Hello")
    with pytest.raises(Invalid, match=says) as refused:
        run(db, replies.reply, settings, desk.org.admin, convo, body, **kwargs)
    assert refused.value.field == field
    assert len(messages_in(db, convo)) == 1


def test_compose_starts_a_conversation_from_the_queues_default_mailbox(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    bob = add_user(db, desk.org.admin, "bob2@acme.test")
    with pytest.raises(PermissionDenied, match="works in no queue"):
        run(db, replies.compose, settings, bob, queue="Support", to=["carol@customer.test"],
            subject="Hello", body="Hi")  # fmt: skip
    sent = run(db, replies.compose, settings, desk.org.admin, queue="Support",
               to=["carol@customer.test"], subject="Your order [HD#9]",
               body="It shipped.")  # fmt: skip
    convo = sent.conversation_id
    mail = headers_of(job_of(db, sent.outbox_job_id).raw)
    assert mail["From"].addresses[0].addr_spec == "support@acme.test"
    assert mail["Subject"] == f"Your order [HD#{convo}]" and mail["In-Reply-To"] is None
    with db.read() as session:
        made = session.get_one(Conversation, convo)
        detail = thread.get_conversation(session, desk.org.admin, convo)
    assert (made.status, made.assignee_id, made.queue_id, made.message_count) == (
        "open", desk.org.admin.id, desk.support_queue.id, 1,
    )  # fmt: skip
    assert detail.conversation.contact == "carol@customer.test"
    assert not detail.conversation.unread  # the writer has read it
    answer = build_mail(subject=f"Re: Your order [HD#{convo}]", in_reply_to=mail["Message-ID"])
    assert only_conversation(deliver(db, settings, answer, desk.support.alias)) == convo
    # a reply in a conversation we started goes to whom we wrote first, if they said nothing
    again = run(db, replies.compose, settings, desk.org.admin, mailbox="sales@acme.test",
                to=["dan@customer.test"], subject="Quote", body="Attached.")  # fmt: skip
    follow = run(db, replies.reply, settings, desk.org.admin, again.conversation_id, "Any news?")
    assert job_of(db, follow.outbox_job_id).rcpt_to == ["dan@customer.test"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"subject": "Hello\r\nBcc: eve@x.test"}, "subject"),
        ({"subject": " "}, "subject"),
        ({"to": []}, "to"),
        ({"to": ["Carol <carol@customer.test>"]}, "to"),
        ({"mailbox": None, "queue": None}, "mailbox"),
    ],
)
def test_bad_new_mail_is_refused_naming_the_field(db, settings, desk, kwargs, field) -> None:  # type: ignore[no-untyped-def]
    values = {"mailbox": "support@acme.test", "to": ["carol@customer.test"], "subject": "Hi",
              "body": "Hello"} | kwargs  # fmt: skip
    with pytest.raises(Invalid) as refused:
        run(db, replies.compose, settings, desk.org.admin, **values)
    assert refused.value.field == field
    with db.read() as session:
        assert session.scalars(select(Conversation)).all() == []


def test_forward_carries_the_message_and_its_attachments(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    raw = (b"From: Carol <carol@customer.test>\r\nTo: support@acme.test\r\nSubject: Invoice\r\n"
           b"Message-ID: <inv@customer.test>\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
           b"Content-Type: text/plain\r\n\r\nSee attached.\r\n--b\r\n"
           b'Content-Type: application/pdf; name="inv.pdf"\r\n'
           b"Content-Disposition: attachment; filename=\"inv.pdf\"\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0x\r\n--b--\r\n")  # fmt: skip
    convo = only_conversation(deliver(db, settings, raw, desk.support.alias))
    sent = run(db, replies.forward, settings, desk.org.admin, convo, to=["acct@partner.test"],
               body="Can you check this?")  # fmt: skip
    job = job_of(db, sent.outbox_job_id)
    mail = headers_of(job.raw)
    assert job.kind == "forward" and mail["Subject"] == f"Fwd: Invoice [HD#{convo}]"
    body = mail.get_body(("plain",)).get_content()
    assert "Can you check this?" in body and "Subject: Invoice" in body and "See attached." in body
    [attached] = list(mail.iter_attachments())
    assert (attached.get_filename(), attached.get_content()) == ("inv.pdf", b"%PDF-1")
    answer = build_mail(sender="acct@partner.test", in_reply_to=mail["Message-ID"],
                        subject="Re: Fwd: Invoice")  # fmt: skip
    assert only_conversation(deliver(db, settings, answer, desk.support.alias)) == convo
    with pytest.raises(NotFound, match="no message 999"):
        run(db, replies.forward, settings, desk.org.admin, convo, to=["a@partner.test"],
            message_id=999)  # fmt: skip


def test_who_may_send_and_from_which_mailbox(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    ada, convo = desk.org.admin, customer_writes(db, settings, desk)[0]
    bob = add_user(db, ada, "robert@acme.test")
    with db.read() as session:
        agent = users.get(session, ada, "bob@acme.test")
    run(db, mailboxes.set_senders, ada, "support@acme.test", ["bob@acme.test"])
    with pytest.raises(PermissionDenied, match="only the listed senders"):
        run(db, replies.reply, settings, ada, convo, "Hello")
    assert run(db, replies.reply, settings, agent, convo, "Hello").outbox_job_id
    with pytest.raises(NotFound):  # robert works in no queue: he does not even see it
        run(db, replies.reply, settings, bob, convo, "Hello")
    record = run(db, mailboxes.set_senders, ada, "support@acme.test", None)
    assert record.senders == ()
    assert run(db, replies.reply, settings, ada, convo, "Hello").outbox_job_id
    with pytest.raises(PermissionDenied):  # agents do not set it
        run(db, mailboxes.set_senders, agent, "support@acme.test", ["bob@acme.test"])


def test_nothing_is_sent_from_a_pending_or_inactive_mailbox_nor_into_a_closed_thread(
    db, settings, desk
) -> None:  # type: ignore[no-untyped-def]
    from factories import add_mailbox

    ada = desk.org.admin
    add_mailbox(db, settings, ada, "new", verified=False)
    with pytest.raises(Conflict, match=r"new@acme\.test is pending: it sends once verified"):
        run(db, replies.compose, settings, ada, mailbox="new@acme.test",
            to=["carol@customer.test"], subject="Hi", body="Hello")  # fmt: skip
    convo, _ = customer_writes(db, settings, desk)
    from tui_helpdesk.services.conversations import actions

    run(db, actions.close, ada, convo, settings=settings, notify=False)
    with pytest.raises(Conflict, match="closed: reopen it"):
        run(db, replies.reply, settings, ada, convo, "Hello")


def test_a_note_is_kept_and_never_sent(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    convo, _ = customer_writes(db, settings, desk)
    note = run(db, notes.write_note, desk.org.admin, convo, "Customer is a VIP")
    assert note.outbox_job_id is None and note.message.direction == "internal"
    with db.read() as session:
        assert session.scalars(select(OutboxJob)).all() == []
        entry = audit.list_entries(session, desk.org.admin, entity_type="conversation")[0]
    assert entry.action == "conversation.note"
    with pytest.raises(Invalid, match="a note needs some text"):
        run(db, notes.write_note, desk.org.admin, convo, " ")


def test_automatic_mail_is_signed_for_the_responsible_user(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    ada = desk.org.admin
    run(db, mailboxes.update, ada, "support@acme.test",
        mailboxes.MailboxChanges(responsible=ada.email))  # fmt: skip
    run(db, mailboxes.set_signature, ada, "support@acme.test",
        text="{{first_name}} for {{mailbox_name}}")  # fmt: skip
    run(db, autoresponder.configure, ada, "support@acme.test", enabled=True, body="Away.")
    customer_writes(db, settings, desk)
    with db.read() as session:
        [job] = session.scalars(select(OutboxJob).options(undefer(OutboxJob.raw))).all()
    assert job.kind == "auto_reply" and b"Away.\r\n\r\n-- \r\nAda for Support\r\n" in job.raw


def test_names_that_reach_the_from_header_are_one_line(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    ada = desk.org.admin
    for field in ("first_name", "last_name"):
        with pytest.raises(Invalid, match="must be one line") as refused:
            run(db, users.add, ada, email="eve@acme.test", name="Eve",
                **{field: "Eve\r\nBcc: victim@x.test"})  # fmt: skip
        assert refused.value.field == field
    with pytest.raises(Invalid, match="line breaks") as refused:
        run(db, mailboxes.update, ada, "support@acme.test",
            mailboxes.MailboxChanges(display_name="Support\r\nBcc: victim@x.test"))  # fmt: skip
    assert refused.value.field == "display_name"
