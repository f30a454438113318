"""TNEF (winmail.dat): the body and files inside are read; broken or hostile ones are kept as sent.

The streams are built here from the format's definition ([MS-OXTNEF]: a signature, then
attributes of level, id, type, length, data and checksum; MAPI property blocks inside), since
tnefparse only reads. The hostile ones are the shapes tnefparse 1.4.0 would loop on for minutes:
each is parsed in a thread the test waits for with a generous timeout.
"""

from __future__ import annotations

import base64
import struct
import threading

import compressed_rtf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tnefparse.mapi import IMESSAGE_SIG
from tnefparse.tnef import TNEF

from tui_helpdesk.mail.parse import parse_message
from tui_helpdesk.mail.parsed import ParsedMessage
from tui_helpdesk.mail.rtf import rtf_text

# --- building TNEF -------------------------------------------------------------------------------

MESSAGE, ATTACHMENT = 1, 2
PT_LONG, PT_STRING8, PT_UNICODE, PT_BINARY, PT_OBJECT = 0x0003, 0x001E, 0x001F, 0x0102, 0x000D
PR_BODY_HTML, PR_RTF_COMPRESSED = 0x1013, 0x1009
PR_ATTACH_LONG_FILENAME, PR_ATTACH_MIME_TAG, PR_ATTACH_DATA_OBJ = 0x3707, 0x370E, 0x3701


def attribute(level: int, name: int, type_: int, data: bytes) -> bytes:
    checksum = struct.pack("<H", sum(data) & 0xFFFF)
    return struct.pack("<BHHI", level, name, type_, len(data)) + data + checksum


def stream(*attributes: bytes) -> bytes:
    version = attribute(MESSAGE, 0x9006, 0x0008, struct.pack("<I", 0x00010000))
    codepage = attribute(MESSAGE, 0x9007, 0x0006, struct.pack("<II", 1252, 0))
    message_class = attribute(MESSAGE, 0x8008, 0x0007, b"IPM.Microsoft Mail.Note\x00")
    head = struct.pack("<IH", 0x223E9F78, 0x0001)
    return head + version + codepage + message_class + b"".join(attributes)


def variable(tag: int, type_: int, value: bytes) -> bytes:
    return struct.pack("<HHII", type_, tag, 1, len(value)) + value + bytes(-len(value) % 4)


def properties(*values: bytes, count: int | None = None) -> bytes:
    return struct.pack("<I", len(values) if count is None else count) + b"".join(values)


def body(text: str) -> bytes:
    return attribute(MESSAGE, 0x800C, 0x0002, text.encode("cp1252"))


def mapi(*values: bytes) -> bytes:
    return attribute(MESSAGE, 0x9003, 0x0006, properties(*values))


def file(short: str, data: bytes, long: str = "", mime: str = "") -> bytes:
    values = [variable(PR_ATTACH_LONG_FILENAME, PT_UNICODE, f"{long}\x00".encode("utf-16-le"))]
    values = values if long else []
    if mime:
        values.append(variable(PR_ATTACH_MIME_TAG, PT_STRING8, mime.encode() + b"\x00"))
    return b"".join(
        (
            attribute(ATTACHMENT, 0x9002, 0x0006, bytes(14)),
            attribute(ATTACHMENT, 0x8010, 0x0001, short.encode("cp1252") + b"\x00"),
            attribute(ATTACHMENT, 0x800F, 0x0006, data),
            attribute(ATTACHMENT, 0x9005, 0x0006, properties(*values)),
        )
    )


def outlook_mail(tnef: bytes, text: str | None = None, name: str = "winmail.dat") -> bytes:
    """multipart/mixed from Outlook: an optional text part, then the TNEF part in base64."""
    parts = []
    if text is not None:
        parts.append(f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n".encode())
    encoded = base64.encodebytes(tnef).replace(b"\n", b"\r\n")
    parts.append(
        b"Content-Type: application/ms-tnef; name=" + name.encode() + b"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded
    )
    body = b"".join(b"--B\r\n" + p + b"\r\n" for p in parts) + b"--B--\r\n"
    head = b"From: a@example.org\r\nSubject: Outlook\r\nMIME-Version: 1.0\r\n"
    return head + b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n' + body


def files(parsed: ParsedMessage) -> list[tuple[str, str, bytes]]:
    return [(a.filename, a.content_type, a.data) for a in parsed.attachments]


def tnef_defects(parsed: ParsedMessage) -> list[str]:
    return [d for d in parsed.defects if d.startswith(("tnef", "rtf"))]


PDF = b"%PDF-1.4 report\x00\x00"  # trailing NULs: attachment data is kept as sent

# --- what is read --------------------------------------------------------------------------------


def test_tnef_body_becomes_the_text_and_its_files_the_attachments() -> None:
    tnef = stream(
        body("Hello from Outlook.\r\nSee the report."),
        file("REPORT~1.PDF", PDF, long="Bericht März.pdf", mime="application/pdf"),
        file("notes.txt", b"plain notes\n"),
        file("", b"\x01\x02"),
    )
    parsed = parse_message(outlook_mail(tnef))
    assert parsed.text_body == "Hello from Outlook.\nSee the report."
    assert files(parsed) == [
        ("Bericht März.pdf", "application/pdf", PDF),
        ("notes.txt", "text/plain", b"plain notes\n"),
        ("attachment-3.bin", "application/octet-stream", b"\x01\x02"),
    ]
    assert tnef_defects(parsed) == []


def test_guarded_reading_finds_what_tnefparse_finds_in_the_whole_stream() -> None:
    tnef = stream(body("x"), file("a.txt", b"A", long="Long A.txt"), file("b.bin", b"B" * 999))
    direct = TNEF(tnef)
    parsed = parse_message(outlook_mail(tnef))
    assert [(a.filename, a.data) for a in parsed.attachments] == [
        (attachment.long_filename(), attachment.data) for attachment in direct.attachments
    ]


def test_tnef_body_is_used_only_when_the_mail_has_no_other_text() -> None:
    tnef = stream(body("The same words, from the TNEF."), file("a.txt", b"A"))
    parsed = parse_message(outlook_mail(tnef, text="The words of the plain part."))
    assert parsed.text_body == "The words of the plain part."
    assert files(parsed) == [("a.txt", "text/plain", b"A")]


def test_rtf_body_is_turned_into_text() -> None:
    rtf = (
        rb"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss\fcharset0 Arial;}}"
        rb"{\colortbl;\red0\green0\blue0;}\f0\fs20 Gr\'fc\'dfe aus K\'f6ln,\par "
        rb'{\field{\*\fldinst{HYPERLINK "https://example.org"}}{\fldrslt{our site}}}\par '
        rb"\b bold\b0  end\par }"
    )
    tnef = stream(mapi(variable(PR_RTF_COMPRESSED, PT_BINARY, compressed_rtf.compress(rtf))))
    parsed = parse_message(outlook_mail(tnef))
    assert parsed.text_body == "Grüße aus Köln,\nour site\nbold end"
    assert parsed.attachments == ()
    assert tnef_defects(parsed) == []


def test_html_body_is_turned_into_text() -> None:
    html = b"<html><body><p>Dear <b>team</b>,</p><p>thanks.</p></body></html>"
    parsed = parse_message(outlook_mail(stream(mapi(variable(PR_BODY_HTML, PT_BINARY, html)))))
    assert parsed.text_body == "Dear team,\n\nthanks."


def test_tnef_with_nothing_inside_stays_an_attachment() -> None:
    tnef = stream()
    parsed = parse_message(outlook_mail(tnef))
    assert files(parsed) == [("winmail.dat", "application/ms-tnef", tnef)]
    assert tnef_defects(parsed) == []


def test_winmail_dat_sent_as_octet_stream_is_read() -> None:
    tnef = stream(body("Hi"), file("a.txt", b"A"))
    raw = outlook_mail(tnef).replace(b"application/ms-tnef", b"application/octet-stream")
    parsed = parse_message(raw)
    assert (parsed.text_body, files(parsed)) == ("Hi", [("a.txt", "text/plain", b"A")])


# --- broken and hostile TNEF ---------------------------------------------------------------------

GOOD = stream(body("Hello"), file("a.txt", b"A" * 64))


def hostile_property_count() -> bytes:
    block = properties(struct.pack("<HHHH", 0x0002, 0x1234, 1, 0), count=0x7FFFFFFF)
    return stream(attribute(MESSAGE, 0x9003, 0x0006, block))


def hostile_value_count() -> bytes:
    block = properties(struct.pack("<HHI", 0x1002, 0x1234, 0xFFFFFFFF))
    return stream(attribute(MESSAGE, 0x9003, 0x0006, block))


def hostile_attribute_run() -> bytes:
    empty = attribute(ATTACHMENT, 0x800F, 0x0006, b"")
    return stream(attribute(ATTACHMENT, 0x9002, 0x0006, bytes(14)), empty * 8_000)


def hostile_embedded_message() -> bytes:
    inner = struct.pack("<IH", 0x223E9F78, 1) + attribute(
        MESSAGE, 0x9003, 0x0006, properties(struct.pack("<HHHH", 2, 0x1234, 1, 0), count=1 << 30)
    )
    embedded = variable(PR_ATTACH_DATA_OBJ, PT_OBJECT, IMESSAGE_SIG + inner)
    return stream(
        attribute(ATTACHMENT, 0x9002, 0x0006, bytes(14)),
        attribute(ATTACHMENT, 0x9005, 0x0006, properties(embedded)),
    )


BROKEN = {
    "not-tnef": (b"PK\x03\x04 a zip, named winmail.dat", "tnef-error:signature"),
    "bad-checksum": (GOOD.replace(b"A" * 64, b"A" * 63 + b"B"), "tnef-error:checksum"),
    "truncated": (GOOD[: len(GOOD) - 40], "tnef-error:checksum"),
    "property-count": (hostile_property_count(), "tnef-error:property-count"),
    "value-count": (hostile_value_count(), "tnef-error:value-count"),
    "attribute-run": (hostile_attribute_run(), "tnef-error:size"),
    "attachment-flood": (
        stream(attribute(ATTACHMENT, 0x9002, 0x0006, b"") * 9_000),
        "tnef-error:too-many-attributes",
    ),
    "embedded-message": (hostile_embedded_message(), "tnef-error:property-count"),
}


def parse_waiting(raw: bytes) -> ParsedMessage:
    """parse_message in a thread, waited for with a timeout far above its normal milliseconds."""
    result: list[ParsedMessage] = []
    worker = threading.Thread(target=lambda: result.append(parse_message(raw)), daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert result, "parsing the TNEF part did not finish"
    return result[0]


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_broken_tnef_is_kept_byte_for_byte_with_a_defect(case: str) -> None:
    tnef, defect = BROKEN[case]
    parsed = parse_waiting(outlook_mail(tnef, text="Body"))
    assert parsed.text_body == "Body"
    assert files(parsed) == [("winmail.dat", "application/ms-tnef", tnef)]
    assert tnef_defects(parsed) == [defect]


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(GOOD)), noise=st.binary(max_size=64))
def test_damaged_tnef_never_raises_and_keeps_its_bytes(cut: int, noise: bytes) -> None:
    tnef = GOOD[:cut] + noise
    parsed = parse_message(outlook_mail(tnef))
    if tnef_defects(parsed):
        assert files(parsed) == [("winmail.dat", "application/ms-tnef", tnef)]


def test_rtf_that_striprtf_would_backtrack_on_reads_in_time() -> None:
    """Font entries without ";" and unclosed fields: minutes in striprtf alone, linear here."""
    fonts = rb"{\rtf1{\fonttbl " + rb"\f1\fcharset0 x" * 5000 + rb"}}"
    fields = rb"{\rtf1 " + rb'{\field{\*\fldinst{HYPERLINK "a" ' * 5000 + rb"}"
    done: list[str] = []
    worker = threading.Thread(
        target=lambda: done.extend(rtf_text(doc, []) for doc in (fonts, fields)), daemon=True
    )
    worker.start()
    worker.join(timeout=120)
    assert len(done) == 2
