"""F1: organisations with a default timezone and language; everything belongs to one."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Organisation
from tui_helpdesk.errors import Conflict, Invalid, NotFound, PermissionDenied
from tui_helpdesk.records import OrganisationRecord, UserRecord, to_jsonable
from tui_helpdesk.services import audit, changes
from tui_helpdesk.services.permissions import (
    require_actor,
    require_admin,
    require_admin_or_bootstrap,
)

LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-zA-Z0-9]{2,8})*$")


def validate_timezone(value: str, *, field: str = "timezone") -> str:
    """A zoneinfo key such as Europe/Madrid; the error says what to type instead."""
    value = value.strip()
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(
            f"unknown timezone {value!r}; use an IANA name such as Europe/Madrid or UTC",
            field=field,
        ) from None
    return value


def validate_language(value: str, *, field: str = "language") -> str:
    value = value.strip()
    if not LANGUAGE.match(value):
        raise Invalid(
            f"language must be a language tag such as en, es or pt-BR, got {value!r}", field=field
        )
    return value


def validate_name(value: str, *, what: str, field: str = "name") -> str:
    value = value.strip()
    if not value:
        raise Invalid(f"{what} must not be empty", field=field)
    if len(value) > 255:
        raise Invalid(f"{what} must be at most 255 characters, got {len(value)}", field=field)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise Invalid(f"{what} must not contain line breaks or control characters", field=field)
    return value


def to_record(org: Organisation) -> OrganisationRecord:
    return OrganisationRecord(
        id=org.id,
        name=org.name,
        timezone=org.timezone,
        language=org.language,
        created_at=org.created_at,
        autoresponders_enabled=bool(org.autoresponders_enabled),
    )


def create(
    session: Session, actor: UserRecord | None, *, name: str, timezone: str, language: str
) -> OrganisationRecord:
    """Bootstrap (no users yet) or a global admin."""
    actor = require_admin_or_bootstrap(session, actor)
    name = validate_name(name, what="organisation name")
    org = Organisation(
        name=name, timezone=validate_timezone(timezone), language=validate_language(language)
    )
    if session.scalar(select(Organisation.id).where(func.lower(Organisation.name) == name.lower())):
        raise Conflict(f"an organisation named {name!r} already exists", field="name")
    session.add(org)
    session.flush()
    record = to_record(org)
    audit.record(
        session,
        actor,
        "organisation.create",
        "organisation",
        org.id,
        organisation_id=org.id,
        after=to_jsonable(record),
    )
    return record


def resolve(session: Session, actor: UserRecord | None, name: str | None = None) -> Organisation:
    """The organisation a command works in: named, else the actor's, else the only one."""
    if name:
        org = session.scalar(
            select(Organisation).where(func.lower(Organisation.name) == name.strip().lower())
        )
        if org is None:
            raise NotFound(f"no organisation named {name!r}", field="org")
        if actor is not None and actor.organisation_id != org.id:
            raise PermissionDenied(f"{actor.email} does not belong to {org.name!r}", field="org")
        return org
    if actor is not None:
        return session.get_one(Organisation, actor.organisation_id)
    orgs = session.scalars(select(Organisation).order_by(Organisation.id).limit(2)).all()
    if not orgs:
        raise NotFound(
            "no organisation yet: create one with "
            "`tui-helpdesk org create NAME --timezone TZ --language LANG`",
            field="org",
        )
    if len(orgs) > 1:
        raise Invalid("several organisations exist: name one with --org NAME", field="org")
    return orgs[0]


def get(session: Session, actor: UserRecord | None, name: str | None = None) -> OrganisationRecord:
    require_actor(actor)
    return to_record(resolve(session, actor, name))


def list_organisations(session: Session, actor: UserRecord | None) -> list[OrganisationRecord]:
    """Users see their own organisation only."""
    actor = require_actor(actor)
    return [to_record(session.get_one(Organisation, actor.organisation_id))]


def update(
    session: Session,
    actor: UserRecord | None,
    *,
    name: str | None = None,
    timezone: str | None = None,
    language: str | None = None,
    autoresponders_enabled: bool | None = None,
) -> OrganisationRecord:
    """The actor's organisation: name, default timezone and language, and the switch that
    turns every autoresponder off at once (F1, F19). Admins only; None leaves a field alone.
    Every value is checked before the row is touched, so a refused change changes nothing."""
    actor = require_admin(actor)
    org = session.get_one(Organisation, actor.organisation_id)
    values: dict[str, object] = {}
    if name is not None:
        values["name"] = validate_name(name, what="organisation name")
        taken = session.scalar(
            select(Organisation.id).where(
                func.lower(Organisation.name) == values["name"].lower(),  # type: ignore[attr-defined]
                Organisation.id != org.id,
            )
        )
        if taken is not None:
            raise Conflict(f"an organisation named {values['name']!r} already exists", field="name")
    if timezone is not None:
        values["timezone"] = validate_timezone(timezone)
    if language is not None:
        values["language"] = validate_language(language)
    if autoresponders_enabled is not None:
        values["autoresponders_enabled"] = bool(autoresponders_enabled)
    before = to_record(org)
    for key, value in values.items():
        setattr(org, key, value)
    session.flush()
    after = to_record(org)
    if after != before:
        audit.record(
            session, actor, "organisation.update", "organisation", org.id,
            organisation_id=org.id, before=to_jsonable(before), after=to_jsonable(after),
        )  # fmt: skip
        changes.notify(session)
    return after
