"""The MIME walk: which text an agent reads, which parts are files, and the bounce if any.

multipart/alternative prefers the plain part (the HTML one when plain is missing or empty);
attached messages become .eml files and their text is shown in the body; machine-readable
reports become text files. HTML is kept as sent and also converted to readable text. A TNEF
part (winmail.dat) that can be read is replaced by the files inside it, and its body is the
text of a mail that has no other (mail/tnef.py); one that cannot stays as it was.
"""

from __future__ import annotations

import re
from email.message import Message
from typing import Any

import html2text

from tui_helpdesk.mail.bounces import STATUS_TYPES, bounce_info
from tui_helpdesk.mail.charsets import clean_body_text, decode_bytes
from tui_helpdesk.mail.headers import header_text
from tui_helpdesk.mail.parsed import BounceInfo, ParsedAttachment
from tui_helpdesk.mail.parts import (
    PartInfo,
    flatten,
    flatten_body,
    part_defects,
    part_info,
    payload_bytes,
    raw_header,
    transfer_decode,
)
from tui_helpdesk.mail.policy import parse_tree
from tui_helpdesk.mail.tnef import is_tnef, read_tnef

# ---------------------------------------------------------------------------------------------
# HTML → text and format=flowed.


class _PlainHTML2Text(html2text.HTML2Text):
    """html2text without Markdown escaping: an agent reads "1. Order", not "1\\. Order"."""

    def handle_data(self, data: str, entity_char: bool = False) -> None:
        super().handle_data(data, entity_char=True)


def html_to_text(html: str) -> str:
    """Readable text from HTML mail (links kept, images as alt text, no wrapping)."""
    converter = _PlainHTML2Text(bodywidth=0)
    converter.unicode_snob = True
    converter.ignore_emphasis = True
    converter.images_to_alt = True
    converter.single_line_break = False
    try:
        text = converter.handle(html)
    except Exception:
        text = re.sub(r"<[^>]*>", " ", html)
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n")


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: join soft-broken lines so paragraphs read as written."""
    out: list[str] = []
    buffer: str | None = None
    buffer_depth = 0
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]
        flowed = content.endswith(" ") and content != "-- "
        if flowed and delsp:
            content = content[:-1]
        if buffer is not None and depth != buffer_depth:
            out.append(_quote(buffer_depth, buffer))
            buffer = None
        buffer = content if buffer is None else buffer + content
        buffer_depth = depth
        if not flowed:
            out.append(_quote(depth, buffer))
            buffer = None
    if buffer is not None:
        out.append(_quote(buffer_depth, buffer))
    return "\n".join(out)


def _quote(depth: int, content: str) -> str:
    return (">" * depth + " " + content) if depth else content


# ---------------------------------------------------------------------------------------------
# The MIME walk.

_MAX_DEPTH = 40
_BODY_TYPES = ("text/plain", "text/html")
# Machine-readable reports: field blocks, shown as a text file rather than as a message.
_FIELD_TYPES = (*STATUS_TYPES, "message/disposition-notification", "message/feedback-report")
_FIELD_TYPES += ("message/global-disposition-notification",)
_EXTENSIONS = {
    "application/ms-tnef": ".dat",
    "application/vnd.ms-tnef": ".dat",
    "application/pdf": ".pdf",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/calendar": ".ics",
    "text/rfc822-headers": ".txt",
    "text/delivery-status": ".txt",
    "message/rfc822": ".eml",
}
_DEFAULT_NAMES = {
    "application/ms-tnef": "winmail.dat",
    "application/vnd.ms-tnef": "winmail.dat",
    "text/rfc822-headers": "returned-headers.txt",
    "message/rfc822-headers": "returned-headers.txt",
}

Segment = tuple[str, str]  # ("plain" | "html", text)


class Walker:
    """Collects body segments, attachments, defects and the bounce of one message tree."""

    def __init__(self, linesep: str, notes: list[str], nested: bool = False) -> None:
        self.linesep = linesep
        self.notes = notes
        self.nested = nested
        self.attachments: list[ParsedAttachment] = []
        self.html: list[str] = []
        self.bounce: BounceInfo | None = None
        self.charset_hint: str | None = None  # for raw 8-bit headers
        self.tnef_body: list[Segment] = []  # the first TNEF body: text when there is no other

    def text(self, segments: list[Segment]) -> str:
        """What an agent reads: the text parts, else the body found in a TNEF part."""
        return segments_text(segments) or segments_text(self.tnef_body)

    def walk(self, part: Message, depth: int) -> list[Segment]:
        if depth > _MAX_DEPTH:
            self.notes.append("nesting-too-deep")
            return []
        self.notes.extend(part_defects(part))
        info = part_info(part, self.notes)
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            return self._container(part, info, payload, depth)
        return self._leaf(part, info, depth)

    def _container(
        self, part: Message, info: PartInfo, children: list[Any], depth: int
    ) -> list[Segment]:
        if info.content_type in _FIELD_TYPES:
            name = info.content_type.split("/", 1)[1] + ".txt"
            self._attach(info, flatten_body(part, self.linesep, self.notes), name)
            return []
        if not info.content_type.startswith("multipart/"):
            return self._nested(part, info, children, depth)
        parts = [c for c in children if isinstance(c, Message)]
        if info.content_type == "multipart/report" and not self.nested:
            self.bounce = bounce_info(parts, self.notes)
        if info.content_type == "multipart/alternative":
            return self._alternative(parts, depth)
        segments: list[Segment] = []
        for child in parts:
            segments.extend(self.walk(child, depth + 1))
        return segments

    def _alternative(self, parts: list[Message], depth: int) -> list[Segment]:
        """Prefer the plain alternative; the HTML one when the plain one is missing or empty."""
        plain: list[Segment] = []
        html: list[Segment] = []
        for child in parts:
            segments = self.walk(child, depth + 1)
            kinds = {kind for kind, text in segments if text.strip()}
            if "plain" in kinds and not plain:
                plain = segments
            elif kinds:
                html = segments
        return plain or html

    def _leaf(self, part: Message, info: PartInfo, depth: int) -> list[Segment]:
        data = payload_bytes(part, self.notes)
        is_body_type = info.content_type in _BODY_TYPES or info.content_type.startswith(
            "multipart/"
        )
        if is_body_type and info.disposition != "attachment":
            if info.filename:  # a named text part is shown and also kept as a file
                self._attach(info, data)
            charset = info.params.get("charset")
            if charset and self.charset_hint is None:
                self.charset_hint = charset
            text = clean_body_text(decode_bytes(data, charset, self.notes))
            if info.content_type == "text/html":
                if not self.nested:
                    self.html.append(text)
                return [("html", text)]
            if info.params.get("format", "").lower() == "flowed":
                text = _unflow(text, info.params.get("delsp", "").lower() == "yes")
            return [("plain", text)]
        if is_tnef(info.content_type, info.filename):
            self._tnef(info, data)
        else:
            self._attach(info, data)
        return []

    def _tnef(self, info: PartInfo, data: bytes) -> None:
        content = read_tnef(data, self.notes)
        if content is None or not (content.files or content.body.strip()):
            self._attach(info, data)
            return
        for file in content.files:
            inner = PartInfo(file.content_type, {}, "attachment", file.filename, "")
            self._attach(inner, file.data)
        if content.body.strip() and not self.tnef_body:
            self.tnef_body = [(content.body_kind, content.body)]

    def _nested(
        self, part: Message, info: PartInfo, children: list[Any], depth: int
    ) -> list[Segment]:
        """An attached message: kept as an .eml attachment, and its text shown in the body."""
        inner = children[0] if children and isinstance(children[0], Message) else None
        if inner is None:
            self._attach(info, b"")
            return []
        data = flatten(inner, self.linesep, self.notes)
        encoding = raw_header(part, "content-transfer-encoding").strip().lower()
        if encoding in ("base64", "quoted-printable"):  # forbidden by RFC 2046, sent anyway
            data = transfer_decode(data, encoding)
            inner = parse_tree(data, self.notes) or inner
        child = Walker(self.linesep, self.notes, nested=True)
        segments = child.walk(inner, depth + 1)
        hint = child.charset_hint
        subject = header_text(raw_header(inner, "subject"), "Subject", self.notes, hint)
        self._attach(info, data, _eml_name(subject))
        block = _attached_block(inner, segments, child, self.notes)
        return [("plain", block)] if block else []

    def _attach(self, info: PartInfo, data: bytes, default_name: str = "") -> None:
        filename = info.filename or default_name or self._generated_name(info.content_type)
        content_type = (
            info.content_type if len(info.content_type) <= 255 else "application/octet-stream"
        )
        disposition = info.disposition
        if disposition not in ("inline", "attachment"):
            disposition = "inline" if not disposition and info.content_id else "attachment"
        self.attachments.append(
            ParsedAttachment(filename, content_type, data, disposition, info.content_id)
        )

    def _generated_name(self, content_type: str) -> str:
        default = _DEFAULT_NAMES.get(content_type)
        if default:
            return default
        number = len(self.attachments) + 1
        return f"attachment-{number}{_EXTENSIONS.get(content_type, '.bin')}"


def _eml_name(subject: str) -> str:
    stem = re.sub(r"[^\w\- ]+", "", subject).strip()[:60].strip()
    return f"{stem or 'message'}.eml"


def segments_text(segments: list[Segment]) -> str:
    texts = [text if kind == "plain" else html_to_text(text) for kind, text in segments]
    return "\n\n".join(t.strip("\n") for t in texts if t.strip())


def _attached_block(
    inner: Message, segments: list[Segment], child: Walker, notes: list[str]
) -> str:
    lines = ["---------- Attached message ----------"]
    for name in ("From", "Date", "Subject", "To", "Cc"):
        value = header_text(raw_header(inner, name), name, notes, child.charset_hint)
        if value:
            lines.append(f"{name}: {value}")
    if child.attachments:
        lines.append("Attachments: " + ", ".join(a.filename for a in child.attachments))
    text = child.text(segments)
    if len(lines) == 1 and not text:
        return ""
    return "\n".join(lines) + "\n\n" + text
