"""Which schema a database holds, against the Alembic revisions this version knows.

Every command checks it before it touches a table, so a new version against an old database
says "run `tui-helpdesk db upgrade`", and an old version against a database a newer one has
upgraded refuses instead of writing rows it does not understand. The check reads the revisions
from the migration files (db/revisions.py); only `upgrade` loads Alembic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tui_helpdesk.db.revisions import head_revision, known_revisions
from tui_helpdesk.errors import Invalid

if TYPE_CHECKING:
    from tui_helpdesk.db.engine import Database


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None  # the database's revision; None before `init`
    head: str  # the newest revision this version knows
    known: bool  # current is one of this version's revisions

    @property
    def state(self) -> str:
        """empty | current | older | newer."""
        if self.current is None:
            return "empty"
        if not self.known:
            return "newer"
        return "current" if self.current == self.head else "older"


def status_of(revision: str | None) -> SchemaStatus:
    """How a database at `revision` (e.g. a backup's) compares with this version."""
    known = revision is None or revision in known_revisions()
    return SchemaStatus(current=revision, head=head_revision(), known=known)


def schema_status(db: Database) -> SchemaStatus:
    return status_of(db.schema_revision())


def schema_problem(status: SchemaStatus, where: str) -> str | None:
    """What an admin must do before this version may use the database; None when nothing."""
    state = status.state
    if state == "empty":
        return f"the database at {where} is not initialised: run `tui-helpdesk init`"
    if state == "older":
        return (
            f"the database at {where} has schema {status.current}, this version needs "
            f"{status.head}: run `tui-helpdesk db upgrade` (take `tui-helpdesk db backup PATH` "
            "first)"
        )
    if state == "newer":
        return (
            f"the database at {where} has schema {status.current}, which this version does not "
            f"know (its newest is {status.head}): a newer tui-helpdesk upgraded it; run that "
            "version, or restore a backup taken before the upgrade"
        )
    return None


def upgrade(db: Database) -> tuple[SchemaStatus, SchemaStatus]:
    """Migrate to head (Alembic); refuses a newer schema rather than let Alembic fail on it."""
    before = schema_status(db)
    if before.state == "newer":
        raise Invalid(schema_problem(before, str(db.engine.url)) or "", field="database")
    if before.state != "current":
        db.migrate()
    return before, schema_status(db)
