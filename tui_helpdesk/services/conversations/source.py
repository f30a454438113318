"""A message as it came (F46): its full header, its raw bytes and its attachments' bytes.

Whoever sees the conversation may read them; a message or attachment of a hidden conversation
is NotFound, as the conversation is. The header is split from the stored raw bytes, not parsed
into objects: a broken header shows as it is. `safe_filename` makes a name from mail fit to
save under a folder the user chose: it never picks the folder itself.
"""

from __future__ import annotations

import re
import unicodedata
from email.header import decode_header, make_header

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from tui_helpdesk.db.models import Attachment, Blob, Message
from tui_helpdesk.errors import NotFound
from tui_helpdesk.records import MessageSourceRecord, UserRecord
from tui_helpdesk.services.conversations.visibility import load_visible
from tui_helpdesk.services.permissions import require_actor
from tui_helpdesk.terminal_text import clean

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FIELD = re.compile(r"^([!-9;-~]+):[ \t]?(.*)$", re.DOTALL)
_UNSAFE_IN_NAME = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|]')
FILENAME_MAX = 200  # bytes of UTF-8 a saved file's name keeps (file systems allow 255)
# Windows reserves these names whatever the extension; a file copied there later must open.
_RESERVED = {"con", "prn", "aux", "nul"} | {f"{p}{n}" for p in ("com", "lpt") for n in range(10)}


def message_source(
    session: Session, actor: UserRecord | None, message_id: int
) -> MessageSourceRecord:
    """The message's header fields in order (encoded words decoded) and its raw bytes."""
    actor = require_actor(actor)
    message = session.scalar(
        select(Message).where(Message.id == message_id).options(undefer(Message.raw))
    )
    if message is None:
        raise NotFound(f"message {message_id} not found", field="message")
    load_visible(session, actor, message.conversation_id)
    raw = message.raw
    return MessageSourceRecord(message.id, header_fields(raw or b""), raw)


def attachment_content(
    session: Session, actor: UserRecord | None, attachment_id: int
) -> tuple[str, bytes]:
    """An attachment's file name as sent and its bytes, for the user to save."""
    actor = require_actor(actor)
    row = session.execute(
        select(Attachment.filename, Message.conversation_id, Blob)
        .join(Message, Message.id == Attachment.message_id)
        .join(Blob, Blob.sha256 == Attachment.sha256)
        .where(Attachment.id == attachment_id)
        .options(undefer(Blob.data))
    ).first()
    if row is None:
        raise NotFound(f"attachment {attachment_id} not found", field="attachment")
    filename, conversation_id, blob = row
    load_visible(session, actor, conversation_id)
    return filename, blob.data


def header_fields(raw: bytes) -> tuple[tuple[str, str], ...]:
    """(name, value) of each header field of `raw`, unfolded; a line that is no field is
    kept with the name "" so nothing of the header is hidden."""
    head = _HEADER_END.split(raw, maxsplit=1)[0].decode("utf-8", "replace")
    fields: list[list[str]] = []
    for line in head.splitlines():
        if line[:1] in (" ", "\t") and fields:
            fields[-1][1] += " " + line.strip()
            continue
        match = _FIELD.match(line)
        fields.append([match.group(1), match.group(2)] if match else ["", line])
    return tuple((name, _decoded(value)) for name, value in fields)


def _decoded(value: str) -> str:
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, ValueError, UnicodeError):
        return value


def safe_filename(name: str, *, fallback: str = "attachment") -> str:
    """A file name from mail made harmless: no folder part ("../", "C:\\", "/etc/"), no control
    or bidi character, no leading dot (a hidden file), not a reserved device name, at most
    FILENAME_MAX bytes keeping the extension."""
    name = unicodedata.normalize("NFC", clean(name, one_line=True))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf", "Cs"))
    name = _UNSAFE_IN_NAME.sub("_", name).strip().lstrip(".").strip()
    stem, dot, extension = name.rpartition(".")
    if stem.lower() in _RESERVED or name.lower() in _RESERVED:
        name = f"_{name}"
    if not name:
        return fallback
    if len(name.encode()) > FILENAME_MAX:
        tail = f".{extension}" if dot and len(extension.encode()) <= 20 else ""
        room = FILENAME_MAX - len(tail.encode())
        name = name[: len(name) - len(tail)].encode()[:room].decode("utf-8", "ignore") + tail
    return name
