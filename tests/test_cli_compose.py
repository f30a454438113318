"""The composing commands end to end (F81, F16, F18, F20, F21, F43, F45): `conversation
reply|forward|compose|close`, `mailbox verify|resend-code|test-email|set-signature|
set-senders|set-private|set-close-notice`, with --json shapes and exit codes, both backends."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import undefer
from test_cli import ADA, BOB, Cli, bootstrap
from test_ingest_support import build_mail, deliver, only_conversation

from tui_helpdesk.db.models import OutboxJob

TEXT = "We are on it.\n"


@pytest.fixture
def acme(db_url: str) -> Cli:
    return bootstrap(Cli(db_url))


def outbox(db, kind: str) -> list[OutboxJob]:  # type: ignore[no-untyped-def]
    with db.read() as session:
        query = select(OutboxJob).where(OutboxJob.kind == kind).order_by(OutboxJob.id)
        return list(session.scalars(query.options(undefer(OutboxJob.raw))))


def mailed_code(db) -> str:  # type: ignore[no-untyped-def]
    return re.search(rb"\n    (\d{6})\r\n", outbox(db, "verification")[-1].raw).group(1).decode()  # type: ignore[union-attr]


@pytest.fixture
def verified(acme: Cli, db) -> Cli:  # type: ignore[no-untyped-def]
    """support@acme.test verified with its mailed code, in queue Support with bob."""
    acme("mailbox", "verify", "support@acme.test", mailed_code(db), *ADA)
    acme("queue", "create", "Support", *ADA)
    acme("queue", "add-mailbox", "Support", "support@acme.test", *ADA)
    acme("queue", "add-member", "Support", "bob@acme.test", *ADA)
    return acme


def customer_mail(acme: Cli, db, settings, **mail) -> str:  # type: ignore[no-untyped-def]
    alias = acme.json("mailbox", "show", "support@acme.test", *ADA)["alias"]
    return str(only_conversation(deliver(db, settings, build_mail(**mail), alias)))


def test_verification_from_the_command_line(acme: Cli, db) -> None:  # type: ignore[no-untyped-def]
    code = mailed_code(db)
    wrong = "000000" if code != "000000" else "111111"
    refused = acme.json("mailbox", "verify", "support@acme.test", wrong, *ADA, code=2)
    assert refused["field"] == "code" and "tries left" in refused["message"]
    acme("mailbox", "verify", "support@acme.test", code, *BOB, code=6)
    assert acme.json("mailbox", "resend-code", "support@acme.test", *ADA, code=5)["error"] == (
        "limit"
    )  # a code was sent a moment ago
    done = acme.json("mailbox", "verify", "support@acme.test", code, *ADA)
    assert done["verified"] is True and done["tries_left"] == 5
    acme("mailbox", "verify", "support@acme.test", code, *ADA, code=4)
    test = acme.json("mailbox", "test-email", "support@acme.test", *ADA)
    assert test["returned_at"] is None and len(outbox(db, "test")) == 1
    listed = acme("mailbox", "list", *ADA).stdout
    assert "LAST MAIL" in listed and "never" in listed


def test_reply_note_forward_and_close(verified: Cli, db, settings) -> None:  # type: ignore[no-untyped-def]
    convo = customer_mail(verified, db, settings)
    sent = verified.json("conversation", "reply", convo, "--body-file", "-", "--cc",
                         "boss@customer.test", *BOB, input=TEXT)  # fmt: skip
    assert sent["message"]["direction"] == "outbound" and sent["message"]["delivery"] == "queued"
    assert sent["message"]["cc"] == "boss@customer.test" and sent["outbox_job_id"]
    text = verified("conversation", "reply", convo, "--body-file", "-", *BOB, input=TEXT).stdout
    assert "outbox job:" in text and f"[HD#{convo}]" in text
    note = verified.json("conversation", "reply", convo, "--body-file", "-", "--note", *BOB,
                         input="VIP customer")  # fmt: skip
    assert note["outbox_job_id"] is None and note["message"]["kind"] == "note"
    verified("conversation", "reply", convo, "--body-file", "-", "--note", "--all", *BOB,
             input="x", code=2)  # fmt: skip
    bad = verified.json("conversation", "reply", convo, "--body-file", "-", "--cc",
                        "a@x.test\r\nBcc: eve@x.test", *BOB, input=TEXT, code=2)  # fmt: skip
    assert bad["field"] == "cc"
    forwarded = verified.json("conversation", "forward", convo, "--to", "acct@partner.test", *BOB)
    assert forwarded["message"]["subject"].startswith("Fwd: Printer on fire")
    closed = verified.json("conversation", "close", convo, "--no-notify", *BOB)
    assert closed["status"] == "closed" and outbox(db, "notice") == []
    verified("conversation", "reply", convo, "--body-file", "-", *BOB, input=TEXT, code=4)
    other = customer_mail(verified, db, settings, subject="Second")
    verified("conversation", "close", other, *BOB)
    assert len(outbox(db, "notice")) == 1


def test_compose_from_the_command_line(verified: Cli, db) -> None:  # type: ignore[no-untyped-def]
    made = verified.json("conversation", "compose", "--queue", "Support", "--to",
                         "carol@customer.test", "--subject", "Your order", "--body-file", "-",
                         *BOB, input=TEXT)  # fmt: skip
    assert made["message"]["from_address"] == "support@acme.test"
    assert made["message"]["subject"] == f"Your order [HD#{made['conversation_id']}]"
    refused = verified.json("conversation", "compose", "--mailbox", "support@acme.test", "--to",
                            "carol@customer.test", "--subject", "Hi\nBcc: eve@x.test",
                            "--body-file", "-", *BOB, input=TEXT, code=2)  # fmt: skip
    assert refused["field"] == "subject"
    lists = verified.json("conversation", "compose", "--mailbox", "support@acme.test", "--to",
                          "a@x.test, b@x.test", "--subject", "Hi", "--body-file", "-", *BOB,
                          input=TEXT, code=2)  # fmt: skip
    assert lists["field"] == "to" and "one address per entry" in lists["message"]
    verified("conversation", "compose", "--to", "a@x.test", "--subject", "Hi", "--body-file",
             "-", *BOB, input=TEXT, code=2)  # fmt: skip


def test_pending_mailboxes_do_not_send(acme: Cli, db, settings) -> None:  # type: ignore[no-untyped-def]
    convo = customer_mail(acme, db, settings)
    refused = acme.json("conversation", "reply", convo, "--body-file", "-", *ADA, input=TEXT,
                        code=4)  # fmt: skip
    assert "is pending" in refused["message"] and "mailbox verify" in refused["message"]


def test_the_mailbox_rules_from_the_command_line(verified: Cli, db, settings) -> None:  # type: ignore[no-untyped-def]
    convo = customer_mail(verified, db, settings)
    senders = verified.json("mailbox", "set-senders", "support@acme.test", "ada@acme.test", *ADA)
    assert senders["senders"] == ["ada@acme.test"]
    denied = verified.json("conversation", "reply", convo, "--body-file", "-", *BOB, input=TEXT,
                           code=6)  # fmt: skip
    assert "only the listed senders" in denied["message"]
    verified("mailbox", "set-senders", "support@acme.test", *ADA, code=2)
    verified("mailbox", "set-senders", "support@acme.test", "--anyone", *BOB, code=6)
    assert verified.json("mailbox", "set-senders", "support@acme.test", "--anyone",
                         *ADA)["senders"] == []  # fmt: skip
    private = verified.json("mailbox", "set-private", "support@acme.test", "--grant",
                            "ada@acme.test", *ADA)  # fmt: skip
    assert private["private"] is True and private["granted"] == ["ada@acme.test"]
    verified("conversation", "show", convo, *BOB, code=3)
    assert verified.json("conversation", "list", *BOB) == []
    verified("mailbox", "set-private", "support@acme.test", *ADA, code=2)
    verified("mailbox", "set-private", "support@acme.test", "--public", *ADA)
    assert verified.json("conversation", "show", convo, *BOB)["id"] == int(convo)
    signature = verified.json("mailbox", "set-signature", "support@acme.test", "--text-file",
                              "-", *ADA, input="{{agent_name}}\nAcme support\n")  # fmt: skip
    assert signature["text"] == "{{agent_name}}\nAcme support"
    assert verified.json("mailbox", "signature", "support@acme.test", *BOB) == signature
    typo = verified.json("mailbox", "set-signature", "support@acme.test", "--text-file", "-",
                         *ADA, input="{{agnet_name}}", code=2)  # fmt: skip
    assert typo["field"] == "signature_text"
    notice = verified.json("mailbox", "set-close-notice", "support@acme.test", "--text-file",
                           "-", *ADA, input="Closed #{{conversation_id}}.")  # fmt: skip
    assert notice == {"mailbox": "support@acme.test", "enabled": True, "custom": True,
                      "text": "Closed #{{conversation_id}}."}  # fmt: skip
    assert verified.json("mailbox", "set-close-notice", "support@acme.test", "--off",
                         *ADA)["enabled"] is False  # fmt: skip
    assert verified.json("mailbox", "close-notice", "support@acme.test", *BOB)["custom"] is True
    verified("mailbox", "set-close-notice", "support@acme.test", "--off", "--default", *ADA,
             code=2)  # fmt: skip
    shown = verified.json("mailbox", "show", "support@acme.test", *ADA)
    assert (shown["signature"], shown["close_notice"], shown["private"]) == (True, False, False)
