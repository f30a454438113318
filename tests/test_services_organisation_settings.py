"""Organisation settings and domains from the admin screens (F1, F2, F19) on both backends:
rename, timezone, language, the organisation's autoresponder switch, removing a domain, and
the field checks the mailbox form runs as it is typed."""

from __future__ import annotations

import pytest
from factories import add_mailbox, add_queue, add_user, make_org
from test_autoresponder import deliver, raw_mail, turn_on

from tui_helpdesk.errors import Conflict, Invalid, NotFound, PermissionDenied
from tui_helpdesk.services import audit, domains, mailboxes, organisations


def test_update_organisation_checks_everything_and_audits(db) -> None:  # type: ignore[no-untyped-def]
    org = make_org(db)
    with db.write() as session:
        done = organisations.update(
            session, org.admin, name="Acme Ltd", timezone="Europe/Madrid", language="es"
        )
    assert (done.name, done.timezone, done.language) == ("Acme Ltd", "Europe/Madrid", "es")
    for bad, field in (({"timezone": "Mars/Base"}, "timezone"), ({"language": "Spanish"},
                       "language"), ({"name": " "}, "name")):  # fmt: skip
        with pytest.raises(Invalid) as refused, db.write() as session:
            organisations.update(session, org.admin, **({"language": "pt-BR"} | bad))
        assert refused.value.field == field
    with db.read() as session:
        assert organisations.get(session, org.admin).name == "Acme Ltd"  # nothing changed
        [entry] = audit.list_entries(session, org.admin, entity_type="organisation")[:1]
    assert entry.action == "organisation.update"
    bob = add_user(db, org.admin, "bob@acme.test")
    with pytest.raises(PermissionDenied), db.write() as session:
        organisations.update(session, bob, name="Bob's")


def test_the_organisation_switch_silences_every_autoresponder(db, settings) -> None:  # type: ignore[no-untyped-def]
    org = make_org(db, timezone="UTC")
    add_mailbox(db, settings, org.admin, "support", display_name="Acme Support")
    add_queue(db, settings, org.admin, "Support", mailboxes=["support@acme.test"])
    turn_on(db, org)
    with db.write() as session:
        assert not organisations.update(
            session, org.admin, autoresponders_enabled=False
        ).autoresponders_enabled
    assert deliver(db, settings, raw_mail()) is None
    with db.write() as session:
        organisations.update(session, org.admin, autoresponders_enabled=True)
    assert deliver(db, settings, raw_mail()) is not None


def test_remove_a_domain_unless_a_mailbox_uses_it(db, settings) -> None:  # type: ignore[no-untyped-def]
    org = make_org(db)
    with db.write() as session:
        domains.add(session, org.admin, "spare.test")
    add_mailbox(db, settings, org.admin, "support")
    with pytest.raises(Conflict, match="used by 1 mailbox"), db.write() as session:
        domains.remove(session, org.admin, "acme.test")
    with pytest.raises(NotFound), db.write() as session:
        domains.remove(session, org.admin, "elsewhere.test")
    with db.write() as session:
        assert domains.remove(session, org.admin, "Spare.test.").domain == "spare.test"
    with db.read() as session:
        assert [d.domain for d in domains.list_domains(session, org.admin)] == ["acme.test"]
        assert audit.list_entries(session, org.admin, entity_type="domain")[0].action == (
            "domain.remove"
        )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("local_part", "Sales", "must be lowercase"),
        ("local_part", "", "required"),
        ("display_name", "{{nick}}", "unknown placeholder"),
        ("domain", "not a domain", "not a valid domain"),
        ("timezone", "Mars/Base", "unknown timezone"),
        ("language", "Spanish", "language tag"),
    ],
)
def test_check_field_gives_the_message_saving_would(field: str, value: str, message: str) -> None:
    with pytest.raises(Invalid, match=message) as refused:
        mailboxes.check_field(field, value)
    assert refused.value.field == field


def test_check_field_accepts_good_and_optional_values() -> None:
    assert mailboxes.check_field("local_part", "sales.team") == "sales.team"
    assert mailboxes.check_field("timezone", "") == ""  # the organisation's
    assert mailboxes.check_field("description", " anything ") == "anything"
