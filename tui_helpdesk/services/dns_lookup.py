"""The one configured resolver behind every DNS check (F2 domain check, F75 inbound mail).

Every lookup asks the nameservers of the `[dns]` settings (the system's only when that list is
empty) and waits at most `dns.timeout_seconds`. DNS is slow or down often enough that a check
must never crash on it: a name that does not exist and a name without records of the type both
read as "no records", while a timeout, SERVFAIL, a refused query or an unreachable server raise
`DnsUnavailable`, which the checks report as temperror ("could not check").
"""

from __future__ import annotations

import dns.exception
import dns.name
import dns.rdata
import dns.resolver

from tui_helpdesk.config import DnsSettings


class DnsUnavailable(Exception):
    """The DNS gave no usable answer in time: a temporary error, worth trying again later."""


def make_resolver(settings: DnsSettings) -> dns.resolver.Resolver:
    """A resolver with no cache and no search list: each check sees the DNS as it is now."""
    resolver = dns.resolver.Resolver(configure=not settings.nameservers)
    if settings.nameservers:
        resolver.nameservers = list(settings.nameservers)
    resolver.port = settings.port
    resolver.timeout = settings.timeout_seconds
    resolver.lifetime = settings.timeout_seconds
    resolver.retry_servfail = False
    resolver.cache = None
    return resolver


class DnsLookup:
    """Typed lookups through one resolver; kept for the checks of one domain or one message."""

    def __init__(self, settings: DnsSettings) -> None:
        self.timeout = settings.timeout_seconds
        try:
            self._resolver: dns.resolver.Resolver | None = make_resolver(settings)
        except dns.resolver.NoResolverConfiguration:
            self._resolver = None  # no nameservers listed, and the system has none either

    def records(self, name: str, rdtype: str) -> list[dns.rdata.Rdata]:
        """The records of a type at a name ([] when there are none); CNAMEs are followed."""
        if self._resolver is None:
            raise DnsUnavailable("no nameserver is configured: set [dns] nameservers")
        try:
            qname = dns.name.from_text(name.rstrip(".") + ".")
        except dns.exception.DNSException:
            return []  # not a valid DNS name (an empty label, a label too long): nothing there
        try:
            answer = self._resolver.resolve(qname, rdtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return []
        except dns.exception.Timeout:
            raise DnsUnavailable(
                f"no answer for {name} {rdtype} within {self.timeout:g}s"
            ) from None
        except dns.resolver.NoNameservers:
            raise DnsUnavailable(f"no nameserver answered {name} {rdtype}") from None
        except dns.exception.DNSException as exc:
            raise DnsUnavailable(f"{name} {rdtype}: {exc}") from None
        return list(answer.rrset) if answer.rrset is not None else []

    def txt(self, name: str) -> list[str]:
        """Each TXT record at the name as one string (its character-strings joined)."""
        return [
            b"".join(record.strings).decode("utf-8", "replace")
            for record in self.records(name, "TXT")
        ]

    def addresses(self, host: str) -> list[str]:
        """The IPv4 and IPv6 addresses of a host name."""
        found = [record.address for record in self.records(host, "A")]
        return found + [record.address for record in self.records(host, "AAAA")]
