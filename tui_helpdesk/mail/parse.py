"""Bytes → ParsedMessage: what an agent reads and what threading/routing need. Never raises.

Real mail is hostile: unknown charsets, raw 8-bit headers, broken encoded words, missing
boundaries, NUL bytes, Message-IDs that crash the stdlib header parser. Every accessor of the
stdlib `email` package that can raise on such input is wrapped once, in the modules this one
assembles, so that no caller needs its own try/except around mail data. The raw bytes are only
read, never changed.

The parts: charsets (bytes → text with fallbacks, safe strings), headers (RFC 2047 words,
addresses, Message-IDs, dates), parts (one MIME part's accessors), bodies (the MIME walk: text,
HTML, attachments), tnef (winmail.dat: its files and body, checked first by tnef_stream; an RTF
body read by rtf), bounces (delivery status → BounceInfo), policy (the configured stdlib parser).
What parsing returns (ParsedMessage and its parts) is defined in parsed.

Output strings are safe to store: no NUL characters and no lone surrogates (PostgreSQL text
rejects both); header values contain no control characters (no header injection when a subject
is reused in a reply). Lengths that meet VARCHAR columns are capped (Message-ID 998, address
320, content type 255, Content-ID 998, Auto-Submitted 64).
"""

from __future__ import annotations

import hashlib

from tui_helpdesk.mail.bodies import Segment, Walker
from tui_helpdesk.mail.charsets import clean_body_text
from tui_helpdesk.mail.headers import (
    addresses,
    fix_header,
    header_text,
    keyword,
    message_ids,
    normalise_message_id,
    parse_date,
    unfold,
)
from tui_helpdesk.mail.parsed import ParsedMessage
from tui_helpdesk.mail.policy import parse_tree

_MAX_DEFECTS = 60


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse raw RFC 5322 bytes into what the helpdesk stores and shows. Never raises."""
    raw = bytes(raw)
    try:
        return _parse(raw)
    except Exception as exc:  # last resort: a message is never lost to a parser bug
        return _unparsed(raw, f"parse-error:{type(exc).__name__}")


def _linesep(raw: bytes) -> str:
    end = raw.find(b"\n")
    return "\r\n" if end > 0 and raw[end - 1 : end] == b"\r" else "\n"


def _parse(raw: bytes) -> ParsedMessage:
    notes: list[str] = []
    tree = parse_tree(raw, notes)
    if tree is None:
        return _unparsed(raw, *notes)
    walker = Walker(_linesep(raw), notes)
    segments = walker.walk(tree, 0)
    hint = walker.charset_hint
    raw_headers = [
        (str(k), fix_header(unfold(str(v)), k, notes, hint)) for k, v in tree.raw_items()
    ]
    headers = tuple((k, header_text(v, k, notes)) for k, v in raw_headers)
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
    walker: Walker,
    segments: list[Segment],
    notes: list[str],
) -> ParsedMessage:
    senders = addresses("From", first.get("from", ""), notes)
    for required in ("From", "Date", "Message-ID"):
        if required.lower() not in first:
            notes.append(f"missing-header:{required}")
    date = parse_date(decoded.get("date", ""))
    if date is None and "date" in first:
        notes.append("unparseable-date")
    return ParsedMessage(
        message_id=normalise_message_id(first.get("message-id", "")),
        in_reply_to=message_ids(first.get("in-reply-to", "")),
        references=message_ids(first.get("references", "")),
        subject=decoded.get("subject", ""),
        sender=senders[0] if senders else None,
        to=addresses("To", first.get("to", ""), notes),
        cc=addresses("Cc", first.get("cc", ""), notes),
        reply_to=addresses("Reply-To", first.get("reply-to", ""), notes),
        date=date,
        date_header=decoded.get("date", ""),
        text_body=walker.text(segments),
        html_body="\n".join(walker.html),
        attachments=tuple(walker.attachments),
        defects=tuple(dict.fromkeys(notes))[:_MAX_DEFECTS],
        auto_submitted=keyword(decoded.get("auto-submitted", ""))[:64],
        precedence=keyword(decoded.get("precedence", ""))[:64],
        has_list_headers=any(k.lower().startswith("list-") for k, _ in headers),
        bounce=walker.bounce,
        headers=headers,
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
    )


def _unparsed(raw: bytes, *notes: str) -> ParsedMessage:
    """What is left when even the header parse fails: the bytes as text, nothing else."""
    text = clean_body_text(raw.decode("utf-8", "replace"))
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
