"""Conversation actions (F42, F44) on both backends: who may do what, what changes, the audit
entry with before/after, the live-update signal, and several conversations at once."""

from __future__ import annotations

import time

import pytest
from factories import add_queue, add_user
from sqlalchemy import select
from test_ingest_support import Desk, build_mail, deliver, make_desk, only_conversation

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Conversation, Message
from tui_helpdesk.errors import Conflict, Invalid, NotFound, PermissionDenied
from tui_helpdesk.records import UserRecord
from tui_helpdesk.services import assignment, audit, changes, users
from tui_helpdesk.services.conversations import actions, thread


@pytest.fixture
def desk(db: Database, settings: Settings) -> Desk:
    """Support (bob, agent) and Sales (no members); cy is in no queue."""
    desk = make_desk(db, settings)
    add_user(db, desk.org.admin, "cy@acme.test")
    return desk


def _new(db: Database, settings: Settings, desk: Desk, *, sales: bool = False) -> int:
    alias = desk.sales.alias if sales else desk.support.alias
    return only_conversation(deliver(db, settings, build_mail(), alias))


def _user(db: Database, email: str) -> UserRecord:
    with db.read() as session:
        return users.resolve_actor(session, email=email, os_user=None)


def _act(db: Database, action, who: UserRecord, *args, **kwargs):  # type: ignore[no-untyped-def]
    with db.write() as session:
        return action(session, who, *args, **kwargs)


def _last_audit(db: Database, admin: UserRecord):  # type: ignore[no-untyped-def]
    with db.read() as session:
        return audit.list_entries(session, admin, entity_type="conversation", limit=1)[0]


def test_assign_to_me_someone_and_nobody_with_audit(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    ada, bob = desk.org.admin, _user(db, "bob@acme.test")
    ident = _new(db, settings, desk)
    assert _act(db, actions.assign, bob, ident, "me").assignee == "bob@acme.test"
    entry = _last_audit(db, ada)
    assert (entry.action, entry.actor, entry.entity_id) == (
        "conversation.assign",
        bob.email,
        str(ident),
    )
    assert (entry.before, entry.after) == ({"assignee": None}, {"assignee": "bob@acme.test"})
    assert _act(db, actions.assign, bob, ident, "none").assignee is None
    assert _act(db, actions.assign, ada, ident, "BOB@acme.test").assignee == "bob@acme.test"
    before = _last_audit(db, ada).id
    _act(db, actions.assign, ada, ident, "bob@acme.test")  # no change: no entry
    assert _last_audit(db, ada).id == before


def test_whom_an_agent_may_assign(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    ada, bob = desk.org.admin, _user(db, "bob@acme.test")
    ident = _new(db, settings, desk)
    with pytest.raises(PermissionDenied, match=r"cy@acme\.test is not a member of this"):
        _act(db, actions.assign, bob, ident, "cy@acme.test")
    assert _act(db, actions.assign, ada, ident, "cy@acme.test").assignee == "cy@acme.test"
    with pytest.raises(NotFound, match=r"no user with email 'nobody@acme\.test'"):
        _act(db, actions.assign, ada, ident, "nobody@acme.test")
    with db.write() as session:
        users.set_active(session, ada, "cy@acme.test", False)
    with pytest.raises(Invalid, match="inactive"):
        _act(db, actions.assign, ada, ident, "cy@acme.test")


def test_nobody_acts_on_a_conversation_they_may_not_see(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    bob, cy = _user(db, "bob@acme.test"), _user(db, "cy@acme.test")
    sales = _new(db, settings, desk, sales=True)
    for action, args in [(actions.assign, ("me",)), (actions.close, ()), (actions.reopen, ()),
                         (actions.set_pending, ()), (actions.set_priority, ("high",)),
                         (actions.add_tags, (["x"],)), (actions.remove_tags, (["x"],)),
                         (actions.transfer, ())]:  # fmt: skip
        kwargs = {"to_user": "bob@acme.test"} if action is actions.transfer else {}
        with pytest.raises(NotFound, match=f"conversation {sales} not found"):
            _act(db, action, bob, sales, *args, **kwargs)
    with pytest.raises(NotFound):
        _act(db, actions.close, cy, _new(db, settings, desk))
    with db.read() as session:
        assert session.get_one(Conversation, sales).status == "open"


def test_transfer_to_a_queue_applies_its_assignment_rule(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    ada, bob = desk.org.admin, _user(db, "bob@acme.test")
    add_queue(db, settings, ada, "Level 2", members={"cy@acme.test": "agent"})
    with db.write() as session:
        assignment.set_assignment(session, ada, "Level 2", rule="round_robin")
    ident = _new(db, settings, desk)
    _act(db, actions.assign, bob, ident, "me")
    moved = _act(db, actions.transfer, bob, ident, to_queue="level 2")
    assert (moved.queue, moved.assignee) == ("Level 2", "cy@acme.test")
    entry = _last_audit(db, ada)
    assert entry.action == "conversation.transfer"
    assert entry.before == {"assignee": "bob@acme.test", "queue": "Support"}
    assert entry.after == {"assignee": "cy@acme.test", "queue": "Level 2"}
    manual = _act(db, actions.transfer, ada, ident, to_queue="Sales")  # manual: nobody
    assert (manual.queue, manual.assignee) == ("Sales", None)
    with pytest.raises(Conflict, match="already in queue 'Sales'"):
        _act(db, actions.transfer, ada, ident, to_queue="Sales")
    with pytest.raises(Invalid, match="give exactly one"):
        _act(db, actions.transfer, ada, ident, to_user="bob@acme.test", to_queue="Sales")
    assert _act(db, actions.transfer, ada, ident, to_user="bob@acme.test").assignee == bob.email


def test_pending_close_with_a_note_and_reopen(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    ada, bob = desk.org.admin, _user(db, "bob@acme.test")
    ident = _new(db, settings, desk)
    assert _act(db, actions.set_pending, bob, ident).status == "pending"
    closed = _act(db, actions.close, bob, ident, note="Replaced the toner.")
    assert closed.status == "closed"
    with db.read() as session:
        assert session.get_one(Conversation, ident).closed_at is not None
        detail = thread.get_conversation(session, ada, ident)
    note = detail.messages[-1]
    assert (note.direction, note.kind, note.text_body, note.from_address) == (
        "internal", "note", "Replaced the toner.", "bob@acme.test",
    )  # fmt: skip
    assert detail.conversation.last_message_at == detail.messages[0].received_at
    with pytest.raises(Conflict, match="already closed"):
        _act(db, actions.close, bob, ident)
    reopened = _act(db, actions.reopen, bob, ident)
    assert reopened.status == "open"
    with db.read() as session:
        assert session.get_one(Conversation, ident).closed_at is None
    assert _last_audit(db, ada).after == {"status": "open"}


def test_tags_and_priority(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    ada, bob = desk.org.admin, _user(db, "bob@acme.test")
    ident = _new(db, settings, desk)
    assert _act(db, actions.add_tags, bob, ident, ["VIP", "billing", "vip"]).tags == (
        "billing", "vip",
    )  # fmt: skip
    assert _act(db, actions.add_tags, bob, ident, ["vip", "refund"]).tags == (
        "billing", "refund", "vip",
    )  # fmt: skip
    assert _last_audit(db, ada).after == {"tags": ["billing", "refund", "vip"]}
    assert _act(db, actions.remove_tags, bob, ident, ["BILLING", "absent"]).tags == (
        "refund", "vip",
    )  # fmt: skip
    with pytest.raises(Invalid, match="tag must be 1-64 letters"):
        _act(db, actions.add_tags, bob, ident, ["ok", "not ok"])
    with pytest.raises(Invalid, match="give at least one tag"):
        _act(db, actions.add_tags, bob, ident, [])
    assert _act(db, actions.set_priority, bob, ident, "urgent").priority == "urgent"
    with pytest.raises(Invalid, match="priority must be one of low, normal, high, urgent"):
        _act(db, actions.set_priority, bob, ident, "asap")
    with db.read() as session:
        assert session.get_one(Conversation, ident).priority == "urgent"


def test_every_action_is_announced_to_open_screens(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    bob = _user(db, "bob@acme.test")
    ident = _new(db, settings, desk)
    watcher = changes.ChangeWatcher(db)
    try:
        for action, args in [(actions.assign, ("me",)), (actions.set_priority, ("high",)),
                             (actions.add_tags, (["a"],)), (actions.close, ())]:  # fmt: skip
            _act(db, action, bob, ident, *args)
            deadline = time.monotonic() + 5
            while not watcher.poll():
                assert time.monotonic() < deadline, action
                time.sleep(0.01)
    finally:
        watcher.close()


def test_several_at_once_each_succeeds_or_fails_alone(db, settings, desk) -> None:  # type: ignore[no-untyped-def]
    bob = _user(db, "bob@acme.test")
    first, second = _new(db, settings, desk), _new(db, settings, desk)
    hidden = _new(db, settings, desk, sales=True)
    _act(db, actions.close, bob, second)
    with db.write() as session:
        results = actions.for_each(session, bob, [first, hidden, second, first], actions.close,
                                   note="Bulk close")  # fmt: skip
    assert [(r.conversation_id, r.ok, r.error) for r in results] == [
        (first, True, None), (hidden, False, "not_found"), (second, False, "conflict"),
    ]  # fmt: skip
    assert results[0].conversation is not None and results[0].conversation.status == "closed"
    assert results[2].message == f"conversation {second} is already closed"
    # A failure after a partial change (the note is refused after the status was set) is
    # rolled back for that conversation only.
    third = _new(db, settings, desk)
    with db.write() as session:
        results = actions.for_each(session, bob, [third], actions.close, note="x" * 100_001)
    assert results[0].error == "invalid"
    with db.read() as session:
        assert session.get_one(Conversation, third).status == "open"
        notes = session.scalars(select(Message.id).where(Message.kind == "note")).all()
    assert len(notes) == 1  # the first bulk close's note only
