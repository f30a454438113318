"""Composing outgoing mail (F43, F18) without a database: headers, subjects, References
trimming, multipart, signatures; hostile addresses and subjects never reach a header."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tui_helpdesk.errors import Invalid
from tui_helpdesk.mail.addresses import one_line, parse_address, parse_addresses
from tui_helpdesk.mail.compose import (
    AUTO_GENERATED,
    MAX_REFERENCES,
    Attachment,
    Draft,
    Person,
    body_parts,
    compose,
    new_message_id,
    references_for,
    thread_subject,
)

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
SENDER = Person("support@acme.test", 'Acme "Support", Sales')


def parsed(raw: bytes):  # type: ignore[no-untyped-def]
    return BytesParser(policy=policy.default).parsebytes(raw)


def content(part) -> str:  # type: ignore[no-untyped-def]
    return part.get_content().replace("\r\n", "\n")


def draft(**changes: object) -> Draft:
    values: dict[str, object] = {
        "sender": SENDER, "to": (Person("carol@customer.test", "Carol, C."),),
        "subject": "Re: Printer on fire [HD#7]", "text": "Hello\n",
    }  # fmt: skip
    return Draft(**(values | changes))  # type: ignore[arg-type]


def test_headers_of_a_reply() -> None:
    message_id = new_message_id("acme.test")
    refs = references_for("<p@customer.test>", ["<root@x.test>", "<mid@acme.test>"])
    raw = compose(draft(in_reply_to="<p@customer.test>", references=refs, cc=(
        Person("dan@customer.test"),)), message_id=message_id, now=NOW)  # fmt: skip
    mail = parsed(raw)
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert mail["From"].addresses[0].display_name == 'Acme "Support", Sales'
    assert mail["From"].addresses[0].addr_spec == "support@acme.test"
    assert [a.addr_spec for a in mail["To"].addresses] == ["carol@customer.test"]
    assert [a.addr_spec for a in mail["Cc"].addresses] == ["dan@customer.test"]
    assert mail["Message-ID"] == message_id and message_id.endswith("@acme.test>")
    assert mail["In-Reply-To"] == "<p@customer.test>"
    assert mail["References"].split() == ["<root@x.test>", "<mid@acme.test>", "<p@customer.test>"]
    assert mail["Date"].datetime == NOW
    assert mail["Auto-Submitted"] is None  # a person's mail
    assert mail.get_content_type() == "text/plain" and content(mail) == "Hello\n"


def test_automatic_mail_says_so_and_carries_our_loop_header() -> None:
    mail = parsed(compose(draft(auto_submitted=AUTO_GENERATED), message_id="<a@acme.test>",
                          now=NOW))  # fmt: skip
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["X-TUI-Helpdesk-Loop"] == "support@acme.test"


def test_references_keep_the_root_and_the_newest() -> None:
    chain = [f"<r{n}@x.test>" for n in range(40)]
    refs = references_for("<parent@x.test>", chain)
    assert len(refs) == MAX_REFERENCES
    assert refs[0] == "<r0@x.test>" and refs[-1] == "<parent@x.test>"
    assert refs[1:-1] == tuple(chain[-(MAX_REFERENCES - 2) :])
    assert references_for("<p@x>", ["<p@x>", "bad id", "<a@x>"]) == ("<a@x>", "<p@x>")


@pytest.mark.parametrize(
    ("subject", "lead", "expected"),
    [
        ("Printer on fire", "Re", "Re: Printer on fire [HD#42]"),
        ("Re: RE: Aw: Printer on fire", "Re", "Re: Printer on fire [HD#42]"),
        ("Re: Printer [HD#42] on fire", "Re", "Re: Printer on fire [HD#42]"),
        ("Re: Printer [HD#9] [HD#42]", "Re", "Re: Printer [HD#42]"),  # a foreign token goes
        ("[PAGOS-MESI] Factura", "Re", "Re: [PAGOS-MESI] Factura [HD#42]"),  # not our token
        ("Fwd: Invoice", "Fwd", "Fwd: Invoice [HD#42]"),
        ("New order", "", "New order [HD#42]"),
        ("", "Re", "Re: [HD#42]"),
        ("hi\r\nBcc: x@y.test", "Re", "Re: hi Bcc: x@y.test [HD#42]"),  # derived: made one line
    ],
)
def test_subject_carries_our_token_once(subject: str, lead: str, expected: str) -> None:
    assert thread_subject(subject, prefix="HD", conversation_id=42, lead=lead) == expected


def test_html_body_or_signature_makes_multipart_alternative_with_a_text_part() -> None:
    text, html = body_parts("Hi <b>", signature_text="Ada", signature_html="<i>Ada</i>",
                            quote="On X, Carol wrote:\n> help")  # fmt: skip
    assert text == "Hi <b>\n\n-- \nAda\n\nOn X, Carol wrote:\n> help\n"
    assert "Hi &lt;b&gt;" in html and "<i>Ada</i>" in html and "&gt; help" in html
    mail = parsed(compose(draft(text=text, html=html), message_id="<a@acme.test>", now=NOW))
    assert mail.get_content_type() == "multipart/alternative"
    parts = [(p.get_content_type(), content(p)) for p in mail.iter_parts()]
    assert parts[0] == ("text/plain", text) and parts[1][0] == "text/html"
    assert "MIME-Version" not in mail.get_payload()[1]
    assert body_parts("Hi", signature_text="Ada") == ("Hi\n\n-- \nAda\n", "")


def test_attachments_and_international_domains() -> None:
    mail = parsed(compose(
        draft(to=(Person("juergen@xn--mller-kva.example"),),
              attachments=(Attachment("r\u00e9sum\u00e9.pdf", "application/pdf", b"%PDF-1"),)),
        message_id="<a@acme.test>", now=NOW,
    ))  # fmt: skip
    assert mail["To"].addresses[0].addr_spec == "juergen@xn--mller-kva.example"
    [attached] = list(mail.iter_attachments())
    assert attached.get_filename() == "résumé.pdf" and attached.get_content() == b"%PDF-1"


# --- what a person types ------------------------------------------------------------------------

HOSTILE_ADDRESSES = [
    ("carol@customer.test\r\nBcc: victim@x.test", "one line"),
    ("carol@customer.test, eve@x.test", "one address per entry"),
    ("carol@customer.test;eve@x.test", "one address per entry"),
    ("friends: carol@customer.test, eve@x.test;", "one address per entry"),
    ('"support@acme.test" <eve@x.test>', "address alone"),
    ("Carol <carol@customer.test>", "address alone"),
    ("carol@customer.test (Carol)", "address alone"),
    ('"carol smith"@customer.test', "address alone"),
    ("carol smith@customer.test", "no spaces"),
    ("carol@[127.0.0.1]", "host name"),
    ("carol@localhost", "host name"),
    ("carol@customer..test", "host name"),
    ("carol..c@customer.test", "plain address"),
    ("@customer.test", "not an address"),
    ("carol", "not an address"),
    ("carol@cust\u202eomer.test", "host name"),
    ("=?utf-8?q?eve=40x.test?=@customer.test", "plain address"),
    ("a" * 65 + "@customer.test", "plain address"),
    ("jürgen@customer.test", "ASCII"),
]


@pytest.mark.parametrize(("value", "says"), HOSTILE_ADDRESSES)
def test_hostile_addresses_are_refused_naming_the_field(value: str, says: str) -> None:
    with pytest.raises(Invalid, match=says) as refused:
        parse_address(value, field="cc")
    assert refused.value.field == "cc" and refused.value.message.startswith("cc:")


def test_plain_addresses_are_kept_and_normalised() -> None:
    assert parse_address(" <Carol.C+hd@Customer.TEST> ", field="to") == "Carol.C+hd@customer.test"
    assert parse_address("juergen@müller.example", field="to") == "juergen@xn--mller-kva.example"
    assert parse_addresses(["a@x.test", "A@X.TEST", "b@x.test"], field="to") == (
        "a@x.test", "b@x.test",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("value", "says"),
    [("two\nlines", "one line"), ("cr\rhere", "one line"), ("tab\there", "one line"),
     ("nul\x00", "one line"), ("sep\u2028", "one line"),
     ("Hi =?utf-8?q?Bcc=3A_x?=", "encoded word")],
)  # fmt: skip
def test_a_subject_with_a_control_character_or_an_encoded_word_is_refused(
    value: str, says: str
) -> None:
    with pytest.raises(Invalid, match=says) as refused:
        one_line(value, field="subject", limit=255)
    assert refused.value.field == "subject"
    assert one_line(" What is 2+2=? ", field="subject", limit=255) == "What is 2+2=?"


FRAGMENTS = st.sampled_from(
    ["\r\n", "\n", "\r", ",", ";", ":", "<", ">", '"', "(", ")", "@", " ", "\x00", "\u2028",
     "\u0085", "=?utf-8?q?", "?=", "Bcc: eve@x.test", "[1.2.3.4]", ".", "..", "\\", "é", "ß"]
)  # fmt: skip
PIECES = st.one_of(st.text(max_size=12), FRAGMENTS, st.sampled_from(["carol", "customer.test"]))
ADDRESSISH = st.lists(PIECES, min_size=1, max_size=8).map("".join)


@settings(max_examples=400, deadline=None)
@given(ADDRESSISH)
def test_any_accepted_address_is_exactly_one_address_in_the_mail(value: str) -> None:
    try:
        address = parse_address(value, field="to")
    except Invalid:
        return
    mail = parsed(compose(draft(to=(Person(address),)), message_id="<a@acme.test>", now=NOW))
    header = mail["To"]
    assert not header.defects
    assert [a.addr_spec for a in header.addresses] == [address]
    assert len(header.groups) == 1 and header.groups[0].display_name is None
    assert mail["Bcc"] is None and mail["Cc"] is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=20), FRAGMENTS), max_size=6).map("".join))
@example("=??Q? ?=")  # text that reads as an encoded word goes out encoded (found by this test)
@example("Re: =?utf-8?q?caf=C3=A9?= is spelt so")
def test_any_accepted_subject_stays_in_the_subject(value: str) -> None:
    try:
        subject = one_line(value, field="subject", limit=255)
    except Invalid:
        return
    full = thread_subject(subject, prefix="HD", conversation_id=3)
    mail = parsed(compose(draft(subject=full), message_id="<a@acme.test>", now=NOW))
    assert sorted(mail.keys()) == sorted(
        ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
         "Content-Transfer-Encoding"]
    )  # fmt: skip
    # (a word too long for one line is folded onto the next: the parser keeps that space)
    assert " ".join(str(mail["Subject"]).split()) == full and full.endswith("[HD#3]")
