"""The audit log (F61): every entry with who, what and when, and the before / after diff of
the highlighted one; filtered by actor, subject and time.

The list is virtual (widgets/audit_list.py): the log grows without bound, so only the pages
on screen are read, each after the key of a loaded entry.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.records import AuditFilter, AuditKey, AuditRecord
from tui_helpdesk.services import audit_log
from tui_helpdesk.tui.commands import PaletteCommand
from tui_helpdesk.tui.host import Helpdesk, host
from tui_helpdesk.tui.messages import DataChanged
from tui_helpdesk.tui.widgets.audit_list import AuditList
from tui_helpdesk.tui.widgets.safe_text import safe_text

PAGE_SIZE = 50
FILTER_HINT = "actor:ada subject:mailbox:3 since:2026-12-01 until:2026-12-06T12:00"


class AuditReloaded(Message):
    def __init__(self, generation: int, total: int, rows: tuple[AuditRecord, ...]) -> None:
        super().__init__()
        self.generation, self.total, self.rows = generation, total, rows


class AuditPage(Message):
    def __init__(self, generation: int, offset: int, rows: tuple[AuditRecord, ...]) -> None:
        super().__init__()
        self.generation, self.offset, self.rows = generation, offset, rows


class AuditFailed(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def detail_text(entry: AuditRecord | None) -> Text:
    """Who, what, when, then one line per changed field: - before, + after."""
    if entry is None:
        return Text("")
    text = Text(end="")
    text.append(entry.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"), style="dim")
    text.append("  ")
    text.append_text(safe_text(entry.actor, "bold", one_line=True))
    text.append("  ")
    text.append_text(safe_text(entry.action, one_line=True))
    text.append("  ")
    text.append_text(safe_text(f"{entry.entity_type} {entry.entity_id}", "dim", one_line=True))
    changes = audit_log.diff(entry)
    if not changes:
        text.append("\n(no fields recorded)", style="dim")
    elif entry.before is None or entry.after is None:  # made or removed: the fields, wrapped
        sign, style = ("+", "green") if entry.before is None else ("-", "red")
        text.append(f"\n{sign} ", style=style)
        pairs = [(name, after if entry.before is None else before)
                 for name, before, after in changes]  # fmt: skip
        for position, (name, value) in enumerate(pairs):
            if position:
                text.append("  ")
            text.append_text(safe_text(name, "bold", one_line=True))
            text.append("=")
            text.append_text(safe_text(_value(value), style, one_line=True))
        return text
    for name, before, after in changes:
        text.append("\n")
        text.append_text(safe_text(name, "bold", one_line=True))
        text.append(": ")
        if before is not None:
            text.append_text(safe_text(f"- {_value(before)}", "red", one_line=True))
            text.append("  ")
        if after is not None:
            text.append_text(safe_text(f"+ {_value(after)}", "green", one_line=True))
    return text


class AuditScreen(Screen[None]):
    """Every audit entry the admin may read, newest first, with the diff of the highlighted."""

    DEFAULT_CSS = """
    AuditScreen #audit-title { height: auto; padding: 0 1; background: $panel; }
    AuditScreen #audit-filter { height: 3; margin: 0 1; }
    AuditScreen AuditList { height: 1fr; padding: 0 1; }
    AuditScreen #audit-detail {
        height: auto; max-height: 9; padding: 0 1; border-top: solid $panel-lighten-2;
    }
    AuditScreen #audit-status { height: 1; padding: 0 1; color: $text-muted; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back", id="audit.back",
                tooltip="Leave the filter, or go back to the previous screen"),
        Binding("slash", "filter", "Filter", key_display="/", id="audit.filter",
                tooltip="Filter by actor, subject and time"),
        Binding("r", "refresh", "Refresh", id="audit.refresh", tooltip="Read the log again"),
    ]  # fmt: skip

    def __init__(self) -> None:
        super().__init__(id="audit")
        self.wanted = AuditFilter()
        self._generation = 0
        self._stale = False

    @property
    def helpdesk(self) -> Helpdesk:
        return host(self)

    @property
    def entries(self) -> AuditList:
        return self.query_one(AuditList)

    def compose(self) -> ComposeResult:
        yield Static(Text("Audit log", style="bold"), id="audit-title")
        yield Input(placeholder=FILTER_HINT, id="audit-filter")
        yield AuditList(page_size=PAGE_SIZE, id="audit-entries")
        yield Static("", id="audit-detail")
        yield Static("Loading…", id="audit-status")
        yield Footer()

    def on_mount(self) -> None:
        self.entries.focus()
        self.reload()

    def commands(self) -> list[PaletteCommand]:
        return [
            PaletteCommand("audit: filter", "Filter by actor, subject and time",
                           self.action_filter),
            PaletteCommand("audit: clear filter", "Show every entry", self.clear_filter),
            PaletteCommand("audit: refresh", "Read the log again", self.action_refresh),
            PaletteCommand("audit: newest", "Go to the newest entry", self._first),
            PaletteCommand("audit: oldest", "Go to the oldest entry", self._last),
        ]  # fmt: skip

    def _first(self) -> None:
        self.entries.action_first()

    def _last(self) -> None:
        self.entries.action_last()

    # -- loading -------------------------------------------------------------------------

    def reload(self) -> None:
        self._generation += 1
        self._stale = False
        self._reload_worker(self._generation, self.wanted)

    @work(thread=True, exclusive=True, exit_on_error=False, group="audit-reload")
    def _reload_worker(self, generation: int, wanted: AuditFilter) -> None:
        def read(session: Any, actor: Any) -> tuple[int, list[AuditRecord]]:
            total = audit_log.count(session, actor, wanted)
            return total, audit_log.page(session, actor, wanted, limit=PAGE_SIZE)

        try:
            total, rows = self.helpdesk.data.read(read)
        except HelpdeskError as error:
            self.post_message(AuditFailed(error.message))
            return
        self.post_message(AuditReloaded(generation, total, tuple(rows)))

    @work(thread=True, exit_on_error=False, group="audit-page")
    def _page_worker(self, generation: int, offset: int, after: AuditKey | None, skip: int) -> None:
        wanted = self.wanted
        rows = self.helpdesk.data.read(
            lambda session, actor: audit_log.page(
                session, actor, wanted, after=after, skip=skip, limit=PAGE_SIZE
            )
        )
        self.post_message(AuditPage(generation, offset, tuple(rows)))

    def on_audit_reloaded(self, message: AuditReloaded) -> None:
        if message.generation != self._generation:
            return
        self.entries.show_reload(message.generation, message.total, message.rows)
        self._status()

    def on_audit_page(self, message: AuditPage) -> None:
        self.entries.add_page(message.generation, message.offset, message.rows)

    def on_audit_failed(self, message: AuditFailed) -> None:
        self.query_one("#audit-status", Static).update(safe_text(message.text, "bold red"))

    def on_data_changed(self, _message: DataChanged) -> None:
        """Following the newest entry: read again. Reading further down: the rows stay put
        (a reload would move them) and the status line offers the refresh."""
        if self.entries.cursor == 0:
            self.reload()
        else:
            self._stale = True
            self._status()

    @on(AuditList.PageWanted)
    def _page_wanted(self, message: AuditList.PageWanted) -> None:
        self._page_worker(message.generation, message.offset, message.after, message.skip)

    @on(AuditList.Highlighted)
    def _highlighted(self, message: AuditList.Highlighted) -> None:
        self.query_one("#audit-detail", Static).update(detail_text(message.entry))
        self._status()

    def _status(self) -> None:
        listed = self.entries
        noun = "entry" if listed.total == 1 else "entries"
        line = f"{listed.total:,} {noun}"
        if listed.total:
            line += f" · row {listed.cursor + 1:,} of {listed.total:,}"
        shown = " ".join(
            part for part in (
                f"actor:{self.wanted.actor}" if self.wanted.actor else "",
                f"subject:{self.wanted.subject}" if self.wanted.subject else "",
                f"since:{self.wanted.since:%Y-%m-%dT%H:%M}" if self.wanted.since else "",
                f"until:{self.wanted.until:%Y-%m-%dT%H:%M}" if self.wanted.until else "",
            ) if part
        )  # fmt: skip
        if shown:
            line += f" · filter {shown}"
        if self._stale:
            line += " · the log changed: r reads it again"
        self.query_one("#audit-status", Static).update(safe_text(line, one_line=True))

    # -- actions -------------------------------------------------------------------------

    @on(Input.Submitted, "#audit-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        try:
            wanted = audit_log.parse_filter(event.value)
        except HelpdeskError as error:
            self.query_one("#audit-status", Static).update(safe_text(error.message, "bold red"))
            return
        self.wanted = wanted
        self.entries.focus()
        self.reload()

    def action_filter(self) -> None:
        self.query_one("#audit-filter", Input).focus()

    def clear_filter(self) -> None:
        self.query_one("#audit-filter", Input).value = ""
        self.wanted = AuditFilter()
        self.reload()

    def action_refresh(self) -> None:
        self.reload()

    def action_back(self) -> None:
        if self.query_one("#audit-filter", Input).has_focus:
            self.entries.focus()
        elif len(self.app.screen_stack) > 1:
            self.app.pop_screen()


def palette_commands(app: App[object]) -> list[PaletteCommand]:
    """What the admin menu and the app's palette offer to open this screen."""
    return [
        PaletteCommand("admin: audit log", "Who changed what, when, with before and after",
                       lambda: app.push_screen(AuditScreen())),
    ]  # fmt: skip
