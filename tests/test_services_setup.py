"""F1-F3, F61 and permissions: organisations, domains, users, the acting user, the audit log."""

from __future__ import annotations

import pytest
from factories import add_user, make_org

from tui_helpdesk.db.engine import Database
from tui_helpdesk.errors import Conflict, Invalid, NotFound, PermissionDenied
from tui_helpdesk.services import audit, domains, organisations, permissions, users


def test_bootstrap_creates_org_and_first_admin_without_actor(db: Database) -> None:
    org = make_org(db, timezone="Europe/Madrid", language="es")
    assert org.organisation.timezone == "Europe/Madrid"
    assert org.admin.role == "admin"
    with db.read() as session:
        entries = audit.list_entries(session, org.admin)
    actions = [e.action for e in entries]
    assert actions == ["domain.add", "user.create", "organisation.create"]
    assert entries[-1].actor == "(bootstrap)"
    assert entries[0].actor == "ada@acme.test"
    assert entries[0].after["domain"] == "acme.test"


def test_bootstrap_window_closes_after_first_user(db: Database) -> None:
    make_org(db)
    with db.write() as session, pytest.raises(PermissionDenied, match="--as EMAIL"):
        users.add(session, None, email="eve@acme.test", name="Eve", role="admin")
    with db.write() as session, pytest.raises(PermissionDenied):
        organisations.create(session, None, name="Other", timezone="UTC", language="en")


def test_first_user_must_be_admin(db: Database) -> None:
    with db.write() as session:
        organisations.create(session, None, name="Acme", timezone="UTC", language="en")
    with db.write() as session, pytest.raises(PermissionDenied, match="--role admin"):
        users.add(session, None, email="bob@acme.test", name="Bob", role="agent")


def test_user_add_without_any_organisation_says_what_to_do(db: Database) -> None:
    with db.write() as session, pytest.raises(NotFound, match="org create"):
        users.add(session, None, email="ada@acme.test", name="Ada", role="admin")


@pytest.mark.parametrize(
    ("timezone", "language", "field"),
    [("Mars/Olympus", "en", "timezone"), ("../etc/passwd", "en", "timezone"),
     ("UTC", "english!", "language"), ("UTC", "", "language")],
)  # fmt: skip
def test_org_create_validates_timezone_and_language(
    db: Database, timezone: str, language: str, field: str
) -> None:
    with db.write() as session, pytest.raises(Invalid) as caught:
        organisations.create(session, None, name="Acme", timezone=timezone, language=language)
    assert caught.value.field == field


def test_org_name_unique_and_resolution(db: Database) -> None:
    org = make_org(db)
    with db.write() as session, pytest.raises(Conflict):
        organisations.create(session, org.admin, name="acme", timezone="UTC", language="en")
    with db.write() as session:
        organisations.create(session, org.admin, name="Globex", timezone="UTC", language="en")
    with db.read() as session:
        assert organisations.resolve(session, org.admin).name == "Acme"
        with pytest.raises(Invalid, match="--org"):
            organisations.resolve(session, None)
        with pytest.raises(PermissionDenied):
            organisations.resolve(session, org.admin, "Globex")
        with pytest.raises(NotFound):
            organisations.resolve(session, None, "Initech")


@pytest.mark.parametrize(
    "bad", ["", "localhost", "-acme.test", "acme-.test", "ac me.test", "bücher.de", "a..b"]
)
def test_domain_add_rejects_invalid_hostnames(db: Database, bad: str) -> None:
    org = make_org(db)
    with db.write() as session, pytest.raises(Invalid) as caught:
        domains.add(session, org.admin, bad)
    assert caught.value.field == "domain"


def test_domain_add_lowercases_and_is_unique(db: Database) -> None:
    org = make_org(db)
    with db.write() as session:
        record = domains.add(session, org.admin, "Mail.Acme.TEST.")
    assert record.domain == "mail.acme.test"
    with db.write() as session, pytest.raises(Conflict, match="already added"):
        domains.add(session, org.admin, "MAIL.acme.test")
    with db.read() as session:
        listed = [d.domain for d in domains.list_domains(session, org.admin)]
    assert listed == ["acme.test", "mail.acme.test"]


def test_agent_cannot_add_domain_or_user(db: Database) -> None:
    org = make_org(db)
    bob = add_user(db, org.admin, "bob@acme.test")
    with db.write() as session, pytest.raises(PermissionDenied, match="only an admin"):
        domains.add(session, bob, "other.test")
    with db.write() as session, pytest.raises(PermissionDenied):
        users.add(session, bob, email="eve@acme.test", name="Eve")
    with db.read() as session:
        assert [d.domain for d in domains.list_domains(session, bob)] == ["acme.test"]
        assert len(users.list_users(session, bob)) == 2


def test_user_add_validates_and_normalises(db: Database) -> None:
    org = make_org(db)
    bob = add_user(db, org.admin, "Bob.Smith@ACME.test", name="Bob van Smith", os_user="bob")
    assert bob.email == "bob.smith@acme.test"
    assert (bob.first_name, bob.last_name) == ("Bob", "van Smith")
    assert bob.availability == "available"
    cases = [
        ({"email": "not-an-email"}, Invalid, "email"),
        ({"email": "x@y"}, Invalid, "email"),
        ({"email": "BOB.smith@acme.test"}, Conflict, "email"),
        ({"role": "owner"}, Invalid, "role"),
        ({"availability": "busy"}, Invalid, "availability"),
        ({"os_user": "bob"}, Conflict, "os_user"),
        ({"os_user": "bad login"}, Invalid, "os_user"),
        ({"name": "  "}, Invalid, "name"),
    ]
    for override, error, field in cases:
        values = {"email": "new@acme.test", "name": "New", "role": "agent", **override}
        with db.write() as session, pytest.raises(error) as caught:
            users.add(session, org.admin, **values)
        assert caught.value.field == field, override


def test_resolve_actor_by_email_or_os_login(db: Database) -> None:
    org = make_org(db)
    add_user(db, org.admin, "bob@acme.test", os_user="bob")
    with db.read() as session:
        assert users.resolve_actor(session, email="ADA@acme.test", os_user="bob").is_admin
        assert users.resolve_actor(session, email=None, os_user="bob").email == "bob@acme.test"
        with pytest.raises(PermissionDenied, match="--os-user carol"):  # exit 6: nobody gets in
            users.resolve_actor(session, email=None, os_user="carol")
        with pytest.raises(NotFound, match=r"user add nobody@acme\.test"):
            users.resolve_actor(session, email="nobody@acme.test", os_user="bob")
        with pytest.raises(PermissionDenied):
            users.resolve_actor(session, email=None, os_user=None)


def test_inactive_user_cannot_act(db: Database) -> None:
    org = make_org(db)
    bob = add_user(db, org.admin, "bob@acme.test")
    with db.write() as session:
        users.set_active(session, org.admin, "bob@acme.test", False)
    with db.read() as session, pytest.raises(PermissionDenied, match="inactive"):
        users.resolve_actor(session, email="bob@acme.test", os_user=None)
    stale = bob.__class__(**{**bob.__dict__, "active": False})
    with db.read() as session, pytest.raises(PermissionDenied):
        users.list_users(session, stale)
    with db.write() as session, pytest.raises(Conflict, match="yourself"):
        users.set_active(session, org.admin, "ada@acme.test", False)


def test_availability_self_or_admin(db: Database) -> None:
    org = make_org(db)
    bob = add_user(db, org.admin, "bob@acme.test")
    add_user(db, org.admin, "carol@acme.test")
    with db.write() as session:
        assert users.set_availability(session, bob, "bob@acme.test", "away").availability == "away"
        users.set_availability(session, org.admin, "carol@acme.test", "offline")
    with db.write() as session, pytest.raises(PermissionDenied):
        users.set_availability(session, bob, "carol@acme.test", "available")
    with db.write() as session, pytest.raises(Invalid):
        users.set_availability(session, bob, "bob@acme.test", "busy")
    with db.read() as session:
        entries = audit.list_entries(session, org.admin, entity_type="user")
    change = entries[0]
    assert change.action == "user.availability"
    assert (change.before["availability"], change.after["availability"]) == ("available", "offline")


def test_audit_log_is_for_admins(db: Database) -> None:
    org = make_org(db)
    bob = add_user(db, org.admin, "bob@acme.test")
    with db.read() as session:
        with pytest.raises(PermissionDenied):
            audit.list_entries(session, bob)
        assert len(audit.list_entries(session, org.admin, limit=2)) == 2


def test_queue_permissions_helpers(db: Database, settings) -> None:  # type: ignore[no-untyped-def]
    from factories import add_queue

    org = make_org(db)
    bob = add_user(db, org.admin, "bob@acme.test")
    carol = add_user(db, org.admin, "carol@acme.test")
    dave = add_user(db, org.admin, "dave@acme.test")
    queue = add_queue(db, settings, org.admin, "Support",
                      members={"bob@acme.test": "admin", "carol@acme.test": "agent"})  # fmt: skip
    with db.read() as session:
        permissions.require_queue_admin(session, org.admin, queue.id)
        permissions.require_queue_admin(session, bob, queue.id)
        permissions.require_queue_member(session, carol, queue.id)
        with pytest.raises(PermissionDenied):
            permissions.require_queue_admin(session, carol, queue.id)
        with pytest.raises(PermissionDenied):
            permissions.require_queue_member(session, dave, queue.id)
        with pytest.raises(PermissionDenied):
            permissions.require_admin(None)
