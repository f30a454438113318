"""mail/parse.py: what an agent reads from real, broken and hostile mail; never an exception."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_helpdesk.mail.headers import normalise_message_id, simple_addresses, stdlib_addresses
from tui_helpdesk.mail.parse import parse_message
from tui_helpdesk.mail.parsed import Address, ParsedMessage

CRLF = "\r\n"


def mail(*headers: str, body: str | bytes = "Hello.\r\n", linesep: str = CRLF) -> bytes:
    """A message from header lines and a body; bytes pass through untouched."""
    head = linesep.join(headers).encode("utf-8") + (linesep * 2).encode()
    return head + (body if isinstance(body, bytes) else body.encode("utf-8"))


def plain(body: bytes, charset: str | None, *extra: str) -> bytes:
    ctype = "Content-Type: text/plain" + (f"; charset={charset}" if charset is not None else "")
    return mail("From: a@example.org", "Subject: x", ctype, *extra, body=body)


def multipart(ctype: str, parts: list[bytes], *headers: str, boundary: str = "BOUND") -> bytes:
    body = b"preamble\r\n"
    for part in parts:
        body += f"--{boundary}\r\n".encode() + part + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return mail(
        "From: a@example.org",
        "Subject: multi",
        "MIME-Version: 1.0",
        f'Content-Type: {ctype}; boundary="{boundary}"',
        *headers,
        body=body,
    )


def part(*headers: str, body: bytes | str = b"") -> bytes:
    data = body if isinstance(body, bytes) else body.encode("utf-8")
    return (CRLF.join(headers) + CRLF + CRLF).encode("utf-8") + data


def assert_sane(parsed: ParsedMessage, raw: bytes) -> None:
    """Invariants every caller relies on, whatever the input."""
    assert isinstance(parsed, ParsedMessage)
    assert parsed.sha256 == hashlib.sha256(raw).hexdigest()
    assert parsed.size == len(raw)
    texts = [parsed.subject, parsed.text_body, parsed.html_body, parsed.date_header]
    texts += [parsed.auto_submitted, parsed.precedence, *parsed.defects]
    texts += [v for pair in parsed.headers for v in pair]
    for address in (parsed.sender, *parsed.to, *parsed.cc, *parsed.reply_to):
        if address is not None:
            assert isinstance(address, Address)
            assert "@" in address.address
            texts += [address.name, address.address]
    for attachment in parsed.attachments:
        assert isinstance(attachment.data, bytes)
        assert attachment.filename
        assert attachment.disposition in ("attachment", "inline")
        texts += [attachment.filename, attachment.content_type, attachment.content_id]
    ids = [i for i in (parsed.message_id, *parsed.in_reply_to, *parsed.references) if i]
    for value in ids:
        assert value.startswith("<") and value.endswith(">") and len(value) <= 998
    for text in texts + ids:
        assert isinstance(text, str)
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogates: storable in PostgreSQL
    for _, value in parsed.headers:
        assert "\n" not in value and "\r" not in value
    assert parsed.date is None or parsed.date.tzinfo is not None
    if parsed.bounce is not None:
        assert all(r == r.lower() for r in parsed.bounce.failed_recipients)


# --- the ordinary case ---------------------------------------------------------------------------


def test_plain_message_fields() -> None:
    raw = mail(
        'From: "Doe, John" <John.Doe@Example.COM>',
        "To: Support <support@acme.test>, bob@Example.org",
        "Cc: =?utf-8?q?J=C3=B6rg?= <j@x.de>",
        "Reply-To: replies@example.com",
        "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= about\r\n my order",
        "Message-ID:  <abc.123@mail.example.com> ",
        "In-Reply-To: <prev@example.com> (comment)",
        "References: <first@example.com>\r\n <prev@example.com>",
        "Date: Mon, 1 Jan 2024 10:00:00 +0100",
        "Auto-Submitted: Auto-Replied (vacation)",
        "Precedence: BULK",
        "Content-Type: text/plain; charset=utf-8",
        body="Hi,\r\nwhere is my order?\r\n",
    )
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert parsed.sender == Address("Doe, John", "John.Doe@example.com")
    assert parsed.to == (Address("Support", "support@acme.test"), Address("", "bob@example.org"))
    assert parsed.cc == (Address("Jörg", "j@x.de"),)
    assert parsed.reply_to == (Address("", "replies@example.com"),)
    assert parsed.subject == "Grüße about my order"
    assert parsed.message_id == "<abc.123@mail.example.com>"
    assert parsed.in_reply_to == ("<prev@example.com>",)
    assert parsed.references == ("<first@example.com>", "<prev@example.com>")
    assert parsed.date == datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
    assert parsed.date_header == "Mon, 1 Jan 2024 10:00:00 +0100"
    assert parsed.text_body == "Hi,\nwhere is my order?"
    assert parsed.html_body == ""
    assert parsed.attachments == ()
    assert parsed.bounce is None
    assert parsed.auto_submitted == "auto-replied"
    assert parsed.precedence == "bulk"
    assert parsed.has_list_headers is False
    assert parsed.defects == ()
    assert parsed.header("SUBJECT") == "Grüße about my order"
    assert parsed.header("x-missing") == ""
    assert [name for name, _ in parsed.headers][:2] == ["From", "To"]


def test_list_headers_and_lf_only_mail() -> None:
    raw = mail("From: a@b.org", "List-Unsubscribe: <mailto:x@y>", "Subject: s", linesep="\n")
    parsed = parse_message(raw + b"second line\n")
    assert parsed.has_list_headers is True
    assert parsed.text_body == "Hello.\nsecond line"


# --- charsets ------------------------------------------------------------------------------------

CHARSET_CASES = [
    ("iso-8859-1", "Grüße, café".encode("latin-1"), "Grüße, café", None),
    ("windows-1252", "“quoted” – dash €".encode("cp1252"), "“quoted” – dash €", None),
    ("iso-8859-1", "“smart” quotes".encode("cp1252"), "“smart” quotes", None),
    ("koi8-r", "Привет мир".encode("koi8-r"), "Привет мир", None),
    ("iso-8859-2", "Zażółć gęślą".encode("iso-8859-2"), "Zażółć gęślą", None),
    ("iso-2022-jp", "こんにちは世界".encode("iso-2022-jp"), "こんにちは世界", None),
    ("shift_jis", "日本語のテキスト".encode("shift_jis"), "日本語のテキスト", None),
    ("gb2312", "中文邮件内容".encode("gb2312"), "中文邮件内容", None),
    ("big5", "繁體中文內容".encode("big5"), "繁體中文內容", None),
    ("euc-kr", "한국어 메일".encode("euc-kr"), "한국어 메일", None),
    ("ks_c_5601-1987", "한국어 메일".encode("cp949"), "한국어 메일", None),
    ("utf-16", "utf sixteen ü".encode("utf-16"), "utf sixteen ü", None),
    ("windows-1251", "Кириллица".encode("cp1251"), "Кириллица", None),
    ("x-mac-cyrillic", "Кириллица".encode("mac_cyrillic"), "Кириллица", None),
    ("X-GBK", "中文邮件".encode("gbk"), "中文邮件", None),
    ('"UTF-8"', "quoted label ü".encode(), "quoted label ü", None),
    ("us-ascii", "declared ascii, really utf-8 ü".encode(), "declared ascii, really utf-8 ü", None),
    ("X-UNKNOWN", "unknown label ü".encode(), "unknown label ü", "charset-fallback:x-unknown"),
    ("X-UNKNOWN", "unknown, cp1252 é".encode("cp1252"), "unknown, cp1252 é", "charset-fallback"),
    ("", "empty label é".encode("cp1252"), "empty label é", "charset-fallback:undeclared"),
    (None, "undeclared utf-8 ü".encode(), "undeclared utf-8 ü", None),
    (None, "undeclared 8-bit é".encode("cp1252"), "undeclared 8-bit é", "charset-fallback"),
    (
        "utf-8",
        "utf-8 label, latin-1 é".encode("latin-1"),
        "utf-8 label, latin-1 é",
        "charset-fallback:utf-8",
    ),
    ("base64", b"not a text codec \xe9", "not a text codec é", "charset-fallback:base64"),
    ("unicode-escape", b"\\u0041 stays literal", "\\u0041 stays literal", None),
]


@pytest.mark.parametrize(("charset", "body", "expected", "note"), CHARSET_CASES)
def test_charsets_decode_with_fallback(
    charset: str | None, body: bytes, expected: str, note: str | None
) -> None:
    raw = plain(body, charset, "Content-Transfer-Encoding: 8bit")
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert parsed.text_body.startswith(expected)
    if note is None:
        assert not [d for d in parsed.defects if d.startswith("charset-fallback")]
    else:
        assert any(d.startswith(note) for d in parsed.defects), parsed.defects


def test_mostly_utf8_with_one_broken_byte_stays_utf8() -> None:
    body = "Grüße aus Köln, schöne Größe – ".encode() + b"\xff" + " und Tschüß".encode()
    parsed = parse_message(plain(body, "utf-8"))
    assert parsed.text_body == "Grüße aus Köln, schöne Größe – \ufffd und Tschüß"


def test_quoted_printable_and_base64_bodies() -> None:
    qp_header = "Content-Transfer-Encoding: quoted-printable"
    qp = plain(b"caf=C3=A9 au lait=\r\n continued", "utf-8", qp_header)
    assert parse_message(qp).text_body == "café au lait continued"
    b64 = base64.encodebytes("Grüße".encode("latin-1"))
    raw = plain(b64, "iso-8859-1", "Content-Transfer-Encoding: base64")
    assert parse_message(raw).text_body == "Grüße"


# --- headers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=?utf-8?q?caf=C3=A9?=", "café"),
        ("=?UTF-8?B?R3LDvMOfZQ==?=", "Grüße"),
        ("=?utf-8?b?R3LDvMOfZQ?=", "Grüße"),  # missing padding
        ("=?iso-8859-1?q?a?= =?iso-8859-1?q?b?=", "ab"),  # whitespace between words dropped
        ("=?utf-8?q?a?= plain =?utf-8?q?b?=", "a plain b"),
        ("=?utf-8?B?4pyT?= =?utf-8?B?4pyU?=", "✓✔"),
        ("=?utf-8?q?=E2=9C?= =?utf-8?q?=93_done?=", "✓ done"),  # character split across words
        ("prefix=?utf-8?q?caf=C3=A9?=suffix", "prefixcafésuffix"),  # no separating spaces
        ("=?utf-8?q?with spaces inside?=", "with spaces inside"),
        ("=?utf-8*en?q?with_language?=", "with language"),
        ("=?x-unknown?q?caf=C3=A9?=", "café"),
        ("=?koi8-r?b?8NLJ18XU?=", "Привет"),
        ("=?utf-8?q?line=0D=0Abreak?=", "line  break"),  # no header injection
        ("=?utf-8?x?unknown-encoding?=", "=?utf-8?x?unknown-encoding?="),
        ("=?utf-8?q?unterminated", "=?utf-8?q?unterminated"),
    ],
)
def test_encoded_words(value: str, expected: str) -> None:
    raw = mail("From: a@b.org", f"Subject: {value}")
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert parsed.subject == expected


def test_raw_8bit_headers_are_decoded() -> None:
    raw = (
        b"From: J\xc3\xb6rg M\xc3\xbcller <jm@example.de>\r\n"
        b"To: Caf\xe9 <cafe@example.fr>\r\n"
        b"Subject: Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\r\n\r\nbody\r\n"
    )
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert parsed.sender == Address("Jörg Müller", "jm@example.de")
    assert parsed.to == (Address("Café", "cafe@example.fr"),)
    assert parsed.subject == "Grüße aus Köln"
    assert "8bit-header:Subject" in parsed.defects


def test_raw_8bit_header_uses_the_charset_of_the_text() -> None:
    raw = (
        "Subject: 繁體中文主旨\r\nFrom: a@b.tw\r\nContent-Type: text/plain; charset=big5\r\n\r\n"
        "內容\r\n"
    ).encode("big5")
    parsed = parse_message(raw)
    assert parsed.subject == "繁體中文主旨"
    assert parsed.text_body == "內容"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<abc@host>", "<abc@host>"),
        ("  <abc@host>  ", "<abc@host>"),
        ("abc@host", "<abc@host>"),
        ("<<abc@host>>", "<abc@host>"),
        ("<abc\r\n @host>", "<abc@host>"),
        ("<[...]=@host>", "<[...]=@host>"),  # IndexError in the stdlib parser on 3.11
        ("<> <real@host>", "<real@host>"),
        ("Your message <id@host> of Monday", "<id@host>"),
        ("", None),
        ("   ", None),
        ("<>", None),
    ],
)
def test_normalise_message_id(value: str, expected: str | None) -> None:
    assert normalise_message_id(value) == expected


def test_broken_message_id_header_does_not_crash() -> None:
    raw = mail("From: a@b.org", "Message-ID: <[...]=@host>", "References: <[x]=@h> <y@h>")
    parsed = parse_message(raw)
    assert parsed.message_id == "<[...]=@host>"
    assert parsed.references == ("<[x]=@h>", "<y@h>")


def test_overlong_message_id_is_capped_consistently() -> None:
    long_id = "<" + "x" * 2000 + "@host>"
    parsed = parse_message(
        mail("From: a@b.org", f"Message-ID: {long_id}", f"References: {long_id}")
    )
    assert parsed.message_id is not None and len(parsed.message_id) == 998
    assert parsed.references == (parsed.message_id,)


def test_references_are_deduplicated_and_capped() -> None:
    ids = " ".join(f"<id{n}@h>" for n in range(500))
    parsed = parse_message(mail("From: a@b.org", f"References: {ids} <id1@h>"))
    assert len(parsed.references) == 200
    assert parsed.references[0] == "<id0@h>"
    assert parsed.references[-1] == "<id499@h>"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("To: unlisted-recipients:; (no To-header on input)", ()),
        ("To: Undisclosed recipients:;", ()),
        ('To: Team: a@x.org, "B, C" <b@x.org>;, d@y.org', ("a@x.org", "b@x.org", "d@y.org")),
        ("To: John Q. Public <jqp@x.org>", ("jqp@x.org",)),
        ("To: jqp@x.org (John Public)", ("jqp@x.org",)),
        ("To: bad <<a@b.org>>", ("a@b.org",)),
        ("To: John Doe", ()),
        ("To: <a@b.org>,", ("a@b.org",)),
        ('To: "john doe"@Example.org', ('"john doe"@example.org',)),
    ],
)
def test_address_lists_never_crash(header: str, expected: tuple[str, ...]) -> None:
    raw = mail("From: a@b.org", header)
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert tuple(a.address for a in parsed.to) == expected


def test_from_without_an_address_gives_no_sender() -> None:
    parsed = parse_message(mail("From: MAILER-DAEMON", "Subject: x"))
    assert parsed.sender is None
    assert "missing-header:From" not in parsed.defects


ATEXT = st.text(st.sampled_from("abcXYZ019!#$%&'*+-/=?^_`{|}~ü"), min_size=1, max_size=6)


@st.composite
def simple_mailbox(draw: st.DrawFn) -> str:
    spec = draw(ATEXT) + "@" + ".".join(draw(st.lists(ATEXT, min_size=1, max_size=3)))
    kind = draw(st.sampled_from(["bare", "angle", "phrase", "quoted"]))
    if kind == "bare":
        return spec
    if kind == "angle":
        return f"<{spec}>"
    if kind == "phrase":
        return " ".join(draw(st.lists(ATEXT, min_size=1, max_size=3))) + f" <{spec}>"
    name = draw(st.text(st.sampled_from("ab ,.;:<>@()ü"), max_size=10))
    return f'"{name}" <{spec}>'


@settings(max_examples=300, deadline=None)
@given(st.lists(simple_mailbox(), min_size=1, max_size=4))
def test_fast_address_path_agrees_with_stdlib(mailboxes: list[str]) -> None:
    value = ", ".join(mailboxes)
    fast = simple_addresses(value)
    assert fast is not None
    assert fast == stdlib_addresses("To", value)


# --- dates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tue, 2 Jan 2024 08:30:00 -0500", datetime(2024, 1, 2, 13, 30, tzinfo=UTC)),
        ("2 Jan 2024 08:30:00 -0000", datetime(2024, 1, 2, 8, 30, tzinfo=UTC)),
        ("Tue, 2 Jan 24 08:30 +0000", datetime(2024, 1, 2, 8, 30, tzinfo=UTC)),
        ("yesterday at noon", None),
        ("Tue, 2 Jan 2024 08:30:00 +9999", None),
        ("Tue, 99 Foo 99999 99:99:99", None),
    ],
)
def test_dates_are_aware_or_none(value: str, expected: datetime | None) -> None:
    parsed = parse_message(mail("From: a@b.org", f"Date: {value}"))
    assert parsed.date == expected
    if expected is None:
        assert "unparseable-date" in parsed.defects
    else:
        assert parsed.date is not None and parsed.date.utcoffset() is not None


def test_date_keeps_its_offset() -> None:
    parsed = parse_message(mail("From: a@b.org", "Date: Tue, 2 Jan 2024 08:30:00 +0530"))
    assert parsed.date is not None
    assert parsed.date.utcoffset() == timedelta(hours=5, minutes=30)
    assert parsed.date == datetime(2024, 1, 2, 8, 30, tzinfo=timezone(timedelta(hours=5.5)))


def test_missing_headers_are_noted() -> None:
    raw = b"\r\nJust a body, no headers at all.\r\n"
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert parsed.sender is None and parsed.message_id is None and parsed.date is None
    assert parsed.subject == ""
    assert {"missing-header:From", "missing-header:Date", "missing-header:Message-ID"} <= set(
        parsed.defects
    )
    assert "Just a body" in parsed.text_body


# --- bodies: html, alternatives, flowed ----------------------------------------------------------

HTML = (
    "<html><head><style>p {color: red}</style></head><body>"
    "<p>Dear <b>support</b>,</p><ol><li>Order 1</li></ol><p>1. Not a list item</p>"
    '<p>See <a href="https://example.com/track?id=1">tracking</a>.</p>'
    '<img src="cid:logo@x" alt="Logo">'
    f"<p>{'long line ' * 40}</p></body></html>"
)


def test_html_only_mail_is_converted() -> None:
    raw = mail("From: a@b.org", "Content-Type: text/html; charset=utf-8", body=HTML)
    parsed = parse_message(raw)
    assert parsed.html_body == HTML
    text = parsed.text_body
    assert "Dear support," in text
    assert "1. Order 1" in text
    assert "1. Not a list item" in text  # no Markdown escaping
    assert "[tracking](https://example.com/track?id=1)" in text
    assert "Logo" in text and "color: red" not in text
    assert ("long line " * 40).strip() in text  # no wrapping
    assert "<p>" not in text and "<b>" not in text


def test_alternative_prefers_plain_text() -> None:
    raw = multipart(
        "multipart/alternative",
        [
            part("Content-Type: text/plain; charset=utf-8", body="The plain text."),
            part("Content-Type: text/html; charset=utf-8", body="<p>The <b>HTML</b>.</p>"),
        ],
    )
    parsed = parse_message(raw)
    assert parsed.text_body == "The plain text."
    assert parsed.html_body == "<p>The <b>HTML</b>.</p>"


def test_alternative_with_empty_plain_uses_html() -> None:
    raw = multipart(
        "multipart/alternative",
        [
            part("Content-Type: text/plain", body="  \r\n"),
            part("Content-Type: text/html", body="<p>Only here</p>"),
        ],
    )
    assert parse_message(raw).text_body == "Only here"


def test_alternative_keeps_calendar_as_attachment() -> None:
    raw = multipart(
        "multipart/alternative",
        [
            part("Content-Type: text/plain", body="Invitation"),
            part("Content-Type: text/calendar; method=REQUEST", body="BEGIN:VCALENDAR"),
        ],
    )
    parsed = parse_message(raw)
    assert parsed.text_body == "Invitation"
    assert [(a.content_type, a.data) for a in parsed.attachments] == [
        ("text/calendar", b"BEGIN:VCALENDAR")
    ]


def test_format_flowed_is_unflowed() -> None:
    body = "This is a long \r\nparagraph that \r\nwas wrapped.\r\n> quoted \r\n> text\r\n-- \r\nSig"
    raw = plain(body.encode(), "utf-8; format=flowed")
    assert parse_message(raw).text_body == (
        "This is a long paragraph that was wrapped.\n> quoted text\n-- \nSig"
    )


def test_format_flowed_delsp() -> None:
    raw = plain(b"split wo \r\nrd here", "utf-8; format=flowed; delsp=yes")
    assert parse_message(raw).text_body == "split word here"


def test_inline_text_parts_are_shown_and_kept() -> None:
    raw = multipart(
        "multipart/mixed",
        [
            part("Content-Type: text/plain", body="Body first."),
            part(
                "Content-Type: text/plain; charset=iso-8859-1",
                'Content-Disposition: inline; filename="=?iso-8859-1?Q?Fr=F6sche.txt?="',
                body="Die Fr\xf6sche".encode("latin-1"),
            ),
        ],
    )
    parsed = parse_message(raw)
    assert parsed.text_body == "Body first.\n\nDie Frösche"
    assert [a.filename for a in parsed.attachments] == ["Frösche.txt"]


def test_multipart_without_boundary_shows_its_text() -> None:
    raw = mail("From: a@b.org", "Content-Type: multipart/mixed", body="Text despite it all.")
    parsed = parse_message(raw)
    assert parsed.text_body == "Text despite it all."
    assert "NoBoundaryInMultipartDefect" in parsed.defects


# --- attachments ---------------------------------------------------------------------------------

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4


def test_attachments_with_names_types_and_sizes() -> None:
    raw = multipart(
        "multipart/mixed",
        [
            part("Content-Type: text/plain", body="See attached."),
            part(
                "Content-Type: application/pdf",
                "Content-Transfer-Encoding: base64",
                "Content-Disposition: attachment; filename*=utf-8''Rechnung%20M%C3%A4rz.pdf",
                body=base64.encodebytes(PDF),
            ),
            part(
                'Content-Type: application/octet-stream; name="=?utf-8?B?0L7RgtGH0ZHRgi56aXA=?="',
                "Content-Transfer-Encoding: base64",
                body=base64.encodebytes(b"zipdata"),
            ),
            part(
                "Content-Type: text/plain",
                'Content-Disposition: attachment; filename="../../etc/passwd"',
                body="root:x:0:0",
            ),
            part("Content-Type: image/png", "Content-Transfer-Encoding: base64", body="iVBORw=="),
        ],
    )
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert parsed.text_body == "See attached."
    found = [(a.filename, a.content_type, len(a.data), a.disposition) for a in parsed.attachments]
    assert found == [
        ("Rechnung März.pdf", "application/pdf", len(PDF), "attachment"),
        ("отчёт.zip", "application/octet-stream", 7, "attachment"),
        ("passwd", "text/plain", 10, "attachment"),
        ("attachment-4.png", "image/png", 4, "attachment"),
    ]
    assert parsed.attachments[0].data == PDF


def test_filenames_cannot_spoof_or_escape() -> None:
    raw = multipart(
        "multipart/mixed",
        [
            part(
                "Content-Type: application/octet-stream",
                "Content-Disposition: attachment; filename*=utf-8''invoice%E2%80%AEfdp.exe",
                body=b"MZ",
            ),
            part(
                "Content-Type: application/octet-stream",
                'Content-Disposition: attachment; filename="../../.bashrc"',
                body=b"x",
            ),
        ],
    )
    names = [a.filename for a in parse_message(raw).attachments]
    assert names == ["invoicefdp.exe", "bashrc"]


def test_rfc2231_continuations() -> None:
    raw = multipart(
        "multipart/mixed",
        [
            part(
                "Content-Type: application/pdf",
                "Content-Disposition: attachment;\r\n filename*0*=utf-8''%C3%9C;\r\n"
                " filename*1=ber_long_name.pdf",
                body=b"x",
            )
        ],
    )
    assert parse_message(raw).attachments[0].filename == "Über_long_name.pdf"


def test_inline_image_in_related() -> None:
    html = part("Content-Type: text/html", body='<p>Hi</p><img src="cid:logo@x">')
    image = part(
        "Content-Type: image/png; name=logo.png",
        "Content-ID: <logo@x>",
        "Content-Transfer-Encoding: base64",
        body=base64.encodebytes(b"\x89PNG data"),
    )
    related = b'Content-Type: multipart/related; boundary="REL"\r\n\r\n'
    related += b"--REL\r\n" + html + b"\r\n--REL\r\n" + image + b"\r\n--REL--\r\n"
    raw = multipart(
        "multipart/alternative",
        [part("Content-Type: text/plain", body="Hi"), related],
    )
    parsed = parse_message(raw)
    assert parsed.text_body == "Hi"
    assert parsed.html_body == '<p>Hi</p><img src="cid:logo@x">'
    (logo,) = parsed.attachments
    assert (logo.filename, logo.disposition, logo.content_id) == ("logo.png", "inline", "<logo@x>")
    assert logo.data == b"\x89PNG data"


def test_attachment_only_mail_has_empty_text() -> None:
    raw = mail(
        "From: a@b.org",
        "Content-Type: application/pdf; name=scan.pdf",
        "Content-Transfer-Encoding: base64",
        body=base64.encodebytes(PDF),
    )
    parsed = parse_message(raw)
    assert parsed.text_body == ""
    assert [(a.filename, a.data) for a in parsed.attachments] == [("scan.pdf", PDF)]


# --- nested messages and bounces -----------------------------------------------------------------

INNER = mail(
    "From: Original Sender <orig@example.net>",
    "To: someone@example.com",
    "Subject: The original",
    "Date: Mon, 1 Jan 2024 10:00:00 +0000",
    "Message-ID: <orig-1@example.net>",
    'Content-Type: multipart/mixed; boundary="IN"',
    body=b"--IN\r\nContent-Type: text/html\r\n\r\n<p>Original <i>words</i></p>\r\n"
    b"--IN\r\nContent-Type: application/pdf; name=inner.pdf\r\n\r\n%PDF\r\n--IN--\r\n",
)


def test_nested_message_is_attached_and_its_text_shown() -> None:
    raw = multipart(
        "multipart/mixed",
        [
            part("Content-Type: text/plain", body="Forwarding this."),
            part("Content-Type: message/rfc822", body=INNER),
        ],
    )
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    (eml,) = parsed.attachments
    assert (eml.filename, eml.content_type) == ("The original.eml", "message/rfc822")
    reparsed = parse_message(eml.data)
    assert reparsed.message_id == "<orig-1@example.net>"
    assert [a.data for a in reparsed.attachments] == [b"%PDF"]
    text = parsed.text_body
    assert text.startswith("Forwarding this.\n\n---------- Attached message ----------")
    assert "From: Original Sender <orig@example.net>" in text
    assert "Subject: The original" in text
    assert "Attachments: inner.pdf" in text
    assert text.endswith("Original words")
    assert parsed.html_body == ""  # the outer message has no HTML of its own
    assert parsed.message_id is None


def test_attached_message_bytes_are_kept_when_well_formed() -> None:
    raw = multipart("multipart/mixed", [part("Content-Type: message/rfc822", body=INNER)])
    assert parse_message(raw).attachments[0].data == INNER


def test_base64_encoded_attached_message_is_decoded() -> None:
    encoded = part(
        "Content-Type: message/rfc822",
        "Content-Transfer-Encoding: base64",
        body=base64.encodebytes(INNER),
    )
    parsed = parse_message(multipart("multipart/mixed", [encoded]))
    (eml,) = parsed.attachments
    assert (eml.filename, eml.data) == ("The original.eml", INNER)
    assert "Subject: The original" in parsed.text_body
    assert parsed.text_body.endswith("Original words")


def test_empty_attached_message_adds_no_text() -> None:
    raw = multipart(
        "multipart/mixed",
        [part("Content-Type: text/plain", body="fw"), part("Content-Type: message/rfc822")],
    )
    parsed = parse_message(raw)
    assert parsed.text_body == "fw"
    assert [a.filename for a in parsed.attachments] == ["message.eml"]


def dsn(status_fields: str, returned: bytes, returned_type: str = "message/rfc822") -> bytes:
    return multipart(
        "multipart/report; report-type=delivery-status",
        [
            part("Content-Type: text/plain", body="Delivery to the following failed."),
            part("Content-Type: message/delivery-status", body=status_fields),
            part(f"Content-Type: {returned_type}", body=returned),
        ],
        "Auto-Submitted: auto-replied",
    )


def test_bounce_with_returned_message() -> None:
    fields = (
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        "Original-Recipient: rfc822;Gone@Example.net\r\n"
        "Final-Recipient: rfc822; <Gone@Example.net>\r\n"
        "Action: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <gone@example.net>: user\r\n unknown\r\n"
    )
    parsed = parse_message(dsn(fields, INNER))
    bounce = parsed.bounce
    assert bounce is not None
    assert bounce.original_message_id == "<orig-1@example.net>"
    assert bounce.failed_recipients == ("gone@example.net",)
    assert bounce.status == "5.1.1"
    assert bounce.diagnostic == "550 5.1.1 <gone@example.net>: user unknown"
    assert bounce.permanent is True
    assert parsed.text_body.startswith("Delivery to the following failed.")
    names = [a.filename for a in parsed.attachments]
    assert names == ["delivery-status.txt", "The original.eml"]
    assert b"Action: failed" in parsed.attachments[0].data


def test_bounce_with_headers_only_and_mixed_actions() -> None:
    fields = (
        "Reporting-MTA: dns; mx\r\n\r\n"
        "Final-Recipient: rfc822; ok@x.org\r\nAction: delayed\r\nStatus: 4.4.1\r\n\r\n"
        "Final-Recipient: rfc822; bad@x.org\r\nAction: failed\r\nStatus: 5.2.2\r\n"
    )
    headers = b"From: me@acme.test\r\nMessage-ID:\r\n <sent-9@acme.test>\r\nSubject: hi\r\n"
    parsed = parse_message(dsn(fields, headers, "text/rfc822-headers"))
    assert parsed.bounce is not None
    assert parsed.bounce.original_message_id == "<sent-9@acme.test>"
    assert parsed.bounce.failed_recipients == ("bad@x.org",)
    assert parsed.bounce.status == "5.2.2"
    assert parsed.bounce.permanent is True
    assert "returned-headers.txt" in [a.filename for a in parsed.attachments]


def test_delay_notification_is_not_permanent() -> None:
    fields = "Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; slow@x.org\r\n"
    fields += "Action: delayed\r\nStatus: 4.4.7\r\n"
    bounce = parse_message(dsn(fields, INNER)).bounce
    assert bounce is not None
    assert bounce.failed_recipients == ()
    assert bounce.status == "4.4.7"
    assert bounce.permanent is False


def test_bounce_without_action_counts_every_recipient() -> None:
    fields = "Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; A@x.org\r\n\r\n"
    fields += "Final-Recipient: rfc822; b@x.org\r\nStatus: 5.0.0\r\n"
    bounce = parse_message(dsn(fields, INNER)).bounce
    assert bounce is not None
    assert bounce.failed_recipients == ("a@x.org", "b@x.org")
    assert bounce.permanent is True


def test_read_receipt_is_not_a_bounce() -> None:
    raw = multipart(
        "multipart/report; report-type=disposition-notification",
        [
            part("Content-Type: text/plain", body="Your message was displayed."),
            part("Content-Type: message/disposition-notification", body="Disposition: displayed"),
        ],
    )
    parsed = parse_message(raw)
    assert parsed.bounce is None
    assert [a.filename for a in parsed.attachments] == ["disposition-notification.txt"]


# --- hostile input -------------------------------------------------------------------------------


def test_nul_bytes_are_removed_from_text() -> None:
    raw = mail("From: a\x00b@c.org", "Subject: nul\x00here", body=b"body\x00with nul\r\n")
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert parsed.text_body == "bodywith nul"
    assert parsed.subject == "nul here"


def test_control_characters_in_content_type() -> None:
    raw = mail("From: a@b.org", "Content-Type:\x00multipart/mixed\x01", body="still text")
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert parsed.text_body == "still text"


def test_very_long_header_line() -> None:
    long_value = "word " * 4000  # 20,000 characters, unfolded
    raw = mail("From: a@b.org", f"Subject: {long_value}", f"X-Long: {'y' * 20000}")
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert parsed.subject == long_value.strip()
    assert parsed.header("x-long") == "y" * 20000


def test_one_megabyte_body_line() -> None:
    line = "z" * 1_000_000
    raw = plain(line.encode(), "utf-8")
    parsed = parse_message(raw)
    assert parsed.text_body == line
    assert parsed.size == len(raw)


def nested_multiparts(levels: int) -> bytes:
    body = b""
    for depth in range(levels):
        body += (
            f'--B{depth}\r\nContent-Type: multipart/mixed; boundary="B{depth + 1}"\r\n\r\n'.encode()
        )
    body += f"--B{levels}\r\nContent-Type: text/plain\r\n\r\ndeep\r\n".encode()
    return mail("From: a@b.org", 'Content-Type: multipart/mixed; boundary="B0"', body=body)


def test_nested_multiparts_are_walked() -> None:
    parsed = parse_message(nested_multiparts(10))
    assert parsed.text_body == "deep"


def test_too_deep_nesting_is_cut_off() -> None:
    raw = nested_multiparts(300)
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert "nesting-too-deep" in parsed.defects
    assert parsed.text_body == ""


def test_nesting_beyond_the_recursion_limit_falls_back_to_text() -> None:
    raw = nested_multiparts(1500)
    parsed = parse_message(raw)
    assert_sane(parsed, raw)
    assert "parse-error:RecursionError" in parsed.defects
    assert parsed.sender == Address("", "a@b.org")
    assert parsed.text_body.startswith("--B0\nContent-Type: multipart/mixed")


def test_raw_bytes_are_never_changed() -> None:
    raw = bytearray(INNER)
    before = bytes(raw)
    parse_message(bytes(raw))
    assert bytes(raw) == before


SEEDS = [
    INNER,
    dsn("Final-Recipient: rfc822; x@y.org\r\nAction: failed\r\nStatus: 5.1.1\r\n", INNER),
    mail(
        "From: =?utf-8?q?J=C3=B6rg?= <j@x.de>",
        "To: unlisted-recipients:; (no To-header on input)",
        "Subject: =?x-unknown?b?R3LDvMOfZQ==?=",
        "Message-ID: <[...]=@host>",
        "Content-Type: text/plain; charset=X-UNKNOWN; format=flowed",
        body=b"Gr\xfc\xdfe \r\nflowed",
    ),
    multipart(
        "multipart/alternative",
        [
            part("Content-Type: text/plain; charset=koi8-r", body="Привет".encode("koi8-r")),
            part("Content-Type: text/html", body=HTML),
        ],
    ),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert_sane(parse_message(raw), raw)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        action = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "truncate":
            del data[at:]
        elif action == "insert":
            chunk = draw(
                st.sampled_from([b"\r\n", b"\n\n", b"--BOUND\r\n", b"=?", b"?=", b"\x00", b"\xff"])
                | st.binary(max_size=20)
            )
            data[at:at] = chunk
        elif data:
            del data[at : at + draw(st.integers(1, 40))]
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_messages_never_raise(raw: bytes) -> None:
    assert_sane(parse_message(raw), raw)
