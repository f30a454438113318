"""Possible spoofing and lookalike senders (F75): the warning an agent sees before answering.

Pure rules over plain inputs: the message's authentication record, its From display name, our
organisation's domains and the known contacts (address → name). The caller reads those from the
database; nothing here touches it, so the rules are tested alone.

- Possible spoofing: From is one of our domains (or a subdomain of one) or a known contact's
  address, and DMARC fails (the domain publishes a policy and nothing that passed aligns with
  From), or the message names several From domains. That is the forged "please change the bank
  account" mail.
- Lookalike (a softer warning): not a known contact, but the display name is a known contact's
  name, or it shows a known address that is not the real one, or the domain is one edit away
  from a known domain (examp1e.com, exmaple.com).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from rapidfuzz import process
from rapidfuzz.distance import OSA

from tui_helpdesk.records import MessageAuthRecord

FAILED_DMARC = {"fail", "permerror"}


@dataclass(frozen=True)
class SenderVerdict:
    """The strongest warning for one message, with every reason found."""

    level: str  # spoof | lookalike | "" (no warning)
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class KnownSenders:
    """Our domains and the known contacts, indexed once for many messages.

    Each contact and contact domain carries when it became known (None: always), so a message
    compares only with what was known before it arrived: the contact its own mail created is
    no known contact, and its domain no known domain, for that mail."""

    our_domains: frozenset[str]
    contacts: Mapping[str, tuple[str, datetime | None]]  # address → (name, known since)
    by_name: Mapping[str, tuple[str, ...]]  # normalised name → addresses
    domains: Mapping[str, datetime | None]  # contacts' domains → known since (earliest)

    def known_contact(self, address: str, before: datetime | None) -> bool:
        found = self.contacts.get(address)
        return found is not None and _before(found[1], before)


def _before(since: datetime | None, before: datetime | None) -> bool:
    return since is None or before is None or since < before


def known_senders(
    our_domains: Collection[str],
    contacts: Iterable[tuple[str, str, datetime | None]],
) -> KnownSenders:
    """The index of (address, name, known since) rows."""
    by_address: dict[str, tuple[str, datetime | None]] = {}
    by_name: dict[str, list[str]] = {}
    domains: dict[str, datetime | None] = {}
    for address, name, since in contacts:
        address = address.lower()
        by_address[address] = (name, since)
        if normalised := _normalise(name):
            by_name.setdefault(normalised, []).append(address)
        domain = address.rpartition("@")[2]
        earlier = domains.get(domain, since)
        domains[domain] = None if since is None or earlier is None else min(since, earlier)
    return KnownSenders(
        our_domains=frozenset(domain.lower().rstrip(".") for domain in our_domains),
        contacts=by_address,
        by_name={name: tuple(sorted(found)) for name, found in by_name.items()},
        domains=domains,
    )


def sender_warning(
    auth: MessageAuthRecord,
    from_name: str,
    our_domains: Collection[str],
    known_contacts: Mapping[str, str],
) -> SenderVerdict:
    """The strongest warning that applies, with every reason found."""
    known = known_senders(our_domains, ((a, n, None) for a, n in known_contacts.items()))
    return warning_for(auth, from_name, known)


def warning_for(
    auth: MessageAuthRecord,
    from_name: str,
    known: KnownSenders,
    received_at: datetime | None = None,
) -> SenderVerdict:
    """sender_warning against an index, for a message received at `received_at`."""
    address = auth.from_address.lower()
    is_contact = known.known_contact(address, received_at)
    spoofing = spoofing_reasons(auth, known.our_domains, {address: ""} if is_contact else {})
    lookalike = [] if is_contact else _lookalike(address, from_name, known, received_at)
    if spoofing:
        return SenderVerdict("spoof", (*spoofing, *lookalike))
    return SenderVerdict("lookalike" if lookalike else "", tuple(lookalike))


def spoofing_reasons(
    auth: MessageAuthRecord, our_domains: Collection[str], contacts: Mapping[str, str]
) -> list[str]:
    if auth.dmarc.result not in FAILED_DMARC:
        return []
    address, domain = auth.from_address.lower(), auth.from_domain.lower()
    claims = []
    if any(domain == ours or domain.endswith("." + ours) for ours in our_domains):
        claims.append(f"From: {address} uses our own domain {domain}")
    if address in contacts:
        claims.append(f"From: {address} is a known contact")
    return [f"{claim}, but the message fails DMARC: {auth.dmarc.explanation}" for claim in claims]


def lookalike_reasons(
    from_address: str, from_name: str, our_domains: Collection[str], contacts: Mapping[str, str]
) -> list[str]:
    known = known_senders(our_domains, ((a, n, None) for a, n in contacts.items()))
    address = from_address.lower()
    if not address or known.known_contact(address, None):
        return []
    return _lookalike(address, from_name, known, None)


def _lookalike(
    address: str, from_name: str, known: KnownSenders, received_at: datetime | None
) -> list[str]:
    if not address:
        return []
    domain = address.rpartition("@")[2]
    reasons = _name_reasons(address, from_name, known, received_at)
    if not _known_domain(known, domain, received_at):
        candidates = known.our_domains | known.domains.keys()
        reasons += [
            f"{domain} is one character away from the known domain {found}"
            for found in one_edit_away(domain, candidates)
            if _known_domain(known, found, received_at)
        ]
    return reasons


def _known_domain(known: KnownSenders, domain: str, received_at: datetime | None) -> bool:
    if domain in known.our_domains:
        return True
    return domain in known.domains and _before(known.domains[domain], received_at)


def _name_reasons(
    address: str, from_name: str, known: KnownSenders, received_at: datetime | None
) -> list[str]:
    name = _normalise(from_name)
    if not name:
        return []
    reasons = [
        f"the name “{from_name}” belongs to the known contact {other}, "
        f"but this mail comes from {address}"
        for other in known.by_name.get(name, ())
        if other != address and known.known_contact(other, received_at)
    ]
    if "@" in name:
        shown = [
            other for other in sorted(known.contacts)
            if other in name and other != address and known.known_contact(other, received_at)
        ]  # fmt: skip
        reasons += [f"the name shows {o}, but this mail comes from {address}" for o in shown]
    return reasons


def one_edit_away(domain: str, known_domains: Collection[str]) -> list[str]:
    """Known domains one insertion, deletion, substitution or swap away (not equal)."""
    matches = process.extract(
        domain, list(known_domains), scorer=OSA.distance, score_cutoff=1, limit=None
    )
    return sorted(known for known, distance, _index in matches if distance == 1)


def _normalise(name: str) -> str:
    return " ".join(name.replace('"', " ").replace("'", " ").split()).casefold()
