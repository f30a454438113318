"""Yes / no before something that cannot be undone (a mailbox or a domain deleted)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses True on y, False on n or escape."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes", tooltip="Do it"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no", tooltip="Change nothing"),
    ]

    def __init__(self, question: Text) -> None:
        super().__init__(id="confirm", classes="field-form")
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="form-dialog"):
            yield Static(self.question, classes="form-title")
            yield Static(Text("y yes · n no", style="dim"), classes="form-keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
