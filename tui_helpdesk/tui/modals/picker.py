"""Choose one of a list read from the services (a member, a queue, a priority), typing to filter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.records import UserRecord
from tui_helpdesk.tui.host import host
from tui_helpdesk.tui.widgets.safe_text import safe_text


@dataclass(frozen=True)
class Choice:
    """`value` is what the picker returns; `label` what it shows (cleaned: it may come from
    mail or from people's names)."""

    value: str
    label: str
    hint: str = ""


Loader = Callable[[Any, UserRecord], list[Choice]]


class PickerScreen(ModalScreen[str | None]):
    """A title, a filter box and the choices; enter picks the highlighted one, escape cancels."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="picker.cancel", tooltip="Choose nothing"),
        Binding("down", "move(1)", "Next", show=False, id="picker.down", tooltip="Next choice"),
        Binding("up", "move(-1)", "Previous", show=False, id="picker.up",
                tooltip="Previous choice"),
    ]  # fmt: skip

    def __init__(self, title: str, choices: list[Choice] | Loader) -> None:
        super().__init__(classes="picker")
        self.title_text = title
        self._source = choices
        self.choices: list[Choice] = []
        self.loaded = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.title_text, style="bold"), classes="dialog-title")
            yield Input(placeholder="type to filter", id="picker-filter")
            yield OptionList(id="picker-options")
            yield Static("", id="picker-error", classes="dialog-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        if callable(self._source):
            self._load(self._source)
        else:
            self._show(self._source)

    @work(thread=True, exit_on_error=False, group="picker")
    def _load(self, loader: Loader) -> None:
        try:
            found = host(self).data.read(loader)
        except HelpdeskError as error:
            self.app.call_from_thread(self._failed, error.message)
            return
        self.app.call_from_thread(self._show, found)

    def _failed(self, message: str) -> None:
        self.query_one("#picker-error", Static).update(safe_text(message, "bold red"))

    def _show(self, choices: list[Choice]) -> None:
        self.choices = choices
        self.loaded = True
        self._filter(self.query_one(Input).value)

    def _filter(self, typed: str) -> None:
        wanted = typed.strip().lower()
        options = self.query_one(OptionList)
        options.clear_options()
        for choice in self.choices:
            if wanted in f"{choice.label} {choice.hint} {choice.value}".lower():
                prompt = safe_text(choice.label, one_line=True)
                if choice.hint:
                    prompt.append("  ")
                    prompt.append_text(safe_text(choice.hint, "dim", one_line=True))
                options.add_option(Option(prompt, id=choice.value))
        if options.option_count:
            options.highlighted = 0

    @on(Input.Changed, "#picker-filter")
    def _typed(self, event: Input.Changed) -> None:
        if self.loaded:
            self._filter(event.value)

    @on(Input.Submitted, "#picker-filter")
    def _submitted(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            self.dismiss(options.get_option_at_index(options.highlighted).id)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        if options.option_count:
            current = options.highlighted or 0
            options.highlighted = max(0, min(options.option_count - 1, current + step))

    def action_cancel(self) -> None:
        self.dismiss(None)
