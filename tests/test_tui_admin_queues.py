"""The Queues screen and the admin menu driven with keys (Pilot), the services they added
(queues.update / managed, routing.try_rule), and snapshots at 120×36 and 80×24.

Flows: F2 → menu → Queues; a mailbox linked, made default; a member added from the user picker;
assignment and hours saved; routing rules added, moved, toggled, tested (dry run), deleted;
each refusal shows the service's own message and changes nothing.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
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
from tui_helpdesk.tui.screens.admin.menu import AdminMenuScreen
from tui_helpdesk.tui.screens.admin.queues import (
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
    return settings.replace(tui={"refresh_interval_seconds": 0.05})


def build(settings: Settings, email: str = "ada@acme.test") -> HelpdeskApp:
    return make_app(settings, email)


async def wait_for(pilot: Pilot[object], condition: Callable[[], bool], seconds: float = 5.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the screen did not reach the expected state in time")
        await pilot.pause(0.02)


def table_keys(app: HelpdeskApp, table_id: str) -> list[str]:
    table = app.screen.query_one(f"#{table_id}", DataTable)
    return [str(key.value) for key in table.rows]


def cell_text(app: HelpdeskApp, table_id: str, key: str, column: int) -> str:
    table = app.screen.query_one(f"#{table_id}", DataTable)
    value = table.get_row(key)[column]
    return value.plain if isinstance(value, Text) else str(value)


def static_text(app: HelpdeskApp, selector: str) -> str:
    content = app.screen.query_one(selector, Static).content
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
        if not isinstance(app.screen, PickerModal):
            return []
        options = app.screen.query_one(OptionList)
        return [options.get_option_at_index(i).id for i in range(options.option_count)]

    await wait_for(pilot, lambda: value in ids())
    app.screen.query_one(OptionList).highlighted = ids().index(value)
    await pilot.press("enter")


async def fill(pilot: Pilot[object], app: HelpdeskApp, **values: str) -> None:
    """In a form: set fields by name, then ctrl+s."""
    await wait_for(pilot, lambda: isinstance(app.screen, FormModal))
    form = app.screen
    for name, value in values.items():
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
