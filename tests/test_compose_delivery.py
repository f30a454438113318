"""End to end (F43, F16, F73): what the services compose, the worker's sender delivers to a real
aiosmtpd server on 127.0.0.1 byte for byte; the customer's answer to it threads back; the code
it carries verifies the mailbox; the binding test it carries comes back through the alias."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser

from sqlalchemy.orm import undefer
from test_cli import ADA, Cli, bootstrap
from test_ingest_support import build_mail, deliver, make_desk, message_id_of, only_conversation
from test_outbox_support import CaptureServer, jobs, running_sender, sending_settings, wait_for

from tui_helpdesk.db.models import OutboxJob
from tui_helpdesk.services.conversations import replies, thread


def test_a_reply_leaves_as_built_and_the_answer_joins_the_conversation(db, settings) -> None:  # type: ignore[no-untyped-def]
    desk = make_desk(db, settings)
    first = build_mail(subject="Printer on fire")
    convo = only_conversation(deliver(db, settings, first, desk.support.alias))
    with db.write() as session:
        sent = replies.reply(session, settings, desk.org.admin, convo, "We are on it.")
    with CaptureServer() as server, running_sender(sending_settings(settings, server.port)):
        wait_for(lambda: [j.status for j in jobs(db)] == ["sent"], what="the reply sent")
    [received] = server.received
    with db.read() as session:
        job = session.get_one(OutboxJob, sent.outbox_job_id, options=[undefer(OutboxJob.raw)])
        raw = job.raw
    assert received.data == raw
    assert (received.mail_from, received.rcpt_tos) == (
        "support@acme.test",
        ("carol@customer.test",),
    )
    mail = BytesParser(policy=policy.default).parsebytes(received.data)
    assert mail["Message-ID"] == sent.message.message_id
    assert mail["In-Reply-To"] == message_id_of(first)
    assert mail["Subject"] == f"Re: Printer on fire [HD#{convo}]"
    answer = build_mail(subject=f"Re: {mail['Subject']}", in_reply_to=mail["Message-ID"],
                        references=[message_id_of(first), mail["Message-ID"]])  # fmt: skip
    assert only_conversation(deliver(db, settings, answer, desk.support.alias)) == convo
    with db.read() as session:
        detail = thread.get_conversation(session, desk.org.admin, convo)
    assert sorted((m.direction, m.delivery) for m in detail.messages) == [
        ("inbound", ""), ("inbound", ""), ("outbound", "sent"),
    ]  # fmt: skip


def test_the_mailed_code_verifies_and_the_test_mail_comes_back(db_url, db, settings) -> None:  # type: ignore[no-untyped-def]
    acme = bootstrap(Cli(db_url))  # support@acme.test made by `mailbox create`: pending
    with CaptureServer() as server, running_sender(sending_settings(settings, server.port)):
        wait_for(lambda: server.received, what="the verification mail")
        acme("mailbox", "test-email", "support@acme.test", *ADA)
        wait_for(lambda: len(server.received) == 2, what="the test mail")
    code_mail, test_mail = server.received
    assert code_mail.rcpt_tos == ("support@acme.test",)
    code = re.search(rb"\n    (\d{6})\r\n", code_mail.data).group(1).decode()  # type: ignore[union-attr]
    assert acme.json("mailbox", "verify", "support@acme.test", code, *ADA)["verified"] is True
    alias = acme.json("mailbox", "show", "support@acme.test", *ADA)["alias"]
    # the customer's forwarding rule hands the test mail on to the alias
    stored = deliver(db, settings, test_mail.data, alias, mail_from="support@acme.test")
    assert stored.conversation_ids == ()
    [listed] = acme.json("mailbox", "list", *ADA)
    assert listed["status"] == "active" and listed["binding_checked_at"] is not None
