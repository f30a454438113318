"""The DMARC verdict (RFC 7489): did anything that passed speak for the From domain?

SPF and DKIM each authenticate *some* domain: the MAIL FROM domain, the signing domain. The
person reading the mail sees only From. DMARC passes when SPF or a DKIM signature passed for a
domain aligned with From (the same organisational domain, or the very same domain when the
policy asks for strict alignment). Every step is put in words, because "DMARC fail" alone tells
an agent nothing: "DKIM signature by mailer.example does not align with From: bank.example".
"""

from __future__ import annotations

from collections.abc import Sequence

from tui_helpdesk.records import DkimSignatureRecord, DmarcCheckRecord, SpfCheckRecord
from tui_helpdesk.services.dns_lookup import DnsLookup, DnsUnavailable
from tui_helpdesk.services.inbound_auth.dmarc_policy import DmarcPolicy, aligned, discover


def dmarc_verdict(
    from_domains: Sequence[str],
    spf: SpfCheckRecord,
    signatures: Sequence[DkimSignatureRecord],
    lookup: DnsLookup,
) -> DmarcCheckRecord:
    """DMARC for the From domain(s) of a message, given its SPF and DKIM results."""
    domains = sorted(set(from_domains))
    if not domains:
        return _record("none", "", None, why="the message has no usable From address")
    if len(domains) > 1:
        named = ", ".join(domains)
        why = f"the message names several From domains ({named}); DMARC cannot vouch for it"
        return _record("permerror", ", ".join(domains), None, why=why)
    from_domain = domains[0]
    try:
        policy, why_none = discover(lookup, from_domain)
    except DnsUnavailable as exc:
        why = f"DMARC could not be checked for {from_domain}: {exc}"
        return _record("temperror", from_domain, None, why=why)
    spf_mode = policy.aspf if policy else "r"
    dkim_mode = policy.adkim if policy else "r"
    spf_aligned = spf.result == "pass" and aligned(spf.domain, from_domain, spf_mode)
    dkim_aligned = tuple(
        s.domain
        for s in signatures
        if s.result == "pass" and aligned(s.domain, from_domain, dkim_mode)
    )
    steps = [_spf_step(spf, from_domain, spf_mode)]
    steps += [_dkim_step(s, from_domain, dkim_mode) for s in signatures] or ["no DKIM signature"]
    if policy is None:
        result = "none"
        headline = f"DMARC none: {why_none}"
    else:
        result = _outcome(spf_aligned or bool(dkim_aligned), spf, signatures)
        headline = _headline(result, policy, from_domain)
    why = "; ".join([headline, *steps])
    return _record(result, from_domain, policy, spf_aligned, dkim_aligned, why=why)


def _outcome(
    any_aligned_pass: bool, spf: SpfCheckRecord, signatures: Sequence[DkimSignatureRecord]
) -> str:
    if any_aligned_pass:
        return "pass"
    if spf.result == "temperror" or any(s.result == "temperror" for s in signatures):
        return "temperror"  # a check that could not run might have passed: no verdict yet
    return "fail"


def _headline(result: str, policy: DmarcPolicy, from_domain: str) -> str:
    where = f"{policy.domain} publishes p={policy.policy}"
    if policy.note:
        where += f" ({policy.note}, read as p=none)"
    if result == "pass":
        return f"DMARC pass for From: {from_domain} ({where})"
    if result == "temperror":
        return f"DMARC could not be decided for From: {from_domain} ({where})"
    return f"DMARC fail: {where}, and nothing that passed aligns with From: {from_domain}"


def _spf_step(spf: SpfCheckRecord, from_domain: str, mode: str) -> str:
    if spf.result != "pass":
        return spf.explanation
    strict = " (strict alignment)" if mode == "s" else ""
    if aligned(spf.domain, from_domain, mode):
        return f"SPF pass for {spf.domain} aligns with From: {from_domain}{strict}"
    return f"SPF pass for {spf.domain} does not align with From: {from_domain}{strict}"


def _dkim_step(signature: DkimSignatureRecord, from_domain: str, mode: str) -> str:
    if signature.result != "pass":
        return signature.explanation
    strict = " (strict alignment)" if mode == "s" else ""
    if aligned(signature.domain, from_domain, mode):
        return f"DKIM signature by {signature.domain} aligns with From: {from_domain}{strict}"
    return f"DKIM signature by {signature.domain} does not align with From: {from_domain}{strict}"


def _record(
    result: str,
    from_domain: str,
    policy: DmarcPolicy | None,
    spf_aligned: bool = False,
    dkim_aligned: tuple[str, ...] = (),
    *,
    why: str,
) -> DmarcCheckRecord:
    return DmarcCheckRecord(
        result=result,
        from_domain=from_domain,
        policy_domain=policy.domain if policy else "",
        policy=policy.policy if policy else "",
        spf_aligned=spf_aligned,
        dkim_aligned=dkim_aligned,
        explanation=why,
    )
