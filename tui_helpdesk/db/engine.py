"""URL → engine with the SQLite pragmas; sessions as short units of work; migrations to head."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from tui_helpdesk import database_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def normalise_url(url: str) -> str:
    """Accept plain postgresql:// URLs and use the psycopg 3 driver for them."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(
    url: str, *, busy_timeout_ms: int = 10_000, synchronous: str = "FULL", pre_ping: bool = True
) -> Engine:
    """`synchronous` is SQLite's pragma; on PostgreSQL OFF or NORMAL mean that commits do not
    wait for the WAL flush (synchronous_commit off: only a crash of the server itself can lose
    the last ones). `pre_ping` (PostgreSQL) tests a pooled connection before handing it out:
    a round trip per transaction, which a caller that tries again on a lost connection
    (ingest's store_batch) can do without."""
    url = normalise_url(url)
    if not is_sqlite(url):
        engine = create_engine(url, pool_pre_ping=pre_ping, pool_size=5, max_overflow=10)
        if synchronous.upper() in {"OFF", "NORMAL"}:

            @event.listens_for(engine, "connect")
            def _relaxed(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
                with dbapi_connection.cursor() as cursor:
                    cursor.execute("SET synchronous_commit TO off")
                dbapi_connection.commit()

        return engine
    path = database_url.sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:  # type: ignore[no-untyped-def]
        # Writers take the lock up front so two writers wait on busy_timeout instead of
        # failing on a lock upgrade; readers stay deferred and never block anyone in WAL.
        immediate = connection.get_execution_options().get("sqlite_immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """An engine and its session factory. Sessions are short: one per unit of work."""

    def __init__(
        self,
        url: str,
        *,
        busy_timeout_ms: int = 10_000,
        synchronous: str = "FULL",
        pre_ping: bool = True,
    ):
        self.url = normalise_url(url)
        self.engine = make_engine(
            self.url, busy_timeout_ms=busy_timeout_ms, synchronous=synchronous, pre_ping=pre_ping
        )
        self.is_sqlite = is_sqlite(self.url)
        writer_bind = (
            self.engine.execution_options(sqlite_immediate=True) if self.is_sqlite else self.engine
        )
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(writer_bind, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings, *, pre_ping: bool = True) -> Database:  # type: ignore[no-untyped-def]
        db = settings.database
        return cls(
            db.url,
            busy_timeout_ms=db.busy_timeout_ms,
            synchronous=db.sqlite_synchronous,
            pre_ping=pre_ping,
        )

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A unit of work that commits on success and rolls back on any exception."""
        with self._writer() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session, session.begin():
            yield session

    def migrate(self) -> None:
        migrate(self.engine)

    def schema_revision(self) -> str | None:
        """The revision the schema was migrated to (None: never migrated). No Alembic import:
        every CLI command checks this, and Alembic alone costs half a second to import."""
        try:
            with self.engine.connect() as connection:
                return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError:  # no such table
            return None

    def is_empty(self) -> bool:
        return "organisations" not in inspect(self.engine).get_table_names()

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to `revision`; idempotent (a database at head is left alone)."""
    from alembic import command

    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def dialect_insert(dialect: str) -> Any:
    """The dialect's INSERT construct (with ON CONFLICT) for "postgresql" or "sqlite".

    Imported on first use: the PostgreSQL dialect package imports all its driver modules
    (asyncpg's, psycopg's, pg8000's), which a SQLite command line never needs.
    """
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


@contextmanager
def pipelined(session: Session, *, commit: bool = False) -> Iterator[None]:
    """Statements of the block go to PostgreSQL without waiting for each answer (psycopg's
    pipeline mode): one round trip for the lot instead of one each. A no-op on SQLite.

    Only for statements with no result to read: inside the block SQLAlchemy sees no rows
    (nor an INSERT's RETURNING, so give new rows their ids). An error may surface at the end
    of the block rather than at its statement; it is raised as SQLAlchemy's DBAPIError either
    way, so callers handle it as any other database error.

    `commit`: the transaction's COMMIT goes in the same round trip, after the block's
    statements (a failed statement aborts it, and the error is raised as above). Only for a
    unit of work that ends with the block: the session's own commit then finds the
    connection's transaction over and sends nothing (psycopg commits only an open one).
    """
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        yield
        return
    dbapi = connection.connection.dbapi_connection
    pipeline = getattr(dbapi, "pipeline", None)
    if pipeline is None:  # a PostgreSQL driver without pipeline mode
        yield
        return
    try:
        with pipeline():
            yield
            if commit:
                connection.exec_driver_sql("COMMIT")
    except DBAPIError:
        raise
    except dbapi.Error as exc:  # type: ignore[union-attr]
        raise _driver_error(connection, exc) from exc


def read_together(
    session: Session, statements: Sequence[tuple[Any, Mapping[str, Any]]]
) -> list[list[tuple[Any, ...]]]:
    """The rows of each (statement, parameters), all sent in one round trip on PostgreSQL
    (psycopg's pipeline mode); elsewhere executed one after the other.

    The statements still run one after the other in the server, each with its own snapshot
    (READ COMMITTED): a read after a lock sees what the lock's holder committed. On
    PostgreSQL the first statement of a transaction goes with its BEGIN. For reads of columns
    that need no conversion by SQLAlchemy (ids, text, numbers): rows are the driver's tuples.
    Errors are SQLAlchemy's DBAPIError, with connection_invalidated set for a lost connection.
    """
    connection = session.connection()
    dbapi = connection.connection.dbapi_connection
    if connection.dialect.name != "postgresql" or not hasattr(dbapi, "pipeline"):
        return [[tuple(r) for r in connection.execute(s, dict(p))] for s, p in statements]
    cursors = [dbapi.cursor() for _ in statements]  # type: ignore[union-attr]
    try:
        with dbapi.pipeline():  # type: ignore[union-attr]
            for cursor, (statement, parameters) in zip(cursors, statements, strict=True):
                sql, defaults = _driver_sql(connection.dialect, statement)
                cursor.execute(sql, {**defaults, **parameters})
        return [cursor.fetchall() for cursor in cursors]
    except dbapi.Error as exc:  # type: ignore[union-attr]
        raise _driver_error(connection, exc) from exc
    finally:
        for cursor in cursors:
            cursor.close()


@functools.cache
def _driver_sql(dialect: Dialect, statement: Any) -> tuple[str, dict[str, Any]]:
    """The driver's SQL of a statement, compiled once, and the values it binds itself."""
    compiled = statement.compile(dialect=dialect)
    return compiled.string, dict(compiled.params)


def _driver_error(connection: Connection, exc: Exception) -> DBAPIError:
    """A driver error raised outside SQLAlchemy's execute, as SQLAlchemy would have raised it:
    its DBAPIError subclass, and a lost connection invalidated (not handed out again)."""
    dbapi = connection.connection.dbapi_connection
    lost = connection.dialect.is_disconnect(exc, dbapi, None)
    if lost:
        connection.invalidate(exc)
    return DBAPIError.instance(  # type: ignore[return-value]
        None,
        None,
        exc,
        type(dbapi).Error,
        connection_invalidated=lost,  # type: ignore[arg-type]
    )
