"""SPF (RFC 7208): may this client address send mail for the MAIL FROM (or HELO) domain?

Evaluated by pyspf, the reference Python implementation (it passes the RFC 7208 test suite and
is kept by the dkimpy maintainer). checkdmarc only validates records, it does not evaluate one
for an address; authheaders calls pyspf with the system resolver and keeps one result string.
pyspf takes no resolver argument: every query goes through one module-level function,
`spf.DNSLookup`. It is replaced once, here, by a function that asks the DnsLookup of the check
running in this thread or task (a context variable), so checks with different resolvers never
mix and pyspf never falls back to the system resolver.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import spf

from tui_helpdesk.records import SpfCheckRecord
from tui_helpdesk.services.dns_lookup import DnsLookup, DnsUnavailable

_LOOKUP: ContextVar[DnsLookup | None] = ContextVar("spf_lookup", default=None)


def _answer_value(qtype: str, record: Any) -> Any:
    """A record in the shape pyspf's own dnspython lookup returns."""
    if qtype in ("A", "AAAA"):
        return record.address
    if qtype == "MX":
        return (record.preference, record.exchange)
    if qtype == "PTR":
        return record.target.to_text(True)
    if qtype in ("TXT", "SPF"):
        return record.strings
    return record.to_text()


def _pyspf_lookup(name: str, qtype: str, strict: Any = True, timeout: Any = None) -> list[Any]:
    lookup = _LOOKUP.get()
    if lookup is None:
        raise spf.TempError("no resolver configured for this SPF check")
    try:
        records = lookup.records(name, qtype)
    except DnsUnavailable as exc:
        raise spf.TempError(f"DNS {exc}") from None
    return [((name, qtype), _answer_value(qtype, record)) for record in records]


spf.DNSLookup = _pyspf_lookup


@contextmanager
def _asking(lookup: DnsLookup) -> Iterator[None]:
    token = _LOOKUP.set(lookup)
    try:
        yield
    finally:
        _LOOKUP.reset(token)


def evaluate(lookup: DnsLookup, ip: str, mail_from: str, helo: str) -> SpfCheckRecord:
    """check_host() for the client address and the MAIL FROM (HELO for a null sender)."""
    identity = "mailfrom" if mail_from else "helo"
    domain = (mail_from.rpartition("@")[2] if mail_from else helo).lower().rstrip(".")
    if not domain:
        return _record("none", domain, identity, ip, "there is no MAIL FROM or HELO domain")
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return _record("none", domain, identity, ip, "the connecting address is not known")
    with _asking(lookup):
        query = spf.query(i=ip, s=mail_from, h=helo, timeout=lookup.timeout)
        result, _code, message = query.check()
    detail = message.removeprefix("SPF Temporary Error: ").removeprefix("SPF Permanent Error: ")
    return _record(result, domain, identity, ip, explain(result, domain, ip, detail))


def explain(result: str, domain: str, ip: str, message: str = "") -> str:
    """What an SPF result means for this sender, in words an agent understands."""
    sentences = {
        "pass": f"SPF pass: {domain} allows {ip} to send its mail",
        "fail": f"SPF fail: {domain} does not allow {ip} to send its mail",
        "softfail": f"SPF softfail: {domain} says {ip} is probably not allowed to send its mail",
        "neutral": f"SPF neutral: {domain} says nothing about whether {ip} may send its mail",
        "none": f"SPF none: {domain} publishes no SPF record",
        "temperror": f"SPF could not be checked for {domain}, the DNS did not answer: {message}",
        "permerror": f"SPF permerror: the SPF record of {domain} is broken: {message}",
    }
    return sentences.get(result, f"SPF {result} for {domain}: {message}")


def _record(result: str, domain: str, identity: str, ip: str, why: str) -> SpfCheckRecord:
    return SpfCheckRecord(
        result=result, domain=domain, identity=identity, ip=ip, source="computed", explanation=why
    )
