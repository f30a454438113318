"""F3 local identity: the OS login of the effective uid acts; --as only for the database owner."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import add_user, make_org
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tui_helpdesk import database_url
from tui_helpdesk.cli.identity import Owner, database_owner, may_act_as_anyone, os_login
from tui_helpdesk.config import Settings, load_settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.services import users

NOBODY = pwd.getpwnam("nobody").pw_uid


def test_os_login_comes_from_the_uid_not_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("USER", "ada")
    monkeypatch.setenv("LOGNAME", "ada")
    assert os_login() == pwd.getpwuid(os.geteuid()).pw_name
    assert os_login(NOBODY) == "nobody"
    assert os_login(2**31 - 7) is None  # no passwd entry


def test_owner_of_a_sqlite_database_is_the_owner_of_its_file(tmp_path: Path) -> None:
    path = tmp_path / "desk" / "helpdesk.sqlite3"
    before = database_owner(
        load_settings(environ={"TUI_HELPDESK_DATABASE_URL": f"sqlite:///{path}"})
    )
    assert before.uid == tmp_path.stat().st_uid  # not made yet: the directory that will hold it
    path.parent.mkdir()
    path.write_bytes(b"")
    if os.geteuid() == 0:
        os.chown(path, NOBODY, -1)
    owner = database_owner(
        load_settings(environ={"TUI_HELPDESK_DATABASE_URL": f"sqlite:///{path}"})
    )
    assert owner.uid == path.stat().st_uid and str(path) in owner.what
    memory = database_owner(load_settings(environ={"TUI_HELPDESK_DATABASE_URL": "sqlite://"}))
    assert memory.uid is None


def test_owner_of_a_postgresql_database_is_the_owner_of_the_config_file(tmp_path: Path) -> None:
    url = "postgresql+psycopg://helpdesk@127.0.0.1/helpdesk"
    config = tmp_path / "helpdesk.toml"
    config.write_text(f'[database]\nurl = "{url}"\n')
    owner = database_owner(load_settings(config, environ={}))
    assert owner.uid == config.stat().st_uid and "config file" in owner.what
    from_environment = database_owner(load_settings(environ={"TUI_HELPDESK_DATABASE_URL": url}))
    assert from_environment.uid is None  # whoever runs it brought the credentials


def owner_as_sqlalchemy_reads_it(settings: Settings) -> Owner:
    """database_owner as it was before it read the URL without SQLAlchemy (make_url)."""
    url = make_url(settings.database.url)
    if url.get_backend_name() == "sqlite":
        database = url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return Owner(None, "an in-memory database")
        path = Path(database)
        existing = next(p for p in (path, *path.absolute().parents) if p.exists())
        return Owner(existing.stat().st_uid, f"the database file {path}")
    if settings.source:
        return Owner(Path(settings.source).stat().st_uid, f"the config file {settings.source}")
    return Owner(None, "a database URL from the environment")


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///helpdesk.sqlite3", "sqlite:///desk/helpdesk.sqlite3",  # relative to the cwd
        "sqlite:///{tmp}/helpdesk.sqlite3", "sqlite+pysqlite:///{tmp}/helpdesk.sqlite3",
        "sqlite:///{tmp}/not/made/yet.sqlite3", "sqlite:///{tmp}/my%20desk.sqlite3",
        "sqlite:///{tmp}/helpdesk.sqlite3?timeout=5", "sqlite://", "sqlite:///:memory:",
        "sqlite:///file:desk?mode=memory&uri=true", "postgresql+psycopg://hd:pw@127.0.0.1/hd",
        "postgresql://hd@127.0.0.1:5433/hd?sslmode=disable", "postgres://hd@[::1]/hd",
    ],
)  # fmt: skip
@pytest.mark.parametrize("where", ["config file", "environment"])
def test_the_owner_read_without_sqlalchemy_is_the_owner_sqlalchemy_reads(
    url: str, where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--as is decided before the database layer is imported (the TUI's start-up cache), so
    the URL is read without it: the owner is the same for every form of URL."""
    monkeypatch.chdir(tmp_path)
    url = url.replace("{tmp}", str(tmp_path / "abs"))
    for made in (tmp_path / "desk", tmp_path / "abs"):
        made.mkdir()
        (made / "helpdesk.sqlite3").write_bytes(b"")
        if os.geteuid() == 0:
            os.chown(made / "helpdesk.sqlite3", NOBODY, -1)  # not the folder's owner
    (tmp_path / "abs" / "my desk.sqlite3").write_bytes(b"")
    if where == "config file":
        config = tmp_path / "helpdesk.toml"
        config.write_text(f"[database]\nurl = {json.dumps(url)}\n")
        settings = load_settings(config, environ={})
    else:
        settings = load_settings(environ={"TUI_HELPDESK_DATABASE_URL": url})
    assert database_owner(settings) == owner_as_sqlalchemy_reads_it(settings)


@given(
    scheme=st.sampled_from(["sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg",
                            "postgres", "mysql+x", "sqlite_x", "sq lite", ""]),
    rest=st.text(alphabet="/:@?=&%[]ab. 2\\", max_size=24),
)  # fmt: skip
def test_the_url_is_split_as_sqlalchemy_splits_it(scheme: str, rest: str) -> None:
    """Any text: where make_url reads a URL, the light reading reads the same backend and
    SQLite file (where it reads none, the database layer refuses the URL anyway)."""
    url = f"{scheme}://{rest}"
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return
    assert database_url.backend(url) == parsed.get_backend_name()
    database = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        assert database_url.sqlite_file(url) is None
    else:
        assert database_url.sqlite_file(url) == Path(database)


def test_who_may_act_as_anyone() -> None:
    owner = Owner(1000, "the database file x")
    assert may_act_as_anyone(owner, 1000)
    assert may_act_as_anyone(owner, 0)  # root
    assert not may_act_as_anyone(owner, 1001)
    assert may_act_as_anyone(Owner(None, "a database URL from the environment"), 1001)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another account can reach (pytest's own tmp dirs are private to us)."""
    path = Path(tempfile.mkdtemp(prefix="tui-helpdesk-identity-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path)


def test_a_mapped_agent_process_cannot_act_as_someone_else(
    backend: str, db_url: str, shared_dir: Path
) -> None:
    """A real process: as root it drops to `nobody` (mapped to an agent), else runs as itself."""
    url = db_url
    if backend == "sqlite":
        live = shared_dir / "helpdesk.sqlite3"
        shutil.copyfile(db_url.removeprefix("sqlite:///"), live)
        live.chmod(0o666)
        url = f"sqlite:///{live}"
    config = shared_dir / "helpdesk.toml"
    config.write_text(f"[database]\nurl = {json.dumps(url)}\n")
    config.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    me = pwd.getpwuid(os.geteuid()).pw_name
    db = Database(url)
    try:
        _desk(db, agent_login="nobody" if os.geteuid() == 0 else me)
    finally:
        db.dispose()
    if os.geteuid() == 0:
        assert _run_as_nobody(config, "user", "whoami", "--json")[1]["email"] == "bob@acme.test"
        code, error = _run_as_nobody(config, "user", "whoami", "--json", "--as", "ada@acme.test")
        assert code == 6 and error["field"] == "as" and "you are nobody" in error["message"]
    else:  # we own the database here, so --as is ours to use
        code, found = _run(config, [], "user", "whoami", "--json", "--as", "ada@acme.test")
        assert code == 0 and found["email"] == "ada@acme.test"


def _desk(db: Database, *, agent_login: str) -> None:
    org = make_org(db)
    add_user(db, org.admin, "bob@acme.test", os_user=agent_login)
    with db.read() as session:
        assert users.resolve_actor(session, email=None, os_user=agent_login).role == "agent"


def _run_as_nobody(config: Path, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    drop = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    return _run(config, drop, *args)


def _run(config: Path, prefix: list[str], *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUI_HELPDESK_")}
    env.update(TUI_HELPDESK_CONFIG=str(config), USER="ada", LOGNAME="ada", HOME="/")
    done = subprocess.run(
        [*prefix, sys.executable, "-m", "tui_helpdesk", *args],
        env=env, capture_output=True, text=True, timeout=60, cwd="/",
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    payload = json.loads("\n".join(lines)) if lines else {"stderr": done.stderr}
    return done.returncode, payload
