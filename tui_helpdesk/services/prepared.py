"""The statements a TUI start runs first, compiled to the driver's own SQL text.

The TUI draws its first inbox rows before SQLAlchemy is imported (~0.5 s of CPU): it runs
these statements with the plain DB-API driver (tui/quick_start.py). They are compiled here,
by SQLAlchemy, from the very statements the services run (users.find's lookup, listing's first
page), so the rows drawn are the rows the services would read. Values are bound parameters,
kept beside the text in the driver's parameter style.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from tui_helpdesk import database_url, start_cache
from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Organisation, User, UserKey
from tui_helpdesk.records import ALL_OPEN, ConversationView, UserRecord
from tui_helpdesk.services import users
from tui_helpdesk.services.conversations import listing
from tui_helpdesk.services.session import open_database
from tui_helpdesk.start_cache import Who

# The identity row: UserRecord's fields in this order, then the organisation's timezone.
USER_COLUMNS = ("id", "organisation_id", "email", "name", "first_name", "last_name", "role",
                "availability", "active", "os_user", "created_at", "timezone")  # fmt: skip
PLAIN = (str, int, float, bool, type(None))


class NotPlain(ValueError):
    """A statement binds a value the driver would need SQLAlchemy's type processing for."""


def actor_shape(actor: UserRecord) -> dict[str, Any]:
    """What of the acting user the compiled page depends on (visibility and read marks)."""
    return {"id": actor.id, "organisation_id": actor.organisation_id,
            "admin": actor.is_admin, "active": actor.active}  # fmt: skip


def identity_query(kind: str, value: str) -> Any:
    """The acting user as the CLI's identity check finds them, with their organisation's
    timezone: by email (normalised as users.find does) or by the OS login mapped to them, as
    services.users.resolve_actor does; by the id of the SSH key they logged in with, as
    services.ssh_keys.user_for_key does. Whether they are active is the reader's to check."""
    columns = [getattr(User, name) for name in USER_COLUMNS]
    query = select(*columns, Organisation.timezone).join(
        Organisation, Organisation.id == User.organisation_id
    )
    if kind == "email":
        return query.where(User.email == value.strip().lower())
    if kind == "os_user":
        return query.where(User.os_user == value)
    if kind == "ssh_key":
        return query.join(UserKey, UserKey.user_id == User.id).where(UserKey.id == int(value))
    raise ValueError(f"unknown identity kind {kind!r}")


def finds(session: Session, who: tuple[str, str], actor: UserRecord) -> bool:
    """Whether the lookup for `who` finds `actor`, and only them: a cache written for `who`
    must find at the next start the user this start resolved."""
    found = session.execute(identity_query(*who)).all()
    return len(found) == 1 and found[0].id == actor.id


def compiled(statement: Any, dialect: Dialect) -> dict[str, Any]:
    """The SQL text SQLAlchemy sends for `statement` and its parameters, as the driver takes
    them: a list for positional styles (SQLite's ?), a dict for named ones (psycopg's)."""
    done = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    values = done.params
    if any(not isinstance(value, PLAIN) for value in values.values()):
        raise NotPlain(f"a parameter needs type processing: {values!r}")
    if done.positional:
        return {"sql": done.string, "params": [values[name] for name in done.positiontup]}
    return {"sql": done.string, "params": values}


def start_statements(
    session: Session, actor: UserRecord, view: ConversationView, *, limit: int, who: tuple[str, str]
) -> dict[str, Any]:
    """The identity lookup for `who` and the first page of `view` for `actor`, compiled for
    the session's database, with what they were compiled for."""
    dialect = session.get_bind().dialect
    return {
        "dialect": dialect.name,
        "identity": compiled(identity_query(*who), dialect),
        "actor": actor_shape(actor),
        "page": compiled(listing.first_page_query(actor, view, limit=limit), dialect),
    }


def connection(db: Database, libpq_uri: str | None) -> dict[str, Any] | None:
    """How the plain driver reaches the database as the engine does, or None when it would
    not be the same: SQLite's file (in-memory and URI databases have none); for PostgreSQL
    nothing is stored (the password stays in the settings), but `libpq_uri`, the URL as
    psycopg will read it then, must give the connection arguments SQLAlchemy gives."""
    url = db.engine.url
    if db.is_sqlite:
        path = database_url.sqlite_file(db.url)
        return None if path is None else {"path": str(path)}
    if libpq_uri is None or url.get_backend_name() != "postgresql":
        return None
    from psycopg.conninfo import conninfo_to_dict

    args, kwargs = db.engine.dialect.create_connect_args(url)
    # What becomes the connection string; the dialect also passes its adapters ("context").
    given = {k: str(v) for k, v in kwargs.items() if isinstance(v, str | int)}
    return {} if not args and conninfo_to_dict(libpq_uri) == given else None


def write(db: Database, settings: Settings, directory: Path, who: Who, actor: UserRecord) -> bool:
    """Write the start-up cache of `who`, who acts as `actor`, for the next TUI start of
    theirs (start_cache.py, tui/quick_start.py); False when there is none to write: the
    database cannot be reached with the plain driver, or `who` would not find `actor`."""
    where = connection(db, database_url.libpq_uri(settings.database.url))
    if where is None:
        return False
    page_size = max(10, settings.tui.page_size)
    with db.read() as session:
        if not finds(session, who, actor):
            return False  # found another way than `who` says: the cache would not find them
        recipe = start_statements(session, actor, ALL_OPEN, limit=page_size, who=who)
    recipe |= where | {
        "revision": db.schema_revision(), "view": ALL_OPEN.kind, "limit": page_size,
        "timeout": settings.database.busy_timeout_ms / 1000,
    }  # fmt: skip
    start_cache.save(directory, settings.database.url, who, recipe)
    return True


def refresh(db: Database, settings: Settings, directory: Path, also: Sequence[Who] = ()) -> int:
    """Write again every start-up cache of this database in `directory` that is not current
    (other code, another schema revision, another page size), and those of `also`: after an
    upgrade, the first TUI start of each finds its cache (`init`, `db upgrade` and the headless
    worker call this). A cache whose lookup no longer finds one active user is removed.
    Returns how many were written."""
    url = settings.database.url
    revision = db.schema_revision()
    whos = dict.fromkeys([*start_cache.whos(directory, url), *also])
    return sum(renew(db, settings, directory, who, revision=revision) for who in whos)


def renew(
    db: Database, settings: Settings, directory: Path, who: Who, *, revision: str | None = None
) -> bool:
    """Write the start-up cache of `who` unless it is current for this code, page size and
    schema `revision` (read when not given); remove it when `who` finds no single active
    user. Returns whether it was written."""
    url = settings.database.url
    path = start_cache.cache_file(directory, url, who)
    try:
        recipe = start_cache.load(path) if path.exists() else {}
    except (OSError, ValueError):
        recipe = {}
    revision = revision or db.schema_revision()
    page_size = max(10, settings.tui.page_size)
    if start_cache.current(recipe, who, page_size) and recipe.get("revision") == revision:
        return False
    with db.read() as session:
        found = session.execute(identity_query(*who)).all()
        actor = users.to_record(session.get_one(User, found[0].id)) if len(found) == 1 else None
    if actor is None or not actor.active:
        path.unlink(missing_ok=True)
        return False
    return write(db, settings, directory, who, actor)


def write_first(settings: Settings, directory: Path, who: Who) -> bool:
    """The start-up cache of `who`, written for a TUI start that found none, by the process
    tui/start_ahead.py forks for it (so its database layer loads on the other core while the
    TUI's own start draws the screen). Returns whether it was written."""
    db = open_database(settings)
    try:
        return renew(db, settings, directory, who)
    finally:
        db.dispose()
