"""F2 `domain check`: MX, SPF (the relay included), DKIM selector and DMARC, against a DNS server
the test runs on 127.0.0.1 with known zone data. Never a real resolver."""

from __future__ import annotations

import pytest
from dkim_keys import DkimKey, public_only_key
from dns_server import ZoneServer
from factories import make_org

from tui_helpdesk.config import DnsSettings, Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.errors import Invalid, NotFound
from tui_helpdesk.records import DomainCheckRecord
from tui_helpdesk.services import domain_check, domains

RELAY_ZONE = 'relay A 192.0.2.25\n_spf TXT "v=spf1 ip4:198.51.100.0/24 -all"\n'


def settings_for(server: ZoneServer, **dns: object) -> Settings:
    return Settings().replace(
        dns={**vars(server.dns_settings()), **dns},
        outbound={"relay_host": "relay.helpdesk.test"},
    )


def checks(domain: str, settings: Settings, **kwargs: str) -> dict[str, DomainCheckRecord]:
    return {r.check: r for r in domain_check.check_domain(domain, settings, **kwargs)}


def good_zone(key: DkimKey, spf: str = "v=spf1 a:relay.helpdesk.test mx -all") -> str:
    return f"""
@ MX 10 mx.acme.test.
mx A 192.0.2.10
@ TXT "{spf}"
@ TXT "google-site-verification=abc"
{key.zone_line("helpdesk._domainkey")}
_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@acme.test"
"""


@pytest.fixture
def dns(dns_server: ZoneServer) -> ZoneServer:
    dns_server.load("helpdesk.test", RELAY_ZONE)
    return dns_server


def test_a_domain_set_up_right_passes_every_check(dns: ZoneServer, dkim_key: DkimKey) -> None:
    dns.load("acme.test", good_zone(dkim_key))
    result = checks("acme.test", settings_for(dns))
    assert {name: r.status for name, r in result.items()} == {
        "mx": "pass", "spf": "pass", "dkim": "pass", "dmarc": "pass",
    }  # fmt: skip
    assert all(r.publish == "" for r in result.values())
    assert result["mx"].found == ("10 mx.acme.test.",)
    assert result["spf"].found == ("v=spf1 a:relay.helpdesk.test mx -all",)
    assert result["dkim"].name == "helpdesk._domainkey.acme.test"
    assert result["dkim"].found == (dkim_key.record,)
    assert "p=reject" in result["dmarc"].explanation


def test_spf_without_the_relay_fails_and_shows_the_record_with_it(
    dns: ZoneServer, dkim_key: DkimKey
) -> None:
    dns.load("acme.test", good_zone(dkim_key, spf="v=spf1 include:_spf.helpdesk.test ~all"))
    spf = checks("acme.test", settings_for(dns))["spf"]
    assert spf.status == "fail"
    assert "relay.helpdesk.test (192.0.2.25) gets SPF softfail" in spf.explanation
    assert spf.publish == (
        'acme.test. IN TXT "v=spf1 include:_spf.helpdesk.test a:relay.helpdesk.test ~all"'
    )


def test_missing_records_say_exactly_what_to_publish(dns: ZoneServer) -> None:
    dns.load("acme.test", "www A 192.0.2.80\n")
    result = checks("acme.test", settings_for(dns))
    assert {r.status for r in result.values()} == {"missing"}
    assert result["spf"].publish == 'acme.test. IN TXT "v=spf1 a:relay.helpdesk.test ~all"'
    assert result["dmarc"].publish == (
        '_dmarc.acme.test. IN TXT "v=DMARC1; p=quarantine; adkim=r; aspf=r"'
    )
    assert result["dkim"].publish.startswith('helpdesk._domainkey.acme.test. IN TXT "v=DKIM1;')
    assert result["mx"].publish.startswith("acme.test. IN MX 10 ")


def test_a_domain_that_does_not_exist_is_missing_everything(dns: ZoneServer) -> None:
    dns.load("test", "")  # the parent zone answers NXDOMAIN for unknown.test
    assert {r.status for r in checks("unknown.test", settings_for(dns)).values()} == {"missing"}


def test_dmarc_p_none_passes_with_a_note_to_go_further(dns: ZoneServer, dkim_key: DkimKey) -> None:
    zone = good_zone(dkim_key).replace("p=reject; rua=mailto:dmarc@acme.test", "p=none")
    dns.load("acme.test", zone)
    dmarc = checks("acme.test", settings_for(dns))["dmarc"]
    assert dmarc.status == "pass"
    assert "only monitors" in dmarc.explanation
    assert 'v=DMARC1; p=quarantine; adkim=r; aspf=r"' in dmarc.explanation


def test_a_subdomain_inherits_the_dmarc_policy_of_its_organisational_domain(
    dns: ZoneServer,
) -> None:
    dns.load("acme.test", '_dmarc TXT "v=DMARC1; p=reject; sp=quarantine"\n')
    dmarc = checks("support.acme.test", settings_for(dns))["dmarc"]
    assert dmarc.status == "pass"
    assert dmarc.found == ("v=DMARC1; p=reject; sp=quarantine",)
    assert "p=quarantine (inherited from _dmarc.acme.test)" in dmarc.explanation


@pytest.mark.parametrize(
    ("records", "check", "why"),
    [
        ("@ MX 0 .\n", "mx", "null MX"),
        ("@ MX 10 nowhere.acme.test.\n", "mx", "has an address"),
        ('@ TXT "v=spf1 -all"\n@ TXT "v=spf1 a:relay.helpdesk.test -all"\n', "spf", "merge"),
        ('@ TXT "v=spf1 a:relay.helpdesk.test ipv4:192.0.2.1 -all"\n', "spf", "permerror"),
        ('helpdesk._domainkey TXT "v=DKIM1; k=rsa; p="\n', "dkim", "revoked"),
        ('helpdesk._domainkey TXT "v=DKIM1; k=rsa; p=bm90IGEga2V5"\n', "dkim", "unusable"),
        ('_dmarc TXT "v=DMARC1; p=reject"\n_dmarc TXT "v=DMARC1; p=none"\n', "dmarc", "keep one"),
        ('_dmarc TXT "v=DMARC1; p=block"\n', "dmarc", "is not none, quarantine or reject"),
    ],
)
def test_broken_records_fail_with_the_reason(
    dns: ZoneServer, records: str, check: str, why: str
) -> None:
    dns.load("acme.test", records)
    result = checks("acme.test", settings_for(dns))[check]
    assert result.status == "fail"
    assert why in result.explanation


def test_a_short_dkim_key_fails(dns: ZoneServer) -> None:
    dns.load("acme.test", public_only_key(bits=512).zone_line("helpdesk._domainkey"))
    assert "512 bits" in checks("acme.test", settings_for(dns))["dkim"].explanation


def test_another_selector_can_be_checked(dns: ZoneServer, dkim_key: DkimKey) -> None:
    dns.load("acme.test", dkim_key.zone_line("mailer2024._domainkey"))
    assert checks("acme.test", settings_for(dns))["dkim"].status == "missing"
    settings = settings_for(dns, dkim_selector="mailer2024")
    assert checks("acme.test", settings)["dkim"].status == "pass"
    assert checks("acme.test", settings_for(dns), selector="mailer2024")["dkim"].status == "pass"
    with pytest.raises(Invalid, match="selector must be DNS labels") as info:
        checks("acme.test", settings_for(dns), selector="bad selector")
    assert info.value.field == "selector"


def test_relay_given_as_an_address_is_checked_as_ip4(dns: ZoneServer) -> None:
    dns.load("acme.test", '@ TXT "v=spf1 ip4:192.0.2.0/24 -all"\n')
    settings = settings_for(dns).replace(outbound={"relay_host": "192.0.2.25"})
    assert checks("acme.test", settings)["spf"].status == "pass"
    dns.load("acme.test", '@ TXT "v=spf1 mx -all"\n')
    spf = checks("acme.test", settings)["spf"]
    assert spf.status == "fail"
    assert spf.publish == 'acme.test. IN TXT "v=spf1 mx ip4:192.0.2.25 -all"'


def test_a_private_relay_address_points_to_the_spf_include_setting(dns: ZoneServer) -> None:
    dns.load("acme.test", '@ TXT "v=spf1 mx -all"\n')
    settings = settings_for(dns).replace(outbound={"relay_host": "127.0.0.1"})
    spf = checks("acme.test", settings)["spf"]
    assert spf.status == "fail"
    assert "127.0.0.1 is not a public address" in spf.explanation
    assert "spf_include" in spf.explanation


def test_with_spf_include_the_record_must_include_that_domain(dns: ZoneServer) -> None:
    settings = settings_for(dns, spf_include="_spf.helpdesk.test")
    dns.load("acme.test", '@ TXT "v=spf1 include:_spf.helpdesk.test -all"\n')
    assert checks("acme.test", settings)["spf"].status == "pass"
    dns.load("acme.test", '@ TXT "v=spf1 mx -all"\n')
    spf = checks("acme.test", settings)["spf"]
    assert spf.status == "fail"
    assert spf.publish == 'acme.test. IN TXT "v=spf1 mx include:_spf.helpdesk.test -all"'


def test_dns_down_gives_temperror_for_every_check_not_a_crash(silent_dns_port: int) -> None:
    settings = Settings().replace(
        dns={**vars(DnsSettings(("127.0.0.1",), silent_dns_port, 0.3))},
    )
    result = checks("acme.test", settings)
    assert {r.status for r in result.values()} == {"temperror"}
    assert all(r.explanation.startswith("could not check") for r in result.values())
    assert all(r.publish == "" for r in result.values())


def test_only_the_organisations_own_domains_are_checked(db: Database) -> None:
    org = make_org(db)
    with db.write() as session:
        domains.add(session, org.admin, "acme-mail.test")
    with db.read() as session:
        assert domain_check.domains_to_check(session, org.admin, None) == [
            "acme-mail.test", "acme.test",
        ]  # fmt: skip
        assert domain_check.domains_to_check(session, org.admin, "ACME.test.") == ["acme.test"]
        with pytest.raises(NotFound, match=r"other\.test is not a domain of your organisation"):
            domain_check.domains_to_check(session, org.admin, "other.test")
        with pytest.raises(Invalid):
            domain_check.domains_to_check(session, org.admin, "not a domain")
