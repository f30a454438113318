"""Behind an MTA (F75): which Authentication-Results header (RFC 8601) may be believed.

When mail reaches the worker through a relay we run, the worker sees only the relay's address,
so SPF must come from the relay's own Authentication-Results header. Anyone can write such a
header into a message, naming any authserv-id, so one is believed only when
  - the client that handed us the message is a configured trusted relay,
  - the header names the configured authserv-id, and
  - it stands above the topmost Received header, which is the trusted relay's own trace of
    receiving the message: a relay (and its milters) prepend their header above that line,
    while everything below it was written before the trusted hop (RFC 8601 section 5).
Every other header that claims our authserv-id is ignored, and reported with the reason.
Headers are parsed with `authres` (the RFC 8601 parser dkimpy uses for ARC).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import authres

from tui_helpdesk.records import SpfCheckRecord

HEADER = "authentication-results"
SPF_RESULTS = {"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"}


@dataclass(frozen=True)
class RelayVerdict:
    """What the trusted relay said about SPF (None when it said nothing usable)."""

    spf: SpfCheckRecord | None
    ignored: tuple[str, ...]


def is_trusted(peer_ip: str, trusted_relays: Sequence[str]) -> bool:
    try:
        address = ipaddress.ip_address(peer_ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(relay, strict=False) for relay in trusted_relays)


def relay_spf(
    headers: Sequence[tuple[str, str]], authserv_id: str, *, trusted_hop: bool
) -> RelayVerdict:
    """The SPF result of the trusted relay's header, and the headers that were not believed."""
    wanted = authserv_id.strip().lower()
    ignored: list[str] = []
    found: SpfCheckRecord | None = None
    above_trusted_hop = trusted_hop
    for name, value in headers:
        lowered = name.lower()
        if lowered == "received":
            above_trusted_hop = False
        if lowered != HEADER or not wanted:
            continue
        parsed = _parse(value)
        if parsed is None or str(parsed.authserv_id).lower() != wanted:
            continue
        if not above_trusted_hop:
            ignored.append(_why_ignored(authserv_id, trusted_hop))
        elif found is None:
            found = _spf_of(parsed, authserv_id)
    return RelayVerdict(found, tuple(ignored))


def _parse(value: str) -> authres.AuthenticationResultsHeader | None:
    try:
        return authres.AuthenticationResultsHeader.parse_value(value)
    except Exception:  # authres raises its own SyntaxError and others on hostile input
        return None


def _why_ignored(authserv_id: str, trusted_hop: bool) -> str:
    if trusted_hop:
        return (
            f"Authentication-Results claiming {authserv_id} was written before the trusted "
            "relay received the message: ignored"
        )
    return (
        f"Authentication-Results claiming {authserv_id} came with the message from a client "
        "that is not a trusted relay: ignored"
    )


def _spf_of(header: authres.AuthenticationResultsHeader, authserv_id: str) -> SpfCheckRecord | None:
    for result in header.results:
        if str(result.method).lower() != "spf":
            continue
        properties = {f"{p.type}.{p.name}".lower(): str(p.value) for p in result.properties}
        mail_from = properties.get("smtp.mailfrom", "")
        helo = properties.get("smtp.helo", "")
        domain = (mail_from.rpartition("@")[2] if mail_from else helo).lower()
        outcome = str(result.result).lower()
        if outcome not in SPF_RESULTS:
            outcome = "permerror"  # a result RFC 8601 does not define: nothing to believe
        return SpfCheckRecord(
            result=outcome,
            domain=domain,
            identity="mailfrom" if mail_from else "helo",
            ip="",
            source=f"relay {authserv_id}",
            explanation=f"SPF {outcome} for {domain or 'an unnamed domain'}, "
            f"as checked by the trusted relay {authserv_id}",
        )
    return None
