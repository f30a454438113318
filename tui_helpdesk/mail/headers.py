"""Header values as a person reads them: RFC 2047 words, addresses, Message-IDs, dates.

Tolerant of what real mail sends: raw 8-bit bytes, broken encoded words, ids and addresses the
stdlib header parser chokes on. Every value that leaves here has no control characters (no
header injection when a subject is reused in a reply) and is capped where it meets a VARCHAR
column (Message-ID 998, address 320).
"""

from __future__ import annotations

import binascii
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from tui_helpdesk.mail.charsets import (
    CONTROL_TO_SPACE,
    clean_header_text,
    decode_bytes,
    decode_header_bytes,
    escaped_bytes,
    fix_surrogates,
)
from tui_helpdesk.mail.parsed import Address
from tui_helpdesk.mail.policy import POLICY

_MAX_REFERENCES = 200


def unfold(value: str) -> str:
    if "\n" in value or "\r" in value:
        return value.replace("\r", "").replace("\n", "")
    return value


def fix_header(value: str, name: str, notes: list[str], hint: str | None) -> str:
    """Raw 8-bit header bytes → text (see charsets.decode_header_bytes); notes that it happened."""
    raw = escaped_bytes(value)
    if raw is None:
        return value
    notes.append(f"8bit-header:{name}")
    return decode_header_bytes(raw, hint)


def header_text(raw_value: object, name: str, notes: list[str], hint: str | None = None) -> str:
    """A raw header value as a person reads it: unfolded, 8-bit fixed, decoded, no controls."""
    value = fix_header(unfold(str(raw_value)), name, notes, hint)
    return clean_header_text(decode_words(value, notes))


def keyword(value: str) -> str:
    """The keyword of Auto-Submitted / Precedence, without comments or parameters."""
    return re.split(r"[;(\s]", value.strip(), maxsplit=1)[0].lower()


def parse_date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except Exception:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


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
            out.append(decode_bytes(bytes(pending[1]), pending[0], notes))
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
                out.append(decode_bytes(bytes(pending[1]), pending[0], notes))
            pending = (charset, bytearray(data))
    if pending is not None:
        out.append(decode_bytes(bytes(pending[1]), pending[0], notes))
    out.append(value[pos:])
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Message-IDs.

_BRACKETED = re.compile(r"<([^<>]*)>")


def normalise_message_id(value: str) -> str | None:
    """One id as "<id@host>": first bracketed id (or first word), inner whitespace removed."""
    try:
        text = fix_surrogates(unfold(str(value)))
    except Exception:
        return None
    for match in _BRACKETED.finditer(text):
        core = "".join(match.group(1).split())
        if core:
            return _bracket(core)
    words = text.split()
    return _bracket(words[0].strip("<>")) if words else None


def _bracket(core: str) -> str | None:
    core = core.translate(CONTROL_TO_SPACE).replace(" ", "")[:996]
    return f"<{core}>" if core else None


def message_ids(value: str) -> tuple[str, ...]:
    """Every id in In-Reply-To / References, in order, without duplicates, capped."""
    text = fix_surrogates(unfold(value))
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


def valid_address(spec: str) -> str:
    """The spec as local@domain, domain lowercased; "" when it is not a usable address."""
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


def simple_addresses(value: str) -> list[tuple[str, str]] | None:
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


def stdlib_addresses(name: str, value: str) -> list[tuple[str, str]]:
    """The stdlib's reading (groups flattened); [] when it cannot read the value at all."""
    try:
        header = POLICY.header_factory(name, value)
        return [
            (str(item.display_name or ""), str(item.addr_spec))
            for group in header.groups
            for item in group.addresses
        ]
    except Exception:
        return []


def addresses(name: str, value: str, notes: list[str]) -> tuple[Address, ...]:
    """Address headers: fast path, then the stdlib parser, then a loose search for a@b."""
    value = fix_header(unfold(value), name, notes, None).strip()
    if not value:
        return ()
    pairs = simple_addresses(value)
    if pairs is None:
        pairs = stdlib_addresses(name, value)
    found = []
    for display, spec in pairs:
        address = valid_address(spec)
        if address:
            text = decode_words(fix_surrogates(display), notes) if display else ""
            found.append(Address(clean_header_text(text), address))
    if not found and "@" in value:
        notes.append(f"header-parse-error:{name}")
        loose = (valid_address(m) for m in _LOOSE_ADDRESS.findall(value))
        found = [Address("", a) for a in loose if a]
    return tuple(found)
