"""Small dialogs of the conversation actions: closing (an optional note, the close notice) and
a one-line prompt (tags)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Static


@dataclass(frozen=True)
class CloseChoice:
    note: str | None
    notify: bool


class CloseScreen(ModalScreen[CloseChoice | None]):
    """Close: why (an internal note, never sent; optional) and whether to mail the notice."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="close.cancel", tooltip="Do not close"),
    ]

    def __init__(self, count: int) -> None:
        super().__init__(classes="picker")
        self.count = count

    def compose(self) -> ComposeResult:
        what = "this conversation" if self.count == 1 else f"{self.count} conversations"
        with Vertical(classes="dialog"):
            yield Static(Text(f"Close {what}", style="bold"), classes="dialog-title")
            yield Input(placeholder="internal note (optional, never sent)", id="close-note")
            yield Checkbox("Mail the customer the close notice (when the mailbox has one on)",
                           value=True, id="close-notify")  # fmt: skip
            yield Static(Text("enter closes · escape cancels", style="dim"))

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted, "#close-note")
    def _submitted(self, event: Input.Submitted) -> None:
        note = event.value.strip() or None
        self.dismiss(CloseChoice(note, self.query_one(Checkbox).value))

    def action_cancel(self) -> None:
        self.dismiss(None)


class PromptScreen(ModalScreen[str | None]):
    """One line of text; enter gives it, escape cancels."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="prompt.cancel", tooltip="Cancel"),
    ]

    def __init__(self, title: str, placeholder: str, hint: str = "") -> None:
        super().__init__(classes="picker")
        self.title_text, self.placeholder, self.hint = title, placeholder, hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.title_text, style="bold"), classes="dialog-title")
            yield Input(placeholder=self.placeholder, id="prompt-input")
            if self.hint:
                yield Static(Text(self.hint, style="dim"))

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted, "#prompt-input")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
