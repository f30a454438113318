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

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import OSA

from tui_helpdesk.records import MessageAuthRecord

FAILED_DMARC = {"fail", "permerror"}


@dataclass(frozen=True)
class SenderVerdict:
    """The strongest warning for one message, with every reason found."""

    level: str  # spoof | lookalike | "" (no warning)
    reasons: tuple[str, ...]


def sender_warning(
    auth: MessageAuthRecord,
    from_name: str,
    our_domains: Collection[str],
    known_contacts: Mapping[str, str],
) -> SenderVerdict:
    """The strongest warning that applies, with every reason found."""
    contacts = {address.lower(): name for address, name in known_contacts.items()}
    ours = {domain.lower().rstrip(".") for domain in our_domains}
    spoofing = spoofing_reasons(auth, ours, contacts)
    lookalike = lookalike_reasons(auth.from_address, from_name, ours, contacts)
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
    address = from_address.lower()
    if not address or address in contacts:
        return []
    domain = address.rpartition("@")[2]
    known_domains = set(our_domains) | {known.rpartition("@")[2] for known in contacts}
    reasons = _name_reasons(address, from_name, contacts)
    if domain not in known_domains:
        reasons += [
            f"{domain} is one character away from the known domain {known}"
            for known in one_edit_away(domain, known_domains)
        ]
    return reasons


def _name_reasons(address: str, from_name: str, contacts: Mapping[str, str]) -> list[str]:
    name = _normalise(from_name)
    if not name:
        return []
    reasons = [
        f"the name “{from_name}” belongs to the known contact {known}, "
        f"but this mail comes from {address}"
        for known, known_name in sorted(contacts.items())
        if _normalise(known_name) == name
    ]
    shown = [known for known in sorted(contacts) if known in name] if "@" in name else []
    reasons += [f"the name shows {known}, but this mail comes from {address}" for known in shown]
    return reasons


def one_edit_away(domain: str, known_domains: Collection[str]) -> list[str]:
    """Known domains one insertion, deletion, substitution or swap away (not equal)."""
    matches = process.extract(
        domain, list(known_domains), scorer=OSA.distance, score_cutoff=1, limit=None
    )
    return sorted(known for known, distance, _index in matches if distance == 1)


def _normalise(name: str) -> str:
    return " ".join(name.replace('"', " ").replace("'", " ").split()).casefold()
