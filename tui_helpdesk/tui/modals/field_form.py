"""A form dialog: labelled fields checked as they are typed, saved by one service call.

The check and the save are the services' own: a field whose value a service refuses shows the
service's message beside it, and a refused save changes nothing and keeps the form open with
the message beside the field it names (or under the form when it names none).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static, Switch, TextArea

from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.records import UserRecord
from tui_helpdesk.tui.host import host
from tui_helpdesk.tui.widgets.safe_text import safe_text

Values = dict[str, Any]
Check = Callable[[str, str], object]  # (field, value): raises a HelpdeskError when refused
Save = Callable[[Values], Callable[[Any, UserRecord], object]]  # values -> data.write work
# A saved result that is still a refusal (a wrong verification code is committed, not raised):
# (field, message) keeps the form open with the message; None accepts the result.
Reject = Callable[[object], tuple[str, str] | None]


@dataclass(frozen=True)
class Field:
    """One row of the form. kind: text | secret | area | switch | choice."""

    name: str
    label: str
    value: Any = ""
    kind: str = "text"
    placeholder: str = ""
    choices: tuple[str, ...] = ()


class FormRefused(Message):
    def __init__(self, error: HelpdeskError) -> None:
        super().__init__()
        self.error = error


class FormSaved(Message):
    def __init__(self, result: object) -> None:
        super().__init__()
        self.result = result


class FieldForm(ModalScreen[object | None]):
    """Dismisses with what the save returned (a record), or None when cancelled."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="form.save", tooltip="Save with the service"),
        Binding("escape", "cancel", "Cancel", id="form.cancel", tooltip="Close, change nothing"),
    ]

    def __init__(
        self,
        title: str,
        fields: list[Field],
        save: Save,
        *,
        check: Check | None = None,
        reject: Reject | None = None,
        intro: str = "",
        form_id: str = "field-form",
    ) -> None:
        super().__init__(id=form_id, classes="field-form")
        self.title_text = title
        self.fields = fields
        self.save = save
        self.check = check
        self.reject = reject
        self.intro = intro
        self.saving = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="form-dialog"):
            yield Static(Text(self.title_text, style="bold"), classes="form-title")
            if self.intro:
                yield Static(Text(self.intro, style="dim"), classes="form-intro")
            with VerticalScroll(classes="form-fields", can_focus=False):
                for field in self.fields:
                    with Horizontal(classes=f"form-row form-row-{field.kind}"):
                        yield Label(field.label, classes="form-label")
                        yield self._editor(field)
                    yield Static("", id=f"error-{field.name}", classes="form-error")
            yield Static("", id="form-error", classes="form-error")
            yield Static(Text("ctrl+s save · escape cancel", style="dim"), classes="form-keys")

    def _editor(self, field: Field) -> Input | TextArea | Switch | Select[str]:
        name = f"field-{field.name}"
        if field.kind == "area":
            return TextArea(str(field.value), id=name, soft_wrap=True, show_line_numbers=False)
        if field.kind == "switch":
            return Switch(bool(field.value), id=name)
        if field.kind == "choice":
            options = [(choice, choice) for choice in field.choices]
            return Select(options, value=field.value, allow_blank=False, id=name, compact=True)
        return Input(
            str(field.value), placeholder=field.placeholder, id=name, compact=True,
            password=field.kind == "secret",
        )  # fmt: skip

    def on_mount(self) -> None:
        for error in self.query(".form-error"):
            error.display = False
        if self.fields:
            self.query_one(f"#field-{self.fields[0].name}").focus()

    def values(self) -> Values:
        found: Values = {}
        for field in self.fields:
            widget = self.query_one(f"#field-{field.name}")
            if isinstance(widget, TextArea):
                found[field.name] = widget.text
            else:
                found[field.name] = widget.value  # type: ignore[attr-defined]
        return found

    def show_error(self, field: str | None, message: str) -> None:
        """The message beside `field` (under the form when no such field); "" clears it."""
        names = {f.name for f in self.fields}
        target = self.query_one(f"#error-{field}" if field in names else "#form-error", Static)
        target.update(safe_text(message, "bold red"))
        target.display = bool(message)

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        if self.check is None or event.input.id is None:
            return
        name = event.input.id.removeprefix("field-")
        try:
            self.check(name, event.value)
        except HelpdeskError as error:
            self.show_error(name, error.message)
        else:
            self.show_error(name, "")

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        if self.saving:
            return
        self.saving = True
        for field in self.fields:
            self.show_error(field.name, "")
        self.show_error(None, "")
        self._save(self.values())

    def action_cancel(self) -> None:
        self.dismiss(None)

    @work(thread=True, exit_on_error=False, group="form-save")
    def _save(self, values: Values) -> None:
        try:
            result = host(self).data.write(self.save(values))
        except HelpdeskError as error:
            self.post_message(FormRefused(error))
            return
        self.post_message(FormSaved(result))

    def on_form_refused(self, message: FormRefused) -> None:
        self.saving = False
        self.show_error(message.error.field, message.error.message)

    def on_form_saved(self, message: FormSaved) -> None:
        refused = self.reject(message.result) if self.reject else None
        if refused is not None:
            self.saving = False
            self.show_error(*refused)
            return
        self.dismiss(message.result)
