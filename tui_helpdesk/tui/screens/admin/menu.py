"""The admin menu (F2 from any screen, palette "admin: menu"): one entry per admin screen.

Screen modules are imported lazily: an entry whose module is not installed is left out. Each
module exposes `palette_commands(app)`, collected here for the app's palette, and may expose
`visible_to(session, actor) -> bool` (services decide); without it an entry is for admins.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.records import UserRecord
from tui_helpdesk.tui.commands import PaletteCommand
from tui_helpdesk.tui.host import Helpdesk, host
from tui_helpdesk.tui.messages import DataChanged
from tui_helpdesk.tui.widgets.safe_text import safe_text

PACKAGE = "tui_helpdesk.tui.screens.admin"


@dataclass(frozen=True)
class Entry:
    key: str  # the module name under tui/screens/admin/
    label: str
    screen: str  # the screen class in that module
    help: str


ENTRIES = (
    Entry("mailboxes", "Mailboxes", "MailboxesScreen",
          "Create mailboxes, copy the alias, verify, forwarding and sending set-up"),
    Entry("organisation", "Domains & organisation", "OrganisationScreen",
          "Domains and DNS checks; name, timezone, language, autoresponders"),
    Entry("queues", "Queues", "QueuesScreen",
          "Linked mailboxes and default, members, assignment, hours, routing rules"),
    Entry("team", "Team", "TeamScreen",
          "Users, roles, active, availability, OS login and SSH keys"),
    Entry("stats", "Stats", "StatsScreen", "Queues and agents over the last 30 days"),
    Entry("audit", "Audit", "AuditScreen", "Who changed what, when, with a before / after diff"),
    Entry("workers", "Workers", "WorkersScreen",
          "Workers, heartbeats, outbox, and mail that failed processing"),
)  # fmt: skip


def module_of(entry: Entry) -> ModuleType | None:
    """The entry's screen module, or None while it is not part of this installation."""
    name = f"{PACKAGE}.{entry.key}"
    if importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(name)


def installed() -> list[tuple[Entry, ModuleType]]:
    found = [(entry, module_of(entry)) for entry in ENTRIES]
    return [(entry, module) for entry, module in found if module is not None]


def visible(session: Any, actor: UserRecord, entries: list[tuple[Entry, ModuleType]]) -> list[str]:
    """Keys of the entries the actor can use: each module's `visible_to`, else admins only."""
    keys = []
    for entry, module in entries:
        check = getattr(module, "visible_to", None)
        try:
            shown = check(session, actor) if callable(check) else actor.is_admin
        except HelpdeskError:
            shown = False
        if shown:
            keys.append(entry.key)
    return keys


def open_entry(app: Any, key: str) -> None:
    entry = next(e for e in ENTRIES if e.key == key)
    module = module_of(entry)
    if module is not None:
        app.push_screen(getattr(module, entry.screen)())


class AdminMenuScreen(Screen[None]):
    """The admin screens the acting user can use; enter opens one."""

    DEFAULT_CSS = """
    AdminMenuScreen #admin-title, AdminMenuScreen #admin-hint { height: auto; padding: 0 1; }
    AdminMenuScreen #admin-title { background: $panel; }
    AdminMenuScreen #admin-entries { height: 1fr; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back", id="admin.back", tooltip="Back to where you were"),
        Binding("enter", "open", "Open", id="admin.open",
                tooltip="Open the highlighted admin screen"),
    ]  # fmt: skip

    def __init__(self) -> None:
        super().__init__(id="admin-menu")
        self.entries = installed()
        self.shown: list[str] = []

    @property
    def helpdesk(self) -> Helpdesk:
        return host(self)

    def compose(self) -> ComposeResult:
        actor = self.helpdesk.data.actor
        title = Text("Admin", style="bold", end="")
        title.append("  acting as ")
        title.append_text(safe_text(f"{actor.name} <{actor.email}>", one_line=True))
        title.append(f" ({actor.role})", style="dim")
        yield Static(title, id="admin-title")
        yield OptionList(id="admin-entries")
        yield Static(
            Text(
                "enter opens · escape goes back · F2 comes here from anywhere · "
                "F3 sets your availability",
                style="dim",
            ),
            id="admin-hint",
        )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="admin-menu")
    def load(self) -> None:
        entries = self.entries
        shown = self.helpdesk.data.read(lambda s, a: visible(s, a, entries))
        self.app.call_from_thread(self._show, shown)

    def _show(self, shown: list[str]) -> None:
        options = self.query_one(OptionList)
        highlighted = self.shown[options.highlighted] if options.highlighted is not None else None
        self.shown = shown
        options.clear_options()
        for entry, _ in self.entries:
            if entry.key in shown:
                label = Text(entry.label, style="bold")
                label.append(f"\n  {entry.help}", style="dim")
                options.add_option(Option(label, id=entry.key))
        if not shown:
            options.add_option(Option(Text("Nothing here is yours to change.", style="dim")))
        elif highlighted in shown:
            options.highlighted = shown.index(highlighted)
        else:
            options.highlighted = 0

    def on_data_changed(self, _message: DataChanged) -> None:
        self.load()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            open_entry(self.app, event.option.id)

    def action_open(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is not None and self.shown:
            open_entry(self.app, self.shown[options.highlighted])

    def action_back(self) -> None:
        self.dismiss(None)

    def commands(self) -> list[PaletteCommand]:
        return [
            PaletteCommand(f"admin: {entry.label.lower()}", entry.help,
                           _opener(self.app, entry.key))
            for entry, _ in self.entries
            if entry.key in self.shown
        ]  # fmt: skip


def _opener(app: Any, key: str) -> Callable[[], None]:
    return lambda: open_entry(app, key)


def open_menu(app: Any) -> None:
    """F2 / "admin: menu": the menu, unless it is already on top."""
    if not isinstance(app.screen, AdminMenuScreen):
        app.push_screen(AdminMenuScreen())


def palette_commands(app: Any) -> list[PaletteCommand]:
    """The app's admin palette: the menu, then every installed screen module's commands.
    Agents get the ones of screens they may use without being admins (queues, team)."""
    found = [PaletteCommand("admin: menu", "The admin screens you can use",
                            lambda: open_menu(app))]  # fmt: skip
    actor = app.data.actor
    for _entry, module in installed():
        if not actor.is_admin and not callable(getattr(module, "visible_to", None)):
            continue
        listing = getattr(module, "palette_commands", None)
        if callable(listing):
            found.extend(listing(app))
    return found
