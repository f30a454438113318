"""F75: SPF, DKIM and DMARC of inbound mail against a DNS server the test runs on 127.0.0.1,
with DKIM keys made in the test and real signatures made with dkimpy. Never a real resolver."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from dkim_keys import DkimKey, make_dkim_key
from dns_server import ZoneServer

from tui_helpdesk.config import DnsSettings, Settings
from tui_helpdesk.records import MessageAuthRecord
from tui_helpdesk.services.inbound_auth.message import check_message

BANK_IP = "192.0.2.5"  # bank.test's own mail server
MAILER_IP = "198.51.100.7"  # a mailing service, mailer.test
LIST_IP = "203.0.113.10"  # a mailing list server, list.test
STRANGER_IP = "203.0.113.66"
RELAY_IP = "192.0.2.250"  # our own MTA in front of the worker
AUTHSERV_ID = "mx.helpdesk.test"


def message(
    sender: str = "Ann Smith <ann@bank.test>",
    subject: str = "Invoice 2026-1142",
    body: str = "Please pay the invoice to the usual account.\r\n",
    *,
    top: str = "",
) -> bytes:
    head = (
        f"{top}From: {sender}\r\nTo: support@acme.test\r\nSubject: {subject}\r\n"
        "Date: Mon, 30 Nov 2026 09:00:00 +0000\r\nMessage-ID: <inv-1142@bank.test>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    )
    return f"{head}\r\n{body}".encode()


@pytest.fixture(scope="module")
def mailer_key() -> DkimKey:
    return make_dkim_key(bits=1024)


@pytest.fixture
def dns(dns_server: ZoneServer, dkim_key: DkimKey, mailer_key: DkimKey) -> ZoneServer:
    dns_server.load(
        "bank.test",
        f'@ TXT "v=spf1 ip4:192.0.2.0/25 -all"\n{dkim_key.zone_line("s1._domainkey")}\n'
        '_dmarc TXT "v=DMARC1; p=reject; sp=quarantine"\n'
        f"{dkim_key.zone_line('s1._domainkey.mail')}\n",
    )
    dns_server.load(
        "mailer.test",
        f'@ TXT "v=spf1 ip4:198.51.100.0/24 -all"\n{mailer_key.zone_line("m1._domainkey")}\n',
    )
    dns_server.load("list.test", '@ TXT "v=spf1 ip4:203.0.113.0/28 -all"\n')
    dns_server.load("shop.test", '@ TXT "v=spf1 ip4:192.0.2.0/25 ~all"\n')
    dns_server.load("quiet.test", "www A 192.0.2.80\n")
    dns_server.load("elsewhere.test", "")
    dns_server.load("strict.test", '_dmarc TXT "v=DMARC1; p=reject; adkim=s; aspf=s"\n'
                    f"{dkim_key.zone_line('s1._domainkey.mail')}\n")  # fmt: skip
    return dns_server


def settings_for(server: ZoneServer, **inbound_auth: object) -> Settings:
    return Settings().replace(dns=vars(server.dns_settings()), inbound_auth=inbound_auth)


def check(
    server: ZoneServer,
    raw: bytes,
    ip: str = BANK_IP,
    mail_from: str = "ann@bank.test",
    helo: str = "mail.bank.test",
    **trust: object,
) -> MessageAuthRecord:
    return check_message(raw, ip, helo, mail_from, settings_for(server, **trust))


def test_a_genuine_signed_message_passes_everything(dns: ZoneServer, dkim_key: DkimKey) -> None:
    result = check(dns, dkim_key.sign(message(), "bank.test", "s1"))
    assert (result.from_address, result.from_domain) == ("ann@bank.test", "bank.test")
    assert (result.spf.result, result.spf.domain, result.spf.source) == (
        "pass",
        "bank.test",
        "computed",
    )
    assert [(s.result, s.domain, s.selector) for s in result.dkim] == [("pass", "bank.test", "s1")]
    assert result.dmarc.result == "pass"
    assert (result.dmarc.policy_domain, result.dmarc.policy) == ("bank.test", "reject")
    assert result.dmarc.spf_aligned and result.dmarc.dkim_aligned == ("bank.test",)
    assert "DKIM signature by bank.test aligns with From: bank.test" in result.dmarc.explanation


def test_a_forged_sender_fails_spf_and_dmarc(dns: ZoneServer) -> None:
    result = check(dns, message("CEO <ceo@bank.test>"), ip=STRANGER_IP, mail_from="ceo@bank.test")
    assert result.spf.result == "fail"
    assert (
        result.spf.explanation
        == f"SPF fail: bank.test does not allow {STRANGER_IP} to send its mail"
    )
    assert result.dkim == ()
    assert result.dmarc.result == "fail"
    assert result.dmarc.explanation.startswith(
        "DMARC fail: bank.test publishes p=reject, "
        "and nothing that passed aligns with From: bank.test"
    )
    assert "no DKIM signature" in result.dmarc.explanation


def test_softfail_and_a_domain_without_dmarc(dns: ZoneServer) -> None:
    result = check(dns, message("Bo <bo@shop.test>"), ip=STRANGER_IP, mail_from="bo@shop.test")
    assert result.spf.result == "softfail"
    assert result.dmarc.result == "none"
    assert result.dmarc.explanation.startswith("DMARC none: shop.test publishes no DMARC record")


def test_a_domain_without_spf_is_none(dns: ZoneServer) -> None:
    result = check(dns, message("Q <q@quiet.test>"), ip=STRANGER_IP, mail_from="q@quiet.test")
    assert result.spf.result == "none"
    assert result.spf.explanation == "SPF none: quiet.test publishes no SPF record"


def test_a_null_sender_is_checked_by_its_helo_name(dns: ZoneServer) -> None:
    result = check(dns, message(), ip=STRANGER_IP, mail_from="", helo="shop.test")
    assert (result.spf.result, result.spf.identity, result.spf.domain) == (
        "softfail",
        "helo",
        "shop.test",
    )


def test_dns_down_gives_temperror_everywhere_and_no_exception(
    silent_dns_port: int, dkim_key: DkimKey
) -> None:
    settings = Settings().replace(dns=vars(DnsSettings(("127.0.0.1",), silent_dns_port, 0.3)))
    raw = dkim_key.sign(message(), "bank.test", "s1")
    result = check_message(raw, BANK_IP, "mail.bank.test", "ann@bank.test", settings)
    assert result.spf.result == "temperror"
    assert [s.result for s in result.dkim] == ["temperror"]
    assert "could not be checked" in result.dkim[0].explanation
    assert result.dmarc.result == "temperror"
    assert result.dmarc.explanation.startswith("DMARC could not be checked for bank.test")


def test_a_signature_by_a_third_party_does_not_align(dns: ZoneServer, mailer_key: DkimKey) -> None:
    raw = mailer_key.sign(message(), "mailer.test", "m1")
    result = check(
        dns, raw, ip=MAILER_IP, mail_from="bounce-77@mailer.test", helo="out.mailer.test"
    )
    assert (result.spf.result, result.spf.domain) == ("pass", "mailer.test")
    assert [(s.result, s.domain) for s in result.dkim] == [("pass", "mailer.test")]
    assert result.dmarc.result == "fail"
    assert (
        "DKIM signature by mailer.test does not align with From: bank.test"
        in result.dmarc.explanation
    )
    assert (
        "SPF pass for mailer.test does not align with From: bank.test" in result.dmarc.explanation
    )


def test_a_mailing_list_that_changes_the_mail_breaks_dkim(
    dns: ZoneServer, dkim_key: DkimKey
) -> None:
    original = dkim_key.sign(message(), "bank.test", "s1")
    forwarded = (
        original.replace(b"Subject: Invoice", b"Subject: [finance] Invoice")
        + b"--\r\nfinance mailing list: https://list.test/finance\r\n"
    )
    result = check(
        dns, forwarded, ip=LIST_IP, mail_from="finance-bounces@list.test", helo="list.test"
    )
    assert result.spf.result == "pass"
    assert [s.result for s in result.dkim] == ["fail"]
    assert (
        result.dkim[0].explanation
        == "DKIM signature by bank.test fails: the body changed after signing"
    )
    assert result.dmarc.result == "fail"
    assert "SPF pass for list.test does not align with From: bank.test" in result.dmarc.explanation


def test_changed_headers_fail_and_every_signature_gets_its_result(
    dns: ZoneServer, dkim_key: DkimKey, mailer_key: DkimKey
) -> None:
    raw = mailer_key.sign(dkim_key.sign(message(), "bank.test", "s1"), "mailer.test", "m1")
    result = check(dns, raw.replace(b"Subject: Invoice 2026-1142", b"Subject: Invoice 2026-1143"))
    assert [(s.domain, s.result) for s in result.dkim] == [
        ("mailer.test", "fail"),
        ("bank.test", "fail"),
    ]
    assert "the signed headers changed after signing" in result.dkim[0].explanation
    assert result.dmarc.result == "pass"  # SPF still speaks for bank.test


def test_a_signature_whose_key_is_not_published_is_a_permerror(
    dns: ZoneServer, dkim_key: DkimKey
) -> None:
    result = check(dns, dkim_key.sign(message(), "bank.test", "gone"))
    assert result.dkim[0].result == "permerror"
    assert result.dkim[0].explanation == (
        "DKIM signature by bank.test: no key is published at gone._domainkey.bank.test"
    )
    broken = message(top="DKIM-Signature: v=1; a=rsa-sha256; d=bank.test; b=\r\n")
    [result] = check(dns, broken).dkim
    assert (result.result, result.domain) == ("permerror", "bank.test")
    assert result.explanation.startswith("DKIM signature by bank.test cannot be used: ")


def test_relaxed_alignment_by_default_strict_when_the_policy_asks(
    dns: ZoneServer, dkim_key: DkimKey
) -> None:
    sub = dkim_key.sign(message(), "mail.bank.test", "s1")
    result = check(dns, sub, ip=STRANGER_IP, mail_from="x@elsewhere.test")
    assert result.dmarc.result == "pass"
    assert result.dmarc.dkim_aligned == ("mail.bank.test",)
    strict = dkim_key.sign(message("Ann <ann@strict.test>"), "mail.strict.test", "s1")
    result = check(dns, strict, ip=STRANGER_IP, mail_from="x@elsewhere.test")
    assert result.dmarc.result == "fail"
    assert (
        "DKIM signature by mail.strict.test does not align with From: strict.test "
        "(strict alignment)" in result.dmarc.explanation
    )


def test_a_subdomain_falls_back_to_the_organisational_domain_policy(dns: ZoneServer) -> None:
    raw = message("Ann <ann@billing.bank.test>")
    result = check(dns, raw, ip=STRANGER_IP, mail_from="ann@billing.bank.test")
    assert (result.dmarc.result, result.dmarc.policy_domain, result.dmarc.policy) == (
        "fail", "bank.test", "quarantine",
    )  # fmt: skip


def test_several_from_domains_cannot_pass(dns: ZoneServer, dkim_key: DkimKey) -> None:
    raw = dkim_key.sign(message("ann@bank.test, boss@shop.test"), "bank.test", "s1")
    result = check(dns, raw)
    assert result.dmarc.result == "permerror"
    assert "several From domains (bank.test, shop.test)" in result.dmarc.explanation
    second_from = message(top="From: ceo@shop.test\r\n")
    assert check(dns, second_from).dmarc.result == "permerror"


def test_concurrent_checks_each_ask_their_own_resolver(dns: ZoneServer) -> None:
    """pyspf has one global lookup hook; checks in parallel threads must still not mix."""
    other = ZoneServer().start()
    try:
        other.load("bank.test", f'@ TXT "v=spf1 ip4:{STRANGER_IP} -all"\n')
        servers = {"fail": dns, "pass": other}
        expected = ["fail", "pass"] * 10
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = pool.map(
                lambda want: check(servers[want], message(), ip=STRANGER_IP).spf.result, expected
            )
            assert list(results) == expected
    finally:
        other.stop()


def test_an_unknown_client_address_gives_spf_none(dns: ZoneServer) -> None:
    result = check(dns, message(), ip="")
    assert result.spf.result == "none"
    assert result.spf.explanation == "the connecting address is not known"


# --- behind an MTA: the trusted relay's Authentication-Results --------------------------------

RELAY_RECEIVED = (
    f"Received: from mail.attacker.test (mail.attacker.test [{STRANGER_IP}])\r\n"
    f"\tby {AUTHSERV_ID} with ESMTPS id 4Xy; Mon, 30 Nov 2026 09:00:01 +0000\r\n"
)
FORGED_PASS = (
    f"Authentication-Results: {AUTHSERV_ID}; spf=pass smtp.mailfrom=ceo@bank.test;\r\n"
    "\tdkim=pass header.d=bank.test; dmarc=pass header.from=bank.test\r\n"
)
TRUST = {"trusted_relays": ("192.0.2.240/28",), "authserv_id": AUTHSERV_ID}


def test_a_replayed_header_from_a_stranger_is_ignored(dns: ZoneServer) -> None:
    raw = message("CEO <ceo@bank.test>", top=FORGED_PASS)
    result = check(dns, raw, ip=STRANGER_IP, mail_from="ceo@bank.test", **TRUST)
    assert (result.spf.result, result.spf.source) == ("fail", "computed")
    assert result.dmarc.result == "fail"
    assert result.ignored_headers == (
        f"Authentication-Results claiming {AUTHSERV_ID} came with the message from a client "
        "that is not a trusted relay: ignored",
    )


def test_the_trusted_relays_own_header_gives_spf(dns: ZoneServer) -> None:
    relay_header = (
        f"Authentication-Results: {AUTHSERV_ID};\r\n"
        f"\tspf=pass (sender IP is {BANK_IP}) smtp.mailfrom=ann@bank.test\r\n"
        "\tsmtp.helo=mail.bank.test\r\n"
    )
    raw = message(top=relay_header + RELAY_RECEIVED)
    result = check(dns, raw, ip=RELAY_IP, **TRUST)
    assert (result.spf.result, result.spf.domain, result.spf.source) == (
        "pass", "bank.test", f"relay {AUTHSERV_ID}",
    )  # fmt: skip
    assert result.spf.ip == ""
    assert result.dmarc.result == "pass"  # aligned through SPF alone: no signature
    assert result.ignored_headers == ()


def test_a_header_written_before_the_trusted_hop_is_ignored(dns: ZoneServer) -> None:
    relay_header = (
        f"Authentication-Results: {AUTHSERV_ID}; spf=fail smtp.mailfrom=ceo@bank.test\r\n"
    )
    raw = message("CEO <ceo@bank.test>", top=relay_header + RELAY_RECEIVED + FORGED_PASS)
    result = check(dns, raw, ip=RELAY_IP, mail_from="ceo@bank.test", **TRUST)
    assert (result.spf.result, result.spf.source) == ("fail", f"relay {AUTHSERV_ID}")
    assert result.dmarc.result == "fail"
    assert result.ignored_headers == (
        f"Authentication-Results claiming {AUTHSERV_ID} was written before the trusted relay "
        "received the message: ignored",
    )


def test_a_trusted_relay_that_wrote_nothing_gives_spf_none_not_a_forged_pass(
    dns: ZoneServer,
) -> None:
    raw = message("CEO <ceo@bank.test>", top=RELAY_RECEIVED + FORGED_PASS)
    result = check(dns, raw, ip=RELAY_IP, mail_from="ceo@bank.test", **TRUST)
    assert result.spf.result == "none"
    assert "wrote no SPF result" in result.spf.explanation
    assert result.dmarc.result == "fail"
    other_id = "Authentication-Results: other.example; spf=pass smtp.mailfrom=ceo@bank.test\r\n"
    result = check(dns, message(top=other_id + RELAY_RECEIVED), ip=RELAY_IP, **TRUST)
    assert result.spf.result == "none"
