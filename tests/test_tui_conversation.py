"""The conversation screen driven with keys (Pilot): reading a thread (open, fold, headers, raw
source, attachments), delivery states, and the composer (in-app, $EDITOR, drafts, refusals)."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from test_tui import build, thread_text, wait_for
from test_tui_data import actor, add_message
from textual.widgets import Input, Static, TextArea
from tui_conversation_support import flag, job_state, seed_thread

from tui_helpdesk.config import Settings
from tui_helpdesk.db.engine import Database
from tui_helpdesk.db.models import Conversation, Message, OutboxJob
from tui_helpdesk.services.conversations import drafts
from tui_helpdesk.tui.app import HelpdeskApp
from tui_helpdesk.tui.modals.attachments import AttachmentsScreen
from tui_helpdesk.tui.modals.confirm import ConfirmScreen
from tui_helpdesk.tui.modals.help import HelpScreen
from tui_helpdesk.tui.modals.message_source import SourceScreen
from tui_helpdesk.tui.screens.composer import ComposerScreen
from tui_helpdesk.tui.screens.conversation import ConversationScreen
from tui_helpdesk.tui.widgets.thread_view import ThreadView

SIZE = (120, 36)


@pytest.fixture
def tui_settings(settings: Settings) -> Settings:
    return settings.replace(tui={"refresh_interval_seconds": 0.05, "page_size": 10})


def thread(app: HelpdeskApp) -> ThreadView:
    return app.screen.query_one(ThreadView)


async def open_thread(pilot, app: HelpdeskApp, conversation_id: int) -> ThreadView:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: len(app.screen_stack) > 1)
    app.open_conversation(conversation_id)
    await wait_for(
        pilot,
        lambda: (
            isinstance(app.screen, ConversationScreen)
            and bool(app.screen.query(ThreadView))
            and len(thread(app).messages) > 0
        ),
    )
    return thread(app)


def body_of(app: HelpdeskApp) -> TextArea:
    return app.screen.query_one("#composer-body", TextArea)


async def test_the_thread_opens_oldest_first_with_the_newest_message_and_failed_send_open(
    db: Database, tui_settings: Settings
) -> None:
    found = seed_thread(db, tui_settings)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_thread(pilot, app, found.conversation_id)
        senders = [m.from_address for m in view.messages]
        assert senders == ["carol@customer.test", "support@acme.test", "carol@customer.test",
                           "carol@customer.test", "ada@acme.test", "support@acme.test"]  # fmt: skip
        assert view.current is not None and view.current.id == found.failed_message_id
        text = thread_text(app)
        assert "✗ failed — the server answered: 550 5.1.1 <carol@customer.test>: user unknown" in (
            text)  # fmt: skip
        assert "We send a technician today." in text
        assert "Have you tried turning it off" in text  # the snippet of a closed message
        assert "Head of Printing" not in text  # a closed message shows no body
        await pilot.press("E")  # open them all
        text = thread_text(app)
        assert "Still broken after the restart." in text
        assert "[… 3 quoted lines folded: z shows them]" in text
        assert "[… 3 signature lines folded: z shows them]" in text
        assert "Head of Printing" not in text
        assert "✓ sent" in text
        await pilot.press("z")
        text = thread_text(app)
        assert "> Have you tried turning it off and on again?" in text
        assert "Head of Printing, Customer Ltd" in text
        assert "Bob: call them, the [bold]fire[/bold] is real." in text  # literal, no markup
        await pilot.press("z", "g")
        assert view.current is not None and view.current.id == view.messages[0].id
        await pilot.press("enter")  # closes the first message
        assert "From: Carol Customer <carol@customer.test>" not in thread_text(app).split(
            "\n\n")[0]  # fmt: skip
        await pilot.press("j", "j")
        assert view.current is not None and view.current.id == view.messages[2].id


async def test_headers_and_raw_source_are_shown_escaped(db: Database, tui_settings) -> None:
    found = seed_thread(db, tui_settings)
    with db.write() as session:
        message = session.scalars(
            select(Message).where(Message.id == found.attachment_message_id)
        ).one()
        message.raw = (
            b"From: carol@customer.test\r\nX-Evil: \x1b]0;owned\x07\r\n\r\nbody \xff\x1b[2J"
        )
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_thread(pilot, app, found.conversation_id)
        view.move_to(3)
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, SourceScreen))
        area = app.screen.query_one("#source-text", TextArea)
        await wait_for(pilot, lambda: area.text != "Loading…")
        assert area.text == "From: carol@customer.test\nX-Evil: \\x1b]0;owned\\x07"
        await pilot.press("v")
        assert area.text == (
            "From: carol@customer.test\nX-Evil: \\x1b]0;owned\\x07\n\nbody \\xff\\x1b[2J"
        )
        await pilot.press("escape")
        assert isinstance(app.screen, ConversationScreen)


async def test_an_attachment_is_saved_under_the_folder_the_user_picks(
    db: Database, tui_settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = seed_thread(db, tui_settings)
    home = tmp_path / "home"
    (home / "Downloads").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_thread(pilot, app, found.conversation_id)
        view.move_to(3)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, AttachmentsScreen))
        path = app.screen.query_one("#attachments-path", Input)
        # the name from mail, made safe: no folder part, no bidi override
        assert path.value == str(home / "Downloads" / "smokegnp.exe")
        await pilot.press("enter")  # the attachment chosen: edit the path
        assert path.has_focus
        path.value = str(tmp_path / "photo.png")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationScreen))
        assert (tmp_path / "photo.png").read_bytes() == b"\x89PNG" * 100
        await pilot.press("s")  # the same path again: never overwritten
        await wait_for(pilot, lambda: isinstance(app.screen, AttachmentsScreen))
        app.screen.query_one("#attachments-path", Input).value = str(tmp_path / "photo.png")
        app.screen.query_one("#attachments-path", Input).focus()
        await pilot.press("enter")
        status = app.screen.query_one("#attachments-status")
        await wait_for(pilot, lambda: "exists: choose another name" in str(status.content))
        assert list((home / "Downloads").iterdir()) == []


@pytest.mark.both_backends  # live refresh: LISTEN/NOTIFY on PostgreSQL
async def test_reply_in_app_is_queued_then_sent_and_the_draft_goes(
    db: Database, tui_settings
) -> None:
    found = seed_thread(db, tui_settings)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_thread(pilot, app, found.conversation_id)
        count = len(view.messages)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposerScreen))
        signature = app.screen.query_one("#composer-signature")
        await wait_for(pilot, lambda: "Ada Admin" in str(signature.content))
        assert "Support, Acme" in str(signature.content)
        await pilot.press(*"It is fixed.")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationScreen))
        await wait_for(pilot, lambda: len(view.messages) == count + 1)
        newest = view.messages[-1]
        assert newest.text_body.startswith("It is fixed.") and newest.delivery == "queued"
        assert "◷ queued" in thread_text(app)
        job_state(db, newest.id, "sent")  # what the worker's sender records
        await wait_for(pilot, lambda: view.messages[-1].delivery == "sent")
        assert "✓ sent" in thread_text(app)
    with db.read() as session:
        assert session.scalar(select(OutboxJob.rcpt_to).where(
            OutboxJob.message_id == newest.id)) == ["carol@customer.test"]  # fmt: skip
        assert drafts.get(session, actor(db, "ada@acme.test"), found.conversation_id) is None


async def test_the_draft_survives_an_escape_and_comes_back(db: Database, tui_settings) -> None:
    found = seed_thread(db, tui_settings)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_thread(pilot, app, found.conversation_id)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposerScreen))
        await pilot.press(*"half a thought")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationScreen))
        await app.workers.wait_for_complete()
        with db.read() as session:
            kept = drafts.get(session, actor(db, "ada@acme.test"), found.conversation_id)
        assert kept is not None and (kept.mode, kept.body) == ("note", "half a thought")
        await pilot.press("r")  # the kept note comes back, whatever key opened the composer
        await wait_for(pilot, lambda: isinstance(app.screen, ComposerScreen))
        await wait_for(pilot, lambda: body_of(app).text == "half a thought")
        assert app.screen.mode == "note"
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationScreen))
        await app.workers.wait_for_complete()
    with db.read() as session:
        assert drafts.get(session, actor(db, "ada@acme.test"), found.conversation_id) is None


async def test_a_refused_send_shows_the_service_message_and_keeps_the_text(
    db: Database, tui_settings
) -> None:
    found = seed_thread(db, tui_settings)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_thread(pilot, app, found.conversation_id)
        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposerScreen))
        app.screen.query_one("#composer-to", Input).value = "not an address"
        body_of(app).load_text("FYI")
        await pilot.press("ctrl+s")
        status = app.screen.query_one("#composer-status")
        await wait_for(pilot, lambda: "to" in str(status.content) and not app.screen.sending)
        assert isinstance(app.screen, ComposerScreen) and body_of(app).text == "FYI"
        app.screen.query_one("#composer-to", Input).value = "tech@partner.test"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationScreen))
    with db.read() as session:
        job = session.scalars(select(OutboxJob).order_by(OutboxJob.id.desc())).first()
        assert job is not None and job.rcpt_to == ["tech@partner.test"]


async def test_the_composer_hands_the_text_to_editor_and_reads_it_back(
    db: Database, tui_settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = seed_thread(db, tui_settings)
    editor = tmp_path / "fake-editor"
    editor.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "path = sys.argv[1]\n"
        "before = open(path, encoding='utf-8').read()\n"
        "open(path, 'w', encoding='utf-8').write(before + ' and written in the editor\\n')\n"
    )
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("VISUAL", str(editor))
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_thread(pilot, app, found.conversation_id)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposerScreen))
        await pilot.press(*"Started here")
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: "editor" in body_of(app).text)
        assert body_of(app).text == "Started here and written in the editor"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationScreen))
        await wait_for(pilot, lambda: "Started here and written in the editor" in thread_text(app))


async def test_a_closed_conversation_takes_notes_but_no_reply(db: Database, tui_settings) -> None:
    found = seed_thread(db, tui_settings)
    with db.write() as session:
        session.get_one(Conversation, found.conversation_id).status = "closed"
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_thread(pilot, app, found.conversation_id)
        await pilot.press("r")
        assert isinstance(app.screen, ConversationScreen)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposerScreen))


SPOOF = "From: carol@customer.test fails DMARC: no aligned pass (customer.test publishes p=reject)"


async def test_a_possible_spoof_shows_a_red_banner_and_a_reply_asks_first(
    db: Database, tui_settings
) -> None:
    found = seed_thread(db, tui_settings)
    flag(db, found.attachment_message_id, "spoof", SPOOF)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_thread(pilot, app, found.conversation_id)
        banner = app.screen.query_one("#sender-warning", Static)
        await wait_for(pilot, lambda: banner.has_class("spoof"))
        assert str(banner.content).startswith("⚠ Possible spoofing: " + SPOOF)
        assert "⚠ possible spoofing" in view.lines_text()  # the flagged message's line
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposerScreen))
        assert SPOOF in str(app.screen.query_one("#composer-warning", Static).content)
        body_of(app).load_text("Please confirm by phone.")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert SPOOF in str(app.screen.question)
        await pilot.press("n")  # nothing sent
        await wait_for(pilot, lambda: isinstance(app.screen, ComposerScreen))
        assert "Not sent" in str(app.screen.query_one("#composer-status", Static).content)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationScreen))
        await wait_for(pilot, lambda: "Please confirm by phone." in view.messages[-1].text_body)


async def test_a_lookalike_gets_a_softer_banner_and_no_question(db: Database, tui_settings) -> None:
    found = seed_thread(db, tui_settings)
    flag(db, found.attachment_message_id, "lookalike", "Carol Customer writes from a new address")
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_thread(pilot, app, found.conversation_id)
        banner = app.screen.query_one("#sender-warning", Static)
        await wait_for(pilot, lambda: banner.has_class("lookalike"))
        assert not banner.has_class("spoof")
        assert str(banner.content).startswith("⚠ Lookalike sender: Carol Customer writes")
        count = len(view.messages)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposerScreen))
        body_of(app).load_text("Is this your new address?")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationScreen))
        await wait_for(pilot, lambda: len(view.messages) == count + 1)


async def test_a_spoof_flagged_while_writing_still_asks(db: Database, tui_settings) -> None:
    found = seed_thread(db, tui_settings)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_thread(pilot, app, found.conversation_id)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposerScreen))
        body_of(app).load_text("Done.")
        flag(db, found.attachment_message_id, "spoof", SPOOF)
        await pilot.press("ctrl+s")  # the service refuses: the composer asks
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert SPOOF in str(app.screen.question)
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationScreen))


async def test_conversation_actions_have_keys_on_the_thread(db: Database, tui_settings) -> None:
    found = seed_thread(db, tui_settings)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_thread(pilot, app, found.conversation_id)
        screen = app.screen
        assert isinstance(screen, ConversationScreen)
        assert screen.detail is not None and screen.detail.conversation.assignee is None
        await pilot.press("a")  # assign to me
        await wait_for(pilot, lambda: screen.detail.conversation.assignee is not None)  # type: ignore[union-attr]
        title = app.screen.query_one("#conversation-title", Static)
        await wait_for(pilot, lambda: "assignee Ada Admin" in str(title.content)
                       or "assignee ada@acme.test" in str(title.content))  # fmt: skip
        names = {command.name for command in screen.commands()}
        assert {"conversation: close", "conversation: reply", "conversation: headers"} <= names


async def test_the_draft_is_kept_while_writing_without_any_key(db: Database, tui_settings) -> None:
    """A dropped SSH link never presses escape: what is typed is saved a moment after."""
    found = seed_thread(db, tui_settings)
    app = build(tui_settings)
    ada = actor(db, "ada@acme.test")

    def kept() -> str | None:
        with db.read() as session:
            draft = drafts.get(session, ada, found.conversation_id)
        return draft.body if draft else None

    async with app.run_test(size=SIZE) as pilot:
        await open_thread(pilot, app, found.conversation_id)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposerScreen))
        await pilot.press(*"link gone")
        await wait_for(pilot, kept)
        assert kept() == "link gone"


async def test_help_lists_the_thread_keys(db: Database, tui_settings) -> None:
    found = seed_thread(db, tui_settings)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        await open_thread(pilot, app, found.conversation_id)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        actions = {action for _key, action, _tip in app.screen.rows}
        assert {"Reply", "Reply all", "Forward", "Note", "Fold quotes", "Headers", "Source",
                "Save attachment", "Close", "Mine"} <= actions  # fmt: skip


async def test_hostile_names_filenames_and_server_answers_reach_the_screen_harmless(
    db: Database, tui_settings
) -> None:
    found = seed_thread(db, tui_settings)
    with db.write() as session:
        conversation = session.get_one(Conversation, found.conversation_id)
        hostile = add_message(
            session, conversation, subject="[red]Re[/red]\x1b]0;owned\x07", sender="x@evil.test",
            name="[b]Bank[/b] \u202eknaB", body="> quoted\x1b[2J\n[link=http://x]click[/link]",
            attachments=(("\x1b[31minvoice\u202efdp.exe", "text/plain\x07", b"x"),),
        )  # fmt: skip
        hostile_id = hostile.id
    job_state(db, found.failed_message_id, "failed", "550 \x1b[31mred\x1b[0m [b]no[/b]")
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_thread(pilot, app, found.conversation_id)
        await wait_for(pilot, lambda: view.messages[-1].id == hostile_id)
        await pilot.press("E", "z")
        text = view.lines_text()
        assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
        assert "[b]Bank[/b] knaB" in text
        assert "Subject: [red]Re[/red]" in text
        assert "[link=http://x]click[/link]" in text
        assert "invoicefdp.exe  text/plain" in text
        assert "the server answered: 550 red [b]no[/b]" in text
        rendered = [view.render_line(y) for y in range(view.size.height)]
        assert not any(seg.style and seg.style.link for strip in rendered for seg in strip)


async def test_a_click_on_a_message_line_opens_it(db: Database, tui_settings) -> None:
    found = seed_thread(db, tui_settings)
    app = build(tui_settings)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_thread(pilot, app, found.conversation_id)
        first = view.messages[0]
        assert first.id not in view.opened and view.scroll_y == 0
        await wait_for(pilot, lambda: view.lines_text().startswith("▸"))
        await pilot.pause()
        assert await pilot.click(ThreadView, offset=(4, 0))
        await wait_for(pilot, lambda: first.id in view.opened)
        assert view.current is not None and view.current.id == first.id
        assert first.id in view.opened
        assert "Hello,\nplease help." in thread_text(app)
