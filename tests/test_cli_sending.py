"""The sending commands end to end (F17, F22, F73, F81): set-transport and set-webhook with
secrets read from files or stdin and never printed back, `mailbox show`, `outbox list|retry`."""

from __future__ import annotations

import json

import pytest
from test_cli import ADA, BOB, Cli

PASSWORD = "correct-horse-battery-staple-9z"


@pytest.fixture
def acme(db_url: str) -> Cli:
    """Acme with admin ada, agent bob and support@acme.test, made through the CLI."""
    run = Cli(db_url)
    run("init")
    run("org", "create", "Acme", "--timezone", "UTC", "--language", "en")
    run("user", "add", "ada@acme.test", "--name", "Ada Lovelace", "--role", "admin")
    run("user", "add", "bob@acme.test", "--name", "Bob", "--role", "agent", *ADA)
    run("domain", "add", "acme.test", *ADA)
    run("mailbox", "create", "--display-name", "Support", "--local-part", "support",
        "--domain", "acme.test", *ADA)  # fmt: skip
    return run


def test_set_transport_stores_the_password_and_never_prints_it(acme: Cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    out = acme("mailbox", "set-transport", "support@acme.test", "--host", "smtp.acme.test",
               "--port", "587", "--security", "starttls", "--username", "support",
               "--password-file", str(secret), *ADA)  # fmt: skip
    assert "****9z" in out.stdout and PASSWORD not in out.stdout
    shown = acme("mailbox", "show", "support@acme.test", *ADA).stdout
    assert (
        "transport:" in shown
        and "smtp.acme.test:587 starttls, user support, password ****9z" in shown
    )
    data = acme.json("mailbox", "show", "support@acme.test", *ADA)
    assert data["transport"] == {
        "mailbox": "support@acme.test", "platform": False, "host": "smtp.acme.test", "port": 587,
        "security": "starttls", "username": "support", "password": "****9z",
    }  # fmt: skip
    audit = acme("audit", "list", "--json", *ADA).stdout
    assert "mailbox.set_transport" in audit and PASSWORD not in audit
    assert "transport" not in acme.json("mailbox", "show", "support@acme.test", *BOB)
    from_stdin = acme("mailbox", "set-transport", "support@acme.test", "--host", "127.0.0.1",
                      "--port", "465", "--security", "tls", "--username", "x",
                      "--password-file", "-", *ADA, input=PASSWORD + "\n")  # fmt: skip
    assert "127.0.0.1" in from_stdin.stdout and PASSWORD not in from_stdin.stdout
    back = acme.json("mailbox", "set-transport", "support@acme.test", "--platform", *ADA)
    assert back["platform"] is True and back["password"] == ""


def test_set_transport_refuses_bad_input_with_the_field(acme: Cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = acme("mailbox", "set-transport", "support@acme.test", "--host", "smtp acme",
               "--port", "25", "--security", "none", "--json", *ADA, code=2)  # fmt: skip
    assert json.loads(bad.stdout)["field"] == "host"
    lonely = acme("mailbox", "set-transport", "support@acme.test", "--host", "smtp.acme.test",
                  "--port", "25", "--security", "none", "--username", "u", *ADA,
                  code=2)  # fmt: skip
    assert "both a username and a password" in lonely.stderr
    acme("mailbox", "set-transport", "support@acme.test", "--platform", "--host", "h", *ADA,
         code=2)  # fmt: skip
    acme("mailbox", "set-transport", "support@acme.test", "--host", "smtp.acme.test", *ADA,
         code=2)  # fmt: skip
    denied = acme("mailbox", "set-transport", "support@acme.test", "--platform", *BOB, code=6)
    assert "only an admin" in denied.stderr


def test_set_webhook_https_only_secret_from_a_file_and_off(acme: Cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "secret"
    secret.write_text("webhook-signing-secret-77\n")
    refused = acme("mailbox", "set-webhook", "support@acme.test", "--url", "http://hooks.test/",
                   "--secret-file", str(secret), *ADA, code=2)  # fmt: skip
    assert "must start with https://" in refused.stderr
    on = acme.json("mailbox", "set-webhook", "support@acme.test", "--url", "https://hooks.test/h",
                   "--secret-file", str(secret), *ADA)  # fmt: skip
    assert on == {"mailbox": "support@acme.test", "url": "https://hooks.test/h",
                  "secret": "****77", "events": ["conversation.created", "message.received",
                                                 "conversation.closed"]}  # fmt: skip
    shown = acme("mailbox", "show", "support@acme.test", *ADA).stdout
    assert "webhook:" in shown and "https://hooks.test/h (secret ****77)" in shown
    assert "webhook-signing-secret-77" not in acme("audit", "list", "--json", *ADA).stdout
    off = acme.json("mailbox", "set-webhook", "support@acme.test", "--off", *ADA)
    assert off["url"] == ""
    acme("mailbox", "set-webhook", "support@acme.test", *ADA, code=2)


def test_outbox_list_and_retry(acme: Cli, db_url: str) -> None:
    from datetime import UTC, datetime

    from tui_helpdesk.db.engine import Database
    from tui_helpdesk.services import mailboxes, outbox, users

    db = Database(db_url)
    try:
        with db.write() as session:
            ada = users.to_record(users.find(session, "ada@acme.test"))
            box = mailboxes.load(session, ada, "support@acme.test")
            job = outbox.enqueue(session, mailbox=box, kind="reply", mail_from=box.email_address,
                                 rcpt_to=["carol@customer.test"], raw=b"Subject: x\r\n\r\nhi\r\n",
                                 not_before=datetime.now(UTC))  # fmt: skip
            session.flush()
            job.status, job.attempts, job.last_error = "failed", 3, "550 5.1.1 no such user"
            job_id = job.id
    finally:
        db.dispose()
    listed = acme.json("outbox", "list", "--status", "failed", *ADA)
    assert [(j["id"], j["status"], j["recipients"]) for j in listed] == [
        (job_id, "failed", ["carol@customer.test"])]  # fmt: skip
    text = acme("outbox", "list", *ADA).stdout
    assert "550 5.1.1 no such user" in text and "carol@customer.test" in text
    assert acme.json("outbox", "list", "--status", "sent", *ADA) == []
    again = acme.json("outbox", "retry", str(job_id), *ADA)
    assert (again["status"], again["attempts"], again["last_error"]) == ("queued", 0, "")
    conflict = acme("outbox", "retry", str(job_id), *ADA, code=4)
    assert "only a failed job can be retried" in conflict.stderr
    acme("outbox", "retry", "999", *ADA, code=3)
    acme("outbox", "list", *BOB, code=6)
    assert "outbox.retry" in acme("audit", "list", *ADA).stdout
