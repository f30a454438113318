"""STARTTLS on the worker process: a real client checks the certificate; SIGHUP serves a new one.

One backend (SQLite): TLS lives in the SMTP server; the database only shows the mail arrived
byte for byte. The client is smtplib as a sending MTA uses it, trusting only the test CA
(trustme) and checking the name, so a session that was not encrypted, or encrypted with
another certificate, fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trustme
from sqlalchemy import select
from test_ingest_support import LISTENING, build_mail, make_desk, notify_messages

from tui_helpdesk.config import load_settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Message
from tui_helpdesk.worker.runtime import run_worker

HOST = "127.0.0.1"


def install(cert: trustme.LeafCert, chain: Path, key: Path) -> bytes:
    """Write the certificate chain and key where the config points; returns the leaf's DER."""
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key))
    return ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())


def send_over_starttls(port: int, raw: bytes, alias: str, ca: trustme.CA) -> bytes:
    """One mail over STARTTLS; returns the certificate the server presented (DER)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with smtplib.SMTP(HOST, port, timeout=30) as client:
        client.ehlo("client.test")
        assert client.has_extn("starttls")
        assert client.mail("carol@customer.test")[0] == 530  # require_starttls = true
        client.starttls(context=context)
        sock: Any = client.sock
        assert sock.version() in {"TLSv1.2", "TLSv1.3"}
        client.ehlo("client.test")
        assert client.mail("carol@customer.test")[0] == 250
        assert client.rcpt(alias)[0] == 250
        code, reply = client.data(raw)
        assert code == 250, reply
        return sock.getpeercert(binary_form=True)


def test_worker_offers_starttls_and_reloads_the_certificate_on_sighup(
    sqlite_template: Path, tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, name = notify_socket
    url = f"sqlite:///{tmp_path / 'helpdesk.sqlite3'}"
    shutil.copyfile(sqlite_template, tmp_path / "helpdesk.sqlite3")
    settings = load_settings(environ={"TUI_HELPDESK_DATABASE_URL": url})
    db = Database.from_settings(settings)
    alias = make_desk(db, settings).support.alias
    ca = trustme.CA()
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    first = install(ca.issue_cert(HOST, "mx.helpdesk.test"), chain, key)
    config = tmp_path / "helpdesk.toml"
    write_config(config, url, chain, key)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUI_HELPDESK_")}
    env.update(TUI_HELPDESK_CONFIG=str(config), NOTIFY_SOCKET=name)
    worker = subprocess.Popen([sys.executable, "-m", "tui_helpdesk", "worker"], env=env,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    mails = [build_mail(subject=f"Over TLS {n}", body=f"..dot\r\n\xe9 {n}\r\n") for n in range(4)]

    def reload() -> None:
        worker.send_signal(signal.SIGHUP)
        notify_messages(sock, "RELOADING=1")
        notify_messages(sock, "READY=1")  # sent once the reload is done

    try:
        port = int(LISTENING.search(notify_messages(sock, "READY=1")[-1]).group(2))  # type: ignore[union-attr]
        assert send_over_starttls(port, mails[0], alias, ca) == first
        chain, key = tmp_path / "chain2.pem", tmp_path / "key2.pem"  # new files, new names
        second = install(ca.issue_cert(HOST, "mx.helpdesk.test"), chain, key)
        write_config(config, url, chain, key)
        reload()
        assert send_over_starttls(port, mails[1], alias, ca) == second
        third = install(ca.issue_cert(HOST, "mx.helpdesk.test"), chain, key)  # renewed in place
        reload()
        assert send_over_starttls(port, mails[2], alias, ca) == third
        chain.write_text("not a certificate")  # a broken renewal: the last good one stays
        reload()
        assert send_over_starttls(port, mails[3], alias, ca) == third
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    log = worker.stderr.read() if worker.stderr else ""
    assert log.count(f"STARTTLS certificate reloaded from {chain}") == 2
    assert "STARTTLS certificate not reloaded, the old one stays" in log
    assert "applied after a restart" not in log  # new certificate files need no restart
    assert len({first, second, third}) == 3
    with db.read() as session:
        assert list(session.scalars(select(Message.raw).order_by(Message.id))) == mails
    db.dispose()


def write_config(config: Path, url: str, chain: Path, key: Path) -> None:
    config.write_text(f"[database]\nurl = {json.dumps(url)}\n[smtp]\nport = 0\n"
                      f"tls_certificate = {json.dumps(str(chain))}\n"
                      f"tls_key = {json.dumps(str(key))}\nrequire_starttls = true\n")  # fmt: skip


def test_a_certificate_that_does_not_load_stops_the_worker_at_start(
    sqlite_template: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.copyfile(sqlite_template, tmp_path / "helpdesk.sqlite3")
    missing = tmp_path / "missing.pem"
    settings = load_settings(environ={
        "TUI_HELPDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'helpdesk.sqlite3'}",
        "TUI_HELPDESK_SMTP_PORT": "0",
        "TUI_HELPDESK_SMTP_TLS_CERTIFICATE": str(missing),
        "TUI_HELPDESK_SMTP_TLS_KEY": str(missing),
    })  # fmt: skip
    assert run_worker(settings) == 1
    assert f"smtp.tls_certificate: no such file: {missing}" in caplog.text
