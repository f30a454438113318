"""The entry point: who really sent one stored inbound message (F75).

A job calls `check_message` after the message is committed, off the path of the SMTP 250, with
what it stored: the raw bytes and the envelope as the worker saw it (the client's address, its
HELO name, MAIL FROM). It returns a frozen record to store with the message. DNS being slow or
down never raises here: every lookup is bounded by `dns.timeout_seconds` and gives temperror,
which the job may retry later.
"""

from __future__ import annotations

from collections.abc import Sequence

from tui_helpdesk.config import InboundAuthSettings, Settings
from tui_helpdesk.mail.headers import addresses
from tui_helpdesk.mail.parse import parse_message
from tui_helpdesk.records import MessageAuthRecord, SpfCheckRecord
from tui_helpdesk.services.dns_lookup import DnsLookup
from tui_helpdesk.services.inbound_auth.alignment import dmarc_verdict
from tui_helpdesk.services.inbound_auth.relay_results import is_trusted, relay_spf
from tui_helpdesk.services.inbound_auth.sender_policy import evaluate
from tui_helpdesk.services.inbound_auth.signatures import verify_signatures


def check_message(
    raw: bytes, peer_ip: str, helo: str, mail_from: str, settings: Settings
) -> MessageAuthRecord:
    """SPF, every DKIM signature and DMARC of one message, against the configured DNS."""
    lookup = DnsLookup(settings.dns)
    return authenticate(raw, peer_ip, helo, mail_from, lookup, settings.inbound_auth)


def authenticate(
    raw: bytes,
    peer_ip: str,
    helo: str,
    mail_from: str,
    lookup: DnsLookup,
    trust: InboundAuthSettings,
) -> MessageAuthRecord:
    headers = parse_message(raw).headers
    senders = from_addresses(headers)
    spf, ignored = _spf(headers, peer_ip, helo, mail_from, lookup, trust)
    signatures = verify_signatures(raw, lookup)
    from_domains = [address.rpartition("@")[2] for address in senders]
    dmarc = dmarc_verdict(from_domains, spf, signatures, lookup)
    first = senders[0] if senders else ""
    return MessageAuthRecord(
        from_address=first,
        from_domain=first.rpartition("@")[2],
        spf=spf,
        dkim=signatures,
        dmarc=dmarc,
        ignored_headers=ignored,
    )


def from_addresses(headers: Sequence[tuple[str, str]]) -> list[str]:
    """Every address of every From header field (a second From field is a known trick)."""
    notes: list[str] = []
    return [
        address.address
        for name, value in headers
        if name.lower() == "from"
        for address in addresses("From", value, notes)
    ]


def _spf(
    headers: Sequence[tuple[str, str]],
    peer_ip: str,
    helo: str,
    mail_from: str,
    lookup: DnsLookup,
    trust: InboundAuthSettings,
) -> tuple[SpfCheckRecord, tuple[str, ...]]:
    """From the trusted relay's header when the client is one, else computed for the client."""
    trusted = is_trusted(peer_ip, trust.trusted_relays)
    verdict = relay_spf(headers, trust.authserv_id, trusted_hop=trusted)
    if not trusted:
        return evaluate(lookup, peer_ip, mail_from, helo), verdict.ignored
    if verdict.spf is not None:
        return verdict.spf, verdict.ignored
    domain = (mail_from.rpartition("@")[2] if mail_from else helo).lower()
    why = (
        f"SPF unknown: the message came through the trusted relay {peer_ip}, which wrote no "
        f"SPF result as {trust.authserv_id} above its Received header"
    )
    identity = "mailfrom" if mail_from else "helo"
    spf = SpfCheckRecord("none", domain, identity, "", f"relay {trust.authserv_id}", why)
    return spf, verdict.ignored
