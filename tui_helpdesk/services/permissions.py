"""Who may do what: global admins everything, queue admins their queue, agents read only.

A None actor means "nobody yet": it is accepted only while the database has no user at all
(bootstrap: the organisation and the first admin), see `require_admin_or_bootstrap`.
"""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from tui_helpdesk.db.models import QueueMember, User
from tui_helpdesk.errors import PermissionDenied
from tui_helpdesk.records import UserRecord

NO_ACTOR = (
    "no acting user: pass --as EMAIL or map your OS login to a user "
    "(tui-helpdesk user add EMAIL --name NAME --role agent --os-user LOGIN)"
)


def require_actor(actor: UserRecord | None) -> UserRecord:
    """Any active user may read; nobody anonymous may, once users exist."""
    if actor is None:
        raise PermissionDenied(NO_ACTOR, field="actor")
    if not actor.active:
        raise PermissionDenied(f"user {actor.email} is inactive", field="actor")
    return actor


def require_admin(actor: UserRecord | None) -> UserRecord:
    actor = require_actor(actor)
    if not actor.is_admin:
        raise PermissionDenied(
            f"{actor.email} is an agent; only an admin may do this", field="actor"
        )
    return actor


def has_users(session: Session) -> bool:
    return bool(session.scalar(select(exists().where(User.id.is_not(None)))))


def require_admin_or_bootstrap(session: Session, actor: UserRecord | None) -> UserRecord | None:
    """Return the admin, or None while no user exists yet (the bootstrap window)."""
    if actor is None and not has_users(session):
        return None
    return require_admin(actor)


def queue_role(session: Session, actor: UserRecord, queue_id: int) -> str | None:
    """The actor's role in the queue ("agent" | "admin"), None when not a member."""
    return session.scalar(
        select(QueueMember.role).where(
            QueueMember.queue_id == queue_id, QueueMember.user_id == actor.id
        )
    )


def require_queue_admin(session: Session, actor: UserRecord | None, queue_id: int) -> UserRecord:
    """Global admins, or members with role admin in this queue (F31)."""
    actor = require_actor(actor)
    if actor.is_admin or queue_role(session, actor, queue_id) == "admin":
        return actor
    raise PermissionDenied(
        f"{actor.email} is not an admin of this queue; ask a queue admin or a global admin",
        field="actor",
    )


def require_queue_member(session: Session, actor: UserRecord | None, queue_id: int) -> UserRecord:
    actor = require_actor(actor)
    if actor.is_admin or queue_role(session, actor, queue_id) is not None:
        return actor
    raise PermissionDenied(f"{actor.email} is not a member of this queue", field="actor")
