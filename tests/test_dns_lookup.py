"""The configured resolver (F2, F75): answers from the [dns] nameservers only, "no records" for
names or types that do not exist, and DnsUnavailable (never a crash) when the DNS cannot answer."""

from __future__ import annotations

import socket

import pytest
import spf
from dkim_keys import DkimKey
from dns_server import ZoneServer

from tui_helpdesk.config import DnsSettings
from tui_helpdesk.services.dns_lookup import DnsLookup, DnsUnavailable
from tui_helpdesk.services.inbound_auth import sender_policy


@pytest.fixture
def lookup(dns_server: ZoneServer, dkim_key: DkimKey) -> DnsLookup:
    dns_server.load(
        "acme.test",
        f"""
@ MX 10 mx.acme.test.
mx A 192.0.2.10
mx AAAA 2001:db8::10
www CNAME mx
@ TXT "v=spf1 " "mx -all"
{dkim_key.zone_line("helpdesk._domainkey")}
""",
    )
    return DnsLookup(dns_server.dns_settings())


def test_records_addresses_and_txt(lookup: DnsLookup, dkim_key: DkimKey) -> None:
    assert [str(r.exchange) for r in lookup.records("acme.test", "MX")] == ["mx.acme.test."]
    assert lookup.addresses("mx.acme.test") == ["192.0.2.10", "2001:db8::10"]
    assert lookup.addresses("www.acme.test.") == ["192.0.2.10", "2001:db8::10"]  # via CNAME
    assert lookup.txt("acme.test") == ["v=spf1 mx -all"]  # strings joined
    assert lookup.txt("helpdesk._domainkey.acme.test") == [dkim_key.record]  # too big for UDP


def test_missing_names_and_types_are_no_records(lookup: DnsLookup) -> None:
    assert lookup.records("nothing.acme.test", "TXT") == []  # NXDOMAIN
    assert lookup.records("www.acme.test", "TXT") == []  # no TXT at the CNAME target
    assert lookup.records("mx.acme.test", "TXT") == []  # the name exists, the type does not
    assert lookup.records("a..b.acme.test", "TXT") == []  # not a DNS name at all


def test_a_refused_query_is_unavailable(lookup: DnsLookup) -> None:
    with pytest.raises(DnsUnavailable, match=r"no nameserver answered other\.test TXT"):
        lookup.txt("other.test")  # the server serves no such zone and answers REFUSED


def test_a_server_that_never_answers_is_unavailable_after_the_timeout(silent_dns_port: int) -> None:
    lookup = DnsLookup(DnsSettings(("127.0.0.1",), silent_dns_port, timeout_seconds=0.3))
    with pytest.raises(DnsUnavailable, match=r"no answer for acme.test TXT within 0\.3s"):
        lookup.txt("acme.test")


def test_a_port_nobody_listens_on_is_unavailable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    lookup = DnsLookup(DnsSettings(("127.0.0.1",), port, timeout_seconds=0.5))
    with pytest.raises(DnsUnavailable):
        lookup.txt("acme.test")


def test_pyspf_never_falls_back_to_the_system_resolver() -> None:
    assert spf.DNSLookup.__module__ == sender_policy.__name__
    result = spf.query(i="192.0.2.1", s="ann@acme.test", h="mail.acme.test").check()
    assert result[0] == "temperror"
    assert "no resolver configured" in result[2]
