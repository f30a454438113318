"""One message of a thread as Rich Text: its summary line, its header, the delivery state of
our own mail, the body with quoted history and signature folded, and the attachment list.

Pure functions of a MessageRecord: the thread view (widgets/thread_view.py) turns them into
lines. Every string from mail goes through safe_text (cleaned, never read as markup).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rich.text import Text

from tui_helpdesk.records import AttachmentRecord, MessageRecord
from tui_helpdesk.tui.format import size, when
from tui_helpdesk.tui.widgets.safe_text import safe_text

# A body beyond this is cut for display (the stored message keeps every byte): rendering a
# megabyte of text would stall the screen for seconds.
MAX_BODY_CHARS = 100_000
SNIPPET_CHARS = 120

# "On Tue, 3 Nov 2026, Carol wrote:" and the Outlook forms that start a quoted history.
_ATTRIBUTION = re.compile(r"^(On .{0,200}wrote:|Le .{0,200}a écrit ?:|Am .{0,200}schrieb .*:)$")
_ORIGINAL = re.compile(r"^-{2,} ?(Original Message|Forwarded message|Ursprüngliche Nachricht)")
_OUTLOOK_FROM = re.compile(r"^From: .+$")
_OUTLOOK_NEXT = re.compile(r"^(Sent|Date|To|Subject): ")


@dataclass(frozen=True)
class Part:
    """A run of body lines: "text" is always shown; "quote" and "signature" fold."""

    kind: str
    lines: tuple[str, ...]


def body_parts(body: str) -> list[Part]:
    """The body split into what was written, quoted history and the signature.

    Quoted: lines starting with ">" (with the attribution line before them), and everything
    from an "-----Original Message-----" or an Outlook "From:/Sent:" block on. Signature: from
    the "-- " line (RFC 3676) to the end or to the quoted history.
    """
    lines = body.split("\n")
    kinds = ["text"] * len(lines)
    for index, line in enumerate(lines):
        if _starts_history(lines, index):
            kinds[index:] = ["quote"] * (len(lines) - index)
            break
        if line.startswith(">"):
            kinds[index] = "quote"
            before = index - 1
            while before >= 0 and not lines[before].strip() and kinds[before] == "text":
                before -= 1
            if before >= 0 and _ATTRIBUTION.match(lines[before].strip()):
                kinds[before:index] = ["quote"] * (index - before)
    for index, line in enumerate(lines):
        if line.rstrip("\r") == "-- " and kinds[index] == "text":
            end = kinds.index("quote", index) if "quote" in kinds[index:] else len(lines)
            kinds[index:end] = ["signature"] * (end - index)
            break
    parts: list[Part] = []
    for line, kind in zip(lines, kinds, strict=True):
        if parts and parts[-1].kind == kind:
            parts[-1] = Part(kind, (*parts[-1].lines, line))
        else:
            parts.append(Part(kind, (line,)))
    return parts


def _starts_history(lines: list[str], index: int) -> bool:
    line = lines[index].strip()
    if _ORIGINAL.match(line):
        return True
    following = lines[index + 1].strip() if index + 1 < len(lines) else ""
    return bool(_OUTLOOK_FROM.match(line) and _OUTLOOK_NEXT.match(following))


def sender_line(message: MessageRecord) -> str:
    if message.from_name and message.from_address:
        return f"{message.from_name} <{message.from_address}>"
    return message.from_address or message.from_name or "(unknown sender)"


def delivery_text(message: MessageRecord) -> Text | None:
    """Where our own mail is: queued, sending, retrying, sent, or failed with the server's
    answer; None for mail that is not ours to send."""
    state = message.delivery
    if not state:
        return None
    styles = {"queued": "yellow", "sending": "yellow", "retrying": "yellow",
              "sent": "green", "failed": "bold red"}  # fmt: skip
    marks = {"queued": "◷", "sending": "◷", "retrying": "↻", "sent": "✓", "failed": "✗"}
    line = Text(f"{marks.get(state, '·')} {state}", style=styles.get(state, ""), end="")
    if message.delivery_error and state in ("retrying", "failed"):
        line.append(" — the server answered: ", style=styles[state])
        line.append_text(safe_text(message.delivery_error, "red", one_line=True))
    return line


def summary_text(message: MessageRecord, *, expanded: bool, width: int) -> Text:
    """The one line a message always has: who, when, its state, and (folded) a snippet."""
    line = Text("▾ " if expanded else "▸ ", end="", no_wrap=True, overflow="ellipsis")
    if message.direction == "internal":
        line.append("note ", style="bold yellow")
    line.append_text(safe_text(message.from_name or message.from_address, "bold", one_line=True))
    line.append(f"  {when(message.sent_at or message.received_at)}", style="dim")
    delivery = delivery_text(message) if message.delivery != "sent" else None
    if delivery is not None:
        line.append("  ")
        line.append_text(delivery)
    if message.attachments:
        line.append(f"  📎{len(message.attachments)}", style="dim")
    if not expanded:
        snippet = " ".join(message.text_body[: SNIPPET_CHARS * 2].split())[:SNIPPET_CHARS]
        line.append("  ")
        line.append_text(safe_text(snippet, "dim", one_line=True))
    line.truncate(width, overflow="ellipsis")
    return line


def field_line(label: str, value: str) -> Text:
    line = Text(f"{label}: ", style="bold", end="")
    line.append_text(safe_text(value, one_line=True))
    return line


def header_text(message: MessageRecord) -> Text:
    lines = [field_line("From", sender_line(message))]
    if message.to:
        lines.append(field_line("To", message.to))
    if message.cc:
        lines.append(field_line("Cc", message.cc))
    lines.append(field_line("Date", when(message.sent_at or message.received_at)))
    if message.direction != "internal":
        lines.append(field_line("Subject", message.subject or "(no subject)"))
    delivery = delivery_text(message)
    if delivery is not None:
        lines.append(Text("Delivery: ", style="bold", end="") + delivery)
    return Text("\n", end="").join(lines)


def body_text(message: MessageRecord, *, folded: bool) -> Text:
    body = message.text_body.rstrip()
    if not body:
        return Text("(no text body)", style="italic", end="")
    shown = body[:MAX_BODY_CHARS]
    text = Text(end="")
    for index, part in enumerate(body_parts(shown)):
        if index:
            text.append("\n")
        if part.kind == "text" or not folded:
            style = "" if part.kind == "text" else "dim"
            text.append_text(safe_text("\n".join(part.lines), style))
            continue
        what = "quoted lines" if part.kind == "quote" else "signature lines"
        count = sum(1 for line in part.lines if line.strip()) or len(part.lines)
        text.append(f"[… {count} {what} folded: z shows them]", style="dim italic")
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


def details_text(message: MessageRecord, *, folded: bool) -> Text:
    """Everything under the summary line of an open message."""
    parts = [header_text(message), Text(end=""), body_text(message, folded=folded)]
    if message.attachments:
        parts.append(Text(end=""))
        parts.extend(attachment_line(a) for a in message.attachments)
    return Text("\n", end="").join(parts)
