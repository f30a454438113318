"""F3: users, their global role and availability, and who is acting (--as or the OS login)."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import Organisation, User
from tui_helpdesk.errors import Conflict, Invalid, NotFound, PermissionDenied
from tui_helpdesk.mail.addresses import one_line
from tui_helpdesk.records import UserRecord, to_jsonable
from tui_helpdesk.services import audit, changes, organisations
from tui_helpdesk.services.domains import validate_hostname
from tui_helpdesk.services.permissions import (
    require_actor,
    require_admin,
    require_admin_or_bootstrap,
)
from tui_helpdesk.services.vocabulary import AVAILABILITIES, ROLES

LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
OS_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")


def to_record(user: User) -> UserRecord:
    return UserRecord(
        id=user.id,
        organisation_id=user.organisation_id,
        email=user.email,
        name=user.name,
        first_name=user.first_name,
        last_name=user.last_name,
        role=user.role,
        availability=user.availability,
        active=user.active,
        os_user=user.os_user,
        created_at=user.created_at,
        timezone=user.timezone,
    )


def normalise_email(value: str, *, field: str = "email") -> str:
    """Users are named by email everywhere, so store one spelling: lowercase."""
    email = value.strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or len(local) > 64 or not LOCAL_PART.match(local):
        raise Invalid(f"{value!r} is not a valid email address (like ada@example.com)", field=field)
    return f"{local}@{validate_hostname(domain, field=field)}"


def _choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise Invalid(f"{what} must be one of {', '.join(allowed)}; got {value!r}", field=what)
    return value


def find(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def resolve_actor(session: Session, *, email: str | None, os_user: str | None) -> UserRecord:
    """The acting user: by --as EMAIL, else by the OS login mapped to a user.

    An unknown email is not found (3); an OS login nobody mapped is refused (6): nobody without
    a mapped, active user gets in.
    """
    if email:
        user = find(session, email)
        if user is None:
            raise NotFound(
                f"no user with email {email!r}; an admin can add one with "
                f"`tui-helpdesk user add {email} --name NAME --role agent`",
                field="as",
            )
    elif os_user:
        user = session.scalar(select(User).where(User.os_user == os_user))
        if user is None:
            raise PermissionDenied(
                f"the OS login {os_user!r} is not mapped to a helpdesk user: an admin maps it "
                f"with `tui-helpdesk user add EMAIL --name NAME --role agent --os-user {os_user}`",
                field="as",
            )
    else:
        raise PermissionDenied("no acting user: your OS account has no login name", field="as")
    if not user.active:
        raise PermissionDenied(f"user {user.email} is inactive; ask an admin", field="as")
    return to_record(user)


def _split_name(name: str) -> tuple[str, str]:
    first, _, last = name.partition(" ")
    return first, last.strip()


def add(
    session: Session,
    actor: UserRecord | None,
    *,
    email: str,
    name: str,
    role: str = "agent",
    availability: str = "available",
    os_user: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    organisation: str | None = None,
) -> UserRecord:
    """A global admin adds users; with no user yet, anyone may add the first admin."""
    actor = require_admin_or_bootstrap(session, actor)
    if actor is None and role != "admin":
        raise PermissionDenied("the first user must be an admin: pass --role admin", field="role")
    org = organisations.resolve(session, actor, organisation)
    email = normalise_email(email)
    name = organisations.validate_name(name, what="name")
    split_first, split_last = _split_name(name)
    user = User(
        organisation_id=org.id,
        email=email,
        name=name,
        first_name=_name_part(first_name, split_first, "first_name"),
        last_name=_name_part(last_name, split_last, "last_name"),
        role=_choice(role, ROLES, "role"),
        availability=_choice(availability, AVAILABILITIES, "availability"),
        os_user=_check_os_user(session, os_user),
    )
    if find(session, email) is not None:
        raise Conflict(f"a user with email {email} already exists", field="email")
    session.add(user)
    session.flush()
    record = to_record(user)
    audit.record(
        session,
        actor,
        "user.create",
        "user",
        user.id,
        organisation_id=org.id,
        after=to_jsonable(record),
    )
    return record


def _name_part(value: str | None, default: str, field: str) -> str:
    """A first or last name: it reaches the From header of mail ({{first_name}}), so one line."""
    if value is None:
        return default.strip()
    return one_line(value, field=field, limit=255, what=field.replace("_", " "))


def _check_os_user(session: Session, os_user: str | None) -> str | None:
    if os_user is None or not os_user.strip():
        return None
    os_user = os_user.strip()
    if not OS_USER.match(os_user):
        raise Invalid(f"{os_user!r} is not a valid OS login name", field="os_user")
    taken = session.scalar(select(User.email).where(User.os_user == os_user))
    if taken is not None:
        raise Conflict(f"OS login {os_user!r} is already mapped to {taken}", field="os_user")
    return os_user


def _load(session: Session, actor: UserRecord, email: str) -> User:
    user = find(session, email)
    if user is None or user.organisation_id != actor.organisation_id:
        raise NotFound(f"no user with email {email!r}", field="email")
    return user


def get(session: Session, actor: UserRecord | None, email: str) -> UserRecord:
    actor = require_actor(actor)
    return to_record(_load(session, actor, email))


def list_users(session: Session, actor: UserRecord | None) -> list[UserRecord]:
    actor = require_actor(actor)
    rows = session.scalars(
        select(User)
        .where(User.organisation_id == actor.organisation_id)
        .order_by(func.lower(User.name), User.id)
    )
    return [to_record(user) for user in rows]


def set_availability(
    session: Session, actor: UserRecord | None, email: str, availability: str
) -> UserRecord:
    """Agents set their own availability; admins anyone's (it decides who gets work, F32)."""
    actor = require_actor(actor)
    user = _load(session, actor, email)
    if user.id != actor.id:
        require_admin(actor)
    return _change(
        session,
        actor,
        user,
        "user.availability",
        availability=_choice(availability, AVAILABILITIES, "availability"),
    )


def set_timezone(
    session: Session, actor: UserRecord | None, email: str, timezone: str | None
) -> UserRecord:
    """Users set their own timezone, admins anyone's; None (or "") means the organisation's."""
    actor = require_actor(actor)
    user = _load(session, actor, email)
    if user.id != actor.id:
        require_admin(actor)
    value = organisations.validate_timezone(timezone) if timezone else None
    return _change(session, actor, user, "user.timezone", timezone=value)


def timezone_of(session: Session, actor: UserRecord) -> str:
    """The IANA zone the actor reads times in: their own, else their organisation's.
    Records carry aware UTC datetimes; screens convert them with this zone."""
    if actor.timezone:
        return actor.timezone
    zone = session.scalar(
        select(Organisation.timezone).where(Organisation.id == actor.organisation_id)
    )
    return zone or "UTC"


def set_active(session: Session, actor: UserRecord | None, email: str, active: bool) -> UserRecord:
    """An inactive user keeps their history but cannot act (resolve_actor refuses them)."""
    actor = require_admin(actor)
    user = _load(session, actor, email)
    if user.id == actor.id and not active:
        raise Conflict("you cannot deactivate yourself; ask another admin", field="email")
    return _change(
        session, actor, user, "user.activate" if active else "user.deactivate", active=active
    )


def set_role(session: Session, actor: UserRecord | None, email: str, role: str) -> UserRecord:
    """A global admin makes a user admin or agent; nobody demotes themselves (another admin
    must, so the organisation never loses its last admin by a slip)."""
    actor = require_admin(actor)
    user = _load(session, actor, email)
    role = _choice(role, ROLES, "role")
    if user.id == actor.id and role != "admin":
        raise Conflict("you cannot demote yourself; ask another admin", field="role")
    return _change(session, actor, user, "user.role", role=role)


def set_os_user(
    session: Session, actor: UserRecord | None, email: str, os_user: str | None
) -> UserRecord:
    """Map the OS login a user starts the desk with (None or "" removes it); admins only."""
    actor = require_admin(actor)
    user = _load(session, actor, email)
    value = os_user.strip() if os_user else None
    if value != user.os_user:
        value = _check_os_user(session, value)
    return _change(session, actor, user, "user.os_user", os_user=value)


def _change(
    session: Session, actor: UserRecord, user: User, action: str, **values: object
) -> UserRecord:
    before = to_record(user)
    for key, value in values.items():
        setattr(user, key, value)
    session.flush()
    after = to_record(user)
    if after != before:
        audit.record(
            session,
            actor,
            action,
            "user",
            user.id,
            organisation_id=user.organisation_id,
            before=to_jsonable(before),
            after=to_jsonable(after),
        )
        changes.notify(session)
    return after
