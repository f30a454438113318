"""F75 end to end: mail in over real SMTP from 127.0.0.x clients, the check queued with it, the
checker's job run against the test DNS server, the results stored; then the warning, the
search filters, `conversation show --json` and the reply confirmation. Both backends.

The tests drive the checker (`AuthChecker.run_once`) themselves, so nothing waits on a clock;
one test lets the worker's own checker threads do it.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dkim_keys import DkimKey, make_dkim_key
from dns_server import ZoneServer
from test_cli import ADA, Cli
from test_ingest_support import (
    Desk,
    build_mail,
    make_desk,
    send,
    start_worker_process,
    wait_until_dead,
)

from tui_helpdesk.config import DnsSettings, Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Message, MessageAuth
from tui_helpdesk.errors import Conflict
from tui_helpdesk.records import UserRecord
from tui_helpdesk.services.conversations import listing, replies, thread
from tui_helpdesk.services.inbound_auth.warnings import (
    confirm_reply,
    conversation_warnings,
    flagged_counts,
)
from tui_helpdesk.services.search.results import search
from tui_helpdesk.worker.auth_checker import AuthChecker, client_address
from tui_helpdesk.worker.runtime import EmbeddedWorker

BANK_IP = "127.0.0.5"  # bank.test's mail server
MAILER_IP = "127.0.0.7"  # a mailing service, mailer.test
LIST_IP = "127.0.0.10"  # a mailing list server, list.test
STRANGER_IP = "127.0.0.66"
RELAY_IP = "127.0.0.250"  # our own MTA in front of the worker
AUTHSERV_ID = "mx.helpdesk.test"
SUPPORT = "support@acme.test"


@pytest.fixture(scope="module")
def mailer_key() -> DkimKey:
    return make_dkim_key(bits=1024)


@pytest.fixture
def zones(dns_server: ZoneServer, dkim_key: DkimKey, mailer_key: DkimKey) -> ZoneServer:
    dns_server.load(
        "bank.test",
        f'@ TXT "v=spf1 ip4:{BANK_IP} -all"\n{dkim_key.zone_line("s1._domainkey")}\n'
        '_dmarc TXT "v=DMARC1; p=reject"\n',
    )
    dns_server.load(
        "mailer.test",
        f'@ TXT "v=spf1 ip4:{MAILER_IP} -all"\n{mailer_key.zone_line("m1._domainkey")}\n',
    )
    dns_server.load("list.test", f'@ TXT "v=spf1 ip4:{LIST_IP} -all"\n')
    dns_server.load("shop.test", f'@ TXT "v=spf1 ip4:{BANK_IP} ~all"\n')
    dns_server.load("quiet.test", "www A 192.0.2.80\n")
    dns_server.load("bamk.test", "")
    dns_server.load("acme.test", f'@ TXT "v=spf1 ip4:{BANK_IP} -all"\n'
                    '_dmarc TXT "v=DMARC1; p=reject"\n')  # fmt: skip
    return dns_server


def with_dns(settings: Settings, dns: DnsSettings, **inbound_auth: object) -> Settings:
    trust = {"trusted_relays": (RELAY_IP,), "authserv_id": AUTHSERV_ID, **inbound_auth}
    return settings.replace(dns=vars(dns), inbound_auth=trust)


@pytest.fixture
def auth_settings(settings: Settings, zones: ZoneServer) -> Settings:
    return with_dns(settings, zones.dns_settings(timeout_seconds=2))


@pytest.fixture
def desk(db: Database, auth_settings: Settings) -> Desk:
    return make_desk(db, auth_settings)


@dataclass(frozen=True)
class Inbox:
    """The worker's SMTP address and the support mailbox's alias (what RCPT TO accepts)."""

    address: tuple[str, int]
    alias: str


@pytest.fixture
def worker(auth_settings: Settings, desk: Desk) -> Iterator[Inbox]:
    embedded = EmbeddedWorker(auth_settings)  # concurrency 0 (conftest): the tests check
    address = embedded.start()
    yield Inbox(address, desk.support.alias)
    embedded.stop()


def mail(
    sender: str, subject: str = "Invoice 2026-1142", *, top: str = "", body: str = ""
) -> bytes:
    raw = build_mail(sender=sender, subject=subject, to=SUPPORT,
                     body=body or "Please pay the invoice to the usual account.\r\n")  # fmt: skip
    return top.encode() + raw


def deliver(worker: Inbox, raw: bytes, ip: str, mail_from: str) -> int:
    """One SMTP transaction from client address `ip`; the stored message's id."""
    code, reply = send(*worker.address, raw, [worker.alias], mail_from=mail_from, source=ip)
    assert code == 250, reply
    return int(reply.decode().rsplit(" ", 1)[1])


def check_all(db: Database, settings: Settings, *, now: datetime | None = None) -> int:
    """Run the checker's job until nothing is due (at `now`, default the real time)."""
    checker = AuthChecker(
        settings, name="test", clock=(lambda: now) if now else (lambda: datetime.now(UTC))
    )
    checker.db = db
    total = 0
    while done := checker.run_once():
        total += done
    return total


def stored(db: Database, message_id: int) -> MessageAuth:
    with db.read() as session:
        row = session.get(MessageAuth, message_id)
        assert row is not None
        session.expunge(row)
        return row


def conversation_of(db: Database, message_id: int) -> int:
    with db.read() as session:
        return session.get_one(Message, message_id).conversation_id


def known_ann(db: Database, settings: Settings, worker: Inbox, dkim_key: DkimKey) -> int:
    """A genuine first mail from Ann Smith <ann@bank.test>: she is a known contact after it."""
    first = dkim_key.sign(mail("Ann Smith <ann@bank.test>", "Hello"), "bank.test", "s1")
    message_id = deliver(worker, first, BANK_IP, "ann@bank.test")
    check_all(db, settings)
    return message_id


# --- results per message ------------------------------------------------------------------


def test_the_envelope_is_queued_with_the_message_and_a_genuine_mail_passes(
    db: Database, auth_settings: Settings, worker: Inbox, dkim_key: DkimKey
) -> None:
    raw = dkim_key.sign(mail("Ann Smith <ann@bank.test>"), "bank.test", "s1")
    message_id = deliver(worker, raw, BANK_IP, "ann@bank.test")
    queued = stored(db, message_id)
    assert (queued.status, queued.peer_ip, queued.helo, queued.mail_from) == (
        "queued", BANK_IP, "client.test", "ann@bank.test",
    )  # fmt: skip
    assert (queued.spf, queued.dmarc, queued.checked_at) == ("", "", None)
    assert check_all(db, auth_settings) == 1
    row = stored(db, message_id)
    assert (row.status, row.attempts, row.spf, row.dkim, row.dmarc) == (
        "done", 1, "pass", "pass", "pass",
    )  # fmt: skip
    assert (row.from_domain, row.spf_domain, row.dkim_domains) == (
        "bank.test", "bank.test", "bank.test",
    )  # fmt: skip
    assert row.explanation.startswith(
        "DMARC pass for From: bank.test (bank.test publishes p=reject)"
    )
    assert "DKIM signature by bank.test aligns with From: bank.test" in row.explanation
    assert [s["selector"] for s in row.details["dkim"]] == ["s1"]
    assert (row.warning, row.warning_reason) == ("none", "")
    assert row.checked_at is not None


def test_fail_softfail_and_none(db: Database, auth_settings: Settings, worker: Inbox) -> None:
    forged = deliver(worker, mail("Boss <boss@bank.test>"), STRANGER_IP, "boss@bank.test")
    soft = deliver(worker, mail("Bo <bo@shop.test>"), STRANGER_IP, "bo@shop.test")
    quiet = deliver(worker, mail("Q <q@quiet.test>"), STRANGER_IP, "q@quiet.test")
    assert check_all(db, auth_settings) == 3
    row = stored(db, forged)
    assert (row.spf, row.dkim, row.dmarc) == ("fail", "none", "fail")
    assert f"SPF fail: bank.test does not allow {STRANGER_IP} to send its mail" in row.explanation
    assert row.warning == "none"  # a stranger failing DMARC claims nobody we know
    row = stored(db, soft)
    assert (row.spf, row.dmarc) == ("softfail", "none")
    assert row.explanation.startswith("DMARC none: shop.test publishes no DMARC record")
    row = stored(db, quiet)
    assert (row.spf, row.dmarc) == ("none", "none")
    assert "SPF none: quiet.test publishes no SPF record" in row.explanation


def test_a_dead_resolver_gives_temperror_and_a_later_attempt_succeeds(
    db: Database,
    auth_settings: Settings,
    worker: Inbox,
    dkim_key: DkimKey,
    silent_dns_port: int,
) -> None:
    raw = dkim_key.sign(mail("Ann Smith <ann@bank.test>"), "bank.test", "s1")
    message_id = deliver(worker, raw, BANK_IP, "ann@bank.test")  # accepted all the same
    dead = with_dns(auth_settings, DnsSettings(("127.0.0.1",), silent_dns_port, 0.2))
    assert check_all(db, dead) == 1
    row = stored(db, message_id)
    assert (row.status, row.attempts, row.spf, row.dkim, row.dmarc) == (
        "retrying", 1, "temperror", "temperror", "temperror",
    )  # fmt: skip
    assert "checking again, attempt 2 of 4" in row.explanation
    assert row.warning == "none"
    assert check_all(db, auth_settings) == 0  # not due before its backoff
    later = datetime.now(UTC) + timedelta(seconds=61)
    assert check_all(db, auth_settings, now=later) == 1
    row = stored(db, message_id)
    assert (row.status, row.attempts, row.spf, row.dkim, row.dmarc) == (
        "done", 2, "pass", "pass", "pass",
    )  # fmt: skip


def test_the_last_attempt_keeps_temperror(
    db: Database, auth_settings: Settings, worker: Inbox, silent_dns_port: int
) -> None:
    message_id = deliver(worker, mail("Ann <ann@bank.test>"), BANK_IP, "ann@bank.test")
    dead = with_dns(
        auth_settings, DnsSettings(("127.0.0.1",), silent_dns_port, 0.2), max_attempts=2
    )
    check_all(db, dead)
    check_all(db, dead, now=datetime.now(UTC) + timedelta(hours=1))
    row = stored(db, message_id)
    assert (row.status, row.attempts, row.spf, row.dmarc) == ("done", 2, "temperror", "temperror")
    assert "checking again" not in row.explanation
    assert row.explanation.startswith("DMARC could not be checked for bank.test")


# --- behind an MTA ------------------------------------------------------------------------

RELAY_RECEIVED = (
    f"Received: from mail.bank.test (mail.bank.test [{BANK_IP}])\r\n"
    f"\tby {AUTHSERV_ID} with ESMTPS id 4Xy; Mon, 23 Nov 2026 09:00:01 +0000\r\n"
)
FORGED_PASS = (
    f"Authentication-Results: {AUTHSERV_ID}; spf=pass smtp.mailfrom=ceo@acme.test;\r\n"
    "\tdkim=pass header.d=acme.test; dmarc=pass header.from=acme.test\r\n"
)


def test_a_replayed_header_from_a_stranger_is_ignored_and_our_domain_is_flagged(
    db: Database, auth_settings: Settings, worker: Inbox
) -> None:
    raw = mail("The CEO <ceo@acme.test>", "Urgent: change the bank account", top=FORGED_PASS)
    message_id = deliver(worker, raw, STRANGER_IP, "ceo@acme.test")
    check_all(db, auth_settings)
    row = stored(db, message_id)
    assert (row.spf, row.dmarc) == ("fail", "fail")
    assert row.details["spf"]["source"] == "computed"
    assert (
        f"Authentication-Results claiming {AUTHSERV_ID} came with the message from a client "
        "that is not a trusted relay: ignored" in row.explanation
    )
    assert row.warning == "spoof"
    assert row.warning_reason.startswith(
        "From: ceo@acme.test uses our own domain acme.test, but the message fails DMARC"
    )


def test_the_trusted_relays_header_gives_spf_and_one_from_before_it_is_ignored(
    db: Database, auth_settings: Settings, worker: Inbox
) -> None:
    relay_says = (
        f"Authentication-Results: {AUTHSERV_ID};\r\n"
        f"\tspf=pass (sender IP is {BANK_IP}) smtp.mailfrom=ann@bank.test\r\n"
    )
    raw = mail("Ann <ann@bank.test>", top=relay_says + RELAY_RECEIVED + FORGED_PASS)
    message_id = deliver(worker, raw, RELAY_IP, "ann@bank.test")
    check_all(db, auth_settings)
    row = stored(db, message_id)
    assert (row.spf, row.spf_domain, row.dmarc) == ("pass", "bank.test", "pass")
    assert row.details["spf"]["source"] == f"relay {AUTHSERV_ID}"
    assert row.details["ignored_headers"] == [
        f"Authentication-Results claiming {AUTHSERV_ID} was written before the trusted relay "
        "received the message: ignored"
    ]


# --- third parties, mailing lists, the warnings -------------------------------------------


def test_a_third_party_signature_for_a_known_contact_is_possible_spoofing(
    db: Database,
    auth_settings: Settings,
    worker: Inbox,
    dkim_key: DkimKey,
    mailer_key: DkimKey,
) -> None:
    first = known_ann(db, auth_settings, worker, dkim_key)
    assert stored(db, first).warning == "none"  # not known before her first mail
    raw = mailer_key.sign(mail("Ann Smith <ann@bank.test>"), "mailer.test", "m1")
    message_id = deliver(worker, raw, MAILER_IP, "bounce-77@mailer.test")
    check_all(db, auth_settings)
    row = stored(db, message_id)
    assert (row.spf, row.spf_domain, row.dkim, row.dkim_domains, row.dmarc) == (
        "pass", "mailer.test", "pass", "mailer.test", "fail",
    )  # fmt: skip
    assert "DKIM signature by mailer.test does not align with From: bank.test" in row.explanation
    assert row.warning == "spoof"
    assert row.warning_reason.startswith("From: ann@bank.test is a known contact")


def test_a_mailing_list_that_changes_the_mail_breaks_dkim(
    db: Database, auth_settings: Settings, worker: Inbox, dkim_key: DkimKey
) -> None:
    original = dkim_key.sign(mail("Ann Smith <ann@bank.test>"), "bank.test", "s1")
    forwarded = (
        original.replace(b"Subject: Invoice", b"Subject: [finance] Invoice")
        + b"--\r\nfinance mailing list: https://list.test/finance\r\n"
    )
    message_id = deliver(worker, forwarded, LIST_IP, "finance-bounces@list.test")
    check_all(db, auth_settings)
    row = stored(db, message_id)
    assert (row.spf, row.spf_domain, row.dkim, row.dmarc) == ("pass", "list.test", "fail", "fail")
    assert "DKIM signature by bank.test fails: the body changed after signing" in row.explanation


def test_a_lookalike_domain_gets_the_softer_warning(
    db: Database, auth_settings: Settings, worker: Inbox, dkim_key: DkimKey
) -> None:
    known_ann(db, auth_settings, worker, dkim_key)
    message_id = deliver(worker, mail("Ann Smith <ann@bamk.test>"), STRANGER_IP, "ann@bamk.test")
    check_all(db, auth_settings)
    row = stored(db, message_id)
    assert row.warning == "lookalike"
    assert "the name “Ann Smith” belongs to the known contact ann@bank.test" in row.warning_reason
    assert "bamk.test is one character away from the known domain bank.test" in row.warning_reason


# --- seen everywhere ----------------------------------------------------------------------


def test_warnings_rows_search_counts_show_and_reply(
    db: Database,
    db_url: str,
    auth_settings: Settings,
    desk: Desk,
    worker: Inbox,
    dkim_key: DkimKey,
    tmp_path: Path,
) -> None:
    genuine = conversation_of(db, known_ann(db, auth_settings, worker, dkim_key))
    spoof_id = deliver(worker, mail("Ann Smith <ann@bank.test>", "New bank account"),
                       STRANGER_IP, "ann@bank.test")  # fmt: skip
    look_id = deliver(worker, mail("Ann Smith <ann@bamk.test>", "Hi"), STRANGER_IP, "x@bamk.test")
    check_all(db, auth_settings)
    spoofed, lookalike = conversation_of(db, spoof_id), conversation_of(db, look_id)
    admin: UserRecord = desk.org.admin
    with db.read() as session:
        [warning] = conversation_warnings(session, admin, spoofed)
        assert (warning.message_id, warning.level) == (spoof_id, "spoof")
        assert "is a known contact, but the message fails DMARC" in warning.reason
        assert [w.level for w in conversation_warnings(session, admin, lookalike)] == ["lookalike"]
        assert conversation_warnings(session, admin, genuine) == []
        rows = {r.id: r.flagged for r in listing.list_conversations(session, admin, limit=50)}
        assert rows == {genuine: "", spoofed: "spoof", lookalike: "lookalike"}
        found = {
            query: {hit.conversation.id for hit in search(session, admin, query, limit=50).hits}
            for query in ("auth:spoof", "auth:lookalike", "auth:fail", "auth:pass", "-auth:spoof")
        }
        assert found == {
            "auth:spoof": {spoofed}, "auth:lookalike": {lookalike},
            "auth:fail": {spoofed}, "auth:pass": {genuine},
            "-auth:spoof": {genuine, lookalike},
        }  # fmt: skip
        assert flagged_counts(session, admin) == {desk.support.id: 2}
        assert flagged_counts(session, admin, levels=("spoof",)) == {desk.support.id: 1}
        with pytest.raises(Conflict, match="the sender may be forged"):
            confirm_reply(session, admin, spoofed, confirmed=False)
        confirm_reply(session, admin, lookalike, confirmed=False)  # the banner is enough
        detail = thread.get_conversation(session, admin, spoofed)
        assert detail.messages[0].auth is not None and detail.messages[0].auth.warning == "spoof"
    with db.write() as session, pytest.raises(Conflict) as refused:
        replies.reply(session, auth_settings, admin, spoofed, "Sure, done.")
    assert refused.value.field == "confirm_spoof"

    cli = Cli(db_url)
    shown = cli.json("conversation", "show", str(spoofed), *ADA)
    assert shown["flagged"] == "spoof"
    auth = shown["messages"][0]["auth"]
    assert (auth["status"], auth["spf"], auth["dkim"], auth["dmarc"], auth["warning"]) == (
        "done", "fail", "none", "fail", "spoof",
    )  # fmt: skip
    assert auth["from_domain"] == "bank.test" and auth["explanation"].startswith("DMARC fail")
    text = cli("conversation", "show", str(spoofed), *ADA).stdout
    assert "SPF fail, DKIM none, DMARC fail" in text and "warning:" in text
    hits = cli.json("conversation", "search", "auth:spoof", *ADA)["hits"]
    assert [h["conversation"]["id"] for h in hits] == [spoofed]
    body = tmp_path / "body.txt"
    body.write_text("Sure, done.\n")
    refused_cli = cli("conversation", "reply", str(spoofed), "--body-file", str(body), *ADA,
                      code=4)  # fmt: skip
    assert "the sender may be forged" in refused_cli.stderr
    sent = cli.json("conversation", "reply", str(spoofed), "--body-file", str(body),
                    "--confirm-spoof", *ADA)  # fmt: skip
    assert sent["conversation_id"] == spoofed
    cli.json("conversation", "reply", str(lookalike), "--body-file", str(body), *ADA)


def test_the_workers_own_checker_runs_the_job(
    db: Database, auth_settings: Settings, desk: Desk, dkim_key: DkimKey
) -> None:
    settings = auth_settings.replace(inbound_auth={"concurrency": 2, "poll_interval_seconds": 0.05})
    embedded = EmbeddedWorker(settings)
    inbox = Inbox(embedded.start(), desk.support.alias)
    try:
        raw = dkim_key.sign(mail("Ann Smith <ann@bank.test>"), "bank.test", "s1")
        message_id = deliver(inbox, raw, BANK_IP, "ann@bank.test")
        assert wait_checked(db, message_id).dmarc == "pass"
    finally:
        embedded.stop()


def wait_checked(db: Database, message_id: int) -> MessageAuth:
    deadline = time.monotonic() + 60
    while (row := stored(db, message_id)).status != "done":
        assert time.monotonic() < deadline, "the worker's checker did not check the mail"
        time.sleep(0.05)
    return row


def test_the_worker_process_checks_in_a_process_of_its_own(
    db: Database, db_url: str, desk: Desk, zones: ZoneServer, dkim_key: DkimKey
) -> None:
    process, address = start_worker_process(
        db_url, **zones.environ(), TUI_HELPDESK_INBOUND_AUTH_POLL_INTERVAL_SECONDS="0.05"
    )
    try:
        raw = dkim_key.sign(mail("Ann Smith <ann@bank.test>"), "bank.test", "s1")
        message_id = deliver(Inbox(address, desk.support.alias), raw, BANK_IP, "ann@bank.test")
        row = wait_checked(db, message_id)  # the store process kept the client's address
        assert (row.peer_ip, row.spf, row.dkim, row.dmarc) == (BANK_IP, "pass", "pass", "pass")
        [checker] = children(process.pid, b"tui_helpdesk.worker.auth_checker")
        [engine] = children(checker, b"spawn_main")  # computes the checks at nice 19
        assert nice(checker) == 0 and nice(engine) == 19
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        wait_until_dead(checker)
        wait_until_dead(engine)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def children(pid: int, marker: bytes) -> list[int]:
    """The child processes of `pid` whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if parent == pid and marker in command:
                found.append(int(entry.name))
    return found


def nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_an_ipv4_client_seen_on_an_ipv6_socket_is_checked_as_ipv4() -> None:
    assert client_address("::ffff:192.0.2.5") == "192.0.2.5"
    assert client_address("2001:db8::1") == "2001:db8::1"
    assert client_address("") == ""


def test_each_mailbox_counts_its_own(
    db: Database, auth_settings: Settings, desk: Desk, worker: Inbox
) -> None:
    code, reply = send(*worker.address, mail("CEO <ceo@acme.test>"), [desk.sales.alias],
                       mail_from="ceo@acme.test", source=STRANGER_IP)  # fmt: skip
    assert code == 250, reply
    deliver(worker, mail("CEO <ceo@acme.test>", "Again"), STRANGER_IP, "ceo@acme.test")
    deliver(worker, mail("Bo <bo@shop.test>", "Fine"), BANK_IP, "bo@shop.test")
    check_all(db, auth_settings)
    with db.read() as session:
        counts = flagged_counts(session, desk.org.admin)
    assert counts == {desk.sales.id: 1, desk.support.id: 1}
