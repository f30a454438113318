"""Shared fixtures. Database tests run once per backend: ids `sqlite` and `postgresql`.

PostgreSQL runs when TUI_HELPDESK_TEST_PG_URL is set (CI always sets it), the real-mail corpus
test when TUI_HELPDESK_CORPUS is (CI points it at ../shared/mail-corpus); the summary of a run
without them says so and how to turn them on. Each backend's schema
is built once per session by running the Alembic migrations, so every run tests them; each test
then starts from empty tables (a copy of the migrated SQLite file, or every row deleted and
the sequences reset on PostgreSQL).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dkim_keys import DkimKey, make_dkim_key
from dns_server import ZoneServer, silent_port
from sqlalchemy import text

from tui_helpdesk.config import Settings, load_settings
from tui_helpdesk.db.engine import Database, normalise_url
from tui_helpdesk.db.models import Base

# Commands the tests run as subprocesses run in their own process: the warm command server
# (tui_helpdesk.launch) is tested on its own in test_cli_warm.py, which turns it back on.
os.environ["TUI_HELPDESK_CLI_SERVER"] = "off"
# What commands keep in the user's cache folder (the TUI's start-up cache, which `init`,
# `db upgrade` and the worker write too) goes to a folder of this run, not the runner's home.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="hd-test-cache-")

PG_ENV = "TUI_HELPDESK_TEST_PG_URL"
PG_EXAMPLE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CORPUS_ENV = "TUI_HELPDESK_CORPUS"
CORPUS_EXAMPLE = "$PWD/../shared/mail-corpus"  # from the repository's root, as CI sets it


TABLES_SETTLE_SECONDS = 5.0


@pytest.fixture
def snap_compare(snap_compare: Callable[..., bool]) -> Callable[..., bool]:
    """pytest-textual-snapshot's, taking its screenshot once every DataTable on the screen has
    measured its rows. A DataTable sizes its columns on its next Idle event, and the snapshot's
    own wait (CPU idle) can end before that on a loaded machine: CI once drew a table of
    domains with its columns cut at their headers' width."""

    def compare(
        app: Any,
        press: Any = (),
        terminal_size: tuple[int, int] = (80, 24),
        run_before: Callable[[Any], Awaitable[None] | None] | None = None,
    ) -> bool:
        async def settled(pilot: Any) -> None:
            if run_before is not None:
                waited = run_before(pilot)
                if waited is not None:
                    await waited
            await tables_settled(pilot)

        return snap_compare(app, press=press, terminal_size=terminal_size, run_before=settled)

    return compare


async def tables_settled(pilot: Any) -> None:
    """Wait (at most TABLES_SETTLE_SECONDS) until no DataTable on the screen has cells or rows
    it has not measured yet (Textual's own pending-work flags; Textual is pinned)."""
    from textual.widgets import DataTable

    deadline = time.monotonic() + TABLES_SETTLE_SECONDS
    while time.monotonic() < deadline and any(
        table._updated_cells or table._require_update_dimensions
        for table in pilot.app.screen.query(DataTable)
    ):
        await pilot.pause(0.02)


@pytest.fixture(autouse=True)
def no_fork_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    """A TUI start through the CLI inside the test process does not fork the process writing
    a missing start-up cache (tui/start_ahead.py): a fork of pytest is not a start. Whole
    starts in processes of their own do (test_tui_quick_start_cli.py, test_tui_start_ahead.py)."""
    from tui_helpdesk.tui import start_ahead

    monkeypatch.setattr(start_ahead, "start", lambda *_args: None)


def backends() -> list[str]:
    return ["sqlite", "postgresql"] if os.environ.get(PG_ENV) else ["sqlite"]


# Screens only call services, and every service is tested on both backends: a Pilot test of a
# screen runs on SQLite alone unless it is marked `both_backends` (what the screen itself does
# differently on PostgreSQL: live refresh by LISTEN/NOTIFY). Keeps the suite under 5 minutes.
SCREEN_TESTS = re.compile(r"test_tui_(?!live|data|conversation_drafts)\w*\.py$")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        chosen = backends()
        screen = SCREEN_TESTS.search(str(metafunc.definition.path)) is not None
        if screen and metafunc.definition.get_closest_marker("both_backends") is None:
            chosen = chosen[:1]
        if metafunc.definition.get_closest_marker("postgresql_only") is not None:
            chosen = [b for b in chosen if b == "postgresql"]  # none without a PostgreSQL URL
        metafunc.parametrize("backend", chosen, scope="session")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """A run that left out half of the suite says so, instead of passing quietly."""
    missing = []
    if not os.environ.get(PG_ENV):
        missing.append(f"PostgreSQL half did not run; turn it on: {PG_ENV}={PG_EXAMPLE} make test")
    if not os.environ.get(CORPUS_ENV):
        missing.append(f"mail corpus tests did not run: {CORPUS_ENV}={CORPUS_EXAMPLE} make test")
    if missing:
        terminalreporter.write_sep("-", "not run")
        for line in missing:
            terminalreporter.write_line(line, yellow=True)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    db.dispose()
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    base = normalise_url(os.environ[PG_ENV])
    schema = f"hd_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = Database(base)
    with admin.engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    url = f"{base}{sep}options=-csearch_path%3D{schema}"
    db = Database(url)
    db.migrate()
    db.dispose()
    yield url
    with admin.engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


# Every table emptied and every sequence of the schema back at 1, in one statement. DELETE
# rather than TRUNCATE: TRUNCATE gives each table and index new files and waits for their WAL
# at commit, 0.08 s alone and a median 0.6 s beside the rest of the suite; DELETE on a test's
# few rows takes milliseconds. The foreign keys' triggers are off while it runs (the test
# runner connects as a superuser), so the order of the tables does not matter.
_EMPTY_ALL = (
    "SET LOCAL session_replication_role = replica;"
    "SET LOCAL synchronous_commit = off;"
    + "".join(f'DELETE FROM "{t.name}";' for t in Base.metadata.sorted_tables)
    + "SELECT setval(s.oid, 1, false) FROM pg_class AS s"
    " JOIN pg_namespace AS n ON n.oid = s.relnamespace"
    " WHERE s.relkind = 'S' AND n.nspname = current_schema()"
)


def _empty_all(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.exec_driver_sql(_EMPTY_ALL)


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of the parametrized backend."""
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "helpdesk.sqlite3"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_url")
    db = Database(url)
    _empty_all(db)
    db.dispose()
    return url


@pytest.fixture
def empty_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all (its own SQLite file or PostgreSQL schema)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.sqlite3'}"
        return
    base = normalise_url(os.environ[PG_ENV])
    schema = f"hd_mig_{uuid.uuid4().hex[:8]}"
    admin = Database(base)
    with admin.engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def settings(db_url: str) -> Settings:
    """Settings for a test: its own database, SMTP on an ephemeral loopback port."""
    return load_settings(
        environ={
            "TUI_HELPDESK_DATABASE_URL": db_url,
            "TUI_HELPDESK_SMTP_HOST": "127.0.0.1",
            "TUI_HELPDESK_SMTP_PORT": "0",
            # F75's checker asks the DNS: only its own tests turn it on, with a test server
            "TUI_HELPDESK_INBOUND_AUTH_CONCURRENCY": "0",
        }
    )


@pytest.fixture(scope="session")
def make_key(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """`make_key("ed25519")` → a new public key file made by the real ssh-keygen."""
    folder = tmp_path_factory.mktemp("keys")
    count = iter(range(10_000))

    def make(kind: str = "ed25519", *extra: str, comment: str = "laptop") -> Path:
        path = folder / f"key{next(count)}"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-C", comment, "-f", str(path)],
            check=True, capture_output=True,
        )  # fmt: skip
        return path.with_suffix(".pub")

    return make


@pytest.fixture
def dns_server() -> Iterator[ZoneServer]:
    """An authoritative DNS server on 127.0.0.1 (UDP and TCP); load zones with .load()."""
    server = ZoneServer().start()
    yield server
    server.stop()


@pytest.fixture
def silent_dns_port() -> Iterator[int]:
    """A loopback port where a nameserver receives queries and never answers (DNS down)."""
    with silent_port() as port:
        yield port


@pytest.fixture(scope="session")
def dkim_key() -> DkimKey:
    """A 2048-bit RSA key (made once per run): its TXT record needs the DNS server's TCP path."""
    return make_dkim_key()


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket in the abstract namespace, as systemd hands over ("@…")."""
    name = f"@tui-helpdesk-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name[1:])
    sock.settimeout(30)
    yield sock, name
    sock.close()
