"""Dialogs the admin screens share: a form that runs a service, a picker and a yes / no question.

The form runs its service call in a worker thread through `data.write` (or `data.read` for a
dry run). A refusal keeps the form open, shows the service's own message beside the field it
names (or under the form) and changes nothing; success closes the form with the record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option

from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.records import UserRecord
from tui_helpdesk.tui.host import host
from tui_helpdesk.tui.widgets.safe_text import safe_text

DIALOG_CSS = """
{screen} { align: center middle; }
{screen} .form-dialog {
    width: 90%; max-width: 100; height: auto; max-height: 100%;
    padding: 0 1; border: round $primary; background: $surface;
}
{screen} .form-title, {screen} .form-hint { height: auto; }
{screen} .form-fields { height: auto; }
{screen} .form-fields { margin: 1 0; }
{screen} .form-row { height: auto; }
{screen} .form-label { width: 16; }
{screen} .form-input { width: 1fr; background: $boost; }
{screen} .form-input:focus { background: $primary 20%; }
{screen} TextArea.form-input { height: 5; }
{screen} .form-error { height: auto; display: none; padding-left: 16; }
{screen} #form-message { padding-left: 0; }
{screen} .form-error.shown { display: block; }
{screen} .form-result { height: auto; margin-top: 1; }
{screen} #picker-options { height: auto; max-height: 16; }
"""

# What a form submits: (session, actor) -> record, made from the values typed.
Work = Callable[[Any, UserRecord], Any]


@dataclass(frozen=True)
class Field:
    """One form field. `name` is the service's field name: its refusals show beside it."""

    name: str
    label: str
    value: str = ""
    choices: tuple[str, ...] = ()  # a drop-down instead of a text box
    multiline: bool = False
    placeholder: str = ""
    also: tuple[str, ...] = ()  # other service field names whose refusals show here


class FormModal(ModalScreen[Any]):
    """A titled form; ctrl+s (or enter in a one-line box) runs `submit(values)` as a service."""

    DEFAULT_CSS = DIALOG_CSS.replace("{screen}", "FormModal")

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="form.cancel", tooltip="Close without saving"),
        Binding("ctrl+s", "submit", "Save", id="form.submit",
                tooltip="Run it: the service checks every value"),
    ]  # fmt: skip

    def __init__(
        self,
        title: str,
        fields: Sequence[Field],
        submit: Callable[[dict[str, str]], Work],
        *,
        hint: str = "",
        dry_run: bool = False,
        show_result: Callable[[Any], Text] | None = None,
        form_id: str = "form",
    ) -> None:
        """`dry_run` reads instead of writing; with `show_result` the form stays open and
        shows each result below (a preview), else it closes with the record."""
        super().__init__(id=form_id, classes="admin-form")
        self.form_title = title
        self.fields = list(fields)
        self.submit = submit
        self.hint = hint
        self.dry_run = dry_run
        self.show_result = show_result
        self.busy = False
        self.result: Any = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="form-dialog"):
            yield Static(Text(self.form_title, style="bold"), classes="form-title")
            with VerticalScroll(classes="form-fields"):
                for field in self.fields:
                    with Horizontal(classes="form-row"):
                        yield Label(field.label, classes="form-label")
                        yield self._editor(field)
                    yield Static("", id=f"error-{field.name}", classes="form-error")
                yield Static("", id="form-result", classes="form-result")
            yield Static("", id="form-message", classes="form-error")
            hint = self.hint or "ctrl+s saves · escape closes"
            yield Static(Text(hint, style="dim"), classes="form-hint")

    def _editor(self, field: Field) -> Any:
        if field.choices:
            return Select(
                [(choice, choice) for choice in field.choices],
                value=field.value if field.value in field.choices else Select.BLANK,
                allow_blank=field.value not in field.choices,
                id=f"field-{field.name}",
                classes="form-input",
                compact=True,
            )
        if field.multiline:
            area = TextArea(
                field.value, id=f"field-{field.name}", classes="form-input", compact=True
            )
            area.show_line_numbers = False
            return area
        return Input(
            field.value,
            placeholder=field.placeholder,
            id=f"field-{field.name}",
            classes="form-input",
            select_on_focus=False,
            compact=True,
        )

    def values(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for field in self.fields:
            widget = self.query_one(f"#field-{field.name}")
            if isinstance(widget, Select):
                value = widget.value
                found[field.name] = "" if value is Select.BLANK else str(value)
            elif isinstance(widget, TextArea):
                found[field.name] = widget.text
            elif isinstance(widget, Input):
                found[field.name] = widget.value
        return found

    @on(Input.Submitted)
    def _entered(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def action_cancel(self) -> None:
        self.dismiss(self.result if self.show_result else None)

    def action_submit(self) -> None:
        if self.busy:
            return
        self.busy = True
        self._run(self.values())

    @work(thread=True, exit_on_error=False, group="admin-form")
    def _run(self, values: dict[str, str]) -> None:
        data = host(self).data
        try:
            work_ = self.submit(values)  # turning text into the service's shapes may refuse too
            result = data.read(work_) if self.dry_run else data.write(work_)
        except HelpdeskError as error:
            self.app.call_from_thread(self._refused, error)
            return
        except BaseException:
            self.app.call_from_thread(self._done_busy)
            raise
        self.app.call_from_thread(self._succeeded, result)

    def _done_busy(self) -> None:
        self.busy = False

    def _refused(self, error: HelpdeskError) -> None:
        self.busy = False
        self._clear_errors()
        target = self._error_place(error.field)
        target.update(safe_text(error.message, "bold red"))
        target.add_class("shown")

    def _error_place(self, name: str | None) -> Static:
        for field in self.fields:
            if name is not None and name in (field.name, *field.also):
                return self.query_one(f"#error-{field.name}", Static)
        return self.query_one("#form-message", Static)

    def _clear_errors(self) -> None:
        for error in self.query(".form-error").results(Static):
            error.update("")
            error.remove_class("shown")

    def _succeeded(self, result: Any) -> None:
        self.busy = False
        self.result = result
        if self.show_result is None:
            self.dismiss(result)
            return
        self._clear_errors()
        self.query_one("#form-result", Static).update(self.show_result(result))


class PickerModal(ModalScreen[str | None]):
    """Choose one of (value, label) rows; enter picks, escape closes with None."""

    DEFAULT_CSS = DIALOG_CSS.replace("{screen}", "PickerModal")

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="picker.cancel", tooltip="Close, choose nothing"),
    ]

    def __init__(
        self, title: str, choices: Sequence[tuple[str, Text | str]], *, current: str | None = None
    ) -> None:
        super().__init__(classes="admin-form picker")
        self.picker_title = title
        self.choices = list(choices)
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="form-dialog"):
            yield Static(Text(self.picker_title, style="bold"), classes="form-title")
            if not self.choices:
                yield Static(Text("Nothing to choose from.", style="dim"))
            options = [
                Option(label if isinstance(label, Text) else Text(label), id=value)
                for value, label in self.choices
            ]
            yield OptionList(*options, id="picker-options")
            yield Static(Text("enter chooses · escape closes", style="dim"), classes="form-hint")

    def on_mount(self) -> None:
        found = self.query(OptionList)
        if not found:  # the app closed before the picker was composed
            return
        options = found.first()
        values = [value for value, _ in self.choices]
        if self.current in values:
            options.highlighted = values.index(self.current)
        options.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmModal(ModalScreen[bool]):
    """A yes / no question before something that cannot be undone."""

    DEFAULT_CSS = DIALOG_CSS.replace("{screen}", "ConfirmModal")

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes", tooltip="Do it"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no", tooltip="Leave it as it is"),
    ]

    def __init__(self, question: Text | str) -> None:
        super().__init__(classes="admin-form confirm")
        self.question = question if isinstance(question, Text) else Text(question)

    def compose(self) -> ComposeResult:
        with Vertical(classes="form-dialog"):
            yield Static(self.question, classes="form-title")
            yield Static(Text("y: yes · n or escape: no", style="dim"), classes="form-hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
