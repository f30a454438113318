"""The organisation screen driven with keys on both backends, and its snapshots: settings with
live checks, the autoresponder switch, domains added, checked and removed, refusals shown."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest
from factories import add_mailbox, add_user, make_org
from sqlalchemy import update
from test_tui import shown as drawn
from test_tui import wait_for
from test_tui_admin_mailboxes import field_error, fill, open_form, save_and_close, shown
from test_tui_data import NOW
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static, Switch, TextArea

from tui_helpdesk.config import Settings, load_settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import EmailDomain
from tui_helpdesk.services import organisations
from tui_helpdesk.tui.app import HelpdeskApp, make_app
from tui_helpdesk.tui.modals.confirm import ConfirmScreen
from tui_helpdesk.tui.modals.dns_check import DnsCheckScreen
from tui_helpdesk.tui.modals.field_form import FieldForm
from tui_helpdesk.tui.screens.admin import organisation as screen_module
from tui_helpdesk.tui.screens.admin.organisation import OrganisationScreen

SIZE = (120, 36)
SMALL = (80, 24)


@pytest.fixture
def tui_settings(settings: Settings) -> Settings:
    return settings.replace(tui={"refresh_interval_seconds": 0.05})


async def open_organisation(
    app: HelpdeskApp, pilot: Pilot[object], start: str | None = None
) -> OrganisationScreen:
    await pilot.pause()
    screen = OrganisationScreen(start=start)
    await app.push_screen(screen)
    await wait_for(pilot, lambda: screen.org is not None)
    return screen


def domains_shown(screen: OrganisationScreen) -> list[str]:
    table = screen.query_one(DataTable)
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


async def until_status(pilot: Pilot[object], app: HelpdeskApp, text: str) -> str:
    await wait_for(pilot, lambda: text in shown(app, "#admin-status"))
    return shown(app, "#admin-status")


async def test_settings_are_checked_as_typed_and_saved(db: Database, tui_settings) -> None:  # type: ignore[no-untyped-def]
    org = make_org(db)
    app = make_app(tui_settings, "ada@acme.test", now=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await open_organisation(app, pilot)
        await open_form(pilot, app, "e")
        await fill(pilot, app, timezone="Mars/Base", language="Spanish")
        assert "unknown timezone" in field_error(app, "timezone")
        assert "language tag" in field_error(app, "language")
        await fill(pilot, app, name="Acme Ltd", timezone="Europe/Madrid", language="es")
        assert field_error(app, "timezone") == field_error(app, "language") == ""
        await save_and_close(pilot, app)
        await until_status(pilot, app, "saved the settings of Acme Ltd")
        await wait_for(pilot, lambda: "Europe/Madrid" in shown(app, "#organisation-detail"))
        await pilot.press("u")
        await until_status(pilot, app, "every autoresponder is off")
        await wait_for(pilot, lambda: "all off" in shown(app, "#organisation-detail"))
    with db.read() as session:
        done = organisations.get(session, org.admin)
    assert (done.name, done.timezone, done.language) == ("Acme Ltd", "Europe/Madrid", "es")
    assert not done.autoresponders_enabled


async def test_add_check_and_remove_domains(db: Database, tui_settings, dns_server) -> None:  # type: ignore[no-untyped-def]
    org = make_org(db)
    add_mailbox(db, tui_settings, org.admin, "support")
    dns_server.load("acme.org", "@ MX 10 mx.acme.org.\nmx A 192.0.2.10\n")
    settings = dataclasses.replace(tui_settings, dns=dns_server.dns_settings(timeout_seconds=2))
    app = make_app(settings, "ada@acme.test", now=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_organisation(app, pilot, start="add_domain")
        await wait_for(pilot, lambda: isinstance(app.screen, FieldForm))
        await fill(pilot, app, domain="not a domain")
        assert "not a valid domain name" in field_error(app, "domain")
        await fill(pilot, app, domain="acme.test")
        await pilot.press("ctrl+s")  # the service refuses a domain added twice
        await wait_for(pilot, lambda: "already added" in field_error(app, "domain"))
        await fill(pilot, app, domain="Acme.org")
        await save_and_close(pilot, app)
        await until_status(pilot, app, "added acme.org")
        await wait_for(pilot, lambda: domains_shown(screen) == ["acme.org", "acme.test"])
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, DnsCheckScreen))
        results = app.screen.query_one("#dns-results", Static)
        await wait_for(pilot, lambda: "DMARC" in drawn(results), seconds=10)
        assert "pass" in drawn(results) and "_dmarc.acme.org" in drawn(results)
        await pilot.press("escape")
        await pilot.press("down", "delete")  # acme.test: its mailbox refuses
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        assert "used by 1 mailbox" in await until_status(pilot, app, "used by")
        await pilot.press("up", "delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until_status(pilot, app, "removed acme.org")
        await wait_for(pilot, lambda: domains_shown(screen) == ["acme.test"])


async def test_an_agent_is_refused(db: Database, tui_settings) -> None:  # type: ignore[no-untyped-def]
    org = make_org(db)
    add_user(db, org.admin, "bob@acme.test")
    app = make_app(tui_settings, "bob@acme.test", now=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await open_organisation(app, pilot)
        await pilot.press("u")
        assert "admin" in await until_status(pilot, app, "admin")


def test_palette_commands_open_the_screen() -> None:
    names = [command.name for command in screen_module.palette_commands(None)]  # type: ignore[arg-type]
    assert names == ["domain: add", "organisation: settings"]


@pytest.fixture(autouse=True)
def frozen_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Input, "cursor_blink", False)
    monkeypatch.setattr(TextArea, "cursor_blink", False)


@pytest.fixture
def snapshot_app(sqlite_template: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "snapshot.sqlite3"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    db = Database(url)
    org = make_org(db)
    with db.write() as session:
        from tui_helpdesk.services import domains

        domains.add(session, org.admin, "acme-mail.test")
        session.flush()
        fixed = NOW.replace(day=1)
        session.execute(update(EmailDomain).values(created_at=fixed))
    db.dispose()
    settings = load_settings(environ={"TUI_HELPDESK_DATABASE_URL": url})
    return make_app(settings, "ada@acme.test", now=lambda: NOW)


def _on_organisation(then: Any = None):  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[object]) -> None:
        app = pilot.app
        assert isinstance(app, HelpdeskApp)
        await open_organisation(app, pilot)
        if then is not None:
            await then(pilot, app)
        await pilot.pause()

    return run_before


async def _settings_with_error(pilot: Pilot[object], app: HelpdeskApp) -> None:
    await open_form(pilot, app, "e")
    app.screen.query_one("#field-autoresponders_enabled", Switch).value = False
    await fill(pilot, app, timezone="Europe/Nowhere")
    await wait_for(pilot, lambda: "unknown timezone" in field_error(app, "timezone"))


STATES = {"domains": None, "settings": _settings_with_error}


@pytest.mark.parametrize("size", [SIZE, SMALL], ids=["120x36", "80x24"])
@pytest.mark.parametrize("state", list(STATES))
def test_organisation_snapshot(snap_compare, snapshot_app, state: str, size: Any) -> None:  # type: ignore[no-untyped-def]
    """Two domains under the settings line; the settings form with a live error."""
    run_before = _on_organisation(STATES[state])
    assert snap_compare(snapshot_app, terminal_size=size, run_before=run_before)
