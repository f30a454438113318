"""DKIM keys made in the test run, and real signatures made with dkimpy (F75 tests).

Keys are generated with `cryptography`; the public half is published in the test DNS server as
`<selector>._domainkey.<domain> TXT "v=DKIM1; k=rsa; p=..."`, exactly as a domain owner would.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass(frozen=True)
class DkimKey:
    private_pem: bytes
    public_base64: str

    @property
    def record(self) -> str:
        """The TXT record value that publishes this key."""
        return f"v=DKIM1; k=rsa; p={self.public_base64}"

    def zone_line(self, name: str) -> str:
        """A zone-file line; the record is split into 255-byte strings as DNS requires."""
        text = self.record
        chunks = " ".join(f'"{text[i : i + 255]}"' for i in range(0, len(text), 255))
        return f"{name} TXT {chunks}"

    def sign(self, raw: bytes, domain: str, selector: str) -> bytes:
        """The message with a DKIM-Signature by domain/selector prepended (relaxed/relaxed)."""
        signature = dkim.sign(
            raw,
            selector.encode(),
            domain.encode(),
            self.private_pem,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
        )
        return signature + raw


def public_only_key(bits: int) -> DkimKey:
    """A public key of any size (cryptography refuses to make private keys under 1024 bits)."""
    modulus = (1 << (bits - 1)) | 1
    public = rsa.RSAPublicNumbers(65537, modulus).public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DkimKey(b"", base64.b64encode(der).decode("ascii"))


def make_dkim_key(bits: int = 2048) -> DkimKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DkimKey(pem, base64.b64encode(public).decode("ascii"))
