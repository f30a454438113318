"""A domain's DNS check (F2) as a pass / fail table with the exact records to publish."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Static

from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.records import DomainCheckRecord
from tui_helpdesk.services import domain_check
from tui_helpdesk.tui.host import host
from tui_helpdesk.tui.widgets.safe_text import safe_text

STATUS_STYLES = {"pass": "bold green", "fail": "bold red", "missing": "bold red",
                 "temperror": "bold yellow"}  # fmt: skip


def check_table(results: list[DomainCheckRecord]) -> Table:
    """One row per check; what is published comes from DNS (untrusted), shown literally."""
    table = Table(expand=True, show_lines=True, header_style="bold")
    table.add_column("Check", no_wrap=True)
    table.add_column("Result", no_wrap=True)
    table.add_column("Found / to publish", ratio=1, overflow="fold")
    for result in results:
        detail = Text(end="")
        detail.append_text(safe_text(result.name, "dim", one_line=True))
        for found in result.found:
            detail.append("\nfound: ", style="dim")
            detail.append_text(safe_text(found, one_line=True))
        if result.publish:
            detail.append("\npublish: ", style="bold")
            detail.append_text(safe_text(result.publish, "bold", one_line=True))
        if result.explanation:
            detail.append("\n")
            detail.append_text(safe_text(result.explanation))
        table.add_row(result.check.upper(), Text(result.status, STATUS_STYLES.get(result.status,
                      "")), detail)  # fmt: skip
    return table


class ChecksLoaded(Message):
    def __init__(self, results: list[DomainCheckRecord] | None, error: str = "") -> None:
        super().__init__()
        self.results = results
        self.error = error


class DnsCheckScreen(ModalScreen[None]):
    """Runs the four checks of one domain in a worker (DNS may take seconds) and shows them."""

    BINDINGS = [
        Binding("escape,q", "close", "Close", id="dns.close", tooltip="Back to the list"),
        Binding("r", "recheck", "Check again", id="dns.recheck", tooltip="Ask the DNS again"),
    ]

    def __init__(self, domain: str) -> None:
        super().__init__(id="dns-check", classes="field-form")
        self.domain = domain

    def compose(self) -> ComposeResult:
        with Vertical(classes="form-dialog"):
            title = Text("DNS check of ", style="bold", end="")
            title.append_text(safe_text(self.domain, "bold", one_line=True))
            yield Static(title, classes="form-title")
            with VerticalScroll(classes="form-fields"):
                yield Static(Text("Asking the DNS…", style="dim"), id="dns-results")
            yield Static(Text("r check again · escape close", style="dim"), classes="form-keys")

    def on_mount(self) -> None:
        self.action_recheck()

    def action_recheck(self) -> None:
        self.query_one("#dns-results", Static).update(Text("Asking the DNS…", style="dim"))
        self._check()

    @work(thread=True, exclusive=True, exit_on_error=False, group="dns-check")
    def _check(self) -> None:
        data = host(self).data
        try:
            [name] = data.read(
                lambda session, actor: domain_check.domains_to_check(session, actor, self.domain)
            )
            results = domain_check.check_domain(name, data.settings)
        except HelpdeskError as error:
            self.post_message(ChecksLoaded(None, error.message))
            return
        self.post_message(ChecksLoaded(results))

    def on_checks_loaded(self, message: ChecksLoaded) -> None:
        shown = self.query_one("#dns-results", Static)
        if message.results is None:
            shown.update(safe_text(message.error, "bold red"))
            return
        shown.update(check_table(message.results))

    def action_close(self) -> None:
        self.dismiss(None)
