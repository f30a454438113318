"""The audit log read (F61): filters, keyset pages, diffs and `audit export`, both backends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from factories import Org, add_user, make_org
from sqlalchemy import update

from tui_helpdesk.cli import cli
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import AuditEntry
from tui_helpdesk.errors import Invalid, PermissionDenied
from tui_helpdesk.records import AuditFilter
from tui_helpdesk.services import audit, audit_log

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def org(db: Database) -> Org:
    """Acme, then 25 users added by ada, each entry an hour after the one before."""
    made = make_org(db)
    for n in range(25):
        add_user(db, made.admin, f"user{n:02d}@acme.test")
    with db.write() as session:
        ids = session.scalars(
            AuditEntry.__table__.select().with_only_columns(AuditEntry.id).order_by(AuditEntry.id)
        ).all()
        for n, entry_id in enumerate(ids):
            session.execute(
                update(AuditEntry)
                .where(AuditEntry.id == entry_id)
                .values(created_at=T0 + timedelta(hours=n // 2))  # two entries share each time
            )
    return made


def test_pages_follow_their_keys_newest_first_without_gaps(db: Database, org: Org) -> None:
    with db.read() as session:
        everything = audit_log.page(session, org.admin, AuditFilter(), limit=1000)
        total = audit_log.count(session, org.admin, AuditFilter())
        walked, after = [], None
        while True:
            found = audit_log.page(session, org.admin, AuditFilter(), after=after, limit=4)
            if not found:
                break
            walked += found
            after = audit_log.key_of(found[-1])
        jumped = audit_log.page(session, org.admin, AuditFilter(), skip=10, limit=3)
    assert total == len(everything) == len(walked) >= 28
    assert [e.id for e in walked] == [e.id for e in everything]
    assert [(e.created_at, e.id) for e in everything] == sorted(
        ((e.created_at, e.id) for e in everything), reverse=True
    )
    assert [e.id for e in jumped] == [e.id for e in everything[10:13]]


def test_filters_by_actor_subject_and_time(db: Database, org: Org) -> None:
    with db.read() as session:

        def ids(text: str) -> list[int]:
            return [e.id for e in audit_log.page(session, org.admin, audit_log.parse_filter(text))]

        by_ada = ids("actor:ADA")
        bootstrap = ids("bootstrap")
        users = ids("subject:user")
        user3 = audit_log.page(session, org.admin, audit_log.parse_filter("subject:user"))[3]
        one = ids(f"subject:user:{user3.entity_id}")
        window = audit_log.page(
            session,
            org.admin,
            audit_log.parse_filter("since:2026-12-01T10:00 until:2026-12-01T11:00"),
        )
        assert audit_log.count(session, org.admin, audit_log.parse_filter("actor:ada")) == len(
            by_ada
        )
    assert len(by_ada) == 26 and len(bootstrap) == 2  # the org and ada came first
    assert len(users) == 26 and one == [user3.id]
    assert {e.created_at for e in window} == {T0 + timedelta(hours=1)} and len(window) == 2


@pytest.mark.parametrize(
    "text, message",
    [("colour:red", "unknown filter"), ("since:yesterday", "is not a date"),
     ("subject:mail+box", "kind or kind:id"), ("actor:", "needs a value")],
)  # fmt: skip
def test_bad_filters_are_refused_with_a_message(text: str, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        audit_log.parse_filter(text)


def test_until_before_since_is_refused(db: Database, org: Org) -> None:
    with db.read() as session, pytest.raises(Invalid, match="after since"):
        audit_log.page(
            session, org.admin, audit_log.parse_filter("since:2026-12-02 until:2026-12-01")
        )


def test_only_admins_read_the_log(db: Database, org: Org) -> None:
    bob = add_user(db, org.admin, "bob@acme.test")
    with db.read() as session:
        with pytest.raises(PermissionDenied):
            audit_log.page(session, bob, AuditFilter())
        with pytest.raises(PermissionDenied):
            list(audit_log.export(session, bob))


def test_diff_lists_changed_added_and_removed_fields(db: Database, org: Org) -> None:
    with db.write() as session:
        audit.record(session, org.admin, "mailbox.update", "mailbox", 7,
                     organisation_id=org.organisation.id,
                     before={"name": "Old", "private": False, "colour": "red"},
                     after={"name": "New", "private": False, "webhook": "https://w.t"})  # fmt: skip
    with db.read() as session:
        [entry] = audit_log.page(session, org.admin, audit_log.parse_filter("subject:mailbox:7"))
    assert audit_log.diff(entry) == [
        ("name", "Old", "New"), ("colour", "red", None), ("webhook", None, "https://w.t"),
    ]  # fmt: skip


def test_export_writes_json_lines_oldest_first_in_the_range(
    db: Database, db_url: str, org: Org, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(audit_log, "EXPORT_BATCH", 5)  # several keyset batches
    env = {"TUI_HELPDESK_DATABASE_URL": db_url, "TUI_HELPDESK_SMTP_PORT": "0"}
    run = CliRunner()
    everything = run.invoke(cli, ["audit", "export", "--as", "ada@acme.test"], env=env)
    assert everything.exit_code == 0, everything.output
    lines = [json.loads(line) for line in everything.stdout.splitlines()]
    assert len(lines) == 28
    assert [line["id"] for line in lines] == sorted(line["id"] for line in lines)
    assert {"actor", "action", "entity_type", "entity_id", "before", "after", "created_at"} <= set(
        lines[0]
    )
    assert lines[0]["actor"] == "(bootstrap)" and lines[-1]["after"]["email"].endswith("acme.test")
    path = tmp_path / "audit.jsonl"
    some = run.invoke(cli, ["audit", "export", "--since", "2026-12-01T10:00", "--until",
                            "2026-12-01T12:00", "-o", str(path), "--as", "ada@acme.test"],
                      env=env)  # fmt: skip
    assert some.exit_code == 0, some.output
    window = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(window) == 4
    assert all("2026-12-01T10" <= line["created_at"] < "2026-12-01T12" for line in window)
    bad = run.invoke(cli, ["audit", "export", "--since", "soon", "--as", "ada@acme.test"], env=env)
    assert bad.exit_code == 2 and "is not a date" in bad.output
    refused = run.invoke(cli, ["audit", "export", "--as", "user01@acme.test"], env=env)
    assert refused.exit_code == 6
