"""Private mailboxes (F21) in every list, count, search, show and action; the close notice
(F45) and the conversation the customer's next mail opens. Both backends."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest
from factories import add_mailbox, add_user
from sqlalchemy import select
from sqlalchemy.orm import undefer
from test_ingest_support import (
    build_mail,
    conversation,
    deliver,
    make_desk,
    message_id_of,
    only_conversation,
)

from tui_helpdesk.db.models import OutboxJob
from tui_helpdesk.errors import Invalid, NotFound, PermissionDenied
from tui_helpdesk.records import ConversationView
from tui_helpdesk.services import mailboxes, queues
from tui_helpdesk.services.conversations import actions, listing, replies, thread, views
from tui_helpdesk.services.search.results import search


@pytest.fixture
def desk(db, settings):  # type: ignore[no-untyped-def]
    return make_desk(db, settings)


def run(db, service, *args, **kwargs):  # type: ignore[no-untyped-def]
    with db.write() as session:
        return service(session, *args, **kwargs)


def seen(db, actor) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """What the actor finds, every way there is to look."""
    with db.read() as session:
        listed = [c.subject for c in listing.list_conversations(session, actor)]
        count = views.count(session, actor, ConversationView("open")).count
        found = [h.conversation.subject for h in search(session, actor, "fire").hits]
        boxes = [v.view.label for v in views.sidebar(session, actor) if v.view.kind == "mailbox"]
    return {"list": listed, "count": count, "search": found, "mailbox views": boxes}


def test_a_private_mailbox_is_seen_only_by_those_granted(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    ada = desk.org.admin
    cy = add_user(db, ada, "cy@acme.test")
    run(db, queues.add_member, ada, "Support", "cy@acme.test", "agent")
    bob = add_user(db, ada, "bobby@acme.test")
    run(db, queues.add_member, ada, "Support", "bobby@acme.test", "agent")
    secret = only_conversation(deliver(db, settings, build_mail(subject="Fire at HR"),
                                       desk.support.alias))  # fmt: skip
    deliver(db, settings, build_mail(subject="Fire sale", sender="dan@customer.test"),
            desk.sales.alias)  # fmt: skip
    record = run(db, mailboxes.set_private, ada, "support@acme.test", grant=["bobby@acme.test"])
    assert record.private and record.granted == ("bobby@acme.test",)
    hidden = {"list": ["Fire sale"], "count": 1, "search": ["Fire sale"],
              "mailbox views": ["sales@acme.test"]}  # fmt: skip
    assert seen(db, ada) == hidden  # admins too
    assert seen(db, cy) == {"list": [], "count": 0, "search": [], "mailbox views": []}
    assert seen(db, bob)["list"] == ["Fire at HR"]
    for attempt in (
        lambda s: thread.get_conversation(s, ada, secret),
        lambda s: actions.assign(s, ada, secret, "me"),
        lambda s: replies.reply(s, settings, ada, secret, "Hello"),
        lambda s: replies.compose(s, settings, ada, mailbox="support@acme.test",
                                  to=["x@customer.test"], subject="Hi", body="Hi"),
    ):  # fmt: skip
        with pytest.raises((NotFound, PermissionDenied)), db.write() as session:
            attempt(session)
    with pytest.raises(PermissionDenied):
        run(db, mailboxes.set_private, bob, "support@acme.test", grant=None)
    with pytest.raises(PermissionDenied, match="no access to this conversation's private"):
        run(db, actions.assign, bob, secret, "cy@acme.test")  # cy would not see it
    assert run(db, actions.assign, bob, secret, "me").assignee == "bobby@acme.test"
    run(db, mailboxes.set_private, ada, "support@acme.test", grant=["bobby@acme.test", ada.email])
    assert "Fire at HR" in seen(db, ada)["list"]
    assert not run(db, mailboxes.set_private, ada, "support@acme.test", grant=None).private
    assert seen(db, cy)["list"] == ["Fire at HR"]
    with pytest.raises(Invalid, match="grant at least one"):
        run(db, mailboxes.set_private, ada, "support@acme.test", grant=[])


def jobs(db, kind: str) -> list[OutboxJob]:  # type: ignore[no-untyped-def]
    with db.read() as session:
        return list(session.scalars(select(OutboxJob).where(OutboxJob.kind == kind)
                                    .options(undefer(OutboxJob.raw))))  # fmt: skip


def test_closing_mails_the_notice_and_the_next_mail_opens_a_linked_conversation(
    db, settings, desk
) -> None:  # type: ignore[no-untyped-def]
    first = build_mail(subject="Printer on fire")
    convo = only_conversation(deliver(db, settings, first, desk.support.alias))
    before = conversation(db, convo).last_message_at
    run(db, actions.close, desk.org.admin, convo, settings=settings)
    [job] = jobs(db, "notice")
    mail = BytesParser(policy=policy.default).parsebytes(job.raw)
    assert job.rcpt_to == ["carol@customer.test"] and job.conversation_id == convo
    assert mail["Subject"] == f"Re: Printer on fire [HD#{convo}]"
    assert mail["In-Reply-To"] == message_id_of(first)
    assert mail["Auto-Submitted"] == "auto-generated"
    text = mail.get_content().replace("\r\n", "\n")
    assert f'closed your request "Printer on fire" (#{convo})' in text
    assert text.rstrip().endswith("Ada Lovelace")
    assert conversation(db, convo).last_message_at == before  # not moved up, not unread
    answer = build_mail(subject=mail["Subject"], in_reply_to=mail["Message-ID"])
    new = only_conversation(deliver(db, settings, answer, desk.support.alias))
    assert new != convo and conversation(db, new).previous_conversation_id == convo


def test_the_notice_follows_the_mailbox_and_the_close(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    ada = desk.org.admin
    ids = [only_conversation(deliver(db, settings, build_mail(subject=f"Q{n}"),
                                     desk.support.alias)) for n in range(4)]  # fmt: skip
    run(db, actions.close, ada, ids[0], settings=settings, notify=False)
    assert jobs(db, "notice") == []
    custom = run(db, mailboxes.set_close_notice, ada, "support@acme.test", enabled=True,
                 text="Done with {{subject}}, {{agent_name}}.")  # fmt: skip
    assert custom.custom and custom.enabled
    run(db, actions.close, ada, ids[1], settings=settings)
    [job] = jobs(db, "notice")
    assert b"Done with Q1, Ada Lovelace." in job.raw
    off = run(db, mailboxes.set_close_notice, ada, "support@acme.test", enabled=False)
    assert not off.enabled and off.text == "Done with {{subject}}, {{agent_name}}."
    run(db, actions.close, ada, ids[2], settings=settings)
    assert len(jobs(db, "notice")) == 1
    back = run(db, mailboxes.set_close_notice, ada, "support@acme.test", enabled=True, text="")
    assert not back.custom and "{{conversation_id}}" in back.text
    with pytest.raises(Invalid, match=r"unknown placeholder \{\{name\}\}") as refused:
        run(db, mailboxes.set_close_notice, ada, "support@acme.test", enabled=True,
            text="Hi {{name}}")  # fmt: skip
    assert refused.value.field == "close_notice"
    pending = add_mailbox(db, settings, ada, "new", verified=False)
    convo = only_conversation(deliver(db, settings, build_mail(), pending.alias))
    run(db, actions.close, ada, convo, settings=settings)  # a pending mailbox sends nothing
    assert len(jobs(db, "notice")) == 1
