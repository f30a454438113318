"""Lists for the inbox (issue 9): sidebar views and counts, pages by key in both directions,
the page around a conversation, per-user unread marks and the reader's timezone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from test_tui_data import NOW, actor, add_conversation, add_message, seed

from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Conversation
from tui_helpdesk.errors import Invalid, NotFound, PermissionDenied
from tui_helpdesk.records import ConversationView, UserRecord
from tui_helpdesk.services import users
from tui_helpdesk.services.conversations import listing, reads, views

OPEN = ConversationView("open")


def _sidebar(db: Database, email: str) -> dict[str, int]:
    with db.read() as session:
        return {c.view.label: c.count for c in views.sidebar(session, actor(db, email))}


def test_the_sidebar_lists_views_queues_and_mailboxes_with_counts(db: Database) -> None:
    seed(db)
    assert _sidebar(db, "ada@acme.test") == {
        "Mine": 0, "Unassigned": 3, "All open": 4, "Pending": 0, "Closed": 1,
        "Sales": 1, "Support": 1, "sales@acme.test": 2, "support@acme.test": 2,
    }  # fmt: skip
    assert _sidebar(db, "bob@acme.test") == {
        "Mine": 0, "Unassigned": 1, "All open": 2, "Pending": 0, "Closed": 1,
        "Support": 1, "support@acme.test": 2,
    }  # fmt: skip
    assert _sidebar(db, "cy@acme.test") == {
        "Mine": 1, "Unassigned": 0, "All open": 1, "Pending": 0, "Closed": 0,
    }  # fmt: skip


def test_each_view_lists_what_its_count_says(db: Database) -> None:
    seed(db)
    for email in ("ada@acme.test", "bob@acme.test", "dee@acme.test"):
        who = actor(db, email)
        with db.read() as session:
            for counted in views.sidebar(session, who):
                page = listing.first_page(session, who, counted.view, limit=100)
                assert len(page.rows) == counted.count, (email, counted.view)


def test_counts_stop_at_the_cap(db: Database) -> None:
    ids = seed(db)
    with db.write() as session:
        for n in range(12):
            add_conversation(session, org_id=ids.org, mailbox_id=ids.mailboxes["sales"],
                             queue_id=None, subject=f"n{n}", sender="x@customer.test")  # fmt: skip
    ada = actor(db, "ada@acme.test")
    with db.read() as session:
        capped = views.count(session, ada, OPEN, cap=10)
        exact = views.count(session, ada, OPEN, cap=None)
        small = views.count(session, ada, ConversationView("closed"), cap=10)
        with pytest.raises(Invalid, match="cap must be at least 1"):
            views.count(session, ada, OPEN, cap=0)
    assert (capped.count, capped.more) == (10, True)
    assert (exact.count, exact.more) == (16, False)
    assert (small.count, small.more) == (1, False)


def test_bad_views_are_refused(db: Database) -> None:
    seed(db)
    ada = actor(db, "ada@acme.test")
    with db.read() as session:
        with pytest.raises(Invalid, match="view must be one of"):
            listing.first_page(session, ada, ConversationView("starred"))
        with pytest.raises(Invalid, match="this view needs queue_id"):
            listing.first_page(session, ada, ConversationView("queue"))
        with pytest.raises(Invalid, match="limit must be 1-1000"):
            listing.first_page(session, ada, OPEN, limit=0)


def _many(db: Database) -> tuple[UserRecord, list[int]]:
    """25 more open conversations, some sharing a time (ties break by id); the full order."""
    ids = seed(db)
    with db.write() as session:
        for n in range(25):
            add_conversation(session, org_id=ids.org, mailbox_id=ids.mailboxes["support"],
                             queue_id=ids.queues["Support"], subject=f"bulk {n}",
                             sender="bulk@customer.test",
                             at=NOW - timedelta(hours=1, minutes=n // 3))  # fmt: skip
    bob = actor(db, "bob@acme.test")
    with db.read() as session:
        order = [r.id for r in listing.list_conversations(session, bob, status="open", limit=None)]
    return bob, order


def test_pages_by_key_walk_the_list_both_ways(db: Database) -> None:
    bob, order = _many(db)
    with db.read() as session:
        page = listing.first_page(session, bob, OPEN, limit=4)
        assert not page.has_newer and page.has_older
        down = [page]
        while down[-1].has_older:
            down.append(listing.page_after(session, bob, OPEN, down[-1].rows[-1].key, limit=4))
        last = listing.last_page(session, bob, OPEN, limit=4)
        assert last.has_newer and not last.has_older
        up = [last]
        while up[-1].has_newer:
            up.append(listing.page_before(session, bob, OPEN, up[-1].rows[0].key, limit=4))
    assert [r.id for p in down for r in p.rows] == order
    assert [r.id for p in reversed(up) for r in p.rows] == order
    assert [r.id for r in last.rows] == order[-4:]
    assert len(up[-1].rows) == (len(order) % 4 or 4)


def test_the_page_containing_a_conversation_keeps_it_in_view(db: Database) -> None:
    bob, order = _many(db)
    with db.read() as session:
        middle = listing.page_containing(session, bob, OPEN, order[13], limit=6)
        end = listing.page_containing(session, bob, OPEN, order[-1], limit=6)
        top = listing.page_containing(session, bob, OPEN, order[0], limit=6)
    assert [r.id for r in middle.rows] == order[10:16] and middle.anchor == 3
    assert [r.id for r in end.rows] == order[-6:] and end.rows[end.anchor].id == order[-1]
    assert [r.id for r in top.rows] == order[:6] and top.anchor == 0
    assert (middle.has_newer, middle.has_older, end.has_older, top.has_newer) == (
        True, True, False, False,
    )  # fmt: skip


def test_a_conversation_that_left_the_view_leaves_the_cursor_on_its_neighbour(
    db: Database,
) -> None:
    bob, order = _many(db)
    with db.read() as session:
        before = listing.first_page(session, bob, OPEN, limit=30)
    gone = before.rows[8]
    with db.write() as session:
        session.execute(update(Conversation).where(Conversation.id == gone.id)
                        .values(status="closed"))  # fmt: skip
    with db.read() as session:
        page = listing.page_containing(session, bob, OPEN, gone.id, limit=6, fallback=gone.key)
        lost = listing.page_containing(session, bob, OPEN, gone.id, limit=6)
    assert page.rows[page.anchor].id == order[9]  # type: ignore[index]
    assert gone.id not in [r.id for r in page.rows]
    assert (
        lost.anchor is None and [r.id for r in lost.rows] == [i for i in order if i != gone.id][:6]
    )


def test_keys_and_positions_match_the_order(db: Database) -> None:
    bob, order = _many(db)
    with db.read() as session:
        keys = [r.key for r in listing.first_page(session, bob, OPEN, limit=100).rows]
        assert listing.key_at(session, bob, OPEN, skip=7) == keys[7]
        assert listing.key_at(session, bob, OPEN, skip=0, from_end=True) == keys[-1]
        assert listing.key_at(session, bob, OPEN, skip=2, from_end=True) == keys[-3]
        assert listing.key_at(session, bob, OPEN, skip=3, after=keys[10]) == keys[14]
        assert listing.key_at(session, bob, OPEN, skip=3, before=keys[10]) == keys[6]
        assert listing.key_at(session, bob, OPEN, skip=len(order)) is None
        assert [listing.position(session, bob, OPEN, k) for k in keys] == list(range(len(keys)))
        assert listing.key_of(session, bob, OPEN, order[5]) == keys[5]


def test_unread_is_per_user_until_newer_mail_arrives(db: Database) -> None:
    ids = seed(db)
    printer = ids.conversations["printer"]
    ada, bob = actor(db, "ada@acme.test"), actor(db, "bob@acme.test")

    def unread(who: UserRecord) -> bool:
        with db.read() as session:
            page = listing.first_page(session, who, OPEN, limit=50)
        return next(r.unread for r in page.rows if r.id == printer)

    assert unread(ada) and unread(bob)
    with db.write() as session:
        assert reads.mark_read(session, ada, printer).unread is False
    assert not unread(ada) and unread(bob)
    with db.write() as session:
        conversation = session.get_one(Conversation, printer)
        add_message(session, conversation, subject="Re: fire", sender="carol@customer.test",
                    at=NOW + timedelta(minutes=1))  # fmt: skip
        conversation.last_message_at = NOW + timedelta(minutes=1)
    assert unread(ada)
    with db.write() as session:
        reads.mark_read(session, ada, printer)
        assert reads.mark_unread(session, ada, printer).unread is True
        with pytest.raises(NotFound):
            reads.mark_read(session, actor(db, "cy@acme.test"), printer)


def test_times_are_read_in_the_users_timezone_else_the_organisations(db: Database) -> None:
    seed(db)
    ada, bob = actor(db, "ada@acme.test"), actor(db, "bob@acme.test")
    with db.write() as session:
        assert users.timezone_of(session, bob) == "UTC"  # the organisation's
        bob = users.set_timezone(session, bob, bob.email, "Europe/Madrid")
        assert users.timezone_of(session, bob) == "Europe/Madrid"
        with pytest.raises(PermissionDenied):
            users.set_timezone(session, bob, ada.email, "Europe/Madrid")
        with pytest.raises(Invalid, match="unknown timezone 'Mars/Olympus'"):
            users.set_timezone(session, ada, bob.email, "Mars/Olympus")
        bob = users.set_timezone(session, ada, bob.email, None)
        assert (bob.timezone, users.timezone_of(session, bob)) == (None, "UTC")
    with db.read() as session:
        row = listing.first_page(session, ada, OPEN).rows[0]
    assert row.last_message_at.utcoffset() == timedelta(0)  # aware; screens convert
