"""F10-F15: mailbox fields, alias, limit, unique active address, life cycle, audit."""

from __future__ import annotations

import re

import pytest
from factories import add_mailbox, add_queue, add_user, make_org

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.errors import Conflict, Invalid, LimitReached, NotFound, PermissionDenied
from tui_helpdesk.services import audit, domains, mailboxes
from tui_helpdesk.services.mailboxes import MailboxChanges

ALIAS = re.compile(r"^[a-z2-7]{10}@in\.helpdesk\.localhost$")


@pytest.fixture
def org(db: Database):  # type: ignore[no-untyped-def]
    return make_org(db, timezone="Europe/Madrid", language="es")


def create(db: Database, settings: Settings, actor, **fields):  # type: ignore[no-untyped-def]
    values = {"display_name": "Support", "local_part": "support", "domain": "acme.test", **fields}
    with db.write() as session:
        return mailboxes.create(session, settings, actor, **values)


def test_create_returns_full_record_with_org_defaults(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    add_user(db, org.admin, "bob@acme.test", name="Bob Smith")
    box = create(
        db, settings, org.admin, display_name="{{first_name}} at Acme",
        description=" First line ", department="Sales", responsible="BOB@acme.test",
    )  # fmt: skip
    assert box.email_address == "support@acme.test"
    assert ALIAS.match(box.alias)
    assert (box.status, box.timezone, box.language) == ("pending", "Europe/Madrid", "es")
    assert (box.description, box.department) == ("First line", "Sales")
    assert box.responsible_user == "bob@acme.test"
    assert box.display_name == "{{first_name}} at Acme"
    assert box.created_at.tzinfo is not None and box.updated_at.tzinfo is not None
    other = create(db, settings, org.admin, local_part="sales", timezone="Asia/Tokyo",
                   language="ja")  # fmt: skip
    assert (other.timezone, other.language) == ("Asia/Tokyo", "ja")
    assert other.alias != box.alias


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"local_part": "Sales"}, "local_part", "local part must be lowercase: 'Sales'"),
        ({"local_part": ""}, "local_part", "required"),
        ({"local_part": "a" * 65}, "local_part", "at most 64"),
        ({"local_part": "sales..team"}, "local_part", "dot-atom"),
        ({"local_part": ".sales"}, "local_part", "dot-atom"),
        ({"local_part": "sales team"}, "local_part", "dot-atom"),
        ({"local_part": "sales@x"}, "local_part", "dot-atom"),
        ({"local_part": "ventas\u00e9"}, "local_part", "dot-atom"),
        ({"display_name": ""}, "display_name", "must not be empty"),
        ({"display_name": "x" * 256}, "display_name", "at most 255"),
        ({"display_name": "Evil\r\nBcc: x@y"}, "display_name", "line breaks"),
        ({"display_name": "{{company}}"}, "display_name", "unknown placeholder"),
        ({"domain": "globex.test"}, "domain", "domain add globex.test"),
        ({"timezone": "Nowhere/City"}, "timezone", "unknown timezone"),
        ({"language": "!!"}, "language", "language tag"),
    ],
)
def test_create_validates_every_field(db, settings, org, fields, field, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Invalid) as caught:
        create(db, settings, org.admin, **fields)
    assert caught.value.field == field
    assert message in caught.value.message


def test_limits_of_valid_values(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    box = create(db, settings, org.admin, local_part="a" * 64, display_name="x" * 255)
    assert len(box.local_part) == 64 and len(box.display_name) == 255
    odd = create(db, settings, org.admin, local_part="o'brien+tag.x_y{z}", display_name="O")
    assert odd.email_address == "o'brien+tag.x_y{z}@acme.test"


def test_responsible_must_be_a_user(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound):
        create(db, settings, org.admin, responsible="ghost@acme.test")


def test_domain_of_another_organisation_is_refused(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    from tui_helpdesk.db.models import EmailDomain
    from tui_helpdesk.services import organisations

    with db.write() as session:
        globex = organisations.create(
            session, org.admin, name="Globex", timezone="UTC", language="en"
        )
        session.add(EmailDomain(organisation_id=globex.id, domain="globex.test"))
    with pytest.raises(Invalid, match="not one of the organisation's domains"):
        create(db, settings, org.admin, domain="globex.test")
    with db.write() as session:
        domains.add(session, org.admin, "other.test")
    assert create(db, settings, org.admin, domain="other.test").domain == "other.test"


def test_address_unique_among_active_mailboxes(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    first = create(db, settings, org.admin)
    with pytest.raises(Conflict, match=r"support@acme\.test"):
        create(db, settings, org.admin, local_part="support")
    with db.write() as session:
        mailboxes.deactivate(session, org.admin, "support@acme.test")
    second = create(db, settings, org.admin)  # the inactive one does not block
    assert second.id != first.id and second.alias != first.alias
    with db.write() as session, pytest.raises(Conflict, match="already exists"):
        mailboxes.activate(session, org.admin, first.alias)
    with db.read() as session:
        assert mailboxes.get(session, org.admin, "support@acme.test").id == second.id
        assert mailboxes.get(session, org.admin, first.alias).id == first.id


def test_limit_counts_inactive_but_not_deleted(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    small = settings.replace(limits={"mailboxes_per_organisation": 2})
    create(db, small, org.admin, local_part="one")
    create(db, small, org.admin, local_part="two")
    with db.write() as session:
        mailboxes.deactivate(session, org.admin, "two@acme.test")
    with pytest.raises(LimitReached, match="limit 2"):
        create(db, small, org.admin, local_part="three")
    with db.write() as session:
        mailboxes.delete(session, org.admin, "two@acme.test")
    assert create(db, small, org.admin, local_part="three").status == "pending"


def test_default_limit_is_fifty(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    assert settings.limits.mailboxes_per_organisation == 50
    with db.write() as session:
        for n in range(50):
            mailboxes.create(session, settings, org.admin, display_name=f"Box {n}",
                             local_part=f"box{n}", domain="acme.test")  # fmt: skip
    with pytest.raises(LimitReached):
        create(db, settings, org.admin, local_part="box50")


def test_update_changes_fields_but_never_the_alias(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    box = create(db, settings, org.admin)
    with db.write() as session:
        domains.add(session, org.admin, "help.acme.test")
        changed = mailboxes.update(session, org.admin, "support@acme.test", MailboxChanges(
            display_name="Help desk", local_part="help", domain="help.acme.test",
            timezone="UTC", language="en", description="d", department="Ops",
        ))  # fmt: skip
    assert changed.email_address == "help@help.acme.test"
    assert changed.alias == box.alias
    assert (changed.display_name, changed.timezone, changed.department) == (
        "Help desk",
        "UTC",
        "Ops",
    )
    with db.write() as session:
        reset = mailboxes.update(session, org.admin, box.alias, MailboxChanges(timezone=""))
    assert reset.timezone == "Europe/Madrid"
    with db.read() as session:
        entry = audit.list_entries(session, org.admin, entity_type="mailbox")[1]
    assert entry.action == "mailbox.update"
    assert entry.before["email_address"] == "support@acme.test"
    assert entry.after["email_address"] == "help@help.acme.test"
    assert entry.before["alias"] == entry.after["alias"] == box.alias


def test_update_applies_the_create_rules(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    create(db, settings, org.admin)
    create(db, settings, org.admin, local_part="sales")
    bad = [
        (MailboxChanges(local_part="Sales"), Invalid),
        (MailboxChanges(display_name=""), Invalid),
        (MailboxChanges(domain="nope.test"), Invalid),
        (MailboxChanges(local_part="support"), Conflict),
        (MailboxChanges(responsible="ghost@acme.test"), NotFound),
    ]
    for changes, error in bad:
        with db.write() as session, pytest.raises(error):
            mailboxes.update(session, org.admin, "sales@acme.test", changes)
    with db.read() as session:
        assert mailboxes.get(session, org.admin, "sales@acme.test").display_name == "Support"


def test_update_of_inactive_mailbox_may_take_an_active_address(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    create(db, settings, org.admin)
    create(db, settings, org.admin, local_part="old")
    with db.write() as session:
        mailboxes.deactivate(session, org.admin, "old@acme.test")
        moved = mailboxes.update(session, org.admin, "old@acme.test",
                                 MailboxChanges(local_part="support"))  # fmt: skip
    assert moved.status == "inactive" and moved.email_address == "support@acme.test"


def test_deactivate_refused_while_queue_default(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    create(db, settings, org.admin)
    create(db, settings, org.admin, local_part="sales")
    add_queue(db, settings, org.admin, "Front desk",
              mailboxes=["support@acme.test", "sales@acme.test"])  # fmt: skip
    with db.write() as session, pytest.raises(Conflict, match="'Front desk'"):
        mailboxes.deactivate(session, org.admin, "support@acme.test")
    with db.write() as session:
        inactive = mailboxes.deactivate(
            session, org.admin, "sales@acme.test"
        )  # linked, not default
    assert inactive.status == "inactive"
    with db.write() as session:
        again = mailboxes.activate(session, org.admin, "sales@acme.test")
    # still not verified: active again means pending again
    assert again.status == "pending" and again.alias == inactive.alias
    with db.read() as session:
        actions = [e.action for e in audit.list_entries(session, org.admin, entity_type="mailbox")]
    assert actions[:2] == ["mailbox.activate", "mailbox.deactivate"]


def test_delete_refused_while_linked_then_soft(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    box = create(db, settings, org.admin)
    add_queue(db, settings, org.admin, "Support", mailboxes=["support@acme.test"])
    with db.write() as session, pytest.raises(Conflict, match="'Support'"):
        mailboxes.delete(session, org.admin, "support@acme.test")
    from tui_helpdesk.services import queues

    with db.write() as session:
        queues.remove_mailbox(session, org.admin, "Support", "support@acme.test")
        gone = mailboxes.delete(session, org.admin, "support@acme.test")
    assert gone.status == "deleted"
    with db.read() as session:
        with pytest.raises(NotFound):
            mailboxes.get(session, org.admin, "support@acme.test")
        assert mailboxes.list_mailboxes(session, org.admin) == []
        from tui_helpdesk.db.models import Mailbox

        row = session.get_one(Mailbox, box.id)  # the row stays for its conversations
        assert row.deleted_at is not None
    again = create(db, settings, org.admin)
    assert again.alias != box.alias


def test_agents_read_but_change_nothing(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    create(db, settings, org.admin)
    bob = add_user(db, org.admin, "bob@acme.test")
    with db.read() as session:
        assert [m.email_address for m in mailboxes.list_mailboxes(session, bob)] == [
            "support@acme.test"
        ]
        assert mailboxes.get(session, bob, "support").email_address == "support@acme.test"
    attempts = [
        lambda s: mailboxes.create(s, settings, bob, display_name="X", local_part="x",
                                   domain="acme.test"),
        lambda s: mailboxes.update(s, bob, "support@acme.test", MailboxChanges(display_name="X")),
        lambda s: mailboxes.deactivate(s, bob, "support@acme.test"),
        lambda s: mailboxes.activate(s, bob, "support@acme.test"),
        lambda s: mailboxes.delete(s, bob, "support@acme.test"),
    ]  # fmt: skip
    for attempt in attempts:
        with db.write() as session, pytest.raises(PermissionDenied):
            attempt(session)


def test_list_filters_status_and_shows_queues(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    create(db, settings, org.admin)
    add_mailbox(db, settings, org.admin, "sales")
    add_queue(db, settings, org.admin, "Support", mailboxes=["support@acme.test"])
    with db.write() as session:
        mailboxes.deactivate(session, org.admin, "sales@acme.test")
    with db.read() as session:
        every = mailboxes.list_mailboxes(session, org.admin)
        pending = mailboxes.list_mailboxes(session, org.admin, status="pending")
        active = mailboxes.list_mailboxes(session, org.admin, status="active")
    assert [(m.email_address, m.status, m.queues) for m in every] == [
        ("sales@acme.test", "inactive", ()),
        ("support@acme.test", "pending", ("Support",)),
    ]
    assert [m.local_part for m in pending] == ["support"] and active == []


def test_create_writes_audit_entry(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    box = create(db, settings, org.admin)
    with db.read() as session:
        entry = audit.list_entries(session, org.admin, entity_type="mailbox")[0]
    assert (entry.action, entry.entity_id, entry.actor) == ("mailbox.create", str(box.id),
                                                            "ada@acme.test")  # fmt: skip
    assert entry.before is None and entry.after["alias"] == box.alias


def test_limit_holds_under_concurrent_creates(db, settings, org) -> None:  # type: ignore[no-untyped-def]
    """A second writer waits for the first and then sees the limit (org row lock / SQLite)."""
    import threading

    one = settings.replace(limits={"mailboxes_per_organisation": 1})
    outcome: list[BaseException | None] = []

    def second() -> None:
        other = Database(db.url)
        try:
            create(other, one, org.admin, local_part="two")
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)
        finally:
            other.dispose()

    with db.write() as session:
        mailboxes.create(session, one, org.admin, display_name="One", local_part="one",
                         domain="acme.test")  # fmt: skip
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(0.3)
        assert thread.is_alive()  # blocked behind the first writer
    thread.join(15)
    assert len(outcome) == 1 and isinstance(outcome[0], LimitReached)
