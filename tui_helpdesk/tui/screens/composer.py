"""The composer (F42, F43): reply, reply all, forward or internal note, over the thread.

Written in a TextArea, or in $VISUAL / $EDITOR (ctrl+e): the app suspends, the editor has the
terminal, the app resumes with what was written (as mutt does). What is written is kept as
the conversation's draft for this user (services.conversations.drafts) a moment after each
change and on escape, so an escape pressed by mistake loses nothing: the composer opens on it
next time. ctrl+s sends through the same services as `conversation reply|forward` and `reply
--note`, and discards the draft in the same unit of work; the thread shows the message queued,
then sent. A refusal shows the service's own message and keeps everything typed.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Label, Static, TextArea

from tui_helpdesk.errors import HelpdeskError
from tui_helpdesk.records import ComposerContext, SentRecord, UserRecord
from tui_helpdesk.services.conversations import drafts, notes, replies
from tui_helpdesk.tui.commands import PaletteCommand
from tui_helpdesk.tui.host import Helpdesk, host
from tui_helpdesk.tui.widgets.safe_text import safe_text

MODE_TITLES = {"reply": "Reply", "reply_all": "Reply all", "forward": "Forward",
               "note": "Internal note"}  # fmt: skip
SAVE_DELAY_SECONDS = 0.5


def addresses(value: str) -> list[str]:
    """Addresses typed one after another, separated by commas, semicolons or spaces."""
    return [part for part in value.replace(";", ",").replace(" ", ",").split(",") if part]


def send(
    session: Any, actor: UserRecord, helpdesk: Helpdesk, conversation_id: int, mode: str,
    body: str, to: str, cc: str, message_id: int | None,
) -> SentRecord:  # fmt: skip
    """The service of the mode, then the draft goes: one unit of work, both or neither."""
    settings = helpdesk.data.settings
    if mode == "note":
        record = notes.write_note(session, actor, conversation_id, body)
    elif mode == "forward":
        record = replies.forward(session, settings, actor, conversation_id, to=addresses(to),
                                 cc=addresses(cc), body=body, message_id=message_id)  # fmt: skip
    else:
        record = replies.reply(session, settings, actor, conversation_id, body,
                               cc=addresses(cc), reply_all=mode == "reply_all")  # fmt: skip
    drafts.discard(session, actor, conversation_id)
    return record


class ComposerScreen(Screen[bool]):
    """Dismisses True when the message was sent (or the note written), False otherwise."""

    BINDINGS = [
        Binding("ctrl+s", "send", "Send", id="composer.send", priority=True,
                tooltip="Send it (a note: add it to the thread)"),
        Binding("ctrl+e", "editor", "$EDITOR", id="composer.editor", priority=True,
                tooltip="Write in $VISUAL / $EDITOR; the app resumes when it exits"),
        Binding("escape", "close", "Close (keep draft)", id="composer.close",
                tooltip="Back to the thread; the draft is kept"),
        Binding("ctrl+d", "discard", "Discard", id="composer.discard", priority=True,
                tooltip="Throw the draft away and close"),
    ]  # fmt: skip

    def __init__(self, conversation_id: int, mode: str, *, message_id: int | None = None) -> None:
        super().__init__(id="composer")
        self.conversation_id = conversation_id
        self.mode = mode
        self.message_id = message_id  # the message a forward sends
        self.context: ComposerContext | None = None
        self.sending = False
        self._save_timer: Timer | None = None
        self._dirty = False
        self.confirmed_warning = False

    @property
    def helpdesk(self) -> Helpdesk:
        return host(self)

    def compose(self) -> ComposeResult:
        with Vertical(id="composer-form"):
            yield Static(self._title(), id="composer-title")
            with Horizontal(id="composer-to-row", classes="composer-row"):
                yield Label("To ", classes="composer-label")
                yield Input(id="composer-to", placeholder="address, address")
            with Horizontal(id="composer-cc-row", classes="composer-row"):
                yield Label("Cc ", classes="composer-label")
                yield Input(id="composer-cc", placeholder="address, address")
            yield TextArea("", id="composer-body", soft_wrap=True)
            yield Static("", id="composer-signature")
            yield Static("", id="composer-status")
        yield Footer()

    def _title(self) -> Text:
        title = Text(f"{MODE_TITLES[self.mode]} · conversation #{self.conversation_id}",
                     style="bold", end="")  # fmt: skip
        context = self.context
        if context is None:
            return title
        if self.mode == "note":
            title.append("  never sent to the customer", style="yellow")
        elif context.mailbox:
            title.append("  from ", style="dim")
            title.append_text(safe_text(context.mailbox, one_line=True))
            if self.mode != "forward" and context.reply_to:
                title.append(" to ", style="dim")
                title.append_text(safe_text(context.reply_to, one_line=True))
            if self.mode == "reply_all":
                title.append(" and everyone in the thread", style="dim")
        return title

    def on_mount(self) -> None:
        self._show_fields()
        self.query_one("#composer-body", TextArea).focus()
        self.load()

    def _show_fields(self) -> None:
        self.query_one("#composer-to-row").display = self.mode == "forward"
        self.query_one("#composer-cc-row").display = self.mode != "note"

    def commands(self) -> list[PaletteCommand]:
        return [
            PaletteCommand("composer: send", "Send it", self.action_send),
            PaletteCommand("composer: editor", "Write in $EDITOR", self.action_editor),
            PaletteCommand(
                "composer: close", "Back to the thread, keep the draft", self.action_close
            ),
            PaletteCommand("composer: discard", "Throw the draft away", self.action_discard),
        ]

    # --- the draft ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="composer-load")
    def load(self) -> None:
        cid = self.conversation_id
        try:
            context = self.helpdesk.data.read(
                lambda session, actor: drafts.composer_context(session, actor, cid)
            )
        except HelpdeskError as error:
            self.app.call_from_thread(self._say, error.message, True)
            return
        self.app.call_from_thread(self._loaded, context)

    def _loaded(self, context: ComposerContext) -> None:
        self.context = context
        draft = context.draft
        if draft is not None and not self._dirty:
            if draft.mode != self.mode:
                self.notify(f"Your {MODE_TITLES[draft.mode].lower()} draft is back",
                            markup=False)  # fmt: skip
            self.mode = draft.mode
            self._show_fields()
            self.query_one("#composer-body", TextArea).load_text(draft.body)
            self.query_one("#composer-to", Input).value = draft.to
            self.query_one("#composer-cc", Input).value = draft.cc
            self._dirty = False
        self.query_one("#composer-title", Static).update(self._title())
        self._show_signature()

    def _show_signature(self) -> None:
        signature = self.context.signature if self.context else ""
        if self.mode == "note":
            text = Text("An internal note: only colleagues read it.", style="yellow")
        elif signature.strip():
            text = Text("Signature added below the text:\n", style="dim")
            text.append_text(safe_text(signature.rstrip(), "dim italic"))
        else:
            text = Text("The mailbox has no signature.", style="dim")
        self.query_one("#composer-signature", Static).update(text)

    @on(TextArea.Changed)
    @on(Input.Changed)
    def _changed(self) -> None:
        self._dirty = True
        if self._save_timer is not None:
            self._save_timer.stop()
        self._save_timer = self.set_timer(SAVE_DELAY_SECONDS, self._save_now)

    def _fields(self) -> tuple[str, str, str]:
        return (
            self.query_one("#composer-body", TextArea).text,
            self.query_one("#composer-to", Input).value,
            self.query_one("#composer-cc", Input).value,
        )

    def _save_now(self) -> None:
        """Keep the draft, in a worker of the app: it outlives this screen if it closes."""
        if not self._dirty or self.sending:
            return
        self._dirty = False
        body, to, cc = self._fields()
        cid, mode, data = self.conversation_id, self.mode, self.helpdesk.data

        def keep() -> None:
            if body.strip() or to.strip() or cc.strip():
                data.write(lambda session, actor: drafts.save(
                    session, actor, cid, mode=mode, body=body, to=to, cc=cc))  # fmt: skip
            else:
                data.write(lambda session, actor: drafts.discard(session, actor, cid))

        self.app.run_worker(keep, thread=True, group="composer-draft", exit_on_error=False)

    # --- actions -----------------------------------------------------------------------------

    def action_close(self) -> None:
        if self._save_timer is not None:
            self._save_timer.stop()
        self._save_now()
        self.dismiss(False)

    def action_discard(self) -> None:
        self._dirty, self.sending = False, True
        if self._save_timer is not None:
            self._save_timer.stop()
        cid, data = self.conversation_id, self.helpdesk.data
        self.app.run_worker(
            lambda: data.write(lambda session, actor: drafts.discard(session, actor, cid)),
            thread=True, group="composer-draft", exit_on_error=False,
        )  # fmt: skip
        self.notify("Draft discarded", markup=False)
        self.dismiss(False)

    def action_send(self) -> None:
        if self.sending:
            return
        body, to, cc = self._fields()
        if not body.strip():
            self._say("write something first", True)
            return
        self.sending = True
        if self._save_timer is not None:
            self._save_timer.stop()
        self._say("Sending…" if self.mode != "note" else "Adding the note…")
        self.send_it(body, to, cc)

    @work(thread=True, exclusive=True, exit_on_error=False, group="composer-send")
    def send_it(self, body: str, to: str, cc: str) -> None:
        helpdesk, cid, mode, message_id = self.helpdesk, self.conversation_id, self.mode, (
            self.message_id)  # fmt: skip
        try:
            helpdesk.data.write(
                lambda session, actor: send(
                    session, actor, helpdesk, cid, mode, body, to, cc, message_id
                )
            )
        except HelpdeskError as error:
            self.app.call_from_thread(self._refused, error.message)
            return
        self.app.call_from_thread(self._sent)

    def _refused(self, text: str) -> None:
        self.sending = False
        self._dirty = True
        self._say(text, True)
        self._save_now()

    def _sent(self) -> None:
        what = "Note added" if self.mode == "note" else "Queued for sending"
        self.notify(what, markup=False)
        self.dismiss(True)

    def _say(self, text: str, error: bool = False) -> None:
        self.query_one("#composer-status", Static).update(
            safe_text(text, "bold red" if error else "italic")
        )

    def action_editor(self) -> None:
        """Hand the text to $VISUAL / $EDITOR; headless (tests, no terminal) it runs without
        suspending, as there is no terminal to give it."""
        area = self.query_one("#composer-body", TextArea)
        command = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        with tempfile.NamedTemporaryFile(
            "w", suffix=".txt", prefix="tui-helpdesk-", delete=False, encoding="utf-8"
        ) as file:
            file.write(area.text)
            path = Path(file.name)
        try:
            try:
                with self.app.suspend():
                    code = self._run_editor(command, path)
            except SuspendNotSupported:
                code = self._run_editor(command, path)
            if code is None:
                return
            text = path.read_text(encoding="utf-8", errors="replace")
        finally:
            path.unlink(missing_ok=True)
        area.load_text(text.removesuffix("\n") if text.endswith("\n") else text)
        self._changed()
        area.focus()

    def _run_editor(self, command: str, path: Path) -> int | None:
        try:
            return subprocess.run([*shlex.split(command), str(path)], check=False).returncode
        except (OSError, ValueError) as error:
            self._say(f"cannot run the editor {command!r}: {error}", True)
            return None
