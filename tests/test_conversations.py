"""The conversation read side: visibility, order, filters, rows and the thread.

Pages by key, views and counts: test_conversation_lists.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event
from test_tui_data import NOW, actor, add_conversation, add_message, seed

from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Conversation
from tui_helpdesk.errors import Invalid, NotFound
from tui_helpdesk.records import ConversationView
from tui_helpdesk.services.conversations import listing, thread, views, visibility


def _subjects(db: Database, email: str, **filters: object) -> list[str]:
    with db.read() as session:
        rows = listing.list_conversations(session, actor(db, email), **filters)  # type: ignore[arg-type]
    return [row.subject for row in rows]


def test_admin_sees_every_open_conversation_newest_first(db: Database) -> None:
    seed(db)
    assert _subjects(db, "ada@acme.test", status="open") == [
        "Hello?",
        "Printer on fire",
        "Invoice 2026-11",
        "Cannot log in",
    ]


def test_without_status_every_status_is_listed(db: Database) -> None:
    seed(db)
    assert "Old question" in _subjects(db, "ada@acme.test")
    assert "Old question" not in _subjects(db, "ada@acme.test", status="open")
    assert _subjects(db, "ada@acme.test", status="closed") == ["Old question"]


def test_agent_sees_queue_mailbox_and_assigned_conversations_only(db: Database) -> None:
    seed(db)
    # bob is in Support: its queue's conversations and those of its linked mailbox
    assert _subjects(db, "bob@acme.test") == ["Printer on fire", "Cannot log in", "Old question"]
    # cy is in no queue but is the assignee of one
    assert _subjects(db, "cy@acme.test") == ["Cannot log in"]
    # dee is in Sales: the queue's conversation and the unrouted one of its mailbox
    assert _subjects(db, "dee@acme.test") == ["Hello?", "Invoice 2026-11"]


def test_another_organisation_is_invisible_even_to_an_admin(db: Database) -> None:
    ids = seed(db)
    with db.write() as session:
        from test_tui_data import _org

        other = _org(session, "Other")
        add_conversation(
            session,
            org_id=other.id,
            mailbox_id=None,
            queue_id=None,
            subject="Someone else's",
            sender="x@other.test",
        )
    assert "Someone else's" not in _subjects(db, "ada@acme.test")
    with db.read() as session:
        count = views.count(session, actor(db, "ada@acme.test"), ConversationView("all"))
    assert count.count == len(ids.conversations)


def test_count_matches_the_list_for_each_actor(db: Database) -> None:
    seed(db)
    for email in ("ada@acme.test", "bob@acme.test", "cy@acme.test", "dee@acme.test"):
        who = actor(db, email)
        with db.read() as session:
            for status in (None, "open", "closed"):
                rows = listing.list_conversations(session, who, status=status, limit=None)
                view = ConversationView(status or "all")
                assert views.count(session, who, view, cap=None).count == len(rows)


def test_paging_by_key_is_stable_and_ties_break_by_id(db: Database) -> None:
    ids = seed(db)
    with db.write() as session:
        for n in range(30):
            add_conversation(
                session,
                org_id=ids.org,
                mailbox_id=ids.mailboxes["support"],
                queue_id=ids.queues["Support"],
                subject=f"same time {n:02}",
                sender="bulk@customer.test",
                at=NOW - timedelta(days=30),
            )
    who = actor(db, "bob@acme.test")
    view = ConversationView("all")
    with db.read() as session:
        everything = listing.list_conversations(session, who, limit=None)
        page = listing.first_page(session, who, view, limit=7)
        pages = [page]
        while page.has_older:
            page = listing.page_after(session, who, view, page.rows[-1].key, limit=7)
            pages.append(page)
    assert [r.id for page in pages for r in page.rows] == [r.id for r in everything]
    same_time = [r for r in everything if r.subject.startswith("same time")]
    assert [r.id for r in same_time] == sorted((r.id for r in same_time), reverse=True)


def test_filters_by_queue_and_mailbox(db: Database) -> None:
    seed(db)
    assert _subjects(db, "ada@acme.test", queue="Sales") == ["Invoice 2026-11"]
    assert _subjects(db, "ada@acme.test", mailbox="sales@acme.test") == [
        "Hello?",
        "Invoice 2026-11",
    ]
    with pytest.raises(NotFound, match="no queue named 'Nope'"):
        _subjects(db, "ada@acme.test", queue="Nope")
    with pytest.raises(NotFound, match="no mailbox"):
        _subjects(db, "ada@acme.test", mailbox="nope@acme.test")
    with pytest.raises(Invalid, match="status must be one of"):
        _subjects(db, "ada@acme.test", status="archived")


def test_a_row_carries_mailbox_queue_contact_assignee_and_tags(db: Database) -> None:
    ids = seed(db)
    with db.read() as session:
        rows = listing.list_conversations(session, actor(db, "ada@acme.test"))
    by_id = {row.id: row for row in rows}
    printer = by_id[ids.conversations["printer"]]
    assert (printer.mailbox, printer.queue, printer.contact, printer.contact_name) == (
        "support@acme.test",
        "Support",
        "carol@customer.test",
        "Carol Customer",
    )
    assert printer.tags == ("hardware", "urgent")
    assert printer.last_message_at == NOW - timedelta(minutes=5)
    login = by_id[ids.conversations["login"]]
    assert (login.queue, login.assignee, login.tags) == (None, "cy@acme.test", ())


def test_one_query_per_page_whatever_its_size(db: Database) -> None:
    ids = seed(db)
    with db.write() as session:
        for n in range(40):
            add_conversation(
                session,
                org_id=ids.org,
                mailbox_id=ids.mailboxes["support"],
                queue_id=ids.queues["Support"],
                subject=f"bulk {n}",
                sender=f"c{n}@customer.test",
                tags=("a", "b"),
            )
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    who = actor(db, "bob@acme.test")
    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with db.read() as session:
            page = listing.first_page(session, who, ConversationView("open"), limit=40)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert len(page.rows) == 40
    assert len(statements) == 1


def test_thread_lists_messages_oldest_first_with_attachments(db: Database) -> None:
    ids = seed(db)
    with db.write() as session:
        conversation = session.get(Conversation, ids.conversations["printer"])
        assert conversation is not None
        add_message(
            session,
            conversation,
            subject="Re: Printer on fire",
            sender="carol@customer.test",
            at=NOW - timedelta(minutes=1),
            body="Photo attached.",
            attachments=(("fire.jpg", "image/jpeg", b"\xff\xd8" * 500),),
        )
    with db.read() as session:
        detail = thread.get_conversation(
            session, actor(db, "bob@acme.test"), ids.conversations["printer"]
        )
    assert detail.conversation.subject == "Printer on fire"
    assert [m.subject for m in detail.messages] == ["Printer on fire", "Re: Printer on fire"]
    assert detail.messages[0].attachments == ()
    (attachment,) = detail.messages[1].attachments
    assert (attachment.filename, attachment.content_type, attachment.size) == (
        "fire.jpg",
        "image/jpeg",
        1000,
    )
    assert detail.messages[1].text_body == "Photo attached."


def test_a_conversation_the_actor_may_not_see_is_not_found(db: Database) -> None:
    ids = seed(db)
    with db.read() as session:
        with pytest.raises(NotFound, match="conversation"):
            thread.get_conversation(
                session, actor(db, "cy@acme.test"), ids.conversations["printer"]
            )
        with pytest.raises(NotFound):
            thread.get_conversation(session, actor(db, "ada@acme.test"), 999_999)
        invoice = ids.conversations["invoice"]
        assert visibility.can_see(session, actor(db, "dee@acme.test"), invoice)
        assert not visibility.can_see(session, actor(db, "bob@acme.test"), invoice)
        assert visibility.can_see(session, actor(db, "ada@acme.test"), invoice)


def test_an_inactive_user_sees_nothing(db: Database) -> None:
    seed(db)
    who = actor(db, "ada@acme.test")
    inactive = type(who)(**{**who.__dict__, "active": False})
    with db.read() as session:
        assert listing.list_conversations(session, inactive) == []
        assert views.count(session, inactive, ConversationView("all")).count == 0
