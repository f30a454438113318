"""TNEF (winmail.dat, application/ms-tnef): Outlook's wrapping of a message body and its files.

Read with tnefparse after tnef_stream has checked the bytes. What is read: the files inside
(long file name, else the short one; MIME type from the TNEF, else from the name), and one body:
the plain text, else the HTML, else the compressed RTF turned into text (mail/rtf.py). A stream
that cannot be read, or whose checksums do not match, is not decoded: the part stays the
attachment it was and a `tnef-error:<reason>` defect says why.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass

from tnefparse.properties import MAPI_ATTACH_MIME_TAG
from tnefparse.tnef import TNEF, TNEFAttachment

from tui_helpdesk.mail.charsets import clean_body_text, decode_bytes
from tui_helpdesk.mail.parts import safe_filename, valid_mime_type
from tui_helpdesk.mail.rtf import rtf_text
from tui_helpdesk.mail.tnef_stream import UnsafeTnef, readable_streams

TNEF_TYPES = ("application/ms-tnef", "application/vnd.ms-tnef")
_TNEF_NAME = "winmail.dat"
_BUILT_IN_TYPES = mimetypes.MimeTypes()  # Python's own table: the same on every machine


@dataclass(frozen=True)
class TnefFile:
    filename: str  # "" when the TNEF names none
    content_type: str
    data: bytes


@dataclass(frozen=True)
class TnefContent:
    body_kind: str  # "plain" | "html" | "" when there is no body
    body: str
    files: tuple[TnefFile, ...]


def is_tnef(content_type: str, filename: str) -> bool:
    return content_type in TNEF_TYPES or filename.lower() == _TNEF_NAME


def read_tnef(data: bytes, notes: list[str]) -> TnefContent | None:
    """The body and files of a TNEF part; None (with a defect) when it cannot be read."""
    try:
        message, attachment_streams = readable_streams(data)
        tnef = _read(message)
        attachments = [a for stream in attachment_streams for a in _read(stream).attachments]
        files = tuple(_file(attachment, notes) for attachment in attachments)
    except UnsafeTnef as exc:
        notes.append(f"tnef-error:{exc}")
        return None
    except Exception as exc:
        notes.append(f"tnef-error:{type(exc).__name__}")
        return None
    kind, body = _body(tnef, notes)
    return TnefContent(kind, clean_body_text(body), files)


def _read(stream: bytes) -> TNEF:
    tnef = TNEF(stream, do_checksum=True)
    if not all(attribute.good_checksum for attribute in tnef.objects):
        raise UnsafeTnef("checksum")
    return tnef


def _file(attachment: TNEFAttachment, notes: list[str]) -> TnefFile:
    try:
        name = attachment.long_filename()
    except UnicodeDecodeError:  # a short name that is not UTF-8: the file gets a made-up name
        name = ""
    if isinstance(name, bytes):
        name = decode_bytes(name.rstrip(b"\x00"), None, notes)
    filename = safe_filename(str(name), notes)
    return TnefFile(filename, _content_type(attachment, filename), bytes(attachment.data))


def _content_type(attachment: TNEFAttachment, filename: str) -> str:
    """The MIME type the TNEF states, else the one its name suggests, else octet-stream."""
    for attribute in attachment.mapi_attrs:
        if attribute.name == MAPI_ATTACH_MIME_TAG and isinstance(attribute.data, str):
            stated = valid_mime_type(attribute.data)
            if stated:
                return stated
    guessed = _BUILT_IN_TYPES.guess_type(filename, strict=False)[0] if filename else None
    return guessed or "application/octet-stream"


def _body(tnef: TNEF, notes: list[str]) -> tuple[str, str]:
    """The plain body, else the HTML one, else the RTF one as text; ("", "") when none."""
    if tnef.body:
        return "plain", _text(tnef.body, tnef.codepage, notes)
    if tnef.htmlbody:
        return "html", _text(tnef.htmlbody, None, notes)
    if not tnef.has_body():
        return "", ""
    try:
        rtf = tnef.rtfbody
    except Exception as exc:  # compressed_rtf: bad CRC, short data
        notes.append(f"tnef-rtf-error:{type(exc).__name__}")
        return "", ""
    return ("plain", rtf_text(rtf, notes)) if rtf else ("", "")


def _text(value: str | bytes, codepage: str | None, notes: list[str]) -> str:
    if isinstance(value, str):
        return value.rstrip("\x00")
    return decode_bytes(value.rstrip(b"\x00"), codepage, notes)
