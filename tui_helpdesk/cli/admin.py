"""Set-up commands: init, org, domain, user, audit (F1-F3, F61, F82)."""

from __future__ import annotations

from typing import Any

import click

from tui_helpdesk.cli.context import Cx, HelpdeskGroup, common, emit, safe_url
from tui_helpdesk.cli.output import key_values, record_pairs, table
from tui_helpdesk.records import (
    AuditRecord,
    DomainCheckRecord,
    DomainRecord,
    OrganisationRecord,
    UserRecord,
)
from tui_helpdesk.services.vocabulary import AVAILABILITIES, ROLES
from tui_helpdesk.terminal_text import clean

pass_cx = click.make_pass_decorator(Cx)
ORG_OPTION = click.option(
    "--org", "organisation", metavar="NAME",
    help="Organisation (may be left out when exactly one exists).",
)  # fmt: skip


@click.command()
@click.option("--demo", is_flag=True, help="Also load demo data when the database is empty.")
@click.option("--demo-if-empty", "demo_if_empty", is_flag=True, hidden=True)
@common
@pass_cx
def init(cx: Cx, demo: bool, demo_if_empty: bool) -> None:
    """Create or upgrade the database schema (idempotent; refuses a newer schema)."""
    from tui_helpdesk.db.schema import upgrade

    db = cx.database(check=False)
    upgrade(db)
    result: dict[str, Any] = {"database": safe_url(db.url), "migrated": True, "demo": None}
    if demo or demo_if_empty:
        from tui_helpdesk.services.demo import load_demo

        result["demo"] = load_demo(db, cx.settings())
    from tui_helpdesk.cli.run import warm_start_cache

    warm_start_cache(cx, db)
    emit(result, _init_text)


def _init_text(result: dict[str, Any]) -> str:
    lines = [f"Database ready (schema at head): {result['database']}"]
    if result["demo"] is True:
        lines.append("Demo data loaded.")
    elif result["demo"] is False:
        lines.append("Demo data not loaded: the database already has an organisation.")
    return "\n".join(lines)


@click.group(cls=HelpdeskGroup)
@common
def org() -> None:
    """Organisations (F1)."""


@org.command("create")
@click.argument("name")
@click.option("--timezone", required=True, help="IANA timezone, e.g. Europe/Madrid.")
@click.option("--language", required=True, help="Language tag, e.g. en.")
@common
@pass_cx
def org_create(cx: Cx, name: str, timezone: str, language: str) -> None:
    """Create an organisation (needs no user on an empty database)."""

    from tui_helpdesk.services import organisations

    with cx.session(write=True, bootstrap=True) as (session, actor):
        record = organisations.create(
            session, actor, name=name, timezone=timezone, language=language
        )
    emit(record, _org_text)


@org.command("show")
@click.argument("name", required=False)
@common
@pass_cx
def org_show(cx: Cx, name: str | None) -> None:
    """Show your organisation."""

    from tui_helpdesk.services import organisations

    with cx.session() as (session, actor):
        emit(organisations.get(session, actor, name), _org_text)


def _org_text(record: OrganisationRecord) -> str:
    return key_values(record_pairs(record))


@click.group(cls=HelpdeskGroup)
@common
def domain() -> None:
    """Email domains of the organisation (F2)."""


@domain.command("add")
@click.argument("name", metavar="DOMAIN")
@ORG_OPTION
@common
@pass_cx
def domain_add(cx: Cx, name: str, organisation: str | None) -> None:
    """Add an email domain that mailbox addresses may use."""

    from tui_helpdesk.services import domains

    with cx.session(write=True) as (session, actor):
        emit(domains.add(session, actor, name, organisation=organisation), _domain_text)


def _domain_text(record: DomainRecord) -> str:
    return key_values(record_pairs(record))


@domain.command("list")
@common
@pass_cx
def domain_list(cx: Cx) -> None:
    from tui_helpdesk.services import domains

    with cx.session() as (session, actor):
        records = domains.list_domains(session, actor)
    emit(records, lambda rs: table(["domain", "added"], [(r.domain, r.created_at) for r in rs]))


CHECKS_FAILED_EXIT = 7
CHECKS_UNKNOWN_EXIT = 8


@domain.command("check")
@click.argument("name", metavar="DOMAIN", required=False)
@click.option("--selector", metavar="NAME", help="DKIM selector to look for ([dns] dkim_selector).")
@common
@pass_cx
def domain_check_command(cx: Cx, name: str | None, selector: str | None) -> None:
    """Check MX, SPF, DKIM and DMARC of a domain (every domain when none is named).

    Exits 0 when every check passes, 7 when one fails or is missing, 8 when the DNS did not
    answer for one (and none failed).
    """
    from tui_helpdesk.services import domain_check

    with cx.session() as (session, actor):
        names = domain_check.domains_to_check(session, actor, name)
    settings = cx.settings()
    records = [
        record
        for domain_name in names
        for record in domain_check.check_domain(domain_name, settings, selector=selector)
    ]
    emit(records, _domain_check_text)
    statuses = {record.status for record in records}
    if statuses & {"fail", "missing"}:
        click.get_current_context().exit(CHECKS_FAILED_EXIT)
    if "temperror" in statuses:
        click.get_current_context().exit(CHECKS_UNKNOWN_EXIT)


def _domain_check_text(records: list[DomainCheckRecord]) -> str:
    blocks = []
    for domain_name in dict.fromkeys(record.domain for record in records):
        rows = [record for record in records if record.domain == domain_name]
        lines = [
            f"{clean(domain_name, one_line=True)}:",
            table(["check", "status", "name", "found"], [
                (r.check, r.status, r.name, r.found) for r in rows
            ]),
        ]  # fmt: skip
        for row in rows:
            lines.append(f"{row.check} {row.status}: {clean(row.explanation, one_line=True)}")
            if row.status != "pass" and row.found:
                lines += [f"  found:   {clean(found, one_line=True)}" for found in row.found]
            if row.publish:
                lines.append(f"  publish: {clean(row.publish, one_line=True)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) or "No domains to check: add one with `domain add DOMAIN`."


@click.group(cls=HelpdeskGroup)
@common
def user() -> None:
    """Users, roles and availability (F3)."""


@user.command("add")
@click.argument("email")
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(ROLES), default="agent", show_default=True)
@click.option("--os-user", metavar="LOGIN", help="OS login that acts as this user.")
@click.option("--availability", type=click.Choice(AVAILABILITIES), default="available")
@click.option("--first-name")
@click.option("--last-name")
@ORG_OPTION
@common
@pass_cx
def user_add(cx: Cx, email: str, **fields: Any) -> None:
    """Add a user; on an empty database the first admin needs no --as."""

    from tui_helpdesk.services import users

    with cx.session(write=True, bootstrap=True) as (session, actor):
        emit(users.add(session, actor, email=email, **fields), _user_text)


def _user_text(record: UserRecord) -> str:
    return key_values(record_pairs(record))


@user.command("list")
@common
@pass_cx
def user_list(cx: Cx) -> None:
    from tui_helpdesk.services import users

    with cx.session() as (session, actor):
        records = users.list_users(session, actor)
    headers = ["email", "name", "role", "availability", "active", "os user"]
    emit(records, lambda rs: table(headers, [
        (r.email, r.name, r.role, r.availability, r.active, r.os_user) for r in rs
    ]))  # fmt: skip


@user.command("show")
@click.argument("email")
@common
@pass_cx
def user_show(cx: Cx, email: str) -> None:
    from tui_helpdesk.services import users

    with cx.session() as (session, actor):
        emit(users.get(session, actor, email), _user_text)


@user.command("set-availability")
@click.argument("email")
@click.argument("availability", type=click.Choice(AVAILABILITIES))
@common
@pass_cx
def user_set_availability(cx: Cx, email: str, availability: str) -> None:
    """Set available | away | offline (only available users receive work)."""

    from tui_helpdesk.services import users

    with cx.session(write=True) as (session, actor):
        emit(users.set_availability(session, actor, email, availability), _user_text)


@user.command("set-timezone")
@click.argument("email")
@click.argument("timezone", metavar="TZ|none")
@common
@pass_cx
def user_set_timezone(cx: Cx, email: str, timezone: str) -> None:
    """Show times in this IANA zone (e.g. Europe/Madrid); `none`: the organisation's."""
    from tui_helpdesk.services import users

    value = None if timezone.strip().lower() in ("none", "") else timezone
    with cx.session(write=True) as (session, actor):
        emit(users.set_timezone(session, actor, email, value), _user_text)


@user.command("activate")
@click.argument("email")
@common
@pass_cx
def user_activate(cx: Cx, email: str) -> None:
    from tui_helpdesk.services import users

    with cx.session(write=True) as (session, actor):
        emit(users.set_active(session, actor, email, True), _user_text)


@user.command("deactivate")
@click.argument("email")
@common
@pass_cx
def user_deactivate(cx: Cx, email: str) -> None:
    """An inactive user keeps their history but can no longer act."""

    from tui_helpdesk.services import users

    with cx.session(write=True) as (session, actor):
        emit(users.set_active(session, actor, email, False), _user_text)


@click.group("audit", cls=HelpdeskGroup)
@common
def audit_group() -> None:
    """The audit log (F61)."""


@audit_group.command("list")
@click.option("--entity-type", help="Only entries about this kind of thing, e.g. mailbox.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@common
@pass_cx
def audit_list(cx: Cx, entity_type: str | None, limit: int) -> None:
    """Newest first; JSON output holds before/after of every change."""

    from tui_helpdesk.services import audit

    with cx.session() as (session, actor):
        records = audit.list_entries(session, actor, entity_type=entity_type, limit=limit)
    emit(records, _audit_text)


def _audit_text(records: list[AuditRecord]) -> str:
    rows = [(r.created_at, r.actor, r.action, f"{r.entity_type} {r.entity_id}") for r in records]
    return table(["when", "actor", "action", "entity"], rows)


@audit_group.command("export")
@click.option("--since", metavar="WHEN", help="From this UTC date or time (2026-12-01[T09:30]).")
@click.option("--until", metavar="WHEN", help="Up to (not including) this UTC date or time.")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-",
              help="Write to this file instead of standard output.")  # fmt: skip
@common
@pass_cx
def audit_export(cx: Cx, since: str | None, until: str | None, output: Any) -> None:
    """Every entry, oldest first, as JSON lines (one object per line, before/after included)."""
    import json

    from tui_helpdesk.services import audit_log

    start = audit_log.parse_time(since, "since") if since else None
    end = audit_log.parse_time(until, "until") if until else None
    with cx.session() as (session, actor):
        for entry in audit_log.export(session, actor, since=start, until=end):
            output.write(json.dumps(entry, sort_keys=True) + "\n")
