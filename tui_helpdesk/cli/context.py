"""What every command shares: --json and --as, settings, the database, the acting user, errors.

`--json` and `--as` are options of every command and group, so they may follow arguments
(`mailbox show ADDRESS --json --as EMAIL`); their values live in ctx.meta, shared by the whole
command line. Service errors become exit codes in `HelpdeskGroup.invoke`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tui_helpdesk.cli import identity, output
from tui_helpdesk.config import Settings, load_settings
from tui_helpdesk.errors import HelpdeskError, Invalid, PermissionDenied
from tui_helpdesk.records import UserRecord
from tui_helpdesk.terminal_text import clean

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from tui_helpdesk.db.engine import Database

JSON_KEY = "tui_helpdesk.json"
AS_KEY = "tui_helpdesk.as"
F = TypeVar("F", bound=Callable[..., Any])


def _remember(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value:
            ctx.meta[key] = value
        return value

    return callback


def common(command: F) -> F:
    """Add --json and --as to a command or group."""
    command = click.option(
        "--json", "as_json", is_flag=True, expose_value=False, is_eager=True,
        callback=_remember(JSON_KEY), help="Print JSON instead of text.",
    )(command)  # fmt: skip
    return click.option(
        "--as", "as_email", metavar="EMAIL", expose_value=False, callback=_remember(AS_KEY),
        help="Act as this user (default: the user mapped to your OS login).",
    )(command)  # fmt: skip


def wants_json() -> bool:
    return bool(click.get_current_context().meta.get(JSON_KEY))


def emit(value: Any, text: Callable[[Any], str]) -> None:
    """Print a result: JSON when --json was given, else the text rendering."""
    output.echo(output.dumps(value) if wants_json() else text(value))


def safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


class HelpdeskGroup(click.Group):
    """Maps service errors to exit codes (2 invalid, 3 not found, 4 conflict, 5 limit, 6 denied)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HelpdeskError as error:
            _report(ctx, error.message, error.as_dict())
            ctx.exit(error.exit_code)
        except Exception as error:
            if not _database_unusable(error):
                raise
            cause = getattr(error, "orig", None) or error
            message = f"cannot use the database: {str(cause).splitlines()[0]}"
            _report(ctx, message, {"error": "database", "message": message, "field": None})
            ctx.exit(1)


def _database_unusable(error: Exception) -> bool:
    """An OperationalError of SQLAlchemy (imported only by commands that used the database)."""
    exc = sys.modules.get("sqlalchemy.exc")
    return exc is not None and isinstance(error, exc.OperationalError)


def _report(ctx: click.Context, message: str, payload: dict[str, Any]) -> None:
    click.echo(f"error: {clean(message, one_line=True)}", err=True)
    if ctx.meta.get(JSON_KEY):
        click.echo(json.dumps(payload))


class Cx:
    """The state of one command line: the config path, who runs it, settings and database.

    `uid` is the account at the keyboard (default: the effective uid); `ssh_key_id` is set by
    `ssh-session` so the key, not `--as` or the OS login, decides who acts.
    """

    def __init__(
        self, config_path: str | None, *, uid: int | None = None, ssh_key_id: int | None = None
    ) -> None:
        self.config_path = config_path
        self.uid = identity.effective_uid() if uid is None else uid
        self.ssh_key_id = ssh_key_id
        self._settings: Settings | None = None
        self._db: Database | None = None
        self._schema_checked = False

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    def database(self, *, check: bool = True) -> Database:
        """The database; unless check=False it must be migrated to head (else: run init)."""
        if self._db is None:
            self._db = _open_database(self.settings(), check=check)
            click.get_current_context().call_on_close(self._db.dispose)
        if check and not self._schema_checked:
            _require_current_schema(self._db)
            self._schema_checked = True
        return self._db

    @contextmanager
    def session(
        self, *, write: bool = False, bootstrap: bool = False
    ) -> Iterator[tuple[Session, UserRecord | None]]:
        """A unit of work and the acting user (None only for bootstrap commands on no users)."""
        db = self.database()
        with db.write() if write else db.read() as session:
            yield session, self._actor(session, bootstrap=bootstrap)

    def _actor(self, session: Session, *, bootstrap: bool) -> UserRecord | None:
        email = click.get_current_context().meta.get(AS_KEY)
        return self.actor_as(session, email, bootstrap=bootstrap)

    def resolve_email(self, as_email: str | None) -> str:
        """Who acts, as `session()` decides it, for a thread without the click context (the
        TUI resolves its user after its first frame). Raises the same errors."""
        db = _open_database(self.settings(), check=True)
        try:
            _require_current_schema(db)
            with db.read() as session:
                actor = self.actor_as(session, as_email, bootstrap=False)
                assert actor is not None  # without bootstrap there is always one, or an error
                return actor.email
        finally:
            db.dispose()

    def actor_as(
        self, session: Session, email: str | None, *, bootstrap: bool
    ) -> UserRecord | None:
        from tui_helpdesk.services import permissions, users

        if not permissions.has_users(session):
            if bootstrap:
                return None
            raise PermissionDenied(
                "there are no users yet: create the organisation and the first admin with "
                "`tui-helpdesk org create NAME --timezone TZ --language LANG` and "
                "`tui-helpdesk user add EMAIL --name NAME --role admin`",
                field="as",
            )
        if self.ssh_key_id is not None:
            return self._ssh_actor(session, email)
        if email:
            owner = identity.database_owner(self.settings())
            if not identity.may_act_as_anyone(owner, self.uid):
                raise PermissionDenied(identity.owner_refusal(owner, self.uid), field="as")
            return users.resolve_actor(session, email=email, os_user=None)
        return users.resolve_actor(session, email=None, os_user=identity.os_login(self.uid))

    def _ssh_actor(self, session: Session, email: str | None) -> UserRecord:
        if email:
            raise PermissionDenied(
                "--as is refused over SSH: your key decides who you are", field="as"
            )
        from tui_helpdesk.services.ssh_keys import user_for_key

        return user_for_key(session, self.ssh_key_id or 0)


def read_text(path: str, *, field: str) -> str:
    """A UTF-8 file ("-" = standard input): long bodies do not belong on a command line.

    Over SSH only standard input is read: a path would be read as the helpdesk account, which
    can read the config and its database password.
    """
    cx = click.get_current_context().find_object(Cx)
    if cx is not None and cx.ssh_key_id is not None and path != "-":
        raise PermissionDenied(
            f"{field}: over SSH give the text on standard input (-), not a path", field=field
        )
    with click.open_file(path, "rb") as stream:
        data = stream.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid(f"{field}: {path} is not UTF-8 text", field=field) from None


NOT_INITIALISED = "the database at {url} is not initialised: run `tui-helpdesk init`"


def _open_database(settings: Settings, *, check: bool) -> Database:
    """The configured database; with check, a SQLite file that is not there is refused
    instead of created empty (the schema is checked by the caller)."""
    if check:
        _require_sqlite_file(settings.database.url)
    from tui_helpdesk.db.engine import Database

    return Database.from_settings(settings)


def _require_sqlite_file(url: str) -> None:
    """Do not create an empty SQLite file just by running some command against it."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return
    if parsed.database != ":memory:" and not Path(parsed.database).exists():
        raise Invalid(NOT_INITIALISED.format(url=safe_url(url)), field="database")


def _require_current_schema(db: Database) -> None:
    """Older: run `db upgrade`; newer: this version must not touch it (db/schema.py)."""
    from tui_helpdesk.db.schema import schema_problem, schema_status

    problem = schema_problem(schema_status(db), safe_url(db.url))
    if problem is not None:
        raise Invalid(problem, field="database")
