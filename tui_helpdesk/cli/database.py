"""`tui-helpdesk db status|upgrade|backup|restore`: the schema and the data, for the owner.

These work on the database itself, not through a user: whoever can read (backup) or write
(upgrade, restore) the database file or holds the PostgreSQL credentials may run them, and they
are refused over SSH (cli/ssh_session.py). Alembic and the backup code load only here.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tui_helpdesk import database_url
from tui_helpdesk.cli.context import Cx, HelpdeskGroup, common, emit, safe_url, wants_json
from tui_helpdesk.cli.output import key_values
from tui_helpdesk.errors import Invalid

if TYPE_CHECKING:
    from tui_helpdesk.db.engine import Database

pass_cx = click.make_pass_decorator(Cx)


@click.group("db", cls=HelpdeskGroup)
@common
def db() -> None:
    """The database schema, backups and restores (F82)."""


@db.command("status")
@common
@pass_cx
def db_status(cx: Cx) -> None:
    """The schema revision of the database and the one this version needs."""
    from tui_helpdesk.db.schema import schema_problem, schema_status

    database = _database(cx)
    status = schema_status(database)
    where = safe_url(database.url)
    emit({"database": where, "revision": status.current, "head": status.head,
          "state": status.state, "action": schema_problem(status, where)}, key_text)  # fmt: skip


@db.command("upgrade")
@common
@pass_cx
def db_upgrade(cx: Cx) -> None:
    """Migrate the schema to this version (back up first); a newer schema is refused."""
    from tui_helpdesk.db.schema import upgrade

    database = _database(cx)
    before, after = upgrade(database)
    from tui_helpdesk.cli.run import warm_start_cache

    warm_start_cache(cx, database)
    emit({"database": safe_url(database.url), "from": before.current, "to": after.current,
          "upgraded": before.current != after.current}, _upgrade_text)  # fmt: skip


def _upgrade_text(result: dict[str, Any]) -> str:
    if not result["upgraded"]:
        return f"Schema already at {result['to']}: nothing to do ({result['database']})."
    start = result["from"] or "(empty)"
    return f"Schema upgraded from {start} to {result['to']} ({result['database']})."


@db.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@common
@pass_cx
def db_backup(cx: Cx, path: str) -> None:
    """SQLite: a consistent copy to PATH while the worker runs. PostgreSQL: the pg_dump line."""
    from tui_helpdesk.db.backup import backup_sqlite, libpq_url

    database = _database(cx)
    source = _sqlite_file(cx)
    if source is None:
        url, schema = libpq_url(database.url)
        words = ["pg_dump", "--format=custom", f"--file={path}"]
        words += [f"--schema={schema}"] if schema else []
        _print_tool("backup", [*words, url])
        return
    copy = backup_sqlite(source, Path(path))
    emit({"backend": "sqlite", **vars(copy)}, key_text)


@db.command("restore")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@common
@pass_cx
def db_restore(cx: Cx, path: str, yes: bool) -> None:
    """SQLite: copy the backup PATH into the database (workers stopped). PostgreSQL: the line."""
    from tui_helpdesk.db.backup import inspect_backup, libpq_url, restore_sqlite
    from tui_helpdesk.db.schema import status_of

    target = _sqlite_file(cx)
    if target is None:
        url, _schema = libpq_url(cx.settings().database.url)
        words = ["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction"]
        _print_tool("restore", [*words, f"--dbname={url}", path])
        return
    backup = inspect_backup(Path(path))
    status = status_of(backup.revision)
    if status.state == "newer":
        raise Invalid(
            f"{path} has schema {backup.revision}, which this version does not know", field="path"
        )
    _confirm(yes, f"Replace every row of {target} with {path} (schema {backup.revision})? "
                  "Mail received since that backup is lost")  # fmt: skip
    copy = restore_sqlite(Path(path), target)
    after = "start the workers again" if status.state == "current" else (
        "run `tui-helpdesk db upgrade`, then start the workers again")  # fmt: skip
    emit({"backend": "sqlite", **vars(copy), "next": after}, key_text)


def _confirm(yes: bool, question: str) -> None:
    if yes:
        return
    if wants_json():
        raise Invalid("a restore replaces the database: pass --yes to confirm", field="yes")
    click.confirm(question, abort=True)


def _database(cx: Cx) -> Database:
    """The database, as it is: a SQLite file must exist already (`init` creates it)."""
    path = _sqlite_file(cx)
    if path is not None and not path.exists():
        raise Invalid(f"no database at {path}: run `tui-helpdesk init`", field="database")
    return cx.database(check=False)


def _sqlite_file(cx: Cx) -> Path | None:
    return database_url.sqlite_file(cx.settings().database.url)


def _print_tool(action: str, words: list[str]) -> None:
    """PostgreSQL's own tools do this; the line names no password (PGPASSWORD or ~/.pgpass)."""
    result = {"backend": "postgresql", "action": action, "command": shlex.join(words)}
    emit(
        result, lambda r: f"# PostgreSQL: run this where the database is reachable\n{r['command']}"
    )


def key_text(result: dict[str, Any]) -> str:
    return key_values(result.items())
