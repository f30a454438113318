"""The first inbox rows before SQLAlchemy is imported: the start-up cache (issue 9, point 9).

Importing SQLAlchemy, the models and the services costs ~0.5 s of CPU, more than everything
else the first inbox frame needs. So a normal start, once its database is open, keeps in a
cache file the two statements a start reads first (who acts, the first page of the default
view) as SQLAlchemy compiled them for that database (services/prepared.py). The next start
runs them with the plain DB-API driver (sqlite3, psycopg), draws the rows, and only then
imports the database layer, which reads everything again.

The cache is only used when nothing it depends on changed: the package's code (every .py file
and site-packages, as the warm command server compares them), the schema revision, the
database and who acts, what of the acting user the page was compiled for (id, organisation,
admin, active), the page size and the view. Anything else, or any error, and the start goes
the normal way. The file holds no password (PostgreSQL URLs are rebuilt from the settings) and
is private to the user.

Who acts is looked up again at every start, in the database, the way the CLI's identity check
looks them up (`Who`: an --as email the CLI honours, the OS login, the SSH key): an unknown
user, a removed key or an inactive user gets no rows here, and the normal start then refuses
with its message. Whether --as is honoured at all is decided before (cli/run.py `_who`).
"""

from __future__ import annotations

import logging
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tui_helpdesk import database_url
from tui_helpdesk.records import ConversationRecord, UserRecord
from tui_helpdesk.start_cache import Who, cache_file, code_state, current, load

TAG_SEPARATOR = "\x1f"  # services/conversations/rows.py joins a row's tags with it
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuickStart:
    """Who acts and the first rows of `view`, read without the database layer."""

    actor: UserRecord
    timezone: str
    view: str
    rows: tuple[ConversationRecord, ...]
    more: bool  # rows follow the page


def read(directory: Path, url: str, who: Who, *, page_size: int) -> QuickStart | None:
    """The actor and first page from the cached statements, or None: no cache, a stale one,
    an unknown, inactive or changed user, or any error (the normal start then decides)."""
    try:
        code_state()  # the code as this process found it at its start
        recipe = load(cache_file(directory, url, who))
        if not current(recipe, who, page_size):
            return None
        return _run(recipe, url, page_size)
    except Exception as error:  # the normal start is the authority
        log.debug("no quick start: %s", error)
        return None


def _run(recipe: dict[str, Any], url: str, page_size: int) -> QuickStart | None:
    with closing(_connect(recipe, url)) as connection:
        cursor = connection.cursor()
        if recipe["dialect"] == "sqlite":
            cursor.execute("BEGIN")  # one snapshot for the three reads
        cursor.execute("SELECT version_num FROM alembic_version")
        if cursor.fetchone() != (recipe["revision"],):
            return None
        found = _fetch(cursor, recipe["identity"])
        if len(found) != 1:
            return None
        actor, organisation_zone = _user(found[0])
        if not actor.active or _shape(actor) != recipe["actor"]:
            return None
        rows = [_conversation(row) for row in _fetch(cursor, recipe["page"])]
        connection.rollback()
    return QuickStart(
        actor=actor,
        timezone=actor.timezone or organisation_zone or "UTC",
        view=recipe["view"],
        rows=tuple(rows[:page_size]),
        more=len(rows) > page_size,
    )


def import_driver(url: str) -> None:
    """Import the plain driver `read` will use for `url` now (psycopg takes ~0.08 s), while
    there is time to: a first start waits for its cache (tui/start_ahead.py)."""
    if database_url.libpq_uri(url) is not None:
        import psycopg  # noqa: F401
    else:
        import sqlite3  # noqa: F401


def _connect(recipe: dict[str, Any], url: str) -> Any:
    if recipe["dialect"] == "sqlite":
        import sqlite3

        # mode=rw: a database file that went away is not created empty.
        target = f"file:{Path(recipe['path']).as_posix()}?mode=rw"
        connection = sqlite3.connect(target, uri=True, timeout=recipe["timeout"])
        connection.isolation_level = None  # as the engine does: BEGIN is ours
        return connection
    uri = database_url.libpq_uri(url)
    if recipe["dialect"] != "postgresql" or uri is None:
        raise ValueError(f"no quick start for {recipe['dialect']}")
    import psycopg

    return psycopg.connect(uri)


def _fetch(cursor: Any, statement: dict[str, Any]) -> list[tuple[Any, ...]]:
    params = statement["params"]
    cursor.execute(statement["sql"], tuple(params) if isinstance(params, list) else params)
    return cursor.fetchall()


def _shape(actor: UserRecord) -> dict[str, Any]:
    """services.prepared.actor_shape, on the record read here."""
    return {"id": actor.id, "organisation_id": actor.organisation_id,
            "admin": actor.is_admin, "active": actor.active}  # fmt: skip


def _utc(value: Any) -> datetime | None:
    """db.models.UTCDateTime's reading: SQLite gives naive UTC text, PostgreSQL aware values."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _user(row: tuple[Any, ...]) -> tuple[UserRecord, str | None]:
    (ident, organisation_id, email, name, first_name, last_name, role, availability, active,
     os_user, created_at, timezone, organisation_zone) = row  # fmt: skip
    actor = UserRecord(
        id=ident, organisation_id=organisation_id, email=email, name=name,
        first_name=first_name, last_name=last_name, role=role, availability=availability,
        active=bool(active), os_user=os_user, created_at=_utc(created_at), timezone=timezone,
    )  # fmt: skip
    return actor, organisation_zone


def _conversation(row: tuple[Any, ...]) -> ConversationRecord:
    """services.conversations.rows.to_record, on a driver row."""
    (ident, subject, status, priority, message_count, previous, created_at, last_message_at,
     mailbox, queue, contact, contact_name, assignee, tags, is_unread, flagged) = row  # fmt: skip
    return ConversationRecord(
        id=ident, subject=subject, status=status, priority=priority, mailbox=mailbox,
        queue=queue, contact=contact, contact_name=contact_name or "", assignee=assignee,
        tags=tuple(sorted(tags.split(TAG_SEPARATOR))) if tags else (),
        message_count=message_count, previous_conversation_id=previous,
        created_at=_utc(created_at), last_message_at=_utc(last_message_at),
        unread=bool(is_unread), flagged=flagged or "",
    )  # fmt: skip
