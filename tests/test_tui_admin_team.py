"""The Team screen and the F3 availability key driven with keys (Pilot), the user services it
added (users.set_role / set_os_user), and snapshots at 120×36 and 80×24."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_tui_admin_queues import (
    SIZES,
    _ada,
    build,
    cell_text,
    choose,
    fill,
    form_error,
    seed,
    static_text,
    table_keys,
    wait_for,
)
from textual.widgets import DataTable

from tui_helpdesk.config import Settings, load_settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.errors import Conflict, Invalid, PermissionDenied
from tui_helpdesk.services import audit, ssh_keys, users
from tui_helpdesk.tui.app import HelpdeskApp
from tui_helpdesk.tui.modals.admin_dialogs import ConfirmModal
from tui_helpdesk.tui.screens.admin.menu import AdminMenuScreen
from tui_helpdesk.tui.screens.admin.team import TeamScreen


@pytest.fixture
def local_db(sqlite_template: Path, tmp_path: Path) -> Iterator[Database]:
    """SQLite only for the flows that add nothing backend-specific (see the queues tests)."""
    path = tmp_path / "local.sqlite3"
    shutil.copyfile(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()


@pytest.fixture
def local(local_db: Database) -> Settings:
    settings = load_settings(environ={"TUI_HELPDESK_DATABASE_URL": local_db.url})
    seed(local_db, settings)
    return settings


@pytest.fixture
def acme(db: Database, settings: Settings) -> Settings:
    seed(db, settings)
    return settings


def team_loaded(app: HelpdeskApp) -> bool:
    return isinstance(app.screen, TeamScreen) and app.screen.view is not None


async def open_team(pilot, app: HelpdeskApp) -> TeamScreen:  # type: ignore[no-untyped-def]
    await pilot.press("f2")
    await wait_for(pilot, lambda: isinstance(app.screen, AdminMenuScreen) and bool(
        app.screen.shown))  # fmt: skip
    menu = app.screen
    assert isinstance(menu, AdminMenuScreen)
    await pilot.press(*["down"] * menu.shown.index("team"), "enter")
    await wait_for(pilot, lambda: team_loaded(app))
    screen = app.screen
    assert isinstance(screen, TeamScreen)
    return screen


async def select_user(pilot, app: HelpdeskApp, email: str) -> None:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: email in table_keys(app, "team-users"))
    table = app.screen.query_one("#team-users", DataTable)
    table.move_cursor(row=table_keys(app, "team-users").index(email))


def message(app: HelpdeskApp) -> str:
    return static_text(app, "#team-message")


def availability_of(db: Database, email: str) -> str:
    with db.read() as session:
        return users.get(session, _ada(session), email).availability


async def test_availability_key_from_any_screen(local: Settings, local_db: Database) -> None:
    """F3 on the inbox, then on the Team screen: available → away → offline, said in a
    notification, shown in the team list."""
    app = build(local, "bob@acme.test")
    async with app.run_test(size=SIZES["wide"]) as pilot:
        await wait_for(pilot, lambda: app.screen.id == "inbox")
        await pilot.press("f3")
        await wait_for(pilot, lambda: availability_of(local_db, "bob@acme.test") == "away")
        await wait_for(pilot, lambda: any("You are now away" in str(n.message)
                                          for n in app._notifications))  # fmt: skip
        screen = await open_team(pilot, app)
        assert cell_text(app, "team-users", "bob@acme.test", 4) == "away"
        await pilot.press("f3")
        await wait_for(pilot, lambda: availability_of(local_db, "bob@acme.test") == "offline")
        await wait_for(pilot, lambda: cell_text(app, "team-users", "bob@acme.test", 4)
                       == "offline")  # fmt: skip
        assert screen.view is not None


async def test_admin_manages_the_team(acme: Settings, db: Database, make_key) -> None:  # type: ignore[no-untyped-def]
    """A user added; cy's availability chosen, cy made admin, given an OS login and an SSH
    key, the key removed, cy deactivated after a yes; all audited."""
    public_key = Path(make_key("ed25519")).read_text().strip()
    app = build(acme)
    async with app.run_test(size=SIZES["wide"]) as pilot:
        await open_team(pilot, app)
        await pilot.press("n")
        await fill(pilot, app, email="eve@acme.test", name="Eve New", role="agent",
                   os_user="eve")  # fmt: skip
        await wait_for(pilot, lambda: "User added" in message(app))
        await wait_for(pilot, lambda: "eve@acme.test" in table_keys(app, "team-users"))
        await select_user(pilot, app, "cy@acme.test")
        await wait_for(pilot, lambda: "cy@acme.test" in static_text(app, "#keys-title"))
        await pilot.press("v")
        await choose(pilot, app, "away")
        await wait_for(pilot, lambda: cell_text(app, "team-users", "cy@acme.test", 4) == "away")
        await pilot.press("p")
        await wait_for(pilot, lambda: cell_text(app, "team-users", "cy@acme.test", 2) == "admin")
        await pilot.press("l")
        await fill(pilot, app, os_user="cy")
        await wait_for(pilot, lambda: cell_text(app, "team-users", "cy@acme.test", 5) == "cy")
        await pilot.press("k")
        await fill(pilot, app, key=public_key)
        await wait_for(pilot, lambda: len(table_keys(app, "team-keys")) == 1)
        key_id = table_keys(app, "team-keys")[0]
        await pilot.press("K")
        await choose(pilot, app, key_id)
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: table_keys(app, "team-keys") == [])
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: cell_text(app, "team-users", "cy@acme.test", 3) == "no")
    with db.read() as session:
        cy = users.get(session, _ada(session), "cy@acme.test")
        actions = {e.action for e in audit.list_entries(session, _ada(session), limit=50)}
    assert (cy.role, cy.os_user, cy.availability, cy.active) == ("admin", "cy", "away", False)
    assert {"user.create", "user.availability", "user.role", "user.os_user", "user.key_add",
            "user.key_remove", "user.deactivate"} <= actions  # fmt: skip


async def test_team_refusals(local: Settings, local_db: Database) -> None:
    """The services' messages: ada cannot demote herself, a taken OS login is refused beside
    the field, an agent may not change someone else's availability."""
    app = build(local)
    async with app.run_test(size=SIZES["wide"]) as pilot:
        await open_team(pilot, app)
        await select_user(pilot, app, "ada@acme.test")
        await wait_for(pilot, lambda: "ada@acme.test" in static_text(app, "#keys-title"))
        await pilot.press("p")
        await wait_for(pilot, lambda: "you cannot demote yourself" in message(app))
        await pilot.press("n")
        await fill(pilot, app, email="not-an-email", name="X")
        await wait_for(pilot, lambda: form_error(app, "email") != "")
        await pilot.press("escape")
        await select_user(pilot, app, "bob@acme.test")
        await wait_for(pilot, lambda: "bob@acme.test" in static_text(app, "#keys-title"))
        await pilot.press("l")
        await fill(pilot, app, os_user="bad login!")
        await wait_for(pilot, lambda: "not a valid OS login" in form_error(app, "os_user"))
    app = build(local, "bob@acme.test")
    async with app.run_test(size=SIZES["wide"]) as pilot:
        await open_team(pilot, app)
        await select_user(pilot, app, "cy@acme.test")
        await wait_for(pilot, lambda: "only an admin may" in static_text(app, "#keys-title"))
        await pilot.press("v")
        await choose(pilot, app, "offline")
        await wait_for(pilot, lambda: "only an admin may do this" in message(app))
    assert availability_of(local_db, "cy@acme.test") == "available"
    with local_db.read() as session:
        assert users.get(session, _ada(session), "ada@acme.test").role == "admin"


def test_set_role_and_os_user(db: Database, settings: Settings) -> None:
    seed(db, settings)
    with db.write() as session:
        ada = _ada(session)
        assert users.set_role(session, ada, "bob@acme.test", "admin").role == "admin"
        with pytest.raises(Conflict, match="demote yourself"):
            users.set_role(session, ada, "ada@acme.test", "agent")
        with pytest.raises(Invalid):
            users.set_role(session, ada, "bob@acme.test", "owner")
        assert users.set_os_user(session, ada, "cy@acme.test", "cy").os_user == "cy"
        with pytest.raises(Conflict, match="already mapped"):
            users.set_os_user(session, ada, "dee@acme.test", "cy")
        assert users.set_os_user(session, ada, "cy@acme.test", "cy").os_user == "cy"  # no-op
        assert users.set_os_user(session, ada, "cy@acme.test", "").os_user is None
        dee = users.resolve_actor(session, email="dee@acme.test", os_user=None)
        with pytest.raises(PermissionDenied):
            users.set_role(session, dee, "dee@acme.test", "admin")
        with pytest.raises(PermissionDenied):
            users.set_os_user(session, dee, "dee@acme.test", "dee")
        actions = [e.action for e in audit.list_entries(session, ada, limit=3)]
    assert actions == ["user.os_user", "user.os_user", "user.role"]


# --- snapshots -------------------------------------------------------------------------------

# A fixed key, so the fingerprint in the picture never changes.
ADA_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOAJltoVfuv1PmPMCiTq5YTl+xnFE/w9M+BBIQJdjzOk ada@laptop"
)


@pytest.fixture
def team_settings(sqlite_template: Path, tmp_path: Path) -> Settings:
    path = tmp_path / "snapshot.sqlite3"
    shutil.copyfile(sqlite_template, path)
    settings = load_settings(environ={"TUI_HELPDESK_DATABASE_URL": f"sqlite:///{path}"})
    db = Database(settings.database.url)
    seed(db, settings)
    with db.write() as session:
        ada = _ada(session)
        ssh_keys.add(session, ada, "ada@acme.test", ADA_KEY)
        users.set_availability(session, ada, "dee@acme.test", "away")
        users.set_os_user(session, ada, "ada@acme.test", "ada")
    db.dispose()
    return settings


@pytest.mark.parametrize("size", ["wide", "narrow"])
def test_team_snapshot(snap_compare, team_settings: Settings, size: str) -> None:  # type: ignore[no-untyped-def]
    """The team as ada sees it: roles, availability, OS logins, and her SSH key below."""
    app = build(team_settings)

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await open_team(pilot, app)
        await wait_for(pilot, lambda: table_keys(app, "team-keys") != [])
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)
