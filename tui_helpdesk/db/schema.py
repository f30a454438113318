"""Which schema a database holds, against the Alembic revisions this version knows.

Every command checks it before it touches a table, so a new version against an old database
says "run `tui-helpdesk db upgrade`", and an old version against a database a newer one has
upgraded refuses instead of writing rows it does not understand. Alembic is imported here, in
the functions, so commands that never meet a database do not pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from tui_helpdesk.db.engine import alembic_config, migrate
from tui_helpdesk.errors import Invalid


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


def _script():  # type: ignore[no-untyped-def]
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def status_of(revision: str | None) -> SchemaStatus:
    """How a database at `revision` (e.g. a backup's) compares with this version."""
    script = _script()
    known = revision is None or any(rev.revision == revision for rev in script.walk_revisions())
    return SchemaStatus(current=revision, head=script.get_current_head() or "", known=known)


def schema_status(engine: Engine) -> SchemaStatus:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return status_of(MigrationContext.configure(connection).get_current_revision())


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


def upgrade(engine: Engine) -> tuple[SchemaStatus, SchemaStatus]:
    """Migrate to head; refuses a newer schema rather than let Alembic fail on it."""
    before = schema_status(engine)
    if before.state == "newer":
        raise Invalid(schema_problem(before, str(engine.url)) or "", field="database")
    if before.state != "current":
        migrate(engine)
    return before, schema_status(engine)
