"""F30-F31: queue names, mailbox links (limit, default), members and roles, queue admins."""

from __future__ import annotations

import pytest
from factories import add_mailbox, add_queue, add_user, make_org

from tui_helpdesk.db.engine import Database
from tui_helpdesk.errors import Conflict, Invalid, LimitReached, NotFound, PermissionDenied
from tui_helpdesk.services import audit, mailboxes, queues


@pytest.fixture
def org(db: Database, settings):  # type: ignore[no-untyped-def]
    org = make_org(db)
    for local in ("support", "sales", "billing"):
        add_mailbox(db, settings, org.admin, local)
    return org


def defaults(record) -> list[str]:  # type: ignore[no-untyped-def]
    return [m.email_address for m in record.mailboxes if m.is_default]


def test_create_validates_name_and_colour(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    queue = add_queue(db, settings, org.admin, "Support", description="Front line",
                      colour="#3366ff")  # fmt: skip
    assert (queue.name, queue.description, queue.colour) == ("Support", "Front line", "#3366ff")
    assert queue.default_mailbox is None and queue.mailboxes == () and queue.members == ()
    bad = [("support", "", Conflict), ("", "", Invalid), ("Other", "rgb(1,2,3)", Invalid),
           ("x" * 256, "", Invalid)]  # fmt: skip
    for name, colour, error in bad:
        with db.write() as session, pytest.raises(error):
            queues.create(session, org.admin, name=name, colour=colour)


def test_first_linked_mailbox_becomes_default(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    queue = add_queue(db, settings, org.admin, "Support",
                      mailboxes=["support@acme.test", "sales@acme.test"])  # fmt: skip
    assert queue.default_mailbox == "support@acme.test"
    assert defaults(queue) == ["support@acme.test"]
    assert [m.email_address for m in queue.mailboxes] == ["support@acme.test", "sales@acme.test"]


def test_link_rules(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    add_queue(db, settings, org.admin, "Support", mailboxes=["support@acme.test"])
    with db.write() as session:
        mailboxes.deactivate(session, org.admin, "billing@acme.test")
    cases = [("support@acme.test", Conflict, "already linked"),
             ("billing@acme.test", Conflict, "inactive"),
             ("ghost@acme.test", NotFound, "no mailbox")]  # fmt: skip
    for address, error, message in cases:
        with db.write() as session, pytest.raises(error, match=message):
            queues.add_mailbox(session, settings, org.admin, "Support", address)
    with db.write() as session, pytest.raises(NotFound):
        queues.add_mailbox(session, settings, org.admin, "Nope", "sales@acme.test")


def test_queue_links_at_most_twenty_mailboxes(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    assert settings.limits.mailboxes_per_queue == 20
    with db.write() as session:
        queues.create(session, org.admin, name="Big")
        for n in range(20):
            mailboxes.create(session, settings, org.admin, display_name="B",
                             local_part=f"b{n}", domain="acme.test")  # fmt: skip
            queues.add_mailbox(session, settings, org.admin, "Big", f"b{n}@acme.test")
    with db.write() as session, pytest.raises(LimitReached, match="20"):
        queues.add_mailbox(session, settings, org.admin, "Big", "support@acme.test")
    with db.read() as session:
        queue = queues.get(session, org.admin, "big")
    assert len(queue.mailboxes) == 20 and defaults(queue) == ["b0@acme.test"]


def test_a_mailbox_may_be_in_many_queues(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    add_queue(db, settings, org.admin, "One", mailboxes=["support@acme.test"])
    two = add_queue(db, settings, org.admin, "Two", mailboxes=["sales@acme.test",
                                                                "support@acme.test"])  # fmt: skip
    assert two.default_mailbox == "sales@acme.test"
    with db.read() as session:
        assert mailboxes.get(session, org.admin, "support@acme.test").queues == ("One", "Two")


def test_removing_the_default_promotes_the_next_active(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    add_queue(db, settings, org.admin, "Support",
              mailboxes=["support@acme.test", "sales@acme.test", "billing@acme.test"])  # fmt: skip
    with db.write() as session:
        mailboxes.deactivate(session, org.admin, "sales@acme.test")
        after = queues.remove_mailbox(session, org.admin, "Support", "support@acme.test")
    assert defaults(after) == ["billing@acme.test"]
    with db.write() as session:
        after = queues.remove_mailbox(session, org.admin, "Support", "sales@acme.test")
    assert defaults(after) == ["billing@acme.test"]
    with db.write() as session:
        after = queues.remove_mailbox(session, org.admin, "Support", "billing@acme.test")
    assert after.mailboxes == () and after.default_mailbox is None
    with db.write() as session, pytest.raises(Conflict, match="not linked"):
        queues.remove_mailbox(session, org.admin, "Support", "billing@acme.test")


def test_removing_a_non_default_keeps_the_default(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    add_queue(db, settings, org.admin, "Support",
              mailboxes=["support@acme.test", "sales@acme.test"])  # fmt: skip
    with db.write() as session:
        after = queues.remove_mailbox(session, org.admin, "Support", "sales@acme.test")
    assert defaults(after) == ["support@acme.test"]


def test_set_default(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    add_queue(db, settings, org.admin, "Support",
              mailboxes=["support@acme.test", "sales@acme.test", "billing@acme.test"])  # fmt: skip
    with db.write() as session:
        after = queues.set_default(session, org.admin, "Support", "sales@acme.test")
    assert defaults(after) == ["sales@acme.test"]
    add_mailbox(db, settings, org.admin, "extra")
    with db.write() as session, pytest.raises(Conflict, match="not linked"):
        queues.set_default(session, org.admin, "Support", "extra@acme.test")
    with db.write() as session:
        mailboxes.deactivate(session, org.admin, "billing@acme.test")
    with db.write() as session, pytest.raises(Conflict, match="inactive"):
        queues.set_default(session, org.admin, "Support", "billing@acme.test")
    with db.write() as session:
        mailboxes.deactivate(session, org.admin, "support@acme.test")  # no longer default
    with db.read() as session:
        entries = audit.list_entries(session, org.admin, entity_type="queue")
    change = next(e for e in entries if e.action == "queue.default.set")
    assert change.before["default_mailbox"] == "support@acme.test"
    assert change.after["default_mailbox"] == "sales@acme.test"


def test_members_and_roles(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    add_user(db, org.admin, "bob@acme.test")
    add_user(db, org.admin, "carol@acme.test")
    queue = add_queue(db, settings, org.admin, "Support",
                      members={"bob@acme.test": "agent", "carol@acme.test": "admin"})  # fmt: skip
    assert [(m.email, m.role) for m in queue.members] == [
        ("bob@acme.test", "agent"), ("carol@acme.test", "admin")]  # fmt: skip
    with db.write() as session:
        updated = queues.add_member(session, org.admin, "Support", "BOB@acme.test", "admin")
    assert [m.role for m in updated.members] == ["admin", "admin"]
    for email, role, error in [("bob@acme.test", "owner", Invalid),
                               ("ghost@acme.test", "agent", NotFound)]:  # fmt: skip
        with db.write() as session, pytest.raises(error):
            queues.add_member(session, org.admin, "Support", email, role)
    with db.write() as session:
        after = queues.remove_member(session, org.admin, "Support", "bob@acme.test")
    assert [m.email for m in after.members] == ["carol@acme.test"]
    with db.write() as session, pytest.raises(NotFound):
        queues.remove_member(session, org.admin, "Support", "bob@acme.test")
    with db.read() as session:
        actions = [e.action for e in audit.list_entries(session, org.admin, entity_type="queue")]
    assert actions[:3] == ["queue.member.remove", "queue.member.update", "queue.member.add"]


def test_inactive_user_cannot_join(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    from tui_helpdesk.services import users

    add_user(db, org.admin, "bob@acme.test")
    add_queue(db, settings, org.admin, "Support")
    with db.write() as session:
        users.set_active(session, org.admin, "bob@acme.test", False)
    with db.write() as session, pytest.raises(Conflict, match="inactive"):
        queues.add_member(session, org.admin, "Support", "bob@acme.test", "agent")


def test_queue_admin_manages_own_queue_only(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    carol = add_user(db, org.admin, "carol@acme.test")
    bob = add_user(db, org.admin, "bob@acme.test")
    add_queue(db, settings, org.admin, "Support", members={"carol@acme.test": "admin",
                                                           "bob@acme.test": "agent"})  # fmt: skip
    add_queue(db, settings, org.admin, "Sales")
    with db.write() as session:
        queues.add_mailbox(session, settings, carol, "Support", "support@acme.test")
        queues.add_mailbox(session, settings, carol, "Support", "sales@acme.test")
        queues.set_default(session, carol, "Support", "sales@acme.test")
        queues.remove_mailbox(session, carol, "Support", "support@acme.test")
        queues.add_member(session, carol, "Support", "bob@acme.test", "admin")
        queues.add_member(session, carol, "Support", "bob@acme.test", "agent")
    refused = [
        lambda s: queues.add_mailbox(s, settings, carol, "Sales", "billing@acme.test"),
        lambda s: queues.add_member(s, carol, "Sales", "carol@acme.test", "admin"),
        lambda s: queues.create(s, carol, name="Mine"),
        lambda s: mailboxes.deactivate(s, carol, "billing@acme.test"),
        lambda s: queues.add_mailbox(s, settings, bob, "Support", "billing@acme.test"),
        lambda s: queues.set_default(s, bob, "Support", "sales@acme.test"),
        lambda s: queues.remove_member(s, bob, "Support", "carol@acme.test"),
    ]
    for attempt in refused:
        with db.write() as session, pytest.raises(PermissionDenied):
            attempt(session)
    with db.read() as session:
        assert [q.name for q in queues.list_queues(session, bob)] == ["Sales", "Support"]
        assert queues.get(session, bob, "support").default_mailbox == "sales@acme.test"
