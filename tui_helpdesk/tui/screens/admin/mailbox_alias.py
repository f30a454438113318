"""A mailbox's alias shown large with a one-key copy, and how to forward mail to it (F11, F16).

Shown right after a mailbox is created (and on enter in the list). The copy uses OSC 52
(App.copy_to_clipboard), which many terminals support, some only when allowed, some not at
all, and nothing tells the app: so the alias is always shown in full, selectable with the
mouse, with a note saying so.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane

from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.records import MailboxRecord, VerificationRecord
from tui_helpdesk.services import mailboxes
from tui_helpdesk.tui.commands import PaletteCommand
from tui_helpdesk.tui.host import Helpdesk, host
from tui_helpdesk.tui.screens.admin import forwarding
from tui_helpdesk.tui.screens.admin.mailbox_forms import verify_form
from tui_helpdesk.tui.widgets.safe_text import safe_text

FALLBACK = ("c copies it (OSC 52). Nothing pasted? Your terminal may not pass OSC 52 on: "
            "select the alias above with the mouse (shift+drag in most terminals).")  # fmt: skip


def copy_alias(app: App[Any], alias: str) -> str:
    """Copy with OSC 52; the status text says so and how to copy when the terminal did not."""
    app.copy_to_clipboard(alias)
    return (f"copied {alias} to the clipboard (OSC 52); if nothing pastes, select it with "
            "the mouse")  # fmt: skip


class TestQueued(Message):
    def __init__(self, text: str, *, ok: bool = True) -> None:
        super().__init__()
        self.text = text
        self.ok = ok


class MailboxAliasScreen(Screen[None]):
    """The alias, the copy key, and step-by-step forwarding for three kinds of mail server."""

    CSS_PATH = "../../styles/admin.tcss"
    BINDINGS = [
        Binding("escape", "back", "Back", id="alias.back", tooltip="Back to the mailboxes"),
        Binding("c", "copy", "Copy alias", id="alias.copy",
                tooltip="Copy the alias to the clipboard (OSC 52)"),
        Binding("v", "verify", "Verify", id="alias.verify",
                tooltip="Enter the code mailed to the address"),
        Binding("t", "test", "Test mail", id="alias.test",
                tooltip="Send a test mail through the forwarding rule"),
        Binding("1", "provider('google')", "Google", id="alias.google",
                tooltip="Steps for Google Workspace"),
        Binding("2", "provider('microsoft')", "Microsoft", id="alias.microsoft",
                tooltip="Steps for Microsoft 365"),
        Binding("3", "provider('mta')", "Postfix", id="alias.mta",
                tooltip="Steps for Postfix and /etc/aliases"),
    ]  # fmt: skip

    def __init__(self, mailbox: MailboxRecord, *, created: bool = False) -> None:
        super().__init__(id="mailbox-alias")
        self.mailbox = mailbox
        self.created = created

    @property
    def helpdesk(self) -> Helpdesk:
        return host(self)

    def compose(self) -> ComposeResult:
        box = self.mailbox
        title = Text("Mailbox created: " if self.created else "Mailbox ", style="bold", end="")
        title.append_text(safe_text(box.email_address, "bold", one_line=True))
        title.append(f"  ({box.status})", style="dim")
        yield Static(title, classes="admin-title")
        with VerticalScroll(id="alias-body"):
            yield Static(Text("Forward its mail to this alias:", style="dim"), id="alias-label")
            yield Static(Text(box.alias, style="bold"), id="alias-big")
            yield Static(Text(FALLBACK, style="dim"), id="alias-fallback")
            with TabbedContent(id="forwarding"):
                for provider in forwarding.PROVIDERS:
                    with TabPane(forwarding.TITLES[provider], id=f"steps-{provider}"):
                        steps = forwarding.instructions(box, self.helpdesk.data.settings, provider)
                        yield Static(Text(steps), classes="steps")
        yield Static(self._hint(), id="admin-status")
        yield Footer()

    def _hint(self) -> Text:
        if self.mailbox.status == "pending":
            return Text("Then v enters the code mailed to the address · t sends a test mail",
                        style="yellow")  # fmt: skip
        return Text("t sends a test mail through the forwarding rule", style="dim")

    def _set_status(self, text: str, *, ok: bool = True) -> None:
        self.query_one("#admin-status", Static).update(safe_text(text, "" if ok else "bold red"))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_copy(self) -> None:
        self._set_status(copy_alias(self.app, self.mailbox.alias))

    def action_provider(self, provider: str) -> None:
        self.query_one(TabbedContent).active = f"steps-{provider}"

    def action_verify(self) -> None:
        form = verify_form(self.helpdesk.data.settings, self.mailbox.email_address)
        self.app.push_screen(form, self._verified)

    def _verified(self, result: object) -> None:
        if isinstance(result, VerificationRecord):
            self._set_status(result.message, ok=result.verified)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "verify" and self.mailbox.status != "pending":
            return None
        return True

    @work(thread=True, exit_on_error=False, group="alias-test")
    def action_test(self) -> None:
        settings, address = self.helpdesk.data.settings, self.mailbox.email_address
        try:
            sent = self.helpdesk.data.write(
                lambda s, a: mailboxes.send_test(s, settings, a, address)
            )
        except HelpdeskError as error:
            self.post_message(TestQueued(error.message, ok=False))
            return
        self.post_message(TestQueued(f"test mail queued to {sent.mailbox}: the binding shows "
                                     "ok when it comes back to the alias"))  # fmt: skip

    def on_test_queued(self, message: TestQueued) -> None:
        self._set_status(message.text, ok=message.ok)

    def commands(self) -> list[PaletteCommand]:
        steps = [
            PaletteCommand(
                f"mailbox: {forwarding.TITLES[p]} steps",
                f"Forwarding for {p}",
                partial(self.action_provider, p),
            )
            for p in forwarding.PROVIDERS
        ]
        return [
            PaletteCommand("mailbox: copy alias", "Copy the alias (OSC 52)", self.action_copy),
            PaletteCommand("mailbox: verify", "Enter the code mailed to the address",
                           self.action_verify),
            PaletteCommand("mailbox: send test mail", "Test the forwarding rule",
                           self.action_test),
            *steps,
        ]  # fmt: skip
