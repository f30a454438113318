"""Bytes → ParsedMessage: what an agent reads and what threading/routing need. Never raises.

Real mail is hostile: unknown charsets, raw 8-bit headers, broken encoded words, missing
boundaries, NUL bytes, Message-IDs that crash the stdlib header parser. Every accessor of the
stdlib `email` package that can raise on such input is wrapped here, once, so that no caller
needs its own try/except around mail data. The raw bytes are only read, never changed.

Output strings are safe to store: no NUL characters and no lone surrogates (PostgreSQL text
rejects both); header values contain no control characters (no header injection when a subject
is reused in a reply). Lengths that meet VARCHAR columns are capped (Message-ID 998, address
320, content type 255, Content-ID 998, Auto-Submitted 64).
"""

from __future__ import annotations

import binascii
import codecs
import functools
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy as email_policy
from email.generator import BytesGenerator
from email.headerregistry import HeaderRegistry
from email.message import Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from io import BytesIO
from typing import Any

import html2text


@dataclass(frozen=True)
class Address:
    name: str  # display name, decoded (RFC 2047), "" if none
    address: str  # "local@domain", domain lowercased, local part as written; "" if unparseable


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str  # never empty: generated from the type when the mail names none
    content_type: str
    data: bytes  # transfer-decoded bytes
    disposition: str  # "attachment" | "inline"
    content_id: str  # normalised "<cid>" or ""


@dataclass(frozen=True)
class BounceInfo:
    original_message_id: str | None
    failed_recipients: tuple[str, ...]
    status: str
    diagnostic: str
    permanent: bool


@dataclass(frozen=True)
class ParsedMessage:
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    sender: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    date: datetime | None
    date_header: str
    text_body: str
    html_body: str
    attachments: tuple[ParsedAttachment, ...]
    defects: tuple[str, ...]
    auto_submitted: str
    precedence: str
    has_list_headers: bool
    bounce: BounceInfo | None
    headers: tuple[tuple[str, str], ...]
    sha256: str
    size: int

    def header(self, name: str) -> str:
        """First value of a header, case-insensitive; "" when absent."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return ""


# ---------------------------------------------------------------------------------------------
# Parser setup. policy.default re-parses Content-Type on every access (the feed parser alone asks
# four times per part); header objects are immutable, so a bounded cache keyed on the raw value
# makes repeated and common values (e.g. "text/plain; charset=utf-8") nearly free.

_MAX_CACHED_VALUE = 200


class _CachingHeaderRegistry(HeaderRegistry):
    def __init__(self) -> None:
        super().__init__()
        self._cached = functools.lru_cache(maxsize=1024)(super().__call__)

    def __call__(self, name: str, value: str) -> Any:
        if len(value) > _MAX_CACHED_VALUE:
            return super().__call__(name, value)
        return self._cached(name, value)


_POLICY = email_policy.default.clone(header_factory=_CachingHeaderRegistry())
_PARSER = BytesParser(policy=_POLICY)
_GENERATOR_POLICIES = {
    nl: _POLICY.clone(refold_source="none", linesep=nl, max_line_length=0) for nl in ("\r\n", "\n")
}

_MAX_DEPTH = 40
_MAX_REFERENCES = 200
_MAX_DEFECTS = 60

# ---------------------------------------------------------------------------------------------
# Charsets: declared → utf-8 → a lenient last resort; never an exception.

_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cn-gb": "gb18030",
    "euc-cn": "gb18030",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "big5": "big5hkscs",
    "iso-8859-8-i": "iso8859-8",
    "iso-8859-6-i": "iso8859-6",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "unicode-1-1-utf-7": "utf-7",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso8859-1": "cp1252",
    "us-ascii": "ascii",
}
# Text codecs that are not a charset anyone means in mail, or that interpret escapes.
_REJECTED_CODECS = {"unicode-escape", "raw-unicode-escape", "undefined", "idna", "punycode"}
# Labels that are so often wrong that valid UTF-8 content wins over them.
_WEAK_LABELS = {"ascii", "cp1252", "latin-1", "iso8859-1"}
# Codecs for which ASCII-only bytes do not simply mean ASCII text.
_NOT_ASCII_SAFE = ("utf-16", "utf-32", "utf-7", "iso2022", "hz", "cp037", "cp273", "cp424")
_NOT_ASCII_SAFE += ("cp500", "cp875", "cp1026", "cp1140")


@functools.lru_cache(maxsize=512)
def _resolve_charset(label: str) -> str | None:
    """Python codec name for a MIME charset label; None when unknown or not a text codec."""
    key = label.strip().strip("\"'").lower()
    if not key or len(key) > 40:
        return None
    key = _CHARSET_ALIASES.get(key, key)
    candidates = [key]
    if key.startswith("x-"):
        candidates.append(_CHARSET_ALIASES.get(key[2:], key[2:]))
    for candidate in candidates:
        try:
            info = codecs.lookup(candidate)
        except (LookupError, ValueError, TypeError):
            continue
        if info._is_text_encoding and info.name not in _REJECTED_CODECS:
            return info.name
    return None


def _decode_bytes(data: bytes, label: str | None, notes: list[str]) -> str:
    """Decode mail text; notes a defect when the declared charset could not be used."""
    codec = _resolve_charset(label) if label else None
    if data.isascii() and (codec is None or not codec.startswith(_NOT_ASCII_SAFE)):
        return data.decode("ascii")
    unknown = codec is None and bool(label and label.strip(" \t\"'"))
    if unknown:
        notes.append(f"charset-fallback:{_note_label(label)}")
    if codec is not None and codec not in _WEAK_LABELS:
        try:
            return data.decode(codec)
        except (UnicodeError, LookupError, ValueError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if not unknown and (codec is None or codec == "ascii" or codec not in _WEAK_LABELS):
        notes.append(f"charset-fallback:{_note_label(label)}")
    return _lenient(data, codec)


def _lenient(data: bytes, codec: str | None) -> str:
    """Last resort: mostly-valid UTF-8 stays UTF-8, a multi-byte declared charset is kept with
    replacements, everything else is read as windows-1252 (what undeclared 8-bit usually is)."""
    as_utf8 = data.decode("utf-8", "replace")
    bad = as_utf8.count("\ufffd")
    non_ascii = len(as_utf8) - len(as_utf8.encode("ascii", "ignore"))
    if non_ascii - bad >= 4 * bad:
        return as_utf8
    if codec is not None and codec not in _WEAK_LABELS and codec != "utf-8":
        try:
            return data.decode(codec, "replace")
        except (UnicodeError, LookupError, ValueError):
            pass
    return data.decode("cp1252", "replace")


def _note_label(label: str | None) -> str:
    text = _clean_header_text((label or "").strip().lower())[:40]
    return text or "undeclared"


# ---------------------------------------------------------------------------------------------
# Safe strings.

_CONTROL_TO_SPACE = {c: " " for c in (*range(32), 127)}


def _escaped_bytes(text: str) -> bytes | None:
    """The raw bytes behind surrogate-escaped text; None when the text has no such escapes."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _fix_surrogates(text: str) -> str:
    """Turn surrogate-escaped raw bytes (bad params, odd codecs) back into real text."""
    raw = _escaped_bytes(text)
    return text if raw is None else _decode_bytes(raw, None, [])


def _fix_header(value: str, name: str, notes: list[str], hint: str | None) -> str:
    """Raw 8-bit header bytes → text: UTF-8, else the charset of the message's own text
    (what the sending client most likely used), else windows-1252."""
    raw = _escaped_bytes(value)
    if raw is None:
        return value
    notes.append(f"8bit-header:{name}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    codec = _resolve_charset(hint) if hint else None
    if codec is not None and codec not in _WEAK_LABELS and not codec.startswith(_NOT_ASCII_SAFE):
        try:
            return raw.decode(codec)
        except (UnicodeError, LookupError, ValueError):
            pass
    return _lenient(raw, None)


def _clean_body_text(text: str) -> str:
    """Body text safe to store and show: LF line ends, no NUL, no surrogates."""
    text = _fix_surrogates(text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text


def _clean_header_text(text: str) -> str:
    return _fix_surrogates(text).translate(_CONTROL_TO_SPACE).strip()


def _unfold(value: str) -> str:
    if "\n" in value or "\r" in value:
        return value.replace("\r", "").replace("\n", "")
    return value


# ---------------------------------------------------------------------------------------------
# RFC 2047 encoded words, tolerant: spaces inside, missing separators, bad padding, unknown
# charsets, multi-byte characters split across adjacent words.

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_BASE64_JUNK = re.compile(r"[^A-Za-z0-9+/]")


def _encoded_word_bytes(encoding: str, text: str) -> bytes | None:
    try:
        if encoding in "qQ":
            return binascii.a2b_qp(text.encode("utf-8", "replace"), header=True)
        clean = _BASE64_JUNK.sub("", text.replace("-", "+").replace("_", "/"))
        if len(clean) % 4 == 1:
            clean = clean[:-1]
        return binascii.a2b_base64(clean + "=" * (-len(clean) % 4))
    except (binascii.Error, ValueError):
        return None


def decode_words(value: str, notes: list[str]) -> str:
    """Decode the RFC 2047 encoded words in an unfolded header value."""
    if "=?" not in value:
        return value
    out: list[str] = []
    pending: tuple[str, bytearray] | None = None
    pos = 0
    for match in _ENCODED_WORD.finditer(value):
        gap = value[pos : match.start()]
        pos = match.end()
        charset = match.group(1).split("*", 1)[0]
        data = _encoded_word_bytes(match.group(2), match.group(3))
        if pending is not None and (data is None or (gap and not gap.isspace())):
            out.append(_decode_bytes(bytes(pending[1]), pending[0], notes))
            pending = None
        if pending is None:
            out.append(gap)
        if data is None:
            notes.append("encoded-word-error")
            out.append(match.group(0))
        elif pending is not None and pending[0].lower() == charset.lower():
            pending[1].extend(data)
        else:
            if pending is not None:
                out.append(_decode_bytes(bytes(pending[1]), pending[0], notes))
            pending = (charset, bytearray(data))
    if pending is not None:
        out.append(_decode_bytes(bytes(pending[1]), pending[0], notes))
    out.append(value[pos:])
    return "".join(out)


def _header_text(raw_value: object, name: str, notes: list[str], hint: str | None = None) -> str:
    """A raw header value as a person reads it: unfolded, 8-bit fixed, decoded, no controls."""
    value = _fix_header(_unfold(str(raw_value)), name, notes, hint)
    return _clean_header_text(decode_words(value, notes))


# ---------------------------------------------------------------------------------------------
# Message-IDs.

_BRACKETED = re.compile(r"<([^<>]*)>")


def normalise_message_id(value: str) -> str | None:
    """One id as "<id@host>": first bracketed id (or first word), inner whitespace removed."""
    try:
        text = _fix_surrogates(_unfold(str(value)))
    except Exception:
        return None
    for match in _BRACKETED.finditer(text):
        core = "".join(match.group(1).split())
        if core:
            return _bracket(core)
    words = text.split()
    return _bracket(words[0].strip("<>")) if words else None


def _bracket(core: str) -> str | None:
    core = core.translate(_CONTROL_TO_SPACE).replace(" ", "")[:996]
    return f"<{core}>" if core else None


def _message_ids(value: str) -> tuple[str, ...]:
    """Every id in In-Reply-To / References, in order, without duplicates, capped."""
    text = _fix_surrogates(_unfold(value))
    found = [_bracket("".join(m.split())) for m in _BRACKETED.findall(text)]
    if not any(found):
        words = text.replace(",", " ").split()
        found = [_bracket(w.strip("<>")) for w in words if "@" in w or len(words) == 1]
    ids = tuple(dict.fromkeys(i for i in found if i))
    if len(ids) > _MAX_REFERENCES:
        ids = (ids[0], *ids[-(_MAX_REFERENCES - 1) :])
    return ids


# ---------------------------------------------------------------------------------------------
# Addresses.

_LOOSE_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"']+@[^\s<>()\[\],;:\"']+")


def _valid_address(spec: str) -> str:
    spec = spec.strip()
    local, at, domain = spec.rpartition("@")
    if not at or not local or not domain or len(spec) > 320:
        return ""
    if any(c in domain for c in ' \t<>,;"()') or not spec.isprintable():
        return ""
    return f"{local}@{domain.lower()}"


# The common shapes ("Name <a@b>", "\"Last, First\" <a@b>", "a@b", comma separated) are read by
# a strict regular expression; anything else (groups, comments, dots in names, obsolete
# syntax) goes to the stdlib parser, which costs ~80 µs per header. A test proves that both
# agree on every value the fast path accepts.
_ATOM = r"[^\s()<>\[\]:;@\\,.\"]+"
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*"
_ADDR_SPEC = rf"{_DOT_ATOM}@{_DOT_ATOM}"
_PHRASE = rf"{_ATOM}(?: {_ATOM})*|\"[^\"\\]*\""
_SIMPLE_MAILBOX = re.compile(
    rf"[ \t]*(?:(?:({_PHRASE})[ \t]*)?<({_ADDR_SPEC})>|({_ADDR_SPEC}))[ \t]*"
)


def _simple_addresses(value: str) -> list[tuple[str, str]] | None:
    """(display name, addr-spec) pairs when the value is a plain mailbox list, else None."""
    found = []
    pos = 0
    while True:
        match = _SIMPLE_MAILBOX.match(value, pos)
        if match is None:
            return None
        phrase = match.group(1) or ""
        if phrase.startswith('"'):
            phrase = phrase[1:-1]
        found.append((phrase, match.group(2) or match.group(3)))
        pos = match.end()
        if pos == len(value):
            return found
        if value[pos] != "," or pos + 1 == len(value):
            return None
        pos += 1


def _stdlib_addresses(name: str, value: str) -> list[tuple[str, str]]:
    """The stdlib's reading (groups flattened); [] when it cannot read the value at all."""
    try:
        header = _POLICY.header_factory(name, value)
        return [
            (str(item.display_name or ""), str(item.addr_spec))
            for group in header.groups
            for item in group.addresses
        ]
    except Exception:
        return []


def _addresses(name: str, value: str, notes: list[str]) -> tuple[Address, ...]:
    """Address headers: fast path, then the stdlib parser, then a loose search for a@b."""
    value = _fix_header(_unfold(value), name, notes, None).strip()
    if not value:
        return ()
    pairs = _simple_addresses(value)
    if pairs is None:
        pairs = _stdlib_addresses(name, value)
    found = []
    for display, spec in pairs:
        address = _valid_address(spec)
        if address:
            text = decode_words(_fix_surrogates(display), notes) if display else ""
            found.append(Address(_clean_header_text(text), address))
    if not found and "@" in value:
        notes.append(f"header-parse-error:{name}")
        loose = (_valid_address(m) for m in _LOOSE_ADDRESS.findall(value))
        found = [Address("", a) for a in loose if a]
    return tuple(found)


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except Exception:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Wrapped accessors of one MIME part.


@dataclass
class _PartInfo:
    content_type: str
    params: dict[str, str]
    disposition: str  # "" when absent
    filename: str
    content_id: str


def _raw_header(part: Message, name: str) -> str:
    wanted = name.lower()
    try:
        for key, value in part.raw_items():
            if key.lower() == wanted:
                return str(value)
    except Exception:
        return ""
    return ""


def _part_info(part: Message, notes: list[str]) -> _PartInfo:
    try:
        header = part.get("content-type")
        if header is None:
            content_type, params = part.get_default_type(), {}
        else:
            content_type, params = str(header.content_type), dict(header.params)
    except Exception:
        content_type, params = "text/plain", {}
        notes.append("header-parse-error:Content-Type")
    try:
        header = part.get("content-disposition")
        disposition = str(header.content_disposition or "") if header is not None else ""
        disp_params = dict(header.params) if header is not None else {}
    except Exception:
        disposition, disp_params = "attachment", {}
        notes.append("header-parse-error:Content-Disposition")
    name = disp_params.get("filename") or params.get("name") or ""
    cid = _raw_header(part, "content-id")
    return _PartInfo(
        content_type=_mime_type(content_type),
        params={str(k).lower(): _fix_surrogates(str(v)) for k, v in params.items()},
        disposition=disposition.lower(),
        filename=_safe_filename(str(name), notes),
        content_id=(normalise_message_id(cid) or "") if cid.strip() else "",
    )


# Bidirectional overrides and isolates: "invoice\u202efdp.exe" would show as "invoiceexe.pdf".
_FILENAME_UNSAFE = {
    **_CONTROL_TO_SPACE,
    **dict.fromkeys((*range(0x202A, 0x202F), *range(0x2066, 0x206A))),
}


_MIME_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


def _mime_type(value: str) -> str:
    """A syntactically valid type, else text/plain (RFC 2045 5.2: the default for invalid ones)."""
    value = value.strip().lower()
    return value if _MIME_TYPE.fullmatch(value) else "text/plain"


def _safe_filename(name: str, notes: list[str]) -> str:
    """Decoded file name without directories, control or bidi characters (safe to save as)."""
    name = _fix_surrogates(name)
    if "=?" in name:
        name = decode_words(name, notes)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    return name.translate(_FILENAME_UNSAFE).strip().lstrip(".")[:255]


def _payload_bytes(part: Message, notes: list[str]) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception as exc:
        notes.append(f"payload-error:{type(exc).__name__}")
        data = None
    if isinstance(data, bytes):
        return data
    try:
        payload = part.get_payload()
        return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    except Exception:
        return b""


def _part_defects(part: Message) -> list[str]:
    try:
        return [type(defect).__name__ for defect in part.defects]
    except Exception:
        return []


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

_BODY_TYPES = ("text/plain", "text/html")
_STATUS_TYPES = ("message/delivery-status", "text/delivery-status")
_STATUS_TYPES += ("message/global-delivery-status",)
_RETURNED_TYPES = ("message/rfc822", "message/global", "text/rfc822-headers")
_RETURNED_TYPES += ("message/rfc822-headers", "message/global-headers")
# Machine-readable reports: field blocks, shown as a text file rather than as a message.
_FIELD_TYPES = (*_STATUS_TYPES, "message/disposition-notification", "message/feedback-report")
_FIELD_TYPES += ("message/global-disposition-notification",)
_EXTENSIONS = {
    "application/ms-tnef": ".dat",
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
    "text/rfc822-headers": "returned-headers.txt",
    "message/rfc822-headers": "returned-headers.txt",
}

Segment = tuple[str, str]  # ("plain" | "html", text)


class _Walker:
    """Collects body segments, attachments, defects and the bounce of one message tree."""

    def __init__(self, linesep: str, notes: list[str], nested: bool = False) -> None:
        self.linesep = linesep
        self.notes = notes
        self.nested = nested
        self.attachments: list[ParsedAttachment] = []
        self.html: list[str] = []
        self.bounce: BounceInfo | None = None
        self.charset_hint: str | None = None  # for raw 8-bit headers

    def walk(self, part: Message, depth: int) -> list[Segment]:
        if depth > _MAX_DEPTH:
            self.notes.append("nesting-too-deep")
            return []
        self.notes.extend(_part_defects(part))
        info = _part_info(part, self.notes)
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            return self._container(part, info, payload, depth)
        return self._leaf(part, info, depth)

    def _container(
        self, part: Message, info: _PartInfo, children: list[Any], depth: int
    ) -> list[Segment]:
        if info.content_type in _FIELD_TYPES:
            name = info.content_type.split("/", 1)[1] + ".txt"
            self._attach(info, _flatten_body(part, self.linesep, self.notes), name)
            return []
        if not info.content_type.startswith("multipart/"):
            return self._nested(part, info, children, depth)
        parts = [c for c in children if isinstance(c, Message)]
        if info.content_type == "multipart/report" and not self.nested:
            self.bounce = _bounce(parts, self.notes)
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

    def _leaf(self, part: Message, info: _PartInfo, depth: int) -> list[Segment]:
        data = _payload_bytes(part, self.notes)
        is_body_type = info.content_type in _BODY_TYPES or info.content_type.startswith(
            "multipart/"
        )
        if is_body_type and info.disposition != "attachment":
            if info.filename:  # a named text part is shown and also kept as a file
                self._attach(info, data)
            charset = info.params.get("charset")
            if charset and self.charset_hint is None:
                self.charset_hint = charset
            text = _clean_body_text(_decode_bytes(data, charset, self.notes))
            if info.content_type == "text/html":
                if not self.nested:
                    self.html.append(text)
                return [("html", text)]
            if info.params.get("format", "").lower() == "flowed":
                text = _unflow(text, info.params.get("delsp", "").lower() == "yes")
            return [("plain", text)]
        self._attach(info, data)
        return []

    def _nested(
        self, part: Message, info: _PartInfo, children: list[Any], depth: int
    ) -> list[Segment]:
        """An attached message: kept as an .eml attachment, and its text shown in the body."""
        inner = children[0] if children and isinstance(children[0], Message) else None
        if inner is None:
            self._attach(info, b"")
            return []
        data = _flatten(inner, self.linesep, self.notes)
        encoding = _raw_header(part, "content-transfer-encoding").strip().lower()
        if encoding in ("base64", "quoted-printable"):  # forbidden by RFC 2046, sent anyway
            data = _transfer_decode(data, encoding)
            inner = _parse_tree(data, self.notes) or inner
        child = _Walker(self.linesep, self.notes, nested=True)
        segments = child.walk(inner, depth + 1)
        hint = child.charset_hint
        subject = _header_text(_raw_header(inner, "subject"), "Subject", self.notes, hint)
        self._attach(info, data, _eml_name(subject))
        block = _attached_block(inner, segments, child, self.notes)
        return [("plain", block)] if block else []

    def _attach(self, info: _PartInfo, data: bytes, default_name: str = "") -> None:
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


def _segments_text(segments: list[Segment]) -> str:
    texts = [text if kind == "plain" else html_to_text(text) for kind, text in segments]
    return "\n\n".join(t.strip("\n") for t in texts if t.strip())


def _attached_block(
    inner: Message, segments: list[Segment], child: _Walker, notes: list[str]
) -> str:
    lines = ["---------- Attached message ----------"]
    for name in ("From", "Date", "Subject", "To", "Cc"):
        value = _header_text(_raw_header(inner, name), name, notes, child.charset_hint)
        if value:
            lines.append(f"{name}: {value}")
    if child.attachments:
        lines.append("Attachments: " + ", ".join(a.filename for a in child.attachments))
    text = _segments_text(segments)
    if len(lines) == 1 and not text:
        return ""
    return "\n".join(lines) + "\n\n" + text


def _flatten(message: Message, linesep: str, notes: list[str]) -> bytes:
    """Bytes of an attached message (regenerated without refolding; the outer raw is kept)."""
    buffer = BytesIO()
    try:
        generator = BytesGenerator(buffer, mangle_from_=False, policy=_GENERATOR_POLICIES[linesep])
        generator.flatten(message)
        return buffer.getvalue()
    except Exception as exc:
        notes.append(f"attached-message-error:{type(exc).__name__}")
    try:
        head = "".join(f"{k}: {_unfold(str(v))}{linesep}" for k, v in message.raw_items())
        head_bytes = (head + linesep).encode("utf-8", "surrogateescape")
    except Exception:
        head_bytes = b""
    return head_bytes + _payload_bytes(message, notes)


def _transfer_decode(data: bytes, encoding: str) -> bytes:
    try:
        if encoding == "base64":
            return binascii.a2b_base64(re.sub(rb"[^A-Za-z0-9+/=]", b"", data))
        return binascii.a2b_qp(data)
    except (binascii.Error, ValueError):
        return data


def _flatten_body(part: Message, linesep: str, notes: list[str]) -> bytes:
    """The body of a part whose payload the parser split into sub-messages (report fields)."""
    data = _flatten(part, linesep, notes)
    separator = (linesep + linesep).encode()
    if data.startswith(linesep.encode()):
        return data[len(linesep) :]
    _, found, body = data.partition(separator)
    return body if found else data


# ---------------------------------------------------------------------------------------------
# Delivery status notifications (RFC 3464).

_STATUS_CODE = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")


def _status_blocks(payload: Any) -> list[list[tuple[str, str]]]:
    """The field blocks of a delivery-status part, parsed by the email package or by hand."""
    if isinstance(payload, list):
        blocks = []
        for block in payload:
            if isinstance(block, Message):
                blocks.append([(str(k), _unfold(str(v)).strip()) for k, v in block.raw_items()])
        return blocks
    return _field_blocks(str(payload or ""))


def _field_blocks(text: str) -> list[list[tuple[str, str]]]:
    blocks: list[list[tuple[str, str]]] = [[]]
    for line in text.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            if blocks[-1]:
                blocks.append([])
        elif line[0] in " \t" and blocks[-1]:
            name, value = blocks[-1][-1]
            blocks[-1][-1] = (name, value + " " + line.strip())
        elif ":" in line:
            name, _, value = line.partition(":")
            blocks[-1].append((name.strip(), value.strip()))
    return [b for b in blocks if b]


def _field(block: list[tuple[str, str]], name: str) -> str:
    for key, value in block:
        if key.lower() == name:
            return _clean_header_text(value)
    return ""


def _typed_value(value: str) -> str:
    """ "rfc822; user@host" → "user@host" (the address-type / diagnostic-type prefix goes)."""
    kind, sep, rest = value.partition(";")
    return rest.strip() if sep and " " not in kind.strip() else value.strip()


def _bounce(parts: list[Message], notes: list[str]) -> BounceInfo | None:
    """The bounce of a multipart/report; every status part counts (some MTAs send two)."""
    blocks: list[list[tuple[str, str]]] = []
    returned = None
    found = False
    for part in parts:
        info = _part_info(part, notes)
        if info.content_type in _STATUS_TYPES:
            found = True
            blocks.extend(_part_fields(part, info, notes))
        elif info.content_type in _RETURNED_TYPES and returned is None:
            returned = part
    if not found:
        return None
    return _bounce_from_blocks(blocks, _returned_message_id(returned, notes))


def _part_fields(part: Message, info: _PartInfo, notes: list[str]) -> list[list[tuple[str, str]]]:
    try:
        payload = part.get_payload()
        if not isinstance(payload, list):
            payload = _decode_bytes(_payload_bytes(part, notes), info.params.get("charset"), notes)
        return _status_blocks(payload)
    except Exception:
        return []


def _bounce_from_blocks(blocks: list[list[tuple[str, str]]], original: str | None) -> BounceInfo:
    recipients = []
    for block in blocks:
        who = _field(block, "final-recipient") or _field(block, "original-recipient")
        if who:
            address = _valid_address(_typed_value(who).strip("<>")).lower()
            action = _field(block, "action").lower().split(" ", 1)[0]
            status = _STATUS_CODE.search(_field(block, "status"))
            diagnostic = _typed_value(_field(block, "diagnostic-code"))
            recipients.append((address, action, status.group(0) if status else "", diagnostic))
    known = any(action for _, action, _, _ in recipients)
    failed = [r for r in recipients if r[1] == "failed" or not known]
    first = failed[0] if failed else (recipients[0] if recipients else ("", "", "", ""))
    addresses = tuple(dict.fromkeys(r[0] for r in failed if r[0]))
    permanent = any(r[1] == "failed" or r[2].startswith("5") for r in recipients)
    return BounceInfo(original, addresses, first[2], first[3][:2000], permanent)


def _returned_message_id(part: Message | None, notes: list[str]) -> str | None:
    if part is None:
        return None
    try:
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            value = _raw_header(payload[0], "message-id")
        else:
            text = _decode_bytes(_payload_bytes(part, notes), None, notes)
            fields = _field_blocks(text)
            value = _field(fields[0], "message-id") if fields else ""
    except Exception:
        return None
    return normalise_message_id(value) if value.strip() else None


# ---------------------------------------------------------------------------------------------
# Entry point.


def _linesep(raw: bytes) -> str:
    end = raw.find(b"\n")
    return "\r\n" if end > 0 and raw[end - 1 : end] == b"\r" else "\n"


def _parse_tree(raw: bytes, notes: list[str]) -> Message | None:
    try:
        return _PARSER.parsebytes(raw)
    except Exception as exc:
        notes.append(f"parse-error:{type(exc).__name__}")
    try:
        return _PARSER.parsebytes(raw, headersonly=True)
    except Exception as exc:
        notes.append(f"parse-error:{type(exc).__name__}")
        return None


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse raw RFC 5322 bytes into what the helpdesk stores and shows. Never raises."""
    raw = bytes(raw)
    try:
        return _parse(raw)
    except Exception as exc:  # last resort: a message is never lost to a parser bug
        return _unparsed(raw, f"parse-error:{type(exc).__name__}")


def _parse(raw: bytes) -> ParsedMessage:
    notes: list[str] = []
    tree = _parse_tree(raw, notes)
    if tree is None:
        return _unparsed(raw, *notes)
    walker = _Walker(_linesep(raw), notes)
    segments = walker.walk(tree, 0)
    hint = walker.charset_hint
    raw_headers = [
        (str(k), _fix_header(_unfold(str(v)), k, notes, hint)) for k, v in tree.raw_items()
    ]
    headers = tuple((k, _header_text(v, k, notes)) for k, v in raw_headers)
    first: dict[str, str] = {}
    for key, value in raw_headers:
        first.setdefault(key.lower(), value)
    decoded = {k.lower(): v for k, v in reversed(headers)}
    return _assemble(raw, first, decoded, headers, walker, segments, notes)


def _assemble(
    raw: bytes,
    first: dict[str, str],
    decoded: dict[str, str],
    headers: tuple[tuple[str, str], ...],
    walker: _Walker,
    segments: list[Segment],
    notes: list[str],
) -> ParsedMessage:
    senders = _addresses("From", first.get("from", ""), notes)
    for required in ("From", "Date", "Message-ID"):
        if required.lower() not in first:
            notes.append(f"missing-header:{required}")
    date = _date(decoded.get("date", ""))
    if date is None and "date" in first:
        notes.append("unparseable-date")
    return ParsedMessage(
        message_id=normalise_message_id(first.get("message-id", "")),
        in_reply_to=_message_ids(first.get("in-reply-to", "")),
        references=_message_ids(first.get("references", "")),
        subject=decoded.get("subject", ""),
        sender=senders[0] if senders else None,
        to=_addresses("To", first.get("to", ""), notes),
        cc=_addresses("Cc", first.get("cc", ""), notes),
        reply_to=_addresses("Reply-To", first.get("reply-to", ""), notes),
        date=date,
        date_header=decoded.get("date", ""),
        text_body=_segments_text(segments),
        html_body="\n".join(walker.html),
        attachments=tuple(walker.attachments),
        defects=tuple(dict.fromkeys(notes))[:_MAX_DEFECTS],
        auto_submitted=_keyword(decoded.get("auto-submitted", ""))[:64],
        precedence=_keyword(decoded.get("precedence", ""))[:64],
        has_list_headers=any(k.lower().startswith("list-") for k, _ in headers),
        bounce=walker.bounce,
        headers=headers,
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
    )


def _keyword(value: str) -> str:
    """The keyword of Auto-Submitted / Precedence, without comments or parameters."""
    return re.split(r"[;(\s]", value.strip(), maxsplit=1)[0].lower()


def _unparsed(raw: bytes, *notes: str) -> ParsedMessage:
    """What is left when even the header parse fails: the bytes as text, nothing else."""
    text = _clean_body_text(raw.decode("utf-8", "replace"))
    return ParsedMessage(
        message_id=None,
        in_reply_to=(),
        references=(),
        subject="",
        sender=None,
        to=(),
        cc=(),
        reply_to=(),
        date=None,
        date_header="",
        text_body=text,
        html_body="",
        attachments=(),
        defects=tuple(dict.fromkeys(notes)),
        auto_submitted="",
        precedence="",
        has_list_headers=False,
        bounce=None,
        headers=(),
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
    )
