"""Wrapped accessors of one MIME part: every stdlib call that can raise on broken input, here once.

What leaves is safe to store: a valid MIME type (else text/plain), a file name without
directories, control or bidi characters, a normalised Content-ID, transfer-decoded bytes.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.message import Message
from io import BytesIO

from tui_helpdesk.mail.charsets import CONTROL_TO_SPACE, fix_surrogates
from tui_helpdesk.mail.headers import decode_words, normalise_message_id, unfold
from tui_helpdesk.mail.policy import GENERATOR_POLICIES


@dataclass
class PartInfo:
    content_type: str
    params: dict[str, str]
    disposition: str  # "" when absent
    filename: str
    content_id: str


def raw_header(part: Message, name: str) -> str:
    wanted = name.lower()
    try:
        for key, value in part.raw_items():
            if key.lower() == wanted:
                return str(value)
    except Exception:
        return ""
    return ""


def part_info(part: Message, notes: list[str]) -> PartInfo:
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
    cid = raw_header(part, "content-id")
    return PartInfo(
        content_type=_mime_type(content_type),
        params={str(k).lower(): fix_surrogates(str(v)) for k, v in params.items()},
        disposition=disposition.lower(),
        filename=safe_filename(str(name), notes),
        content_id=(normalise_message_id(cid) or "") if cid.strip() else "",
    )


# Bidirectional overrides and isolates: "invoice\u202efdp.exe" would show as "invoiceexe.pdf".
_FILENAME_UNSAFE = {
    **CONTROL_TO_SPACE,
    **dict.fromkeys((*range(0x202A, 0x202F), *range(0x2066, 0x206A))),
}


_MIME_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


def _mime_type(value: str) -> str:
    """A syntactically valid type, else text/plain (RFC 2045 5.2: the default for invalid ones)."""
    return valid_mime_type(value) or "text/plain"


def valid_mime_type(value: str) -> str | None:
    """The type lowercased when it is syntactically valid, else None."""
    value = value.strip().lower()
    return value if _MIME_TYPE.fullmatch(value) else None


def safe_filename(name: str, notes: list[str]) -> str:
    """Decoded file name without directories, control or bidi characters (safe to save as)."""
    name = fix_surrogates(name)
    if "=?" in name:
        name = decode_words(name, notes)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    return name.translate(_FILENAME_UNSAFE).strip().lstrip(".")[:255]


def payload_bytes(part: Message, notes: list[str]) -> bytes:
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


def part_defects(part: Message) -> list[str]:
    try:
        return [type(defect).__name__ for defect in part.defects]
    except Exception:
        return []


def transfer_decode(data: bytes, encoding: str) -> bytes:
    try:
        if encoding == "base64":
            return binascii.a2b_base64(re.sub(rb"[^A-Za-z0-9+/=]", b"", data))
        return binascii.a2b_qp(data)
    except (binascii.Error, ValueError):
        return data


def flatten(message: Message, linesep: str, notes: list[str]) -> bytes:
    """Bytes of an attached message (regenerated without refolding; the outer raw is kept)."""
    buffer = BytesIO()
    try:
        generator = BytesGenerator(buffer, mangle_from_=False, policy=GENERATOR_POLICIES[linesep])
        generator.flatten(message)
        return buffer.getvalue()
    except Exception as exc:
        notes.append(f"attached-message-error:{type(exc).__name__}")
    try:
        head = "".join(f"{k}: {unfold(str(v))}{linesep}" for k, v in message.raw_items())
        head_bytes = (head + linesep).encode("utf-8", "surrogateescape")
    except Exception:
        head_bytes = b""
    return head_bytes + payload_bytes(message, notes)


def flatten_body(part: Message, linesep: str, notes: list[str]) -> bytes:
    """The body of a part whose payload the parser split into sub-messages (report fields)."""
    data = flatten(part, linesep, notes)
    separator = (linesep + linesep).encode()
    if data.startswith(linesep.encode()):
        return data[len(linesep) :]
    _, found, body = data.partition(separator)
    return body if found else data
