"""h and v on a message: every header field, or the raw source, in a scrollable read-only view.

The raw source is shown as escaped text: bytes that are not UTF-8 as \\xNN, and every control
or format character (escape sequences, bidi overrides, NUL...) as \\xNN or \\uNNNN, so what the
sender hid is visible and nothing reaches the terminal as a command. A read-only TextArea draws
only the visible lines, so a message of megabytes scrolls as quickly as a short one.
"""

from __future__ import annotations

import unicodedata

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea

from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.records import MessageRecord, MessageSourceRecord
from tui_helpdesk.services.conversations import source
from tui_helpdesk.terminal_text import clean
from tui_helpdesk.tui.host import host
from tui_helpdesk.tui.widgets.safe_text import safe_text

MAX_SOURCE_BYTES = 5_000_000  # shown; the rest is said to be cut


def visible_controls(text: str) -> str:
    """Every control and format character but newline and tab written as an escape."""
    out = []
    for char in text:
        if char in "\n\t" or unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            out.append(char)
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}")
    return "".join(out)


def raw_text(raw: bytes | None) -> str:
    if raw is None:
        return "(no source stored)"
    shown = raw[:MAX_SOURCE_BYTES].replace(b"\r\n", b"\n")
    text = visible_controls(shown.decode("utf-8", "backslashreplace"))
    if len(raw) > MAX_SOURCE_BYTES:
        text += f"\n… {len(raw) - MAX_SOURCE_BYTES:,} more bytes not shown"
    return text


def headers_text(found: MessageSourceRecord) -> str:
    if not found.headers:
        return "(no header stored)"
    lines = []
    for name, value in found.headers:
        value = visible_controls(value)
        lines.append(f"{clean(name, one_line=True)}: {value}" if name else f"?? {value}")
    return "\n".join(lines)


class SourceLoaded(Message):
    def __init__(self, found: MessageSourceRecord | None, error: str) -> None:
        super().__init__()
        self.found = found
        self.error = error


class SourceScreen(ModalScreen[None]):
    """Headers ("headers") or raw source ("raw") of one message; h and v switch."""

    BINDINGS = [
        Binding("escape,q", "close", "Close", id="source.close", tooltip="Back to the thread"),
        Binding("h", "show('headers')", "Headers", id="source.headers",
                tooltip="Every header field"),
        Binding("v", "show('raw')", "Source", id="source.raw", tooltip="The raw message"),
    ]  # fmt: skip

    def __init__(self, what: str, message: MessageRecord) -> None:
        super().__init__(id="source")
        self.what = what
        self.message = message
        self.found: MessageSourceRecord | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="source-dialog"):
            yield Static(self._title(), id="source-title")
            yield TextArea("Loading…", read_only=True, soft_wrap=False, id="source-text",
                           show_line_numbers=False)  # fmt: skip
            yield Static(Text("h headers · v source · escape closes", style="dim"))

    def _title(self) -> Text:
        title = Text("Header of " if self.what == "headers" else "Source of ", style="bold")
        title.append_text(safe_text(self.message.subject or "(no subject)", "bold", one_line=True))
        title.append(f"  ({self.message.raw_size:,} bytes)", style="dim")
        return title

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="source-load")
    def load(self) -> None:
        message_id = self.message.id
        try:
            found = host(self).data.read(
                lambda session, actor: source.message_source(session, actor, message_id)
            )
        except HelpdeskError as error:
            self.post_message(SourceLoaded(None, error.message))
            return
        self.post_message(SourceLoaded(found, ""))

    def on_source_loaded(self, message: SourceLoaded) -> None:
        self.found = message.found
        self._fill(message.error)

    def _fill(self, error: str = "") -> None:
        area = self.query_one("#source-text", TextArea)
        if self.found is None:
            area.load_text(clean(error) or "Loading…")
            return
        text = headers_text(self.found) if self.what == "headers" else raw_text(self.found.raw)
        area.load_text(text)
        area.scroll_home(animate=False)

    def action_show(self, what: str) -> None:
        self.what = what
        self.query_one("#source-title", Static).update(self._title())
        self._fill()

    def action_close(self) -> None:
        self.dismiss(None)
