"""The TNEF bytes tnefparse is given, checked first: tnefparse 1.4.0 trusts what a stream declares.

On hostile input (tests/test_parse_tnef.py has each case): a property count larger than its block
loops up to 2³² times, a multi-value count of fixed-size values loops as long while it allocates,
and every attribute copies the rest of the stream (quadratic: 0.3 s for 0.5 MB of empty
attributes, ~30 min for 37 MB). So before tnefparse reads anything, only the attributes the
helpdesk uses are kept (code page, body, MAPI properties; each attachment's start, title, data
and properties), split into one stream per attachment, every count is checked against the bytes
after it the way tnefparse walks them (embedded Outlook messages too), and both the copying and
the number of attributes are bounded. A part that fails is not TNEF the helpdesk can read: the
caller keeps it as it was.
"""

from __future__ import annotations

import struct
from uuid import UUID

from tnefparse.codepage import Codepage
from tnefparse.mapi import IMESSAGE_SIG

_SIGNATURE = 0x223E9F78
_HEADER = 6  # signature (4) + key (2)
_MIN_ATTRIBUTE = 12  # tnefparse reads attributes while more than this is left

_UINT16 = struct.Struct("<H")
_UINT32 = struct.Struct("<I")


def _u16(data: bytes, offset: int = 0) -> int:
    return int(_UINT16.unpack_from(data, offset)[0])


def _u32(data: bytes, offset: int = 0) -> int:
    return int(_UINT32.unpack_from(data, offset)[0])


_ATTACHMENT_LEVEL = 2
_CODEPAGE = 0x9007
_BODY = 0x800C
_MAPI_PROPERTIES = 0x9003
_RECIPIENTS = 0x9004
_ATTACHMENT_START = 0x9002  # attAttachRendData: tnefparse starts a new attachment here
_ATTACHMENT_TITLE = 0x8010
_ATTACHMENT_DATA = 0x800F
_ATTACHMENT_PROPERTIES = 0x9005
_KEPT_MESSAGE = {_CODEPAGE, _BODY, _MAPI_PROPERTIES}
_KEPT_ATTACHMENT = {_ATTACHMENT_TITLE, _ATTACHMENT_DATA, _ATTACHMENT_PROPERTIES}
_STRING_TYPES = (0x0001, 0x0007)  # tnefparse decodes these attributes before anything else

_MULTI_VALUE = 0x1000
_NAMED = 0x8000
_FIXED_SIZES = {0x0002: 2, 0x000B: 2, 0x0003: 4, 0x0004: 4, 0x000A: 4, 0x0005: 8, 0x0006: 8}
_FIXED_SIZES |= {0x0007: 8, 0x0014: 8, 0x0040: 8, 0x0048: 16}
_SHORT_TYPES = (0x0002, 0x000B)
_VARIABLE_TYPES = (0x0000, 0x000D, 0x001E, 0x001F, 0x0102)
_EIGHT_BIT_STRING, _UNICODE_STRING = 0x001E, 0x001F
_ATTACH_DATA_OBJECT = 0x3701
_MAX_EMBEDDED_DEPTH = 4
_MAX_ATTRIBUTES = 8192  # Outlook writes about 8 per file: a thousand files
_COPIES_PER_BYTE = 128  # tnefparse's copying allowed per byte of the part (~0.5 s for 37 MB)
_COPIES_FLOOR = 1 << 20


class UnsafeTnef(Exception):
    """A declared count or size that tnefparse would trust beyond the bytes behind it."""


def readable_streams(data: bytes) -> tuple[bytes, list[bytes]]:
    """The message's stream and one stream per attachment, checked; raises if unreadable.

    tnefparse copies the rest of its input for every attribute, so the attachments are given to
    it one by one (with the code page in force where each starts): the copying stays linear in
    the part for the attachments and bounded for anything else. tnefparse reads each stream
    exactly as it would have read those attributes in `data`.
    """
    if len(data) < _HEADER or _u32(data) != _SIGNATURE:
        raise UnsafeTnef("signature")
    header, codepage = data[:_HEADER], b""
    message, attachments = [header], []
    for level, name, start, end in attributes(data):
        frame = data[start:end]
        if name == _ATTACHMENT_START:
            attachments.append([header, codepage, frame])
        elif level == _ATTACHMENT_LEVEL:
            if not attachments:
                raise UnsafeTnef("attachment-attribute-outside-attachment")
            if name in _KEPT_ATTACHMENT:
                attachments[-1].append(frame)
        elif name in _KEPT_MESSAGE:
            message.append(frame)
            codepage = frame if name == _CODEPAGE else codepage
    streams = [b"".join(message)] + [b"".join(frames) for frames in attachments]
    checker = _Checker(budget=_COPIES_PER_BYTE * len(data) + _COPIES_FLOOR)
    for stream in streams:
        checker.stream(stream, 0)
    return streams[0], streams[1:]


def attributes(data: bytes) -> list[tuple[int, int, int, int]]:
    """(level, name, start, end) of each attribute, framed as tnefparse frames them."""
    found: list[tuple[int, int, int, int]] = []
    offset = _HEADER
    while offset + _MIN_ATTRIBUTE < len(data):
        if len(found) == _MAX_ATTRIBUTES:
            raise UnsafeTnef("too-many-attributes")
        end = offset + min(len(data) - offset, _u32(data, offset + 5) + 11)
        found.append((data[offset], _u16(data, offset + 1), offset, end))
        offset = end
    return found


class _Checker:
    """Walks a stream the way tnefparse's TNEF() and decode_mapi() do, checking each count."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.embedded: list[tuple[bytes, int]] = []

    def stream(self, data: bytes, depth: int) -> None:
        if depth > _MAX_EMBEDDED_DEPTH:
            raise UnsafeTnef("nesting")
        codepage: str | None = None
        attachment_codepage: str | None = None
        in_attachment = False
        for level, name, start, end in attributes(data):
            self.budget -= len(data) - start  # tnefparse copies the rest for every attribute
            if self.budget < 0:
                raise UnsafeTnef("size")
            body = data[start + 9 : end - 2]
            type_ = _u16(data, start + 3)
            if name == _ATTACHMENT_START:
                in_attachment, attachment_codepage = True, codepage
            if level == _ATTACHMENT_LEVEL:
                if not in_attachment:
                    raise UnsafeTnef("attachment-attribute-outside-attachment")
                if name == _ATTACHMENT_PROPERTIES:
                    self.properties(body, 0, attachment_codepage, depth, attachment=True)
            elif name == _MAPI_PROPERTIES:
                self.properties(body, 0, codepage, depth)
            elif name == _CODEPAGE:
                codepage = Codepage(_u32(body)).codepage()
            elif name == _RECIPIENTS and type_ not in _STRING_TYPES:
                self.recipients(body, codepage, depth)
        self.check_embedded()

    def check_embedded(self) -> None:
        while self.embedded:
            data, depth = self.embedded.pop()
            if len(data) < _HEADER or _u32(data) != _SIGNATURE:
                raise UnsafeTnef("signature")
            self.stream(data, depth)

    def recipients(self, data: bytes, codepage: str | None, depth: int) -> None:
        position = 4
        for _ in range(_u32(data)):  # each row reads a count first: ends with the bytes
            position = self.properties(data, position, codepage, depth)

    def properties(
        self, data: bytes, position: int, codepage: str | None, depth: int, attachment: bool = False
    ) -> int:
        """One property block; returns where decode_mapi stops (its try ends the block early)."""
        count = _u32(data, position)
        cursor = _Cursor(data, position + 4)
        if count > (len(data) - cursor.position) // 4:
            raise UnsafeTnef("property-count")
        try:
            for _ in range(count):
                if cursor.position >= len(data):
                    break
                self.property(cursor, codepage, depth, attachment)
        except UnsafeTnef:
            raise
        except Exception:
            pass  # decode_mapi logs and returns what it read so far
        return cursor.position

    def property(self, cursor: _Cursor, codepage: str | None, depth: int, attachment: bool) -> None:
        type_, name = cursor.u16(), cursor.u16()
        if name >= _NAMED:
            cursor.guid()
            if cursor.u32() == 0:
                cursor.u32()
            else:
                cursor.named()
        values = None
        if type_ & _MULTI_VALUE:
            type_ ^= _MULTI_VALUE
            values = cursor.u32()
            if values > (len(cursor.data) - cursor.position) // 2:
                raise UnsafeTnef("value-count")
        for _ in range(values or 1):
            items = cursor.value(type_, codepage, multi=bool(values))
            if attachment and name == _ATTACH_DATA_OBJECT:
                self.note_embedded(items, depth)
        if (values or 1) % 2 and type_ in _SHORT_TYPES:
            cursor.position += 2

    def note_embedded(self, items: list[bytes], depth: int) -> None:
        value = b"".join(item.rstrip(b"\x00") for item in items)
        if value.startswith(IMESSAGE_SIG):  # tnefparse parses it as a message of its own
            self.embedded.append((value[len(IMESSAGE_SIG) :], depth + 1))


class _Cursor:
    """A read position that moves only after a read succeeds, as decode_mapi's offset does."""

    def __init__(self, data: bytes, position: int) -> None:
        self.data = data
        self.position = position

    def u16(self) -> int:
        value = _u16(self.data, self.position)
        self.position += 2
        return value

    def u32(self) -> int:
        value = _u32(self.data, self.position)
        self.position += 4
        return value

    def guid(self) -> None:
        UUID(bytes_le=self.data[self.position : self.position + 16])
        self.position += 16

    def named(self) -> None:
        length = self.u32()
        length += -length % 4
        self.data[self.position : self.position + length].decode("utf-16")
        self.position += length

    def value(self, type_: int, codepage: str | None, multi: bool) -> list[bytes]:
        """One value's items; the position moves only when all of them were read."""
        if type_ in _FIXED_SIZES:
            self.position += _FIXED_SIZES[type_]
            return []
        if type_ not in _VARIABLE_TYPES:
            raise ValueError(f"unknown MAPI type {type_:#06x}")
        position = self.position
        count = 1
        if not multi:
            count = _u32(self.data, position)
            position += 4
        items = []
        for _ in range(count):  # each item reads a length first: ends with the bytes
            length = _u32(self.data, position)
            position += 4
            length += -length % 4
            item = self.data[position : position + length]
            if type_ == _UNICODE_STRING:
                item.decode("utf-16")
            elif type_ == _EIGHT_BIT_STRING:
                item.decode(codepage)  # type: ignore[arg-type]  # None fails as in tnefparse
            items.append(item)
            position += length
        self.position = position
        return items
