"""The Queues screen and the admin menu driven with keys (Pilot), the services they added
(queues.update / managed, routing.try_rule), and snapshots at 120×36 and 80×24.

Flows: F2 → menu → Queues; a mailbox linked, made default; a member added from the user picker;
assignment and hours saved; routing rules added, moved, toggled, tested (dry run), deleted;
each refusal shows the service's own message and changes nothing.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from factories import add_mailbox, add_queue, add_user, make_org
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList, Select, Static, TextArea

from tui_helpdesk.config import Settings, load_settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.errors import Conflict, Invalid, PermissionDenied
from tui_helpdesk.services import audit, queues, routing
from tui_helpdesk.tui.app import HelpdeskApp, make_app
from tui_helpdesk.tui.modals.admin_dialogs import ConfirmModal, FormModal, PickerModal
from tui_helpdesk.tui.screens.admin import menu as menu_module
from tui_helpdesk.tui.screens.admin.menu import AdminMenuScreen
from tui_helpdesk.tui.screens.admin.queues import (
    TABS,
    QueuesScreen,
    parse_conditions,
    parse_slots,
)

SIZES = {"wide": (120, 36), "narrow": (80, 24)}


# --- set-up ----------------------------------------------------------------------------------


def seed(db: Database, settings: Settings) -> None:
    """Acme: admin ada; bob (queue admin of Support), cy and dee (agents); mailboxes support
    (Support's default), help (unlinked) and old (inactive); one routing rule."""
    org = make_org(db)
    add_user(db, org.admin, "bob@acme.test", name="Bob Agent")
    add_user(db, org.admin, "cy@acme.test", name="Cy Agent")
    add_user(db, org.admin, "dee@acme.test", name="Dee Agent")
    add_mailbox(db, settings, org.admin, "support")
    add_mailbox(db, settings, org.admin, "help")
    add_queue(db, settings, org.admin, "Support", mailboxes=["support@acme.test"],
              members={"bob@acme.test": "admin"}, colour="teal",
              description="Customers' questions")  # fmt: skip
    add_queue(db, settings, org.admin, "Sales", members={"dee@acme.test": "agent"})
    with db.write() as session:
        routing.create_rule(
            session, org.admin, name="Invoices",
            conditions=[{"field": "subject", "op": "contains", "value": "invoice"}],
            queue="Sales", priority="high",
        )  # fmt: skip


@pytest.fixture
def acme(db: Database, settings: Settings) -> Settings:
    seed(db, settings)
    return settings


@pytest.fixture
def local_db(sqlite_template: Path, tmp_path: Path) -> Iterator[Database]:
    """A SQLite copy for the Pilot flows that add nothing backend-specific: the services they
    call are tested on both backends, and the first flows here run on both too."""
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


def build(settings: Settings, email: str = "ada@acme.test") -> HelpdeskApp:
    return make_app(settings, email)


async def wait_for(pilot: Pilot[object], condition: Callable[[], bool], seconds: float = 5.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the screen did not reach the expected state in time")
        await pilot.pause(0.02)


# These read the screen on top; while a dialog is still closing they answer "nothing yet",
# so a wait_for on them polls again instead of failing.


def table_keys(app: HelpdeskApp, table_id: str) -> list[str]:
    found = app.screen.query(f"#{table_id}")
    if not found or not isinstance(found.first(), DataTable):
        return []
    return [str(key.value) for key in found.first(DataTable).rows]


def cell_text(app: HelpdeskApp, table_id: str, key: str, column: int) -> str:
    if key not in table_keys(app, table_id):
        return ""
    value = app.screen.query_one(f"#{table_id}", DataTable).get_row(key)[column]
    return value.plain if isinstance(value, Text) else str(value)


def static_text(app: HelpdeskApp, selector: str) -> str:
    found = app.screen.query(selector)
    if not found or not isinstance(found.first(), Static):
        return ""
    content = found.first(Static).content
    return content.plain if isinstance(content, Text) else str(content)


def queues_screen(app: HelpdeskApp) -> QueuesScreen:
    screen = app.screen
    assert isinstance(screen, QueuesScreen)
    return screen


def loaded(app: HelpdeskApp) -> bool:
    return isinstance(app.screen, QueuesScreen) and app.screen.view is not None


async def open_queues(pilot: Pilot[object], app: HelpdeskApp) -> QueuesScreen:
    """F2 from the inbox, then Queues in the menu."""
    await pilot.press("f2")
    await wait_for(pilot, lambda: isinstance(app.screen, AdminMenuScreen) and bool(
        app.screen.shown))  # fmt: skip
    menu = app.screen
    assert isinstance(menu, AdminMenuScreen)
    await pilot.press(*["down"] * menu.shown.index("queues"), "enter")
    await wait_for(pilot, lambda: loaded(app))
    return queues_screen(app)


async def choose(pilot: Pilot[object], app: HelpdeskApp, value: str) -> None:
    """In a picker: highlight the option with that id and press enter."""

    def ids() -> list[str | None]:
        found = app.screen.query(OptionList) if isinstance(app.screen, PickerModal) else None
        if not found:
            return []
        options = found.first()
        return [options.get_option_at_index(i).id for i in range(options.option_count)]

    await wait_for(pilot, lambda: value in ids())
    app.screen.query_one(OptionList).highlighted = ids().index(value)
    await pilot.press("enter")


async def fill(pilot: Pilot[object], app: HelpdeskApp, **values: str) -> None:
    """In a form: set fields by name, then ctrl+s."""
    await wait_for(pilot, lambda: isinstance(app.screen, FormModal))
    form = app.screen
    for name, value in values.items():
        # the form is on the stack before its fields are mounted: wait for the field
        await wait_for(pilot, lambda name=name: bool(form.query(f"#field-{name}")))
        widget = form.query_one(f"#field-{name}")
        if isinstance(widget, Input):
            widget.value = value
        elif isinstance(widget, TextArea):
            widget.text = value
        elif isinstance(widget, Select):
            widget.value = value
    await pilot.pause()
    await pilot.press("ctrl+s")


async def until_message(pilot: Pilot[object], app: HelpdeskApp, text: str) -> None:
    await wait_for(pilot, lambda: text in static_text(app, "#queues-message"))


def form_error(app: HelpdeskApp, field: str) -> str:
    return static_text(app, f"#error-{field}")


# --- the flows -------------------------------------------------------------------------------


async def test_link_default_and_members(acme: Settings, db: Database) -> None:
    """A mailbox linked to a queue, made the default with d, a member added from the picker,
    their role switched with o; each change audited."""
    app = build(acme)
    async with app.run_test(size=SIZES["wide"]) as pilot:
        screen = await open_queues(pilot, app)
        assert [q.name for q in screen.view.queues] == ["Sales", "Support"]
        await pilot.press("down")  # Support
        await wait_for(pilot, lambda: screen.queue is not None and screen.queue.name == "Support")
        await wait_for(pilot, lambda: table_keys(app, "queue-mailboxes") == ["support@acme.test"])
        assert "★" in cell_text(app, "queue-mailboxes", "support@acme.test", 0)

        await pilot.press("l")
        await choose(pilot, app, "help@acme.test")
        await until_message(pilot, app, "Linked help@acme.test")
        await wait_for(pilot, lambda: len(table_keys(app, "queue-mailboxes")) == 2)
        table = app.screen.query_one("#queue-mailboxes", DataTable)
        table.focus()
        table.move_cursor(row=table_keys(app, "queue-mailboxes").index("help@acme.test"))
        await pilot.press("d")
        await until_message(pilot, app, "help@acme.test is now the default of Support")
        await wait_for(pilot, lambda: "★" in cell_text(app, "queue-mailboxes", "help@acme.test", 0))
        assert "help@acme.test" in static_text(app, "#queue-summary")

        await pilot.press("2", "m")
        await choose(pilot, app, "cy@acme.test")
        await choose(pilot, app, "agent")
        await until_message(pilot, app, "Added cy@acme.test to Support as agent")
        await wait_for(pilot, lambda: "cy@acme.test" in table_keys(app, "queue-members"))
        members = app.screen.query_one("#queue-members", DataTable)
        members.move_cursor(row=table_keys(app, "queue-members").index("cy@acme.test"))
        await pilot.press("o")
        await wait_for(pilot, lambda: cell_text(app, "queue-members", "cy@acme.test", 2) == "admin")
    with db.read() as session:
        queue = queues.get(session, None or _ada(session), "Support")
        actions = [e.action for e in audit.list_entries(session, _ada(session), limit=20)]
    assert queue.default_mailbox == "help@acme.test"
    assert {m.email: m.role for m in queue.members}["cy@acme.test"] == "admin"
    assert {"queue.mailbox.add", "queue.default.set", "queue.member.add",
            "queue.member.update"} <= set(actions)  # fmt: skip


def _ada(session):  # type: ignore[no-untyped-def]
    from tui_helpdesk.services import users

    return users.resolve_actor(session, email="ada@acme.test", os_user=None)


async def test_routing_rules_added_moved_tested(local: Settings, local_db: Database) -> None:
    """On the Routing tab: a rule added with a form, moved up with K, disabled with space,
    tried on a sample message (dry run: nothing changes), then deleted after a yes."""
    app = build(local)
    async with app.run_test(size=SIZES["wide"]) as pilot:
        screen = await open_queues(pilot, app)

        def keys_shown() -> set[str]:  # what the footer and ? list: this tab's keys only
            return {b.binding.id or "" for b in app.screen.active_bindings.values()}

        assert {"queues.link_mailbox", "queues.make_default"} <= keys_shown()
        assert "queues.rule_test" not in keys_shown()
        await pilot.press("5")
        await wait_for(pilot, lambda: table_keys(app, "routing-rules") != [])
        assert {"queues.rule_add", "queues.rule_test", "queues.rule_up"} <= keys_shown()
        assert "queues.link_mailbox" not in keys_shown()
        await pilot.press("a")
        await fill(pilot, app, name="VIP", match="any",
                   conditions="sender_domain equals bigcorp.example\nsubject contains urgent",
                   queue="Support", priority="urgent", tag="vip")  # fmt: skip
        await until_message(pilot, app, "Rule added")
        await wait_for(pilot, lambda: len(table_keys(app, "routing-rules")) == 2)
        rules = app.screen.query_one("#routing-rules", DataTable)
        rules.move_cursor(row=1)
        await pilot.press("K")
        await until_message(pilot, app, "Rule 'VIP' is now number 1")
        await wait_for(pilot, lambda: screen.view is not None and screen.view.rules is not None
                       and screen.view.rules[0].name == "VIP")  # fmt: skip
        await wait_for(pilot, lambda: rules.cursor_row == 0)
        await pilot.press("space")
        await until_message(pilot, app, "Rule 'VIP' disabled")
        await pilot.press("t")
        await fill(pilot, app, sender="ceo@bigcorp.example", recipient="support@acme.test",
                   subject="Invoice overdue", body="Please pay.")  # fmt: skip
        await wait_for(pilot, lambda: "matches" in static_text(app, "#form-result"))
        result = static_text(app, "#form-result")
        assert "Rule 'VIP' matches (disabled" in result
        assert "✓ sender_domain equals bigcorp.example" in result
        assert "✗ subject contains urgent" in result
        assert "First match among all enabled rules: Invoices" in result
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, QueuesScreen))
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await until_message(pilot, app, "Rule 'VIP' deleted")
        await wait_for(pilot, lambda: len(table_keys(app, "routing-rules")) == 1)
    with local_db.read() as session:
        names = [r.name for r in routing.list_rules(session, _ada(session))]
    assert names == ["Invoices"]


async def test_assignment_and_hours_saved(local: Settings, local_db: Database) -> None:
    """The assignment rule with sticky days and fallback, a member's weight and slots, the
    weekly schedule with a holiday, and the outside-hours message."""
    app = build(local)
    async with app.run_test(size=SIZES["wide"]) as pilot:
        screen = await open_queues(pilot, app)
        await pilot.press("down")
        await wait_for(pilot, lambda: screen.queue is not None and screen.queue.name == "Support")
        await wait_for(pilot, lambda: table_keys(app, "queue-mailboxes") == ["support@acme.test"])
        await pilot.press("3", "s")
        await fill(pilot, app, rule="percentage", sticky_days="7", fallback="bob@acme.test")
        await until_message(pilot, app, "Assignment saved")
        await wait_for(pilot, lambda: "percentage" in static_text(app, "#assignment-summary"))
        await pilot.press("w")
        await fill(pilot, app, weights="60", slots="mon-fri 09:00-13:00")
        await until_message(pilot, app, "Member's assignment saved")
        await wait_for(pilot, lambda: cell_text(app, "assignment-members", "bob@acme.test", 2)
                       == "60%")  # fmt: skip
        assert "mon,tue,wed,thu,fri 09:00-13:00" in cell_text(
            app, "assignment-members", "bob@acme.test", 3
        )
        await pilot.press("4", "h")
        await fill(pilot, app, enabled="yes", timezone="Europe/Paris",
                   mon="09:00-12:00, 13:00-17:00", holidays="2026-12-25")  # fmt: skip
        await until_message(pilot, app, "Working hours saved")
        await wait_for(pilot, lambda: "Europe/Paris" in static_text(app, "#hours-summary"))
        assert cell_text(app, "hours-days", "mon", 1) == "09:00-12:00, 13:00-17:00"
        assert cell_text(app, "hours-days", "tue", 1) == "closed"
        await pilot.press("O")
        await fill(pilot, app, outside_hours_enabled="yes", outside_hours_subject="We are closed",
                   outside_hours_body="Back at 9.")  # fmt: skip
        await until_message(pilot, app, "Outside-hours message saved")
        await wait_for(pilot, lambda: "We are closed" in static_text(app, "#hours-summary"))


async def test_refusals_show_the_services_message(local: Settings, local_db: Database) -> None:
    """Bad input changes nothing: the form stays open with the service's message beside the
    field; a direct action's refusal shows under the screen."""
    with local_db.read() as session:
        sales_before = queues.get(session, _ada(session), "Sales")
    app = build(local)
    async with app.run_test(size=SIZES["wide"]) as pilot:
        screen = await open_queues(pilot, app)
        await pilot.press("n")
        await fill(pilot, app, name="Support")
        await wait_for(pilot, lambda: "already exists" in form_error(app, "name"))
        await fill(pilot, app, name="Billing", colour="#zz")
        await wait_for(pilot, lambda: "colour must be a hex colour" in form_error(app, "colour"))
        assert form_error(app, "name") == ""
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, QueuesScreen))
        await pilot.press("3", "s")
        await fill(pilot, app, sticky_days="many")
        await wait_for(pilot, lambda: "whole number" in form_error(app, "sticky_days"))
        await fill(pilot, app, sticky_days="3", fallback="nobody@acme.test")
        await wait_for(pilot, lambda: "no user 'nobody@acme.test'" in form_error(app, "fallback"))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, QueuesScreen))
        await pilot.press("5", "a")
        await fill(pilot, app, name="Bad", conditions="subject")
        await wait_for(pilot, lambda: "FIELD OP VALUE" in form_error(app, "conditions"))
        await fill(pilot, app, conditions="subject contains x", queue="")
        await wait_for(pilot, lambda: "at least one action" in form_error(app, "queue"))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, QueuesScreen))
        # the one rule is first: up does nothing; Sales has no mailbox to make default
        await pilot.press("1", "d")
        await until_message(pilot, app, "No mailbox highlighted")
        assert screen.view is not None
    with local_db.read() as session:
        ada = _ada(session)
        assert [q.name for q in queues.list_queues(session, ada)] == ["Sales", "Support"]
        assert queues.get(session, ada, "Sales") == sales_before
        assert len(routing.list_rules(session, ada)) == 1


async def test_queue_admin_sees_only_their_queue(local: Settings, local_db: Database) -> None:
    """bob administers Support only: the menu offers Queues and Team, the list holds Support,
    the routing rules are the global admins' (the service's refusal is shown), and creating
    a queue is refused with the service's message."""
    app = build(local, "bob@acme.test")
    async with app.run_test(size=SIZES["wide"]) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, AdminMenuScreen)
                       and bool(app.screen.shown))  # fmt: skip
        menu = app.screen
        assert isinstance(menu, AdminMenuScreen)
        assert {"queues", "team"} <= set(menu.shown)
        assert not {"mailboxes", "organisation", "audit"} & set(menu.shown)
        await pilot.press(*["down"] * menu.shown.index("queues"), "enter")
        await wait_for(pilot, lambda: loaded(app))
        screen = queues_screen(app)
        assert [q.name for q in screen.view.queues] == ["Support"]
        await pilot.press("5")
        await wait_for(pilot, lambda: "only an admin may do this" in static_text(
            app, "#routing-summary"))  # fmt: skip
        await pilot.press("n")
        await fill(pilot, app, name="Mine")
        await wait_for(pilot, lambda: "bob@acme.test is an agent; only an admin may do this"
                       in static_text(app, "#form-message"))  # fmt: skip


async def test_agent_menu_hides_queues(local: Settings) -> None:
    """cy administers no queue: the menu offers Team only."""
    app = build(local, "cy@acme.test")
    async with app.run_test(size=SIZES["wide"]) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, AdminMenuScreen)
                       and bool(app.screen.shown))  # fmt: skip
        shown = app.screen.shown  # type: ignore[attr-defined]
        assert "team" in shown and "queues" not in shown


async def test_palette_queue_add_member(local: Settings) -> None:
    """The palette's "queue: add member" opens the Queues screen on Members with the picker."""
    app = build(local)
    async with app.run_test(size=SIZES["wide"]) as pilot:
        await wait_for(pilot, lambda: app.data.connected)  # the menu depends on the user
        names = [c.name for c in app.commands()]
        assert {"admin: menu", "queue: add member", "queue: add routing rule",
                "team: open", "me: next availability"} <= set(names)  # fmt: skip
        command = next(c for c in app.commands() if c.name == "queue: add member")
        command.run()
        await wait_for(pilot, lambda: isinstance(app.screen, PickerModal))
        screen = app.screen_stack[-2]
        assert isinstance(screen, QueuesScreen)
        assert screen.active_tab == "members"
        await choose(pilot, app, "cy@acme.test")
        await choose(pilot, app, "admin")
        await until_message(pilot, app, "Added cy@acme.test to Sales as admin")


# --- the services the screen needed ----------------------------------------------------------


def test_queue_update_and_managed(db: Database, settings: Settings) -> None:
    seed(db, settings)
    with db.write() as session:
        ada = _ada(session)
        record = queues.update(session, ada, "Support", name="Help desk", colour="#3366ff")
        assert (record.name, record.colour, record.description) == (
            "Help desk",
            "#3366ff",
            "Customers' questions",
        )
        with pytest.raises(Conflict, match="already exists"):
            queues.update(session, ada, "Help desk", name="sales")
        with pytest.raises(Invalid, match="colour"):
            queues.update(session, ada, "Help desk", colour="#12")
        assert [e.action for e in audit.list_entries(session, ada, limit=1)] == ["queue.update"]
    with db.write() as session:
        from tui_helpdesk.services import users

        bob = users.resolve_actor(session, email="bob@acme.test", os_user=None)
        cy = users.resolve_actor(session, email="cy@acme.test", os_user=None)
        assert [q.name for q in queues.managed(session, bob)] == ["Help desk"]
        assert queues.managed(session, cy) == []
        assert [q.name for q in queues.managed(session, _ada(session))] == ["Help desk", "Sales"]
        queues.update(session, bob, "Help desk", description="Bob's")
        with pytest.raises(PermissionDenied):
            queues.update(session, cy, "Help desk", description="Cy's")


def test_try_rule_is_a_dry_run(db: Database, settings: Settings) -> None:
    seed(db, settings)
    with db.write() as session:
        ada = _ada(session)
        rule = routing.list_rules(session, ada)[0]
        before = len(audit.list_entries(session, ada, limit=None))
        found = routing.try_rule(session, ada, rule.id, sender="a@b.example",
                                 recipient="support@acme.test", subject="Your INVOICE",
                                 headers="X-Priority: 1")  # fmt: skip
        assert found.matched and found.queue == "Sales" and found.priority == "high"
        assert found.deciding_rule == "Invoices"
        assert [c.matched for c in found.conditions] == [True]
        missed = routing.try_rule(session, ada, rule.id, subject="hello")
        assert not missed.matched and missed.deciding_rule is None
        header_rule = routing.create_rule(
            session, ada, name="Prio",
            conditions=[{"field": "header:X-Priority", "op": "equals", "value": "1"}], tag="p1",
        )  # fmt: skip
        assert routing.try_rule(session, ada, header_rule.id, headers="X-Priority: 1").matched
        with pytest.raises(Invalid, match="one header a line"):
            routing.try_rule(session, ada, rule.id, headers="not a header")
        from tui_helpdesk.services import users

        bob = users.resolve_actor(session, email="bob@acme.test", os_user=None)
        with pytest.raises(PermissionDenied):
            routing.try_rule(session, bob, rule.id, subject="invoice")
        assert len(audit.list_entries(session, ada, limit=None)) == before + 1  # the new rule


def test_form_text_parsers() -> None:
    assert parse_conditions("subject contains big invoice\n\nbody matches ^x") == [
        {"field": "subject", "op": "contains", "value": "big invoice"},
        {"field": "body", "op": "matches", "value": "^x"},
    ]
    assert parse_slots("fri-mon 09:00-12:00; wed 13:00-14:00, 15:00-16:00") == [
        {"days": ["mon", "fri", "sat", "sun"], "start": "09:00", "end": "12:00"},
        {"days": ["wed"], "start": "13:00", "end": "14:00"},
        {"days": ["wed"], "start": "15:00", "end": "16:00"},
    ]
    assert parse_slots("") == []
    with pytest.raises(Invalid, match="DAYS HOURS"):
        parse_slots("monday")


# --- snapshots -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def frozen_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    """A blinking cursor would make two screenshots of the same state differ."""
    monkeypatch.setattr(Input, "cursor_blink", False)
    monkeypatch.setattr(TextArea, "cursor_blink", False)


@pytest.fixture
def snapshot_settings(sqlite_template: Path, tmp_path: Path) -> Settings:
    """Snapshots do not depend on the backend: one SQLite copy, seeded through the services."""
    path = tmp_path / "snapshot.sqlite3"
    shutil.copyfile(sqlite_template, path)
    settings = load_settings(environ={"TUI_HELPDESK_DATABASE_URL": f"sqlite:///{path}"})
    db = Database(settings.database.url)
    seed(db, settings)
    db.dispose()
    return settings


def _queues_on(tab: str, *keys: str, until: Callable[[HelpdeskApp], bool] | None = None):  # type: ignore[no-untyped-def]
    """F2, Queues, Support, then the tab's number and any keys; waits for the screen to settle."""

    async def run_before(pilot: Pilot[object]) -> None:
        app = pilot.app
        assert isinstance(app, HelpdeskApp)
        screen = await open_queues(pilot, app)
        await pilot.press("down")
        await wait_for(pilot, lambda: screen.queue is not None and screen.queue.name == "Support")
        await wait_for(pilot, lambda: table_keys(app, "queue-mailboxes") == ["support@acme.test"])
        await pilot.press(str(TABS.index(tab) + 1), *keys)
        if until is not None:
            await wait_for(pilot, lambda: until(app))
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", ["wide", "narrow"])
def test_queues_snapshot(snap_compare, snapshot_settings: Settings, size: str) -> None:  # type: ignore[no-untyped-def]
    """Support chosen: its colour, description, default mailbox and the Mailboxes tab."""
    app = build(snapshot_settings)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=_queues_on("mailboxes"))


@pytest.mark.parametrize("size", ["wide", "narrow"])
def test_queues_routing_snapshot(snap_compare, snapshot_settings: Settings, size: str) -> None:  # type: ignore[no-untyped-def]
    """The Routing tab: the organisation's rules in order with their conditions and actions."""
    app = build(snapshot_settings)
    ready = _queues_on("routing", until=lambda a: bool(table_keys(a, "routing-rules")))
    assert snap_compare(app, terminal_size=SIZES[size], run_before=ready)


@pytest.mark.parametrize("size", ["wide", "narrow"])
def test_rule_test_snapshot(snap_compare, snapshot_settings: Settings, size: str) -> None:  # type: ignore[no-untyped-def]
    """The dry run of the Invoices rule on a sample message, with its verdict."""
    app = build(snapshot_settings)

    async def run_before(pilot: Pilot[object]) -> None:
        await _queues_on("routing", until=lambda a: bool(table_keys(a, "routing-rules")))(pilot)
        await pilot.press("t")
        await fill(pilot, app, sender="ann@customer.example", recipient="support@acme.test",
                   subject="Invoice 42", body="Where is my invoice?")  # fmt: skip
        await wait_for(pilot, lambda: "matches" in static_text(app, "#form-result"))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.parametrize("size", ["wide", "narrow"])
def test_admin_menu_snapshot(
    snap_compare, snapshot_settings: Settings, size: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """F2 from the inbox: the admin screens ada may use (this file's two, so the picture does
    not change as other screens are installed)."""
    mine = tuple(e for e in menu_module.ENTRIES if e.key in ("queues", "team"))
    monkeypatch.setattr(menu_module, "ENTRIES", mine)
    app = build(snapshot_settings)

    async def run_before(pilot: Pilot[object]) -> None:
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, AdminMenuScreen)
                       and bool(app.screen.shown))  # fmt: skip
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)


@pytest.mark.both_backends  # live refresh: LISTEN/NOTIFY on PostgreSQL
async def test_changes_from_elsewhere_appear(acme: Settings, db: Database) -> None:
    """Another session adds a routing rule and a member: the open screen reloads by itself
    (SQLite: the change counter's triggers; PostgreSQL: the services' NOTIFY)."""
    app = build(acme.replace(tui={"refresh_interval_seconds": 0.05}))
    async with app.run_test(size=SIZES["wide"]) as pilot:
        await open_queues(pilot, app)
        await pilot.press("5")
        await wait_for(pilot, lambda: len(table_keys(app, "routing-rules")) == 1)
        with db.write() as session:
            ada = _ada(session)
            routing.create_rule(
                session, ada, name="Elsewhere", tag="x",
                conditions=[{"field": "subject", "op": "contains", "value": "x"}],
            )  # fmt: skip
        await wait_for(pilot, lambda: len(table_keys(app, "routing-rules")) == 2)
        with db.write() as session:
            queues.add_member(session, _ada(session), "Sales", "cy@acme.test", "agent")
        await pilot.press("2")
        await wait_for(pilot, lambda: "cy@acme.test" in table_keys(app, "queue-members"))
