"""The mailboxes screen driven with keys (Pilot) on both backends, and its snapshots.

From an empty organisation to a mailbox created, its alias copied and verified; every refusal
(live field checks, wrong code, queue default, still linked, limit, not an admin) shown with
the service's message; the settings dialogs; snapshots at 120x36 and 80x24 (SQLite only).
"""

from __future__ import annotations

import dataclasses
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from factories import add_mailbox, add_queue, add_user, make_org
from sqlalchemy import select, update
from test_mailbox_verification import code_in, jobs
from test_tui import shown as drawn
from test_tui import wait_for
from test_tui_data import NOW
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static, Switch, TextArea

from tui_helpdesk.config import Settings, load_settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Mailbox
from tui_helpdesk.records import MailboxRecord
from tui_helpdesk.services import autoresponder, mailboxes, transports, webhooks
from tui_helpdesk.tui.app import HelpdeskApp, make_app
from tui_helpdesk.tui.modals.confirm import ConfirmScreen
from tui_helpdesk.tui.modals.dns_check import DnsCheckScreen
from tui_helpdesk.tui.modals.field_form import FieldForm
from tui_helpdesk.tui.screens.admin import forwarding
from tui_helpdesk.tui.screens.admin import mailboxes as screen_module
from tui_helpdesk.tui.screens.admin.mailbox_alias import MailboxAliasScreen
from tui_helpdesk.tui.screens.admin.mailboxes import MailboxesScreen
from tui_helpdesk.tui.screens.admin.menu import AdminMenuScreen

SIZE = (120, 36)
SMALL = (80, 24)
ALIAS = "k3x9q2abcd@in.helpdesk.localhost"


@pytest.fixture
def tui_settings(settings: Settings) -> Settings:
    return settings.replace(tui={"refresh_interval_seconds": 0.05})


def build(settings: Settings, email: str = "ada@acme.test") -> HelpdeskApp:
    return make_app(settings, email, now=lambda: NOW)


def shown(app: HelpdeskApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def open_mailboxes(app: HelpdeskApp, pilot: Pilot[object]) -> MailboxesScreen:
    await pilot.pause()
    screen = MailboxesScreen()
    await app.push_screen(screen)
    await wait_for(pilot, lambda: screen.loaded)
    return screen


def table_rows(screen: MailboxesScreen) -> list[list[str]]:
    table = screen.query_one(DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def until_status(pilot: Pilot[object], app: HelpdeskApp, text: str) -> str:
    await wait_for(pilot, lambda: text in shown(app, "#admin-status"))
    return shown(app, "#admin-status")


def form(app: HelpdeskApp) -> FieldForm:
    assert isinstance(app.screen, FieldForm), app.screen
    return app.screen


def field_error(app: HelpdeskApp, name: str) -> str:
    error = app.screen.query_one(f"#error-{name}", Static)
    return str(error.render()) if error.display else ""


async def fill(pilot: Pilot[object], app: HelpdeskApp, **values: str) -> None:
    for name, value in values.items():
        # a form screen is on the stack before its fields are mounted: wait for the field
        await wait_for(pilot, lambda name=name: bool(app.screen.query(f"#field-{name}")))
        app.screen.query_one(f"#field-{name}", Input).value = value
    await pilot.pause()


async def open_form(pilot: Pilot[object], app: HelpdeskApp, key: str) -> FieldForm:
    await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(app.screen, FieldForm))
    return form(app)


async def save_and_close(pilot: Pilot[object], app: HelpdeskApp) -> None:
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: not isinstance(app.screen, FieldForm))


async def test_from_an_empty_organisation_to_a_verified_mailbox(db: Database, tui_settings) -> None:  # type: ignore[no-untyped-def]
    make_org(db)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_mailboxes(app, pilot)
        assert table_rows(screen) == [] and "0 mailboxes" in shown(app, "#admin-status")
        assert "n creates one" in shown(app, "#mailbox-detail")
        await open_form(pilot, app, "n")
        await pilot.press(*"Support", "tab", *"Sales")
        await wait_for(pilot, lambda: "must be lowercase" in field_error(app, "local_part"))
        await pilot.press("backspace", "backspace", "backspace", "backspace", "backspace")
        await pilot.press(*"support")
        await wait_for(pilot, lambda: field_error(app, "local_part") == "")
        await fill(pilot, app, timezone="Mars/Base")
        assert "unknown timezone" in field_error(app, "timezone")
        await pilot.press("ctrl+s")  # refused by the service: nothing is created
        await wait_for(pilot, lambda: "unknown timezone" in field_error(app, "timezone"))
        with db.read() as session:
            assert session.scalar(select(Mailbox.id)) is None
        await fill(pilot, app, timezone="Europe/Madrid", department="Sales")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, MailboxAliasScreen))
        with db.read() as session:
            box = session.scalars(select(Mailbox)).one()
            alias, address = box.alias, box.email_address
        assert address == "support@acme.test" and alias in shown(app, "#alias-big")
        assert "Mailbox created" in shown(app, ".admin-title")
        steps = "\n".join(str(s.render()) for s in app.screen.query(".steps"))
        assert alias in steps and "admin.google.com" in steps
        await pilot.press("c")
        assert app.clipboard == alias
        assert "copied" in await until_status(pilot, app, "OSC 52")
        assert "select the alias above with the mouse" in shown(app, "#alias-fallback")
        await pilot.press("3")
        assert app.screen.query_one("TabbedContent").active == "steps-mta"  # type: ignore[attr-defined]

        code = code_in(jobs(db, "verification")[0])
        await open_form(pilot, app, "v")
        wrong = "000000" if code != "000000" else "111111"
        await fill(pilot, app, code=wrong)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "wrong code" in field_error(app, "code"))
        assert "tries left" in field_error(app, "code")
        await fill(pilot, app, code=code)
        await save_and_close(pilot, app)
        assert "is verified" in await until_status(pilot, app, "verified")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        await wait_for(pilot, lambda: table_rows(screen)[0][2] == "active")
        assert table_rows(screen)[0][:4] == ["support@acme.test", "Support", "active", "-"]


async def test_reached_from_the_inbox_by_the_admin_menu_and_the_palette(
    db: Database, tui_settings
) -> None:  # type: ignore[no-untyped-def]
    make_org(db)
    app = build(tui_settings)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        names = {c.name for c in app.commands()}
        assert {"mailbox: create", "mailbox: list", "domain: add",
                "organisation: settings"} <= names  # fmt: skip
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, AdminMenuScreen) and bool(
            app.screen.shown))  # fmt: skip
        menu = app.screen
        assert isinstance(menu, AdminMenuScreen)
        await pilot.press(*["down"] * menu.shown.index("mailboxes"), "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MailboxesScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, MailboxesScreen))
        next(c for c in app.commands() if c.name == "mailbox: create").run()
        await wait_for(pilot, lambda: isinstance(app.screen, FieldForm))
        assert app.screen.id == "mailbox-form"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MailboxesScreen))


async def test_live_checks_give_the_services_messages(db: Database, tui_settings) -> None:  # type: ignore[no-untyped-def]
    make_org(db)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_mailboxes(app, pilot)
        await open_form(pilot, app, "n")
        cases = {"display_name": ("{{nick}}", "unknown placeholder"),
                 "local_part": ("a..b", "not a valid dot-atom"),
                 "language": ("Spanish", "language tag")}  # fmt: skip
        for name, (value, message) in cases.items():
            await fill(pilot, app, **{name: value})
            assert message in field_error(app, name)
            with pytest.raises(Exception) as expected:
                mailboxes.check_field(name, value)
            assert field_error(app, name) == str(expected.value)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MailboxesScreen))


async def test_refusals_are_shown_with_the_services_message(db: Database, tui_settings) -> None:  # type: ignore[no-untyped-def]
    org = make_org(db)
    add_mailbox(db, tui_settings, org.admin, "support")
    add_queue(db, tui_settings, org.admin, "Helpdesk", mailboxes=["support@acme.test"])
    limited = tui_settings.replace(limits={"mailboxes_per_organisation": 1})
    app = build(limited)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_mailboxes(app, pilot)
        await pilot.press("d")
        assert "default mailbox of queue 'Helpdesk'" in await until_status(pilot, app, "default")
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        assert "is linked to queue 'Helpdesk'" in await until_status(pilot, app, "linked")
        await open_form(pilot, app, "n")
        await fill(pilot, app, display_name="Sales", local_part="sales")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "limit 1" in shown(app, "#form-error"))
        assert "delete one before creating another" in shown(app, "#form-error")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        assert [row[0] for row in table_rows(screen)] == ["support@acme.test"]


async def test_an_agent_is_refused_by_the_service(db: Database, tui_settings) -> None:  # type: ignore[no-untyped-def]
    org = make_org(db)
    add_user(db, org.admin, "bob@acme.test")
    add_mailbox(db, tui_settings, org.admin, "support")
    app = build(tui_settings, "bob@acme.test")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_mailboxes(app, pilot)
        assert [row[0] for row in table_rows(screen)] == ["support@acme.test"]  # may look
        await pilot.press("d")
        assert "admin" in await until_status(pilot, app, "admin")
        await open_form(pilot, app, "n")
        await fill(pilot, app, display_name="Sales", local_part="sales")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "admin" in shown(app, "#form-error"))


async def test_deactivate_activate_and_delete_after_confirmation(
    db: Database, tui_settings
) -> None:  # type: ignore[no-untyped-def]
    org = make_org(db)
    add_mailbox(db, tui_settings, org.admin, "support")
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_mailboxes(app, pilot)
        await pilot.press("d")
        await until_status(pilot, app, "is inactive")
        await wait_for(pilot, lambda: table_rows(screen)[0][2] == "inactive")
        await pilot.press("a")
        await until_status(pilot, app, "is active")
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")  # changes nothing
        await wait_for(pilot, lambda: app.screen is screen)
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until_status(pilot, app, "deleted support@acme.test")
        await wait_for(pilot, lambda: table_rows(screen) == [])


async def test_resend_code_too_soon_is_refused(db: Database, tui_settings) -> None:  # type: ignore[no-untyped-def]
    org = make_org(db)
    add_mailbox(db, tui_settings, org.admin, "support", verified=False)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_mailboxes(app, pilot)
        assert table_rows(screen)[0][2] == "pending"
        assert "v enters the code" in shown(app, "#mailbox-detail")
        await pilot.press("V")
        assert "wait" in await until_status(pilot, app, "a code was sent just now")


async def test_edit_and_send_a_test_mail(db: Database, tui_settings) -> None:  # type: ignore[no-untyped-def]
    org = make_org(db)
    add_mailbox(db, tui_settings, org.admin, "support")
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_mailboxes(app, pilot)
        await open_form(pilot, app, "e")
        assert app.screen.query_one("#field-local_part", Input).value == "support"
        await fill(pilot, app, display_name="{{first_name}} at Acme", responsible="ada@acme.test")
        await save_and_close(pilot, app)
        await until_status(pilot, app, "saved support@acme.test")
        await wait_for(pilot, lambda: table_rows(screen)[0][1] == "{{first_name}} at Acme")
        await pilot.press("t")
        await until_status(pilot, app, "test mail queued to support@acme.test")
    [job] = jobs(db, "test")
    assert job.rcpt_to == ["support@acme.test"]


async def test_settings_dialogs_save_through_the_services(db: Database, tui_settings) -> None:  # type: ignore[no-untyped-def]
    org = make_org(db)
    add_mailbox(db, tui_settings, org.admin, "support")
    add_user(db, org.admin, "bob@acme.test")
    app = build(tui_settings)
    address = "support@acme.test"
    async with app.run_test(size=SIZE) as pilot:
        await open_mailboxes(app, pilot)
        await open_form(pilot, app, "o")  # outgoing transport
        app.screen.query_one("#field-platform", Switch).value = False
        await fill(pilot, app, host="bad host!", port="587")
        assert "host must be" in field_error(app, "host")
        await fill(pilot, app, host="smtp.acme.test", username="ada", password="supersecret99")
        await save_and_close(pilot, app)
        await open_form(pilot, app, "o")  # the password is never shown back
        password = app.screen.query_one("#field-password", Input)
        assert password.value == "" and "****99" in str(password.placeholder)
        await pilot.press("escape")

        await open_form(pilot, app, "w")
        await fill(pilot, app, url="http://hooks.acme.test/x")
        assert "must start with https://" in field_error(app, "url")
        await fill(pilot, app, url="https://hooks.acme.test/x", secret="s" * 20)
        await save_and_close(pilot, app)

        await open_form(pilot, app, "u")  # autoresponder with a window
        app.screen.query_one("#field-enabled", Switch).value = True
        app.screen.query_one("#field-body", TextArea).text = "We are closed."
        app.screen.query_one("#field-windows", TextArea).text = "2026-12-24T00:00 tomorrow"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "must be a local date" in field_error(app, "windows"))
        app.screen.query_one("#field-windows", TextArea).text = "2026-12-24T00:00 2026-12-27T00:00"
        await save_and_close(pilot, app)

        await open_form(pilot, app, "g")
        app.screen.query_one("#field-text", TextArea).text = "-- \n{{agent_name}}, Acme"
        await save_and_close(pilot, app)

        await open_form(pilot, app, "p")
        app.screen.query_one("#field-private", Switch).value = True
        await fill(pilot, app, senders="ada@acme.test", granted="nobody@acme.test")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "nobody@acme.test" in shown(app, "#form-error"))
        await fill(pilot, app, granted="ada@acme.test, bob@acme.test")
        await save_and_close(pilot, app)
        await wait_for(pilot, lambda: "bob@acme.test" in shown(app, "#mailbox-detail"))
    with db.read() as session:
        admin = org.admin
        sent = transports.get_transport(session, admin, address)
        hook = webhooks.get_webhook(session, admin, address)
        reply = autoresponder.get(session, admin, address)
        box = mailboxes.get(session, admin, address)
        signature = mailboxes.get_signature(session, admin, address)
    assert (sent.platform, sent.host, sent.password) == (False, "smtp.acme.test", "****99")
    assert hook.url == "https://hooks.acme.test/x"
    assert reply.enabled and reply.windows == ({"start": "2026-12-24T00:00",
                                                 "end": "2026-12-27T00:00"},)  # fmt: skip
    assert box.private and box.granted == ("ada@acme.test", "bob@acme.test")
    assert box.senders == ("ada@acme.test",) and "{{agent_name}}" in signature.text


async def test_dns_check_shows_pass_and_fail_with_records_to_publish(
    db: Database, tui_settings, dns_server
) -> None:  # type: ignore[no-untyped-def]
    org = make_org(db)
    add_mailbox(db, tui_settings, org.admin, "support")
    dns_server.load("acme.test", "@ MX 10 mx.acme.test.\nmx A 192.0.2.10\n")
    settings = dataclasses.replace(tui_settings, dns=dns_server.dns_settings(timeout_seconds=2))
    app = build(settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_mailboxes(app, pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, DnsCheckScreen))
        results_widget = app.screen.query_one("#dns-results", Static)
        await wait_for(pilot, lambda: "DMARC" in drawn(results_widget), seconds=10)
        results = drawn(results_widget)
        assert "pass" in results and "missing" in results
        assert "publish:" in results and "_dmarc.acme.test" in results


def test_forwarding_instructions_name_the_address_and_alias() -> None:
    settings = load_settings(environ={})
    box = _record("support@acme.test", ALIAS)
    google = forwarding.instructions(box, settings, "google")
    microsoft = forwarding.instructions(box, settings, "microsoft")
    mta = forwarding.instructions(box, settings, "mta")
    assert "Single recipient: support@acme.test" in google and ALIAS in google
    assert "Bcc" in microsoft and "Automatic forwarding rules" in microsoft
    assert f"support@acme.test    {ALIAS}" in mta  # a Postfix virtual entry
    assert f"support: {ALIAS}" in mta and "newaliases" in mta  # an /etc/aliases line
    assert "smtp:[helpdesk.localhost]:2525" in mta  # a transport entry


def _record(address: str, alias: str) -> MailboxRecord:
    local, domain = address.split("@")
    when = datetime(2026, 11, 20, tzinfo=UTC)
    return MailboxRecord(
        id=1, organisation_id=1, email_address=address, alias=alias, display_name="Support",
        local_part=local, domain=domain, timezone="UTC", language="en", description="",
        department="", responsible_user=None, status="pending", queues=(), created_at=when,
        updated_at=when, last_inbound_at=None, verified_at=None, binding_checked_at=None,
        silent=False, private=False, granted=(), senders=(), signature=False, close_notice=True,
    )  # fmt: skip


# -- snapshots (SQLite: one baseline per state is enough) ---------------------------------


@pytest.fixture(autouse=True)
def frozen_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Input, "cursor_blink", False)
    monkeypatch.setattr(TextArea, "cursor_blink", False)


@pytest.fixture
def snapshot_app(sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Three mailboxes with fixed times and aliases: one silent, one pending, one linked."""
    path = tmp_path / "snapshot.sqlite3"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    settings = load_settings(environ={"TUI_HELPDESK_DATABASE_URL": url})
    db = Database(url)
    org = make_org(db)
    add_mailbox(db, settings, org.admin, "billing", display_name="Billing")
    add_mailbox(db, settings, org.admin, "support", display_name="Support team")
    add_mailbox(db, settings, org.admin, "sales", display_name="Sales", verified=False)
    add_queue(db, settings, org.admin, "Helpdesk", mailboxes=["support@acme.test"])
    times = {"billing": (datetime(2026, 11, 1, 8, 0, tzinfo=UTC), None),
             "support": (None, datetime(2026, 11, 20, 10, 0, tzinfo=UTC))}  # fmt: skip
    with db.write() as session:
        for n, local in enumerate(("billing", "sales", "support")):
            last, checked = times.get(local, (None, None))
            fixed = {"alias": f"{local[:4]}{n}x9q2ab@in.helpdesk.localhost",
                     "last_inbound_at": last, "binding_checked_at": checked}  # fmt: skip
            session.execute(update(Mailbox).where(Mailbox.local_part == local).values(**fixed))
    db.dispose()
    monkeypatch.setattr(
        "tui_helpdesk.services.mailboxes.lifecycle.new_alias", lambda session, settings: ALIAS
    )
    return make_app(settings, "ada@acme.test", now=lambda: NOW)


def _on_mailboxes(then: Any = None):  # type: ignore[no-untyped-def]
    async def run_before(pilot: Pilot[object]) -> None:
        app = pilot.app
        assert isinstance(app, HelpdeskApp)
        await open_mailboxes(app, pilot)
        if then is not None:
            await then(pilot, app)
        await pilot.pause()

    return run_before


async def _form_with_error(pilot: Pilot[object], app: HelpdeskApp) -> None:
    await open_form(pilot, app, "n")
    await pilot.press(*"Help desk", "tab", *"Help")
    await wait_for(pilot, lambda: "lowercase" in field_error(app, "local_part"))


async def _created(pilot: Pilot[object], app: HelpdeskApp) -> None:
    await open_form(pilot, app, "n")
    await fill(pilot, app, display_name="Help desk", local_part="help")
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: isinstance(app.screen, MailboxAliasScreen))


async def _refused(pilot: Pilot[object], app: HelpdeskApp) -> None:
    await pilot.press("down", "down")  # support@acme.test, the default of Helpdesk
    await pilot.press("d")
    await until_status(pilot, app, "default mailbox")


STATES = {"list": None, "form": _form_with_error, "created": _created, "refused": _refused}


@pytest.mark.parametrize("size", [SIZE, SMALL], ids=["120x36", "80x24"])
@pytest.mark.parametrize("state", list(STATES))
def test_mailboxes_snapshot(snap_compare, snapshot_app, state: str, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """The list (a silent, a pending and a linked mailbox), the form with a live error, the
    alias with forwarding steps after creation, and a refusal in the status line."""
    assert snap_compare(snapshot_app, terminal_size=size, run_before=_on_mailboxes(STATES[state]))


@pytest.mark.parametrize("size", [SIZE, SMALL], ids=["120x36", "80x24"])
def test_dns_check_snapshot(snap_compare, snapshot_app, dns_server, size) -> None:  # type: ignore[no-untyped-def]
    """The DNS check of acme.test: MX passes, the rest missing with the records to publish."""
    dns_server.load("acme.test", "@ MX 10 mx.acme.test.\nmx A 192.0.2.10\n")
    snapshot_app.data.settings = dataclasses.replace(
        snapshot_app.data.settings, dns=dns_server.dns_settings(timeout_seconds=2)
    )

    async def checked(pilot: Pilot[object], app: HelpdeskApp) -> None:
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, DnsCheckScreen))
        results = app.screen.query_one("#dns-results", Static)
        await wait_for(pilot, lambda: "DMARC" in drawn(results), seconds=10)

    assert snap_compare(snapshot_app, terminal_size=size, run_before=_on_mailboxes(checked))


def test_every_binding_has_an_id_a_description_and_a_palette_entry() -> None:
    screens = [MailboxesScreen, MailboxAliasScreen, FieldForm, ConfirmScreen, DnsCheckScreen]
    for screen in screens:
        for binding in screen.BINDINGS:
            assert binding.id and binding.description and binding.tooltip, binding  # type: ignore[union-attr]
    listed = {c.name for c in MailboxesScreen().commands()}
    wanted = {"mailbox: create", "mailbox: copy alias", "mailbox: verify", "mailbox: delete"}
    assert wanted <= listed


def test_palette_commands_open_the_screen() -> None:
    names = [command.name for command in screen_module.palette_commands(None)]  # type: ignore[arg-type]
    assert names == ["mailbox: create", "mailbox: list"]
