"""a on a message: its attachments (name, type, size) and saving one to a path the user picks.

The path starts as ~/Downloads (else ~) joined with the attachment's name made safe
(services.conversations.source.safe_filename): a name from mail never chooses the folder. The
user may edit the whole path; an existing file is never overwritten.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.records import AttachmentRecord, MessageRecord
from tui_helpdesk.services.conversations import source
from tui_helpdesk.tui.format import size
from tui_helpdesk.tui.host import host
from tui_helpdesk.tui.widgets.message_view import attachment_line
from tui_helpdesk.tui.widgets.safe_text import safe_text


def download_dir() -> Path:
    downloads = Path.home() / "Downloads"
    return downloads if downloads.is_dir() else Path.home()


def save_bytes(path: Path, data: bytes) -> None:
    """Write a new file (never over an existing one: "x" mode)."""
    with path.open("xb") as file:
        file.write(data)


class AttachmentsScreen(ModalScreen[None]):
    """Pick an attachment (enter), edit where it goes, enter again saves it."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="attachments.close", tooltip="Back to the thread"),
    ]

    def __init__(self, message: MessageRecord) -> None:
        super().__init__(id="attachments")
        self.message = message
        self.folder = download_dir()

    def compose(self) -> ComposeResult:
        with Vertical(id="attachments-dialog"):
            yield Static(Text("Attachments", style="bold"), id="attachments-title")
            yield OptionList(
                *(Option(attachment_line(a), id=str(a.id)) for a in self.message.attachments),
                id="attachments-list",
            )
            yield Static(Text("Save to (enter saves, escape closes):", style="dim"))
            yield Input(id="attachments-path", placeholder="path of the new file")
            yield Static("", id="attachments-status")

    def on_mount(self) -> None:
        self.query_one(OptionList).highlighted = 0
        self.query_one(OptionList).focus()

    @property
    def chosen(self) -> AttachmentRecord:
        index = self.query_one(OptionList).highlighted or 0
        return self.message.attachments[index]

    @on(OptionList.OptionHighlighted)
    def _propose(self) -> None:
        name = source.safe_filename(self.chosen.filename)
        self.query_one("#attachments-path", Input).value = str(self.folder / name)

    @on(OptionList.OptionSelected)
    def _edit_path(self) -> None:
        path = self.query_one("#attachments-path", Input)
        path.focus()
        path.cursor_position = len(path.value)

    @on(Input.Submitted, "#attachments-path")
    def _submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            self._say("give the path of the file to write", error=True)
            return
        self.save(self.chosen, Path(event.value.strip()).expanduser())

    @work(thread=True, exclusive=True, exit_on_error=False, group="attachment-save")
    def save(self, attachment: AttachmentRecord, path: Path) -> None:
        try:
            _name, data = host(self).data.read(
                lambda session, actor: source.attachment_content(session, actor, attachment.id)
            )
            save_bytes(path, data)
        except HelpdeskError as error:
            self.app.call_from_thread(self._say, error.message, error=True)
        except FileExistsError:
            self.app.call_from_thread(self._say, f"{path} exists: choose another name", error=True)
        except OSError as error:
            self.app.call_from_thread(
                self._say, f"cannot write {path}: {error.strerror or error}", error=True
            )
        else:
            self.app.call_from_thread(self._saved, path, len(data))

    def _saved(self, path: Path, count: int) -> None:
        self.app.notify(f"Saved {size(count)} to {path}", title="Attachment", markup=False)
        self.dismiss(None)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.query_one("#attachments-status", Static).update(
            safe_text(text, "bold red" if error else "")
        )

    def action_close(self) -> None:
        self.dismiss(None)
