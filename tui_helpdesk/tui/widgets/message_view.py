"""One message of a thread: who, when, subject, the text body and the attachment list."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from tui_helpdesk.records import AttachmentRecord, MessageRecord
from tui_helpdesk.tui.format import size, when
from tui_helpdesk.tui.widgets.safe_text import safe_text

# A body beyond this is cut for display (the stored message keeps every byte): rendering a
# megabyte of text in one Static would stall the screen for seconds.
MAX_BODY_CHARS = 100_000


def field_line(label: str, value: str) -> Text:
    line = Text(f"{label}: ", style="bold", end="")
    line.append_text(safe_text(value, one_line=True))
    return line


def sender_line(message: MessageRecord) -> str:
    if message.from_name and message.from_address:
        return f"{message.from_name} <{message.from_address}>"
    return message.from_address or message.from_name or "(unknown sender)"


def header_text(message: MessageRecord) -> Text:
    lines = [
        field_line("From", sender_line(message)),
        field_line("Date", when(message.sent_at or message.received_at)),
        field_line("Subject", message.subject or "(no subject)"),
    ]
    if message.to:
        lines.insert(1, field_line("To", message.to))
    if message.cc:
        lines.insert(2, field_line("Cc", message.cc))
    return Text("\n", end="").join(lines)


def body_text(message: MessageRecord) -> Text:
    body = message.text_body.rstrip()
    if not body:
        return Text("(no text body)", style="italic", end="")
    text = safe_text(body[:MAX_BODY_CHARS])
    if len(body) > MAX_BODY_CHARS:
        hidden = len(body) - MAX_BODY_CHARS
        text.append(f"\n… {hidden:,} more characters not shown", style="italic")
    return text


def attachment_line(attachment: AttachmentRecord) -> Text:
    line = Text("• ", end="")
    line.append_text(safe_text(attachment.filename or "(unnamed)", one_line=True))
    line.append("  ")
    line.append_text(safe_text(attachment.content_type, "dim", one_line=True))
    line.append(f"  {size(attachment.size)}", style="dim")
    if attachment.disposition == "inline":
        line.append("  inline", style="dim")
    return line


class MessageView(Vertical):
    """Displays a MessageRecord; every string from the mail goes through safe_text."""

    def __init__(self, message: MessageRecord, *, id: str | None = None) -> None:
        super().__init__(id=id, classes=f"message {message.direction}")
        self.message = message

    def compose(self) -> ComposeResult:
        yield Static(header_text(self.message), classes="message-header")
        yield Static(body_text(self.message), classes="message-body")
        if self.message.attachments:
            lines = [attachment_line(a) for a in self.message.attachments]
            yield Static(Text("\n", end="").join(lines), classes="message-attachments")
