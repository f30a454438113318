"""F75 warnings as pure rules: possible spoofing of our domains or known contacts, and lookalike
senders (a known contact's name with another address, a domain one edit from a known one)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_helpdesk.records import DmarcCheckRecord, MessageAuthRecord, SpfCheckRecord
from tui_helpdesk.services.inbound_auth.sender_warning import one_edit_away, sender_warning

OURS = ["acme.test"]
CONTACTS = {"ann@bank.test": "Ann Smith", "Bo@Shop.test": "Bo Berg", "x@nameless.test": ""}


def auth(address: str, dmarc: str, explanation: str = "DMARC fail: …") -> MessageAuthRecord:
    domain = address.rpartition("@")[2]
    spf = SpfCheckRecord("fail", domain, "mailfrom", "203.0.113.66", "computed", "")
    verdict = DmarcCheckRecord(dmarc, domain, domain, "reject", False, (), explanation)
    return MessageAuthRecord(address, domain, spf, (), verdict, ())


def warn(address: str, dmarc: str = "fail", name: str = "") -> tuple[str, tuple[str, ...]]:
    warning = sender_warning(auth(address, dmarc), name, OURS, CONTACTS)
    return warning.level, warning.reasons


@pytest.mark.parametrize("address", ["ceo@acme.test", "ceo@billing.acme.test", "ann@bank.test"])
@pytest.mark.parametrize("dmarc", ["fail", "permerror"])
def test_our_domains_and_known_contacts_failing_dmarc_are_possible_spoofing(
    address: str, dmarc: str
) -> None:
    level, reasons = warn(address, dmarc)
    assert level == "spoof"
    assert reasons[0].endswith("but the message fails DMARC: DMARC fail: …")


def test_the_reason_names_the_claim() -> None:
    assert warn("ceo@acme.test")[1][0].startswith(
        "From: ceo@acme.test uses our own domain acme.test"
    )
    assert warn("bo@shop.test")[1][0].startswith("From: bo@shop.test is a known contact")


@pytest.mark.parametrize("dmarc", ["pass", "none", "temperror"])
def test_no_spoofing_warning_without_a_dmarc_failure(dmarc: str) -> None:
    assert warn("ceo@acme.test", dmarc) == ("", ())
    assert warn("ann@bank.test", dmarc) == ("", ())


def test_a_stranger_failing_dmarc_is_not_spoofing_us() -> None:
    assert warn("someone@elsewhere.test") == ("", ())
    assert warn("acme.test@evil.test") == ("", ())  # a lookalike of nothing


def test_a_known_contacts_name_from_another_address_is_a_lookalike() -> None:
    level, reasons = warn("ann.smith@freemail.test", "pass", name=" ann  SMITH ")
    assert level == "lookalike"
    assert reasons == (
        "the name “ ann  SMITH ” belongs to the known contact ann@bank.test, "
        "but this mail comes from ann.smith@freemail.test",
    )


def test_a_name_showing_a_known_address_is_a_lookalike() -> None:
    level, reasons = warn("evil@freemail.test", "pass", name="ann@bank.test")
    assert level == "lookalike"
    assert reasons == ("the name shows ann@bank.test, but this mail comes from evil@freemail.test",)


@pytest.mark.parametrize(
    ("address", "known"),
    [
        ("ann@bank.tset", "bank.test"),  # two letters swapped
        ("ceo@acne.test", "acme.test"),  # one letter changed
        ("ceo@acmee.test", "acme.test"),  # one letter added
        ("bo@shp.test", "shop.test"),  # one letter left out
    ],
)
def test_a_domain_one_edit_from_a_known_one_is_a_lookalike(address: str, known: str) -> None:
    level, reasons = warn(address, "none")
    domain = address.rpartition("@")[2]
    assert (level, reasons) == (
        "lookalike", (f"{domain} is one character away from the known domain {known}",),
    )  # fmt: skip


def test_known_senders_and_known_domains_are_no_lookalikes() -> None:
    assert warn("ann@bank.test", "pass", name="Ann Smith") == ("", ())
    assert warn("carl@bank.test", "pass", name="Carl") == ("", ())  # a known domain
    assert warn("someone@example.test", "pass", name="Someone") == ("", ())


def test_spoofing_keeps_the_lookalike_reasons_too() -> None:
    level, reasons = warn("ceo@acme.test", "fail", name="Ann Smith")
    assert level == "spoof"
    assert len(reasons) == 2 and "belongs to the known contact ann@bank.test" in reasons[1]


@given(st.from_regex(r"[a-z]{2,12}\.[a-z]{2,4}", fullmatch=True))
def test_one_edit_away_never_matches_the_domain_itself(domain: str) -> None:
    assert one_edit_away(domain, [domain]) == []
    assert one_edit_away(domain, [domain + "x"]) == [domain + "x"]
