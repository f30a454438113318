"""F2: is each domain of the organisation ready for the helpdesk's mail? MX, SPF, DKIM, DMARC.

Each check says pass, fail, missing or temperror (the DNS did not answer in time: "could not
check", never a crash), shows what is published, and gives the exact zone-file line to publish
when something must change. The SPF check asks the real question: does the domain's SPF policy
allow the hosts our mail leaves from? Those are the addresses of the platform relay
(`[outbound] relay_host`), evaluated with pyspf exactly as a receiver would; or, when the relay
is not what recipients see (a local MTA, a provider with its own SPF include), the domain
configured as `[dns] spf_include`, which the record must include. Mailboxes have no transports
of their own yet; when they do, their hosts join the relay here.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

import dkim
import dns.name
from sqlalchemy.orm import Session

from tui_helpdesk.config import DNS_LABELS, Settings
from tui_helpdesk.errors import Invalid, NotFound
from tui_helpdesk.records import DomainCheckRecord, UserRecord
from tui_helpdesk.services import domains
from tui_helpdesk.services.dns_lookup import DnsLookup, DnsUnavailable
from tui_helpdesk.services.inbound_auth.dmarc_policy import (
    dmarc_records,
    organisational_domain,
    parse_policy,
)
from tui_helpdesk.services.inbound_auth.sender_policy import evaluate
from tui_helpdesk.services.permissions import require_actor

STATUSES = ("pass", "fail", "missing", "temperror")
RECOMMENDED_DMARC = "v=DMARC1; p=quarantine; adkim=r; aspf=r"
MIN_KEY_BITS = 1024


@dataclass(frozen=True)
class SendingHost:
    """A host our mail leaves from, and the SPF mechanism that authorises it."""

    host: str
    mechanism: str  # ip4:192.0.2.25 | ip6:2001:db8::25 | a:relay.example.net | include:...


def domains_to_check(session: Session, actor: UserRecord | None, domain: str | None) -> list[str]:
    """The named domain (it must be one of the actor's organisation) or all of them."""
    actor = require_actor(actor)
    if domain is None:
        return [record.domain for record in domains.list_domains(session, actor)]
    name = domains.validate_hostname(domain)
    if domains.find(session, actor.organisation_id, name) is None:
        raise NotFound(
            f"{name} is not a domain of your organisation (add it with `domain add {name}`)",
            field="domain",
        )
    return [name]


def check_domain(
    domain: str, settings: Settings, *, selector: str | None = None
) -> list[DomainCheckRecord]:
    """The four checks of one domain, against the resolver of the [dns] settings."""
    lookup = DnsLookup(settings.dns)
    if selector is not None and not DNS_LABELS.match(selector):
        raise Invalid(
            f"selector must be DNS labels (letters, digits, hyphens, dots), got {selector!r}",
            field="selector",
        )
    selector = selector or settings.dns.dkim_selector
    checks: list[tuple[str, str, Callable[[], DomainCheckRecord]]] = [
        ("mx", domain, lambda: check_mx(lookup, domain)),
        ("spf", domain, lambda: check_spf(lookup, domain, sending_hosts(settings))),
        ("dkim", f"{selector}._domainkey.{domain}", lambda: check_dkim(lookup, domain, selector)),
        ("dmarc", f"_dmarc.{domain}", lambda: check_dmarc(lookup, domain)),
    ]
    return [_guarded(domain, check, name, run) for check, name, run in checks]


def _guarded(
    domain: str, check: str, name: str, run: Callable[[], DomainCheckRecord]
) -> DomainCheckRecord:
    try:
        return run()
    except DnsUnavailable as exc:
        why = f"could not check: the DNS did not answer ({exc}); try again later"
        return DomainCheckRecord(domain, check, "temperror", name, (), "", why)


def sending_hosts(settings: Settings) -> list[SendingHost]:
    """Where the helpdesk's mail leaves from, as recipients' SPF checks will see it."""
    if settings.dns.spf_include:
        include = settings.dns.spf_include
        return [SendingHost(include, f"include:{include}")]
    host = settings.outbound.relay_host.strip().lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return [SendingHost(host, f"a:{host}")]
    return [SendingHost(host, f"ip{address.version}:{address}")]


def check_spf(lookup: DnsLookup, domain: str, hosts: list[SendingHost]) -> DomainCheckRecord:
    found = [text for text in lookup.txt(domain) if is_spf(text)]
    wanted = [host.mechanism for host in hosts]
    if not found:
        publish = txt_line(domain, " ".join(["v=spf1", *wanted, "~all"]))
        why = f"{domain} publishes no SPF record, so receivers cannot tell our mail from forgeries"
        return DomainCheckRecord(domain, "spf", "missing", domain, (), publish, why)
    publish = txt_line(domain, with_mechanisms(found[0], wanted))
    if len(found) > 1:
        why = (
            f"{domain} publishes {len(found)} SPF records; receivers treat that as an error "
            "(permerror): merge them into one"
        )
        return DomainCheckRecord(domain, "spf", "fail", domain, tuple(found), publish, why)
    problems = _spf_problems(lookup, domain, found[0], hosts)
    if problems is None:
        why = f"the SPF record of {domain} allows {', '.join(h.host for h in hosts)} to send"
        return DomainCheckRecord(domain, "spf", "pass", domain, tuple(found), "", why)
    status, why = problems
    if status == "temperror":
        publish = ""
    return DomainCheckRecord(domain, "spf", status, domain, tuple(found), publish, why)


def _spf_problems(
    lookup: DnsLookup, domain: str, record: str, hosts: list[SendingHost]
) -> tuple[str, str] | None:
    """None when every sending host passes, else (status, why)."""
    reasons: list[str] = []
    for host in hosts:
        if host.mechanism.startswith("include:"):
            if host.mechanism.lower() not in record.lower().split():
                reasons.append(f"the SPF record of {domain} does not contain {host.mechanism}")
            continue
        addresses = (
            [host.host] if not host.mechanism.startswith("a:") else lookup.addresses(host.host)
        )
        if not addresses:
            reasons.append(f"the relay host {host.host} has no address in DNS")
        for ip in addresses:
            result = evaluate(lookup, ip, f"postmaster@{domain}", domain)
            if result.result == "temperror":
                return "temperror", f"could not check: {result.explanation}"
            if result.result != "pass":
                reasons.append(_host_reason(host.host, ip, result.result, result.explanation))
    return ("fail", "; ".join(reasons)) if reasons else None


def _host_reason(host: str, ip: str, result: str, explanation: str) -> str:
    via = host if host == ip else f"{host} ({ip})"
    reason = f"mail sent through {via} gets SPF {result}"
    if result == "permerror":
        reason += f": {explanation}"
    if not ipaddress.ip_address(ip).is_global:
        reason += (
            f"; {ip} is not a public address, so recipients see another one: set [dns] "
            "spf_include to the SPF domain of the host that delivers to the internet"
        )
    return reason


def is_spf(text: str) -> bool:
    return text.lower() == "v=spf1" or text.lower().startswith("v=spf1 ")


def with_mechanisms(record: str, mechanisms: list[str]) -> str:
    """The record with the mechanisms it lacks, placed before its `all` or `redirect=`."""
    terms = record.split()
    present = {term.lower().lstrip("+") for term in terms}
    missing = [m for m in mechanisms if m.lower() not in present]
    for index, term in enumerate(terms[1:], start=1):
        if term.lower().lstrip("+-~?") == "all" or term.lower().startswith("redirect="):
            return " ".join(terms[:index] + missing + terms[index:])
    return " ".join(terms + missing)


def check_mx(lookup: DnsLookup, domain: str) -> DomainCheckRecord:
    """Customers reply to the mailbox address: its domain must accept mail."""
    records = sorted(lookup.records(domain, "MX"), key=lambda r: r.preference)
    found = tuple(f"{r.preference} {r.exchange}" for r in records)
    if not records:
        publish = f"{domain}. IN MX 10 <the host that receives mail for {domain}>."
        why = f"{domain} has no MX record: mail to its addresses (and replies) cannot arrive"
        return DomainCheckRecord(domain, "mx", "missing", domain, (), publish, why)
    if [r.exchange for r in records] == [dns.name.root]:
        why = f"{domain} publishes a null MX (RFC 7505): it accepts no mail at all"
        return DomainCheckRecord(domain, "mx", "fail", domain, found, "", why)
    hosts = [r.exchange.to_text(omit_final_dot=True) for r in records]
    if not any(lookup.addresses(host) for host in hosts):
        why = f"none of the MX hosts of {domain} ({', '.join(hosts)}) has an address in DNS"
        return DomainCheckRecord(domain, "mx", "fail", domain, found, "", why)
    why = f"mail for {domain} is received by {', '.join(hosts)}"
    return DomainCheckRecord(domain, "mx", "pass", domain, found, "", why)


def check_dkim(lookup: DnsLookup, domain: str, selector: str) -> DomainCheckRecord:
    """The public key of the selector the signing relay uses must be published."""
    name = f"{selector}._domainkey.{domain}"
    found = tuple(lookup.txt(name))
    record = DomainCheckRecord(domain, "dkim", "pass", name, found, "", "")
    if not found:
        publish = txt_line(name, "v=DKIM1; k=rsa; p=<the public key of the key that signs>")
        why = (
            f"no DKIM key is published for selector {selector}: publish the public key that "
            f"signs mail for {domain} (the signing relay's DKIM set-up gives it)"
        )
        return _replace(record, status="missing", publish=publish, explanation=why)
    if len(found) > 1:
        why = f"{name} holds {len(found)} TXT records; verifiers may pick any: keep one"
        return _replace(record, status="fail", explanation=why)
    problem = _key_problem(name, found[0])
    if problem:
        return _replace(record, status="fail", explanation=problem)
    return _replace(record, explanation=f"a DKIM key is published for selector {selector}")


def _key_problem(name: str, text: str) -> str:
    tags = {k.strip(): v.strip() for k, _, v in (part.partition("=") for part in text.split(";"))}
    if tags.get("p") == "":
        return f"the key at {name} is revoked (empty p=)"
    try:
        _key, bits, _type, _tlsrpt = dkim.evaluate_pk(name.encode(), text.encode())
    except dkim.DKIMException as exc:
        return f"the key record at {name} is unusable: {exc}"
    if bits is not None and bits < MIN_KEY_BITS:
        return f"the key at {name} has {bits} bits; receivers ignore keys under {MIN_KEY_BITS}"
    return ""


def check_dmarc(lookup: DnsLookup, domain: str) -> DomainCheckRecord:
    """A DMARC policy tells receivers to refuse mail that forges the domain."""
    name = f"_dmarc.{domain}"
    found = tuple(dmarc_records(lookup.txt(name)))
    publish = txt_line(name, RECOMMENDED_DMARC)
    record = DomainCheckRecord(domain, "dmarc", "pass", name, found, "", "")
    if len(found) > 1:
        why = f"{name} holds {len(found)} DMARC records, so receivers apply none: keep one"
        return _replace(record, status="fail", publish=publish, explanation=why)
    where, inherited = name, False
    if not found and (org := organisational_domain(domain)) != domain:
        parent = tuple(dmarc_records(lookup.txt(f"_dmarc.{org}")))
        if len(parent) == 1:
            where, inherited, found = f"_dmarc.{org}", True, parent
            record = _replace(record, found=found)
    if not found:
        why = f"{domain} publishes no DMARC policy: receivers deliver mail that forges it"
        return _replace(record, status="missing", publish=publish, explanation=why)
    policy = parse_policy(where.removeprefix("_dmarc."), found[0], inherited=inherited)
    source = f" (inherited from {where})" if inherited else ""
    if policy.note:
        why = f"the DMARC record at {where} is broken: {policy.note}"
        return _replace(record, status="fail", publish=publish, explanation=why)
    if policy.policy == "none":
        why = (
            f"p=none{source} only monitors: receivers still deliver mail that forges {domain}. "
            f"Once reports show your real mail passes, publish: {publish}"
        )
        return _replace(record, explanation=why)
    forged = f"mail that forges {domain}"
    effect = f"refuse {forged}" if policy.policy == "reject" else f"put {forged} in spam"
    why = f"p={policy.policy}{source}: receivers {effect}"
    return _replace(record, explanation=why)


def txt_line(name: str, text: str) -> str:
    """A zone-file TXT line; strings over 255 characters are split as DNS requires."""
    chunks = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
    return f"{name}. IN TXT " + " ".join(f'"{chunk}"' for chunk in chunks)


def _replace(record: DomainCheckRecord, **changes: object) -> DomainCheckRecord:
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]
