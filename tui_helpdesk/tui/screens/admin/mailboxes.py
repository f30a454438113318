"""Mailboxes (F10-F22): the list with each mailbox's health, and every action on one.

The list shows address, display name, status, queues, the last mail received (flagged after
24 h of silence) and whether the forwarding rule was seen working. Every action is one service
call in a worker thread; a refusal shows the service's own message in the status line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.records import MailboxRecord, UserRecord, VerificationRecord
from tui_helpdesk.services import autoresponder, domains, mailboxes, transports, webhooks
from tui_helpdesk.tui.commands import PaletteCommand
from tui_helpdesk.tui.host import Helpdesk, host
from tui_helpdesk.tui.messages import DataChanged
from tui_helpdesk.tui.modals.confirm import ConfirmScreen
from tui_helpdesk.tui.modals.dns_check import DnsCheckScreen
from tui_helpdesk.tui.screens.admin import mailbox_forms as forms
from tui_helpdesk.tui.screens.admin.mailbox_alias import MailboxAliasScreen, copy_alias
from tui_helpdesk.tui.widgets.safe_text import safe_text

Work = Callable[[Any, UserRecord], object]
COLUMNS = ("Address", "Display name", "Status", "Queues", "Last mail", "Binding")
STATUS_STYLES = {"active": "green", "pending": "yellow", "inactive": "dim"}
NEEDS_ROW = {"edit", "alias", "copy_alias", "verify", "resend_code", "test", "dns", "transport",
             "signature", "autoresponder", "access", "webhook", "activate", "deactivate",
             "delete"}  # fmt: skip
# Settings dialogs that start from what the service reads now.
READERS: dict[str, Callable[[str], Work]] = {
    "transport": lambda a: lambda s, actor: transports.get_transport(s, actor, a),
    "signature": lambda a: lambda s, actor: mailboxes.get_signature(s, actor, a),
    "autoresponder": lambda a: lambda s, actor: autoresponder.get(s, actor, a),
    "webhook": lambda a: lambda s, actor: webhooks.get_webhook(s, actor, a),
}
BUILDERS = {"transport": forms.transport_form, "signature": forms.signature_form,
            "autoresponder": forms.autoresponder_form, "webhook": forms.webhook_form}  # fmt: skip


def last_mail(record: MailboxRecord) -> Text:
    seen = f"{record.last_inbound_at:%Y-%m-%d}" if record.last_inbound_at else "never"
    return Text(f"⚠ {seen}", style="bold yellow", end="") if record.silent else Text(seen, end="")


def binding_state(record: MailboxRecord) -> Text:
    if record.binding_checked_at is None:
        return Text("untested", style="yellow", end="")
    return Text("ok", style="green", end="")


def row_cells(record: MailboxRecord) -> tuple[Text, ...]:
    return (
        safe_text(record.email_address, one_line=True),
        safe_text(record.display_name, one_line=True),
        Text(record.status, style=STATUS_STYLES.get(record.status, ""), end=""),
        safe_text(", ".join(record.queues) or "-", one_line=True),
        last_mail(record),
        binding_state(record),
    )


def health_text(record: MailboxRecord) -> Text:
    """Is mail arriving: the last mail, the 24 h warning, the forwarding test."""
    line = Text(end="")
    if record.silent:
        line.append("⚠ no mail for 24 h or more: check the forwarding rule (t tests it)",
                    style="bold yellow")  # fmt: skip
    else:
        line.append("last mail: ", style="dim")
        line.append(f"{record.last_inbound_at:%Y-%m-%d %H:%M UTC}" if record.last_inbound_at
                    else "never")  # fmt: skip
    line.append("\nbinding: ", style="dim")
    if record.binding_checked_at is None:
        line.append("untested (t sends a test mail)", style="yellow")
    else:
        line.append(f"ok, test came back {record.binding_checked_at:%Y-%m-%d %H:%M UTC}",
                    style="green")  # fmt: skip
    return line


def detail_text(record: MailboxRecord | None) -> Text:
    if record is None:
        return Text("No mailbox yet: n creates one.", style="dim")
    lines = Text(end="")
    if record.status == "pending":
        lines.append("pending: v enters the code mailed to the address\n", style="yellow")
    lines.append_text(health_text(record))
    lines.append("\n")
    for label, value in forms.summary(record):
        lines.append(f"{label}: ", style="dim")
        lines.append_text(safe_text(value, "bold" if label == "alias" else "", one_line=True))
        lines.append("  ")
    return lines


class MailboxesLoaded(Message):
    def __init__(self, records: list[MailboxRecord], domains: list[str]) -> None:
        super().__init__()
        self.records = records
        self.domains = domains


class ActionDone(Message):
    """A service call finished: its message (a refusal when ok is False)."""

    def __init__(self, text: str, *, ok: bool = True) -> None:
        super().__init__()
        self.text = text
        self.ok = ok


class SettingsRead(Message):
    def __init__(self, kind: str, current: object) -> None:
        super().__init__()
        self.kind = kind
        self.current = current


class MailboxesScreen(Screen[None]):
    """Every mailbox of the organisation; n creates, enter shows the alias and forwarding."""

    CSS_PATH = "../../styles/admin.tcss"
    BINDINGS = [
        Binding("escape", "back", "Back", id="mailboxes.back", tooltip="Leave the mailboxes"),
        Binding("n", "create", "New", id="mailboxes.create", tooltip="Create a mailbox"),
        Binding("e", "edit", "Edit", id="mailboxes.edit",
                tooltip="Edit the fields (not the alias)"),
        Binding("enter", "alias", "Alias", id="mailboxes.alias",
                tooltip="The alias large, with forwarding steps"),
        Binding("c", "copy_alias", "Copy alias", id="mailboxes.copy_alias",
                tooltip="Copy the alias to the clipboard (OSC 52)"),
        Binding("v", "verify", "Verify", id="mailboxes.verify",
                tooltip="Enter the code mailed to the address"),
        Binding("V", "resend_code", "Resend code", id="mailboxes.resend_code",
                tooltip="Mail a new verification code"),
        Binding("t", "test", "Test mail", id="mailboxes.test",
                tooltip="Send a test mail through the forwarding rule"),
        Binding("s", "dns", "DNS", id="mailboxes.dns", tooltip="Check the domain's DNS records"),
        Binding("o", "transport", "Outgoing", id="mailboxes.transport",
                tooltip="Outgoing SMTP: platform relay or own server"),
        Binding("g", "signature", "Signature", id="mailboxes.signature",
                tooltip="The signature added to sent mail"),
        Binding("u", "autoresponder", "Autoreply", id="mailboxes.autoresponder",
                tooltip="Automatic reply and its windows"),
        Binding("p", "access", "Access", id="mailboxes.access",
                tooltip="Who may send from it; private access"),
        Binding("w", "webhook", "Webhook", id="mailboxes.webhook",
                tooltip="The https URL told of new and closed conversations"),
        Binding("a", "activate", "Activate", id="mailboxes.activate",
                tooltip="Receive and send again"),
        Binding("d", "deactivate", "Deactivate", id="mailboxes.deactivate",
                tooltip="Keep the history, refuse new mail"),
        Binding("delete", "delete", "Delete", id="mailboxes.delete",
                tooltip="Delete (asks first; cannot be undone)"),
        Binding("r", "refresh", "Refresh", id="mailboxes.refresh", tooltip="Read the list again"),
    ]  # fmt: skip

    def __init__(self, *, start: str | None = None) -> None:
        super().__init__(id="mailboxes")
        self.start = start  # "create": open the new mailbox form once loaded
        self.records: list[MailboxRecord] = []
        self.domains: list[str] = []
        self.loaded = False

    @property
    def helpdesk(self) -> Helpdesk:
        return host(self)

    def compose(self) -> ComposeResult:
        yield Static(Text("Mailboxes", style="bold"), classes="admin-title")
        yield DataTable(id="mailbox-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="mailbox-detail")
        yield Static("Loading…", id="admin-status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column.lower())
        table.focus()
        self.load()

    def commands(self) -> list[PaletteCommand]:
        return [
            PaletteCommand(f"mailbox: {b.action.replace('_', ' ')}", b.tooltip,
                           getattr(self, f"action_{b.action}"))
            for b in self.BINDINGS if isinstance(b, Binding) and b.action != "back"
        ]  # fmt: skip

    # -- reading -------------------------------------------------------------------------

    def load(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="mailboxes-load")
    def _load(self) -> None:
        def read(session: Any, actor: UserRecord) -> tuple[list[MailboxRecord], list[str]]:
            names = [d.domain for d in domains.list_domains(session, actor)]
            return mailboxes.list_mailboxes(session, actor), names

        try:
            records, names = self.helpdesk.data.read(read)
        except HelpdeskError as error:
            self.post_message(ActionDone(error.message, ok=False))
            return
        self.post_message(MailboxesLoaded(records, names))

    def on_mailboxes_loaded(self, message: MailboxesLoaded) -> None:
        table = self.query_one(DataTable)
        keep = self.selected
        self.records, self.domains = message.records, message.domains
        table.clear()
        for record in self.records:
            table.add_row(*row_cells(record), key=str(record.id))
        if keep is not None:
            for index, record in enumerate(self.records):
                if record.id == keep.id:
                    table.move_cursor(row=index)
        self._show_detail()
        if not self.loaded:
            self.loaded = True
            self._set_status(self._count_text())
            if self.start == "create":
                self.action_create()

    def _count_text(self) -> str:
        count = len(self.records)
        return f"{count} mailbox{'' if count == 1 else 'es'} · n new · ? all keys"

    @property
    def selected(self) -> MailboxRecord | None:
        table = self.query_one(DataTable)
        if not self.records or not 0 <= table.cursor_row < len(self.records):
            return None
        return self.records[table.cursor_row]

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._show_detail()

    @on(DataTable.RowSelected)
    def _selected(self) -> None:
        self.action_alias()

    def _show_detail(self) -> None:
        self.query_one("#mailbox-detail", Static).update(detail_text(self.selected))
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in NEEDS_ROW and self.is_mounted and self.selected is None:
            return None  # shown, disabled: nothing to act on
        return True

    def on_data_changed(self, _message: DataChanged) -> None:
        self.load()

    # -- writing -------------------------------------------------------------------------

    def _set_status(self, text: str, *, ok: bool = True) -> None:
        self.query_one("#admin-status", Static).update(safe_text(text, "" if ok else "bold red"))

    def on_action_done(self, message: ActionDone) -> None:
        self._set_status(message.text, ok=message.ok)
        self.load()

    @work(thread=True, exit_on_error=False, group="mailboxes-write")
    def write(self, work: Work, done: Callable[[Any], str]) -> None:
        try:
            result = self.helpdesk.data.write(work)
        except HelpdeskError as error:
            self.post_message(ActionDone(error.message, ok=False))
            return
        self.post_message(ActionDone(done(result)))

    def _address(self) -> str:
        record = self.selected
        assert record is not None  # check_action disables the key without a row
        return record.email_address

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_refresh(self) -> None:
        self.load()

    def action_create(self) -> None:
        self.app.push_screen(
            forms.mailbox_form(self.domains, self.helpdesk.data.settings), self._created
        )

    def _created(self, record: object) -> None:
        if isinstance(record, MailboxRecord):
            self._set_status(f"created {record.email_address}: pending until verified")
            self.load()
            self.app.push_screen(MailboxAliasScreen(record, created=True))

    def action_edit(self) -> None:
        record = self.selected
        if record is not None:
            form = forms.mailbox_form(self.domains, self.helpdesk.data.settings, record)
            self.app.push_screen(form, self._saved)

    def _saved(self, record: object) -> None:
        if record is not None:
            address = getattr(record, "email_address", None) or getattr(record, "mailbox", "")
            self._set_status(f"saved {address}")
            self.load()

    def action_alias(self) -> None:
        record = self.selected
        if record is not None:
            self.app.push_screen(MailboxAliasScreen(record))

    def action_copy_alias(self) -> None:
        record = self.selected
        if record is not None:
            self._set_status(copy_alias(self.app, record.alias))

    def action_verify(self) -> None:
        form = forms.verify_form(self.helpdesk.data.settings, self._address())
        self.app.push_screen(form, self._verified)

    def _verified(self, result: object) -> None:
        if isinstance(result, VerificationRecord):
            self._set_status(result.message, ok=result.verified)
            self.load()

    def action_resend_code(self) -> None:
        settings, address = self.helpdesk.data.settings, self._address()
        self.write(lambda s, a: mailboxes.resend_code(s, settings, a, address),
                   lambda r: r.message)  # fmt: skip

    def action_test(self) -> None:
        settings, address = self.helpdesk.data.settings, self._address()
        self.write(
            lambda s, a: mailboxes.send_test(s, settings, a, address),
            lambda r: (
                f"test mail queued to {r.mailbox}: binding shows ok when it comes back "
                "through the forwarding rule to the alias"
            ),
        )

    def action_dns(self) -> None:
        record = self.selected
        if record is not None:
            self.app.push_screen(DnsCheckScreen(record.domain))

    def action_transport(self) -> None:
        self._read_settings("transport")

    def action_signature(self) -> None:
        self._read_settings("signature")

    def action_autoresponder(self) -> None:
        self._read_settings("autoresponder")

    def action_webhook(self) -> None:
        self._read_settings("webhook")

    def action_access(self) -> None:
        record = self.selected
        if record is not None:
            self.app.push_screen(forms.access_form(record), self._saved)

    def _read_settings(self, kind: str) -> None:
        self._read(kind, self._address())

    @work(thread=True, exit_on_error=False, group="mailboxes-read")
    def _read(self, kind: str, address: str) -> None:
        try:
            current = self.helpdesk.data.read(READERS[kind](address))
        except HelpdeskError as error:
            self.post_message(ActionDone(error.message, ok=False))
            return
        self.post_message(SettingsRead(kind, current))

    def on_settings_read(self, message: SettingsRead) -> None:
        self.app.push_screen(BUILDERS[message.kind](message.current), self._saved)  # type: ignore[operator]

    def action_activate(self) -> None:
        address = self._address()
        self.write(lambda s, a: mailboxes.activate(s, a, address),
                   lambda r: f"{r.email_address} is {r.status}")  # fmt: skip

    def action_deactivate(self) -> None:
        address = self._address()
        self.write(lambda s, a: mailboxes.deactivate(s, a, address),
                   lambda r: f"{r.email_address} is {r.status}: it keeps its history")  # fmt: skip

    def action_delete(self) -> None:
        address = self._address()
        question = Text("Delete mailbox ", style="bold", end="")
        question.append_text(safe_text(address, "bold", one_line=True))
        question.append("? This cannot be undone; its conversations stay readable.")

        def answered(yes: bool | None) -> None:
            if yes:
                self.write(lambda s, a: mailboxes.delete(s, a, address),
                           lambda r: f"deleted {r.email_address}")  # fmt: skip

        self.app.push_screen(ConfirmScreen(question), answered)


def palette_commands(app: App[Any]) -> list[PaletteCommand]:
    """The app-wide entries that open this screen (collected by the admin menu)."""
    return [
        PaletteCommand("mailbox: create", "Create a mailbox (pending until verified)",
                       lambda: app.push_screen(MailboxesScreen(start="create"))),
        PaletteCommand("mailbox: list", "Every mailbox with its status and last mail",
                       lambda: app.push_screen(MailboxesScreen())),
    ]  # fmt: skip
