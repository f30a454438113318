"""The start-up cache on the CLI's start paths: `--as EMAIL` and `ssh-session --key-id N`.

The cache may look up who acts only where the CLI's identity check would find the same user:
an --as the database owner gives, the SSH key. A refused --as, a removed key or an inactive
user never get cached rows: the normal start refuses, with the message and exit code of every
command. Each start here is the real CLI (`tui-helpdesk ARGS`, the app headless).
"""

from __future__ import annotations

import json
import os
import pty
import pwd
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_tui import SIZE, list_lines, loaded
from test_tui_data import actor, seed

from tui_helpdesk import start_cache
from tui_helpdesk.cli import cli, identity, run
from tui_helpdesk.cli.context import Cx
from tui_helpdesk.cli.terminal import SSH_VARIABLES
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import User
from tui_helpdesk.services import ssh_keys
from tui_helpdesk.tui import quick_start
from tui_helpdesk.tui.app import HelpdeskApp

NOBODY = pwd.getpwnam("nobody").pw_uid
PAGE = 10
PROBE = Path(__file__).with_name("tui_start_probe.py")


@dataclass
class Start:
    """One `tui-helpdesk` start: its exit code and error, and what its inbox drew first."""

    code: int
    stderr: str
    from_cache: bool
    drawn: list[tuple[bool, list[str]]]  # the first rows: connected yet, the lines shown


@dataclass
class Desk:
    db: Database
    config: Path
    cache: Path  # XDG_CACHE_HOME: the start-up cache is in its tui-helpdesk folder
    monkeypatch: pytest.MonkeyPatch

    @property
    def env(self) -> dict[str, str | None]:
        # Not over SSH, whatever the test runner's own session is.
        return {"TUI_HELPDESK_CONFIG": str(self.config), "XDG_CACHE_HOME": str(self.cache),
                **dict.fromkeys(SSH_VARIABLES)}  # fmt: skip

    def cached(self, who: start_cache.Who) -> Path:
        folder = self.cache / "tui-helpdesk"
        return start_cache.cache_file(folder, str(self.db.url), who)

    def start(self, *args: str, cx: Cx | None = None) -> Start:
        """`tui-helpdesk ARGS` (as the account `cx` says), until the app is connected and the
        start-up cache written, or until it ends by itself."""
        apps: list[HelpdeskApp] = []
        drawn: list[tuple[bool, list[str]]] = []

        def headless(app: HelpdeskApp, **_options: Any) -> Any:
            apps.append(app)
            release = app.data.first_rows_drawn

            def first_rows_drawn() -> None:
                drawn.append((app.data.connected, list_lines(app)))
                release()

            app.data.first_rows_drawn = first_rows_drawn  # type: ignore[method-assign]
            return original(app, headless=True, size=SIZE, auto_pilot=self._until_started)

        original = HelpdeskApp.run
        with self.monkeypatch.context() as patch:
            patch.setattr(HelpdeskApp, "run", headless)
            result = CliRunner().invoke(cli, list(args), env=self.env, obj=cx)
        assert isinstance(result.exception, SystemExit | None), result.exception
        return Start(result.exit_code, result.stderr, apps[0].data.started_from_cache, drawn)

    async def _until_started(self, pilot: Any) -> None:
        app = pilot.app
        deadline = 60 / 0.02
        while app.return_code is None and deadline > 0:
            if app.data.connected and loaded(app) and any(self.cache.glob("*/start-*.json")):
                break
            await pilot.pause(0.02)
            deadline -= 1
        if app.return_code is None:
            await pilot.exit(None)


@pytest.fixture
def desk(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    """The seeded Acme (admin ada, agents bob, cy, dee) named by a config file we own."""
    seed(db)
    config = tmp_path / "helpdesk.toml"
    config.write_text(
        f"[database]\nurl = {json.dumps(str(db.url))}\n[smtp]\nport = 0\n"
        f"[tui]\npage_size = {PAGE}\nrefresh_interval_seconds = 0.05\n"
    )
    yield Desk(db, config, tmp_path / "cache", monkeypatch)


def add_key(desk: Desk, email: str, public_key: Path) -> int:
    with desk.db.write() as session:
        admin = actor(desk.db, "ada@acme.test")
        return ssh_keys.add(session, admin, email, public_key.read_text()).id


def refusal(desk: Desk, *args: str, cx: Cx) -> str:
    """What the CLI says to a command as `cx`: the message every start must give."""
    result = CliRunner().invoke(cli, [*args, "user", "whoami"], env=desk.env, obj=cx)
    assert result.exit_code == 6, result.output
    return result.stderr


@pytest.mark.both_backends
def test_the_owner_acting_as_someone_starts_from_the_cache(desk: Desk) -> None:
    """--as by the database owner (here: we own the SQLite file, or the config file naming
    the PostgreSQL database): the first start writes the cache for that address, the next
    draws the same rows from it before the database layer is opened."""
    first = desk.start("--as", " Bob@Acme.test ", "--no-worker")
    assert first.code == 0 and not first.from_cache
    assert desk.cached(("email", "bob@acme.test")).exists()
    second = desk.start("--as", "bob@acme.test", "--no-worker")
    assert second.code == 0 and second.from_cache
    assert second.drawn == [(False, first.drawn[0][1])]  # the same rows, not connected yet


@pytest.mark.both_backends
def test_a_key_over_ssh_starts_from_the_cache(desk: Desk, make_key: Callable[..., Path]) -> None:
    """`ssh-session` hands the TUI the key: the cache finds its user by the key id."""
    key = add_key(desk, "bob@acme.test", make_key())
    first = desk.start("--no-worker", cx=Cx(None, ssh_key_id=key))
    assert first.code == 0 and not first.from_cache
    assert desk.cached(("ssh_key", str(key))).exists()
    second = desk.start("--no-worker", cx=Cx(None, ssh_key_id=key))
    assert second.code == 0 and second.from_cache
    assert second.drawn == [(False, first.drawn[0][1])]
    found = quick_start.read(desk.cache / "tui-helpdesk", str(desk.db.url),
                             ("ssh_key", str(key)), page_size=PAGE)  # fmt: skip
    assert found is not None and found.actor == actor(desk.db, "bob@acme.test")


def test_as_by_someone_else_is_refused_as_before_with_no_cached_rows(desk: Desk) -> None:
    """The owner's cache for ada is there; another account's --as ada gets the owner refusal
    (exit 6), as from every command, and no row."""
    assert desk.start("--as", "ada@acme.test", "--no-worker").code == 0
    assert desk.cached(("email", "ada@acme.test")).exists()
    refused = desk.start("--as", "ada@acme.test", "--no-worker", cx=Cx(None, uid=NOBODY))
    assert refused.code == 6 and not refused.from_cache and refused.drawn == []
    assert refused.stderr == refusal(desk, "--as", "ada@acme.test", cx=Cx(None, uid=NOBODY))
    assert "--as is honoured only for the owner" in refused.stderr


@pytest.mark.parametrize("change", ["key removed", "user deactivated"])
def test_a_removed_key_or_an_inactive_user_gets_no_cached_rows(
    desk: Desk, make_key: Callable[..., Path], change: str
) -> None:
    """The key's cache was written; then the key goes, or its user is deactivated: the next
    start draws nothing from the cache and ends with the message `ssh-session` gives."""
    key = add_key(desk, "bob@acme.test", make_key())
    assert desk.start("--no-worker", cx=Cx(None, ssh_key_id=key)).code == 0
    assert desk.cached(("ssh_key", str(key))).exists()
    with desk.db.write() as session:
        if change == "key removed":
            ssh_keys.remove(session, actor(desk.db, "ada@acme.test"), "bob@acme.test", key)
        else:
            session.query(User).filter_by(email="bob@acme.test").update({"active": False})
    assert quick_start.read(desk.cache / "tui-helpdesk", str(desk.db.url),
                            ("ssh_key", str(key)), page_size=PAGE) is None  # fmt: skip
    refused = desk.start("--no-worker", cx=Cx(None, ssh_key_id=key))
    assert refused.code == 6 and not refused.from_cache and refused.drawn == []
    assert refused.stderr == refusal(desk, cx=Cx(None, ssh_key_id=key))
    said = "is not registered" if change == "key removed" else "user bob@acme.test is inactive"
    assert said in refused.stderr


def test_over_ssh_the_cache_finds_the_key_and_never_an_as() -> None:
    assert run._who(Cx(None, ssh_key_id=7), "ada@acme.test") is None
    assert run._who(Cx(None, ssh_key_id=7), None) == ("ssh_key", "7")


def test_the_cli_looks_up_by_the_os_login_without_as(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity, "os_login", lambda uid=None: "ada")
    assert run._who(Cx(None, uid=1000), None) == ("os_user", "ada")
    monkeypatch.setattr(identity, "os_login", lambda uid=None: None)
    assert run._who(Cx(None, uid=1000), None) is None


def probe(desk: Desk, args: list[str], *, terminal: bool) -> dict[str, Any]:
    """`tui-helpdesk ARGS` in a process of its own (tui_start_probe.py), on a pseudo-terminal
    when `terminal` (ssh-session wants one)."""
    report = desk.cache.parent / "report.json"
    env = {k: v for k, v in os.environ.items() if k not in SSH_VARIABLES}
    env |= {"TUI_HELPDESK_CLI_SERVER": "off", "XDG_CACHE_HOME": str(desk.cache)}
    leader, follower = pty.openpty() if terminal else (None, None)
    try:
        done = subprocess.run(
            [sys.executable, str(PROBE), str(report), str(desk.cache), *args],
            stdin=follower, stdout=follower if terminal else subprocess.PIPE,
            stderr=subprocess.PIPE, env=env, timeout=120, text=True,
        )  # fmt: skip
    finally:
        for fd in (leader, follower):
            if fd is not None:
                os.close(fd)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(report.read_text()))


@pytest.mark.parametrize("path", ["--as", "ssh-session"])
def test_every_start_draws_its_rows_before_sqlalchemy_is_imported(
    desk: Desk, make_key: Callable[..., Path], path: str
) -> None:
    """Whole processes, as a start is. The first, with no cache yet: a process forked before
    Textual is imported writes it (tui/start_ahead.py), and the rows are drawn from it with
    SQLAlchemy not imported by the start; that cache is the one a normal start writes. The
    next start draws from it the same way."""
    config = ["--config", str(desk.config)]
    if path == "--as":
        args = [*config, "--as", "bob@acme.test", "--no-worker"]
        who, normal = ("email", "bob@acme.test"), (["--as", "bob@acme.test", "--no-worker"], None)
    else:
        key = add_key(desk, "bob@acme.test", make_key())
        args = [*config, "ssh-session", "--key-id", str(key)]
        who, normal = ("ssh_key", str(key)), (["--no-worker"], Cx(None, ssh_key_id=key))
    first = probe(desk, args, terminal=path == "ssh-session")
    assert not first["sqlalchemy_before_the_cli"]
    assert first["first_rows"]["from_cache"] is True, first
    assert first["first_rows"]["sqlalchemy"] is False, first
    ahead = start_cache.load(desk.cached(who))
    desk.cached(who).unlink()
    assert not desk.start(*normal[0], cx=normal[1]).from_cache  # writes it the normal way
    assert start_cache.load(desk.cached(who)) == ahead
    second = probe(desk, args, terminal=path == "ssh-session")
    assert second["first_rows"]["from_cache"] is True, second
    assert second["first_rows"]["sqlalchemy"] is False, second
