"""Delivery status notifications (RFC 3464) → BounceInfo: who failed, why, and for which message.

MTAs disagree on the details (two status parts, text/ instead of message/ types, returned
headers instead of a returned message), so every status part counts and every field is optional.
"""

from __future__ import annotations

import re
from email.message import Message
from typing import Any

from tui_helpdesk.mail.charsets import clean_header_text, decode_bytes
from tui_helpdesk.mail.headers import normalise_message_id, unfold, valid_address
from tui_helpdesk.mail.parsed import BounceInfo
from tui_helpdesk.mail.parts import PartInfo, part_info, payload_bytes, raw_header

STATUS_TYPES = ("message/delivery-status", "text/delivery-status")
STATUS_TYPES += ("message/global-delivery-status",)
_RETURNED_TYPES = ("message/rfc822", "message/global", "text/rfc822-headers")
_RETURNED_TYPES += ("message/rfc822-headers", "message/global-headers")
_STATUS_CODE = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")

FieldBlock = list[tuple[str, str]]


def bounce_info(parts: list[Message], notes: list[str]) -> BounceInfo | None:
    """The bounce of a multipart/report; every status part counts (some MTAs send two)."""
    blocks: list[FieldBlock] = []
    returned = None
    found = False
    for part in parts:
        info = part_info(part, notes)
        if info.content_type in STATUS_TYPES:
            found = True
            blocks.extend(_part_fields(part, info, notes))
        elif info.content_type in _RETURNED_TYPES and returned is None:
            returned = part
    if not found:
        return None
    return _bounce_from_blocks(blocks, _returned_message_id(returned, notes))


def _status_blocks(payload: Any) -> list[FieldBlock]:
    """The field blocks of a delivery-status part, parsed by the email package or by hand."""
    if isinstance(payload, list):
        blocks = []
        for block in payload:
            if isinstance(block, Message):
                blocks.append([(str(k), unfold(str(v)).strip()) for k, v in block.raw_items()])
        return blocks
    return _field_blocks(str(payload or ""))


def _field_blocks(text: str) -> list[FieldBlock]:
    blocks: list[FieldBlock] = [[]]
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


def _field(block: FieldBlock, name: str) -> str:
    for key, value in block:
        if key.lower() == name:
            return clean_header_text(value)
    return ""


def _typed_value(value: str) -> str:
    """ "rfc822; user@host" → "user@host" (the address-type / diagnostic-type prefix goes)."""
    kind, sep, rest = value.partition(";")
    return rest.strip() if sep and " " not in kind.strip() else value.strip()


def _part_fields(part: Message, info: PartInfo, notes: list[str]) -> list[FieldBlock]:
    try:
        payload = part.get_payload()
        if not isinstance(payload, list):
            payload = decode_bytes(payload_bytes(part, notes), info.params.get("charset"), notes)
        return _status_blocks(payload)
    except Exception:
        return []


def _bounce_from_blocks(blocks: list[FieldBlock], original: str | None) -> BounceInfo:
    recipients = []
    for block in blocks:
        who = _field(block, "final-recipient") or _field(block, "original-recipient")
        if who:
            address = valid_address(_typed_value(who).strip("<>")).lower()
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
            value = raw_header(payload[0], "message-id")
        else:
            text = decode_bytes(payload_bytes(part, notes), None, notes)
            fields = _field_blocks(text)
            value = _field(fields[0], "message-id") if fields else ""
    except Exception:
        return None
    return normalise_message_id(value) if value.strip() else None
