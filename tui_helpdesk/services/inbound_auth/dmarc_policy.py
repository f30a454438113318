"""DMARC records (RFC 7489): where a domain's policy is published, what it says, and the
organisational domain that relaxed alignment compares.

Shared by the DMARC verdict on inbound mail (alignment.py) and by `domain check` (F2), so both
read a record the same way. The organisational domain comes from the Public Suffix List bundled
with `publicsuffixlist` (no network fetch): mail.bank.example and bank.example share
bank.example, while a.github.io and b.github.io do not.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from publicsuffixlist import PublicSuffixList

from tui_helpdesk.services.dns_lookup import DnsLookup

POLICIES = ("none", "quarantine", "reject")


@dataclass(frozen=True)
class DmarcPolicy:
    """A domain's DMARC policy as it applies to one From domain."""

    domain: str  # where the record was found: the From domain or its organisational domain
    record: str
    policy: str  # none | quarantine | reject (sp= when inherited by a subdomain)
    adkim: str  # r (relaxed) | s (strict)
    aspf: str
    note: str  # what was wrong with the record, if anything ("" when nothing)


@functools.cache
def _suffix_list() -> PublicSuffixList:
    return PublicSuffixList()


def organisational_domain(domain: str) -> str:
    """bank.example for mail.bank.example; a public suffix itself stays as it is."""
    domain = domain.lower().rstrip(".")
    return _suffix_list().privatesuffix(domain) or domain


def aligned(identifier: str, from_domain: str, mode: str) -> bool:
    """Strict: the same domain. Relaxed: the same organisational domain."""
    identifier, from_domain = identifier.lower().rstrip("."), from_domain.lower().rstrip(".")
    if mode == "s":
        return identifier == from_domain
    return organisational_domain(identifier) == organisational_domain(from_domain)


def dmarc_records(texts: list[str]) -> list[str]:
    """The TXT strings that are DMARC records (they start with the v=DMARC1 tag)."""
    return [text for text in texts if _tags(text).get("v", "").upper() == "DMARC1"]


def _tags(text: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, equals, value = part.partition("=")
        if equals and name.strip():
            tags.setdefault(name.strip().lower(), value.strip())
    return tags


def parse_policy(domain: str, record: str, *, inherited: bool) -> DmarcPolicy:
    """Read one record; a missing or unknown p= reads as p=none (RFC 7489 section 6.6.3)."""
    tags = _tags(record)
    policy = tags.get("p", "").lower()
    note = (
        "" if policy in POLICIES else f"p={tags.get('p', '')!r} is not none, quarantine or reject"
    )
    policy = policy if policy in POLICIES else "none"
    if inherited and tags.get("sp", "").lower() in POLICIES:
        policy = tags["sp"].lower()
    return DmarcPolicy(
        domain=domain,
        record=record,
        policy=policy,
        adkim="s" if tags.get("adkim", "r").lower() == "s" else "r",
        aspf="s" if tags.get("aspf", "r").lower() == "s" else "r",
        note=note,
    )


def discover(lookup: DnsLookup, from_domain: str) -> tuple[DmarcPolicy | None, str]:
    """The policy for a From domain: `_dmarc.<domain>`, else `_dmarc.<organisational domain>`.

    Returns (policy or None, why none was used). Several records at one name mean no policy
    (RFC 7489 section 6.6.3). Raises DnsUnavailable when the DNS does not answer.
    """
    from_domain = from_domain.lower().rstrip(".")
    candidates = [from_domain]
    if (org := organisational_domain(from_domain)) != from_domain:
        candidates.append(org)
    for domain in candidates:
        records = dmarc_records(lookup.txt(f"_dmarc.{domain}"))
        if len(records) > 1:
            return None, f"_dmarc.{domain} holds {len(records)} DMARC records, so none applies"
        if records:
            return parse_policy(domain, records[0], inherited=domain != from_domain), ""
    return None, f"{from_domain} publishes no DMARC record"
