"""The composer's services: drafts kept per conversation and user, a message's source and
attachments for the conversation screen, and file names from mail made safe to save."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_tui_data import NOW, actor, add_message, seed

from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Attachment, Conversation, Draft, Mailbox
from tui_helpdesk.errors import Invalid, NotFound
from tui_helpdesk.services.conversations import drafts, source


def run(db: Database, work, *args, **kwargs):  # type: ignore[no-untyped-def]
    with db.write() as session:
        return work(session, *args, **kwargs)


def test_a_draft_is_kept_per_conversation_and_user_until_discarded(db: Database) -> None:
    ids = seed(db)
    ada, bob = actor(db, "ada@acme.test"), actor(db, "bob@acme.test")
    printer = ids.conversations["printer"]
    run(db, drafts.save, ada, printer, mode="reply", body="Dear Carol,\nwe are on it.", now=NOW)
    run(db, drafts.save, bob, printer, mode="note", body="bob's own", now=NOW)
    kept = run(db, drafts.save, ada, printer, mode="forward", body="FYI", to="x@y.test", now=NOW)
    assert (kept.mode, kept.body, kept.to) == ("forward", "FYI", "x@y.test")
    assert run(db, drafts.get, ada, printer).body == "FYI"
    assert run(db, drafts.get, bob, printer).body == "bob's own"
    assert run(db, drafts.get, ada, ids.conversations["invoice"]) is None
    with db.read() as session:
        assert session.query(Draft).count() == 2
    assert run(db, drafts.discard, ada, printer) is True
    assert run(db, drafts.get, ada, printer) is None
    assert run(db, drafts.discard, ada, printer) is False
    assert run(db, drafts.get, bob, printer).body == "bob's own"


def test_a_draft_of_a_hidden_conversation_or_bad_mode_is_refused(db: Database) -> None:
    ids = seed(db)
    cy = actor(db, "cy@acme.test")  # sees only the conversation assigned to them
    with pytest.raises(NotFound):
        run(db, drafts.save, cy, ids.conversations["printer"], mode="reply", body="x")
    with pytest.raises(Invalid, match="a draft is one of"):
        run(db, drafts.save, actor(db, "ada@acme.test"), ids.conversations["printer"],
            mode="shout", body="x")  # fmt: skip
    with db.read() as session:
        assert session.query(Draft).count() == 0


def test_the_composer_context_names_mailbox_customer_signature_and_draft(db: Database) -> None:
    ids = seed(db)
    with db.write() as session:
        mailbox = session.get_one(Mailbox, ids.mailboxes["support"])
        mailbox.signature_text = "-- \n{{agent_name}}, {{mailbox_name}}"
    ada = actor(db, "ada@acme.test")
    printer = ids.conversations["printer"]
    context = run(db, drafts.composer_context, ada, printer)
    assert context.mailbox == "support@acme.test"
    assert context.reply_to == "carol@customer.test"
    assert context.signature == "-- \nAda Admin, Support"
    assert context.draft is None
    run(db, drafts.save, ada, printer, mode="reply", body="half a sentence")
    assert run(db, drafts.composer_context, ada, printer).draft.body == "half a sentence"


def test_the_source_is_the_header_in_order_and_the_raw_bytes(db: Database) -> None:
    ids = seed(db)
    with db.write() as session:
        conversation = session.get_one(Conversation, ids.conversations["printer"])
        message = add_message(
            session, conversation, subject="=?utf-8?q?Caf=C3=A9?=", sender="carol@customer.test",
            body="body\r\nFake: header",
        )  # fmt: skip
        message_id = message.id
    found = run(db, source.message_source, actor(db, "ada@acme.test"), message_id)
    assert found.headers == (("From", "carol@customer.test"), ("Subject", "Café"))
    assert found.raw.startswith(b"From: carol@customer.test\r\n")
    with pytest.raises(NotFound):
        run(db, source.message_source, actor(db, "cy@acme.test"), message_id)


def test_header_fields_unfold_and_keep_what_is_no_field() -> None:
    raw = b"Subject: one\r\n two\r\nbroken line\r\nX-A:b\r\n\r\nBody: no"
    assert source.header_fields(raw) == (
        ("Subject", "one two"), ("", "broken line"), ("X-A", "b"),
    )  # fmt: skip


def test_attachment_content_only_for_who_sees_the_conversation(db: Database) -> None:
    ids = seed(db)
    with db.write() as session:
        conversation = session.get_one(Conversation, ids.conversations["invoice"])
        add_message(session, conversation, subject="Re", sender="dan@customer.test",
                    attachments=(("../../etc/passwd", "text/plain", b"root"),))  # fmt: skip
        attachment_id = session.query(Attachment).one().id
    name, data = run(db, source.attachment_content, actor(db, "ada@acme.test"), attachment_id)
    assert (name, data) == ("../../etc/passwd", b"root")
    with pytest.raises(NotFound):
        run(db, source.attachment_content, actor(db, "bob@acme.test"), attachment_id)


@pytest.mark.parametrize(
    ("sent", "saved"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Windows\\system.ini", "system.ini"),
        (".bashrc", "bashrc"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("a\x1b[31mb\x00c.txt", "abc.txt"),
        ("con.txt", "_con.txt"),
        ("", "attachment"),
        ("..", "attachment"),
        ("rapport: 2026?.pdf", "rapport_ 2026_.pdf"),
        ("x" * 300 + ".pdf", "x" * 196 + ".pdf"),
    ],
)
def test_safe_filename(sent: str, saved: str) -> None:
    assert source.safe_filename(sent) == saved


@given(st.text())
def test_a_safe_filename_never_leaves_the_folder(name: str) -> None:
    safe = source.safe_filename(name)
    assert safe and "/" not in safe and "\\" not in safe and not safe.startswith(".")
    assert len(safe.encode()) <= source.FILENAME_MAX
    assert all(ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F for c in safe)
