"""Organisation and domains (F1, F2, F19): name, default timezone and language, the switch
that silences every autoresponder, and the email domains with their DNS check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.records import DomainRecord, OrganisationRecord, UserRecord
from tui_helpdesk.services import domains, organisations
from tui_helpdesk.tui.commands import PaletteCommand
from tui_helpdesk.tui.host import Helpdesk, host
from tui_helpdesk.tui.messages import DataChanged
from tui_helpdesk.tui.modals.confirm import ConfirmScreen
from tui_helpdesk.tui.modals.dns_check import DnsCheckScreen
from tui_helpdesk.tui.modals.field_form import Field, FieldForm, Values
from tui_helpdesk.tui.widgets.safe_text import safe_text

Work = Callable[[Any, UserRecord], object]


def organisation_text(org: OrganisationRecord | None) -> Text:
    if org is None:
        return Text("Loading…", style="dim")
    line = Text(end="")
    for label, value in (("name", org.name), ("timezone", org.timezone),
                         ("language", org.language)):  # fmt: skip
        line.append(f"{label}: ", style="dim")
        line.append_text(safe_text(value, "bold", one_line=True))
        line.append("  ")
    line.append("autoresponders: ", style="dim")
    if org.autoresponders_enabled:
        line.append("on", style="bold green")
    else:
        line.append("all off (u turns them back on)", style="bold yellow")
    return line


def settings_form(org: OrganisationRecord) -> FieldForm:
    fields = [
        Field("name", "Name", org.name),
        Field("timezone", "Timezone", org.timezone, placeholder="Europe/Madrid"),
        Field("language", "Language", org.language, placeholder="en"),
        Field("autoresponders_enabled", "Autoresponders", org.autoresponders_enabled,
              kind="switch"),
    ]  # fmt: skip

    def save(values: Values) -> Work:
        changes = {"name": str(values["name"]), "timezone": str(values["timezone"]),
                   "language": str(values["language"]),
                   "autoresponders_enabled": bool(values["autoresponders_enabled"])}  # fmt: skip
        return lambda session, actor: organisations.update(session, actor, **changes)

    intro = (
        "Timezone and language are the defaults of mailboxes that set none. "
        "Autoresponders off silences every mailbox's automatic reply at once."
    )
    return FieldForm("Organisation settings", fields, save, check=_check_org, intro=intro,
                     form_id="organisation-form")  # fmt: skip


def _check_org(name: str, value: str) -> object:
    if name == "name":
        return organisations.validate_name(value, what="organisation name")
    if name == "timezone":
        return organisations.validate_timezone(value)
    if name == "language":
        return organisations.validate_language(value)
    return value


def domain_form() -> FieldForm:
    fields = [Field("domain", "Domain", placeholder="example.com")]

    def save(values: Values) -> Work:
        name = str(values["domain"])
        return lambda session, actor: domains.add(session, actor, name)

    intro = "The part after the @ of mailbox addresses; s then checks its DNS records."
    return FieldForm("Add a domain", fields, save, check=lambda _n, v: domains.validate_hostname(v),
                     intro=intro, form_id="domain-form")  # fmt: skip


class OrganisationLoaded(Message):
    def __init__(self, org: OrganisationRecord, found: list[DomainRecord]) -> None:
        super().__init__()
        self.org = org
        self.domains = found


class OrganisationDone(Message):
    def __init__(self, text: str, *, ok: bool = True) -> None:
        super().__init__()
        self.text = text
        self.ok = ok


class OrganisationScreen(Screen[None]):
    """The organisation's settings above its domains."""

    CSS_PATH = "../../styles/admin.tcss"
    BINDINGS = [
        Binding("escape", "back", "Back", id="organisation.back", tooltip="Leave this screen"),
        Binding("e", "settings", "Settings", id="organisation.settings",
                tooltip="Name, timezone, language, autoresponders"),
        Binding("u", "toggle_autoresponders", "Autoresponders", id="organisation.autoresponders",
                tooltip="Turn every autoresponder off, or back on"),
        Binding("n", "add_domain", "Add domain", id="organisation.add_domain",
                tooltip="Add an email domain"),
        Binding("s", "dns", "DNS check", id="organisation.dns",
                tooltip="Check the highlighted domain's DNS records"),
        Binding("delete", "remove_domain", "Remove", id="organisation.remove_domain",
                tooltip="Remove the highlighted domain (asks first)"),
        Binding("r", "refresh", "Refresh", id="organisation.refresh", tooltip="Read again"),
    ]  # fmt: skip

    def __init__(self, *, start: str | None = None) -> None:
        super().__init__(id="organisation")
        self.start = start  # "add_domain" or "settings": open that form once loaded
        self.org: OrganisationRecord | None = None
        self.domains: list[DomainRecord] = []

    @property
    def helpdesk(self) -> Helpdesk:
        return host(self)

    def compose(self) -> ComposeResult:
        yield Static(Text("Organisation", style="bold"), classes="admin-title")
        yield Static(organisation_text(None), id="organisation-detail")
        yield DataTable(id="domain-table", cursor_type="row")
        yield Static("Loading…", id="admin-status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("Domain", key="domain")
        table.add_column("Added", key="added")
        table.focus()
        self.load()

    def commands(self) -> list[PaletteCommand]:
        return [
            PaletteCommand("organisation: settings", "Name, timezone, language",
                           self.action_settings),
            PaletteCommand("organisation: autoresponders on/off", "The global switch",
                           self.action_toggle_autoresponders),
            PaletteCommand("domain: add", "Add an email domain", self.action_add_domain),
            PaletteCommand("domain: check DNS", "MX, SPF, DKIM, DMARC", self.action_dns),
            PaletteCommand("domain: remove", "Remove the highlighted domain",
                           self.action_remove_domain),
        ]  # fmt: skip

    def load(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="organisation-load")
    def _load(self) -> None:
        def read(session: Any, actor: UserRecord) -> OrganisationLoaded:
            return OrganisationLoaded(
                organisations.get(session, actor), domains.list_domains(session, actor)
            )

        try:
            self.post_message(self.helpdesk.data.read(read))
        except HelpdeskError as error:
            self.post_message(OrganisationDone(error.message, ok=False))

    def on_organisation_loaded(self, message: OrganisationLoaded) -> None:
        first = self.org is None
        self.org, self.domains = message.org, message.domains
        self.query_one("#organisation-detail", Static).update(organisation_text(self.org))
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for domain in self.domains:
            added = Text(f"{domain.created_at:%Y-%m-%d}", end="")
            table.add_row(safe_text(domain.domain, one_line=True), added, key=domain.domain)
        if self.domains:
            table.move_cursor(row=min(row, len(self.domains) - 1))
        self.refresh_bindings()
        if first:
            count = len(self.domains)
            self._set_status(f"{count} domain{'' if count == 1 else 's'} · n add · s DNS check")
            if self.start == "add_domain":
                self.action_add_domain()
            elif self.start == "settings":
                self.action_settings()

    @property
    def selected(self) -> DomainRecord | None:
        row = self.query_one(DataTable).cursor_row
        return self.domains[row] if self.domains and 0 <= row < len(self.domains) else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("dns", "remove_domain") and self.is_mounted and self.selected is None:
            return None
        if action in ("settings", "toggle_autoresponders") and self.org is None:
            return None
        return True

    def on_data_changed(self, _message: DataChanged) -> None:
        self.load()

    def _set_status(self, text: str, *, ok: bool = True) -> None:
        self.query_one("#admin-status", Static).update(safe_text(text, "" if ok else "bold red"))

    def on_organisation_done(self, message: OrganisationDone) -> None:
        self._set_status(message.text, ok=message.ok)
        self.load()

    @work(thread=True, exit_on_error=False, group="organisation-write")
    def write(self, work: Work, done: Callable[[Any], str]) -> None:
        try:
            result = self.helpdesk.data.write(work)
        except HelpdeskError as error:
            self.post_message(OrganisationDone(error.message, ok=False))
            return
        self.post_message(OrganisationDone(done(result)))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_refresh(self) -> None:
        self.load()

    def action_settings(self) -> None:
        if self.org is not None:
            self.app.push_screen(settings_form(self.org), self._saved)

    def _saved(self, result: object) -> None:
        if isinstance(result, OrganisationRecord):
            self._set_status(f"saved the settings of {result.name}")
        elif isinstance(result, DomainRecord):
            self._set_status(f"added {result.domain}: s checks its DNS records")
        self.load()

    def action_toggle_autoresponders(self) -> None:
        if self.org is None:
            return
        enabled = not self.org.autoresponders_enabled
        self.write(
            lambda s, a: organisations.update(s, a, autoresponders_enabled=enabled),
            lambda r: "autoresponders are on" if r.autoresponders_enabled
            else "every autoresponder is off",
        )  # fmt: skip

    def action_add_domain(self) -> None:
        self.app.push_screen(domain_form(), self._saved)

    def action_dns(self) -> None:
        if self.selected is not None:
            self.app.push_screen(DnsCheckScreen(self.selected.domain))

    def action_remove_domain(self) -> None:
        if self.selected is None:
            return
        name = self.selected.domain
        question = Text("Remove domain ", style="bold", end="")
        question.append_text(safe_text(name, "bold", one_line=True))
        question.append("? Mailboxes can then no longer use it.")

        def answered(yes: bool | None) -> None:
            if yes:
                self.write(lambda s, a: domains.remove(s, a, name),
                           lambda r: f"removed {r.domain}")  # fmt: skip

        self.app.push_screen(ConfirmScreen(question), answered)


def palette_commands(app: App[Any]) -> list[PaletteCommand]:
    """The app-wide entries that open this screen (collected by the admin menu)."""
    return [
        PaletteCommand("domain: add", "Add an email domain and check its DNS",
                       lambda: app.push_screen(OrganisationScreen(start="add_domain"))),
        PaletteCommand("organisation: settings", "Name, timezone, language, autoresponders",
                       lambda: app.push_screen(OrganisationScreen(start="settings"))),
    ]  # fmt: skip
