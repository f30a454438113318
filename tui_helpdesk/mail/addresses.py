"""Header values a person types (F43): addresses and one-line texts, checked before any of it
can reach a header of a mail we send.

A value with a line break or any other control character is refused, never cleaned: a CR/LF
in a subject or an address is how headers are injected ("x\\r\\nBcc: victim"), and a person
who typed one should hear so; so is text shaped like an RFC 2047 encoded word
(`=?utf-8?q?...?=`), which mail programs would show as something else. An address is exactly
one addr-spec, `name@example.com` (or `<name@example.com>`): an ASCII dot-atom local part
(beyond ASCII needs SMTPUTF8 on every hop, which we cannot promise) and a host name (IDNA
A-labels for one beyond ASCII). No display name (the trick `"boss@acme.test" <evil@x.test>`),
no quoted local part, no comment, no group, no list (a comma is never part of an address we
accept). What we accept survives being written into a header and read back as exactly that
one address (tests/test_compose.py checks this with hypothesis).

Text derived from mail (a customer's subject quoted in our reply) is not a person's typing:
`clean_line` makes it one safe line instead of refusing it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tui_helpdesk.errors import Invalid

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # never in a header line
ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[bBqQ]\?[^?\s]*\?=")  # RFC 2047: read as other text
ATEXT = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-"
)
LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
LOCAL_MAX = 64
DOMAIN_MAX = 253
ADDRESS_MAX = 254  # RFC 5321: a path is at most 256 octets with its angle brackets


def clean_line(text: str, limit: int) -> str:
    """One header-safe line from derived text: control characters and breaks become spaces,
    runs of space one, length bounded."""
    return " ".join(CONTROL.sub(" ", text).split())[:limit]


def one_line(value: str, *, field: str, limit: int, what: str | None = None) -> str:
    """A person's one-line header text (a subject, a name), stripped; refused with the field
    named when it holds a line break or control character, or is longer than `limit`."""
    what = what or field
    if CONTROL.search(value):
        raise Invalid(
            f"{what} must be one line: line breaks and control characters are refused "
            "(they would let the text write headers of its own)",
            field=field,
        )
    word = ENCODED_WORD.search(value)
    if word is not None:
        raise Invalid(
            f"{what} holds {word.group(0)!r}, which mail programs show as other text (an "
            "RFC 2047 encoded word): write it differently",
            field=field,
        )
    value = value.strip()
    if len(value) > limit:
        raise Invalid(f"{what} must be at most {limit} characters, got {len(value)}", field=field)
    return value


def parse_address(value: str, *, field: str) -> str:
    """The one address `value` names, normalised (domain lowercased, IDNA A-labels), or
    Invalid naming the field and what is wrong."""
    if CONTROL.search(value):
        raise Invalid(
            f"{field}: an address must be one line without control characters: {value!r}",
            field=field,
        )
    text = value.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    _refuse_more_than_an_address(text, value, field)
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise Invalid(f"{field}: {value!r} is not an address like name@example.com", field=field)
    address = f"{_local_part(local, value, field)}@{_domain(domain, value, field)}"
    if len(address.encode("utf-8")) > ADDRESS_MAX:
        raise Invalid(f"{field}: {value!r} is longer than {ADDRESS_MAX} bytes", field=field)
    return address


def parse_addresses(values: Iterable[str], *, field: str) -> tuple[str, ...]:
    """Each entry one address; the same address twice (any case of its domain) kept once."""
    found: dict[str, str] = {}
    for value in values:
        address = parse_address(value, field=field)
        found.setdefault(address.lower(), address)
    return tuple(found.values())


def _refuse_more_than_an_address(text: str, value: str, field: str) -> None:
    if "," in text or ";" in text:
        raise Invalid(
            f"{field}: one address per entry, {value!r} holds a list or a group "
            "(give each address on its own)",
            field=field,
        )
    if any(c in text for c in '<>"()'):
        raise Invalid(
            f"{field}: give the address alone, like name@example.com, without a name, quotes "
            f"or a comment: {value!r}",
            field=field,
        )
    if any(c.isspace() for c in text):
        raise Invalid(f"{field}: an address has no spaces: {value!r}", field=field)


def _local_part(local: str, value: str, field: str) -> str:
    """An ASCII dot-atom: atext between single dots; never what reads as an encoded word."""
    atoms = local.split(".")
    good = (
        len(local) <= LOCAL_MAX
        and "=?" not in local
        and all(atom and all(c in ATEXT for c in atom) for atom in atoms)
    )
    if not good:
        raise Invalid(
            f"{field}: the part before the @ in {value!r} is not a plain address: use ASCII "
            f"letters, digits and !#$%&'*+/=?^_`{{|}}~- with single dots between them, at most "
            f"{LOCAL_MAX} characters",
            field=field,
        )
    return local


def _domain(domain: str, value: str, field: str) -> str:
    """Host name labels (letters, digits, inner hyphens), at least two; IDNA for the rest."""
    name = domain.lower()
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            name = ""
    labels = name.split(".")
    if len(name) > DOMAIN_MAX or len(labels) < 2 or not all(LABEL.match(x) for x in labels):
        raise Invalid(
            f"{field}: the domain of {value!r} is not a host name like example.com",
            field=field,
        )
    return name
