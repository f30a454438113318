"""The certificate STARTTLS presents, replaceable while the worker runs (issue 11, point 4).

Certificates are renewed in place (certbot every 60 days) and the worker is told with SIGHUP:
`reload` builds a new context from the files and the next connection gets it; sessions already
encrypted keep theirs. A renewal that does not load keeps the old certificate serving.
"""

from __future__ import annotations

import os
import ssl

from tui_helpdesk.errors import ConfigError


def server_context(certificate: str, key: str) -> ssl.SSLContext:
    """A server-side context: TLS 1.2 or later, no client certificate asked (MTAs send none)."""
    for name, path in (("tls_certificate", certificate), ("tls_key", key)):
        if not os.path.isfile(path):
            raise ConfigError(f"smtp.{name}: no such file: {path}", field=name)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(certificate, key)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(
            f"smtp.tls_certificate / smtp.tls_key: cannot load {certificate} with {key}: {error}",
            field="tls_certificate",
        ) from None
    return context


class ServerTLS:
    """The current STARTTLS context (None: STARTTLS is not offered), read at each connection."""

    def __init__(self, certificate: str = "", key: str = "") -> None:
        self.context: ssl.SSLContext | None = None
        self.certificate = certificate
        if certificate:
            self.context = server_context(certificate, key)

    def reload(self, certificate: str, key: str) -> None:
        """Load the files again (they may be new); raises ConfigError and keeps the old one."""
        self.context = server_context(certificate, key) if certificate else None
        self.certificate = certificate
