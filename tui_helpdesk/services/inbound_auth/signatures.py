"""DKIM (RFC 6376): every DKIM-Signature of a message, verified with dkimpy.

A message may carry several signatures (the author's domain, the mailing service, a list that
re-signs); DMARC needs to know each one, so each gets its own result. dkimpy fetches keys
through the `dnsfunc` it is given: here one that asks our resolver and remembers what the DNS
said, so that "no key published" and "the DNS did not answer" are told apart from a signature
that does not match.
"""

from __future__ import annotations

import logging
import re

import dkim
from dkim.util import InvalidTagValueList, parse_tag_value

from tui_helpdesk.records import DkimSignatureRecord
from tui_helpdesk.services.dns_lookup import DnsLookup, DnsUnavailable

_LOOSE_TAG = re.compile(rb"(?:^|;)\s*([ds])\s*=\s*([^;\s]*)")

# dkimpy logs every signature that does not verify at ERROR; for a helpdesk that is ordinary
# mail, and the result record already says why, so its messages go nowhere.
_DKIMPY_LOG = logging.getLogger(f"{__name__}.dkimpy")
_DKIMPY_LOG.addHandler(logging.NullHandler())
_DKIMPY_LOG.propagate = False


class KeyFetch:
    """dkimpy's dnsfunc: the key record through our resolver, and what went wrong with it."""

    def __init__(self, lookup: DnsLookup) -> None:
        self.lookup = lookup
        self.missing = False
        self.unusable = ""

    def __call__(self, name: bytes, timeout: float = 5) -> bytes | None:
        records = self.lookup.txt(name.decode("ascii", "replace"))  # raises DnsUnavailable
        if not records:
            self.missing = True
            return None
        key = records[0].encode("utf-8")
        try:
            dkim.evaluate_pk(name, key)
        except dkim.DKIMException as exc:
            self.unusable = str(exc)
        return key


def verify_signatures(raw: bytes, lookup: DnsLookup) -> tuple[DkimSignatureRecord, ...]:
    """One result per DKIM-Signature header, topmost first; () when the message has none."""
    try:
        verifier = dkim.DKIM(raw, logger=_DKIMPY_LOG, timeout=lookup.timeout)
    except dkim.DKIMException:
        return ()  # no header section dkimpy can read: nothing it could verify either
    values = [value for name, value in verifier.headers if name.lower() == b"dkim-signature"]
    return tuple(_verify(verifier, index, value, lookup) for index, value in enumerate(values))


def _signer(value: bytes) -> tuple[str, str]:
    """(d=, s=) of a signature header, read leniently so a broken one can still be named."""
    try:
        tags = parse_tag_value(value)
    except InvalidTagValueList:
        tags = {m.group(1): m.group(2) for m in _LOOSE_TAG.finditer(value)}
    domain = tags.get(b"d", b"").decode("ascii", "replace").lower()
    return domain, tags.get(b"s", b"").decode("ascii", "replace")


def _verify(
    verifier: dkim.DKIM, index: int, value: bytes, lookup: DnsLookup
) -> DkimSignatureRecord:
    domain, selector = _signer(value)
    by = f"DKIM signature by {domain or 'an unnamed domain'}"
    keys = KeyFetch(lookup)
    try:
        valid = verifier.verify(idx=index, dnsfunc=keys)
    except DnsUnavailable as exc:
        return _result("temperror", domain, selector, f"{by} could not be checked: {exc}")
    except dkim.ValidationError as exc:
        if "body hash mismatch" in str(exc):
            return _result("fail", domain, selector, f"{by} fails: the body changed after signing")
        if "expired" in str(exc):
            return _result("fail", domain, selector, f"{by} fails: {exc}")
        return _result("permerror", domain, selector, f"{by} cannot be used: {exc}")
    except dkim.DKIMException as exc:
        return _result("permerror", domain, selector, f"{by} cannot be used: {exc}")
    key_name = f"{selector}._domainkey.{domain}"
    if valid:
        return _result("pass", domain, selector, f"{by} is valid (key {key_name})")
    if keys.missing:
        return _result("permerror", domain, selector, f"{by}: no key is published at {key_name}")
    if keys.unusable:
        why = f"{by}: the key at {key_name} is unusable: {keys.unusable}"
        return _result("permerror", domain, selector, why)
    why = f"{by} fails: the signed headers changed after signing, or the signature is forged"
    return _result("fail", domain, selector, why)


def _result(result: str, domain: str, selector: str, why: str) -> DkimSignatureRecord:
    return DkimSignatureRecord(result=result, domain=domain, selector=selector, explanation=why)
