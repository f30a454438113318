from tui_helpdesk.services.dns_lookup import DnsLookup
from tui_helpdesk.services.inbound_auth.sender_policy import evaluate


def test_spf(dns_server, silent_dns_port):
    dns_server.load(
        "bank.test",
        """
@ TXT "v=spf1 include:_spf.relay.test mx -all"
@ MX 10 mx.bank.test.
mx A 192.0.2.10
soft TXT "v=spf1 ip4:192.0.2.0/24 ~all"
""",
    )
    dns_server.load(
        "relay.test",
        """
_spf TXT "v=spf1 ip4:198.51.100.0/24 -all"
""",
    )
    lk = DnsLookup(dns_server.dns_settings())
    for ip in ["198.51.100.7", "192.0.2.10", "203.0.113.1"]:
        print(evaluate(lk, ip, "ann@bank.test", "mail.bank.test"))
    print(evaluate(lk, "203.0.113.1", "", "soft.bank.test"))
    print(evaluate(lk, "203.0.113.1", "x@nothing.test", "soft.bank.test"))
    from tui_helpdesk.config import DnsSettings

    dead = DnsLookup(
        DnsSettings(nameservers=("127.0.0.1",), port=silent_dns_port, timeout_seconds=0.5)
    )
    print(evaluate(dead, "203.0.113.1", "x@bank.test", "soft.bank.test"))
