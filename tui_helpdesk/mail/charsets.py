"""Bytes → text for mail: declared charset → UTF-8 → a lenient last resort; never an exception.

Also the rules that keep the resulting strings safe to store and show (no NUL, no lone
surrogates — PostgreSQL text rejects both — and no control characters in header values), because
undoing surrogate escapes is itself a decode with fallbacks.
"""

from __future__ import annotations

import codecs
import functools

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

CONTROL_TO_SPACE = {c: " " for c in (*range(32), 127)}


@functools.lru_cache(maxsize=512)
def resolve_charset(label: str) -> str | None:
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


def decode_bytes(data: bytes, label: str | None, notes: list[str]) -> str:
    """Decode mail text; notes a defect when the declared charset could not be used."""
    codec = resolve_charset(label) if label else None
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


def decode_header_bytes(raw: bytes, hint: str | None) -> str:
    """Raw 8-bit header bytes → text: UTF-8, else the charset of the message's own text
    (what the sending client most likely used), else windows-1252."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    codec = resolve_charset(hint) if hint else None
    if codec is not None and codec not in _WEAK_LABELS and not codec.startswith(_NOT_ASCII_SAFE):
        try:
            return raw.decode(codec)
        except (UnicodeError, LookupError, ValueError):
            pass
    return _lenient(raw, None)


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
    text = clean_header_text((label or "").strip().lower())[:40]
    return text or "undeclared"


# ---------------------------------------------------------------------------------------------
# Safe strings.


def escaped_bytes(text: str) -> bytes | None:
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


def fix_surrogates(text: str) -> str:
    """Turn surrogate-escaped raw bytes (bad params, odd codecs) back into real text."""
    raw = escaped_bytes(text)
    return text if raw is None else decode_bytes(raw, None, [])


def clean_body_text(text: str) -> str:
    """Body text safe to store and show: LF line ends, no NUL, no surrogates."""
    text = fix_surrogates(text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text


def clean_header_text(text: str) -> str:
    """Header text safe to reuse in a reply: no surrogates, control characters become spaces."""
    return fix_surrogates(text).translate(CONTROL_TO_SPACE).strip()
